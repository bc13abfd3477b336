"""Partitioned coverage on Dask: the merged parts equal the whole-area run cell by cell.

The reference is the single-process computation ``run_coverage`` makes (``straight_coverage`` / ``network_coverage``
on the area's cells, stations and demand points); the partitioned run reads its parts from the same PostGIS
database. Two areas: the demo sample area of the real extract (its real walk graph) and a synthetic 6 x 4 km area
with a lattice of streets, random stations and clustered orders (a sparse corner far from every station). Dask runs
in this process (a LocalCluster of threads) except where a test says it starts worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo, ensure_area, import_units
from yizhan.coverage.by_hour import HourInputs, hours_and_capacity
from yizhan.coverage.cell_coverage import CellCoverage, network_coverage, straight_coverage
from yizhan.coverage.measure import measured_demand, per_cell
from yizhan.coverage.partitioned import (
    PartitionedCoverage,
    PartResult,
    PartTask,
    clipped_graph,
    part_coverage,
    partitioned_coverage,
)
from yizhan.coverage.partitions import balanced_groups, inside, median_tiles
from yizhan.coverage.runs import UNASSIGNED
from yizhan.coverage.streets import graph_file
from yizhan.data.demand import import_demand
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput, YizhanError
from yizhan.geo.street_parts import grid_tiles, partition_street_graphs
from yizhan.geo.streets import compile_street_graph
from yizhan.settings import Settings
from yizhan.stations.registry import stations_frame
from yizhan.stations.service import import_stations

UTM50 = 32650
ORIGIN = (440_000.0, 4_427_000.0)  # metres in UTM 50N, near Wudaokou
SIZE = (6000.0, 4000.0)
TO_LL = Transformer.from_crs(UTM50, SRID, always_xy=True)


def _ll(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = TO_LL.transform(ORIGIN[0] + np.asarray(x, float), ORIGIN[1] + np.asarray(y, float))
    return np.asarray(lon), np.asarray(lat)


@pytest.fixture
def run_settings(settings: Settings, db_url: str) -> Settings:
    """The test's settings on its own database."""
    return settings.model_copy(update={"database_url": db_url})


@pytest.fixture
def synthetic(engine: Engine, run_settings: Settings, tmp_path: Path) -> AreaInfo:
    """A 6 x 4 km area in UTM 50N: 60 random stations in its western two thirds (one closed; opening hours of five
    kinds, one of them unknown), 4,000 orders in
    clusters and spread (the east a sparse gap several km from any station), a walking lattice of streets every
    150 m (jittered nodes, some blocks missing) saved as the area's walk graph."""
    rng = np.random.default_rng(17)
    lo, la = _ll(np.array([-150.0, SIZE[0] + 150]), np.array([-150.0, SIZE[1] + 150]))  # a lon/lat box around it
    with engine.begin() as conn:
        info = ensure_area(conn, "synthetic", boundary=box(lo[0], la[0], lo[1], la[1]), crs_epsg=UTM50)
    sx, sy = rng.uniform(100, 3900, 60), rng.uniform(100, 3900, 60)
    slon, slat = _ll(sx, sy)
    hours = ["Mo-Fr 08:00-20:00", "24/7", "", "Mo-Su 06:00-10:00,17:00-23:00", "Sa,Su 09:00-18:00"]
    rows = "".join(f"S{i},站{i},small,{a:.9f},{b:.9f},,,,,\"{hours[i % 5]}\",,,{'closed' if i == 7 else ''}\n"
                   for i, (a, b) in enumerate(zip(slon, slat, strict=True)))
    st = tmp_path / "stations.csv"
    st.write_text("id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status\n" + rows)
    import_stations(engine, st, area=info.name)
    centres = rng.uniform([300, 300], [5700, 3700], (12, 2))
    near = centres[rng.integers(0, 12, 3000)] + rng.normal(0, 250, (3000, 2))
    spread = rng.uniform([0, 0], SIZE, (1000, 2))
    xy = np.clip(np.concatenate([near, spread]), 1, np.array(SIZE) - 1)
    lon, lat = _ll(xy[:, 0], xy[:, 1])
    times = pd.Timestamp("2026-06-01T00:00:00+08:00") + pd.to_timedelta(rng.integers(0, 7 * 24 * 60, len(xy)),
                                                                           unit="min")
    dem = tmp_path / "orders.csv"
    pd.DataFrame({"lon": lon, "lat": lat, "weight": rng.integers(1, 4, len(xy)),
                  "time": times.strftime("%Y-%m-%dT%H:%M:%S+08:00")}).to_csv(dem, index=False, float_format="%.10f")
    import_demand(engine, dem, area=info.name)
    _lattice(rng).save(graph_file(info, "walk", run_settings))
    return info


