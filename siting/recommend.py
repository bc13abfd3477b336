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

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Engine

from yizhan.areas import AreaInfo, resolve_area
from yizhan.coverage.cell_coverage import points_straight
from yizhan.coverage.euclidean import geodesic_band, recheck_pairs
from yizhan.coverage.gaps import gaps_from_cells
from yizhan.coverage.measure import HALF, Demand, measured_demand, per_cell
from yizhan.coverage.network import Snapped, covered_area, network_nearest, node_distances, snap_points
from yizhan.coverage.partitioned import partitioned_coverage
from yizhan.coverage.reach import Pairs, network_reach, straight_pairs
from yizhan.coverage.runs import cell_size_of, cells_frame, multi_polygon, polygonal
from yizhan.coverage.streets import default_parts, load_area_graph, street_parts_manifest
from yizhan.data.demand_profile import stored_profile
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput, YizhanError
from yizhan.geo.streets import StreetGraph
from yizhan.settings import DEFAULT_RADIUS_M, MAX_RADIUS_M, Settings
from yizhan.siting.candidates import filter_candidates, load_candidates
from yizhan.siting.extensions import (
    KIND_EN,
    KIND_ZH,
    KINDS,
    Actions,
    HourModel,
    hour_actions,
    hour_model,
    mask_rule,
    uncovered_after,
    until_hour,
)
from yizhan.siting.runs import (
    HourAction,
    RecommendationData,
    RecommendationRecord,
    RecommendationSummary,
    RecommendedSite,
    RemainingGap,
    store_recommendation,
)
from yizhan.siting.solver import CoverageMatrix, Solution, evaluate_sites, solve_lscp, solve_mclp, solve_mclp_kinds
from yizhan.stations.hours import check_hours
from yizhan.stations.registry import stations_frame
from yizhan.weekly.availability import station_open
from yizhan.weekly.profile import DEFAULT_PROFILE, demand_by_hour

Progress = Callable[[str], None]
MAX_K = 10_000
PROBLEMS = ("mclp", "lscp", "evaluate", "hours")


@dataclass
class _Inputs:
    info: AreaInfo
    cells: gpd.GeoDataFrame  # EPSG:4326, cell_key, weight
    cells_m: gpd.GeoDataFrame  # the same in the area CRS
    weights: np.ndarray  # orders per cell
    demand: Demand  # the locations measured: stored points, else cell centres
    covered_before: np.ndarray  # per location
    cands: gpd.GeoDataFrame  # EPSG:4326: external_id, name, host_type, source
    reach: Pairs  # (location, candidate, metres)
    params: dict[str, Any]
    job_dir: Path | None = None  # computed in parts: their saved results, removed once the run is stored


def _xy(gdf: gpd.GeoDataFrame, crs: int) -> np.ndarray:
    g = gdf.to_crs(crs).geometry
    if len(g) and not (g.geom_type == "Point").all():
        g = g.centroid
    return np.column_stack([g.x.to_numpy(), g.y.to_numpy()]).reshape(-1, 2)


