"""The synthetic nation: 186,100 stations and at least 5 M demand cells of 200 m, straight-line coverage within
1 km end to end, area by area (one area per UTM zone), in one process and in parts on Dask.

Run with ``.venv/bin/python benchmarks/nation.py [--stations 186100] [--cells 5000000] [--workers 1 2]``. Its own
throw-away PostGIS cluster (fsync off) in a temporary folder. Prints: the generation; the load (stations upserted
per area, demand written to Parquet and imported through ``import_demand``: points/s); then the national run, every
area's ``run_coverage`` (read stations and cells, coverage, gaps, covered area, store the run) (a) in this process
area after area, with its phases (from the progress messages) beside its kernel (``nearest_from_arrays`` on the
same arrays, in the same process), and (b) in parts on a LocalCluster of 1 and of 2 worker processes (one client
for all areas, parts per area proportional to its cells), with the peak memory of this process and of each worker
(MB); and (c) whole areas side by side as jobs on a LocalCluster of 1 and of 2 worker processes
(``coverage.area_runs.run_areas``: each worker runs an area's ``run_coverage`` end to end, the largest areas first),
the cluster's start timed apart. (b) and (c) are checked to agree with (a): the covered share per area to 1e-12, the
same gaps (count, ranks, demand). Times are wall seconds.

(d) A province of raw orders (``--province-points``, 10,000,000 by default, 0 to skip): the largest area's demand
replaced by that many order points, each drawn in a cell with the cell's orders as its odds and placed uniformly
inside it (weight 1), imported through ``import_demand`` (Parquet), then its straight-line run measured on the
points (``run_coverage(measure="points")``) end to end in one process beside its kernel (``nearest_from_arrays`` on
the points' metres) and in parts on 1 and 2 Dask workers (agreeing with the one-process run as above), with the
peak memory of each. Run last, since it replaces that area's demand.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, text

from yizhan.areas import ensure_area, get_area
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.euclidean import nearest_from_arrays
from yizhan.coverage.runs import layer_cells
from yizhan.data.demand import import_demand
from yizhan.data.national import national_demand, national_registry, national_zones, zone_of
from yizhan.db.engine import make_engine, migrate
from yizhan.settings import Settings
from yizhan.stations.registry import stations_frame, upsert_stations
from yizhan.stations.tables import ImportLimits

from common import machine_info, rss_mb, say, table, throwaway_cluster

RADIUS_M = 1000.0
CELLS_PER_PART = 250_000
"""Parts per area in the Dask runs: one per this many cells (at least two)."""


def worker_mb() -> str:
    """The calling process's resident memory now and at its peak, MB, as ``now/peak`` (run on each worker by
    ``client.run``; a forked worker's peak counts the pages it shares with its parent at the fork)."""
    import resource

    import psutil
    now, peak = psutil.Process().memory_info().rss / 2**20, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"{now:,.0f}/{peak:,.0f}"