def _lattice(rng: np.random.Generator) -> Any:
    """A street lattice over the synthetic area (metres, UTM 50N): nodes every 150 m jittered by up to 20 m, edges
    to the east and north neighbours, 8 % of them missing."""
    nx, ny = int(SIZE[0] // 150) + 1, int(SIZE[1] // 150) + 1
    gx, gy = np.meshgrid(np.arange(nx) * 150.0, np.arange(ny) * 150.0, indexing="ij")
    x = ORIGIN[0] + gx.ravel() + rng.uniform(-20, 20, gx.size)
    y = ORIGIN[1] + gy.ravel() + rng.uniform(-20, 20, gy.size)
    idx = np.arange(nx * ny).reshape(nx, ny)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    keep = rng.random(len(u)) > 0.08
    return compile_street_graph(x, y, u[keep], v[keep], crs_epsg=UTM50)


@dataclass
class Whole:
    """The single-process reference: what ``run_coverage`` computes, in the area's cell order."""

    cov: CellCoverage
    station_ids: np.ndarray
    covered_w: np.ndarray | None
    straight_w: np.ndarray | None
    measured: str
    hour_inputs: HourInputs


def _whole(engine: Engine, settings: Settings, info: AreaInfo, *, mode: str, radius_m: float,
           measure: str) -> Whole:
    """The whole area computed in one process as ``run_coverage`` does (same reads, same functions)."""
    with engine.connect() as conn:
        cells = pd.read_sql(text("SELECT c.cell_key, c.weight, c.x, c.y FROM demand_cells c JOIN demand_layers l "
                                 "ON l.id = c.layer_id WHERE c.area_id = :a AND l.retired_at IS NULL "
                                 "ORDER BY c.cell_key"), conn, params={"a": info.id})
        size = conn.execute(text("SELECT max(c.cell_size_m) FROM demand_cells c JOIN demand_layers l ON l.id = "
                                 "c.layer_id WHERE c.area_id = :a AND l.retired_at IS NULL"), {"a": info.id}).scalar()
        cells_xy = cells[["x", "y"]].to_numpy(float)
        demand = measured_demand(conn, info, cells[["cell_key", "weight"]], cells_xy, size, measure=measure,
                                 timezone=settings.timezone)
        stations = stations_frame(conn, info.id)
    active = stations[stations["status"] == "active"]
    st_m = active.to_crs(info.crs_epsg)
    st_xy = np.column_stack([st_m.geometry.x, st_m.geometry.y])
    st_lonlat = np.column_stack([active.geometry.x, active.geometry.y])
    boundary_m = gpd.GeoSeries([info.boundary], crs=SRID).to_crs(info.crs_epsg).iloc[0]
    if mode == "network":
        cov = network_coverage(info, "walk", cells_xy, st_xy, radius_m, {}, lambda _m: None, settings,
                               list(active["external_id"]), demand, st_lonlat)
        if cov.covered_geom is not None:
            cov.covered_geom = cov.covered_geom.intersection(boundary_m)
    else:
        cov = straight_coverage(cells_xy, st_xy, radius_m, boundary_m, demand, st_lonlat)
    covered_w = straight_w = None
    if cov.loc_covered is not None and cov.loc_covered_straight is not None:
        covered_w = per_cell(demand, cov.loc_covered, len(cells))
        straight_w = per_cell(demand, cov.loc_covered_straight, len(cells))
    # a station without hours reads as NaN from stations_frame, which station_open cannot take: None, as unknown
    active = active.assign(opening_hours=pd.Series([v if isinstance(v, str) else None for v in active["opening_hours"]],
                                                   dtype=object, index=active.index))
    inputs = HourInputs(demand=demand, active=active, st_xy=st_xy, st_lonlat=st_lonlat, radius_m=radius_m, mode=mode,
                        snaps=cov.snaps, cell_weights=cells["weight"].to_numpy(float),
                        cell_owner=np.zeros(len(cells), dtype=np.int64), unit_names=[UNASSIGNED],
                        timezone=settings.timezone, profile=None, by_hour=True, capacity=False)
    return Whole(cov, active["station_id"].to_numpy(np.int64), covered_w, straight_w, demand.measured, inputs)


def _same(part: PartitionedCoverage, whole: Whole, weights: np.ndarray) -> None:
    """The partitioned result equals the whole one cell by cell."""
    a, b = part.coverage, whole.cov
    assert part.measured == whole.measured
    assert np.array_equal(part.station_ids, whole.station_ids)
    assert np.array_equal(a.covered, b.covered)
    assert np.array_equal(a.covered_straight, b.covered_straight)
    for got, want in ((a.distance_m, b.distance_m), (a.straight_m, b.straight_m)):
        assert np.array_equal(np.isfinite(got), np.isfinite(want))
        fin = np.isfinite(want)
        assert np.max(np.abs(got[fin] - want[fin]), initial=0.0) <= 1e-9
    # the station named is the whole run's, unless another one lies at exactly the same distance
    differ = np.flatnonzero(a.station != b.station)
    assert len(differ) <= max(1, len(a.station) // 200), differ
    total = weights.sum()
    if whole.covered_w is not None:
        assert part.covered_weight is not None and part.covered_straight_weight is not None
        assert whole.straight_w is not None
        assert np.max(np.abs(part.covered_weight - whole.covered_w)) / total <= 1e-12
        assert np.max(np.abs(part.covered_straight_weight - whole.straight_w)) / total <= 1e-12
        assert abs(part.covered_weight.sum() - whole.covered_w.sum()) / total <= 1e-12
    else:
        assert part.covered_weight is None
    uncovered = np.flatnonzero(~a.covered)
    assert np.array_equal(uncovered, np.flatnonzero(~b.covered))
    ga, gb = a.covered_geom, b.covered_geom
    assert (ga is None) == (gb is None)
    if ga is not None:
        assert abs(ga.area - gb.area) <= 1e-6 * gb.area
        assert shapely.symmetric_difference(ga, gb).area <= 1e-6 * gb.area


def _weights(engine: Engine, info: AreaInfo) -> np.ndarray:
    with engine.connect() as conn:
        return np.asarray(conn.execute(text(
            "SELECT c.weight FROM demand_cells c JOIN demand_layers l ON l.id = c.layer_id WHERE c.area_id = :a "
            "AND l.retired_at IS NULL ORDER BY c.cell_key"), {"a": info.id}).scalars().all(), float)


@pytest.mark.parametrize("mode", ["straight", "network"])
@pytest.mark.parametrize("measure", ["points", "cells"])
def test_synthetic_area_parts_equal_whole(engine: Engine, run_settings: Settings, synthetic: AreaInfo, client: Any,
                                          mode: str, measure: str) -> None:
    """1, 2 and 4 tiles, straight and along the streets, on points and on cells: the same as one process."""
    radius = 600.0
    whole = _whole(engine, run_settings, synthetic, mode=mode, radius_m=radius, measure=measure)
    weights = _weights(engine, synthetic)
    assert (~whole.cov.covered).sum() > 20 and whole.cov.covered.sum() > 20  # gaps and cover, both
    assert np.isinf(whole.cov.distance_m).any() == (mode == "network")  # the far east: beyond the search
    for parts in (1, 2, 4):
        said: list[str] = []
        got = partitioned_coverage(run_settings, synthetic, mode=mode, radius_m=radius, measure=measure, parts=parts,
                                   scheduler=client, progress=said.append)
        assert got.computed == list(range(parts)) and got.reused == []
        assert sum(p.cells for p in got.plan.parts) == len(weights)
        assert np.array_equal(got.weights, weights)
        _same(got, whole, weights)
        assert sum("done:" in m for m in said) == parts
        assert any(m.startswith(f"part {parts}/{parts} done: ") for m in said)
    # the sparse east: its nearest stations were looked up beyond the halo, and the distances still agree
    assert got.params["partitions"]["widened_cells"] > 0


@pytest.mark.parametrize("mode", ["straight", "network"])
def test_sample_area_parts_equal_whole(engine: Engine, run_settings: Settings, sample_area: AreaInfo, client: Any,
                                       mode: str) -> None:
    """The demo sample area (real streets, measured on its points): 1, 2 and 4 tiles give the whole run's cells."""
    radius = 400.0
    whole = _whole(engine, run_settings, sample_area, mode=mode, radius_m=radius, measure="auto")
    assert whole.measured == "points"
    weights = _weights(engine, sample_area)
    for parts in (1, 2, 4):
        got = partitioned_coverage(run_settings, sample_area, mode=mode, radius_m=radius, measure="auto",
                                   parts=parts, scheduler=client)
        _same(got, whole, weights)


def test_units_plan_equals_whole(engine: Engine, run_settings: Settings, synthetic: AreaInfo, client: Any) -> None:
    """Parts made of administrative units (three townships, part of the area in none): the same as one process."""
    rects = [(0, 0, 2500, 2500), (2500, 0, 4200, 4000), (0, 2500, 2500, 4000)]
    polys = []
    for w, s, e, n in rects:
        lo, la = _ll(np.array([w, e]), np.array([s, n]))
        polys.append(box(lo[0], la[0], lo[1], la[1]))
    with engine.begin() as conn:
        import_units(conn, synthetic, gpd.GeoDataFrame({"name": ["甲街道", "乙街道", "丙街道"]}, geometry=polys,
                                                       crs=SRID))
    whole = _whole(engine, run_settings, synthetic, mode="straight", radius_m=600.0, measure="points")
    got = partitioned_coverage(run_settings, synthetic, mode="straight", radius_m=600.0, measure="points", parts=2,
                               by="units", scheduler=client)
    assert sorted(len(p.units) for p in got.plan.parts) == [1, 2] and sum(p.unowned for p in got.plan.parts) == 1
    _same(got, whole, _weights(engine, synthetic))


@pytest.mark.parametrize("mode", ["straight", "network"])
def test_hours_of_the_week_equal_whole(engine: Engine, run_settings: Settings, synthetic: AreaInfo,
                                       sample_area: AreaInfo, client: Any, mode: str) -> None:
    """By hour of the week: each cell's covered hours (packed masks) are those of the whole run, on the synthetic
    area (five kinds of opening hours, one unknown, taken as closed) and on the demo sample area."""
    for info, unknown in ((synthetic, "closed"), (sample_area, "open")):
        whole = _whole(engine, run_settings, info, mode=mode, radius_m=500.0, measure="auto")
        whole.hour_inputs.unknown_hours = unknown
        want = hours_and_capacity(whole.hour_inputs, lambda _m: None).record.cell_masks
        assert want is not None
        hours = np.unpackbits(want, axis=1, bitorder="little").sum(axis=1)
        assert hours.max() > 0 and hours.min() < 168 and len(np.unique(hours)) > 3  # masks that tell hours apart
        for parts in (1, 3):
            got = partitioned_coverage(run_settings, info, mode=mode, radius_m=500.0, measure="auto", parts=parts,
                                       scheduler=client, by_hour=True, unknown_hours=unknown)
            assert got.cell_masks is not None and got.hours_covered is not None
            assert np.array_equal(got.cell_masks, want)
            assert np.array_equal(got.hours_covered, hours)
            _same(got, whole, _weights(engine, info))


def test_street_parts_graphs_equal_whole(engine: Engine, run_settings: Settings, sample_area: AreaInfo,
                                         extracts: tuple[Path, Path], tmp_path: Path, client: Any) -> None:
    """Along the streets on the parts' own graphs (``geo.street_parts``, built from the extract's PBF in one pass):
    the parts are the graphs' tiles and each is computed on its own graph; the same cells as the whole run. A halo
    too narrow for the run is refused, naming the halo it needs."""
    with engine.connect() as conn:
        xy = np.asarray([tuple(r) for r in conn.execute(text(
            "SELECT c.x, c.y FROM demand_cells c JOIN demand_layers l ON l.id = c.layer_id WHERE c.area_id = :a "
            "AND l.retired_at IS NULL"), {"a": sample_area.id})])
    tiles = grid_tiles((xy[:, 0].min() - 1, xy[:, 1].min() - 1, xy[:, 0].max() + 1, xy[:, 1].max() + 1), 2, 2)
    manifest = partition_street_graphs(extracts[1], tiles, halo_m=1400.0, profile="walk", out_dir=tmp_path / "sp",
                                       crs_epsg=sample_area.crs_epsg)
    whole = _whole(engine, run_settings, sample_area, mode="network", radius_m=300.0, measure="auto")
    got = partitioned_coverage(run_settings, sample_area, mode="network", radius_m=300.0, parts=4,
                               scheduler=client, street_parts=manifest)
    assert [p.box for p in got.plan.parts] == [tuple(t) for t in tiles]
    _same(got, whole, _weights(engine, sample_area))
    narrow = r"halo 1,400 m is too narrow: this run needs 1,942 m \(the search limit 1,500 m"
    with pytest.raises(InvalidInput, match=narrow):
        partitioned_coverage(run_settings, sample_area, mode="network", radius_m=500.0, parts=4, scheduler=client,
                             street_parts=manifest.parent)


def _fails_once(task: PartTask) -> PartResult:
    """A worker that loses the second part the first time it runs it (then works)."""
    flag = Path(task.job_dir) / f"failed-once-{task.part.index}"
    if task.part.index == 1 and not flag.exists():
        flag.write_text("failed")
        raise ConnectionError("lost the database connection")
    return part_coverage(task)


def _third_part_fails(task: PartTask) -> PartResult:
    """A worker that fails on the third part every time."""
    if task.part.index == 2:
        raise ConnectionError("lost the database connection")
    return part_coverage(task)


def test_failed_part_retried(engine: Engine, run_settings: Settings, synthetic: AreaInfo, client: Any) -> None:
    """A part that fails once is run again by Dask and the run ends as if it never failed."""
    whole = _whole(engine, run_settings, synthetic, mode="straight", radius_m=600.0, measure="points")
    got = partitioned_coverage(run_settings, synthetic, mode="straight", radius_m=600.0, measure="points", parts=3,
                               scheduler=client, task=_fails_once)
    assert (got.job_dir / "failed-once-1").exists()
    assert got.computed == [0, 1, 2]
    _same(got, whole, _weights(engine, synthetic))


def test_resumed_run_computes_only_missing_parts(engine: Engine, run_settings: Settings, synthetic: AreaInfo,
                                                 client: Any) -> None:
    """A run whose third part keeps failing stops with a message naming it, the other parts saved; the same run
    again computes that part only. A changed station registry is another job: everything computed again."""
    said: list[str] = []
    with pytest.raises(YizhanError, match=r"分区计算失败.*part 3/4: ConnectionError"):
        partitioned_coverage(run_settings, synthetic, mode="network", radius_m=600.0, measure="points", parts=4,
                             scheduler=client, task=_third_part_fails, progress=said.append)
    assert sum("done:" in m for m in said) == 3
    job = sorted((run_settings.data_dir / "partitioned").iterdir())
    assert len(job) == 1 and sorted(p.name for p in job[0].glob("part-*.npz")) == [
        "part-0.npz", "part-1.npz", "part-3.npz"]
    said.clear()
    got = partitioned_coverage(run_settings, synthetic, mode="network", radius_m=600.0, measure="points", parts=4,
                               scheduler=client, progress=said.append)
    assert got.computed == [2] and got.reused == [0, 1, 3]
    assert sum("done:" in m for m in said) == 1
    whole = _whole(engine, run_settings, synthetic, mode="network", radius_m=600.0, measure="points")
    _same(got, whole, _weights(engine, synthetic))
    again = partitioned_coverage(run_settings, synthetic, mode="network", radius_m=600.0, measure="points", parts=4,
                                 scheduler=client)
    assert again.computed == [] and again.reused == [0, 1, 2, 3]
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET status = 'closed' WHERE area_id = :a AND external_id = 'S3'"),
                     {"a": synthetic.id})
    changed = partitioned_coverage(run_settings, synthetic, mode="network", radius_m=600.0, measure="points",
                                   parts=4, scheduler=client)
    assert changed.computed == [0, 1, 2, 3] and changed.job_dir != got.job_dir


def test_local_cluster_of_processes_and_scheduler_address(engine: Engine, run_settings: Settings,
                                                          synthetic: AreaInfo) -> None:
    """Without a scheduler the run starts its own LocalCluster of worker processes (the tasks cross a process
    boundary: pickled); with a scheduler's address it connects to that one."""
    from distributed import LocalCluster

    whole = _whole(engine, run_settings, synthetic, mode="network", radius_m=600.0, measure="points")
    weights = _weights(engine, synthetic)
    said: list[str] = []
    got = partitioned_coverage(run_settings.model_copy(update={"partition_workers": 1}), synthetic, mode="network",
                               radius_m=600.0, measure="points", parts=2, progress=said.append)
    assert any(m.startswith("local Dask cluster: 1 worker process(es) x 1 thread, memory limit ") for m in said)
    _same(got, whole, weights)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        said.clear()
        straight = partitioned_coverage(run_settings, synthetic, mode="straight", radius_m=600.0, measure="cells",
                                        parts=3, scheduler=cluster.scheduler_address, progress=said.append)
        assert any(m == f"connecting to the Dask scheduler at {cluster.scheduler_address}" for m in said)
    _same(straight, _whole(engine, run_settings, synthetic, mode="straight", radius_m=600.0, measure="cells"),
          weights)


def test_bad_requests_say_what_is_expected(engine: Engine, run_settings: Settings, synthetic: AreaInfo,
                                           wudaokou: AreaInfo, client: Any) -> None:
    """One line naming the value and what would be accepted, before any worker starts."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"parts": 0}, r"分区数 parts 0: 应为 1 到 4096"),
        ({"parts": 2, "by": "districts"}, r"partitions by 'districts'.*tiles, units"),
        ({"parts": 2, "by": "units"}, r"没有行政单元.*no administrative units"),
        ({"parts": 2, "mode": "drive"}, r"mode 'drive'.*straight, network"),
        ({"parts": 2, "radius_m": -5.0}, r"radius -5.0 m"),
        ({"parts": 2, "measure": "orders"}, r"measure: 'orders'"),
    ]
    for kwargs, match in cases:
        with pytest.raises(InvalidInput, match=match):
            partitioned_coverage(run_settings, synthetic, **{"radius_m": 600.0, "scheduler": client, **kwargs})
    (graph_file(synthetic, "walk", run_settings)).unlink()
    with pytest.raises(InvalidInput, match=r"还没有 walk 路网.*yizhan network build --area synthetic"):
        partitioned_coverage(run_settings, synthetic, mode="network", radius_m=600.0, parts=2, scheduler=client)
    with pytest.raises(InvalidInput, match=r"没有需求网格.*import demand first"):
        partitioned_coverage(run_settings, wudaokou, radius_m=600.0, parts=2, scheduler=client)


def test_median_tiles_balance_and_tile_the_box() -> None:
    """Median tiles: disjoint, covering the outer box, each point in exactly one, counts within one column's
    cells of each other on a grid."""
    rng = np.random.default_rng(3)
    xy = rng.uniform([0, 0], [5000, 3000], (10_000, 2))
    outer = (-1.0, -1.0, 5001.0, 3001.0)
    for n in (1, 2, 3, 4, 7, 8):
        tiles = median_tiles(xy, n, outer)
        owners = np.stack([inside(xy, t) for t in tiles])
        assert len(tiles) == n and np.array_equal(owners.sum(axis=0), np.ones(len(xy)))
        counts = owners.sum(axis=1)
        assert counts.max() - counts.min() <= 2, counts
        union = shapely.union_all([box(*t) for t in tiles])
        assert abs(union.area - box(*outer).area) < 1e-6
        assert abs(sum(box(*t).area for t in tiles) - box(*outer).area) < 1e-6


def test_balanced_groups() -> None:
    """Units grouped largest first into the lightest group."""
    assert balanced_groups(np.array([5, 1, 4, 2, 3]), 2) == [[0, 3, 1], [2, 4]]
    assert balanced_groups(np.array([7]), 3) == [[0], [], []]


def test_clipped_graph_keeps_costs(synthetic: AreaInfo, run_settings: Settings) -> None:
    """A graph cut to a box keeps the edges meeting it with their lengths and travel costs, renumbered."""
    from yizhan.coverage.streets import load_area_graph

    graph = load_area_graph(synthetic, "walk", run_settings)
    part = clipped_graph(graph, (ORIGIN[0] + 1000, ORIGIN[1] + 1000, ORIGIN[0] + 2000, ORIGIN[1] + 1500))
    assert 0 < part.n_edges < graph.n_edges
    assert part.adjacency_t.nnz == 2 * part.n_edges  # walking: both directions of every edge, no other entries
    e = 0
    a, b = int(part.u[e]), int(part.v[e])
    assert part.adjacency_t[b, a] == part.length[e] == part.adjacency_t[a, b]
    assert np.all(part.x >= ORIGIN[0] + 1000 - 200) and np.all(part.x <= ORIGIN[0] + 2000 + 200)


def _seats(engine: Engine, info: AreaInfo) -> None:
    """Seats for most of the area's stations (2 to 7; every ninth without), so that capacity tells them apart."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET seats = CASE WHEN id % 9 = 0 THEN NULL ELSE id % 6 + 2 END "
                          "WHERE area_id = :a"), {"a": info.id})


