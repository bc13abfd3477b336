"""Registry use cases that span a transaction: import a file into an area, export an area."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from yizhan.areas import AreaInfo, resolve_area
from yizhan.errors import Conflict, ImportRejected, InvalidInput, PayloadTooLarge, RowProblem
from yizhan.stations.columns import RegistryChunks, registry_chunks
from yizhan.stations.export import render_stations, write_stations
from yizhan.stations.importer import (
    GEOD,
    OFFSET_TOLERANCE_M,
    check_coord_system,
    frame_positions,
    records_from_frame,
)
from yizhan.stations.registry import (
    ImportSummary,
    check_lang,
    copy_stations,
    export_frame,
    merge_copied,
    registry_lang,
)
from yizhan.stations.tables import Cancelled, ImportLimits, stop_if_cancelled


@dataclass
class ImportReport(ImportSummary):
    """``ImportSummary`` plus the columns of the file that were left out (only with ``ignore_unknown_columns``)."""

    ignored_columns: list[str] = field(default_factory=list)
    sheets: list[str] = field(default_factory=list)
    """The sheets of a workbook that were read (every sheet with the registry's headers); empty for CSV, GeoJSON."""
    warnings: list[str] = field(default_factory=list)
    """One line each: what looked wrong but was stored as given (a WGS 84 file that fits GCJ-02 better)."""
    notes: list[str] = field(default_factory=list)
    """One line each, Chinese first: layout and remark columns of the file left out (序号, 备注)."""
    lang: str = "en"
    """The language of the file's headers: ``zh`` when most recognised headers are Chinese, else ``en``."""


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


def compact_ids(ids: pd.Series) -> np.ndarray:
    """``ids`` as one array of UTF-8 bytes (numpy ``S``: one buffer for all rows, not a Python string each, whose
    small allocations, scattered among those of every chunk read, would keep that memory from being reused); each
    ends in ``\\x01`` so that a trailing NUL character is kept. ``id_text`` turns one back."""
    return np.array([(v + "\x01").encode("utf-8", "surrogatepass") for v in ids.to_numpy(dtype=object)],
                    dtype=bytes) if len(ids) else np.array([], dtype="S1")


def id_text(value: bytes) -> str:
    """The id ``compact_ids`` made ``value`` of."""
    return value.decode("utf-8", "surrogatepass")[:-1]


def duplicates_across_chunks(ids: np.ndarray, rows: np.ndarray, chunk_rows: int) -> list[RowProblem]:
    """Ids of a registry file's station rows (``compact_ids``, in file order, with their row numbers ``rows``)
    used again in a later chunk of ``chunk_rows`` rows than their first use: one problem for the first such row
    of each later chunk (``records_from_frame``, which sees one chunk, names the repeats within it)."""
    n = len(ids)
    if n == 0:
        return []
    order = np.lexsort((np.arange(n), ids))  # by id, then by position
    by_id = ids[order]
    new_id = np.r_[True, by_id[1:] != by_id[:-1]]
    group = np.cumsum(new_id) - 1
    first_of_group = order[new_id]  # the first position of each id
    first_anywhere = np.zeros(n, dtype=bool)
    first_anywhere[first_of_group] = True
    chunk = (order // chunk_rows)
    new_pair = new_id | np.r_[True, chunk[1:] != chunk[:-1]]
    first_in_chunk = np.zeros(n, dtype=bool)
    first_in_chunk[order[new_pair]] = True
    first_row = np.empty(n, dtype=np.int64)
    first_row[order] = rows[first_of_group][group]
    late = np.flatnonzero(first_in_chunk & ~first_anywhere & (ids != compact_ids(pd.Series([""]))[0]))
    return [RowProblem(int(rows[i]), "id", id_text(ids[i]), f"a unique id (also used in row {int(first_row[i])})")
            for i in late]


@dataclass
class FirstPass:
    """What the import's first pass over a file keeps (no transaction open), arrays of one entry per station row
    in file order: ``ids`` (``compact_ids``) and ``rows`` (row numbers); when asked, the rows with an id and usable
    lon/lat (``importer.frame_positions``, the first row of an id only): ``placed`` (their indexes into ``ids``
    and ``rows``), ``lon``, ``lat`` (WGS 84 degrees)."""

    ids: np.ndarray
    rows: np.ndarray
    placed: np.ndarray | None
    lon: np.ndarray
    lat: np.ndarray
    sheets: list[str]
    notes: list[str]
    lang: str
    unknown: list[str]

    def positions(self) -> pd.DataFrame:
        """The placed rows as ``check_coord_system`` takes them: ``id`` (text), ``row``, ``lon``, ``lat``."""
        placed = self.placed if self.placed is not None else np.array([], dtype=np.int64)
        return pd.DataFrame({"id": [id_text(v) for v in self.ids[placed]], "row": self.rows[placed],
                             "lon": self.lon, "lat": self.lat})


def first_pass(stream: RegistryChunks, *, coord: str, positions: bool) -> FirstPass:
    """Read ``stream`` once, keeping only compact arrays of one entry per row (``FirstPass``)."""
    ids: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    placed: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    count = 0
    for chunk in stream:
        ids.append(compact_ids(chunk["id"]))
        rows.append(chunk["_row"].to_numpy(dtype=np.int64))
        if positions:
            where = pd.Series(np.arange(count, count + len(chunk)), index=chunk["_row"].to_numpy())
            found = frame_positions(chunk, coord)
            placed.append((where.loc[found["row"].to_numpy()].to_numpy(dtype=np.int64),
                           found["lon"].to_numpy(dtype=float), found["lat"].to_numpy(dtype=float)))
        count += len(chunk)
    all_ids = np.concatenate(ids) if ids else np.array([], dtype="S1")
    all_rows = np.concatenate(rows) if rows else np.array([], dtype=np.int64)
    if not positions:
        return FirstPass(all_ids, all_rows, None, np.array([]), np.array([]), list(stream.sheets),
                         list(stream.notes), stream.lang, list(stream.unknown))
    index, lon, lat = (np.concatenate([p[k] for p in placed]) if placed else np.array([]) for k in range(3))
    index = index.astype(np.int64)
    _, first = np.unique(all_ids[index], return_index=True)  # the first row of each id
    first.sort()
    return FirstPass(all_ids, all_rows, index[first], lon[first], lat[first], list(stream.sheets),
                     list(stream.notes), stream.lang, list(stream.unknown))




def any_stored_station_moved(conn: Connection, area_id: int, first: FirstPass, *,
                             batch: int = CHECK_CHUNK_ROWS) -> bool:
    """Whether a placed row of the file (``first``) lies more than ``OFFSET_TOLERANCE_M`` metres from the stored
    station of its id, the stored positions read ``batch`` ids at a time. When none does, no row can fit another
    coordinate system (a fit lies at least ``MIN_SEPARATION_M`` minus the tolerance from its declared reading), so
    ``check_coord_system`` would pass the file: its dictionary of every stored position is not needed."""
    placed = first.placed if first.placed is not None else np.array([], dtype=np.int64)
    for start in range(0, len(placed), batch):
        ids = [id_text(v) for v in first.ids[placed[start:start + batch]]]
        stored = stored_positions(conn, area_id, ids)
        if not stored:
            continue
        where = np.array([stored.get(i, (np.nan, np.nan)) for i in ids], dtype=float)
        has = np.isfinite(where[:, 0])
        _, _, moved = GEOD.inv(where[has, 0], where[has, 1], first.lon[start:start + batch][has],
                                first.lat[start:start + batch][has])
        if (np.asarray(moved) > OFFSET_TOLERANCE_M).any():
            return True
    return False


def exact_chunks(frames: Iterable[pd.DataFrame], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """``frames`` cut and joined into frames of exactly ``chunk_rows`` rows (the last may hold fewer), in order."""
    held: list[pd.DataFrame] = []
    count = 0
    for frame in frames:
        while len(frame):
            take = frame.iloc[:chunk_rows - count]
            frame = frame.iloc[len(take):]
            held.append(take)
            count += len(take)
            if count == chunk_rows:
                yield pd.concat(held, ignore_index=True) if len(held) > 1 else held[0].reset_index(drop=True)
                held, count = [], 0
    if held:
        yield pd.concat(held, ignore_index=True) if len(held) > 1 else held[0].reset_index(drop=True)


def _check_and_write(conn: Connection, stream: RegistryChunks, first: FirstPass, info: AreaInfo, *, source: str,
                     coord: str, chunk_rows: int = CHECK_CHUNK_ROWS,
                     cancelled: Cancelled | None = None) -> ImportSummary:
    """Read ``stream`` again (the file's second pass), check its rows a chunk of ``chunk_rows`` at a time, COPY
    the records of good chunks, merge them when no row had a problem; otherwise raise ``ImportRejected`` listing
    every problem of the file (the caller rolls back); the merge records the language of the file's headers as the
    area's registry language (its exports follow it). ``first`` (the first pass) gives the ids of the whole file,
    for repeats across chunks; a file that reads otherwise now is refused (``InvalidInput``: it changed during
    the import). ``cancelled`` is asked before each chunk and before the merge (``ImportCancelled``; the caller
    rolls back)."""
    problems = duplicates_across_chunks(first.ids, first.rows, chunk_rows)
    expected = first.ids
    changed = InvalidInput(f"{source}: 文件在导入过程中被修改，未保存任何内容 / the file changed while it was "
                           f"imported; nothing was stored: import it again when it is no longer being written")
    written = 0
    seen = 0
    with copy_stations(conn) as write:
        for chunk in exact_chunks(stream, chunk_rows):
            stop_if_cancelled(cancelled, source)
            if not np.array_equal(compact_ids(chunk["id"]), expected[seen:seen + len(chunk)]):
                raise changed
            seen += len(chunk)
            chunk.attrs.update(sheets=first.sheets)
            try:
                records = records_from_frame(chunk, source=source, coord=coord, area_contains=info.contains,
                                             area_name=info.name)
            except ImportRejected as exc:
                problems.extend(exc.problems)
                continue
            if not problems:  # once the file is known bad, only its problems are collected
                written += write(records)
            del records
    if seen != len(expected):
        raise changed
    if problems:
        raise ImportRejected(source, sorted(problems, key=lambda p: p.row))
    stop_if_cancelled(cancelled, source)
    return merge_copied(conn, info.id, info.name, written, lang=first.lang)


def import_stations(engine: Engine, path: Path | str, *, area: str | None = None, coord: str = "wgs84",
                    data: bytes | None = None, filename: str | None = None, ignore_unknown_columns: bool = False,
                    trust_coords: bool = False, max_rows: int | None = None, limits: ImportLimits | None = None,
                    lock_wait_s: float = IMPORT_LOCK_WAIT_S,
                    placement_check: PlacementCheck | None = None, cancelled: Cancelled | None = None,
                    chunk_rows: int | None = None, sheets: Sequence[str] | None = None) -> ImportReport:
    """Check a registry file and upsert it into ``area`` in one transaction: all rows or none.

    ``coord`` is the file's coordinate system (``wgs84``, ``gcj02``, ``bd09``). Unless ``trust_coords``, rows of
    stations already stored are compared with them, and a file that fits another system (GCJ-02 pasted into a
    WGS 84 file) is rejected (``importer.check_coord_system``). Unknown columns are rejected unless
    ``ignore_unknown_columns``; the report then lists them; layout columns (序号, 备注) are left out with a line in
    ``notes``. ``sheets`` names the sheets of a workbook to read (default: every sheet with the registry's
    headers). A file of more than ``max_rows`` station rows (the API's limit) is refused with ``PayloadTooLarge``
    before any row is checked. ``limits`` bound what the file reader takes at all (rows, unpacked MB:
    ``ImportLimits``; by default the process's settings); an app passes those of its own settings. A WGS 84 file's
    points are given to ``placement_check`` (when given): its lines (a file that fits the area's streets or OSM
    premises better as GCJ-02, also on a first import with no stored station to compare) become the report's
    ``warnings``; the coordinates are stored as given.

    The file is read twice, a chunk at a time, so memory does not grow with its size beyond a few arrays of one
    entry per row (ids, row numbers, WGS 84 positions). The first pass runs with no transaction open: the row
    count (``max_rows``), the ids (repeats across chunks), the positions for the coordinate system and placement
    checks (short reads of the area and the stored stations). The writing transaction first takes the area's
    import lock (``area_import_lock``: imports of one area run one after the other, never deadlock), so a second
    import waits up to ``lock_wait_s`` seconds, then gets ``Conflict``; then the second pass reads the file again
    and checks its rows ``chunk_rows`` (default ``CHECK_CHUNK_ROWS``) at a time, each good chunk sent with its own
    COPY (a statement as short as the sending; reading and checks run between statements), and merged in one
    statement only when no row of the file had a problem. The server ends the transaction if its client goes
    silent between statements for ``IMPORT_IDLE_TIMEOUT_S``.
    ``cancelled`` (when given) is asked while the file is read (``tables.read_file``), after the first pass, while
    waiting for the area's lock, before each chunk checked and before the merge: once it is true the import stops
    with ``ImportCancelled``.
    Raises ``ImportRejected`` (every bad row listed), ``InvalidInput``, ``PayloadTooLarge``, ``Conflict`` or
    ``ImportCancelled``; nothing is stored then.
    """
    source = Path(filename or str(path)).name
    chunk_rows = chunk_rows or CHECK_CHUNK_ROWS
    with engine.connect() as conn:
        info = resolve_area(conn, area)

    def stream() -> RegistryChunks:
        return registry_chunks(path, data=data, filename=filename, ignore_unknown_columns=ignore_unknown_columns,
                               limits=limits, cancelled=cancelled, sheets=sheets)

    check_placement = placement_check is not None and coord == "wgs84"
    first = first_pass(stream(), coord=coord, positions=not trust_coords or check_placement)
    stop_if_cancelled(cancelled, source)
    if max_rows is not None and len(first.ids) > max_rows:
        raise PayloadTooLarge(f"{source}: {len(first.ids)} rows, more than the {max_rows} rows an import "
                              f"through the API may hold; use `yizhan stations import` for larger files "
                              f"(文件行数超过接口导入上限)")
    if not trust_coords:  # first: a file in another system puts points outside the area too
        with engine.connect() as conn:
            if any_stored_station_moved(conn, info.id, first):
                points = first.positions()
                stored = stored_positions(conn, info.id, points["id"].tolist())
                check_coord_system(points, stored, declared=coord, source=source)
                del points, stored
    warnings: list[str] = []
    if placement_check is not None and check_placement:
        warnings = placement_check(info, first.lon, first.lat)
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('idle_in_transaction_session_timeout', :t, true)"),
                     {"t": f"{round(IMPORT_IDLE_TIMEOUT_S * 1000)}ms"})
        area_import_lock(conn, info.id, info.name, wait_s=lock_wait_s, cancelled=cancelled)
        if resolve_area(conn, info.name).id != info.id:
            raise Conflict(f"area {info.name!r} was replaced during the import; import the file again")
        try:
            summary = _check_and_write(conn, stream(), first, info, source=source, coord=coord,
                                       chunk_rows=chunk_rows, cancelled=cancelled)
        except OperationalError as exc:
            if isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                raise Conflict(f"area {info.name!r}: some of its stations are being changed by another transaction; "
                               f"try again when it has finished (该区域站点正被另一操作修改，请稍后重试)") from None
            raise
    return ImportReport(**summary.__dict__, ignored_columns=first.unknown, sheets=first.sheets, warnings=warnings,
                        notes=first.notes, lang=first.lang)


def _export(engine: Engine, area: str | None, lang: str | None) -> tuple[pd.DataFrame, str]:
    """An area's stations in the export layout and the language to write them in (``lang``, or the area's
    registry language: that of its last import)."""
    if lang is not None:
        check_lang(lang)
    with engine.connect() as conn:
        info = resolve_area(conn, area)
        return export_frame(conn, info.id), lang or registry_lang(conn, info.id)


def export_stations(engine: Engine, path: Path, *, area: str | None = None,
                    lang: str | None = None) -> tuple[Path, int]:
    """Write an area's stations to ``path`` (.csv/.xlsx/.geojson/.gpkg) in ``lang`` (``zh``: Chinese headers and
    labels; ``en``: English headers and codes; by default the area's registry language, that of its last import);
    returns the path and the row count."""
    df, lang = _export(engine, area, lang)
    return write_stations(df, path, lang=lang), len(df)


def stations_download(engine: Engine, fmt: str, *, area: str | None = None, lang: str | None = None) -> bytes:
    """An area's stations as the bytes of an export file in format ``fmt`` (csv, xlsx, geojson, gpkg) and
    ``lang`` (by default the area's registry language), for a download."""
    df, lang = _export(engine, area, lang)
    return render_stations(df, fmt, lang=lang)
