"""Stored recommendation runs: the one module that writes a recommendation to PostGIS and reads it back.

``yizhan.siting.recommend`` computes with no transaction open and hands a ``RecommendationRecord`` to
``store_recommendation``. Everything stored is WGS 84 (lon, lat); demand in the layer's units, areas in m².
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NotRequired

import geopandas as gpd
from shapely.geometry import MultiPolygon
from sqlalchemy import Connection, Engine, text
from typing_extensions import TypedDict

from yizhan.areas import AreaInfo, get_area_by_id
from yizhan.coverage.runs import cells_frame
from yizhan.db.models import SRID
from yizhan.errors import NotFound
from yizhan.stations.registry import stations_frame


class RecommendedSite(TypedDict):
    """A ranked site of a stored recommendation: WGS 84 lon/lat; ``gain`` the demand it newly covers after the
    sites ranked above; ``covered_share_after`` 0–1."""

    rank: int
    id: str
    name: str
    host_type: str
    source: str
    lon: float
    lat: float
    gain: float
    covered_share_after: float


class HourAction(TypedDict):
    """A ranked action of an hours recommendation (``problem`` "hours"): ``kind`` ``extend`` (the station's hours
    extended), ``24h`` (opened round the clock) or ``site`` (a new station), with its Chinese and English words;
    ``id``/``name`` the station or the candidate site, WGS 84 ``lon``/``lat``; ``hours_added`` the hours of the week
    it adds (a station) or opens (a site) and ``hours_rule`` those hours as an OSM rule (local time); ``gain`` the
    uncovered demand-hours (orders at an hour with no open station within reach) it removes after the actions
    ranked above; ``removed_share_after`` 0–1 of the uncovered demand-hours removed so far; ``covered_share_after``
    0–1 of all demand covered at its hour so far."""

    rank: int
    kind: str
    kind_zh: str
    kind_en: str
    id: str
    name: str
    lon: float
    lat: float
    hours_added: int
    hours_rule: str
    gain: float
    removed_share_after: float
    covered_share_after: float


class RecommendationSummary(TypedDict):
    """A stored recommendation run (JSON-ready); see ``recommendation_of``."""

    run_id: int
    area: str
    problem: str
    mode: str
    profile: str | None
    radius_m: float
    k: int
    target: float | None
    covered_share_before: float
    covered_share_after: float
    demand_total: float
    demand_covered_before: float
    demand_covered_after: float
    objective: float
    bound: float
    gap: float
    optimal: bool
    method: str
    candidates: int
    seconds: float
    sites: list[RecommendedSite]
    remaining_gaps: int
    created_at: str
    params: NotRequired[dict[str, Any]]
    actions: NotRequired[list[HourAction]]


@dataclass
class RemainingGap:
    """A gap left after the recommended sites: WGS 84 geometry, demand, area (m²), cells."""

    rank: int
    demand: float
    area_m2: float
    cells: int
    geometry: MultiPolygon


@dataclass
class RecommendationRecord:
    """Everything a recommendation run stores (see ``recommendation_of`` for the meaning of the figures)."""

    area_id: int
    problem: str
    mode: str
    profile: str | None
    radius_m: float
    k: int
    target: float | None
    method: str
    optimal: bool
    objective: float
    bound: float
    gap: float
    demand_total: float
    demand_covered_before: float
    demand_covered_after: float
    candidates: int
    seconds: float
    params: dict[str, Any]
    sites: list[RecommendedSite] = field(default_factory=list)
    gaps: list[RemainingGap] = field(default_factory=list)


def store_recommendation(conn: Connection, rec: RecommendationRecord) -> RecommendationSummary:
    """Write a recommendation run (inside the caller's transaction); its ``recommendation_of``."""
    run_id = conn.execute(text("""
        INSERT INTO recommendation_runs (area_id, problem, mode, profile, radius_m, k, target, method, optimal,
            objective, bound, gap, demand_total, demand_covered_before, demand_covered_after, candidates, seconds,
            params)
        VALUES (:a, :p, :mode, :prof, :r, :k, :t, :method, :opt, :obj, :bound, :gap, :tot, :b, :af, :c, :s,
                CAST(:params AS jsonb)) RETURNING id"""), {
        "a": rec.area_id, "p": rec.problem, "mode": rec.mode, "prof": rec.profile, "r": rec.radius_m, "k": rec.k,
        "t": rec.target, "method": rec.method, "opt": rec.optimal, "obj": rec.objective, "bound": rec.bound,
        "gap": rec.gap, "tot": rec.demand_total, "b": rec.demand_covered_before, "af": rec.demand_covered_after,
        "c": rec.candidates, "s": rec.seconds, "params": json.dumps(rec.params, default=float)}).scalar_one()
    if rec.sites:
        conn.execute(text(f"""
            INSERT INTO recommended_sites (run_id, rank, external_id, name, host_type, source, gain,
                                           covered_share_after, geom)
            VALUES (:run, :rank, :id, :n, :h, :s, :g, :share, ST_SetSRID(ST_MakePoint(:x, :y), {SRID}))"""),
            [{"run": run_id, "rank": s["rank"], "id": s["id"], "n": s["name"], "h": s["host_type"], "s": s["source"],
              "g": s["gain"], "share": s["covered_share_after"], "x": s["lon"], "y": s["lat"]} for s in rec.sites])
    if rec.gaps:
        conn.execute(text(f"""
            INSERT INTO recommendation_gaps (run_id, rank, demand, area_m2, cells, geom)
            VALUES (:run, :rank, :d, :area, :cells, ST_Multi(ST_GeomFromText(:g, {SRID})))"""),
            [{"run": run_id, "rank": g.rank, "d": g.demand, "area": g.area_m2, "cells": g.cells,
              "g": g.geometry.wkt} for g in rec.gaps])
    return recommendation_of(conn, run_id)


def recommendation_of(conn: Connection, run_id: int) -> RecommendationSummary:
    """A stored recommendation run: ``run_id, area, problem, mode, radius_m, k, target, covered_share_before,
    covered_share_after`` (0–1), ``objective`` (demand newly covered; LSCP: number of sites), ``bound`` (proven:
    upper for k sites, lower for a target), ``gap`` (relative, 0 = proven optimal), ``optimal``, ``method``,
    ``sites`` (ranked: id, name, host_type, lon, lat WGS 84, ``gain`` = demand newly covered after the sites
    ranked above, ``covered_share_after``), ``remaining_gaps``, ``candidates``, ``seconds``, ``params``.

    An hours recommendation (``problem`` "hours", ``yizhan recommend --hours``) counts demand at its hour of the
    week: the shares and ``demand_covered_*`` are of orders with an open station within reach at their hour,
    ``objective`` the uncovered demand-hours removed, ``candidates`` the actions considered, ``sites`` the new sites
    among the actions (their ``rank`` their place in the one list), and ``actions`` the ranked list itself
    (``HourAction``), also kept in ``params``."""
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
    summary: RecommendationSummary = {
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
    if r.problem == "hours":
        order = list(HourAction.__annotations__)  # the stored JSON's keys come back sorted
        summary["actions"] = [HourAction(**{k: a[k] for k in order if k in a})  # type: ignore[typeddict-item]
                              for a in (r.params or {}).get("actions", [])]
    return summary


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
    for s in summary["sites"]:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                         "properties": {"layer": "site", **{k: v for k, v in s.items() if k not in ("lon", "lat")}}})
    rows = conn.execute(text("SELECT rank, demand, area_m2, cells, ST_AsGeoJSON(geom, 7) AS g "
                             "FROM recommendation_gaps WHERE run_id = :r ORDER BY rank"), {"r": run_id}).all()
    for g in rows:
        features.append({"type": "Feature", "geometry": json.loads(g.g),
                         "properties": {"layer": "remaining_gap", "rank": g.rank, "demand": round(g.demand, 3),
                                        "area_m2": round(g.area_m2, 1), "cells": g.cells}})
    properties = {k: v for k, v in summary.items() if k not in ("sites", "params")}
    return {"type": "FeatureCollection", "properties": properties, "features": features}