def _json_close(a: Any, b: Any, path: str = "") -> None:
    """The same JSON-like document, numbers to 1e-9 relative (sums over the pairs taken in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            _json_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _json_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


def _same_runs(engine: Engine, part_id: int, whole_id: int) -> None:
    """Two stored runs with the same cells, gaps, hours of the week and stations' loads."""
    from yizhan.coverage.runs import load_run

    a, b = load_run(engine, part_id), load_run(engine, whole_id)
    assert a.summary["covered_share"] == pytest.approx(b.summary["covered_share"], abs=1e-12)
    assert a.summary["gaps"] == b.summary["gaps"]
    for key in ("by_hour", "capacity"):
        _json_close(a.params[key], b.params[key], key)
    ca, cb = a.cells, b.cells
    assert list(ca["cell_key"]) == list(cb["cell_key"])
    for col in ("covered", "hours_covered", "night_gap"):
        assert ca[col].tolist() == cb[col].tolist(), col
    assert ca["covered_hours"].tolist() == cb["covered_hours"].tolist()
    assert np.allclose(ca["accessibility"].to_numpy(float), cb["accessibility"].to_numpy(float), rtol=1e-9,
                       atol=1e-15, equal_nan=True)
    assert np.allclose(ca["distance_m"].to_numpy(float), cb["distance_m"].to_numpy(float), atol=1e-9,
                       equal_nan=True)
    assert list(a.gaps["demand"]) == pytest.approx(list(b.gaps["demand"]), rel=1e-12)
    assert a.hours is not None and b.hours is not None
    assert np.allclose(a.hours.demand, b.hours.demand, rtol=1e-12)
    assert np.allclose(a.hours.covered, b.hours.covered, rtol=1e-12, atol=1e-12)
    assert np.array_equal(a.hours.open_stations, b.hours.open_stations)
    assert np.allclose(a.hours.units["covered"], b.hours.units["covered"], rtol=1e-12, atol=1e-12)
    assert a.loads is not None and b.loads is not None
    la, lb = a.loads.sort_values("station_id"), b.loads.sort_values("station_id")
    assert list(la["station_id"]) == list(lb["station_id"]) and list(la["crowded"]) == list(lb["crowded"])
    assert la["peak_hour"].tolist() == lb["peak_hour"].tolist()
    assert np.allclose(la["per_seat"].to_numpy(float), lb["per_seat"].to_numpy(float), rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("mode", ["straight", "network"])
def test_run_by_hour_with_capacity_in_parts_equals_whole(engine: Engine, run_settings: Settings,
                                                         synthetic: AreaInfo, client: Any, mode: str) -> None:
    """``run_coverage`` by hour and with capacity in 1, 2 and 4 parts stores the run one process stores: the cells'
    covered hours, the hourly and per-township figures, the stations' loads and the cells' accessibility (a
    station's catchment reaching over the parts' edges counted whole)."""
    from yizhan.coverage.analysis import run_coverage

    _seats(engine, synthetic)
    options: dict[str, Any] = {"area": synthetic.name, "mode": mode, "radius_m": 600.0, "by_hour": True,
                               "capacity": True, "unknown_hours": "closed", "decay": "gaussian",
                               "settings": run_settings.model_copy(update={"crowded_per_seat": 1.0})}
    whole = run_coverage(engine, **options)
    assert whole["measured"] == "points"
    crowded = whole["capacity"]["crowded_stations"]
    assert 0 < len(crowded) < whole["capacity"]["stations"]  # loads that tell the stations apart
    assert whole["by_hour"]["night_gap_cells"] > 0
    for parts in ((1, 2, 4) if mode == "straight" else (2,)):
        got = run_coverage(engine, parts=parts, scheduler=client, **options)
        _same_runs(engine, got["run_id"], whole["run_id"])


def test_job_key_holds_hours_and_seats_and_a_torn_part_is_computed_again(
        engine: Engine, run_settings: Settings, synthetic: AreaInfo, client: Any) -> None:
    """A station's opening hours or seats changed make another job (its parts are not reused); a part file cut short
    (a disk filled, a worker killed while writing) is computed again instead of failing the run."""
    first = partitioned_coverage(run_settings, synthetic, radius_m=600.0, parts=3, scheduler=client, pairs=True)
    assert first.pair_loc is not None and len(first.pair_loc) > 0
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET opening_hours = 'Mo-Su 07:00-19:00' WHERE area_id = :a "
                          "AND external_id = 'S2'"), {"a": synthetic.id})
    hours = partitioned_coverage(run_settings, synthetic, radius_m=600.0, parts=3, scheduler=client, pairs=True)
    assert hours.job_dir != first.job_dir and hours.computed == [0, 1, 2]
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET seats = 12 WHERE area_id = :a AND external_id = 'S4'"),
                     {"a": synthetic.id})
    seats = partitioned_coverage(run_settings, synthetic, radius_m=600.0, parts=3, scheduler=client, pairs=True)
    assert seats.job_dir not in (first.job_dir, hours.job_dir)
    torn = seats.job_dir / "part-1.npz"
    torn.write_bytes(torn.read_bytes()[:200])
    again = partitioned_coverage(run_settings, synthetic, radius_m=600.0, parts=3, scheduler=client, pairs=True)
    assert again.job_dir == seats.job_dir and again.computed == [1] and again.reused == [0, 2]
    for name in ("pair_loc", "pair_station", "pair_m"):
        assert np.array_equal(getattr(again, name), getattr(seats, name)), name


