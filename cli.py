"""The ``yizhan`` command line: database, areas, registry, demand, coverage, map, reports, API, demo."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from yizhan.errors import DatabaseUnavailable, SetupError, YizhanError
from yizhan.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(help="yizhan 驿站: rest-station coverage for outdoor workers.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="The database (embedded cluster unless DATABASE_URL is set).", no_args_is_help=True)
area_app = typer.Typer(help="Study areas.", no_args_is_help=True)
stations_app = typer.Typer(help="The station registry.", no_args_is_help=True)
demand_app = typer.Typer(help="Delivery demand layers.", no_args_is_help=True)
network_app = typer.Typer(help="Street networks (walk, bike) of an area.", no_args_is_help=True)
keys_app = typer.Typer(help="Staff API keys (stored hashed; shown once).", no_args_is_help=True)
units_app = typer.Typer(help="Administrative units (districts, townships) for summaries.", no_args_is_help=True)
candidates_app = typer.Typer(help="Candidate sites for new stations (OSM premises or the union's own list).",
                             no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(area_app, name="area")
app.add_typer(stations_app, name="stations")
app.add_typer(demand_app, name="demand")
app.add_typer(network_app, name="network")
app.add_typer(units_app, name="units")
app.add_typer(keys_app, name="keys")
app.add_typer(candidates_app, name="candidates")

out = Console()
err = Console(stderr=True)

AreaOpt = Annotated[str | None, typer.Option("--area", help="Area name (default: the only area)")]
CoordOpt = Annotated[str, typer.Option("--coord", help="Coordinate system of the file: wgs84, gcj02 or bd09")]


@contextmanager
def _status(message: str) -> Iterator[Callable[[str], None]]:
    """A spinner on a terminal; plain lines otherwise. Yields a function that updates the message."""
    if err.is_terminal:
        with err.status(message) as st:
            yield lambda m: st.update(m)
    else:
        err.print(message)
        yield lambda m: err.print(f"  {m}")


def _engine() -> Engine:
    from yizhan.db.engine import get_engine

    return get_engine(get_settings())


def _show(data: Any, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(data, ensure_ascii=False, default=str))
        return
    table = Table(show_header=False, box=None)
    for k, v in data.items():
        table.add_row(f"[bold]{k}[/]", str(v))
    out.print(table)


# -- db ------------------------------------------------------------------------------------------------------
@db_app.command("up")
def db_up() -> None:
    """Start the embedded cluster (created on first use) and bring the schema up to date."""
    s = get_settings()
    if s.database_url:
        err.print("DATABASE_URL is set: yizhan uses that server and starts none of its own.")
    with _status("starting the database"):
        _engine()
    db_url()


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster."""
    from yizhan.db.engine import embedded_cluster

    if get_settings().database_url:
        err.print("DATABASE_URL is set: there is no embedded cluster to stop.")
        return
    out.print("stopped" if embedded_cluster(get_settings()).down() else "not running")


