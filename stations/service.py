"""Registry use cases that span a transaction: import a file into an area, export an area."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from yizhan.areas import resolve_area
from yizhan.stations.export import write_stations
from yizhan.stations.importer import check_coord_system, frame_positions, read_registry, records_from_frame
from yizhan.stations.registry import ImportSummary, export_frame, upsert_stations


@dataclass
class ImportReport(ImportSummary):
    """``ImportSummary`` plus the columns of the file that were left out (only with ``ignore_unknown_columns``)."""

    ignored_columns: list[str] = field(default_factory=list)


def stored_positions(conn: Connection, area_id: int, external_ids: list[str]) -> dict[str, tuple[float, float]]:
    """WGS 84 (lon, lat) in degrees of the area's stored stations among ``external_ids``, by external id."""
    if not external_ids:
        return {}
    rows = conn.execute(text("SELECT external_id, ST_X(geom), ST_Y(geom) FROM stations "
                             "WHERE area_id = :a AND external_id = ANY(:ids)"),
                        {"a": area_id, "ids": external_ids}).all()
    return {r[0]: (float(r[1]), float(r[2])) for r in rows}


def import_stations(engine: Engine, path: Path | str, *, area: str | None = None, coord: str = "wgs84",
                    data: bytes | None = None, filename: str | None = None, ignore_unknown_columns: bool = False,
                    trust_coords: bool = False) -> ImportReport:
    """Check a registry file and upsert it into ``area`` in one transaction: all rows or none.

    ``coord`` is the file's coordinate system (``wgs84``, ``gcj02``, ``bd09``). Unless ``trust_coords``, rows of
    stations already stored are compared with them, and a file that fits another system (GCJ-02 pasted into a
    WGS 84 file) is rejected (``importer.check_coord_system``). Unknown columns are rejected unless
    ``ignore_unknown_columns``; the report then lists them.
    Raises ``ImportRejected`` (every bad row listed) or ``InvalidInput``; nothing is stored then.
    """
    source = Path(filename or str(path)).name
    with engine.begin() as conn:
        info = resolve_area(conn, area)
        df, ignored = read_registry(path, data=data, filename=filename, ignore_unknown_columns=ignore_unknown_columns)
        if not trust_coords:  # first: a file in another system also puts points outside the area
            points = frame_positions(df, coord)
            stored = stored_positions(conn, info.id, points["id"].tolist())
            check_coord_system(points, stored, declared=coord, source=source)
        records = records_from_frame(df, source=source, coord=coord, area_contains=info.contains,
                                     area_name=info.name)
        summary = upsert_stations(conn, info.id, info.name, records)
        return ImportReport(**summary.__dict__, ignored_columns=ignored)


def export_stations(engine: Engine, path: Path, *, area: str | None = None) -> tuple[Path, int]:
    """Write an area's stations to ``path`` (.csv/.xlsx/.geojson); returns the path and the row count."""
    with engine.connect() as conn:
        info = resolve_area(conn, area)
        df = export_frame(conn, info.id)
    return write_stations(df, path), len(df)
