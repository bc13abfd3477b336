"""Partitioned coverage runs on Dask distributed: each part of a ``coverage.partitions`` plan computed by a worker
that reads its own cells, stations, demand points and streets, the parts' results merged cell by cell.

Exactness. A part owns its cells; it reads the active stations within its box grown by a halo, and its street graph
within the box grown by the halo plus ``max_snap_m``. A straight line or a street path of length d from a cell stays
within d of it, and a network distance is never shorter than the straight line, so:

- straight line: the halo is the radius plus ``euclidean.geodesic_band`` (the stations the ellipsoid check looks at)
  plus the plan's ``margin_m`` (a demand point's distance from its cell's centre) plus a metre. Coverage and the
  distances up to the radius are those of the whole area; the covered area, the union of every active station's
  disc, is drawn once by the caller (``coverage.disc_union``), as a whole run draws it. A cell whose nearest
  station lies beyond the halo is looked up again among the stations of a box four times as wide, and so on
  (``widened`` counts them), so every straight distance is the whole area's too.
- along the streets: the search runs to ``NETWORK_LIMIT_FACTOR`` x radius (a farther station gives ``inf``, as in a
  whole run), so the halo is that limit plus the margin (at least the radius plus 50 m: the service area's 25 m
  buffer around the reached streets). Every street path the search could use, every station it could reach and
  every street a station or a cell snaps to (within ``max_snap_m``) lie inside the part's graph, so the network
  distances, the stations found and the covered flags are the whole area's. The straight figures beside them are
  completed as above.

Street graphs: the area's stored graph cut to each part's grown box by the worker (the whole graph read once per
worker process), or, given the manifest of ``geo.street_parts`` (graphs per tile built from the province extract in
one pass, on a shared path), the part's own graph: the parts are then its tiles, and its halo must reach the one
this module needs.

The parts' results are merged by the cells' database ids (integers: matching 1.6 M cells by their string keys
took seconds), and a part measured on points reads them with ``data.demand_points.stored_points`` kept to its box
(the stored blocks of points lying outside it are not read).

Ties (two stations at exactly the same distance) may be broken differently from a whole run: the distance is the
same, the station named may differ.

Each finished part's result is saved (``part-<i>.npz``) under a job folder keyed by the area, its demand layer and
points, its stations, the street graph file and the parameters, in the settings' data folder
(``partitioned/<key>/``): running the same job again computes only the parts not saved yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from yizhan.areas import AreaInfo
from yizhan.arrays import lattice_code
from yizhan.coverage.area_union import union_of_regions
from yizhan.coverage.by_hour import HourInputs, cell_masks, check_options, reach_pairs
from yizhan.coverage.cell_coverage import (
    MODES,
    NETWORK_LIMIT_FACTOR,
    CellCoverage,
    check_radius,
    network_coverage,
    straight_coverage,
)
from yizhan.coverage.dask_jobs import RETRIES, run_on_dask
from yizhan.coverage.disc_union import disc_union
from yizhan.coverage.euclidean import geodesic_band, nearest_from_arrays
from yizhan.coverage.measure import Demand, check_measure, measured_demand, per_cell
from yizhan.coverage.network import snap_points
from yizhan.coverage.partitions import (
    SERVICE_REACH_M,
    UNIT_OWNER_SQL,
    BoxT,
    Part,
    PartitionPlan,
    grown,
    plan_partitions,
)
from yizhan.coverage.runs import layer_cell_size
from yizhan.coverage.streets import PROFILES, graph_file, load_area_graph
from yizhan.data.demand_points import point_totals, stored_points, stray_squares
from yizhan.data.h3_cells import point_keys, stray_points
from yizhan.db.engine import database_url, driver_rows, make_engine
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput, YizhanError
from yizhan.geo.street_parts import load_street_part, read_street_parts
from yizhan.geo.streets import StreetGraph
from yizhan.settings import Settings
from yizhan.weekly.availability import station_open
from yizhan.weekly.masks import covered_masks, hours_set, pack

JOB_FORMAT = "yizhan.partitioned/4"
"""Written into every job key: a change of what a part computes changes it, so old parts are not reused (2: the
parts' pairs, stations' hours and seats in the key; 3: the parts' cells by database id, a straight part without its
covered area; 4: a part's covered area cut to the area's boundary as well as to its region)."""
WIDEN = 4.0
"""Each further search for a cell's nearest station beyond the halo looks in a box this many times as wide."""
WIDEST_HALO_M = 1_000_000.0
"""Beyond this halo (metres) the widening search looks among all of the area's active stations."""
Progress = Callable[[str], None]


@dataclass(frozen=True)
class PartTask:
    """What a worker needs for one part: the settings (database, data folder, ``max_snap_m``), the area, the plan's
    part and its size (``n_parts``), the run's ``mode``, ``profile``, ``radius_m`` (metres) and what it measures
    (``points`` or ``cells``, decided for the whole area), the halos (metres) of its stations and of its street graph,
    how far a demand point may lie from its cell's centre (``margin_m``) and the job folder (scratch files of a
    network part); ``by_hour`` (with ``week_of`` and ``unknown_hours`` as ``run_coverage`` takes them): also the
    cells' covered hours of the week; ``pairs``: also every (location, station) pair within the radius of its
    locations (what a run by hour or with capacity builds its weekly figures on); ``street_parts``: the manifest of
    ``geo.street_parts`` whose graph ``part.index`` is the part's (else the area's graph is cut); ``sites_xy``,
    ``sites_lonlat`` and ``sites_index``: other sites (a recommendation's candidates) within the station halo, in
    metres of the area CRS, WGS 84 and their positions among all sites: also every (location, site) pair within the
    radius, as for the stations."""

    settings: Settings
    area: AreaInfo
    layer_id: int
    part: Part
    n_parts: int
    mode: str
    profile: str
    radius_m: float
    measured: str
    station_halo_m: float
    graph_halo_m: float
    margin_m: float
    job_dir: str
    by_hour: bool = False
    week_of: date | None = None
    unknown_hours: str = "open"
    street_parts: str | None = None
    pairs: bool = False
    sites_xy: np.ndarray | None = None
    sites_lonlat: np.ndarray | None = None
    sites_index: np.ndarray | None = None


