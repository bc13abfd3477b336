"""A coverage run: how much of an area's demand lies within the radius of its active stations, and where not.

``run_coverage`` reads the area's stations and demand cells (one short read), computes with no transaction
open (straight line in the area's metric CRS, or along its street network), and hands the results to
``yizhan.coverage.runs.store_run``, which writes them in one transaction. All measurements are metres in the
area's metric CRS (the UTM zone of its centroid unless set); everything stored is WGS 84 (lon, lat).
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from yizhan.areas import resolve_area, sector_units, units_frame
from yizhan.capacity.loads import CROWDED_PER_SEAT
from yizhan.coverage.by_hour import HourInputs, check_options, hours_and_capacity
from yizhan.coverage.cell_coverage import (
    MODES,
    CellCoverage,
    Progress,
    check_radius,
    network_coverage,
    straight_coverage,
)
from yizhan.coverage.gaps import gaps_from_cells, gaps_from_grid
from yizhan.coverage.measure import HALF, Demand, check_measure, measured_demand, per_cell
from yizhan.coverage.partitioned import PartitionedCoverage, partitioned_coverage
from yizhan.coverage.reach import Pairs
from yizhan.coverage.runs import (
    UNASSIGNED,
    GapRow,
    LayerCells,
    RunRecord,
    RunSummary,
    UnitRow,
    cell_polygons,
    layer_cells,
    multi_polygon,
    polygonal,
    store_run,
)
from yizhan.coverage.streets import default_parts, street_parts_manifest
from yizhan.data.demand_profile import stored_profile
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput, YizhanError
from yizhan.settings import DEFAULT_RADIUS_M, DEFAULT_TIMEZONE, Settings
from yizhan.stations.registry import stations_frame


def run_coverage(engine: Any, *, area: str | None = None, radius_m: float = DEFAULT_RADIUS_M,
                 mode: str = "straight", profile: str = "walk", progress: Progress | None = None,
                 settings: Settings | None = None, measure: str = "auto", by_hour: bool = False,
                 capacity: bool = False, week_of: date | None = None, unknown_hours: str = "open",
                 decay: str = "none", parts: int | None = None, parts_by: str = "tiles",
                 scheduler: Any = None) -> RunSummary:
    """Analyse coverage of an area's demand by its active stations within ``radius_m`` metres and store the run.

    ``mode`` "straight" measures straight lines in the area's metric CRS (decided on the ellipsoid within
    ``euclidean.geodesic_band`` of the radius); "network" measures along the area's ``profile`` ("walk"/"bike")
    street network (built with ``yizhan network build``), found through ``settings`` (required then).
    ``measure`` (``coverage.measure.MEASURES``): the stored demand points by default, else the cell centres.
    ``by_hour``: coverage at each hour of the week from the stations' opening hours (``week_of`` a date whose week
    is taken as the calendar has it, holidays included; ``unknown_hours`` "open" or "closed" for stations without
    readable hours); ``capacity``: seats against the demand within reach (two-step floating catchment with
    ``decay``). Returns the stored run's ``summary_of``.

    ``parts`` > 1 (or a ``scheduler``: a Dask scheduler's address ``tcp://HOST:8786`` or a ``distributed.Client``)
    computes the coverage in that many parts on Dask (``coverage.partitioned``: a local cluster of
    ``settings.partition_workers`` processes unless a scheduler is given; parts by ``parts_by`` "tiles" or "units"),
    each part exact inside it, then merges, gaps and stores here as a whole run does (a run that fails before it is
    stored keeps its finished parts: the same run again computes only the rest); ``parts`` None (the default) is
    ``coverage.streets.default_parts``: in parts along the streets of an area whose street graphs per partition were
    built, else whole. By hour and with capacity, the parts also find every (location, station) pair within the
    radius of their locations (the search, along the streets the costly step), and the weekly figures and the
    two-step catchment are built here on all the pairs together, so they are the whole run's (a station's catchment
    crosses the parts' edges). Along the streets, when the area's street graphs per partition were built
    (``coverage.streets.build_street_parts``), the parts are their tiles and each worker loads its own graph.
    """
    if mode not in MODES:
        raise InvalidInput(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    radius_m = check_radius(radius_m)
    if mode == "network" and settings is None:
        raise TypeError("run_coverage(mode='network') needs settings: they say where the street graphs are")
    check_options(unknown_hours=unknown_hours, decay=decay)
    check_measure(measure)
    weekly = by_hour or capacity
    if ((parts is not None and parts > 1) or scheduler is not None) and settings is None:
        raise TypeError("run_coverage(parts=...) needs settings: they say how to reach the database and Dask")
    say = progress or (lambda _msg: None)
    timezone = settings.timezone if settings is not None else DEFAULT_TIMEZONE
    with engine.connect() as conn:
        info = resolve_area(conn, area)
        if parts is None:
            parts = default_parts(info, mode, profile, settings)
        partitioned = parts > 1 or scheduler is not None
        say(f"loading stations and demand of {info.name}")
        stations = stations_frame(conn, info.id)
        # the keys match the parts' pairs to the area's cells, and points to cells when the layer is no lattice
        points = measure != "cells" or weekly
        cells = layer_cells(conn, info.id, keys=True if partitioned and weekly else None if points else False)
        units = units_frame(conn, info.id)
        if cells is None or not len(cells):
            raise InvalidInput(f"区域 {info.name!r} 没有需求网格，请先导入需求 / area {info.name!r} has no demand "
                               f"cells: import demand first (`yizhan demand import`)")
        crs = info.crs_epsg
        cells_xy = cells.xy
        cell_size = cells.cell_size_m
        # in parts without the weekly figures, the parts measure: the points are not read here
        demand = measured_demand(conn, info, cells.frame(), cells_xy, cell_size,
                                 measure="cells" if partitioned and not weekly else measure, timezone=timezone,
                                 times=weekly, lattice=cells.lattice_index())
        week_profile = stored_profile(conn, info.id) if weekly else None
    active = stations[stations["status"] == "active"]
    st_m = active.to_crs(crs)
    boundary_m = info.boundary_m()
    st_xy = np.column_stack([st_m.geometry.x, st_m.geometry.y])
    st_lonlat = np.column_stack([active.geometry.x, active.geometry.y])
    params: dict[str, Any] = {"radius_m": radius_m, "mode": mode, "crs_epsg": crs, "cell_size_m": cell_size,
                              "measured": demand.measured}
    weights = cells.weight
    part_weights: tuple[np.ndarray, np.ndarray] | None = None
    pairs: tuple[Pairs, int] | None = None
    job_dir: Path | None = None
    if partitioned:
        assert settings is not None  # checked above
        say(f"{mode} coverage of {len(cells):,} cells by {len(active):,} active stations within {radius_m:g} m, in "
            f"parts")
        pc = partitioned_coverage(settings, info, mode=mode, profile=profile, radius_m=radius_m, measure=measure,
                                  parts=parts, by=parts_by, scheduler=scheduler, progress=say,
                                  street_parts=street_parts_manifest(info, profile, settings)
                                  if mode == "network" else None, pairs=weekly)
        job_dir = pc.job_dir
        station_ids_active = active["station_id"].to_numpy(np.int64)
        cov, part_weights = _coverage_in_parts(pc, cells, station_ids_active, params)
        if weekly:
            pairs = _pairs_of_parts(pc, cells, demand, station_ids_active)
    else:
        on = f"{len(demand.xy):,} demand points" if demand.measured == "points" else f"{len(cells)} cells"
        say(f"{mode} coverage of {on} by {len(active)} active stations within {radius_m:g} m")
        if demand.measured == "points":
            params["points"] = len(demand.xy)
        if demand.notes:
            params["measure_notes"] = demand.notes
        if mode == "network":
            assert settings is not None  # checked above
            cov = network_coverage(info, profile, cells_xy, st_xy, radius_m, params, say, settings,
                                   list(active["external_id"]), demand, st_lonlat)
            if cov.covered_geom is not None and boundary_m is not None:
                cov.covered_geom = cov.covered_geom.intersection(boundary_m)
        else:
            cov = straight_coverage(cells_xy, st_xy, radius_m, boundary_m, demand, st_lonlat)
            params["distance"] = "straight line, metres (on the ellipsoid near the radius)"
    if part_weights is not None or (cov.loc_covered is not None and cov.loc_covered_straight is not None):
        if part_weights is not None:
            covered_w, straight_w = part_weights
        else:
            assert cov.loc_covered is not None and cov.loc_covered_straight is not None
            covered_w = per_cell(demand, cov.loc_covered, len(cells))
            straight_w = per_cell(demand, cov.loc_covered_straight, len(cells))
        # a cell is drawn covered when at least half of its orders are; a cell without orders by its centre
        cell_covered = np.where(weights > 0, covered_w >= HALF * weights, cov.covered)
    else:
        covered_w, straight_w, cell_covered = weights * cov.covered, weights * cov.covered_straight, cov.covered
    total = float(weights.sum())
    done, done_straight = float(covered_w.sum()), float(straight_w.sum())
    share = done / total if total > 0 else 0.0
    say("merging uncovered cells into gaps")
    lattice = cells.lattice_index()
    left = np.maximum(weights - covered_w, 0.0)
    if lattice is not None and cells.cell_size_m:
        gaps = gaps_from_grid(*lattice, cells.cell_size_m, crs, uncovered=~cell_covered, weights=left)
    else:
        gaps = gaps_from_cells(_uncovered_polygons(engine, cells, ~cell_covered, crs), uncovered=~cell_covered,
                               weights=left)
    reach = polygonal(cov.covered_geom)
    station_ids = active["station_id"].to_numpy()
    nearest_id = np.full(len(cells), -1, dtype=np.int64)
    found = cov.station >= 0
    nearest_id[found] = station_ids[cov.station[found]]
    unit_polys = units if len(units) or info.boundary is None else sector_units(info.boundary)
    owner = cell_units(unit_polys, crs, cells_xy)
    hours = None
    if by_hour or capacity:
        hours = hours_and_capacity(
            HourInputs(demand=demand, active=active, st_xy=st_xy, st_lonlat=st_lonlat, radius_m=radius_m,
                       mode=mode, snaps=cov.snaps, cell_weights=weights, cell_owner=owner,
                       unit_names=[*unit_polys["name"], UNASSIGNED] if len(unit_polys) else [UNASSIGNED],
                       timezone=timezone, profile=week_profile, by_hour=by_hour, capacity=capacity,
                       week_of=week_of, unknown_hours=unknown_hours, decay=decay,
                       crowded_per_seat=settings.crowded_per_seat if settings is not None else CROWDED_PER_SEAT,
                       pairs=pairs),
            say)
        params.update(hours.params)
    record = RunRecord(
        area_id=info.id, mode=mode, profile=profile if mode == "network" else None, radius_m=radius_m,
        params=params, stations=len(active), demand_total=total, demand_covered=done, covered_share=share,
        demand_covered_straight=done_straight, covered_area_m2=float(reach.area) if reach is not None else 0.0,
        covered_geom=gpd.GeoSeries([reach], crs=crs).to_crs(SRID).iloc[0] if reach is not None else None,
        cells=cells, covered=cell_covered, nearest_station_id=nearest_id, distance_m=cov.distance_m,
        straight_m=cov.straight_m, gaps=gap_rows(gaps, cov, nearest_id),
        units=unit_rows(unit_polys, owner, weights, covered_w, straight_w, st_xy, crs),
        covered_weight=covered_w if params["measured"] == "points" else None,
        hours=hours.record if hours is not None else None)
    say("storing the run")
    summary = store_run(engine, record)
    if job_dir is not None:  # stored: the parts' saved results are no longer needed to resume
        shutil.rmtree(job_dir, ignore_errors=True)
    return summary


def _coverage_in_parts(pc: PartitionedCoverage, cells: LayerCells, station_ids: np.ndarray,
                       params: dict[str, Any]) -> tuple[CellCoverage, tuple[np.ndarray, np.ndarray] | None]:
    """A partitioned run's merged coverage in the order of ``cells``, its stations as indices into ``station_ids``
    (the active stations' database ids, as the whole run holds them); measured on points, the covered orders per
    cell (run metric, straight line). Adds the parts' parameters to ``params``."""
    ids = np.asarray(cells.cell_id, dtype=np.int64)
    same = np.array_equal(pc.cell_ids, ids)  # both by id: the parts' merge is in this run's order
    at = np.arange(len(ids)) if same else pd.Index(pc.cell_ids).get_indexer(pd.Index(ids))
    if (at < 0).any() or len(pc.cell_ids) != len(cells):
        raise YizhanError("分区结果与需求网格不符，请重新计算 / the parts' cells differ from the area's demand cells "
                          "(demand imported during the run?): run again")
    c = pc.coverage
    station = np.full(len(cells), -1, dtype=np.int64)
    found = c.station[at] >= 0
    station[found] = pd.Index(station_ids).get_indexer(pc.station_ids[c.station[at][found]])
    cov = CellCoverage(station, c.distance_m[at], c.covered[at], c.straight_m[at], c.covered_straight[at],
                       c.covered_geom)
    params.update(pc.params)
    params["measured"] = pc.measured
    if pc.notes:
        params["measure_notes"] = pc.notes
    if pc.covered_weight is None or pc.covered_straight_weight is None:
        return cov, None
    return cov, (pc.covered_weight[at], pc.covered_straight_weight[at])


def _pairs_of_parts(pc: PartitionedCoverage, cells: LayerCells, demand: Demand,
                    station_ids: np.ndarray) -> tuple[Pairs, int]:
    """The parts' (location, station) pairs in this run's indices: locations into ``demand`` (its cells in the order
    of ``cells``, or its points by id), stations into ``station_ids``; and how many were decided on the ellipsoid."""
    if pc.pair_loc is None or pc.pair_station is None or pc.pair_m is None or pc.measured != demand.measured:
        raise YizhanError("分区结果与本次读取的需求不符，请重新计算 / the parts measured other demand than this run "
                          "read (demand imported during the run?): run again")
    loc = pc.locations(pc.pair_loc, demand, cells.cell_key)
    site = pd.Index(station_ids).get_indexer(pc.pair_station)
    if (loc < 0).any() or (site < 0).any():
        raise YizhanError("分区结果与需求或驿站不符，请重新计算 / the parts' pairs name demand points or stations "
                          "this run did not read (changed during the run?): run again")
    return (loc.astype(np.int64), site.astype(np.int64), np.asarray(pc.pair_m, dtype=float)), pc.pair_checked


def _uncovered_polygons(engine: Any, cells: LayerCells, uncovered: np.ndarray, crs: int) -> gpd.GeoDataFrame:
    """The cells as a frame in EPSG ``crs`` whose polygons are read for the ``uncovered`` ones only (None
    elsewhere): all ``gaps_from_cells`` looks at."""
    geoms = np.full(len(cells), None, dtype=object)
    idx = np.flatnonzero(uncovered)
    if len(idx):
        with engine.connect() as conn:
            geoms[idx] = cell_polygons(conn, cells.cell_id[idx], crs).to_numpy()
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries(geoms, crs=crs))


def gap_rows(gaps: gpd.GeoDataFrame, cov: CellCoverage, nearest_id: np.ndarray) -> list[GapRow]:
    """The gaps to store (WGS 84). Each gap's nearest station is that of its cell closest (in the run's metric)
    to any station; its straight distance the shortest straight line from any of its cells."""
    if not len(gaps):
        return []
    gaps4326 = gaps.to_crs(SRID)
    rows = []
    for r, geom in zip(gaps4326.itertuples(), gaps4326.geometry, strict=True):
        members = np.asarray(r.members, dtype=np.int64)
        best = members[np.argmin(cov.distance_m[members])]
        rows.append(GapRow(rank=int(r.rank), demand=float(r.demand), area_m2=float(r.area_m2), cells=int(r.cells),
                           nearest_station_id=int(nearest_id[best]) if nearest_id[best] >= 0 else None,
                           nearest_distance_m=_finite(cov.distance_m[best]),
                           straight_distance_m=_finite(cov.straight_m[members].min()),
                           geometry=multi_polygon(geom), centroid=geom.representative_point()))
    return rows


def cell_units(units: gpd.GeoDataFrame, crs: int, cells_xy: np.ndarray) -> np.ndarray:
    """The unit holding each cell centre (``cells_xy`` metres of ``crs``; the first one on a shared border),
    ``len(units)`` for a cell in none."""
    if not len(units):
        return np.zeros(len(cells_xy), dtype=np.int64)
    return first_owner(units.to_crs(crs).geometry.to_numpy(), cells_xy, len(units))


def unit_rows(units: gpd.GeoDataFrame, owner: np.ndarray, weights: np.ndarray, covered_w: np.ndarray,
              straight_w: np.ndarray, st_xy: np.ndarray, crs: int) -> list[UnitRow]:
    """Stations, demand and covered demand (run metric and straight line; orders per cell) per unit. A cell counts
    in the unit ``owner`` gives it (``cell_units``); cells in no unit go to an ``UNASSIGNED`` row."""
    if not len(units):
        return []
    n = len(units)
    st_owner = first_owner(units.to_crs(crs).geometry.to_numpy(), st_xy, n)
    names = [*units["name"], UNASSIGNED]
    demand = np.bincount(owner, weights=weights, minlength=n + 1)
    covered = np.bincount(owner, weights=covered_w, minlength=n + 1)
    straight = np.bincount(owner, weights=straight_w, minlength=n + 1)
    n_st = np.bincount(st_owner, minlength=n + 1)
    return [UnitRow(name=names[i], stations=int(n_st[i]), demand=float(demand[i]), demand_covered=float(covered[i]),
                    demand_covered_straight=float(straight[i]))
            for i in range(n + 1) if i < n or demand[i] > 0 or n_st[i] > 0]


def first_owner(polys: np.ndarray, xy: np.ndarray, n: int) -> np.ndarray:
    """Index of the first polygon covering each point (``xy`` (k, 2) in the polygons' CRS, its edge included);
    ``n`` for points in none. Each polygon tests only the points within its bounds (points sorted by x once),
    on their coordinates: no geometry is made per point."""
    owner = np.full(len(xy), n, dtype=np.int64)
    if not len(xy):
        return owner
    order = np.argsort(xy[:, 0], kind="stable")
    xs = xy[order, 0]
    for i, poly in enumerate(polys):
        if poly is None or poly.is_empty:
            continue
        west, south, east, north = poly.bounds
        lo, hi = np.searchsorted(xs, west, side="left"), np.searchsorted(xs, east, side="right")
        cand = order[lo:hi]
        y = xy[cand, 1]
        cand = cand[(y >= south) & (y <= north) & (owner[cand] == n)]
        if len(cand):
            shapely.prepare(poly)
            inside = np.asarray(shapely.intersects_xy(poly, xy[cand, 0], xy[cand, 1]), dtype=bool)
            owner[cand[inside]] = i
    return owner


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
