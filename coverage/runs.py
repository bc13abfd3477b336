"""Coverage runs: analyse an area, store the result with its parameters in PostGIS, load it back.

All measurements are in metres in the area's metric CRS (the UTM zone of its centroid unless set);
everything stored is WGS 84 (lon, lat).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import Connection, Engine, text

from yizhan.areas import AreaInfo, get_area_by_id, resolve_area, sector_units, units_frame
from yizhan.coverage.euclidean import covered_share, nearest_from_arrays
from yizhan.coverage.gaps import gaps_from_cells
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput, NotFound
from yizhan.settings import Settings, get_settings
from yizhan.stations.registry import stations_frame

MODES = ("straight", "network")
NETWORK_LIMIT_FACTOR = 3.0
UNASSIGNED = "（未划入单元）unassigned"
Progress = Callable[[str], None]


@dataclass
class RunData:
    """A stored run: summary figures and its layers, all GeoDataFrames in EPSG:4326."""

    summary: dict[str, Any]
    area: AreaInfo
    stations: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    params: dict[str, Any] = field(default_factory=dict)
    covered_geom: Any = None  # the area within reach (discs or network service areas), EPSG:4326, or None
    unit_polygons: gpd.GeoDataFrame | None = None  # the area's units (or its sectors), EPSG:4326
    unit_table: pd.DataFrame | None = None  # ``units_table`` of the run


def cells_frame(conn: Connection, area_id: int) -> gpd.GeoDataFrame:
    """The area's demand cells (``cell_key``, ``weight``, Polygon in EPSG:4326), ordered by key."""
    sql = "SELECT cell_key, weight, geom FROM demand_cells WHERE area_id = :a ORDER BY cell_key"
    df = gpd.read_postgis(text(sql), conn, geom_col="geom", crs=SRID, params={"a": area_id})
    return df.rename_geometry("geometry")


def multi_polygon(g: Any) -> MultiPolygon:
    """A Polygon as a one-part MultiPolygon; anything else unchanged."""
    return MultiPolygon([g]) if isinstance(g, Polygon) else g


def polygonal(g: Any) -> MultiPolygon | None:
    """The polygon parts of a geometry (an intersection may add stray lines or points), or None if there are none."""
    if g is None or g.is_empty:
        return None
    parts = [p for p in shapely.get_parts(g) if isinstance(p, Polygon | MultiPolygon) and not p.is_empty]
    polys = [q for p in parts for q in (p.geoms if isinstance(p, MultiPolygon) else [p])]
    return MultiPolygon(polys) if polys else None


@dataclass
class CellCoverage:
    """Per demand cell: the nearest station (index into the active stations, -1 for none), the distance to it
    in the run's metric (metres; network or straight line), covered or not, and the straight-line figures."""

    station: np.ndarray
    distance_m: np.ndarray
    covered: np.ndarray
    straight_m: np.ndarray
    covered_straight: np.ndarray
    covered_geom: Any = None  # covered area in the area CRS (discs or network service areas), or None


def _straight(cells_xy: np.ndarray, st_xy: np.ndarray, radius_m: float, boundary_m: Any) -> CellCoverage:
    res = nearest_from_arrays(cells_xy, st_xy, radius_m)
    geom = None
    if len(st_xy):
        geom = shapely.union_all(shapely.buffer(shapely.points(st_xy), radius_m, quad_segs=16))
        if boundary_m is not None:
            geom = geom.intersection(boundary_m)
    return CellCoverage(res.station, res.distance_m, res.covered, res.distance_m, res.covered, geom)