def load(engine: Engine, n_stations: int, n_cells: int, work: Path
         ) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Generate the nation, create its zone areas, upsert their stations and import their demand; the areas with
    demand, largest first, and the demand (``national_demand``'s)."""
    t = time.perf_counter()
    recs = national_registry(n_stations)
    demand = national_demand(n_cells)
    say(f"generated {len(recs):,} stations and {sum(len(v[0]) for v in demand.values()):,} cells in "
        f"{time.perf_counter() - t:.1f} s")
    zone = zone_of(np.array([r.lon for r in recs]))
    rows = []
    st_s = dem_s = 0.0
    for name, epsg, band in national_zones():
        mine = [r for r, z in zip(recs, zone.tolist(), strict=True) if z == epsg - 32600]
        t = time.perf_counter()
        with engine.begin() as conn:
            info = ensure_area(conn, name, boundary=band, crs_epsg=epsg, source="synthetic nation")
            if mine:
                upsert_stations(conn, info.id, info.name, mine)
        s1 = time.perf_counter() - t
        st_s += s1
        if name not in demand:
            rows.append([name, len(mine), 0, f"{s1:.2f}", "–", "–"])
            continue
        lon, lat, w = demand[name]
        path = work / f"{name}.parquet"
        pq.write_table(pa.table({"lon": lon, "lat": lat, "weight": w}), path)
        t = time.perf_counter()
        summary = import_demand(engine, path, area=name, cell_size_m=200.0,
                                limits=ImportLimits(max_rows=len(lon), max_uncompressed_mb=1e6))
        s2 = time.perf_counter() - t
        dem_s += s2
        assert summary.cells == len(lon), (name, summary.cells, len(lon))
        rows.append([name, len(mine), len(lon), f"{s1:.2f}", f"{s2:.2f}", f"{len(lon) / s2:,.0f}"])
    total = sum(len(v[0]) for v in demand.values())
    rows.append(["total", len(recs), total, f"{st_s:.2f}", f"{dem_s:.2f}", f"{total / dem_s:,.0f}"])
    print(table("load: stations upserted, demand imported (Parquet, one point per cell)",
                ["area", "stations", "cells", "stations s", "demand s", "points/s"], rows))
    return sorted(demand, key=lambda k: -len(demand[k][0])), demand


def province_points(lon: np.ndarray, lat: np.ndarray, weight: np.ndarray, epsg: int, n: int, cell_m: float,
                    seed: int = 17) -> tuple[np.ndarray, np.ndarray]:
    """``n`` order points over the cells centred on (``lon``, ``lat``) (WGS 84 degrees) of ``cell_m`` metres on
    EPSG ``epsg``'s lattice: each cell draws its points with its ``weight`` as the odds, each point uniform inside
    its cell (a hundredth of a millimetre off the edges, so it stays in it), less the few that fall over the zone's
    band edge (``zone_of``: the area's boundary). WGS 84 lon, lat degrees."""
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    counts = rng.multinomial(n, weight / weight.sum())
    half = cell_m / 2 - 1e-5
    px = np.repeat(np.asarray(x), counts) + rng.uniform(-half, half, n)
    py = np.repeat(np.asarray(y), counts) + rng.uniform(-half, half, n)
    plon, plat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(px, py)
    keep = zone_of(np.asarray(plon)) == epsg - 32600
    return np.asarray(plon)[keep], np.asarray(plat)[keep]


def points_kernel(engine: Engine, area: str) -> float:
    """Seconds of the nearest-station search alone on the area's stored points and active stations."""
    from yizhan.data.demand_points import stored_points

    with engine.connect() as conn:
        info = get_area(conn, area)
        st = stations_frame(conn, info.id)
        pts = stored_points(conn, info, cell_size_m=200.0, timezone="Asia/Shanghai")
    st = st[st["status"] == "active"].to_crs(info.crs_epsg)
    st_xy = np.column_stack([st.geometry.x, st.geometry.y])
    xy = np.column_stack([pts.x, pts.y])
    t = time.perf_counter()
    nearest_from_arrays(xy, st_xy, RADIUS_M)
    return time.perf_counter() - t


def kernel(engine: Engine, area: str) -> float:
    """Seconds of the nearest-station search alone on the area's cell centres and active stations."""
    with engine.connect() as conn:
        info = get_area(conn, area)
        cells = layer_cells(conn, info.id)
        st = stations_frame(conn, info.id)
    assert cells is not None
    st = st[st["status"] == "active"].to_crs(info.crs_epsg)
    st_xy = np.column_stack([st.geometry.x, st.geometry.y])
    t = time.perf_counter()
    nearest_from_arrays(cells.xy, st_xy, RADIUS_M)
    return time.perf_counter() - t


def one_run(engine: Engine, area: str, measure: str = "cells", **kw: Any
            ) -> tuple[dict[str, Any], dict[str, float], float]:
    """``run_coverage`` of ``area``: its summary, its phases (seconds from one progress message to the next, named
    by the first words of the message) and its wall seconds."""
    marks: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    summary = run_coverage(engine, area=area, radius_m=RADIUS_M, measure=measure,
                           progress=lambda m: marks.append((" ".join(m.split()[:2]), time.perf_counter())), **kw)
    end = time.perf_counter()
    phases: dict[str, float] = {}
    for (name, at), (_, nxt) in zip(marks, [*marks[1:], ("end", end)], strict=True):
        phases[name] = phases.get(name, 0.0) + nxt - at
    return dict(summary), phases, end - t0


def gaps_of(engine: Engine, run_id: int) -> list[tuple[int, float, int]]:
    """A run's gaps as (rank, unmet demand rounded to 1e-6, cells)."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT rank, demand, cells FROM gaps WHERE run_id = :r ORDER BY rank"),
                            {"r": run_id})
        return [(int(r), round(float(d), 6), int(c)) for r, d, c in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=186_100)
    parser.add_argument("--cells", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--areas-workers", type=int, nargs="*", default=[1, 2],
                        help="worker processes of the (c) runs, whole areas as jobs (default 1 2)")
    parser.add_argument("--no-parts", action="store_true", help="skip (b), the runs in parts")
    parser.add_argument("--province-points", type=int, default=10_000_000,
                        help="(d): raw order points of the largest area, measured on the points (0 skips it)")
    parser.add_argument("--province-workers", type=int, nargs="*", default=[1, 2],
                        help="worker processes of (d)'s runs in parts (default 1 2)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    print(table("machine", ["", ""], machine_info()))
    with throwaway_cluster("yizhan-nation-", keep=args.keep) as scratch:
        url = scratch.cluster.up()
        engine = make_engine(url)
        migrate(engine)
        areas, demand = load(engine, args.stations, args.cells, scratch.work)
        # (a) one process, area after area
        rows, ref, tot = [], {}, {"run": 0.0, "kernel": 0.0}
        for area in areas:
            summary, phases, s = one_run(engine, area)
            k = kernel(engine, area)
            ref[area] = (summary["covered_share"], gaps_of(engine, summary["run_id"]))
            tot["run"] += s
            tot["kernel"] += k
            rows.append([area, f"{summary['cells']:,}", f"{summary['stations']:,}", f"{s:.2f}", f"{k:.3f}",
                         f"{summary['covered_share']:.4f}", summary["gaps"],
                         "; ".join(f"{n} {v:.2f}" for n, v in phases.items())])
        rows.append(["nation", "", "", f"{tot['run']:.2f}", f"{tot['kernel']:.3f}", "", "", ""])
        print(table(f"(a) one process, area after area: run_coverage end to end beside its kernel "
                    f"(parent peak {rss_mb():,.0f} MB)",
                    ["area", "cells", "stations", "end to end s", "kernel s", "share", "gaps", "phases s"], rows,
                    "lrrrrrrl"))
        # (b) in parts on Dask
        from distributed import Client, LocalCluster
        for workers in [] if args.no_parts else args.workers:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit="auto",
                                   dashboard_address=None)
            client = Client(cluster)
            settings = Settings(database_url=url, data_dir=scratch.work, partition_workers=workers)
            rows, total, agree = [], 0.0, True
            try:
                for area in areas:
                    with engine.connect() as conn:
                        n = conn.execute(text("SELECT count(*) FROM demand_cells c JOIN areas a ON a.id = c.area_id "
                                              "WHERE a.name = :n"), {"n": area}).scalar_one()
                    parts = max(2, round(n / CELLS_PER_PART))
                    summary, phases, s = one_run(engine, area, parts=parts, scheduler=client, settings=settings)
                    total += s
                    same = (abs(summary["covered_share"] - ref[area][0]) <= 1e-12
                            and gaps_of(engine, summary["run_id"]) == ref[area][1])
                    agree &= same
                    rows.append([area, parts, f"{s:.2f}", "yes" if same else "NO",
                                 "; ".join(f"{n} {v:.2f}" for n, v in phases.items())])
                per_worker = client.run(worker_mb)
            finally:
                client.close()
                cluster.close()
            rows.append(["nation", "", f"{total:.2f}", "yes" if agree else "NO", ""])
            print(table(f"(b) in parts on {workers} Dask worker process(es): end to end, agreement with (a); "
                        f"MB per worker now/peak {', '.join(per_worker.values())}, parent peak "
                        f"{rss_mb():,.0f}", ["area", "parts", "end to end s", "same as (a)", "phases s"], rows,
                        "lrrll"))
        # (c) whole areas as jobs on Dask
        from yizhan.coverage.area_runs import run_areas
        for workers in args.areas_workers:
            t = time.perf_counter()
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit="auto",
                                   dashboard_address=None)
            client = Client(cluster)
            started = time.perf_counter() - t
            settings = Settings(database_url=url, data_dir=scratch.work, partition_workers=workers)
            try:
                result = run_areas(settings, areas, scheduler=client, radius_m=RADIUS_M, measure="cells")
                per_worker = client.run(worker_mb)
            finally:
                client.close()
                cluster.close()
            rows, agree = [], True
            for o in result.outcomes:
                assert o.summary is not None, o.error
                same = (abs(o.summary["covered_share"] - ref[o.area][0]) <= 1e-12
                        and gaps_of(engine, o.summary["run_id"]) == ref[o.area][1])
                agree &= same
                rows.append([o.area, f"{o.summary['cells']:,}", f"{o.seconds:.2f}", "yes" if same else "NO"])
            rows.append(["nation", "", f"{result.seconds:.2f}", "yes" if agree else "NO"])
            say(f"(c) whole areas on {workers} worker(s): {result.seconds:.2f} s (cluster start {started:.1f} s)")
            print(table(f"(c) whole areas as jobs on {workers} Dask worker process(es), largest first: the nation "
                        f"end to end {result.seconds:.2f} s (cluster start {started:.1f} s apart), agreement with "
                        f"(a); MB per worker now/peak {', '.join(per_worker.values())}",
                        ["area", "cells", "seconds in its worker", "same as (a)"], rows, "lrrl"))
        if args.province_points > 0:
            province(engine, url, scratch.work, areas[0], demand[areas[0]], args.province_points,
                     args.province_workers)
    return 0


def province(engine: Engine, url: str, work: Path, area: str, cells: tuple[np.ndarray, np.ndarray, np.ndarray],
             n: int, workers_list: list[int]) -> None:
    """(d): ``area``'s demand replaced by about ``n`` raw order points drawn over its ``cells`` (lon, lat, orders),
    imported, then its straight-line run measured on the points in one process and in parts."""
    from distributed import Client, LocalCluster

    with engine.connect() as conn:
        epsg = get_area(conn, area).crs_epsg
    t = time.perf_counter()
    lon, lat = province_points(*cells, epsg=epsg, n=n, cell_m=200.0)
    path = work / f"{area}-points.parquet"
    pq.write_table(pa.table({"lon": lon, "lat": lat, "weight": np.ones(len(lon))}), path)
    say(f"(d) {len(lon):,} order points over {len(cells[0]):,} cells of {area} generated in "
        f"{time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    summary = import_demand(engine, path, area=area, cell_size_m=200.0,
                            limits=ImportLimits(max_rows=n, max_uncompressed_mb=1e6))
    imported = time.perf_counter() - t
    del lon, lat
    say(f"(d) imported {summary.points:,} points into {summary.cells:,} cells in {imported:.2f} s "
        f"({summary.points / imported:,.0f} points/s)")
    rows = []
    ref, phases, s = one_run(engine, area, measure="points")
    k = points_kernel(engine, area)
    ref_gaps = gaps_of(engine, ref["run_id"])
    say(f"(d) one process: {s:.2f} s end to end, kernel {k:.2f} s")
    rows.append(["one process", f"{s:.2f}", f"{k:.2f}", f"{ref['covered_share']:.6f}", ref["gaps"], "(reference)",
                 f"{rss_mb():,.0f}", "; ".join(f"{p} {v:.2f}" for p, v in phases.items())])
    for workers in workers_list:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit="auto",
                               dashboard_address=None)
        client = Client(cluster)
        settings = Settings(database_url=url, data_dir=work, partition_workers=workers)
        try:
            parts = max(2, round(summary.cells / CELLS_PER_PART))
            got, phases, s = one_run(engine, area, measure="points", parts=parts, scheduler=client,
                                     settings=settings)
            per_worker = client.run(worker_mb)
        finally:
            client.close()
            cluster.close()
        same = (abs(got["covered_share"] - ref["covered_share"]) <= 1e-12
                and gaps_of(engine, got["run_id"]) == ref_gaps)
        say(f"(d) {workers} Dask worker(s), {parts} parts: {s:.2f} s end to end")
        rows.append([f"{workers} Dask worker(s), {parts} parts", f"{s:.2f}", "", f"{got['covered_share']:.6f}",
                     got["gaps"], "yes" if same else "NO", ", ".join(per_worker.values()),
                     "; ".join(f"{p} {v:.2f}" for p, v in phases.items())])
    print(table(f"(d) a province of {summary.points:,} raw order points ({area}, {summary.cells:,} cells, "
                f"{ref['stations']:,} stations), measured on the points: import {imported:.2f} s, then the run end "
                f"to end beside its kernel", ["case", "end to end s", "kernel s", "share", "gaps", "same as one",
                                              "MB (parent peak / per worker now/peak)", "phases s"], rows,
                "lrrrrlll"))


if __name__ == "__main__":
    raise SystemExit(main())
