"""Where to open the next stations: recommendation runs over an area's demand, stations and candidate sites.

Three questions, one model (existing active stations fixed, their coverage counted first):

- ``k`` sites: which k candidates newly cover the most demand within the radius (maximal covering, MCLP);
- ``target`` share: the fewest candidates that lift the covered share to the target (set covering, LSCP);
- ``sites``: how much a planner's own list of proposed sites would cover (what-if), against the best
  possible with as many sites.

Distances are metres, straight line in the area's metric CRS or along its street network (the coverage
engine's model, door to door). Results are stored in PostGIS (WGS 84) with their parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Engine, text

from yizhan.areas import AreaInfo, get_area_by_id, resolve_area
from yizhan.coverage.euclidean import nearest_from_arrays
from yizhan.coverage.gaps import gaps_from_cells
from yizhan.coverage.runs import cells_frame, multi_polygon, polygonal
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput, NotFound
from yizhan.settings import Settings, get_settings
from yizhan.siting.candidates import filter_candidates, load_candidates
from yizhan.siting.reach import Pairs, network_reach, straight_reach
from yizhan.siting.solver import CoverageMatrix, Solution, evaluate_sites, solve_lscp, solve_mclp
from yizhan.stations.registry import stations_frame

Progress = Callable[[str], None]
MAX_K = 10_000
PROBLEMS = ("mclp", "lscp", "evaluate")


@dataclass
class _Inputs:
    info: AreaInfo
    cells: gpd.GeoDataFrame  # EPSG:4326, cell_key, weight
    cells_m: gpd.GeoDataFrame  # the same in the area CRS
    weights: np.ndarray
    covered_before: np.ndarray
    cands: gpd.GeoDataFrame  # EPSG:4326: external_id, name, host_type, source
    reach: Pairs  # (cell, candidate, metres)
    params: dict[str, Any]


def _xy(gdf: gpd.GeoDataFrame, crs: int) -> np.ndarray:
    g = gdf.to_crs(crs).geometry
    if len(g) and not (g.geom_type == "Point").all():
        g = g.centroid
    return np.column_stack([g.x.to_numpy(), g.y.to_numpy()]).reshape(-1, 2)


def _prepare(conn: Connection, *, area: str | None, mode: str, profile: str, radius_m: float,
             candidates: gpd.GeoDataFrame | None, exclude_host_types: list[str] | None, no_go: BaseGeometry | None,
             say: Progress, settings: Settings) -> _Inputs:
    info = resolve_area(conn, area)
    cells = cells_frame(conn, info.id)
    if cells.empty:
        raise InvalidInput(f"area {info.name!r} has no demand cells: import demand first (`yizhan demand import`)")
    stations = stations_frame(conn, info.id)
    active = stations[stations["status"] == "active"]
    if candidates is None:
        cands = load_candidates(conn, info.id)
        if cands.empty:
            raise InvalidInput(f"area {info.name!r} has no candidate sites: import some (`yizhan candidates import "
                               "--osm EXTRACT` or a file) or pass a candidates file")
    else:
        cands = candidates.copy()
        if "source" not in cands.columns:
            cands["source"] = "given"
    total = len(cands)
    fixed = cands["_proposed"].to_numpy(bool) if "_proposed" in cands.columns else np.zeros(len(cands), bool)
    pool, removed = filter_candidates(cands[~fixed], info, exclude_host_types=exclude_host_types, no_go=no_go)
    cands = gpd.GeoDataFrame(pd.concat([cands[fixed], pool], ignore_index=True), geometry="geometry", crs=SRID)
    if cands.empty:
        raise InvalidInput(f"no candidate site is left after the filters ({total} given; removed: "
                           + ", ".join(f"{k} {v}" for k, v in removed.items()) + ")")
    crs = info.crs_epsg
    cells_m = cells.to_crs(crs)
    cell_xy = _xy(cells, crs)
    st_xy = _xy(active, crs)
    cand_xy = _xy(cands, crs)
    weights = cells["weight"].to_numpy(float)
    params: dict[str, Any] = {"radius_m": radius_m, "mode": mode, "crs_epsg": crs, "existing_stations": len(active),
                              "candidates_given": total, "candidates_removed": removed,
                              "exclude_host_types": exclude_host_types or [], "no_go": no_go is not None}
    say(f"{mode} reach of {len(cands):,} candidates over {len(cells):,} demand cells within {radius_m:g} m")
    if mode == "network":
        from yizhan.coverage.network import network_nearest, snap_points
        from yizhan.coverage.streets import load_area_graph

        graph = load_area_graph(info, profile, settings)
        cell_snap = snap_points(graph, cell_xy, max_snap_m=settings.max_snap_m)
        st_snap = snap_points(graph, st_xy, max_snap_m=settings.max_snap_m)
        cand_snap = snap_points(graph, cand_xy, max_snap_m=settings.max_snap_m)
        before = network_nearest(graph, st_snap, cell_snap, radius_m=radius_m, include_access=True).covered
        reach = network_reach(graph, cand_snap, cell_snap, radius_m=radius_m, include_access=True, progress=say)
        params.update({"profile": profile, "distance": f"along the {profile} street network, metres door to door",
                       "graph_nodes": graph.n_nodes, "max_snap_m": settings.max_snap_m,
                       "candidates_off_network": int(cand_snap.too_far.sum()),
                       "cells_off_network": int(cell_snap.too_far.sum())})
    else:
        before = nearest_from_arrays(cell_xy, st_xy, radius_m).covered
        reach = straight_reach(cell_xy, cand_xy, radius_m)
        params["distance"] = "straight line, metres"
    return _Inputs(info, cells, cells_m, weights, before, cands, reach, params)


def recommend(engine: Engine, *, area: str | None = None, k: int | None = None, target: float | None = None,
              sites: gpd.GeoDataFrame | None = None, mode: str = "straight", profile: str = "walk",
              radius_m: float = 1000.0, candidates: gpd.GeoDataFrame | None = None,
              exclude_host_types: list[str] | None = None, no_go: BaseGeometry | None = None,
              time_limit_s: float = 60.0, exact: bool = True, progress: Progress | None = None,
              settings: Settings | None = None) -> dict[str, Any]:
    """Recommend sites for new stations in an area and store the run; returns ``recommendation_of``.

    Exactly one of: ``k`` (the k best sites), ``target`` (covered share 0–1 to reach with the fewest sites) or
    ``sites`` (a planner's proposed sites, EPSG:4326 points with ``external_id``/``name``; evaluated, and
    compared with the best ``len(sites)`` sites from the candidate pool when one is stored). ``candidates``
    replaces the area's stored pool; ``exclude_host_types`` and ``no_go`` (EPSG:4326 polygons) filter it.
    ``radius_m`` metres; ``mode`` "straight" or "network" (``profile`` walk/bike streets).
    """
    if sum(x is not None for x in (k, target, sites)) != 1:
        raise InvalidInput("give exactly one of k (number of new sites), target (covered share to reach) or sites "
                           "(proposed sites to evaluate)")
    if mode not in ("straight", "network"):
        raise InvalidInput(f"mode {mode!r}: expected straight or network")
    if profile not in ("walk", "bike"):
        raise InvalidInput(f"profile {profile!r}: expected walk or bike")
    if not (np.isfinite(radius_m) and 0 < radius_m <= 50_000):
        raise InvalidInput(f"radius {radius_m} m: expected a positive number of metres up to 50000")
    if k is not None and not 1 <= k <= MAX_K:
        raise InvalidInput(f"k={k}: expected a whole number of new sites from 1 to {MAX_K}")
    if target is not None and not (np.isfinite(target) and 0 < target <= 1):
        raise InvalidInput(f"target={target}: expected a covered share above 0 and at most 1 (e.g. 0.95)")
    if not (np.isfinite(time_limit_s) and 0 < time_limit_s <= 3600):
        raise InvalidInput(f"time limit {time_limit_s} s: expected 0 to 3600 seconds")
    say = progress or (lambda _m: None)
    cfg = settings or get_settings()
    problem = "mclp" if k is not None else "lscp" if target is not None else "evaluate"
    with engine.begin() as conn:
        if sites is not None:
            if sites.empty:
                raise InvalidInput("sites: the list of proposed sites is empty")
            info = resolve_area(conn, area)
            proposed = sites.copy()
            proposed["source"] = "proposed"
            if "host_type" not in proposed.columns:
                proposed["host_type"] = "other"
            proposed["host_type"] = proposed["host_type"].fillna("other")
            outside = ~info.contains(proposed.geometry.x.to_numpy(), proposed.geometry.y.to_numpy())
            if outside.any():
                raise InvalidInput("sites: " + ", ".join(map(str, proposed["external_id"][outside][:10]))
                                   + " lie outside the area")
            pool = candidates if candidates is not None else load_candidates(conn, info.id)
            if "source" not in pool.columns:
                pool = pool.assign(source="given")
            # the planner's own sites are taken as given; the pool they are compared with keeps the filters
            candidates = gpd.GeoDataFrame(pd.concat([proposed.assign(_proposed=True),
                                                     pool.assign(_proposed=False)], ignore_index=True),
                                          geometry="geometry", crs=SRID)
        inp = _prepare(conn, area=area, mode=mode, profile=profile, radius_m=radius_m, candidates=candidates,
                       exclude_host_types=exclude_host_types, no_go=no_go, say=say, settings=cfg)
        w = inp.weights
        total = float(w.sum())
        before_w = float(w[inp.covered_before].sum())
        cell_i, cand_i, _dist = inp.reach
        cm = CoverageMatrix.from_pairs(cell_i, cand_i, len(inp.cands), w, ~inp.covered_before & (w > 0))
        if problem == "mclp":
            sol = solve_mclp(cm, int(k), time_limit_s=time_limit_s, exact=exact, progress=say)
        elif problem == "lscp":
            required = float(target) * total - before_w
            try:
                sol = solve_lscp(cm, required, time_limit_s=time_limit_s, exact=exact, progress=say)
            except ValueError as exc:
                reach_all = before_w + float(cm.weights.sum())
                raise InvalidInput(f"target {target:.1%} cannot be reached: all {len(inp.cands)} candidates together "
                                   f"cover {reach_all / total:.1%} of the demand ({exc})") from exc
        else:
            mine = np.flatnonzero(inp.cands["_proposed"].to_numpy(bool))
            sol = evaluate_sites(cm, mine, time_limit_s=time_limit_s)
            others = len(inp.cands) - len(mine)
            inp.params["compared_with"] = (
                f"the best {len(mine)} of the proposed and {others} candidate sites (LP or Lagrangian bound)"
                if others else "nothing: no candidate pool, the bound is the proposed sites' own")
        say(f"{sol.method}: objective {sol.objective:.6g}, bound {sol.bound:.6g}, gap {sol.gap:.2%}")
        return _store(conn, inp, problem, sol, k=k, target=target, mode=mode, profile=profile, radius_m=radius_m,
                      total=total, before_w=before_w, cm=cm, time_limit_s=time_limit_s)


def _store(conn: Connection, inp: _Inputs, problem: str, sol: Solution, *, k: int | None, target: float | None,
           mode: str, profile: str, radius_m: float, total: float, before_w: float, cm: CoverageMatrix,
           time_limit_s: float) -> dict[str, Any]:
    covered_after = inp.covered_before.copy()
    a = cm.matrix.tocsc()
    for j in sol.chosen:
        covered_after[cm.rows[a.indices[a.indptr[j]:a.indptr[j + 1]]]] = True
    after_w = float(inp.weights[covered_after].sum())
    params = {**inp.params, "time_limit_s": time_limit_s, "matrix": sol.details, "solve_seconds": sol.seconds}
    n_sites = len(sol.chosen)
    run_id = conn.execute(text("""
        INSERT INTO recommendation_runs (area_id, problem, mode, profile, radius_m, k, target, method, optimal,
            objective, bound, gap, demand_total, demand_covered_before, demand_covered_after, candidates, seconds,
            params)
        VALUES (:a, :p, :mode, :prof, :r, :k, :t, :method, :opt, :obj, :bound, :gap, :tot, :b, :af, :c, :s,
                CAST(:params AS jsonb)) RETURNING id"""), {
        "a": inp.info.id, "p": problem, "mode": mode, "prof": profile if mode == "network" else None, "r": radius_m,
        "k": k if k is not None else n_sites, "t": target, "method": sol.method, "opt": bool(sol.optimal),
        "obj": sol.objective, "bound": sol.bound, "gap": sol.gap, "tot": total, "b": before_w, "af": after_w,
        "c": len(inp.cands), "s": sol.seconds, "params": json.dumps(params, default=float)}).scalar_one()
    cum = before_w + np.cumsum(sol.gains)
    rows = []
    for rank, (j, gain, c) in enumerate(zip(sol.chosen, sol.gains, cum, strict=True), start=1):
        r = inp.cands.iloc[int(j)]
        rows.append({"run": run_id, "rank": rank, "id": str(r["external_id"]), "n": str(r["name"])[:200],
                     "h": str(r["host_type"]), "s": str(r["source"])[:200], "g": float(gain),
                     "share": float(c / total) if total else 0.0, "x": r.geometry.x, "y": r.geometry.y})
    if rows:
        conn.execute(text(f"""
            INSERT INTO recommended_sites (run_id, rank, external_id, name, host_type, source, gain,
                                           covered_share_after, geom)
            VALUES (:run, :rank, :id, :n, :h, :s, :g, :share, ST_SetSRID(ST_MakePoint(:x, :y), {SRID}))"""), rows)
    gaps = gaps_from_cells(inp.cells_m, uncovered=~covered_after & (inp.weights > 0), weights=inp.weights)
    if len(gaps):
        g4326 = gaps.to_crs(SRID)
        conn.execute(text(f"""
            INSERT INTO recommendation_gaps (run_id, rank, demand, area_m2, cells, geom)
            VALUES (:run, :rank, :d, :area, :cells, ST_Multi(ST_GeomFromText(:g, {SRID})))"""),
                     [{"run": run_id, "rank": int(g.rank), "d": float(g.demand), "area": float(g.area_m2),
                       "cells": int(g.cells), "g": multi_polygon(geom).wkt}
                      for g, geom in zip(gaps.itertuples(), g4326.geometry, strict=True)])
    return recommendation_of(conn, run_id)


def recommendation_of(conn: Connection, run_id: int) -> dict[str, Any]:
    """A stored recommendation run: ``run_id, area, problem, mode, radius_m, k, target, covered_share_before,
    covered_share_after`` (0–1), ``objective`` (demand newly covered; LSCP: number of sites), ``bound`` (proven:
    upper for k sites, lower for a target), ``gap`` (relative, 0 = proven optimal), ``optimal``, ``method``,
    ``sites`` (ranked: id, name, host_type, lon, lat WGS 84, ``gain`` = demand newly covered after the sites
    ranked above, ``covered_share_after``), ``remaining_gaps``, ``candidates``, ``seconds``, ``params``."""
    r = conn.execute(text("SELECT r.*, a.name AS area FROM recommendation_runs r JOIN areas a ON a.id = r.area_id "
                          "WHERE r.id = :id"), {"id": run_id}).one_or_none()
    if r is None:
        raise NotFound(f"no recommendation run with id {run_id}")
    sites = conn.execute(text("SELECT rank, external_id, name, host_type, source, gain, covered_share_after, "
                              "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM recommended_sites WHERE run_id = :r "
                              "ORDER BY rank"), {"r": run_id}).all()
    n_gaps = conn.execute(text("SELECT count(*) FROM recommendation_gaps WHERE run_id = :r"),
                          {"r": run_id}).scalar_one()
    tot = r.demand_total or 0.0
    return {
        "run_id": r.id, "area": r.area, "problem": r.problem, "mode": r.mode, "profile": r.profile,
        "radius_m": r.radius_m, "k": r.k, "target": r.target,
        "covered_share_before": round(r.demand_covered_before / tot, 6) if tot else 0.0,
        "covered_share_after": round(r.demand_covered_after / tot, 6) if tot else 0.0,
        "demand_total": round(tot, 3), "demand_covered_before": round(r.demand_covered_before, 3),
        "demand_covered_after": round(r.demand_covered_after, 3),
        "objective": round(r.objective, 6), "bound": round(r.bound, 6), "gap": round(r.gap, 6),
        "optimal": r.optimal, "method": r.method, "candidates": r.candidates, "seconds": round(r.seconds, 3),
        "sites": [{"rank": s.rank, "id": s.external_id, "name": s.name, "host_type": s.host_type,
                   "source": s.source, "lon": round(s.lon, 7), "lat": round(s.lat, 7), "gain": round(s.gain, 6),
                   "covered_share_after": round(s.covered_share_after, 6)} for s in sites],
        "remaining_gaps": int(n_gaps), "created_at": r.created_at.isoformat(), "params": r.params,
    }


def recommendation_ids(conn: Connection, *, area: str | None = None, limit: int = 50) -> list[int]:
    """Ids of stored recommendation runs (of ``area`` when given), newest first."""
    return [int(i) for i in conn.execute(text(
        "SELECT r.id FROM recommendation_runs r JOIN areas a ON a.id = r.area_id "
        "WHERE CAST(:area AS text) IS NULL OR a.name = :area ORDER BY r.id DESC LIMIT :n"),
        {"area": area, "n": limit}).scalars()]


def recommendation_geojson(conn: Connection, run_id: int) -> dict[str, Any]:
    """A recommendation as one GeoJSON FeatureCollection (RFC 7946, WGS 84 lon/lat): the ranked sites (Points,
    ``layer`` "site") and the gaps that remain (MultiPolygons, ``layer`` "remaining_gap"); the run's headline
    figures in ``properties`` of the collection."""
    summary = recommendation_of(conn, run_id)
    features: list[dict[str, Any]] = []
    for s in summary.pop("sites"):
        lon, lat = s.pop("lon"), s.pop("lat")
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": {"layer": "site", **s}})
    rows = conn.execute(text("SELECT rank, demand, area_m2, cells, ST_AsGeoJSON(geom, 7) AS g "
                             "FROM recommendation_gaps WHERE run_id = :r ORDER BY rank"), {"r": run_id}).all()
    for g in rows:
        features.append({"type": "Feature", "geometry": json.loads(g.g),
                         "properties": {"layer": "remaining_gap", "rank": g.rank, "demand": round(g.demand, 3),
                                        "area_m2": round(g.area_m2, 1), "cells": g.cells}})
    summary.pop("params", None)
    return {"type": "FeatureCollection", "properties": summary, "features": features}


@dataclass
class RecommendationData:
    """A stored recommendation with its layers for maps (EPSG:4326)."""

    summary: dict[str, Any]
    area: AreaInfo
    stations: gpd.GeoDataFrame
    sites: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame  # the area's demand cells now (cell_key, weight)


def load_recommendation(engine: Engine, run_id: int) -> RecommendationData:
    """A stored recommendation run with its sites, remaining gaps, the area and its stations as they are now."""
    with engine.connect() as conn:
        summary = recommendation_of(conn, run_id)
        area_id = conn.execute(text("SELECT area_id FROM recommendation_runs WHERE id = :r"),
                               {"r": run_id}).scalar_one()
        info = get_area_by_id(conn, area_id)
        stations = stations_frame(conn, area_id)
        sites = gpd.read_postgis(text("SELECT rank, external_id, name, host_type, source, gain, covered_share_after, "
                                      "geom FROM recommended_sites WHERE run_id = :r ORDER BY rank"), conn,
                                 geom_col="geom", crs=SRID, params={"r": run_id}).rename_geometry("geometry")
        gaps = gpd.read_postgis(text("SELECT rank, demand, area_m2, cells, geom FROM recommendation_gaps "
                                     "WHERE run_id = :r ORDER BY rank"), conn, geom_col="geom", crs=SRID,
                                params={"r": run_id}).rename_geometry("geometry")
        cells = cells_frame(conn, area_id)
    return RecommendationData(summary, info, stations, sites, gaps, cells)


def street_reach(rec: RecommendationData, settings: Settings | None = None) -> BaseGeometry | None:
    """For a network recommendation: the area reached along its streets within the radius from the active
    stations and the recommended sites together (street pieces buffered 25 m, as in network coverage runs), in
    EPSG:4326 and clipped to the area; None for a straight-line one or when the street graph is gone."""
    from yizhan.coverage.network import node_distances, service_areas, snap_points
    from yizhan.coverage.streets import load_area_graph

    s = rec.summary
    if s["mode"] != "network":
        return None
    cfg = settings or get_settings()
    try:
        graph = load_area_graph(rec.area, s["profile"] or "walk", cfg)
    except InvalidInput:
        return None
    active = rec.stations[rec.stations["status"] == "active"]
    points = gpd.GeoSeries(list(active.geometry) + list(rec.sites.geometry), crs=SRID)
    if points.empty:
        return None
    xy = _xy(gpd.GeoDataFrame(geometry=points), graph.crs_epsg)
    snap = snap_points(graph, xy, max_snap_m=cfg.max_snap_m)
    radius = float(s["radius_m"])
    node_dist, node_station = node_distances(graph, snap, limit_m=radius, include_access=True)
    _, merged = service_areas(graph, snap, node_dist, node_station, radius_m=radius, include_access=True)
    reach = polygonal(merged)
    if reach is None:
        return None
    reach = gpd.GeoSeries([reach], crs=graph.crs_epsg).to_crs(SRID).iloc[0]
    return polygonal(reach.intersection(rec.area.boundary)) if rec.area.boundary is not None else reach


def sites_to_frame(features: list[dict[str, Any]] | None, *, coord: str = "wgs84",
                   field: str = "sites") -> gpd.GeoDataFrame | None:
    """GeoJSON point features (``id``/``name`` in properties or ``id`` on the feature) as a site frame in
    EPSG:4326; ``coord`` is the system of the given lon/lat. InvalidInput names the bad feature."""
    from yizhan.geo.coords import to_wgs84
    from yizhan.siting.candidates import HOST_TYPES, host_type_code

    if features is None:
        return None
    rows = []
    for i, f in enumerate(features):
        geom = f.get("geometry") or {}
        props = f.get("properties") or {}
        coords = geom.get("coordinates") if isinstance(geom, dict) else None
        if (not isinstance(geom, dict) or geom.get("type") != "Point" or not isinstance(coords, list | tuple)
                or len(coords) < 2 or not all(isinstance(c, int | float) and np.isfinite(c) for c in coords[:2])
                or not (-180 <= coords[0] <= 180 and -90 <= coords[1] <= 90)):
            raise InvalidInput(f"{field}[{i}].geometry: expected a Point with finite lon, lat in degrees")
        sid = str(props.get("id", f.get("id", f"{field}-{i + 1}")))[:100]
        host = props.get("host_type")
        code = host_type_code(host) if host not in (None, "") else "other"
        if code is None:
            raise InvalidInput(f"{field}[{i}].properties.host_type: {host!r}; expected one of {', '.join(HOST_TYPES)}")
        rows.append({"external_id": sid, "name": str(props.get("name") or sid)[:200], "host_type": code,
                     "address": None, "x": float(coords[0]), "y": float(coords[1])})
    if not rows:
        raise InvalidInput(f"{field}: expected at least one site")
    df = pd.DataFrame(rows)
    if df["external_id"].duplicated().any():
        raise InvalidInput(f"{field}: repeated id {df['external_id'][df['external_id'].duplicated()].iloc[0]!r}")
    x, y = to_wgs84(df["x"].to_numpy(), df["y"].to_numpy(), coord)
    return gpd.GeoDataFrame(df.drop(columns=["x", "y"]), geometry=shapely.points(x, y), crs=SRID)