@dataclass
class PartResult:
    """One part's results per cell, in the order of the cells' database ids (``cell_id``; ``cell_key`` their keys).

    ``station_id`` the nearest station's database id (-1 none, in the run's metric), ``distance_m`` the distance to
    it (metres, ``inf`` none), ``covered``, ``straight_m`` and ``covered_straight`` the straight-line figures,
    ``weight`` the cell's orders; measured on points, ``covered_weight`` and ``covered_straight_weight`` the covered
    orders per cell (else None). ``covered_wkb``: the covered area cut to the part's region and the area's boundary
    (WKB, metres, area CRS; None when empty). ``stations`` how many stations the part read, ``widened`` the cells
    whose straight nearest station was looked up beyond the halo, ``seconds`` the part's time in its worker,
    ``params`` the network figures (graph size, stations and cells off the network). ``cell_masks`` by hour of the
    week: (n, 21) uint8 packed, bit h set when the cell is covered at hour h (``coverage.by_hour.cell_masks``), else
    None. ``pairs`` asked: every (location, station) pair within the radius of the part's locations
    (``coverage.by_hour.reach_pairs``): ``pair_loc`` the location (measured on cells, a position in ``cell_key``; on
    points, the point's database id), ``pair_station`` the station's database id, ``pair_m`` the distance (run
    metric, metres), ``pair_checked`` how many straight pairs were decided on the ellipsoid; else None.
    ``site_loc``, ``site_idx``, ``site_m``: the same for the task's other sites (``site_idx`` a position among all
    sites), else None."""

    index: int
    cell_id: np.ndarray
    cell_key: np.ndarray
    weight: np.ndarray
    station_id: np.ndarray
    distance_m: np.ndarray
    covered: np.ndarray
    straight_m: np.ndarray
    covered_straight: np.ndarray
    covered_weight: np.ndarray | None
    covered_straight_weight: np.ndarray | None
    covered_wkb: bytes | None
    stations: int
    widened: int
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    cell_masks: np.ndarray | None = None
    pair_loc: np.ndarray | None = None
    pair_station: np.ndarray | None = None
    pair_m: np.ndarray | None = None
    pair_checked: int = 0
    site_loc: np.ndarray | None = None
    site_idx: np.ndarray | None = None
    site_m: np.ndarray | None = None

    def save(self, path: Path) -> None:
        """Write the result to ``path`` (``.npz``, no pickles), whole or not at all."""
        arrays: dict[str, Any] = {
            "index": np.int64(self.index), "cell_id": np.asarray(self.cell_id, dtype=np.int64),
            "cell_key": np.asarray(self.cell_key, dtype=str), "weight": self.weight,
            "station_id": self.station_id, "distance_m": self.distance_m, "covered": self.covered,
            "straight_m": self.straight_m, "covered_straight": self.covered_straight,
            "covered_wkb": np.frombuffer(self.covered_wkb or b"", dtype=np.uint8),
            "meta": np.array(json.dumps({"stations": self.stations, "widened": self.widened,
                                         "seconds": self.seconds, "params": self.params,
                                         "weights": self.covered_weight is not None,
                                         "pair_checked": self.pair_checked}))}
        if self.pair_loc is not None and self.pair_station is not None and self.pair_m is not None:
            arrays.update(pair_loc=self.pair_loc, pair_station=self.pair_station, pair_m=self.pair_m)
        if self.site_loc is not None and self.site_idx is not None and self.site_m is not None:
            arrays.update(site_loc=self.site_loc, site_idx=self.site_idx, site_m=self.site_m)
        if self.cell_masks is not None:
            arrays["cell_masks"] = self.cell_masks
        if self.covered_weight is not None and self.covered_straight_weight is not None:
            arrays["covered_weight"] = self.covered_weight
            arrays["covered_straight_weight"] = self.covered_straight_weight
        partial = path.with_name(f".{path.name}.partial.npz")
        with open(partial, "wb") as fh:
            np.savez(fh, **arrays)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> PartResult:
        """A result written by ``save``."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            wkb = z["covered_wkb"].tobytes()
            return cls(index=int(z["index"]), cell_id=z["cell_id"], cell_key=z["cell_key"].astype(object),
                       weight=z["weight"],
                       station_id=z["station_id"], distance_m=z["distance_m"], covered=z["covered"],
                       straight_m=z["straight_m"], covered_straight=z["covered_straight"],
                       covered_weight=z["covered_weight"] if meta["weights"] else None,
                       covered_straight_weight=z["covered_straight_weight"] if meta["weights"] else None,
                       covered_wkb=wkb or None, stations=meta["stations"], widened=meta["widened"],
                       seconds=meta["seconds"], params=meta["params"],
                       cell_masks=z["cell_masks"] if "cell_masks" in z.files else None,
                       pair_loc=z["pair_loc"] if "pair_loc" in z.files else None,
                       pair_station=z["pair_station"] if "pair_station" in z.files else None,
                       pair_m=z["pair_m"] if "pair_m" in z.files else None,
                       pair_checked=int(meta.get("pair_checked", 0)),
                       site_loc=z["site_loc"] if "site_loc" in z.files else None,
                       site_idx=z["site_idx"] if "site_idx" in z.files else None,
                       site_m=z["site_m"] if "site_m" in z.files else None)


@dataclass
class PartitionedCoverage:
    """A partitioned run merged, in the order of the area's cells (by database id, as ``coverage.runs.layer_cells``
    reads them).

    Fields
    ------
    coverage : CellCoverage
        As ``run_coverage`` gets it from ``straight_coverage`` / ``network_coverage``: ``station`` an index into
        ``station_ids`` (-1 none), ``distance_m`` in the run's metric, ``covered``, ``straight_m``,
        ``covered_straight``, ``covered_geom`` (metres, area CRS, cut to the area's boundary); no per-point flags and
        no snaps (the covered orders per cell are below).
    cell_ids, cell_keys, weights : ndarray, shape (n_cells,)
        The cells' database ids (ascending), keys and orders.
    station_ids : ndarray of int64
        The area's active stations' database ids, in the registry's order (by external id), as ``run_coverage`` reads
        them.
    measured : str
        ``points`` or ``cells`` (``coverage.measure``); ``notes`` why the points were not measured, when they were not.
    covered_weight, covered_straight_weight : ndarray or None
        Measured on points: covered orders per cell (run metric, straight line); None measured on cells.
    params : dict
        The run's parameters and network figures, as a whole run records them, plus ``partitions``.
    plan : PartitionPlan
    computed, reused : list of int
        The parts computed by this call and those read back from an earlier call of the same job.
    job_dir : Path
        The job folder holding the plan and each part's result.
    notes : list of str
    cell_masks, hours_covered : ndarray or None
        Run by hour: per cell its covered hours of the week, (n_cells, 21) uint8 packed (bit h: covered at hour h,
        Monday 00:00 first, local time) and how many (0–168), as ``coverage.by_hour`` gives them; else None.
    pair_loc, pair_station, pair_m, pair_checked : ndarray or None, int
        With ``pairs``: every (location, station) pair within the radius, all parts together: the location
        (measured on cells, a position in ``cell_keys``; on points, the point's database id), the station's
        database id, the distance (run metric, metres); and how many straight pairs were decided on the ellipsoid.
    site_loc, site_idx, site_m : ndarray or None
        With ``sites``: every (location, site) pair within the radius, the location as for the stations' pairs,
        the site by its position in ``sites``, the distance (run metric, metres).
    """

    coverage: CellCoverage
    cell_ids: np.ndarray
    cell_keys: np.ndarray
    weights: np.ndarray
    station_ids: np.ndarray
    measured: str
    covered_weight: np.ndarray | None
    covered_straight_weight: np.ndarray | None
    params: dict[str, Any]
    plan: PartitionPlan
    computed: list[int]
    reused: list[int]
    job_dir: Path
    notes: list[str] = field(default_factory=list)
    cell_masks: np.ndarray | None = None
    hours_covered: np.ndarray | None = None
    pair_loc: np.ndarray | None = None
    pair_station: np.ndarray | None = None
    pair_m: np.ndarray | None = None
    pair_checked: int = 0
    site_loc: np.ndarray | None = None
    site_idx: np.ndarray | None = None
    site_m: np.ndarray | None = None

    def locations(self, loc: np.ndarray, demand: Demand, cell_keys: np.ndarray) -> np.ndarray:
        """Positions in ``demand`` (measured as these parts measured) of the parts' locations ``loc`` (a position in
        ``self.cell_keys``, or a point's id); -1 for one ``demand`` does not hold. ``cell_keys``: the keys of
        ``demand``'s cells, in its order."""
        if demand.measured == "points":
            assert demand.point_id is not None, "stored points carry their ids"
            return np.asarray(pd.Index(demand.point_id).get_indexer(loc), dtype=np.int64)
        at = pd.Index(np.asarray(cell_keys).astype(str)).get_indexer(pd.Index(self.cell_keys.astype(str)))
        return np.asarray(at[loc], dtype=np.int64)


def halos(plan: PartitionPlan, mode: str, radius_m: float, max_snap_m: float, measured: str) -> tuple[float, float]:
    """The halos (metres) of a part's stations and of its street graph for a run (see the module's docstring)."""
    margin = plan.margin_m if measured == "points" else 1.0
    if mode == "network":
        station = max(radius_m * NETWORK_LIMIT_FACTOR, radius_m + SERVICE_REACH_M) + margin
        return station, station + max_snap_m
    return radius_m + geodesic_band(radius_m) + margin + 1.0, 0.0


def part_coverage(task: PartTask) -> PartResult:
    """Compute one part on a worker: read its cells, stations, demand points (and street graph) from PostGIS and the
    data folder, run ``straight_coverage`` or ``network_coverage`` on them, complete the straight distances beyond
    the halo and return the per-cell results (a plain function of picklable data, for Dask)."""
    started = time.perf_counter()
    info, part = task.area, task.part
    engine = make_engine(database_url(task.settings), statement_timeout_ms=0, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            cells = part_cells(conn, task.layer_id, part)
            cells_xy = cells[["x", "y"]].to_numpy(float)
            st_ids, st_xy, st_lonlat = active_stations(conn, info, grown(part.box, task.station_halo_m))
            cell_demand = measured_demand(conn, info, cells[["cell_key", "weight"]], cells_xy, None,
                                          measure="cells", timezone=task.settings.timezone)
            demand = (part_points(conn, info, task.layer_id, part, cells, cell_demand.cell_lonlat, task.margin_m,
                                  task.settings.timezone) if task.measured == "points" else cell_demand)
            clip = part.clip_geometry()
            params: dict[str, Any] = {}
            if task.mode == "network":
                part_settings = _part_graph_settings(task)
                cov = network_coverage(info, task.profile, cells_xy, st_xy, task.radius_m, params, lambda _m: None,
                                       part_settings, [str(i) for i in st_ids], demand, st_lonlat)
                boundary_m = info.boundary_m()
                region = clip if boundary_m is None else clip.intersection(boundary_m)
                geom = cov.covered_geom.intersection(region) if cov.covered_geom is not None else None
                params.pop("stations_off_network_list", None)
            else:
                # the covered area is the union of every station's disc: drawn whole by the caller
                cov = straight_coverage(cells_xy, st_xy, task.radius_m, clip, demand, st_lonlat, area=False)
                geom = None
            n = len(cells)
            station_id = np.full(n, -1, dtype=np.int64)
            found = cov.station >= 0
            station_id[found] = st_ids[cov.station[found]]
            far, far_id = _complete_straight(conn, info, part.box, task.station_halo_m, cells_xy, cov)
            if task.mode != "network":  # a straight run's own distance is the straight one (the same array)
                station_id[far] = far_id
            masks = (_hour_masks(conn, task, demand, cells["weight"].to_numpy(float), cov, st_ids, st_xy, st_lonlat)
                     if task.by_hour else None)
            pairs = _part_pairs(task, demand, st_xy, st_lonlat, cov.snaps) if task.pairs else None
            site_pairs = _part_site_pairs(task, demand, cov) if task.sites_xy is not None else None
    finally:
        engine.dispose()
    covered_w = straight_w = None
    if cov.loc_covered is not None and cov.loc_covered_straight is not None:
        covered_w = per_cell(demand, cov.loc_covered, n)
        straight_w = per_cell(demand, cov.loc_covered_straight, n)
    wkb = shapely.to_wkb(geom) if geom is not None and not geom.is_empty else None
    return PartResult(index=part.index, cell_id=cells["id"].to_numpy(np.int64),
                      cell_key=cells["cell_key"].to_numpy(object),
                      weight=cells["weight"].to_numpy(float), station_id=station_id,
                      distance_m=np.asarray(cov.distance_m, float), covered=np.asarray(cov.covered, bool),
                      straight_m=np.asarray(cov.straight_m, float),
                      covered_straight=np.asarray(cov.covered_straight, bool), covered_weight=covered_w,
                      covered_straight_weight=straight_w, covered_wkb=wkb, stations=len(st_ids), widened=len(far),
                      seconds=time.perf_counter() - started, params=params, cell_masks=masks,
                      **_pair_fields(pairs, demand, st_ids), **_site_fields(site_pairs, demand, task.sites_index))


def _part_pairs(task: PartTask, demand: Demand, st_xy: np.ndarray, st_lonlat: np.ndarray,
                snaps: Any) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], int]:
    """Every (location, site) pair within the radius of the part's locations, in the part's indices (sites: rows of
    ``st_xy``, ``st_lonlat``), and how many straight pairs were decided on the ellipsoid
    (``coverage.by_hour.reach_pairs``: in a straight line, or along the part's streets from ``snaps``, the graph and
    the sites and locations snapped to it). Every site within the radius of a location lies within the halo, so the
    pairs are the whole area's."""
    inp = HourInputs(demand=demand, active=gpd.GeoDataFrame(), st_xy=st_xy, st_lonlat=st_lonlat,
                     radius_m=task.radius_m, mode=task.mode, snaps=snaps, cell_weights=np.empty(0),
                     cell_owner=np.empty(0, dtype=np.int64), unit_names=[], timezone=task.settings.timezone,
                     profile=None, by_hour=False, capacity=False)
    return reach_pairs(inp, lambda _m: None)


def _part_site_pairs(task: PartTask, demand: Demand,
                     cov: CellCoverage) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], int]:
    """The task's other sites' pairs (``_part_pairs``), along the streets snapped to the part's graph as its
    stations were."""
    assert task.sites_xy is not None and task.sites_lonlat is not None
    snaps = None
    if task.mode == "network":
        graph, _stations, locations = cov.snaps
        snaps = (graph, snap_points(graph, task.sites_xy, max_snap_m=task.settings.max_snap_m), locations)
    return _part_pairs(task, demand, task.sites_xy, task.sites_lonlat, snaps)


