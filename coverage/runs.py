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

from yizhan.areas import AreaInfo, get_area_by_id, resolve_area
from yizhan.coverage.euclidean import covered_share, nearest_from_arrays
from yizhan.coverage.gaps import gaps_from_cells
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput, NotFound
from yizhan.stations.registry import stations_frame

MODES = ("straight",)
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


def _cells_frame(conn: Connection, area_id: int) -> gpd.GeoDataFrame:
    sql = "SELECT cell_key, weight, geom FROM demand_cells WHERE area_id = :a ORDER BY cell_key"
    df = gpd.read_postgis(text(sql), conn, geom_col="geom", crs=SRID, params={"a": area_id})
    return df.rename_geometry("geometry")


def _multi(g: Any) -> MultiPolygon:
    return MultiPolygon([g]) if isinstance(g, Polygon) else g


def run_coverage(engine: Engine, *, area: str | None = None, radius_m: float = 1000.0, mode: str = "straight",
                 progress: Progress | None = None) -> dict[str, Any]:
    """Analyse straight-line coverage of an area's demand by its active stations and store the run.

    Returns the run's summary (see ``summary_of``).
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
        cells = _cells_frame(conn, info.id)
        if cells.empty:
            raise InvalidInput(f"area {info.name!r} has no demand cells: import demand first (`yizhan demand import`)")
        crs = info.crs_epsg
        cells_m = cells.to_crs(crs)
        st_m = active.to_crs(crs)
        say(f"nearest station for {len(cells)} cells among {len(active)} active stations")
        centre = cells_m.geometry.centroid
        res = nearest_from_arrays(np.column_stack([centre.x, centre.y]),
                                  np.column_stack([st_m.geometry.x, st_m.geometry.y]), radius_m)
        weights = cells["weight"].to_numpy(float)
        total, done, share = covered_share(weights, res.covered)
        say("merging uncovered cells into gaps")
        gaps = gaps_from_cells(cells_m, uncovered=~res.covered, weights=weights)
        covered_geom = None
        covered_area = 0.0
        if len(st_m):
            disc = shapely.union_all(shapely.buffer(st_m.geometry.to_numpy(), radius_m, quad_segs=16))
            if info.boundary is not None:
                disc = disc.intersection(gpd.GeoSeries([info.boundary], crs=SRID).to_crs(crs).iloc[0])
            covered_area = float(disc.area)
            covered_geom = gpd.GeoSeries([disc], crs=crs).to_crs(SRID).iloc[0] if not disc.is_empty else None
        station_ids = active["station_id"].to_numpy()
        run_id = conn.execute(text(f"""
            INSERT INTO coverage_runs (area_id, mode, radius_m, params, stations, cells, demand_total, demand_covered,
                                       covered_share, covered_area_m2, gaps, covered_geom)
            VALUES (:a, :mode, :r, CAST(:params AS jsonb), :st, :cells, :tot, :done, :share, :carea, :gaps,
                    ST_Multi(ST_GeomFromText(:cg, {SRID})))
            RETURNING id"""), {
            "a": info.id, "mode": mode, "r": radius_m,
            "params": json.dumps({"radius_m": radius_m, "mode": mode, "crs_epsg": crs,
                                  "cell_size_m": _cell_size(conn, info.id), "distance": "straight line, metres"}),
            "st": len(active), "cells": len(cells), "tot": total, "done": done, "share": share,
            "carea": covered_area, "gaps": len(gaps),
            "cg": covered_geom.wkt if covered_geom is not None else None}).scalar_one()
        say(f"storing run {run_id}")
        nearest_id = np.full(len(cells), -1, dtype=np.int64)
        found = res.station >= 0
        nearest_id[found] = station_ids[res.station[found]]
        _copy_cells(conn, run_id, cells, res.covered, nearest_id, res.distance_m)
        if len(gaps):
            gaps4326 = gaps.to_crs(SRID)
            cent_m = gaps.geometry.centroid
            g_near = nearest_from_arrays(np.column_stack([cent_m.x, cent_m.y]),
                                         np.column_stack([st_m.geometry.x, st_m.geometry.y]), radius_m)
            conn.execute(text(f"""
                INSERT INTO gaps (run_id, rank, demand, area_m2, cells, nearest_station_id, nearest_distance_m,
                                  geom, centroid)
                VALUES (:run, :rank, :demand, :area, :cells, :sid, :dist, ST_Multi(ST_GeomFromText(:g, {SRID})),
                        ST_GeomFromText(:c, {SRID}))"""), [
                {"run": run_id, "rank": int(r.rank), "demand": r.demand, "area": r.area_m2, "cells": int(r.cells),
                 "sid": int(station_ids[g_near.station[i]]) if g_near.station[i] >= 0 else None,
                 "dist": float(g_near.distance_m[i]) if np.isfinite(g_near.distance_m[i]) else None,
                 "g": _multi(r.geometry).wkt, "c": gaps4326.geometry.iloc[i].representative_point().wkt}
                for i, r in enumerate(gaps4326.itertuples())])
        return summary_of(conn, run_id)


def _cell_size(conn: Connection, area_id: int) -> float | None:
    return conn.execute(text("SELECT max(cell_size_m) FROM demand_cells WHERE area_id = :a"), {"a": area_id}).scalar()


def _copy_cells(conn: Connection, run_id: int, cells: gpd.GeoDataFrame, covered: np.ndarray, nearest: np.ndarray,
                dist: np.ndarray) -> None:
    buf = io.StringIO()
    pd.DataFrame({"run": run_id, "key": cells["cell_key"], "w": cells["weight"], "cov": covered,
                  "sid": [str(int(s)) if s >= 0 else "\\N" for s in nearest],
                  "d": [repr(float(d)) if np.isfinite(d) else "\\N" for d in dist],
                  "g": shapely.to_wkt(cells.geometry.to_numpy(), rounding_precision=8)}
                 ).to_csv(buf, sep="\t", header=False, index=False)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute("CREATE TEMP TABLE _cells_in (run_id int, cell_key text, weight float8, covered bool, "
                    "nearest_station_id int, distance_m float8, wkt text) ON COMMIT DROP")
        with cur.copy("COPY _cells_in FROM STDIN") as cp:
            cp.write(buf.getvalue())
        cur.execute(f"INSERT INTO run_cells (run_id, cell_key, weight, covered, nearest_station_id, distance_m, geom) "
                    f"SELECT run_id, cell_key, weight, covered, nearest_station_id, distance_m, "
                    f"ST_GeomFromText(wkt, {SRID}) FROM _cells_in")
        cur.execute("DROP TABLE _cells_in")


def summary_of(conn: Connection, run_id: int) -> dict[str, Any]:
    """Headline figures of a stored run: ``run_id, area, mode, radius_m, stations, cells, demand_total,
    demand_covered, covered_share (0–1), covered_area_km2, gaps, created_at`` (ISO)."""
    r = conn.execute(text("SELECT r.*, a.name AS area FROM coverage_runs r JOIN areas a ON a.id = r.area_id "
                          "WHERE r.id = :id"), {"id": run_id}).one_or_none()
    if r is None:
        raise NotFound(f"no coverage run with id {run_id}")
    created: datetime = r.created_at
    return {"run_id": r.id, "area": r.area, "mode": r.mode, "radius_m": r.radius_m, "stations": r.stations,
            "cells": r.cells, "demand_total": round(r.demand_total, 3), "demand_covered": round(r.demand_covered, 3),
            "covered_share": round(r.covered_share, 6), "covered_area_km2": round(r.covered_area_m2 / 1e6, 4),
            "gaps": r.gaps, "created_at": created.isoformat(), "params": r.params}


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
               s.name AS nearest_station, g.nearest_distance_m, ST_X(g.centroid) AS lon, ST_Y(g.centroid) AS lat,
               g.geom
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
        cells = gpd.read_postgis(text("SELECT cell_key, weight, covered, distance_m, geom FROM run_cells "
                                      "WHERE run_id = :r ORDER BY cell_key"), conn, geom_col="geom", crs=SRID,
                                 params={"r": rid}).rename_geometry("geometry")
        gaps = gaps_frame(conn, rid)
    return RunData(summary, info, stations, cells, gaps, summary.pop("params"))
