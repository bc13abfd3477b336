"""Registry use cases that span a transaction: import a file into an area, export an area."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from yizhan.areas import resolve_area
from yizhan.stations.export import write_stations
from yizhan.stations.importer import stations_from_file
from yizhan.stations.registry import ImportSummary, export_frame, upsert_stations


def import_stations(engine: Engine, path: Path | str, *, area: str | None = None, coord: str = "wgs84",
                    data: bytes | None = None, filename: str | None = None) -> ImportSummary:
    """Check a registry file and upsert it into ``area`` in one transaction: all rows or none.

    Raises ``ImportRejected`` (every bad row listed) or ``InvalidInput``; nothing is stored then.
    """
    with engine.begin() as conn:
        info = resolve_area(conn, area)
        records = stations_from_file(path, coord=coord, area_contains=info.contains, area_name=info.name,
                                     data=data, filename=filename)
        return upsert_stations(conn, info.id, info.name, records)


def export_stations(engine: Engine, path: Path, *, area: str | None = None) -> tuple[Path, int]:
    """Write an area's stations to ``path`` (.csv/.xlsx/.geojson); returns the path and the row count."""
    with engine.connect() as conn:
        info = resolve_area(conn, area)
        df = export_frame(conn, info.id)
    return write_stations(df, path), len(df)