def _lonlat(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """WGS 84 (lon, lat) degrees of point rows, (n, 2)."""
    return np.column_stack([gdf.geometry.x, gdf.geometry.y]) if len(gdf) else np.empty((0, 2))


@dataclass
class _Stored:
    """What a recommendation reads from the database: the area, its demand cells, the locations a coverage run
    would measure (``coverage.measure``: the stored order points, else the cell centres), its active stations,
    and the candidate pool (the stored one unless given)."""

    info: AreaInfo
    cells: gpd.GeoDataFrame
    demand: Demand
    active: gpd.GeoDataFrame
    pool: gpd.GeoDataFrame | None


def _read(conn: Connection, area: str | None, candidates: gpd.GeoDataFrame | None, timezone: str) -> _Stored:
    info = resolve_area(conn, area)
    cells = cells_frame(conn, info.id)
    if cells.empty:
        raise InvalidInput(f"area {info.name!r} has no demand cells: import demand first (`yizhan demand import`)")
    demand = measured_demand(conn, info, cells, _xy(cells, info.crs_epsg), cell_size_of(conn, info.id),
                             timezone=timezone)
    stations = stations_frame(conn, info.id)
    pool = load_candidates(conn, info.id) if candidates is None else None
    active = stations[stations["status"] == "active"].reset_index(drop=True)
    return _Stored(info, cells, demand, active, pool)


@dataclass
class _Streets:
    """The street graph of a network recommendation and the demand locations snapped to it."""

    graph: StreetGraph
    locations: Snapped


def _streets(stored: _Stored, profile: str, settings: Settings) -> _Streets:
    graph = load_area_graph(stored.info, profile, settings)
    return _Streets(graph, snap_points(graph, stored.demand.xy, max_snap_m=settings.max_snap_m))


def _site_reach(demand: Demand, sites: gpd.GeoDataFrame, crs: int, radius_m: float, streets: _Streets | None,
                settings: Settings, say: Progress) -> tuple[Pairs, int]:
    """Every (location, site) pair within ``radius_m`` metres, as a coverage run measures: the straight line in
    the area CRS decided on the ellipsoid within ``euclidean.geodesic_band`` of the radius, or along the streets
    door to door when ``streets`` are given. ``sites`` EPSG:4326 points (stations or candidates). Also how many
    sites lie too far from any street to serve (0 in a straight line)."""
    xy = _xy(sites, crs)
    if streets is None:
        band = geodesic_band(radius_m)
        return recheck_pairs(*straight_pairs(demand.xy, xy, radius_m + band), demand.lonlat, _lonlat(sites),
                             radius_m)[:3], 0
    snap = snap_points(streets.graph, xy, max_snap_m=settings.max_snap_m)
    return network_reach(streets.graph, snap, streets.locations, radius_m=radius_m, include_access=True,
                         progress=say), int(snap.too_far.sum())


def _covered_now(demand: Demand, active: gpd.GeoDataFrame, crs: int, radius_m: float, streets: _Streets | None,
                 settings: Settings) -> np.ndarray:
    """Whether each demand location has an active station within ``radius_m`` metres, decided as a coverage run
    decides it (one nearest-station search: straight with the ellipsoid re-check, or one multi-source search
    along the streets)."""
    st_xy = _xy(active, crs)
    if streets is None:
        return points_straight(demand, st_xy, _lonlat(active), radius_m)
    st_snap = snap_points(streets.graph, st_xy, max_snap_m=settings.max_snap_m)
    return network_nearest(streets.graph, st_snap, streets.locations, radius_m=radius_m,
                           include_access=True).covered


def _measured_params(demand: Demand, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with what was measured, as a coverage run says it."""
    params["measured"] = demand.measured
    if demand.measured == "points":
        params["points"] = len(demand.xy)
    if demand.notes:
        params["measure_notes"] = demand.notes
    return params


def _pool(stored: _Stored, candidates: gpd.GeoDataFrame | None, exclude_host_types: list[str] | None,
          no_go: BaseGeometry | None) -> tuple[gpd.GeoDataFrame, int, dict[str, int]]:
    """The candidate sites to choose from (given or stored; a planner's proposed ones kept, the rest filtered), how
    many were given and how many each filter removed."""
    info = stored.info
    if candidates is None:
        cands = stored.pool if stored.pool is not None else gpd.GeoDataFrame()
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
    return cands, total, removed


@dataclass(frozen=True)
class Parts:
    """A recommendation's reach computed in parts on Dask (``coverage.partitioned``): how many, by ``tiles`` or
    ``units``, and the scheduler (a ``distributed.Client``, an address ``tcp://HOST:8786``, or None for the
    settings' scheduler or a local cluster)."""

    parts: int = 1
    by: str = "tiles"
    scheduler: Any = None

    @property
    def on(self) -> bool:
        return self.parts > 1 or self.scheduler is not None


def _reach_in_parts(stored: _Stored, cands: gpd.GeoDataFrame, *, mode: str, profile: str, radius_m: float,
                    split: Parts, say: Progress, settings: Settings,
                    params: dict[str, Any]) -> tuple[np.ndarray, Pairs, Path]:
    """Which demand locations an active station covers now and every (location, candidate) pair within the radius,
    found by the parts of a partitioned run (each part its own locations against the stations and candidates within
    its halo: exact, as the module ``coverage.partitioned`` says), in ``stored.demand``'s and ``cands``' indices; and
    the job folder. A location is covered now when a station lies within the radius of it: a pair with a station."""
    info, demand = stored.info, stored.demand
    pc = partitioned_coverage(
        settings, info, mode=mode, profile=profile, radius_m=radius_m, measure="auto", parts=split.parts,
        by=split.by, scheduler=split.scheduler, progress=say, pairs=True,
        sites=(_xy(cands, info.crs_epsg), _lonlat(cands)),
        street_parts=street_parts_manifest(info, profile, settings) if mode == "network" else None)
    if (pc.measured != demand.measured or pc.pair_loc is None or pc.site_loc is None or pc.site_idx is None
            or pc.site_m is None):
        raise YizhanError("分区结果与本次读取的需求不符，请重新计算 / the parts measured other demand than this "
                          "recommendation read (demand imported meanwhile?): run again")
    keys = stored.cells["cell_key"].to_numpy()
    near, loc = pc.locations(pc.pair_loc, demand, keys), pc.locations(pc.site_loc, demand, keys)
    if (near < 0).any() or (loc < 0).any():
        raise YizhanError("分区结果与需求不符，请重新计算 / the parts' pairs name demand this recommendation did not "
                          "read (changed meanwhile?): run again")
    before = np.zeros(len(demand.weight), dtype=bool)
    before[near] = True
    params["partitions"] = pc.params["partitions"]
    return before, (loc, pc.site_idx, pc.site_m), pc.job_dir


def _prepare(stored: _Stored, *, mode: str, profile: str, radius_m: float,
             candidates: gpd.GeoDataFrame | None, exclude_host_types: list[str] | None, no_go: BaseGeometry | None,
             say: Progress, settings: Settings, split: Parts | None = None) -> _Inputs:
    info, cells, active, demand = stored.info, stored.cells, stored.active, stored.demand
    cands, total, removed = _pool(stored, candidates, exclude_host_types, no_go)
    crs = info.crs_epsg
    params = _measured_params(demand, {
        "radius_m": radius_m, "mode": mode, "crs_epsg": crs, "existing_stations": len(active),
        "candidates_given": total, "candidates_removed": removed, "exclude_host_types": exclude_host_types or [],
        "no_go": no_go is not None})
    what = "demand points" if demand.measured == "points" else "demand cells"
    say(f"{mode} reach of {len(cands):,} candidates over {len(demand.xy):,} {what} within {radius_m:g} m")
    if split is not None and split.on:
        before, reach, job_dir = _reach_in_parts(stored, cands, mode=mode, profile=profile, radius_m=radius_m,
                                                 split=split, say=say, settings=settings, params=params)
        if mode == "network":
            params.update({"profile": profile, "max_snap_m": settings.max_snap_m,
                           "distance": f"along the {profile} street network, metres door to door"})
        else:
            params["distance"] = "straight line, metres (on the ellipsoid near the radius)"
        return _Inputs(info, cells, cells.to_crs(crs), cells["weight"].to_numpy(float), demand, before, cands, reach,
                       params, job_dir)
    streets = _streets(stored, profile, settings) if mode == "network" else None
    before = _covered_now(demand, active, crs, radius_m, streets, settings)
    reach, cands_off = _site_reach(demand, cands, crs, radius_m, streets, settings, say)
    _distance_params(params, streets, profile, settings)
    if streets is not None:
        params.update({"candidates_off_network": cands_off,
                       "locations_off_network": int(streets.locations.too_far.sum())})
    return _Inputs(info, cells, cells.to_crs(crs), cells["weight"].to_numpy(float), demand, before, cands, reach,
                   params)


def _distance_params(params: dict[str, Any], streets: _Streets | None, profile: str, settings: Settings) -> None:
    """Say in a recommendation's ``params`` how distances were measured: along the ``profile`` streets (``streets``
    given: the graph's nodes, the snapping limit) or in a straight line."""
    if streets is not None:
        params.update({"profile": profile, "distance": f"along the {profile} street network, metres door to door",
                       "graph_nodes": streets.graph.n_nodes, "max_snap_m": settings.max_snap_m})
    else:
        params["distance"] = "straight line, metres (on the ellipsoid near the radius)"


def _remaining_gaps(cells_m: gpd.GeoDataFrame, uncovered: np.ndarray, left: np.ndarray) -> list[RemainingGap]:
    """The gaps a recommendation leaves (WGS 84): the ``uncovered`` cells (metric frame ``cells_m``) merged, each
    weighted by the demand ``left`` in it."""
    gaps = gaps_from_cells(cells_m, uncovered=uncovered, weights=left)
    if not len(gaps):
        return []
    g4326 = gaps.to_crs(SRID)
    return [RemainingGap(rank=int(g.rank), demand=float(g.demand), area_m2=float(g.area_m2), cells=int(g.cells),
                         geometry=multi_polygon(geom))
            for g, geom in zip(gaps.itertuples(), g4326.geometry, strict=True)]


def _check_reach(mode: str, profile: str, radius_m: float) -> None:
    """InvalidInput naming a mode, profile or radius (metres) a recommendation does not take."""
    if mode not in ("straight", "network"):
        raise InvalidInput(f"方式 mode {mode!r}: expected straight or network")
    if profile not in ("walk", "bike"):
        raise InvalidInput(f"出行 profile {profile!r}: expected walk or bike")
    if not (np.isfinite(radius_m) and 0 < radius_m <= MAX_RADIUS_M):
        raise InvalidInput(f"服务半径 radius {radius_m} m: expected a positive number of metres up to "
                           f"{MAX_RADIUS_M:g}")


def recommend(engine: Engine, *, area: str | None = None, k: int | None = None, target: float | None = None,
              sites: gpd.GeoDataFrame | None = None, mode: str = "straight", profile: str = "walk",
              radius_m: float = DEFAULT_RADIUS_M, candidates: gpd.GeoDataFrame | None = None,
              exclude_host_types: list[str] | None = None, no_go: BaseGeometry | None = None,
              time_limit_s: float = 60.0, exact: bool = True, progress: Progress | None = None,
              settings: Settings, parts: int | None = None, parts_by: str = "tiles",
              scheduler: Any = None) -> RecommendationSummary:
    """Recommend sites for new stations in an area and store the run; returns ``recommendation_of``.

    Exactly one of: ``k`` (the k best sites), ``target`` (covered share 0–1 to reach with the fewest sites) or
    ``sites`` (a planner's proposed sites, EPSG:4326 points with ``external_id``/``name``; evaluated, and
    compared with the best ``len(sites)`` sites from the candidate pool when one is stored). ``candidates``
    replaces the area's stored pool; ``exclude_host_types`` and ``no_go`` (EPSG:4326 polygons) filter it.
    ``radius_m`` metres; ``mode`` "straight" or "network" (``profile`` walk/bike streets).

    Demand is measured as a coverage run measures it (``coverage.measure``): on the stored order points when the
    area has them, else on the cell centres; straight lines decided on the ellipsoid near the radius, or along
    the streets per location. So ``covered_share_before`` is a run's covered share and ``covered_share_after``
    that of a run with the chosen sites added as stations. The model's rows are the uncovered locations (the
    solver merges those reached by the same candidates); the gaps left are cells with less than half of their
    orders covered (``coverage.measure.HALF``), as runs draw them.

    ``parts`` > 1 (or a ``scheduler``) finds the reach in that many parts on Dask, as ``run_coverage`` computes a
    run in parts (``coverage.partitioned``; ``parts_by`` tiles or units; along the streets, the area's street graphs
    per partition when built): each part pairs its own demand locations with the stations and candidates within its
    halo, and the one model is then solved here on all the pairs, so the sites chosen are those of one process.
    ``parts`` None (the default) is ``coverage.streets.default_parts``, as for a run.
    """
    if sum(x is not None for x in (k, target, sites)) != 1:
        raise InvalidInput("give exactly one of k (number of new sites), target (covered share to reach) or sites "
                           "(proposed sites to evaluate)")
    _check_reach(mode, profile, radius_m)
    if k is not None and not 1 <= k <= MAX_K:
        raise InvalidInput(f"k={k}: expected a whole number of new sites from 1 to {MAX_K}")
    if target is not None and not (np.isfinite(target) and 0 < target <= 1):
        raise InvalidInput(f"target={target}: expected a covered share above 0 and at most 1 (e.g. 0.95)")
    if parts is not None and not 1 <= parts <= 4096:
        raise InvalidInput(f"分区数 parts {parts}: 应为 1 到 4096 / expected 1 to 4096 parts")
    if not (np.isfinite(time_limit_s) and 0 < time_limit_s <= 3600):
        raise InvalidInput(f"求解时限 {time_limit_s} 秒无效 / time limit {time_limit_s} s: expected 0 to 3600 "
                           f"seconds")
    say = progress or (lambda _m: None)
    problem = "mclp" if k is not None else "lscp" if target is not None else "evaluate"
    with engine.connect() as conn:
        stored = _read(conn, area, candidates if sites is None else None, settings.timezone)
        if sites is not None and candidates is None:
            stored.pool = load_candidates(conn, stored.info.id)
    # no transaction is open from here to the store: reach and solving may take minutes
    info = stored.info
    if parts is None:
        parts = default_parts(info, mode, profile, settings)
    if sites is not None:
        if sites.empty:
            raise InvalidInput("sites: the list of proposed sites is empty")
        proposed = sites.copy()
        proposed["source"] = "proposed"
        if "host_type" not in proposed.columns:
            proposed["host_type"] = "other"
        proposed["host_type"] = proposed["host_type"].fillna("other")
        outside = ~info.contains(proposed.geometry.x.to_numpy(), proposed.geometry.y.to_numpy())
        if outside.any():
            raise InvalidInput("sites: " + ", ".join(map(str, proposed["external_id"][outside][:10]))
                               + " lie outside the area")
        pool = candidates if candidates is not None else stored.pool
        assert pool is not None
        if "source" not in pool.columns:
            pool = pool.assign(source="given")
        # the planner's own sites are taken as given; the pool they are compared with keeps the filters
        candidates = gpd.GeoDataFrame(pd.concat([proposed.assign(_proposed=True),
                                                 pool.assign(_proposed=False)], ignore_index=True),
                                      geometry="geometry", crs=SRID)
    inp = _prepare(stored, mode=mode, profile=profile, radius_m=radius_m, candidates=candidates,
                   exclude_host_types=exclude_host_types, no_go=no_go, say=say, settings=settings,
                   split=Parts(parts, parts_by, scheduler))
    total = float(inp.weights.sum())
    loc_w = inp.demand.weight
    before_w = float(loc_w[inp.covered_before].sum())
    loc_i, cand_i, _dist = inp.reach
    cm = CoverageMatrix.from_pairs(loc_i, cand_i, len(inp.cands), loc_w, ~inp.covered_before & (loc_w > 0))
    if problem == "mclp":
        assert k is not None  # problem follows from which of k, target, sites was given
        sol = solve_mclp(cm, int(k), time_limit_s=time_limit_s, exact=exact, progress=say)
    elif problem == "lscp":
        assert target is not None
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
    record = _record(inp, problem, sol, k=k, target=target, mode=mode, profile=profile, radius_m=radius_m,
                     total=total, before_w=before_w, cm=cm, time_limit_s=time_limit_s)
    with engine.begin() as conn:
        summary = store_recommendation(conn, record)
    if inp.job_dir is not None:  # stored: the parts' saved results are no longer needed to resume
        shutil.rmtree(inp.job_dir, ignore_errors=True)
    return summary


def _record(inp: _Inputs, problem: str, sol: Solution, *, k: int | None, target: float | None, mode: str,
            profile: str, radius_m: float, total: float, before_w: float, cm: CoverageMatrix,
            time_limit_s: float) -> RecommendationRecord:
    """What the run stores: the chosen sites ranked by gain with the covered share after each, and the gaps that
    remain (computed here, before any transaction opens): cells with orders of which less than half are covered
    after, weighted by their orders still uncovered."""
    covered_after = inp.covered_before.copy()
    a = cm.matrix.tocsc()
    for j in sol.chosen:
        covered_after[cm.rows[a.indices[a.indptr[j]:a.indptr[j + 1]]]] = True
    covered_w = per_cell(inp.demand, covered_after, len(inp.cells))
    after_w = float(covered_w.sum())
    params = {**inp.params, "time_limit_s": time_limit_s, "matrix": sol.details, "solve_seconds": sol.seconds}
    cum = before_w + np.cumsum(sol.gains)
    sites: list[RecommendedSite] = []
    for rank, (j, gain, c) in enumerate(zip(sol.chosen, sol.gains, cum, strict=True), start=1):
        r = inp.cands.iloc[int(j)]
        sites.append(RecommendedSite(rank=rank, id=str(r["external_id"]), name=str(r["name"])[:200],
                                     host_type=str(r["host_type"]), source=str(r["source"])[:200], gain=float(gain),
                                     covered_share_after=float(c / total) if total else 0.0,
                                     lon=float(r.geometry.x), lat=float(r.geometry.y)))
    w = inp.weights
    remaining = _remaining_gaps(inp.cells_m, (w > 0) & (covered_w < HALF * w), np.maximum(w - covered_w, 0.0))
    return RecommendationRecord(
        area_id=inp.info.id, problem=problem, mode=mode, profile=profile if mode == "network" else None,
        radius_m=radius_m, k=k if k is not None else len(sol.chosen), target=target, method=sol.method,
        optimal=bool(sol.optimal), objective=sol.objective, bound=sol.bound, gap=sol.gap, demand_total=total,
        demand_covered_before=before_w, demand_covered_after=after_w, candidates=len(inp.cands),
        seconds=sol.seconds, params=params, sites=sites, gaps=remaining)


def street_reach(rec: RecommendationData, settings: Settings) -> BaseGeometry | None:
    """For a network recommendation: the area reached along its streets within the radius from the active
    stations and the recommended sites together (street pieces buffered 25 m, as in network coverage runs), in
    EPSG:4326 and clipped to the area; None for a straight-line one or when the street graph is gone."""
    s = rec.summary
    if s["mode"] != "network":
        return None
    try:
        graph = load_area_graph(rec.area, s["profile"] or "walk", settings)
    except InvalidInput:
        return None
    active = rec.stations[rec.stations["status"] == "active"]
    points = gpd.GeoSeries(list(active.geometry) + list(rec.sites.geometry), crs=SRID)
    if points.empty:
        return None
    xy = _xy(gpd.GeoDataFrame(geometry=points), graph.crs_epsg)
    snap = snap_points(graph, xy, max_snap_m=settings.max_snap_m)
    radius = float(s["radius_m"])
    node_dist, node_station = node_distances(graph, snap, limit_m=radius, include_access=True)
    merged = covered_area(graph, snap, node_dist, node_station, radius_m=radius, include_access=True).area
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


def _site_hours_mask(rule: str, settings: Settings) -> tuple[np.ndarray, str]:
    """The hours of the week (168,) bool a new site is taken to open, from an OSM or Chinese hours rule, and the
    rule as stored; InvalidInput naming the rule when it cannot be read or opens no hour."""
    try:
        canonical = check_hours(rule)
    except ValueError as exc:
        raise InvalidInput(f"新站点营业时间 site hours: {exc}") from exc
    mask = station_open([canonical], tz=settings.timezone, unknown="closed").open[0]
    if not mask.any():
        raise InvalidInput(f"新站营业时间 '{rule}' 一周内没有营业时段 / site hours '{rule}' open at no hour of the "
                           "week; e.g. '24/7' or 'Mo-Su 07:00-23:00'")
    return mask, canonical


def recommend_hours(engine: Engine, *, area: str | None = None, extend_to: str | None = "22:00",
                    max_extend: int = 0, max_24h: int = 0, max_sites: int = 0, site_hours: str = "24/7",
                    mode: str = "straight", profile: str = "walk", radius_m: float = DEFAULT_RADIUS_M,
                    candidates: gpd.GeoDataFrame | None = None, exclude_host_types: list[str] | None = None,
                    no_go: BaseGeometry | None = None, time_limit_s: float = 60.0, exact: bool = True,
                    unknown_hours: str = "open", progress: Progress | None = None,
                    settings: Settings) -> RecommendationSummary:
    """Longer hours versus new sites: the actions removing the most uncovered demand-hours, stored as a run.

    Up to ``max_extend`` stations extended to ``extend_to`` (local time, ``22:00``; see
    ``siting.extensions.until_hour`` and the module's rule), up to ``max_24h`` stations opened round the clock,
    up to ``max_sites`` new stations at candidate sites (given ``candidates`` or the stored pool, filtered by
    ``exclude_host_types`` and ``no_go``) open at ``site_hours`` (an OSM or Chinese hours rule; default ``24/7``,
    round the clock). Demand is measured on the stored order points at their hour of the week (``settings.timezone``)
    when the area has them, else on the cell centres with the area's profile (stored, or the built-in one);
    stations' hours from their rules (``unknown_hours``: unknown hours count ``open`` or ``closed``). ``radius_m``
    metres, straight (re-checked on the ellipsoid near the radius) or along the ``profile`` streets.

    The answer (``recommendation_of``) lists the actions in one ranking, each with the demand-hours it removes after
    those above it; ``objective`` is the demand-hours removed, ``bound``/``gap``/``optimal``/``method`` the proof as
    for sites; new sites are also stored as the run's sites.
    """

    caps = {"extend": max_extend, "24h": max_24h, "site": max_sites}
    for name, cap in (("max_extend", max_extend), ("max_24h", max_24h), ("max_sites", max_sites)):
        if not 0 <= cap <= MAX_K:
            raise InvalidInput(f"{name}={cap}: 须为 0 至 {MAX_K} 的整数 / expected a whole number from 0 to {MAX_K}")
    if not any(caps.values()):
        raise InvalidInput("至少允许一类措施 / allow at least one kind of action: max_extend, max_24h or max_sites "
                           "above 0")
    if max_extend and not extend_to:
        raise InvalidInput("max_extend 需要延长至的时刻 / max_extend needs extend_to, a local time such as 22:00")
    end_hour = until_hour(extend_to) if max_extend and extend_to else None
    _check_reach(mode, profile, radius_m)
    if not (np.isfinite(time_limit_s) and 0 < time_limit_s <= 3600):
        raise InvalidInput(f"求解时限 {time_limit_s} 秒无效 / time limit {time_limit_s} s: expected 0 to 3600 "
                           f"seconds")
    site_mask, site_rule = _site_hours_mask(site_hours, settings)
    say = progress or (lambda _m: None)
    with engine.connect() as conn:
        stored = _read(conn, area, candidates, settings.timezone)
        prof = stored_profile(conn, stored.info.id)
    info, demand, crs = stored.info, stored.demand, stored.info.crs_epsg
    # no transaction is open from here to the store
    if max_sites:
        cands, total_cands, removed = _pool(stored, candidates, exclude_host_types, no_go)
    else:
        cands, total_cands, removed = gpd.GeoDataFrame({"external_id": [], "name": [], "host_type": [],
                                                        "source": []}, geometry=[], crs=SRID), 0, {}
    active = stored.active
    avail = station_open(list(active["opening_hours"]), tz=settings.timezone, unknown=unknown_hours)
    n_loc = len(demand.weight)
    d = demand_by_hour(demand.item_loc, demand.item_hour, demand.item_weight, n_loc,
                       prof[0] if prof is not None else DEFAULT_PROFILE)
    say(f"{mode} reach of {len(active):,} stations and {len(cands):,} candidates over {n_loc:,} demand "
        f"{demand.measured} within {radius_m:g} m")
    params = _measured_params(demand, {
        "radius_m": radius_m, "mode": mode, "crs_epsg": crs, "existing_stations": len(active),
        "candidates_given": total_cands, "candidates_removed": removed, "exclude_host_types": exclude_host_types or [],
        "no_go": no_go is not None})
    streets = _streets(stored, profile, settings) if mode == "network" else None
    st_pairs, _ = _site_reach(demand, active, crs, radius_m, streets, settings, say)
    cand_pairs, _ = _site_reach(demand, cands, crs, radius_m, streets, settings, say)
    _distance_params(params, streets, profile, settings)
    st_p, cand_p = (st_pairs[0], st_pairs[1]), (cand_pairs[0], cand_pairs[1])
    asked = tuple(k for k in KINDS if caps[k])
    actions = hour_actions(avail.open, end_hour=end_hour, n_sites=len(cands), site_open=site_mask, kinds=asked)
    model = hour_model(d, st_p, avail.open, cand_p, actions)
    say(f"{len(actions):,} actions over {model.matrix.matrix.shape[0]:,} uncovered (place, hour) elements")
    sol = solve_mclp_kinds(model.matrix, actions.kind, [caps[k] for k in KINDS], time_limit_s=time_limit_s,
                           exact=exact, progress=say)
    say(f"{sol.method}: objective {sol.objective:.6g}, bound {sol.bound:.6g}, gap {sol.gap:.2%}")
    left = uncovered_after(d, st_p, avail.open, cand_p, actions, sol.chosen)
    cell_left = np.bincount(demand.cell, weights=left, minlength=len(stored.cells))
    params.update({
        "time_limit_s": time_limit_s, "matrix": sol.details, "solve_seconds": sol.seconds,
        "hours": {"extend_to": extend_to if end_hour is not None else None, "extend_until_hour": end_hour,
                  "caps": caps, "site_hours": site_rule, "timezone": settings.timezone,
                  "week_start": avail.week_start.isoformat(), "unknown_hours": unknown_hours,
                  "unknown_hours_stations": int(avail.unknown.sum()),
                  "profile": (prof[1] if prof is not None else "built-in") if demand.timed < len(demand.item_hour)
                  else None,
                  "demand_hours_uncovered_before": model.uncovered, "uncoverable": model.uncoverable,
                  "actions_considered": {k: int((actions.kind == i).sum()) for i, k in enumerate(KINDS)},
                  "rule": "extend: on each day a station opens, from its first opening that day to the time; 24h: "
                          "every hour; a new site at its site hours"},
    })
    record = _hours_record(info, stored, active, cands, actions, sol, model, cell_left, params, mode=mode,
                           profile=profile, radius_m=radius_m)
    with engine.begin() as conn:
        return store_recommendation(conn, record)


def _hours_record(info: AreaInfo, stored: _Stored, active: gpd.GeoDataFrame, cands: gpd.GeoDataFrame,
                  actions: Actions, sol: Solution, model: HourModel, cell_left: np.ndarray, params: dict[str, Any], *,
                  mode: str, profile: str, radius_m: float) -> RecommendationRecord:
    """The hours run to store: the ranked actions (in ``params["actions"]``), the new sites among them as the
    run's sites (ranked by their place in the one list), and the gaps left (cells weighted by the demand-hours
    still uncovered)."""
    total, before = model.demand_total, model.uncovered
    ranked: list[HourAction] = []
    sites: list[RecommendedSite] = []
    removed = 0.0
    for rank, (j, gain) in enumerate(zip(sol.chosen, sol.gains, strict=True), start=1):
        kind = KINDS[int(actions.kind[j])]
        row = (cands if kind == "site" else active).iloc[int(actions.ref[j])]
        removed += float(gain)
        item: HourAction = {
            "rank": rank, "kind": kind, "kind_zh": KIND_ZH[kind], "kind_en": KIND_EN[kind],
            "id": str(row["external_id"]), "name": str(row["name"])[:200],
            "lon": round(float(row.geometry.x), 7), "lat": round(float(row.geometry.y), 7),
            "hours_added": int(actions.hours[j].sum()), "hours_rule": mask_rule(actions.hours[j]),
            "gain": round(float(gain), 6), "removed_share_after": round(removed / before, 6) if before else 0.0,
            "covered_share_after": round((total - before + removed) / total, 6) if total else 0.0}
        ranked.append(item)
        if kind == "site":
            sites.append(RecommendedSite(rank=rank, id=item["id"], name=item["name"], host_type=str(row["host_type"]),
                                         source=str(row["source"])[:200], gain=float(gain),
                                         covered_share_after=item["covered_share_after"], lon=float(row.geometry.x),
                                         lat=float(row.geometry.y)))
    params["actions"] = ranked
    cells_m = stored.cells.to_crs(info.crs_epsg)
    # a cell is left a gap when more than half of its orders still fall in an hour with no open station within reach
    # (as runs draw cells); any uncovered hour would make nearly every cell a gap under a profile of 168 hours
    weight = stored.cells["weight"].to_numpy(float)
    remaining = _remaining_gaps(cells_m, (weight > 0) & (cell_left > HALF * weight), cell_left)
    after = total - float(cell_left.sum())
    return RecommendationRecord(
        area_id=info.id, problem="hours", mode=mode, profile=profile if mode == "network" else None,
        radius_m=radius_m, k=len(sol.chosen), target=None, method=sol.method, optimal=bool(sol.optimal),
        objective=sol.objective, bound=sol.bound, gap=sol.gap, demand_total=total,
        demand_covered_before=total - before, demand_covered_after=after, candidates=len(actions),
        seconds=sol.seconds, params=params, sites=sites, gaps=remaining)
