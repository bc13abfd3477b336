"""Registry use cases that span a transaction: import a file into an area, export an area."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from yizhan.areas import AreaInfo, resolve_area
from yizhan.errors import Conflict, ImportRejected, PayloadTooLarge, RowProblem
from yizhan.stations.columns import read_registry, sheets_read
from yizhan.stations.export import write_stations
from yizhan.stations.importer import check_coord_system, frame_positions, records_from_frame
from yizhan.stations.registry import ImportSummary, copy_stations, export_frame, merge_copied
from yizhan.stations.tables import Cancelled, ImportLimits, stop_if_cancelled


@dataclass
class ImportReport(ImportSummary):
    """``ImportSummary`` plus the columns of the file that were left out (only with ``ignore_unknown_columns``)."""

    ignored_columns: list[str] = field(default_factory=list)
    sheets: list[str] = field(default_factory=list)
    """The sheets of a workbook that were read (every sheet with the registry's headers); empty for CSV, GeoJSON."""
    warnings: list[str] = field(default_factory=list)
    """One line each: what looked wrong but was stored as given (a WGS 84 file that fits GCJ-02 better)."""


LOCK_POLL_S = 0.05
"""How often an import that can be cancelled tries the area's lock again while another import holds it, seconds."""


PlacementCheck = Callable[[AreaInfo, np.ndarray, np.ndarray], list[str]]
"""``check(area, lon, lat)``: warning lines about where a file's points (WGS 84 degrees, as declared) lie, such as
``coverage.placement.placement_check``'s; given by the entry points (the domain below coverage cannot import it)."""


def stored_positions(conn: Connection, area_id: int, external_ids: list[str]) -> dict[str, tuple[float, float]]:
    """WGS 84 (lon, lat) in degrees of the area's stored stations among ``external_ids``, by external id."""
    if not external_ids:
        return {}
    rows = conn.execute(text("SELECT external_id, ST_X(geom), ST_Y(geom) FROM stations "
                             "WHERE area_id = :a AND external_id = ANY(:ids)"),
                        {"a": area_id, "ids": external_ids}).all()
    return {r[0]: (float(r[1]), float(r[2])) for r in rows}


IMPORT_LOCK_SPACE = 727002
"""First key of the two-key advisory locks that serialise the imports of one area; the second is the area id."""
IMPORT_LOCK_WAIT_S = 5.0
"""Longest wait of an import for the area's lock or a station row another transaction holds, seconds."""
IMPORT_IDLE_TIMEOUT_S = 30.0
"""An import transaction whose client stops talking (killed, frozen, cut off) is ended by the server after this
many idle seconds, releasing its locks."""


def area_import_lock(conn: Connection, area_id: int, area_name: str, *,
                     wait_s: float = IMPORT_LOCK_WAIT_S, cancelled: Cancelled | None = None) -> None:
    """Take the import lock of an area for the rest of ``conn``'s transaction (released at commit or rollback,
    also when the client dies). Waits at most ``wait_s`` seconds (the transaction's ``lock_timeout``, which then
    applies to its later lock waits too); raises ``Conflict`` when another import holds it longer. With
    ``cancelled``, the wait is a try every ``LOCK_POLL_S`` seconds that stops with ``ImportCancelled`` as soon as
    ``cancelled()`` is true."""
    conn.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": f"{max(1, round(wait_s * 1000))}ms"})
    if cancelled is not None:
        deadline = time.monotonic() + wait_s
        while not conn.execute(text("SELECT pg_try_advisory_xact_lock(CAST(:space AS integer), "
                                    "CAST(:area AS integer))"),
                               {"space": IMPORT_LOCK_SPACE, "area": area_id}).scalar_one():
            stop_if_cancelled(cancelled, f"area {area_name!r}")
            if time.monotonic() >= deadline:
                raise Conflict(f"area {area_name!r}: another import of this area is running; try again when it "
                               f"has finished (该区域另一导入正在进行，请在其完成后重试)")
            time.sleep(LOCK_POLL_S)
        return
    try:
        conn.execute(text("SELECT pg_advisory_xact_lock(CAST(:space AS integer), CAST(:area AS integer))"),
                     {"space": IMPORT_LOCK_SPACE, "area": area_id})
    except OperationalError as exc:
        if isinstance(exc.orig, psycopg.errors.LockNotAvailable):
            raise Conflict(f"area {area_name!r}: another import of this area is running; try again when it has "
                           f"finished (该区域另一导入正在进行，请在其完成后重试)") from None
        raise


CHECK_CHUNK_ROWS = 50_000
"""Rows of a file checked at a time: only one chunk's checked records are held (memory), never the whole file's."""


def duplicates_across_chunks(df: pd.DataFrame, chunk_rows: int) -> list[RowProblem]:
    """Ids of ``df`` (a ``read_registry`` frame) used again in a later chunk of ``chunk_rows`` rows than their
    first use: one problem for the first such row of each later chunk (``records_from_frame``, which sees one
    chunk, names the repeats within it)."""
    ids = df["id"].to_numpy(dtype=object)
    rows = df["_row"].to_numpy()
    chunk = np.arange(len(df)) // chunk_rows
    first_in_chunk = ~pd.DataFrame({"id": ids, "chunk": chunk}).duplicated().to_numpy()
    first_anywhere = ~pd.Series(ids).duplicated().to_numpy()
    first_row = pd.Series(rows).groupby(ids).transform("first").to_numpy()
    late = np.flatnonzero(first_in_chunk & ~first_anywhere & (ids != ""))
    return [RowProblem(int(rows[i]), "id", ids[i], f"a unique id (also used in row {int(first_row[i])})")
            for i in late]


def _check_and_write(conn: Connection, df: pd.DataFrame, info: AreaInfo, *, source: str,
                     coord: str, chunk_rows: int = CHECK_CHUNK_ROWS,
                     cancelled: Cancelled | None = None) -> ImportSummary:
    """Check ``df``'s rows a chunk at a time, COPY the records of good chunks, merge them when no row had a
    problem; otherwise raise ``ImportRejected`` listing every problem of the file (the caller rolls back).
    ``cancelled`` is asked before each chunk and before the merge (``ImportCancelled``; the caller rolls back)."""
    problems = duplicates_across_chunks(df, chunk_rows)
    written = 0
    with copy_stations(conn) as write:
        for start in range(0, len(df), chunk_rows):
            stop_if_cancelled(cancelled, source)
            try:
                records = records_from_frame(df.iloc[start:start + chunk_rows], source=source, coord=coord,
                                             area_contains=info.contains, area_name=info.name)
            except ImportRejected as exc:
                problems.extend(exc.problems)
                continue
            if not problems:  # once the file is known bad, only its problems are collected
                written += write(records)
            del records
    if problems:
        raise ImportRejected(source, sorted(problems, key=lambda p: p.row))
    stop_if_cancelled(cancelled, source)
    return merge_copied(conn, info.id, info.name, written)


def import_stations(engine: Engine, path: Path | str, *, area: str | None = None, coord: str = "wgs84",
                    data: bytes | None = None, filename: str | None = None, ignore_unknown_columns: bool = False,
                    trust_coords: bool = False, max_rows: int | None = None, limits: ImportLimits | None = None,
                    lock_wait_s: float = IMPORT_LOCK_WAIT_S,
                    placement_check: PlacementCheck | None = None, cancelled: Cancelled | None = None,
                    chunk_rows: int = CHECK_CHUNK_ROWS) -> ImportReport:
    """Check a registry file and upsert it into ``area`` in one transaction: all rows or none.

    ``coord`` is the file's coordinate system (``wgs84``, ``gcj02``, ``bd09``). Unless ``trust_coords``, rows of
    stations already stored are compared with them, and a file that fits another system (GCJ-02 pasted into a
    WGS 84 file) is rejected (``importer.check_coord_system``). Unknown columns are rejected unless
    ``ignore_unknown_columns``; the report then lists them. A file of more than ``max_rows`` station rows (the
    API's limit) is refused with ``PayloadTooLarge`` before any row is checked. ``limits`` bound what the file
    reader takes at all (rows, unpacked MB: ``ImportLimits``; by default the process's settings); an app passes
    those of its own settings. A WGS 84 file's points are given
    to ``placement_check`` (when given): its lines (a file that fits the area's streets or OSM premises better as
    GCJ-02, also on a first import with no stored station to compare) become the report's ``warnings``; the
    coordinates are stored as given.

    The file is read and its coordinate system checked with no transaction open (short reads of the area and the
    stored stations). The writing transaction first takes the area's import lock (``area_import_lock``: imports of
    one area run one after the other, never deadlock), so a second import waits up to ``lock_wait_s`` seconds,
    then gets ``Conflict``; then the rows are checked ``CHECK_CHUNK_ROWS`` at a time, each good chunk sent with
    its own COPY (a statement as short as the sending; the checks run between statements), and merged in one
    statement only when no row of the file had a problem. The server ends the transaction if its client goes
    silent between statements for ``IMPORT_IDLE_TIMEOUT_S``.
    ``cancelled`` (when given) is asked while the file is read (``tables.read_file``), after it is read, while
    waiting for the area's lock, before each chunk of ``chunk_rows`` rows and before the merge: once it is true
    the import stops with ``ImportCancelled``.
    Raises ``ImportRejected`` (every bad row listed), ``InvalidInput``, ``PayloadTooLarge``, ``Conflict`` or
    ``ImportCancelled``; nothing is stored then.
    """
    source = Path(filename or str(path)).name
    with engine.connect() as conn:
        info = resolve_area(conn, area)
    df, ignored = read_registry(path, data=data, filename=filename, ignore_unknown_columns=ignore_unknown_columns,
                                limits=limits, cancelled=cancelled)
    stop_if_cancelled(cancelled, source)
    if max_rows is not None and len(df) > max_rows:
        raise PayloadTooLarge(f"{source}: {len(df)} rows, more than the {max_rows} rows an import through the API "
                              f"may hold; use `yizhan stations import` for larger files (文件行数超过接口导入上限)")
    if not trust_coords:  # first: a file in another system also puts points outside the area
        points = frame_positions(df, coord)
        with engine.connect() as conn:
            stored = stored_positions(conn, info.id, points["id"].tolist())
        check_coord_system(points, stored, declared=coord, source=source)
    warnings: list[str] = []
    if placement_check is not None and coord == "wgs84":
        placed = frame_positions(df, coord)
        warnings = placement_check(info, placed["lon"].to_numpy(dtype=float), placed["lat"].to_numpy(dtype=float))
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('idle_in_transaction_session_timeout', :t, true)"),
                     {"t": f"{round(IMPORT_IDLE_TIMEOUT_S * 1000)}ms"})
        area_import_lock(conn, info.id, info.name, wait_s=lock_wait_s, cancelled=cancelled)
        if resolve_area(conn, info.name).id != info.id:
            raise Conflict(f"area {info.name!r} was replaced during the import; import the file again")
        try:
            summary = _check_and_write(conn, df, info, source=source, coord=coord, chunk_rows=chunk_rows,
                                       cancelled=cancelled)
        except OperationalError as exc:
            if isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                raise Conflict(f"area {info.name!r}: some of its stations are being changed by another transaction; "
                               f"try again when it has finished (该区域站点正被另一操作修改，请稍后重试)") from None
            raise
    return ImportReport(**summary.__dict__, ignored_columns=ignored, sheets=sheets_read(df), warnings=warnings)


def export_stations(engine: Engine, path: Path, *, area: str | None = None) -> tuple[Path, int]:
    """Write an area's stations to ``path`` (.csv/.xlsx/.geojson); returns the path and the row count."""
    with engine.connect() as conn:
        info = resolve_area(conn, area)
        df = export_frame(conn, info.id)
    return write_stations(df, path), len(df)