def test_job_key_holds_the_week_the_unknown_hours_and_the_time_zone(
        engine: Engine, run_settings: Settings, synthetic: AreaInfo, client: Any) -> None:
    """By hour, the week taken, the policy for stations without readable hours and the time zone each make another
    job (a part's covered hours depend on them); the same run again reuses every part and gives the same masks."""
    from datetime import date

    def run(settings: Settings = run_settings, **kwargs: Any) -> PartitionedCoverage:
        return partitioned_coverage(settings, synthetic, radius_m=600.0, parts=2, scheduler=client, by_hour=True,
                                    **kwargs)

    base = run()
    jobs = [base.job_dir,
            run(week_of=date(2026, 10, 1)).job_dir,  # the National Day week: holidays in it
            run(unknown_hours="closed").job_dir,
            run(run_settings.model_copy(update={"timezone": "Asia/Urumqi"})).job_dir]
    assert len(set(jobs)) == len(jobs)
    again = run()
    assert again.job_dir == base.job_dir and again.computed == [] and again.reused == [0, 1]
    assert base.cell_masks is not None and again.cell_masks is not None
    assert np.array_equal(again.cell_masks, base.cell_masks)


def test_run_by_hour_with_capacity_measured_on_cells_in_parts(engine: Engine, run_settings: Settings,
                                                              synthetic: AreaInfo, client: Any) -> None:
    """Measured on the cell centres (the parts name a location by its cell's position), in 3 parts: the same
    stored run by hour and with capacity as one process."""
    from yizhan.coverage.analysis import run_coverage

    _seats(engine, synthetic)
    options: dict[str, Any] = {"area": synthetic.name, "radius_m": 600.0, "by_hour": True, "capacity": True,
                               "measure": "cells", "settings": run_settings}
    whole = run_coverage(engine, **options)
    assert whole["measured"] == "cells"
    got = run_coverage(engine, parts=3, scheduler=client, **options)
    assert got["measured"] == "cells"
    _same_runs(engine, got["run_id"], whole["run_id"])
