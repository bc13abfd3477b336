"""``yizhan area|stations|demand|network|units|candidates``: what an analysis reads: study areas, the station
registry, demand layers, street networks, administrative units and candidate sites."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from yizhan.cli import common
from yizhan.cli.common import (
    AreaOpt,
    CoordOpt,
    area_app,
    demand_app,
    engine,
    network_app,
    stations_app,
    status,
    units_app,
)
from yizhan.settings import get_settings


# -- areas ---------------------------------------------------------------------------------------------------
@area_app.command("create")
def area_create(
    name: str,
    boundary: Annotated[Path | None, typer.Option(help="GeoJSON/GPKG boundary file")] = None,
    bbox: Annotated[str | None, typer.Option(help="west,south,east,north in WGS 84 degrees")] = None,
    place: Annotated[str | None, typer.Option(help="Place name to look up online, e.g. '嘉善县, 浙江省'")] = None,
    osm: Annotated[Path | None, typer.Option(help="Use the bounds of this OSM extract (.osm/.osm.pbf)")] = None,
    crs: Annotated[int | None, typer.Option(help="EPSG code of the metric CRS (default: UTM of the centroid)")] = None,
) -> None:
    """Create or update a study area."""
    from shapely.geometry import box

    from yizhan.areas import boundary_from_file, ensure_area
    from yizhan.errors import InvalidInput

    geom = None
    if boundary:
        geom = boundary_from_file(boundary)
    elif bbox:
        try:
            w, s, e, n = (float(x) for x in bbox.split(","))
        except ValueError:
            raise InvalidInput(f"--bbox {bbox!r}: expected west,south,east,north in degrees") from None
        if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
            raise InvalidInput(f"--bbox {bbox!r}: expected west < east and south < north within lon/lat ranges")
        geom = box(w, s, e, n)
    elif osm:
        from yizhan.geo.osm import extract_bounds

        geom = box(*extract_bounds(osm))
    elif place:
        from yizhan.geo.streets_osmnx import boundary_from_place, configure_osmnx

        configure_osmnx()
        geom = boundary_from_place(place)
    with engine().begin() as conn:
        info = ensure_area(conn, name, boundary=geom, crs_epsg=crs, source=str(boundary or bbox or osm or place or ""))
    common.out.print(f"area [bold]{info.name}[/] (id {info.id}), analysis CRS EPSG:{info.crs_epsg}")


@area_app.command("list")
def area_list() -> None:
    """List the study areas."""
    from yizhan.areas import list_areas

    with engine().connect() as conn:
        areas = list_areas(conn)
    table = Table("name", "id", "CRS", "bounds (W,S,E,N)")
    for a in areas:
        b = ", ".join(f"{v:.4f}" for v in a.boundary.bounds) if a.boundary is not None else "-"
        table.add_row(a.name, str(a.id), f"EPSG:{a.crs_epsg}", b)
    common.out.print(table)


# -- stations ------------------------------------------------------------------------------------------------
@stations_app.command("import")
def stations_import(
    file: Path, area: AreaOpt = None, coord: CoordOpt = "wgs84",
    ignore_unknown_columns: Annotated[bool, typer.Option(
        help="Import a file with columns the importer does not know, leaving them out (default: reject it)")] = False,
    trust_coords: Annotated[bool, typer.Option(
        help="Skip the check that stations already stored did not move by exactly the offset between WGS 84 "
             "and GCJ-02/BD-09 (a file in another system than --coord)")] = False,
) -> None:
    """Import a registry file (CSV/XLSX/GeoJSON, UTF-8 or GBK): all rows or none, upsert by id."""
    from yizhan.coverage.placement import placement_check
    from yizhan.stations.service import import_stations

    with status(f"importing {file.name}"):
        eng = engine()
        s = import_stations(eng, file, area=area, coord=coord, ignore_unknown_columns=ignore_unknown_columns,
                            trust_coords=trust_coords, placement_check=placement_check(get_settings(), eng))
    common.out.print(f"{s.rows} rows: {s.inserted} new, {s.updated} updated stations in area [bold]{s.area}[/]")
    if s.ignored_columns:
        common.out.print(f"left out unknown column(s): {', '.join(s.ignored_columns)}", markup=False)
    if s.sheets:
        common.out.print(f"read sheet(s): {', '.join(s.sheets)}", markup=False)
    for line in s.warnings:
        common.out.print(f"warning: {line}", markup=False)


@stations_app.command("export")
def stations_export(file: Path, area: AreaOpt = None) -> None:
    """Export an area's stations to FILE (.csv, .xlsx or .geojson, same columns as the import); FILE is written
    whole or not at all (an earlier FILE stays when the folder is full or read-only)."""
    from yizhan.errors import InvalidInput
    from yizhan.outputs import replacing
    from yizhan.stations.export import FORMATS
    from yizhan.stations.service import export_stations

    if file.suffix.lower() not in FORMATS:  # before a temporary file, whose name would be in the message
        raise InvalidInput(f"{file.name}: unsupported export type; expected one of {', '.join(FORMATS)}")
    with replacing(file, keep_suffix=True) as tmp:
        _, n = export_stations(engine(), tmp, area=area)
    common.out.print(f"{n} stations written to {file}")


# -- demand --------------------------------------------------------------------------------------------------
@demand_app.command("import")
def demand_import(
    file: Path, area: AreaOpt = None, coord: CoordOpt = "wgs84",
    cell_size: Annotated[float | None, typer.Option(help="Grid cell edge in metres (default from settings)")] = None,
    append: Annotated[bool, typer.Option(help="Add to the area's points instead of replacing them")] = False,
    clip: Annotated[bool, typer.Option(help="Drop points outside the area instead of rejecting the file")] = False,
) -> None:
    """Import delivery-demand points (CSV/GeoJSON/GeoParquet) and aggregate them into grid cells."""
    from yizhan.data.demand import import_demand

    size = cell_size or get_settings().cell_size_m
    with status(f"importing {file.name}"):
        s = import_demand(engine(), file, area=area, coord=coord, cell_size_m=size, append=append, clip=clip)
    dropped = f", {s.dropped_outside} outside the area dropped" if s.dropped_outside else ""
    common.out.print(f"{s.points} points{dropped} -> {s.cells} cells of {s.cell_size_m:g} m, "
                     f"total weight {s.weight_total:g} in area [bold]{s.area}[/]")


# -- street networks and units -------------------------------------------------------------------------------
@network_app.command("build")
def network_build(
    osm: Annotated[Path | None, typer.Option(help="OpenStreetMap extract (.osm or .osm.pbf) covering the area; "
                                                  "without it the streets are downloaded (needs the network)")] = None,
    place: Annotated[str | None, typer.Option(help="Download the streets of this place name instead")] = None,
    area: AreaOpt = None,
    profile: Annotated[list[str] | None, typer.Option(help="walk and/or bike (default both)")] = None,
) -> None:
    """Build and store the area's street graphs (filtered to streets, connected, in the area's CRS)."""
    from yizhan.areas import resolve_area
    from yizhan.coverage.streets import build_area_graph

    with engine().connect() as conn:
        info = resolve_area(conn, area)
    if osm is None:  # a download goes through osmnx
        from yizhan.geo.streets_osmnx import configure_osmnx

        configure_osmnx()
    for p in profile or ["walk", "bike"]:
        source = osm.name if osm else (place or "OpenStreetMap (download)")
        with status(f"building the {p} network of {info.name} from {source}") as say:
            g = build_area_graph(info, osm, profile=p, place=place, progress=say, settings=get_settings())
        common.out.print(f"{p}: {g.n_nodes} nodes, {g.n_edges} edges (EPSG:{g.crs_epsg})")


@units_app.command("import")
def units_import(
    file: Path, area: AreaOpt = None,
    name_field: Annotated[str | None, typer.Option(help="Column with the unit name")] = None,
    level: Annotated[str | None, typer.Option(help="e.g. township, district")] = None,
) -> None:
    """Replace the area's administrative units by the polygons of FILE (GeoJSON/GPKG/Shapefile)."""
    import geopandas as gpd

    from yizhan.areas import import_units, resolve_area
    from yizhan.errors import InvalidInput

    try:
        units = gpd.read_file(file)
    except Exception as exc:
        raise InvalidInput(f"{file}: cannot read units (GeoJSON, GPKG or Shapefile expected): {exc}") from exc
    with engine().begin() as conn:
        info = resolve_area(conn, area)
        n = import_units(conn, info, units, name_field=name_field, level=level, source=file.name)
    common.out.print(f"{n} units stored for area [bold]{info.name}[/]")


@units_app.command("show")
def units_show(
    run: Annotated[int | None, typer.Option(help="Run id (default: the latest)")] = None,
    area: AreaOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stations, demand and covered share (run metric and straight line) per unit of a run."""
    from yizhan.coverage.runs import latest_run_id, units_table

    with engine().connect() as conn:
        rid = run if run is not None else latest_run_id(conn, area=area)
        df = units_table(conn, rid)
    if as_json:
        common.out.print_json(df.to_json(orient="records", force_ascii=False))
        return
    table = Table("unit", "stations", "demand", "covered", "covered (straight line)", title=f"run {rid}")
    for r in df.itertuples():
        table.add_row(r.name, str(r.stations), f"{r.demand:,.1f}", f"{r.covered_share:.1%}",
                      f"{r.covered_share_straight:.1%}")
    common.out.print(table)