def _network(info: AreaInfo, profile: str, cells_xy: np.ndarray, st_xy: np.ndarray, radius_m: float,
             params: dict[str, Any], say: Progress, settings: Settings,
             station_names: list[str] | None = None) -> CellCoverage:
    """Coverage along the area's street graph: one multi-source Dijkstra from all stations (metres)."""
    from yizhan.coverage.network import network_nearest, service_areas, snap_points
    from yizhan.coverage.streets import load_area_graph

    graph = load_area_graph(info, profile, settings)
    say(f"{profile} network: {graph.n_nodes} nodes, {graph.n_edges} edges; snapping stations and cells")
    st_snap = snap_points(graph, st_xy.reshape(-1, 2), max_snap_m=settings.max_snap_m)
    cell_snap = snap_points(graph, cells_xy, max_snap_m=settings.max_snap_m)
    # search beyond the radius so each gap learns how far its nearest station really is along the streets
    limit = radius_m * NETWORK_LIMIT_FACTOR
    # door to door: the legs from the cell centre and from the station to their nearest streets count too, so a
    # network distance is never shorter than the straight line
    res = network_nearest(graph, st_snap, cell_snap, radius_m=radius_m, limit_m=limit, include_access=True)
    straight = nearest_from_arrays(cells_xy, st_xy, radius_m)
    say("service areas from the reached streets")
    _, merged = service_areas(graph, st_snap, res.node_dist, res.node_station, radius_m=radius_m,
                              include_access=True)
    params.update({
        "distance": f"along the {profile} street network, metres door to door (legs to the nearest street "
                    "included)",
        "profile": profile, "graph_nodes": graph.n_nodes, "graph_edges": graph.n_edges, "search_limit_m": limit,
        "max_snap_m": settings.max_snap_m, "stations_off_network": int(st_snap.too_far.sum()),
        "cells_off_network": int(cell_snap.too_far.sum())})
    if st_snap.too_far.any():
        far = [f"{station_names[i] if station_names else i} ({st_snap.offstreet_m[i]:.0f} m)"
               for i in np.flatnonzero(st_snap.too_far)[:100]]
        params["stations_off_network_list"] = far
        say(f"warning: {len(far)} station(s) more than {settings.max_snap_m:g} m from any {profile} street serve "
            f"nobody along the network: {', '.join(far[:10])}")
    return CellCoverage(res.station, res.distance_m, res.covered, straight.distance_m, straight.covered,
                        None if merged is None or merged.is_empty else merged)