@db_app.command("status")
def db_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where the database is and whether it runs."""
    from yizhan.db.engine import embedded_cluster

    s = get_settings()
    if s.database_url:
        _show({"mode": "DATABASE_URL", "url": _redact(s.database_url)}, as_json)
        return
    _show({"mode": "embedded", **embedded_cluster(s).status()}, as_json)


@db_app.command("url")
def db_url(
    sqlalchemy: Annotated[bool, typer.Option("--sqlalchemy", help="The SQLAlchemy form postgresql+psycopg://... "
                                             "instead of the one psql and libpq accept")] = False,
) -> None:
    """Print the database URL for psql: `psql "$(yizhan db url)"` (starts the embedded cluster if needed).

    数据库连接地址，可直接用于 psql。The password is never printed: psql then asks for it or reads PGPASSWORD or
    ~/.pgpass (the embedded cluster needs none)."""
    from sqlalchemy.engine import URL, make_url

    from yizhan.db.engine import database_url, libpq_url

    url = database_url(get_settings())
    u = make_url(url if sqlalchemy else libpq_url(url))
    print(URL.create(u.drivername, username=u.username, host=u.host, port=u.port, database=u.database,
                     query=u.query).render_as_string(hide_password=False))


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


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
    with _engine().begin() as conn:
        info = ensure_area(conn, name, boundary=geom, crs_epsg=crs, source=str(boundary or bbox or osm or place or ""))
    out.print(f"area [bold]{info.name}[/] (id {info.id}), analysis CRS EPSG:{info.crs_epsg}")


@area_app.command("list")
def area_list() -> None:
    """List the study areas."""
    from yizhan.areas import list_areas

    with _engine().connect() as conn:
        areas = list_areas(conn)
    table = Table("name", "id", "CRS", "bounds (W,S,E,N)")
    for a in areas:
        b = ", ".join(f"{v:.4f}" for v in a.boundary.bounds) if a.boundary is not None else "-"
        table.add_row(a.name, str(a.id), f"EPSG:{a.crs_epsg}", b)
    out.print(table)


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
    from yizhan.stations.service import import_stations

    with _status(f"importing {file.name}"):
        s = import_stations(_engine(), file, area=area, coord=coord, ignore_unknown_columns=ignore_unknown_columns,
                            trust_coords=trust_coords)
    out.print(f"{s.rows} rows: {s.inserted} new, {s.updated} updated stations in area [bold]{s.area}[/]")
    if s.ignored_columns:
        out.print(f"left out unknown column(s): {', '.join(s.ignored_columns)}", markup=False)


@stations_app.command("export")
def stations_export(file: Path, area: AreaOpt = None) -> None:
    """Export an area's stations to FILE (.csv, .xlsx or .geojson, same columns as the import)."""
    from yizhan.stations.service import export_stations

    path, n = export_stations(_engine(), file, area=area)
    out.print(f"{n} stations written to {path}")


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
    with _status(f"importing {file.name}"):
        s = import_demand(_engine(), file, area=area, coord=coord, cell_size_m=size, append=append, clip=clip)
    dropped = f", {s.dropped_outside} outside the area dropped" if s.dropped_outside else ""
    out.print(f"{s.points} points{dropped} -> {s.cells} cells of {s.cell_size_m:g} m, "
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

    with _engine().connect() as conn:
        info = resolve_area(conn, area)
    if osm is None:  # a download goes through osmnx
        from yizhan.geo.streets_osmnx import configure_osmnx

        configure_osmnx()
    for p in profile or ["walk", "bike"]:
        source = osm.name if osm else (place or "OpenStreetMap (download)")
        with _status(f"building the {p} network of {info.name} from {source}") as say:
            g = build_area_graph(info, osm, profile=p, place=place, progress=say, settings=get_settings())
        out.print(f"{p}: {g.n_nodes} nodes, {g.n_edges} edges (EPSG:{g.crs_epsg})")


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
    with _engine().begin() as conn:
        info = resolve_area(conn, area)
        n = import_units(conn, info, units, name_field=name_field, level=level, source=file.name)
    out.print(f"{n} units stored for area [bold]{info.name}[/]")


@units_app.command("show")
def units_show(
    run: Annotated[int | None, typer.Option(help="Run id (default: the latest)")] = None,
    area: AreaOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stations, demand and covered share (run metric and straight line) per unit of a run."""
    from yizhan.coverage.runs import latest_run_id, units_table

    with _engine().connect() as conn:
        rid = run if run is not None else latest_run_id(conn, area=area)
        df = units_table(conn, rid)
    if as_json:
        out.print_json(df.to_json(orient="records", force_ascii=False))
        return
    table = Table("unit", "stations", "demand", "covered", "covered (straight line)", title=f"run {rid}")
    for r in df.itertuples():
        table.add_row(r.name, str(r.stations), f"{r.demand:,.1f}", f"{r.covered_share:.1%}",
                      f"{r.covered_share_straight:.1%}")
    out.print(table)


# -- staff keys ----------------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(name: str) -> None:
    """Create a staff API key called NAME and print it (only its hash is kept: copy it now)."""
    from yizhan.keys import create_key

    with _engine().begin() as conn:
        key = create_key(conn, name)
    err.print(f"staff key [bold]{name}[/] created; send it as the X-API-Key header. It is not shown again:")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """The staff keys: names and dates (never the keys)."""
    from yizhan.keys import list_keys

    with _engine().connect() as conn:
        rows = list_keys(conn)
    table = Table("name", "created", "revoked")
    for r in rows:
        table.add_row(r["name"], f"{r['created_at']:%Y-%m-%d %H:%M}",
                      f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(name: str) -> None:
    """Revoke the staff key called NAME."""
    from yizhan.keys import revoke_key

    with _engine().begin() as conn:
        revoke_key(conn, name)
    out.print(f"key {name} revoked")


# -- coverage, map, report -----------------------------------------------------------------------------------
@app.command("coverage")
def coverage(
    area: AreaOpt = None,
    radius: Annotated[float | None, typer.Option(help="Service radius in metres (default: YIZHAN_RADIUS_M)")] = None,
    mode: Annotated[str, typer.Option(help="straight (line) or network (along the streets)")] = "straight",
    profile: Annotated[str, typer.Option(help="Street network for --mode network: walk or bike")] = "walk",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Analyse 1 km coverage of demand by active stations; store the run and print its summary."""
    from yizhan.coverage.analysis import run_coverage

    with _status("coverage") as say:
        summary = run_coverage(_engine(), area=area, radius_m=radius or get_settings().radius_m, mode=mode,
                               profile=profile, progress=say, settings=get_settings())
    summary.pop("params", None)
    _show(summary, as_json)


@candidates_app.command("import")
def candidates_import(
    file: Annotated[Path | None, typer.Argument(help="CSV, XLSX or GeoJSON: id, name, lon, lat[, host_type, "
                                                     "address]")] = None,
    osm: Annotated[Path | None, typer.Option(help="Take the host premises of this .osm/.osm.pbf extract")] = None,
    area: AreaOpt = None,
    coord: CoordOpt = "wgs84",
) -> None:
    """Store candidate sites of an area (insert or update by id; one transaction). From an extract only the
    premises inside the area are taken; a file's rows must all lie inside it."""
    from yizhan.areas import resolve_area
    from yizhan.siting.candidates import (
        candidate_counts,
        candidates_from_extract,
        candidates_from_file,
        filter_candidates,
        store_candidates,
    )

    if (file is None) == (osm is None):
        raise typer.BadParameter("give a candidates FILE or --osm EXTRACT (one of them)")
    with _engine().begin() as conn:
        info = resolve_area(conn, area)
        if osm is not None:
            cands, _ = filter_candidates(candidates_from_extract(osm), info)
            done = store_candidates(conn, info, cands, source=f"{osm.name} (© OpenStreetMap contributors)")
        elif file is not None:
            done = store_candidates(conn, info, candidates_from_file(file, coord=coord), source=Path(file).name)
        counts = candidate_counts(conn, info.id)
    out.print(f"{done['rows']} candidate sites stored in {info.name} ({done['inserted']} new, {done['updated']} "
              f"updated); the area now has {sum(counts.values())}: "
              + ", ".join(f"{k} {v}" for k, v in counts.items()))


@candidates_app.command("list")
def candidates_list(area: AreaOpt = None,
                    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False) -> None:
    """Stored candidate sites of an area by host type."""
    from yizhan.areas import resolve_area
    from yizhan.siting.candidates import candidate_counts

    with _engine().connect() as conn:
        info = resolve_area(conn, area)
        _show({"area": info.name, **candidate_counts(conn, info.id)}, as_json)


@app.command("recommend")
def recommend_cmd(
    k: Annotated[int | None, typer.Option("--k", help="How many new sites to choose (maximal covering)")] = None,
    target: Annotated[float | None, typer.Option(help="Covered share to reach with the fewest sites, e.g. 0.95")]
    = None,
    evaluate: Annotated[Path | None, typer.Option(help="Evaluate these proposed sites (CSV/XLSX/GeoJSON: id, "
                                                       "name, lon, lat) instead of choosing")] = None,
    area: AreaOpt = None,
    mode: Annotated[str, typer.Option(help="straight (line) or network (along the streets)")] = "straight",
    profile: Annotated[str, typer.Option(help="Street network for --mode network: walk or bike")] = "walk",
    radius: Annotated[float | None, typer.Option(help="Service radius in metres (default: YIZHAN_RADIUS_M)")] = None,
    candidates: Annotated[Path | None, typer.Option(help="Use the candidate sites of this file instead of the "
                                                         "area's stored ones")] = None,
    exclude_host: Annotated[list[str] | None, typer.Option("--exclude-host", help="Leave out a host type "
                                                           "(repeatable), e.g. bank")] = None,
    no_go: Annotated[Path | None, typer.Option(help="Polygons (GeoJSON/GPKG) where no station may go")] = None,
    coord: CoordOpt = "wgs84",
    time_limit: Annotated[float, typer.Option(help="Seconds for the exact solver (the local search always "
                                                   "answers)")] = 60.0,
    geojson: Annotated[Path | None, typer.Option(help="Also write the sites and the remaining gaps as GeoJSON")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Where to open the next stations: the best K sites, the fewest sites for a target share, or how good a
    proposed list is. Existing active stations stay; the run is stored."""
    from yizhan.siting.candidates import candidates_from_file, no_go_from_file
    from yizhan.siting.recommend import recommend

    with _status("recommend") as say:
        result = recommend(
            _engine(), area=area, k=k, target=target, mode=mode, profile=profile,
            sites=candidates_from_file(evaluate, coord=coord) if evaluate is not None else None,
            radius_m=radius or get_settings().radius_m,
            candidates=candidates_from_file(candidates, coord=coord) if candidates is not None else None,
            exclude_host_types=exclude_host, no_go=no_go_from_file(no_go) if no_go is not None else None,
            time_limit_s=time_limit, progress=say, settings=get_settings())
    result.pop("params", None)
    if geojson is not None:
        from yizhan.siting.runs import recommendation_geojson

        with _engine().connect() as conn:
            doc = recommendation_geojson(conn, result["run_id"])
        geojson.parent.mkdir(parents=True, exist_ok=True)
        geojson.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        err.print(f"sites and remaining gaps written to {geojson}")
    if as_json:
        _show(result, True)
        return
    sites = result["sites"]
    _show({k: v for k, v in result.items() if k != "sites"}, False)
    table = Table("rank", "id", "name", "host type", "lon", "lat", "newly covered", "covered share after")
    for s in sites:
        table.add_row(str(s["rank"]), s["id"], s["name"], s["host_type"], f"{s['lon']:.6f}", f"{s['lat']:.6f}",
                      f"{s['gain']:.1f}", f"{s['covered_share_after']:.1%}")
    out.print(table)


@app.command("map")
def map_cmd(
    run: Annotated[int | None, typer.Option(help="Run id (default: the latest)")] = None,
    area: AreaOpt = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="HTML file (default OUT_DIR/map_run<ID>.html)")] = None,
    recommendation: Annotated[int | None, typer.Option(help="Map this recommendation run instead")] = None,
) -> None:
    """Write the planner's map of a run or a recommendation (opens offline; map tiles need the network)."""
    if recommendation is not None:
        from yizhan.maps.folium_map import write_map
        from yizhan.maps.recommend_map import map_for_recommendation
        from yizhan.siting.runs import load_recommendation

        rec = load_recommendation(_engine(), recommendation)
        path = write_map(map_for_recommendation(rec, settings=get_settings()),
                         out_file or get_settings().out_dir / f"map_recommendation{recommendation}.html")
    else:
        path = _write_map(run, area, out_file)
    out.print(f"map written to {path}")


def _write_map(run: int | None, area: str | None, out_file: Path | None) -> Path:
    from yizhan.coverage.runs import load_run
    from yizhan.maps.folium_map import write_map
    from yizhan.maps.run_map import map_for_run

    data = load_run(_engine(), run, area=area)
    path = out_file or get_settings().out_dir / f"map_run{data.summary['run_id']}.html"
    return write_map(map_for_run(data, settings=get_settings()), path)


@app.command("report")
def report(
    run: Annotated[int | None, typer.Option(help="Run id (default: the latest)")] = None,
    area: AreaOpt = None,
    fmt: Annotated[list[str] | None, typer.Option(
        "--format", "-f", help="csv, xlsx, geojson, gpkg, html, pdf or all; repeat the option or separate with "
                               "commas. Default: csv and geojson (as before)")] = None,
    out_path: Annotated[Path | None, typer.Option(
        "--out", "--out-dir", help="Folder for the files (named gaps_run<ID>.* and report_run<ID>.*), or the file "
                                   "itself when one format is asked and it ends in that extension (default: OUT_DIR)"
    )] = None,
    osm: Annotated[Path | None, typer.Option(
        help="OpenStreetMap extract (.osm/.osm.pbf) of the area: name the street next to each gap")] = None,
) -> None:
    """Write the gap report of a run: CSV and XLSX for Excel, GeoJSON and GeoPackage for GIS, and a printable
    one-page summary (HTML, PDF) with a map, the headline figures, the top gaps and the units."""
    from yizhan.reports.run_report import load_report
    from yizhan.reports.writer import parse_formats, write_report

    formats = parse_formats(fmt)
    streets = None
    if osm is not None:
        from yizhan.geo.osm import named_streets_from_extract

        streets = named_streets_from_extract(osm)
    data = load_report(_engine(), run, area=area, streets=streets, streets_source=osm.name if osm else None,
                       timezone=get_settings().timezone)
    paths = write_report(data, out_path or get_settings().out_dir, formats)
    for kind, p in paths.items():
        out.print(f"{kind}: {p}")


# -- API -----------------------------------------------------------------------------------------------------
@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes sharing the port (each has its own "
                                         "database pools); 2 uses both cores of a 2-core machine")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request (costs CPU under load)")] = True,
) -> None:
    """Serve the HTTP API (docs at /docs) until Ctrl-C."""
    _serve(host, port, workers=workers, access_log=access_log)


def _serve(host: str, port: int, *, workers: int = 1, access_log: bool = True) -> None:
    import uvicorn

    from yizhan.api import create_app

    _engine()  # start the database first, so errors show here and not on the first request
    # uvicorn picks uvloop and httptools (dependencies) when they are installed; uvloop also sets TCP_NODELAY on
    # every connection, which the plain asyncio loop does not do for the sockets of --workers children (each
    # keep-alive answer then waits ~40 ms for a delayed ACK)
    if workers > 1:
        uvicorn.run("yizhan.api:create_app", factory=True, host=host, port=port, workers=workers, log_level="info",
                    access_log=access_log)
    else:
        uvicorn.run(create_app(get_settings()), host=host, port=port, log_level="info", access_log=access_log)


# -- demo ----------------------------------------------------------------------------------------------------
@app.command("demo")
def demo(
    osm: Annotated[Path | None, typer.Option(help="OpenStreetMap extract (.osm or .osm.pbf) of the demo area "
                                             "(default: the Wudaokou extract shipped with yizhan; no download)")
                   ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic stations and demand")] = 7,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after writing the files")] = False,
    host: Annotated[str, typer.Option(help="Interface for the API")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the API")] = 8000,
) -> None:
    """The whole job on a demo area: database, sample data, import, coverage, map, gap report, new sites, API.

    演示：示例区域、导入、覆盖分析、地图、盲区报告、新站点推荐，然后启动 API（--no-serve 则只写文件）。"""
    from yizhan.demo import run_demo

    result = run_demo(osm, seed=seed, say=lambda m: err.print(f"[dim]·[/] {m}"), settings=get_settings())
    table = Table(title="yizhan demo 演示", show_header=False)
    for k, v in result.figures.items():
        table.add_row(k, v)
    out.print(table)
    out.print("写入的文件 / files written:")
    for label, path in result.files.items():
        out.print(f"  {label}: {path}", soft_wrap=True, markup=False, highlight=False)
    out.print(result.note, soft_wrap=True, markup=False)
    if no_serve:
        out.print("地图可直接用浏览器打开 / open the maps in a browser straight from disk. 之后启动 API / to serve "
                  "the map and the API later: `./run yizhan serve` (or `yizhan serve`), then /map and /docs. "
                  "Staff endpoints need a key: `./run yizhan keys create NAME`.", soft_wrap=True, markup=False)
        return
    if get_settings().staff_key is None:
        os.environ["YIZHAN_STAFF_KEY"] = secrets.token_urlsafe(18)
        get_settings.cache_clear()
        key = f"{get_settings().staff_key.get_secret_value()} (valid while this server runs)"  # type: ignore[union-attr]
    else:
        key = "the YIZHAN_STAFF_KEY you set / 您设置的 YIZHAN_STAFF_KEY"
    url = f"http://{host}:{port}"
    lon, lat = result.centre
    served = Table(title="API", show_header=False)
    served.add_row("地图 / map (served)", f"{url}/map?run={result.run_id}")
    if result.recommendation_id is not None and result.no_sites_reason is None:
        served.add_row("推荐地图 / recommendation map", f"{url}/map?recommendation={result.recommendation_id}")
    served.add_row("最近驿站 / nearest stations", f"{url}/stations/nearest?lon={lon}&lat={lat}&k=3")
    served.add_row("API 文档 / API docs", f"{url}/docs")
    served.add_row("员工密钥 / staff key (X-API-Key)", key)
    out.print(served)
    out.print(f"serving on {url} — Ctrl-C to stop / 按 Ctrl-C 停止")
    _serve(host, port)


def main() -> None:
    """Entry point: run the CLI, turning domain errors into a message and an exit code."""
    try:
        app()
    except (DatabaseUnavailable, SetupError) as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(1)
    except YizhanError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
