"""``yizhan stations import|export``: the station registry in and out of an area."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from yizhan.cli import common
from yizhan.cli.common import AreaOpt, CoordOpt, engine, stations_app, status
from yizhan.settings import get_settings


@stations_app.command("import")
def stations_import(
    file: Path, area: AreaOpt = None, coord: CoordOpt = "wgs84",
    ignore_unknown_columns: Annotated[bool, typer.Option(
        help="Import a file with columns the importer does not know, leaving them out (default: reject it)")] = False,
    trust_coords: Annotated[bool, typer.Option(
        help="Skip the check that stations already stored did not move by exactly the offset between WGS 84 "
             "and GCJ-02/BD-09 (a file in another system than --coord)")] = False,
    sheet: Annotated[list[str] | None, typer.Option(
        help="Read only this sheet of a workbook (repeat for several); other sheets are then left alone. "
             "Default: every sheet with the registry's headers")] = None,
) -> None:
    """Import a registry file (CSV/XLSX/GeoJSON, UTF-8 or GBK): all rows or none, upsert by id."""
    from yizhan.coverage.placement import placement_check
    from yizhan.stations.service import import_stations

    with status(f"importing {file.name}"):
        eng = engine()
        s = import_stations(eng, file, area=area, coord=coord, ignore_unknown_columns=ignore_unknown_columns,
                            trust_coords=trust_coords, placement_check=placement_check(get_settings(), eng),
                            sheets=sheet or None)
    common.out.print(f"{s.rows} rows: {s.inserted} new, {s.updated} updated stations in area [bold]{s.area}[/]")
    if s.ignored_columns:
        common.out.print(f"left out unknown column(s): {', '.join(s.ignored_columns)}", markup=False)
    if s.sheets:
        common.out.print(f"read sheet(s): {', '.join(s.sheets)}", markup=False)
    for line in s.notes:
        common.out.print(line, markup=False)
    for line in s.warnings:
        common.out.print(f"warning: {line}", markup=False)


@stations_app.command("export")
def stations_export(
    file: Path, area: AreaOpt = None,
    lang: Annotated[str | None, typer.Option(
        help="zh: Chinese headers and labels (编号, 类型 大型驿站 ...); en: English headers and codes; default: the "
             "language of the area's last import")] = None,
) -> None:
    """Export an area's stations to FILE (.csv, .xlsx, .geojson or .gpkg, the columns the import reads); FILE is
    written whole or not at all (an earlier FILE stays when the folder is full or read-only)."""
    from yizhan.errors import InvalidInput
    from yizhan.outputs import replacing
    from yizhan.stations.export import FORMATS
    from yizhan.stations.registry import check_lang
    from yizhan.stations.service import export_stations

    if file.suffix.lower() not in FORMATS:  # before a temporary file, whose name would be in the message
        raise InvalidInput(f"{file.name}: unsupported export type; expected one of {', '.join(FORMATS)}")
    if lang is not None:
        check_lang(lang)
    with replacing(file, keep_suffix=True) as tmp:
        _, n = export_stations(engine(), tmp, area=area, lang=lang)
    common.out.print(f"{n} stations written to {file}")
