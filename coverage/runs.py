"""Stored coverage runs: the one module that writes a run's results to PostGIS and reads them back.

The analysis (``yizhan.coverage.analysis``) computes with no transaction open and hands a ``RunRecord`` to
``store_run``, which writes it in one transaction. Everything stored is WGS 84 (lon, lat); distances and areas
are metres and square metres measured in the area's metric CRS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NotRequired

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import Connection, Engine, Row, text
from typing_extensions import TypedDict

from yizhan.areas import AreaInfo, get_area_by_id, sector_units, units_frame
from yizhan.data.demand_points import LOCK_CLASS as DEMAND_LOCK_CLASS
from yizhan.db.binary_copy import Column, encode_rows
from yizhan.db.engine import driver_of
from yizhan.db.models import SRID
from yizhan.errors import Conflict, NotFound
from yizhan.stations.registry import stations_frame
from yizhan.weekly.figures import share_of
from yizhan.weekly.week import HOURS, LABELS_EN, LABELS_ZH

UNASSIGNED = "（未划入单元）unassigned"
"""The unit row of demand cells and stations that lie in none of the area's units."""



class RunSummary(TypedDict):
    """Headline figures of a stored coverage run (JSON-ready): demand in the layer's units, shares 0–1, the radius
    in metres, the covered area in km², ``created_at`` ISO 8601. Network runs add ``profile`` and
    ``covered_share_straight`` (the same stations and demand in a straight line); ``measured`` says whether the
    demand points or the cell centres were judged; runs by hour add ``by_hour`` (``RunHours.figures`` and
    ``covered_share_by_hour``, 168 shares or None, Monday 00:00 first) and runs with capacity ``capacity``;
    ``params`` holds the run's parameters and notes (dropped where only the figures are shown)."""

    run_id: int
    area: str
    mode: str
    radius_m: float
    stations: int
    cells: int
    demand_total: float
    demand_covered: float
    covered_share: float
    covered_area_km2: float
    gaps: int
    created_at: str
    params: NotRequired[dict[str, Any]]
    profile: NotRequired[str | None]
    covered_share_straight: NotRequired[float]
    measured: NotRequired[str]
    by_hour: NotRequired[dict[str, Any]]
    capacity: NotRequired[dict[str, Any]]


@dataclass
class RunHours:
    """A run's figures by hour of the week: hour ``h = weekday * 24 + hour`` (Monday 0, 0–167), the area's local
    wall-clock time. Demand is in the layer's units (orders); a point counts at its own hour, demand without a time
    is spread over the week by the area's profile."""

    demand: np.ndarray
    """(168,) demand at each hour."""
    covered: np.ndarray
    """(168,) of it within the radius of a station open at that hour."""
    open_stations: np.ndarray
    """(168,) active stations open at that hour."""
    units: pd.DataFrame
    """Per unit (township) and hour, long form: ``name, hour, demand, covered``."""
    figures: dict[str, Any]
    """The run's ``params["by_hour"]``: ``uncovered_demand_hours``, ``worst_hours`` (list of ``hour, label_zh,
    label_en, demand, covered, share``), ``night_gap_cells``, ``night_gap_demand``, ``measured`` (``points`` or
    ``cells``), ``week_start``, ``holidays``, ``unknown_hours_stations``, ``profile``."""

    @property
    def share(self) -> np.ndarray:
        """(168,) covered share 0–1 at each hour; NaN where there is no demand."""
        return share_of(self.covered, self.demand)


@dataclass
class RunData:
    """A stored run: summary figures and its layers, all GeoDataFrames in EPSG:4326."""

    summary: RunSummary
    area: AreaInfo
    stations: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    params: dict[str, Any] = field(default_factory=dict)
    covered_geom: Any = None  # the area within reach (discs or network service areas), EPSG:4326, or None
    unit_polygons: gpd.GeoDataFrame | None = None  # the area's units (or its sectors), EPSG:4326
    unit_table: pd.DataFrame | None = None  # ``units_table`` of the run
    hours: RunHours | None = None  # by hour of the week, for runs made with them (``--by-hour``)
    loads: pd.DataFrame | None = None
    """Capacity (``--capacity``): per station ``station_id`` (external id), ``name``, ``seats``, ``peak_hour``
    (0–167), ``peak_demand`` (demand within reach at that hour, weighted by the decay), ``per_seat`` (that demand per
    seat and hour of a typical week), ``crowded`` (bool), ``lon``, ``lat``; settings and counts in
    ``params["capacity"]``. The run's cells then carry ``accessibility`` (seats per unit of demand at the peak hour).
    Runs by hour give their cells ``covered_hours`` (21 bytes, bit h set when covered at hour h, little-endian bit
    order as ``numpy.packbits(..., bitorder="little")``), ``hours_covered`` (0–168) and ``night_gap`` (bool)."""