def _site_fields(pairs: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], int] | None, demand: Demand,
                 index: np.ndarray | None) -> dict[str, Any]:
    """A part's pairs with the task's other sites as ``PartResult`` holds them (sites by their position among all)."""
    if pairs is None or index is None:
        return {}
    fields = _pair_fields(pairs, demand, index)
    return {"site_loc": fields["pair_loc"], "site_idx": fields["pair_station"], "site_m": fields["pair_m"]}


def _pair_fields(pairs: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], int] | None, demand: Demand,
                 st_ids: np.ndarray) -> dict[str, Any]:
    """A part's pairs as ``PartResult`` holds them: locations named by position (cells) or point id (points),
    stations by database id."""
    if pairs is None:
        return {}
    (dem, site, dist), checked = pairs
    dem = np.asarray(dem, dtype=np.int64)
    if demand.measured == "points":
        assert demand.point_id is not None, "a part's points carry their ids"
        loc = demand.point_id[dem]
    else:
        loc = dem
    return {"pair_loc": np.asarray(loc, dtype=np.int64),
            "pair_station": np.asarray(st_ids, dtype=np.int64)[np.asarray(site, dtype=np.int64)],
            "pair_m": np.asarray(dist, dtype=float), "pair_checked": int(checked)}


def _hour_masks(conn: Connection, task: PartTask, demand: Demand, weights: np.ndarray, cov: CellCoverage,
                st_ids: np.ndarray, st_xy: np.ndarray, st_lonlat: np.ndarray) -> np.ndarray:
    """The part's cells' covered hours of the week, (n, 21) packed: its stations' opening hours, every
    (location, station) pair within the radius (``coverage.by_hour.reach_pairs``: in a straight line, or along the
    part's streets from the snaps its network run made), the hours applied as masks. Every station within the radius
    of a location lies within the halo, so the masks are the whole area's."""
    frame = pd.read_sql(text("SELECT id AS station_id, external_id, name, opening_hours, seats FROM stations "
                             "WHERE id = ANY(:ids)"), conn, params={"ids": [int(i) for i in st_ids]})
    frame = frame.set_index("station_id").reindex(st_ids).reset_index()
    active = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(st_lonlat[:, 0], st_lonlat[:, 1]), crs=SRID)
    inp = HourInputs(demand=demand, active=active, st_xy=st_xy, st_lonlat=st_lonlat, radius_m=task.radius_m,
                     mode=task.mode, snaps=cov.snaps, cell_weights=weights,
                     cell_owner=np.zeros(len(weights), dtype=np.int64), unit_names=[], timezone=task.settings.timezone,
                     profile=None, by_hour=True, capacity=False, week_of=task.week_of,
                     unknown_hours=task.unknown_hours)
    # a station without hours is unknown (None; a frame holds it as NaN)
    rules = [v if isinstance(v, str) else None for v in active["opening_hours"]]
    avail = station_open(rules, tz=inp.timezone, week_of=inp.week_of, unknown=inp.unknown_hours)
    (dem, site, _dist), _checked = reach_pairs(inp, lambda _m: None)
    return cell_masks(demand, covered_masks(dem, site, pack(avail.open), len(demand.weight)), weights)


