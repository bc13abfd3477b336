"""``yizhan area|network|units``: study areas, their street networks and administrative units (the station
registry is in ``cli.stations``, demand layers in ``cli.demand``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from yizhan.cli import common
from yizhan.cli.common import (
    AreaOpt,
    area_app,
    engine,
    network_app,
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
    display_name: Annotated[str | None, typer.Option(
        "--display-name", help="The name people use, printed on reports and returns, e.g. 海淀区五道口街道")] = None,
) -> None:
    """Create or update a study area (NAME is the code name commands take)."""
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
        info = ensure_area(conn, name, boundary=geom, crs_epsg=crs, display_name=display_name,
                           source=str(boundary or bbox or osm or place or "") if geom is not None else None)
    shown = f" 「{info.display_name}」" if info.display_name else ""
    common.out.print(f"area [bold]{info.name}[/]{shown} (id {info.id}), analysis CRS EPSG:{info.crs_epsg}")


@area_app.command("list")
def area_list() -> None:
    """List the study areas."""
    from yizhan.areas import list_areas

    with engine().connect() as conn:
        areas = list_areas(conn)
    table = Table("name", "显示名称 display name", "id", "CRS", "bounds (W,S,E,N)")
    for a in areas:
        b = ", ".join(f"{v:.4f}" for v in a.boundary.bounds) if a.boundary is not None else "-"
        table.add_row(a.name, a.display_name or "-", str(a.id), f"EPSG:{a.crs_epsg}", b)
    common.out.print(table)


# -- street networks and units -------------------------------------------------------------------------------
@network_app.command("build")
def network_build(
    osm: Annotated[Path | None, typer.Option(help="OpenStreetMap extract (.osm or .osm.pbf) covering the area; "
                                                  "without it the streets are downloaded (needs the network)")] = None,
    place: Annotated[str | None, typer.Option(help="Download the streets of this place name instead")] = None,
    area: AreaOpt = None,
    profile: Annotated[list[str] | None, typer.Option(help="walk and/or bike (default both)")] = None,
) -> None:
    """Build and store the area's street graphs (filtered to streets, connected, in the area's CRS). The area
    remembers the extract, so its reports name the streets near gaps without being given it again."""
    from yizhan.areas import remember_extract, resolve_area
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
    if osm is not None:
        with engine().begin() as conn:
            remember_extract(conn, info.id, osm)


@network_app.command("parts")
def network_parts(
    osm: Annotated[Path, typer.Option(help="The province's OpenStreetMap extract (.osm.pbf) covering the area")],
    area: AreaOpt = None,
    tiles: Annotated[str, typer.Option(help="Columns x rows of equal tiles over the area, e.g. 4x4")] = "4x4",
    halo: Annotated[float | None, typer.Option(help="Metres of streets each tile also holds around it (default: "
                                                    "what a run along the streets at YIZHAN_RADIUS_M needs: 3 x "
                                                    "the radius + YIZHAN_MAX_SNAP_M + half the diagonal of the "
                                                    "area's demand cells + 100). Runs at a larger radius need "
                                                    "more")] = None,
    profile: Annotated[list[str] | None, typer.Option(help="walk and/or bike (default both)")] = None,
) -> None:
    """Build the area's street graphs per partition in one streaming pass over a province's extract, for runs in
    parts along the streets (yizhan coverage --mode network --partitions N): no graph of the whole area is held in
    memory, each worker loads its tile's graph."""
    import re

    from yizhan.areas import resolve_area
    from yizhan.coverage.partitions import street_parts_halo
    from yizhan.coverage.runs import cell_size_of
    from yizhan.coverage.streets import build_street_parts

    m = re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\d+)\s*", tiles)
    if m is None or int(m[1]) < 1 or int(m[2]) < 1:
        raise typer.BadParameter(f"--tiles {tiles!r}: 应为 列x行 / expected columns x rows such as 4x4")
    settings = get_settings()
    with engine().connect() as conn:
        info = resolve_area(conn, area)
        cell_m = cell_size_of(conn, info.id)
    halo_m = halo if halo is not None else street_parts_halo(settings.radius_m, settings.max_snap_m, cell_m)
    for p in profile or ["walk", "bike"]:
        with status(f"cutting the {p} streets of {info.name} into {m[1]} x {m[2]} tiles ({halo_m:g} m halo)") as say:
            manifest = build_street_parts(info, osm, profile=p, tiles=(int(m[1]), int(m[2])), halo_m=halo_m,
                                          settings=settings, progress=say)
        common.out.print(f"{p}: {manifest.parent}")


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