def cells_frame(conn: Connection, area_id: int) -> gpd.GeoDataFrame:
    """The area's current demand cells (``cell_key``, ``weight``, Polygon in EPSG:4326), ordered by key."""
    sql = "SELECT cell_key, weight, geom FROM area_cells WHERE area_id = :a ORDER BY cell_key"
    df = gpd.read_postgis(text(sql), conn, geom_col="geom", crs=SRID, params={"a": area_id})
    return df.rename_geometry("geometry")


@dataclass
class LayerCells:
    """An area's current demand cells as numbers, in the order they were stored: the layer's id and cell size
    (metres), each
    cell's id, key, weight and centre ``xy`` ((n, 2) metres in the area's CRS, x east, y north); ``lattice``: the
    cells are the squares their keys ``{size}m:{ix}:{iy}`` name."""

    layer_id: int
    cell_size_m: float | None
    lattice: bool
    cell_id: np.ndarray
    cell_key: np.ndarray
    weight: np.ndarray
    xy: np.ndarray

    def __len__(self) -> int:
        return len(self.cell_id)

    def frame(self) -> pd.DataFrame:
        """``cell_key`` (when read) and ``weight`` as a frame (what ``measured_demand`` reads)."""
        if len(self.cell_key) != len(self.cell_id):
            return pd.DataFrame({"weight": self.weight})
        return pd.DataFrame({"cell_key": self.cell_key, "weight": self.weight})

    def lattice_index(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The cells' column and row ``(ix, iy)`` on the lattice (the square of cell i spans ``ix*size`` to
        ``(ix+1)*size`` metres east, the same north), None for a layer that is no lattice."""
        if not self.lattice or not self.cell_size_m:
            return None
        return (np.floor(self.xy[:, 0] / self.cell_size_m).astype(np.int64),
                np.floor(self.xy[:, 1] / self.cell_size_m).astype(np.int64))


def layer_cells(conn: Connection, area_id: int, *, keys: bool | None = True) -> LayerCells | None:
    """The area's current cells as numbers, in the order they were stored (one query: the rows packed into one
    byte string by the server, so no Python object per cell and no geometry is made), None before any demand
    import. ``keys`` False leaves the keys unread (``cell_key`` empty): a run that matches no points to cells does
    without them, a string per cell; None reads them only for a layer that is no lattice (on a lattice the points
    find their cells by ``LayerCells.lattice_index``)."""
    row = conn.execute(text("SELECT id, cell_size_m, lattice FROM demand_layers WHERE area_id = :a "
                            "AND retired_at IS NULL"), {"a": area_id}).one_or_none()
    if row is None:
        return None
    if keys is None:
        keys = not (row.lattice and row.cell_size_m)
    packed = conn.execute(text(
        "SELECT count(*), string_agg(int4send(id) || float8send(weight) || float8send(x) || float8send(y), '' "
        f"ORDER BY id), {'array_agg(cell_key ORDER BY id)' if keys else 'NULL'} FROM demand_cells "
        "WHERE layer_id = :l"), {"l": row.id}).one()
    n = int(packed[0])
    rows = np.frombuffer(packed[1] or b"", dtype=CELL_ROW)
    key = np.empty(n if keys else 0, dtype=object)
    key[:] = packed[2] or []
    return LayerCells(int(row.id), row.cell_size_m, bool(row.lattice), rows["id"].astype(np.int64), key,
                      rows["weight"].astype(float), np.column_stack([rows["x"].astype(float),
                                                                      rows["y"].astype(float)]))


CELL_ROW = np.dtype([("id", ">i4"), ("weight", ">f8"), ("x", ">f8"), ("y", ">f8")])
"""A cell's numbers as ``layer_cells`` reads them: one row after another, each as the server sends it (big-endian):
one aggregate sorts the cells once."""


REIMPORTED = ("区域的需求在计算期间重新导入，请重新计算 / the area's demand was imported again while the run computed: "
              "run it again")
"""Why a run cannot be stored: the demand layer it analysed was replaced and deleted meanwhile."""


def cell_polygons(conn: Connection, cell_ids: np.ndarray, crs_epsg: int) -> gpd.GeoSeries:
    """The polygons of cells ``cell_ids`` (in that order) in EPSG ``crs_epsg`` (metres); Conflict when some are gone
    (their layer was replaced and deleted meanwhile)."""
    df = gpd.read_postgis(text("SELECT t.i, ST_Transform(c.geom, :crs) AS geom FROM unnest(CAST(:ids AS int[])) "
                               "WITH ORDINALITY AS t(id, i) JOIN demand_cells c ON c.id = t.id ORDER BY t.i"),
                          conn, geom_col="geom", crs=crs_epsg,
                          params={"ids": [int(i) for i in cell_ids], "crs": crs_epsg})
    if len(df) != len(cell_ids):
        raise Conflict(REIMPORTED)
    return df.geometry.reset_index(drop=True)


def multi_polygon(g: Any) -> MultiPolygon:
    """A Polygon as a one-part MultiPolygon; anything else unchanged."""
    return MultiPolygon([g]) if isinstance(g, Polygon) else g


def polygonal(g: Any) -> MultiPolygon | None:
    """The polygon parts of a geometry (an intersection may add stray lines or points), or None if there are none;
    a MultiPolygon as it is (a province's covered area is hundreds of MB: not copied)."""
    if g is None or g.is_empty:
        return None
    if isinstance(g, MultiPolygon):
        return g
    parts = [p for p in shapely.get_parts(g) if isinstance(p, Polygon | MultiPolygon) and not p.is_empty]
    polys = [q for p in parts for q in (p.geoms if isinstance(p, MultiPolygon) else [p])]
    return MultiPolygon(polys) if polys else None


@dataclass
class GapRow:
    """A gap to store: WGS 84 geometry and centroid; demand, area (m²) and cells; its nearest station and the
    distances to it (metres; None when no station is within the run's search)."""

    rank: int
    demand: float
    area_m2: float
    cells: int
    nearest_station_id: int | None
    nearest_distance_m: float | None
    straight_distance_m: float | None
    geometry: MultiPolygon
    centroid: Any


@dataclass
class UnitRow:
    """A unit's (township's) tallies of a run: stations in it, its demand and the demand covered (run metric and
    straight line)."""

    name: str
    stations: int
    demand: float
    demand_covered: float
    demand_covered_straight: float


@dataclass
class HourRecord:
    """What a run by hour of the week and/or with capacity stores beside the plain run (hours 0–167, Monday 00:00
    first, local time; demand in orders): per hour the demand, covered demand and stations open; per unit (by name)
    its demand and covered demand per hour; per cell its packed covered hours ((n, 21) uint8), hours covered,
    night gap and accessibility; the stations' loads (``RunData.loads`` columns plus ``db_id``)."""

    demand_by_hour: np.ndarray | None = None
    covered_by_hour: np.ndarray | None = None
    open_by_hour: np.ndarray | None = None
    unit_hours: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    cell_masks: np.ndarray | None = None
    hours_covered: np.ndarray | None = None
    night_gap: np.ndarray | None = None
    accessibility: np.ndarray | None = None
    loads: pd.DataFrame | None = None


@dataclass
class RunRecord:
    """Everything a coverage run stores. ``cells`` are the demand layer's cells it analysed and the arrays run
    along them: covered, the nearest station's id (-1 for none), the distance to it in the run's metric and in a
    straight line (metres, ``inf`` beyond the search)."""

    area_id: int
    mode: str
    profile: str | None
    radius_m: float
    params: dict[str, Any]
    stations: int
    demand_total: float
    demand_covered: float
    covered_share: float
    demand_covered_straight: float
    covered_area_m2: float
    covered_geom: Any  # WGS 84 (Multi)Polygon or None
    cells: LayerCells
    covered: np.ndarray
    nearest_station_id: np.ndarray
    distance_m: np.ndarray
    straight_m: np.ndarray
    gaps: list[GapRow] = field(default_factory=list)
    units: list[UnitRow] = field(default_factory=list)
    covered_weight: np.ndarray | None = None  # per cell, the orders of its points covered (runs measured on points)
    hours: HourRecord | None = None


def _floats(a: np.ndarray | None) -> list[float] | None:
    return None if a is None else [float(x) for x in a]


def store_run(engine: Engine, rec: RunRecord) -> RunSummary:
    """Write a run in one transaction (the run, its cells by COPY, its gaps, units and stations' loads); its
    ``summary_of``."""
    hours = rec.hours or HourRecord()
    with engine.begin() as conn:
        # the area's demand imports hold this lock while they retire and delete layers: a layer this run refers
        # to is either gone before (the run cannot be stored) or kept after (an import sees the run)
        conn.execute(text("SELECT pg_advisory_xact_lock(:c, :a)"), {"c": DEMAND_LOCK_CLASS, "a": rec.area_id})
        if conn.execute(text("SELECT 1 FROM demand_layers WHERE id = :l"), {"l": rec.cells.layer_id}).scalar() is None:
            raise Conflict(REIMPORTED)
        run_id = conn.execute(text(f"""
            INSERT INTO coverage_runs (area_id, mode, radius_m, params, stations, cells, demand_total, demand_covered,
                                       covered_share, covered_area_m2, gaps, covered_geom, profile,
                                       demand_covered_straight, demand_by_hour, covered_by_hour, open_by_hour,
                                       layer_id)
            VALUES (:a, :mode, :r, CAST(:params AS jsonb), :st, :cells, :tot, :done, :share, :carea, :gaps,
                    ST_Multi(ST_GeomFromWKB(:cg, {SRID})), :profile, :done_straight, :dh, :ch, :oh, :layer)
            RETURNING id"""), {
            "a": rec.area_id, "mode": rec.mode, "r": rec.radius_m, "params": json.dumps(rec.params),
            "st": rec.stations, "cells": len(rec.cells), "tot": rec.demand_total, "done": rec.demand_covered,
            "share": rec.covered_share, "carea": rec.covered_area_m2, "gaps": len(rec.gaps),
            "cg": shapely.to_wkb(rec.covered_geom) if rec.covered_geom is not None else None, "profile": rec.profile,
            "done_straight": rec.demand_covered_straight, "dh": _floats(hours.demand_by_hour),
            "ch": _floats(hours.covered_by_hour),
            "oh": None if hours.open_by_hour is None else [int(x) for x in hours.open_by_hour],
            "layer": rec.cells.layer_id}).scalar_one()
        _copy_cells(conn, run_id, rec, hours)
        if rec.gaps:
            _copy_gaps(conn, run_id, rec.gaps)
        if rec.units:
            conn.execute(text("INSERT INTO run_units (run_id, name, stations, demand, demand_covered, "
                              "demand_covered_straight, demand_by_hour, covered_by_hour) "
                              "VALUES (:r, :n, :s, :d, :c, :cs, :dh, :ch)"),
                         [{"r": run_id, "n": u.name, "s": u.stations, "d": u.demand, "c": u.demand_covered,
                           "cs": u.demand_covered_straight,
                           "dh": _floats(hours.unit_hours[u.name][0]) if u.name in hours.unit_hours else None,
                           "ch": _floats(hours.unit_hours[u.name][1]) if u.name in hours.unit_hours else None}
                          for u in rec.units])
        if hours.loads is not None and len(hours.loads):
            conn.execute(text(f"""
                INSERT INTO run_station_loads (run_id, external_id, station_id, name, seats, peak_hour, peak_demand,
                                               per_seat, crowded, geom)
                VALUES (:r, :x, :sid, :n, :seats, :ph, :pd, :ps, :c, ST_SetSRID(ST_MakePoint(:lon, :lat), {SRID}))"""),
                [{"r": run_id, "x": str(row.station_id), "sid": int(row.db_id), "n": row.name,
                  "seats": None if pd.isna(row.seats) else int(row.seats),
                  "ph": None if pd.isna(row.peak_hour) else int(row.peak_hour), "pd": float(row.peak_demand),
                  "ps": None if pd.isna(row.per_seat) else float(row.per_seat), "c": bool(row.crowded),
                  "lon": float(row.lon), "lat": float(row.lat)} for row in hours.loads.itertuples(index=False)])
        return summary_of(conn, run_id)


def units_table(conn: Connection, run_id: int) -> pd.DataFrame:
    """Per administrative unit of a run: stations, demand, covered share in the run's metric and straight line."""
    df = pd.read_sql(text("SELECT name, stations, demand, demand_covered, demand_covered_straight FROM run_units "
                          "WHERE run_id = :r ORDER BY name"), conn, params={"r": run_id})
    with np.errstate(invalid="ignore", divide="ignore"):
        df["covered_share"] = np.where(df["demand"] > 0, df["demand_covered"] / df["demand"], 0.0)
        df["covered_share_straight"] = np.where(df["demand"] > 0, df["demand_covered_straight"] / df["demand"], 0.0)
    return df


def layer_cell_size(conn: Connection, layer_id: int) -> float | None:
    """Edge of demand layer ``layer_id``'s cells in metres, as its import recorded it (None if not recorded)."""
    return conn.execute(text("SELECT cell_size_m FROM demand_layers WHERE id = :l"), {"l": layer_id}).scalar()


def cell_size_of(conn: Connection, area_id: int) -> float | None:
    """Edge of the area's demand cells in metres (None without cells)."""
    return conn.execute(text("SELECT max(cell_size_m) FROM area_cells WHERE area_id = :a"), {"a": area_id}).scalar()


def _float_column(values: np.ndarray | None, n: int) -> Column:
    """A float8 column, NULL where a value is missing or not finite (or everywhere, without values)."""
    if values is None:
        return Column(np.zeros(n), "float8", np.ones(n, dtype=bool))
    v = np.asarray(values, float)
    return Column(v, "float8", ~np.isfinite(v))


def _text(v: float | int | None) -> str:
    """A number as COPY's text format writes it (an integer as one, a float exactly), ``\\N`` for None."""
    if v is None:
        return "\\N"
    return str(int(v)) if isinstance(v, int | np.integer) else repr(float(v))


def _copy_gaps(conn: Connection, run_id: int, gaps: list[GapRow]) -> None:
    """The run's gaps into ``gaps`` by COPY, their polygons and centres as hexadecimal EWKB (WGS 84)."""
    geoms = shapely.to_wkb(shapely.set_srid(np.array([g.geometry for g in gaps], dtype=object), SRID), hex=True,
                           include_srid=True)
    centres = shapely.to_wkb(shapely.set_srid(np.array([g.centroid for g in gaps], dtype=object), SRID), hex=True,
                             include_srid=True)
    rows = "".join(
        f"{run_id}\t{_text(g.rank)}\t{_text(g.demand)}\t{_text(g.area_m2)}\t{_text(g.cells)}\t"
        f"{_text(g.nearest_station_id)}\t"
        f"{_text(g.nearest_distance_m)}\t{_text(g.straight_distance_m)}\t{wkb}\t{centre}\n"
        for g, wkb, centre in zip(gaps, geoms, centres, strict=True))
    raw = driver_of(conn)
    with raw.cursor() as cur, cur.copy("COPY gaps (run_id, rank, demand, area_m2, cells, nearest_station_id, "
                                       "nearest_distance_m, straight_distance_m, geom, centroid) FROM STDIN") as cp:
        cp.write(rows)


def _copy_cells(conn: Connection, run_id: int, rec: RunRecord, hours: HourRecord) -> None:
    """The run's results per cell into ``run_cells`` by binary COPY (numbers only; see ``db.binary_copy``)."""
    n = len(rec.cells)
    sid = np.asarray(rec.nearest_station_id, np.int64)
    masks = hours.cell_masks
    absent = np.ones(n, dtype=bool)
    columns = [
        Column(np.full(n, run_id), "int4"), Column(rec.cells.cell_id, "int4"),
        Column(np.asarray(rec.covered, bool), "bool"), Column(np.maximum(sid, 0), "int4", sid < 0),
        _float_column(rec.distance_m, n), _float_column(rec.straight_m, n), _float_column(rec.covered_weight, n),
        Column(np.zeros((n, 21), np.uint8), "bytea", absent) if masks is None
        else Column(np.asarray(masks, np.uint8), "bytea"),
        Column(np.zeros(n), "int2", absent) if hours.hours_covered is None
        else Column(np.asarray(hours.hours_covered), "int2"),
        Column(np.zeros(n), "bool", absent) if hours.night_gap is None
        else Column(np.asarray(hours.night_gap, bool), "bool"),
        _float_column(hours.accessibility, n)]
    raw = driver_of(conn)
    with raw.cursor() as cur, cur.copy(
            "COPY run_cells (run_id, cell_id, covered, nearest_station_id, distance_m, straight_distance_m, "
            "covered_weight, covered_hours, hours_covered, night_gap, accessibility) FROM STDIN (FORMAT BINARY)") as cp:
        cp.write(encode_rows(columns))


RUNS_SQL = ("SELECT r.id, r.area_id, r.mode, r.radius_m, r.params, r.stations, r.cells, r.demand_total, "
            "r.demand_covered, r.covered_share, r.covered_area_m2, r.gaps, r.profile, r.demand_covered_straight, "
            "r.created_at, r.demand_by_hour, r.covered_by_hour, r.open_by_hour, r.layer_id, a.name AS area "
            "FROM coverage_runs r JOIN areas a ON a.id = r.area_id")
"""A stored run's row with its area's name, without its covered area (a province's is hundreds of MB): what
``run_summary`` reads."""


def run_summary(r: Row[Any]) -> RunSummary:
    """Headline figures of a stored run from its row (``RUNS_SQL``): ``run_id, area, mode, radius_m, stations,
    cells, demand_total, demand_covered, covered_share (0–1), covered_area_km2, gaps, created_at`` (ISO); network
    runs add ``profile`` and ``covered_share_straight`` (the same stations and demand in a straight line)."""
    created: datetime = r.created_at
    out: RunSummary = {
        "run_id": r.id, "area": r.area, "mode": r.mode, "radius_m": r.radius_m, "stations": r.stations,
        "cells": r.cells, "demand_total": round(r.demand_total, 3), "demand_covered": round(r.demand_covered, 3),
        "covered_share": round(r.covered_share, 6), "covered_area_km2": round(r.covered_area_m2 / 1e6, 4),
        "gaps": r.gaps, "created_at": created.isoformat(), "params": r.params}
    params = r.params or {}
    out["measured"] = params.get("measured", "cells")
    if r.demand_by_hour is not None:
        by_hour = dict(params.get("by_hour") or {})
        by_hour["covered_share_by_hour"] = [None if np.isnan(v) else round(float(v), 6)
                                            for v in share_of(r.covered_by_hour, r.demand_by_hour)]
        out["by_hour"] = by_hour
    if "capacity" in params:
        out["capacity"] = params["capacity"]
    if r.mode == "network":
        out["profile"] = r.profile
        out["covered_share_straight"] = round(r.demand_covered_straight / r.demand_total, 6) if r.demand_total else 0.0
    return out


def summary_of(conn: Connection, run_id: int) -> RunSummary:
    """The ``run_summary`` of stored run ``run_id``; NotFound without it."""
    r = conn.execute(text(f"{RUNS_SQL} WHERE r.id = :id"), {"id": run_id}).one_or_none()
    if r is None:
        raise NotFound(f"no coverage run with id {run_id}")
    return run_summary(r)


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
        cells = gpd.read_postgis(text("SELECT cell_key, weight, covered, distance_m, straight_distance_m, "
                                      "covered_weight, covered_hours, hours_covered, night_gap, accessibility, geom "
                                      "FROM run_cells_in_layer "
                                      "WHERE run_id = :r ORDER BY cell_key"), conn, geom_col="geom", crs=SRID,
                                 params={"r": rid}).rename_geometry("geometry")
        cells["covered_hours"] = [None if b is None else bytes(b) for b in cells["covered_hours"]]
        hours = run_hours(conn, rid, summary.get("params") or {})
        loads = station_loads_frame(conn, rid) if "capacity" in (summary.get("params") or {}) else None
        gaps = gaps_frame(conn, rid)
        wkb = conn.execute(text("SELECT ST_AsBinary(covered_geom) FROM coverage_runs WHERE id = :r"),
                           {"r": rid}).scalar()
        polygons = units_frame(conn, area_id)
        if not len(polygons) and info.boundary is not None:
            polygons = sector_units(info.boundary)  # what run_coverage used
        table = units_table(conn, rid)
    return RunData(summary, info, stations, cells, gaps, summary.pop("params"),
                   shapely.from_wkb(bytes(wkb)) if wkb is not None else None, polygons, table, hours, loads)


def run_hours(conn: Connection, run_id: int, params: dict[str, Any]) -> RunHours | None:
    """A stored run's figures by hour of the week (None for a run made without them)."""
    row = conn.execute(text("SELECT demand_by_hour, covered_by_hour, open_by_hour FROM coverage_runs WHERE id = :r"),
                       {"r": run_id}).one()
    if row.demand_by_hour is None:
        return None
    units = conn.execute(text("SELECT name, demand_by_hour, covered_by_hour FROM run_units WHERE run_id = :r "
                              "AND demand_by_hour IS NOT NULL ORDER BY name"), {"r": run_id}).all()
    long = pd.DataFrame({
        "name": np.repeat([u.name for u in units], HOURS), "hour": np.tile(np.arange(HOURS), len(units)),
        "demand": np.concatenate([u.demand_by_hour for u in units]) if units else np.empty(0),
        "covered": np.concatenate([u.covered_by_hour for u in units]) if units else np.empty(0)})
    return RunHours(demand=np.asarray(row.demand_by_hour, float), covered=np.asarray(row.covered_by_hour, float),
                    open_stations=np.asarray(row.open_by_hour, np.int64), units=long,
                    figures=dict(params.get("by_hour") or {}))


def station_loads_frame(conn: Connection, run_id: int) -> pd.DataFrame:
    """A run's stations' loads (``RunData.loads``), the most loaded per seat first."""
    df = pd.read_sql(text("SELECT external_id AS station_id, name, seats, peak_hour, peak_demand, per_seat, crowded, "
                          "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM run_station_loads WHERE run_id = :r "
                          "ORDER BY per_seat DESC NULLS LAST, external_id"), conn, params={"r": run_id})
    df["seats"] = df["seats"].astype("Int64")
    df["peak_hour"] = df["peak_hour"].astype("Int16")
    return df


def list_runs(engine: Engine, *, area: str | None = None, limit: int = 50) -> list[RunSummary]:
    """The ``run_summary`` of the newest ``limit`` stored runs (of ``area`` when given), newest first: one query."""
    with engine.connect() as conn:
        rows = conn.execute(text(f"{RUNS_SQL} WHERE CAST(:area AS text) IS NULL OR a.name = :area "
                                 "ORDER BY r.id DESC LIMIT :n"), {"area": area, "n": limit}).all()
    return [run_summary(r) for r in rows]


def hours_document(conn: Connection, run_id: int) -> dict[str, Any]:
    """A stored run's figures by hour of the week as JSON: ``run_id``, ``figures`` (``RunHours.figures``), ``hours``
    (168 of ``hour`` 0–167 Monday 00:00 first, ``label_zh``, ``label_en``, ``demand``, ``covered``, ``share`` or
    None, ``open_stations``) and ``units`` (per township ``name``, ``demand`` and ``covered``: 168 numbers each).
    NotFound without the run or for a run made without hours."""
    summary = summary_of(conn, run_id)
    hours = run_hours(conn, run_id, summary.get("params") or {})
    if hours is None:
        raise NotFound(f"分析 {run_id} 没有按小时计算 / run {run_id} was made without hours "
                       f"(yizhan coverage --by-hour)")
    share = hours.share
    rows = [{"hour": h, "label_zh": LABELS_ZH[h], "label_en": LABELS_EN[h],
             "demand": round(float(hours.demand[h]), 6), "covered": round(float(hours.covered[h]), 6),
             "share": None if not np.isfinite(share[h]) else round(float(share[h]), 6),
             "open_stations": int(hours.open_stations[h])} for h in range(HOURS)]
    units = [{"name": name, "demand": [round(float(x), 6) for x in g["demand"]],
              "covered": [round(float(x), 6) for x in g["covered"]]}
             for name, g in hours.units.sort_values(["name", "hour"]).groupby("name", sort=True)]
    return {"run_id": run_id, "figures": hours.figures, "hours": rows, "units": units}


def loads_document(conn: Connection, run_id: int) -> dict[str, Any]:
    """A stored run's stations' loads as JSON: ``run_id``, ``capacity`` (its summary) and ``stations`` (the rows of
    ``station_loads_frame``, most loaded per seat first; None for unknown). NotFound without the run or for a run
    made without capacity."""
    summary = summary_of(conn, run_id)
    if "capacity" not in summary:
        raise NotFound(f"分析 {run_id} 没有计算容量 / run {run_id} was made without capacity (yizhan coverage "
                       f"--capacity)")
    df = station_loads_frame(conn, run_id)
    rows = json.loads(df.to_json(orient="records", force_ascii=False))
    return {"run_id": run_id, "capacity": summary["capacity"], "stations": rows}