def _envelope_sql(box: BoxT) -> tuple[str, dict[str, Any]]:
    """A WHERE fragment keeping geometries (column ``geom_col`` in WGS 84) whose bounding box meets ``box`` (metres,
    area CRS :crs) drawn in WGS 84: its edges are followed every 1 km, and it is grown by 100 m first, so the
    fragment is a superset a caller then cuts exactly in metres. Uses the GiST index."""
    w, s, e, n = grown(box, 100.0)
    return ("ST_Transform(ST_Segmentize(ST_MakeEnvelope(:w, :s, :e, :n, :crs), 1000), 4326)",
            {"w": w, "s": s, "e": e, "n": n})


def part_cells(conn: Connection, layer_id: int, part: Part) -> pd.DataFrame:
    """The cells of demand layer ``layer_id`` that ``part`` owns (database ``id``, ``cell_key``, ``weight``, centre
    ``x``, ``y`` metres, area CRS), by id."""
    if part.units or part.unowned:
        sql = ("SELECT id, cell_key, weight, x, y FROM (SELECT c.id, c.cell_key, c.weight, c.x, c.y, "
               f"{UNIT_OWNER_SQL} AS owner FROM demand_cells c WHERE c.layer_id = :l AND c.x >= :w AND c.x <= :e "
               "AND c.y >= :s AND c.y <= :n) t WHERE owner = ANY(:units) OR (CAST(:unowned AS boolean) AND owner IS "
               "NULL) ORDER BY id")
        params: dict[str, Any] = {"units": list(part.units), "unowned": part.unowned}
    else:
        sql = ("SELECT id, cell_key, weight, x, y FROM demand_cells WHERE layer_id = :l AND x >= :w AND x < :e "
               "AND y >= :s AND y < :n ORDER BY id")
        params = {}
    w, s, e, n = part.box
    params.update({"l": layer_id, "w": w, "s": s, "e": e, "n": n})
    frame = pd.DataFrame(driver_rows(conn, sql, params), columns=["id", "cell_key", "weight", "x", "y"])
    return frame.astype({"id": np.int64, "cell_key": object, "weight": float, "x": float, "y": float})