def run_coverage(engine: Engine, *, area: str | None = None, radius_m: float = 1000.0, mode: str = "straight",
                 profile: str = "walk", progress: Progress | None = None,
                 settings: Settings | None = None) -> dict[str, Any]:
    """Analyse coverage of an area's demand by its active stations within ``radius_m`` metres and store the run.

    ``mode`` "straight" measures straight lines in the area's metric CRS; "network" measures along the area's
    ``profile`` ("walk"/"bike") street network (built with ``yizhan network build``). Returns ``summary_of``.
    """
    if mode not in MODES:
        raise InvalidInput(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    if not np.isfinite(radius_m) or not 0 < radius_m <= 50_000:
        raise InvalidInput(f"radius {radius_m} m: expected a positive number of metres up to 50000")
    say = progress or (lambda _msg: None)
    with engine.begin() as conn:
        info = resolve_area(conn, area)
        say(f"loading stations and demand of {info.name}")
        stations = stations_frame(conn, info.id)
        active = stations[stations["status"] == "active"]
        cells = cells_frame(conn, info.id)
        if cells.empty:
            raise InvalidInput(f"area {info.name!r} has no demand cells: import demand first (`yizhan demand import`)")
        units = units_frame(conn, info.id)
        crs = info.crs_epsg
        cells_m = cells.to_crs(crs)
        st_m = active.to_crs(crs)
        boundary_m = (gpd.GeoSeries([info.boundary], crs=SRID).to_crs(crs).iloc[0]
                      if info.boundary is not None else None)
        centre = cells_m.geometry.centroid
        cells_xy = np.column_stack([centre.x, centre.y])
        st_xy = np.column_stack([st_m.geometry.x, st_m.geometry.y])
        say(f"{mode} coverage of {len(cells)} cells by {len(active)} active stations within {radius_m:g} m")
        params: dict[str, Any] = {"radius_m": radius_m, "mode": mode, "crs_epsg": crs,
                                  "cell_size_m": _cell_size(conn, info.id)}
        if mode == "network":
            cov = _network(info, profile, cells_xy, st_xy, radius_m, params, say, settings or get_settings(),
                           list(active["external_id"]))
            if cov.covered_geom is not None and boundary_m is not None:
                cov.covered_geom = cov.covered_geom.intersection(boundary_m)
        else:
            cov = _straight(cells_xy, st_xy, radius_m, boundary_m)
            params["distance"] = "straight line, metres"
        weights = cells["weight"].to_numpy(float)
        total, done, share = covered_share(weights, cov.covered)
        done_straight = covered_share(weights, cov.covered_straight)[1]
        say("merging uncovered cells into gaps")
        gaps = gaps_from_cells(cells_m, uncovered=~cov.covered, weights=weights)
        reach = polygonal(cov.covered_geom)
        covered_area = float(reach.area) if reach is not None else 0.0
        covered_geom = gpd.GeoSeries([reach], crs=crs).to_crs(SRID).iloc[0] if reach is not None else None
        station_ids = active["station_id"].to_numpy()
        run_id = conn.execute(text(f"""
            INSERT INTO coverage_runs (area_id, mode, radius_m, params, stations, cells, demand_total, demand_covered,
                                       covered_share, covered_area_m2, gaps, covered_geom, profile,
                                       demand_covered_straight)
            VALUES (:a, :mode, :r, CAST(:params AS jsonb), :st, :cells, :tot, :done, :share, :carea, :gaps,
                    ST_Multi(ST_GeomFromText(:cg, {SRID})), :profile, :done_straight)
            RETURNING id"""), {
            "a": info.id, "mode": mode, "r": radius_m, "params": json.dumps(params), "st": len(active),
            "cells": len(cells), "tot": total, "done": done, "share": share, "carea": covered_area,
            "gaps": len(gaps), "cg": covered_geom.wkt if covered_geom is not None else None,
            "profile": profile if mode == "network" else None, "done_straight": done_straight}).scalar_one()
        say(f"storing run {run_id}")
        nearest_id = np.full(len(cells), -1, dtype=np.int64)
        found = cov.station >= 0
        nearest_id[found] = station_ids[cov.station[found]]
        _copy_cells(conn, run_id, cells, cov.covered, nearest_id, cov.distance_m, cov.straight_m)
        _store_gaps(conn, run_id, gaps, cov, nearest_id)
        _store_units(conn, run_id, units if len(units) or info.boundary is None else sector_units(info.boundary),
                     crs, cells_xy, weights, cov, st_xy)
        return summary_of(conn, run_id)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _store_gaps(conn: Connection, run_id: int, gaps: gpd.GeoDataFrame, cov: CellCoverage,
                nearest_id: np.ndarray) -> None:
    """Each gap's nearest station is that of its cell closest (in the run's metric) to any station."""
    if not len(gaps):
        return
    gaps4326 = gaps.to_crs(SRID)
    rows = []
    for i, r in enumerate(gaps4326.itertuples()):
        members = np.asarray(r.members, dtype=np.int64)
        best = members[np.argmin(cov.distance_m[members])]
        rows.append({"run": run_id, "rank": int(r.rank), "demand": r.demand, "area": r.area_m2, "cells": int(r.cells),
                     "sid": int(nearest_id[best]) if nearest_id[best] >= 0 else None,
                     "dist": _finite(cov.distance_m[best]), "sdist": _finite(cov.straight_m[members].min()),
                     "g": multi_polygon(r.geometry).wkt, "c": gaps4326.geometry.iloc[i].representative_point().wkt})
    conn.execute(text(f"""
        INSERT INTO gaps (run_id, rank, demand, area_m2, cells, nearest_station_id, nearest_distance_m,
                          straight_distance_m, geom, centroid)
        VALUES (:run, :rank, :demand, :area, :cells, :sid, :dist, :sdist, ST_Multi(ST_GeomFromText(:g, {SRID})),
                ST_GeomFromText(:c, {SRID}))"""), rows)


def _store_units(conn: Connection, run_id: int, units: gpd.GeoDataFrame, crs: int, cells_xy: np.ndarray,
                 weights: np.ndarray, cov: CellCoverage, st_xy: np.ndarray) -> None:
    """Stations, demand and covered demand (run metric and straight line) per unit. A cell counts in the unit
    holding its centre (the first one, on a shared border); cells in no unit go to an ``UNASSIGNED`` row."""
    if not len(units):
        return
    polys = units.to_crs(crs).geometry.to_numpy()
    n = len(polys)
    owner = _first_owner(polys, cells_xy, n)
    st_owner = _first_owner(polys, st_xy, n)
    names = [*units["name"], UNASSIGNED]
    demand = np.bincount(owner, weights=weights, minlength=n + 1)
    covered = np.bincount(owner, weights=weights * cov.covered, minlength=n + 1)
    straight = np.bincount(owner, weights=weights * cov.covered_straight, minlength=n + 1)
    n_st = np.bincount(st_owner, minlength=n + 1)
    rows = [{"r": run_id, "n": names[i], "s": int(n_st[i]), "d": float(demand[i]), "c": float(covered[i]),
             "cs": float(straight[i])} for i in range(n + 1) if i < n or demand[i] > 0 or n_st[i] > 0]
    conn.execute(text("INSERT INTO run_units (run_id, name, stations, demand, demand_covered, demand_covered_straight) "
                      "VALUES (:r, :n, :s, :d, :c, :cs)"), rows)


def _first_owner(polys: np.ndarray, xy: np.ndarray, n: int) -> np.ndarray:
    """Index of the first polygon covering each point; ``n`` for points in none."""
    owner = np.full(len(xy), n, dtype=np.int64)
    if len(xy):
        poly_i, pt_i = shapely.STRtree(shapely.points(xy.reshape(-1, 2))).query(polys, predicate="covers")
        order = np.lexsort((poly_i, pt_i))
        pt_i, poly_i = pt_i[order], poly_i[order]
        first = np.ones(len(pt_i), dtype=bool)
        first[1:] = pt_i[1:] != pt_i[:-1]
        owner[pt_i[first]] = poly_i[first]
    return owner


def units_table(conn: Connection, run_id: int) -> pd.DataFrame:
    """Per administrative unit of a run: stations, demand, covered share in the run's metric and straight line."""
    df = pd.read_sql(text("SELECT name, stations, demand, demand_covered, demand_covered_straight FROM run_units "
                          "WHERE run_id = :r ORDER BY name"), conn, params={"r": run_id})
    with np.errstate(invalid="ignore", divide="ignore"):
        df["covered_share"] = np.where(df["demand"] > 0, df["demand_covered"] / df["demand"], 0.0)
        df["covered_share_straight"] = np.where(df["demand"] > 0, df["demand_covered_straight"] / df["demand"], 0.0)
    return df


def _cell_size(conn: Connection, area_id: int) -> float | None:
    return conn.execute(text("SELECT max(cell_size_m) FROM demand_cells WHERE area_id = :a"), {"a": area_id}).scalar()


def _copy_cells(conn: Connection, run_id: int, cells: gpd.GeoDataFrame, covered: np.ndarray, nearest: np.ndarray,
                dist: np.ndarray, straight: np.ndarray) -> None:
    buf = io.StringIO()
    pd.DataFrame({"run": run_id, "key": cells["cell_key"], "w": cells["weight"], "cov": covered,
                  "sid": [str(int(s)) if s >= 0 else "\\N" for s in nearest],
                  "d": [repr(float(d)) if np.isfinite(d) else "\\N" for d in dist],
                  "sd": [repr(float(d)) if np.isfinite(d) else "\\N" for d in straight],
                  "g": shapely.to_wkt(cells.geometry.to_numpy(), rounding_precision=8)}
                 ).to_csv(buf, sep="\t", header=False, index=False)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute("CREATE TEMP TABLE _cells_in (run_id int, cell_key text, weight float8, covered bool, "
                    "nearest_station_id int, distance_m float8, straight_distance_m float8, wkt text) ON COMMIT DROP")
        with cur.copy("COPY _cells_in FROM STDIN") as cp:
            cp.write(buf.getvalue())
        cur.execute(f"INSERT INTO run_cells (run_id, cell_key, weight, covered, nearest_station_id, distance_m, "
                    f"straight_distance_m, geom) SELECT run_id, cell_key, weight, covered, nearest_station_id, "
                    f"distance_m, straight_distance_m, ST_GeomFromText(wkt, {SRID}) FROM _cells_in")
        cur.execute("DROP TABLE _cells_in")


def summary_of(conn: Connection, run_id: int) -> dict[str, Any]:
    """Headline figures of a stored run: ``run_id, area, mode, radius_m, stations, cells, demand_total,
    demand_covered, covered_share (0–1), covered_area_km2, gaps, created_at`` (ISO); network runs add
    ``profile`` and ``covered_share_straight`` (the same stations and demand in a straight line)."""
    r = conn.execute(text("SELECT r.*, a.name AS area FROM coverage_runs r JOIN areas a ON a.id = r.area_id "
                          "WHERE r.id = :id"), {"id": run_id}).one_or_none()
    if r is None:
        raise NotFound(f"no coverage run with id {run_id}")
    created: datetime = r.created_at
    out: dict[str, Any] = {
        "run_id": r.id, "area": r.area, "mode": r.mode, "radius_m": r.radius_m, "stations": r.stations,
        "cells": r.cells, "demand_total": round(r.demand_total, 3), "demand_covered": round(r.demand_covered, 3),
        "covered_share": round(r.covered_share, 6), "covered_area_km2": round(r.covered_area_m2 / 1e6, 4),
        "gaps": r.gaps, "created_at": created.isoformat(), "params": r.params}
    if r.mode == "network":
        out["profile"] = r.profile
        out["covered_share_straight"] = round(r.demand_covered_straight / r.demand_total, 6) if r.demand_total else 0.0
    return out


def latest_run_id(conn: Connection, *, area: str | None = None) -> int:
    """The newest run (of ``area`` when given)."""
    run_id = conn.execute(text("SELECT r.id FROM coverage_runs r JOIN areas a ON a.id = r.area_id "
                               "WHERE CAST(:area AS text) IS NULL OR a.name = :area ORDER BY r.id DESC LIMIT 1"),
                          {"area": area}).scalar()
    if run_id is None:
        raise NotFound("no coverage run yet: run `yizhan coverage` first" + (f" for area {area!r}" if area else ""))
    return int(run_id)


def gaps_frame(conn: Connection, run_id: int) -> gpd.GeoDataFrame:
    """The gaps of a run in EPSG:4326, by rank, with the nearest station's id and name."""
    df = gpd.read_postgis(text("""
        SELECT g.rank, g.demand, g.area_m2, g.cells, s.external_id AS nearest_station_id,
               s.name AS nearest_station, g.nearest_distance_m, g.straight_distance_m,
               ST_X(g.centroid) AS lon, ST_Y(g.centroid) AS lat, g.geom
        FROM gaps g LEFT JOIN stations s ON s.id = g.nearest_station_id WHERE g.run_id = :r ORDER BY g.rank"""),
        conn, geom_col="geom", crs=SRID, params={"r": run_id})
    return df.rename_geometry("geometry")


def load_run(engine: Engine, run_id: int | None = None, *, area: str | None = None) -> RunData:
    """A stored run with its layers (stations as they are now, the cells and gaps as analysed)."""
    with engine.connect() as conn:
        rid = run_id if run_id is not None else latest_run_id(conn, area=area)
        summary = summary_of(conn, rid)
        area_id = conn.execute(text("SELECT area_id FROM coverage_runs WHERE id = :r"), {"r": rid}).scalar_one()
        info = get_area_by_id(conn, area_id)
        stations = stations_frame(conn, area_id)
        cells = gpd.read_postgis(text("SELECT cell_key, weight, covered, distance_m, straight_distance_m, geom "
                                      "FROM run_cells "
                                      "WHERE run_id = :r ORDER BY cell_key"), conn, geom_col="geom", crs=SRID,
                                 params={"r": rid}).rename_geometry("geometry")
        gaps = gaps_frame(conn, rid)
        wkb = conn.execute(text("SELECT ST_AsBinary(covered_geom) FROM coverage_runs WHERE id = :r"),
                           {"r": rid}).scalar()
        polygons = units_frame(conn, area_id)
        if not len(polygons) and info.boundary is not None:
            polygons = sector_units(info.boundary)  # what run_coverage used
        table = units_table(conn, rid)
    return RunData(summary, info, stations, cells, gaps, summary.pop("params"),
                   shapely.from_wkb(bytes(wkb)) if wkb is not None else None, polygons, table)