@dataclass
class RecommendationData:
    """A stored recommendation with its layers for maps (EPSG:4326)."""

    summary: RecommendationSummary
    area: AreaInfo
    stations: gpd.GeoDataFrame
    sites: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame  # the area's demand cells now (cell_key, weight)


def load_recommendation(engine: Engine, run_id: int) -> RecommendationData:
    """A stored recommendation run with its sites (and each one's address from the area's candidate list, None when
    it has none), remaining gaps, the area and its stations as they are now."""
    with engine.connect() as conn:
        summary = recommendation_of(conn, run_id)
        area_id = conn.execute(text("SELECT area_id FROM recommendation_runs WHERE id = :r"),
                               {"r": run_id}).scalar_one()
        info = get_area_by_id(conn, area_id)
        stations = stations_frame(conn, area_id)
        sites = gpd.read_postgis(text("SELECT s.rank, s.external_id, s.name, s.host_type, s.source, s.gain, "
                                      "s.covered_share_after, c.address, s.geom FROM recommended_sites s "
                                      "LEFT JOIN candidate_sites c ON c.area_id = :a AND c.external_id = s.external_id "
                                      "WHERE s.run_id = :r ORDER BY s.rank"), conn,
                                 geom_col="geom", crs=SRID, params={"r": run_id, "a": area_id}
                                 ).rename_geometry("geometry")
        gaps = gpd.read_postgis(text("SELECT rank, demand, area_m2, cells, geom FROM recommendation_gaps "
                                     "WHERE run_id = :r ORDER BY rank"), conn, geom_col="geom", crs=SRID,
                                params={"r": run_id}).rename_geometry("geometry")
        cells = cells_frame(conn, area_id)
    return RecommendationData(summary, info, stations, sites, gaps, cells)