def active_stations(conn: Connection, info: AreaInfo, box: BoxT | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The area's active stations within ``box`` (metres, area CRS; None: all), in the registry's order (by external
    id): database ids, (n, 2) metres of the area CRS (projected as ``run_coverage`` projects them), (n, 2) WGS 84
    lon/lat."""
    sql = ("SELECT s.id, ST_X(s.geom), ST_Y(s.geom) FROM stations s WHERE s.area_id = :a AND s.status = 'active'")
    params: dict[str, Any] = {"a": info.id, "crs": info.crs_epsg}
    if box is not None:
        env, extra = _envelope_sql(box)
        sql += f" AND s.geom && {env}"
        params.update(extra)
    rows = driver_rows(conn, sql + " ORDER BY s.external_id", params)
    ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    lonlat = np.asarray([(r[1], r[2]) for r in rows], dtype=float).reshape(-1, 2)
    pts = gpd.GeoSeries(gpd.points_from_xy(lonlat[:, 0], lonlat[:, 1]), crs=SRID).to_crs(info.crs_epsg)
    xy = np.column_stack([pts.x.to_numpy(float), pts.y.to_numpy(float)]) if len(pts) else np.empty((0, 2))
    if box is not None:
        w, s, e, n = box
        keep = (xy[:, 0] >= w) & (xy[:, 0] <= e) & (xy[:, 1] >= s) & (xy[:, 1] <= n)
        ids, xy, lonlat = ids[keep], xy[keep], lonlat[keep]
    return ids, xy, lonlat


def part_points(conn: Connection, info: AreaInfo, layer_id: int, part: Part, cells: pd.DataFrame,
                cell_lonlat: np.ndarray, margin_m: float, timezone: str) -> Demand:
    """The stored demand points of the part's ``cells`` (``cell_key``, ``weight``; centres ``cell_lonlat`` WGS 84) as
    the ``Demand`` a run measured on points judges: their cells keyed and their hours of the week read as
    ``data.demand_points.stored_points`` reads them for the whole area (the same reader, kept to the box), in its
    order (``id``). Points lie within ``margin_m`` metres of their cell's centre, so only those of the part's box
    grown by it are read."""
    recorded = layer_cell_size(conn, layer_id)
    assert recorded is not None, "an import of points records its layer's cell size"
    size = float(recorded)
    pts = stored_points(conn, info, cell_size_m=size, timezone=timezone, box=grown(part.box, margin_m))
    h3_keys = point_keys(cells["cell_key"], pts.lon, pts.lat)
    if h3_keys is None:  # squares of the lattice: the points find their cells by column and row, as a whole run
        ix, iy = (np.floor(cells[c].to_numpy(float) / size).astype(np.int64) for c in ("x", "y"))
        cell_of = pd.Index(lattice_code(ix, iy)).get_indexer(lattice_code(pts.ix, pts.iy))
    else:  # H3 cells: the points' own H3 cells
        cell_of = pd.Index(cells["cell_key"].astype(str)).get_indexer(pd.Index(h3_keys))
    mine = cell_of >= 0
    weight = pts.weight[mine]
    return Demand("points", np.column_stack([pts.x, pts.y])[mine], np.column_stack([pts.lon, pts.lat])[mine],
                  cell_of[mine].astype(np.int64), weight, cell_lonlat, np.arange(int(mine.sum()), dtype=np.int64),
                  pts.hour.astype(np.int16)[mine], weight, point_id=None if pts.ids is None else pts.ids[mine])


def _complete_straight(conn: Connection, info: AreaInfo, box: BoxT, halo_m: float, cells_xy: np.ndarray,
                       cov: CellCoverage) -> tuple[np.ndarray, np.ndarray]:
    """Straight distances of the cells whose nearest station the halo does not settle, looked up among the active
    stations of ever wider boxes (``WIDEN`` times each), at last among all; ``cov.straight_m`` updated in place.
    Returns those cells (positions) and their nearest stations' database ids (-1: the area has no active station).
    """
    # a cell's centre lies in the box, so a station within halo_m of it lies in the grown box: up to there, exact
    todo = np.flatnonzero(~(cov.straight_m <= halo_m))
    cells, ids_found = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    if not len(todo):
        return cells[0], ids_found[0]
    total = conn.execute(text("SELECT count(*) FROM stations WHERE area_id = :a AND status = 'active'"),
                         {"a": info.id}).scalar_one()
    halo = halo_m
    while len(todo):
        halo *= WIDEN
        # past a thousand kilometres, all of the area's stations (a box that wide may not even transform)
        everyone = halo > WIDEST_HALO_M
        ids, xy, _ = active_stations(conn, info, None if everyone else grown(box, halo))
        res = nearest_from_arrays(cells_xy[todo], xy, 0.0)
        done = (res.distance_m <= halo) | (len(ids) >= total) | everyone
        sel = todo[done]
        cov.straight_m[sel] = res.distance_m[done]
        sid = np.full(len(sel), -1, dtype=np.int64)
        hit = res.station[done] >= 0
        sid[hit] = ids[res.station[done][hit]]
        cells.append(sel)
        ids_found.append(sid)
        todo = todo[~done]
    return np.concatenate(cells), np.concatenate(ids_found)


_last_mtime: dict[str, int] = {}
_mtime_lock = threading.Lock()


def _part_graph_settings(task: PartTask) -> Settings:
    """Settings whose data folder holds the part's own street graph where ``load_area_graph`` finds it, so that
    ``network_coverage`` runs unchanged on it.

    With ``task.street_parts`` the graph is the part's own file of ``geo.street_parts`` (built from the province
    extract without the whole graph in memory; its halo checked by ``partitioned_coverage``). Without, it is the
    area's stored graph cut to the part's box grown by ``graph_halo_m``: every edge whose bounds meet that box, with
    its end nodes (costs and geometry as stored); the area's graph is then read whole once per worker process
    (cached). One folder per worker thread: each load sees its own file."""
    folder = Path(task.job_dir) / "scratch" / f"{os.getpid()}-{threading.get_ident()}"
    part_settings = task.settings.model_copy(update={"data_dir": folder})
    if task.street_parts is not None:
        entries = read_street_parts(task.street_parts)["parts"]
        if entries[task.part.index]["file"] is not None:
            graph = load_street_part(task.street_parts, task.part.index)
        else:  # no street near this tile (a lake, islands): its cells are off the network, as in a whole run
            other = next((i for i, e in enumerate(entries) if e["file"] is not None), None)
            if other is None:
                raise InvalidInput("路网分区中没有街道 / the street parts hold no street: build them again")
            graph = clipped_graph(load_street_part(task.street_parts, other), grown(task.part.box, task.graph_halo_m))
    else:
        graph = clipped_graph(load_area_graph(task.area, task.profile, task.settings),
                              grown(task.part.box, task.graph_halo_m))
    path = graph_file(task.area, task.profile, part_settings)
    graph.save(path)
    # the graph cache knows a file by its path and modification time: make sure this one is new to it
    with _mtime_lock:
        mtime = path.stat().st_mtime_ns
        last = _last_mtime.get(str(path))
        if last is not None and mtime <= last:
            mtime = last + 1
            os.utime(path, ns=(mtime, mtime))
        _last_mtime[str(path)] = mtime
    return part_settings


def clipped_graph(graph: StreetGraph, box: BoxT) -> StreetGraph:
    """The part of ``graph`` within ``box`` (west, south, east, north; metres of the graph's CRS): the end nodes of
    the edges whose bounds meet it and every edge between two of them, in their order; travel costs, lengths and
    geometry unchanged."""
    meets = graph.tree().query(shapely.box(*box))
    if not len(meets):
        meets = np.zeros(1, dtype=np.int64)  # a graph needs an edge; one far away reaches nothing
    nodes = np.unique(np.concatenate([graph.u[meets], graph.v[meets]]))
    kept = np.zeros(graph.n_nodes, dtype=bool)
    kept[nodes] = True
    # every edge between kept nodes, so that the edges and the travel costs (the nodes' submatrix) agree
    edges = np.flatnonzero(kept[graph.u] & kept[graph.v])
    renumber = np.full(graph.n_nodes, -1, dtype=np.int64)
    renumber[nodes] = np.arange(len(nodes))
    adjacency = graph.adjacency_t[nodes][:, nodes].tocsr()
    return StreetGraph(x=graph.x[nodes], y=graph.y[nodes], node_id=graph.node_id[nodes], u=renumber[graph.u[edges]],
                       v=renumber[graph.v[edges]], length=graph.length[edges],
                       reverse_factor=graph.reverse_factor[edges], geometry=graph.geometry[edges],
                       crs_epsg=graph.crs_epsg, directed=graph.directed, adjacency_t=adjacency)


def partitioned_coverage(settings: Settings, info: AreaInfo, *, mode: str = "straight", profile: str = "walk",
                         radius_m: float, measure: str = "auto", parts: int, by: str = "tiles",
                         scheduler: Any = None, progress: Progress | None = None, by_hour: bool = False,
                         week_of: date | None = None, unknown_hours: str = "open",
                         street_parts: str | Path | None = None, pairs: bool = False,
                         sites: tuple[np.ndarray, np.ndarray] | None = None,
                         task: Callable[[PartTask], PartResult] = part_coverage) -> PartitionedCoverage:
    """Coverage of ``info``'s current demand cells by its active stations, computed in ``parts`` parts on Dask and
    merged: cell by cell what ``straight_coverage`` / ``network_coverage`` give for the whole area (see the module's
    docstring), fields as ``PartitionedCoverage`` names them.

    ``mode``, ``profile``, ``radius_m`` (metres), ``measure`` and, with ``by_hour``, ``week_of`` and
    ``unknown_hours`` as for ``run_coverage`` (by hour: the cells' covered hours of the week, not the run's hourly
    figures and capacity, which take the whole area's demand: ``pairs`` gives ``run_coverage`` what they are built
    on, every (location, station) pair within the radius, found by the parts); ``sites``: other sites, metres of
    the area CRS (n, 2) and WGS 84 lon/lat (n, 2) (a recommendation's candidates), whose pairs within the radius the
    parts find too (``site_loc``, ...); ``street_parts``: the manifest (or
    its folder) of
    the profile's street graphs per partition (``geo.street_parts``), on a shared path: the parts are its tiles
    (every cell must lie in one) and each is computed on its own graph, whose halo must reach the search limit plus
    ``max_snap_m`` (the covered area beyond the tiles is exact as far as that halo reaches); ``by`` ``tiles`` or
    ``units`` (``coverage.partitions``). ``scheduler``: a ``distributed.Client`` to use, or a scheduler's address
    (``tcp://HOST:8786``); else ``settings.dask_scheduler``; else a ``LocalCluster`` of
    ``settings.partition_workers`` worker processes with one thread each, each allowed the machine's memory divided
    by their number (Dask's ``memory_limit="auto"``: it pauses a worker at 80 % and restarts it at 95 %). Each part
    runs ``task`` (``part_coverage``; another top-level function taking a ``PartTask`` may wrap it), is retried
    ``RETRIES`` times when it fails, reports ``part 3/8 done: 12,345 cells, 4.1 s`` through ``progress`` and is saved
    in the job folder; a run of the same job computes only the parts not saved. A part that still fails ends the run
    with a YizhanError naming it, after the others are saved."""
    if mode not in MODES:
        raise InvalidInput(f"计算方式 mode {mode!r}: 可用 expected one of {', '.join(MODES)}")
    if profile not in PROFILES:
        raise InvalidInput(f"路网类型 profile {profile!r}: 可用 expected one of {', '.join(PROFILES)}")
    radius_m = check_radius(radius_m)
    check_measure(measure)
    check_options(unknown_hours=unknown_hours, decay="none")
    say = progress or (lambda _msg: None)
    manifest = read_street_parts(street_parts) if street_parts is not None and mode == "network" else None
    tiles = None
    if manifest is not None:
        if manifest.get("profile") != profile or int(manifest.get("crs_epsg", -1)) != info.crs_epsg:
            raise InvalidInput(f"路网分区 {manifest['path']} 不适用 / the street parts {manifest['path']} are of "
                               f"profile {manifest.get('profile')!r}, EPSG {manifest.get('crs_epsg')}: expected "
                               f"{profile!r}, EPSG {info.crs_epsg} (the area's)")
        tiles = np.asarray([p["rect"] for p in sorted(manifest["parts"], key=lambda p: p["index"])], dtype=float)
    engine = make_engine(database_url(settings), statement_timeout_ms=0, pool_size=1)
    try:
        with engine.connect() as conn:
            plan = plan_partitions(conn, info, parts, by=by, tiles=tiles)
            measured, notes = _measured(conn, info, plan.layer_id, measure)
            ids = np.asarray([r[0] for r in driver_rows(
                conn, "SELECT id FROM demand_cells WHERE layer_id = :l ORDER BY id", {"l": plan.layer_id})],
                dtype=np.int64)
            station_ids, station_xy, _ = active_stations(conn, info, None)
            job = _job_key(conn, info, plan, settings, mode=mode, profile=profile, radius_m=radius_m,
                           street_parts=manifest["path"] if manifest is not None else None,
                           measured=measured, hours=[by_hour, week_of.isoformat() if week_of else None,
                                                     unknown_hours, settings.timezone] if by_hour else None,
                           pairs=pairs, sites=_digest(sites))
    finally:
        engine.dispose()
    station_halo, graph_halo = halos(plan, mode, radius_m, settings.max_snap_m, measured)
    if manifest is not None and float(manifest["halo_m"]) < graph_halo:
        raise InvalidInput(f"路网分区的缓冲 {float(manifest['halo_m']):,.0f} 米不够 / the street parts' halo "
                           f"{float(manifest['halo_m']):,.0f} m is too narrow: this run needs {graph_halo:,.0f} m "
                           f"(the search limit {radius_m * NETWORK_LIMIT_FACTOR:,.0f} m, half a cell's diagonal and "
                           f"max_snap_m {settings.max_snap_m:g} m); build them again with that halo")
    if mode == "network" and manifest is None and not graph_file(info, profile, settings).exists():
        raise InvalidInput(f"区域 {info.name!r} 还没有 {profile} 路网 / area {info.name!r} has no {profile} street "
                           f"network yet: build it with "
                           f"`yizhan network build --area {info.name} --osm EXTRACT.osm.pbf`")
    job_dir = settings.data_dir / "partitioned" / job
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "plan.json").write_text(plan.to_json())
    results: dict[int, PartResult] = {}
    for p in plan.parts:
        path = job_dir / f"part-{p.index}.npz"
        if path.exists():
            try:
                results[p.index] = PartResult.load(path)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                path.unlink(missing_ok=True)  # a torn or foreign file: computed again
    reused = sorted(results)
    missing = [p for p in plan.parts if p.index not in results]
    say(f"{len(plan.parts)} parts ({plan.by}) of {plan.cells:,} cells, halo {station_halo:,.0f} m; "
        f"{len(reused)} already done, {len(missing)} to compute")
    failures: list[str] = []
    if missing:
        tasks = [PartTask(settings=settings, area=info, layer_id=plan.layer_id, part=p, n_parts=len(plan.parts),
                          mode=mode, profile=profile, radius_m=radius_m, measured=measured,
                          station_halo_m=station_halo, graph_halo_m=graph_halo, margin_m=plan.margin_m,
                          job_dir=str(job_dir), by_hour=by_hour, week_of=week_of, unknown_hours=unknown_hours,
                          street_parts=manifest["path"] if manifest is not None else None, pairs=pairs,
                          **_sites_near(sites, p, station_halo))
                 for p in missing]
        def keep(t: PartTask, result: PartResult) -> str:
            result.save(job_dir / f"part-{t.part.index}.npz")
            results[t.part.index] = result
            return f"{len(result.cell_key):,} cells, {result.seconds:.1f} s"

        failures = run_on_dask(settings, scheduler, say, task, tasks, name=f"yizhan-part-{job_dir.name}",
                               label=lambda t: f"part {t.part.index + 1}/{t.n_parts}", on_result=keep)
    if failures:
        raise YizhanError(f"{len(failures)} 个分区计算失败（已重试 {RETRIES} 次），再次运行只计算未完成的分区 / "
                          f"{len(failures)} part(s) failed after {RETRIES} retries; running the same job again "
                          f"computes only the parts not done: {'; '.join(failures)}")
    shutil.rmtree(job_dir / "scratch", ignore_errors=True)  # the network parts' graphs (a local cluster's)
    # in a straight line the covered area is the union of every active station's disc, as one process draws it
    # (coverage.disc_union: the edge discs alone are overlaid), not the parts' areas overlaid along their edges
    whole = disc_union(station_xy, radius_m) if mode == "straight" and len(station_xy) else None
    merged = merge_parts(plan, [results[p.index] for p in plan.parts], ids, station_ids, info, measured,
                         whole_area=whole)
    merged.params.update({"radius_m": radius_m, "mode": mode, "crs_epsg": info.crs_epsg, "measured": measured,
                          "partitions": {"parts": len(plan.parts), "by": plan.by, "halo_m": station_halo,
                                         "graph_halo_m": graph_halo if mode == "network" else None,
                                         "widened_cells": int(sum(r.widened for r in results.values()))}})
    if mode == "network":
        merged.params["search_limit_m"] = radius_m * NETWORK_LIMIT_FACTOR
    merged.computed = sorted(p.index for p in missing)
    merged.reused = reused
    merged.job_dir = job_dir
    merged.notes = notes
    return merged


def merge_parts(plan: PartitionPlan, parts: list[PartResult], ids: np.ndarray, station_ids: np.ndarray,
                info: AreaInfo, measured: str, whole_area: BaseGeometry | None = None) -> PartitionedCoverage:
    """The parts' results in the order of ``ids`` (the layer's cells' database ids, ascending), stations as
    positions in ``station_ids``; the covered area (``whole_area`` when given, cut to the area's boundary here; else
    the parts' areas, cut by their parts, merged by ``_merged_area``). Raises when the parts do not hold every cell
    exactly once."""
    n = len(ids)
    got = np.concatenate([p.cell_id for p in parts]) if parts else np.empty(0, dtype=np.int64)
    where = np.minimum(np.searchsorted(ids, got), max(n - 1, 0))
    if len(got) != n or (n and (ids[where] != got).any()) or len(np.unique(where)) != n:
        raise YizhanError(f"分区结果与需求网格不符，请重新运行 / the parts hold {len(got):,} cells, the demand layer "
                          f"{n:,}: the cells changed during the run; run it again")

    def gather(name: str, dtype: Any) -> np.ndarray:
        out = np.empty(n, dtype=dtype)
        out[where] = np.concatenate([getattr(p, name) for p in parts])
        return out

    sid = gather("station_id", np.int64)
    station = np.full(n, -1, dtype=np.int64)
    position = pd.Index(station_ids).get_indexer(sid[sid >= 0])
    station[sid >= 0] = position
    weights = gather("weight", float)
    covered_w = straight_w = None
    if measured == "points" and all(p.covered_weight is not None for p in parts):
        covered_w, straight_w = gather("covered_weight", float), gather("covered_straight_weight", float)
    masks = None
    if parts and all(p.cell_masks is not None for p in parts):
        masks = np.empty((n, 21), dtype=np.uint8)
        masks[where] = np.concatenate([p.cell_masks for p in parts if p.cell_masks is not None])
    pair_fields = _merged_pairs(parts, where, measured)
    if whole_area is None:  # each part's area is cut to its region and the boundary already
        geom = _merged_area(plan, parts)
    else:
        boundary_m = info.boundary_m()
        geom = whole_area if boundary_m is None else whole_area.intersection(boundary_m)
    cov = CellCoverage(station=station, distance_m=gather("distance_m", float), covered=gather("covered", bool),
                       straight_m=gather("straight_m", float), covered_straight=gather("covered_straight", bool),
                       covered_geom=None if geom is None or geom.is_empty else geom)
    params: dict[str, Any] = {}
    for p in parts:
        for k, v in p.params.items():
            if k in ("stations_off_network", "cells_off_network", "covered_area_drawn"):
                continue
            params.setdefault(k, v)
    drawn = sorted({str(p.params["covered_area_drawn"]) for p in parts if "covered_area_drawn" in p.params})
    if drawn:  # each part draws its own covered area, exactly or on a grid as its size asks
        params["covered_area_drawn"] = drawn[0] if len(drawn) == 1 else "per part: " + "; ".join(drawn)
    if any("cells_off_network" in p.params for p in parts):
        params["cells_off_network"] = int(sum(p.params.get("cells_off_network", 0) for p in parts))
    params.pop("graph_nodes", None)
    params.pop("graph_edges", None)
    return PartitionedCoverage(coverage=cov, cell_ids=ids, cell_keys=gather("cell_key", object), weights=weights,
                               station_ids=station_ids,
                               measured=measured, covered_weight=covered_w, covered_straight_weight=straight_w,
                               params=params, plan=plan, computed=[], reused=[], job_dir=Path(), cell_masks=masks,
                               hours_covered=hours_set(masks) if masks is not None else None, **pair_fields)


def _merged_pairs(parts: list[PartResult], where: np.ndarray, measured: str) -> dict[str, Any]:
    """The parts' pairs together (``PartitionedCoverage``'s fields), with the stations and with the other sites: a
    cell's position in its part becomes its position in the layer's cells (``where``: the concatenated parts' cells'
    positions); a point keeps its id. Each location is one part's, so no pair comes twice. A kind of pairs a part
    does not hold (not asked) is left out."""
    out: dict[str, Any] = {}
    for loc, other, metres in (("pair_loc", "pair_station", "pair_m"), ("site_loc", "site_idx", "site_m")):
        if not parts or any(getattr(p, name) is None for p in parts for name in (loc, other, metres)):
            continue
        locs, offset = [], 0
        for p in parts:
            mine = getattr(p, loc)
            locs.append(where[offset + mine] if measured == "cells" else mine)
            offset += len(p.cell_key)
        out[loc] = np.concatenate(locs).astype(np.int64)
        out[other] = np.concatenate([getattr(p, other) for p in parts]).astype(np.int64)
        out[metres] = np.concatenate([getattr(p, metres) for p in parts]).astype(float)
    if "pair_loc" in out:
        out["pair_checked"] = int(sum(p.pair_checked for p in parts))
    return out


def _merged_area(plan: PartitionPlan, parts: list[PartResult]) -> BaseGeometry | None:
    """The union of the parts' covered areas (each cut to its part's region, the regions' interiors disjoint), by
    ``coverage.area_union.union_of_regions``: only the polygons that reach their region's edge are overlaid, and
    only their outlines; the blocks' holes and the polygons inside a region pass through. None when no part covers
    anything."""
    held = [p for p in parts if p.covered_wkb]
    if not held:
        return None
    clips = {q.index: q.clip_geometry() for q in plan.parts}
    merged: BaseGeometry = union_of_regions(np.asarray([shapely.from_wkb(p.covered_wkb) for p in held], dtype=object),
                                            np.asarray([clips[p.index] for p in held], dtype=object))
    return None if merged.is_empty else merged


def _sites_near(sites: tuple[np.ndarray, np.ndarray] | None, part: Part, halo_m: float) -> dict[str, Any]:
    """A part's task fields for the other ``sites`` (metres, lon/lat): those within its box grown by ``halo_m``
    (the stations' halo: a site within the radius of a location lies in it) and their positions among all."""
    if sites is None:
        return {}
    xy, lonlat = sites
    w, s, e, n = grown(part.box, halo_m)
    near = np.flatnonzero((xy[:, 0] >= w) & (xy[:, 0] <= e) & (xy[:, 1] >= s) & (xy[:, 1] <= n))
    return {"sites_xy": xy[near], "sites_lonlat": lonlat[near], "sites_index": near}


def _digest(sites: tuple[np.ndarray, np.ndarray] | None) -> str | None:
    """A hash of the other sites' coordinates, for the job key (None without)."""
    if sites is None:
        return None
    xy, lonlat = (np.ascontiguousarray(a, dtype=float) for a in sites)
    return hashlib.sha256(xy.tobytes() + lonlat.tobytes()).hexdigest()


def _measured(conn: Connection, info: AreaInfo, layer_id: int, measure: str) -> tuple[str, list[str]]:
    """What the run measures, decided as ``coverage.measure.measured_demand`` decides it for the whole area: the
    points when asked (``auto``/``points``) and every point lies in a cell of the layer, else the cells."""
    if measure == "cells":
        return "cells", []
    size = layer_cell_size(conn, layer_id)
    points = point_totals(conn, info.id).count
    if not size or not points:
        if measure == "points":
            raise InvalidInput(f"区域 {info.name!r} 没有存储的需求点，无法按点计算 / area {info.name!r} has no stored "
                               f"demand points to measure (a grid was imported); use measure cells")
        return "cells", []
    stray = stray_points(conn, info.id, layer_id)  # H3 cells; else squares
    stray = stray if stray is not None else stray_squares(conn, info.id, layer_id, float(size))
    if stray:
        if measure == "points":
            raise InvalidInput(f"区域 {info.name!r} 有 {stray} 个需求点不在已存的网格中，请重新导入需求 / "
                               f"{stray} demand points of area {info.name!r} lie in no stored cell: import the "
                               f"demand again")
        return "cells", [f"{stray} 个需求点不在已存的网格中，按网格中心计算 / {stray} demand points lie in no stored "
                         f"cell: measured on the cell centres"]
    return "points", []


def _job_key(conn: Connection, info: AreaInfo, plan: PartitionPlan, settings: Settings, *, mode: str, profile: str,
             radius_m: float, measured: str, hours: list[Any] | None, street_parts: str | None,
             pairs: bool = False, sites: str | None = None) -> str:
    """The job folder's name: a hash of the area, its demand layer and points, its stations (their place, status,
    opening hours and seats), the street graph file (network runs), the plan and the parameters (by hour: the week,
    the policy for unknown hours and the time zone; whether the pairs are asked; the other sites' digest)."""
    totals = point_totals(conn, info.id)
    points = (totals.count, totals.last_id, totals.weight)
    stations = conn.execute(text("""
        SELECT count(*), coalesce(sum(hashtextextended(id || ':' || external_id || ':' || status || ':'
                                                       || ST_AsText(geom) || ':' || coalesce(opening_hours, '')
                                                       || ':' || coalesce(seats::text, ''), 0)::numeric), 0)
        FROM stations WHERE area_id = :a"""), {"a": info.id}).one()
    graph = None
    if mode == "network":
        path = Path(street_parts) if street_parts is not None else graph_file(info, profile, settings)
        st = path.stat() if path.exists() else None
        graph = [str(path), st.st_size, st.st_mtime_ns] if st is not None else None
    state = {"format": JOB_FORMAT, "area": info.id, "crs": info.crs_epsg, "layer": plan.layer_id,
             "points": [str(v) for v in points], "stations": [str(v) for v in stations], "graph": graph,
             "mode": mode, "profile": profile if mode == "network" else None, "radius_m": radius_m,
             "measured": measured, "max_snap_m": settings.max_snap_m, "plan": plan.to_json(), "hours": hours,
             "pairs": pairs, "sites": sites}
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:20]
