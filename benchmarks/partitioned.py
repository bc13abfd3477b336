"""Partitioned coverage on Dask against the single-process computation: time and peak memory.

Run with ``.venv/bin/python benchmarks/partitioned.py [--quick] [--parts 8]``. A throw-away PostgreSQL + PostGIS
cluster (fsync off) in a temporary folder holds a synthetic area (``beijing_data.make_grid``: a 317 x 317 grid of
200 m cells, 100,489 cells with one order each, 5,000 stations; ``--quick`` 100 x 100 and 500). Each case runs in a
process of its own (so that its peak memory is its own) and computes the area's straight-line coverage within 1 km,
measured on the stored points, without storing a run:

- ``single``: what ``run_coverage`` computes (its reads, ``measured_demand`` and ``straight_coverage``), in one
  process;
- ``dask N``: ``partitioned_coverage`` on a LocalCluster of N worker processes of one thread each, ``--parts``
  parts; the peak memory of each worker process is read from the worker itself after the run;
- ``resume``: the same job again, every part read back from its saved result (the merge alone).

With ``--network`` the same along the streets (door to door, ``network_coverage``; the parts cut the area's graph):
a street lattice every 200 m between the cells' centres (nodes jittered by up to 20 m, 8 % of the blocks missing).

Each partitioned result is checked against the single one (covered flags equal, distances to 1e-9 m).

With ``--weekly`` also whole stored runs by hour of the week and with capacity (``run_coverage(by_hour=True,
capacity=True)``, straight line), in one process and in ``--parts`` parts on 1 and 2 worker processes: the parts find
the (location, station) pairs, the calling process applies the hours and the catchment; the hourly figures and the
stations' loads are checked equal to the one-process run's.

With ``--recommend C`` also a site recommendation (``recommend(k=50)``, straight line, measured on the points) with
C candidate sites drawn near the orders, in one process and with the reach found in ``--parts`` parts on 1 and 2
worker processes; the sites chosen are checked equal.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text

from yizhan.areas import ensure_area, get_area
from yizhan.coverage.cell_coverage import network_coverage, straight_coverage
from yizhan.coverage.measure import measured_demand
from yizhan.coverage.partitioned import partitioned_coverage
from yizhan.coverage.streets import graph_file
from yizhan.data.demand import import_demand
from yizhan.data.demand_points import point_columns
from yizhan.db.engine import make_engine, migrate
from yizhan.geo.streets import compile_street_graph
from yizhan.settings import Settings
from yizhan.stations.registry import stations_frame
from yizhan.stations.service import import_stations

from beijing_data import UTM50N, make_grid
from common import json_from_child, local_dask, machine_info, say, table, throwaway_cluster

SEED = 20261202
RADIUS_M = 1000.0


def peak_mb() -> float:
    """This process's peak resident memory so far (``VmHWM``), MB. Not ``ru_maxrss``: that one survives ``exec``, so
    a case started from this script would report the script's own peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def case_single(url: str, mode: str, data_dir: str) -> dict[str, Any]:
    """The whole area in this process: the reads and the computation of ``run_coverage`` (not storing)."""
    import geopandas as gpd

    from yizhan.db.models import SRID

    base = peak_mb()
    engine = make_engine(url)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        info = get_area(conn, "grid")
        cells = pd.read_sql(text("SELECT c.cell_key, c.weight, c.x, c.y FROM demand_cells c JOIN demand_layers l "
                                 "ON l.id = c.layer_id WHERE c.area_id = :a AND l.retired_at IS NULL "
                                 "ORDER BY c.cell_key"), conn, params={"a": info.id})
        cells_xy = cells[["x", "y"]].to_numpy(float)
        demand = measured_demand(conn, info, cells[["cell_key", "weight"]], cells_xy, 200.0, measure="auto",
                                 timezone="Asia/Shanghai")
        stations = stations_frame(conn, info.id)
    t_read = time.perf_counter() - t0
    active = stations[stations["status"] == "active"]
    st_m = active.to_crs(info.crs_epsg)
    st_xy = np.column_stack([st_m.geometry.x, st_m.geometry.y])
    st_lonlat = np.column_stack([active.geometry.x, active.geometry.y])
    boundary_m = gpd.GeoSeries([info.boundary], crs=SRID).to_crs(info.crs_epsg).iloc[0]
    t1 = time.perf_counter()
    if mode == "network":
        settings = Settings(database_url=url, data_dir=Path(data_dir))
        cov = network_coverage(info, "walk", cells_xy, st_xy, RADIUS_M, {}, lambda _m: None, settings,
                               list(active["external_id"]), demand, st_lonlat)
    else:
        cov = straight_coverage(cells_xy, st_xy, RADIUS_M, boundary_m, demand, st_lonlat)
    t_cov = time.perf_counter() - t1
    engine.dispose()
    out = Path(tempfile.gettempdir()) / f"yizhan-bench-single-{info.id}.npz"
    np.savez(out, covered=cov.covered, distance_m=cov.distance_m)
    return {"seconds": time.perf_counter() - t0, "read_s": t_read, "compute_s": t_cov, "cells": len(cells),
            "points": len(demand.xy), "peak_mb": peak_mb(), "start_mb": base, "reference": str(out),
            "covered": int(cov.covered.sum())}


def case_dask(url: str, mode: str, data_dir: str, workers: int, parts: int, reference: str) -> dict[str, Any]:
    """``partitioned_coverage`` on a LocalCluster of ``workers`` processes (twice: computed, then resumed)."""
    settings = Settings(database_url=url, data_dir=Path(data_dir), partition_workers=workers)
    engine = make_engine(url)
    with engine.connect() as conn:
        info = get_area(conn, "grid")
    engine.dispose()
    lines: list[tuple[float, str]] = []
    with local_dask(workers) as (client, t_cluster):
        t0 = time.perf_counter()
        got = partitioned_coverage(settings, info, mode=mode, radius_m=RADIUS_M, measure="auto", parts=parts,
                                   scheduler=client, progress=lambda m: lines.append((time.perf_counter() - t0, m)))
        t_run = time.perf_counter() - t0
        worker_peak = client.run(peak_mb)
        t1 = time.perf_counter()
        again = partitioned_coverage(settings, info, mode=mode, radius_m=RADIUS_M, measure="auto",
                                     parts=parts, scheduler=client)
        t_resume = time.perf_counter() - t1
    ref = np.load(reference)
    fin = np.isfinite(ref["distance_m"])
    same = bool(np.array_equal(got.coverage.covered, ref["covered"])
                and np.array_equal(np.isfinite(got.coverage.distance_m), fin)
                and np.max(np.abs(got.coverage.distance_m[fin] - ref["distance_m"][fin]), initial=0.0) <= 1e-9)
    part_s = sorted(float(m.split(", ")[1].split(" s")[0]) for _, m in lines if " done: " in m)
    return {"seconds": t_run, "cluster_s": t_cluster, "resume_s": t_resume, "reused": len(again.reused),
            "same": same, "worker_peak_mb": sorted(worker_peak.values()), "client_peak_mb": peak_mb(),
            "part_s_min": part_s[0], "part_s_max": part_s[-1], "parts": parts,
            "widened": got.params["partitions"]["widened_cells"]}


def case_weekly(url: str, data_dir: str, workers: int, parts: int) -> dict[str, Any]:
    """A stored run by hour and with capacity: in this process (``workers`` 0) or in ``parts`` parts on a LocalCluster
    of ``workers`` processes (its start not counted). Returns the time, the peaks and what the equality check reads."""
    from yizhan.coverage.analysis import run_coverage
    from yizhan.coverage.runs import load_run

    settings = Settings(database_url=url, data_dir=Path(data_dir), partition_workers=max(workers, 1))
    engine = make_engine(url)
    worker_peak: list[float] = []
    lines: list[tuple[float, str]] = []
    with local_dask(workers) as (client, t_cluster):
        t0 = time.perf_counter()
        summary = run_coverage(engine, area="grid", radius_m=RADIUS_M, by_hour=True, capacity=True,
                               settings=settings, parts=parts if workers else 1, scheduler=client,
                               progress=lambda m: lines.append((time.perf_counter() - t0, m)))
        seconds = time.perf_counter() - t0
        if client is not None:
            worker_peak = sorted(client.run(peak_mb).values())
    run = load_run(engine, summary["run_id"])
    engine.dispose()
    assert run.hours is not None and run.loads is not None
    steps = {m.split(":")[0].split(" of ")[0]: round(t, 2) for t, m in lines}
    return {"seconds": seconds, "cluster_s": t_cluster, "peak_mb": peak_mb(), "worker_peak_mb": worker_peak,
            "share": summary["covered_share"], "pairs": summary["by_hour"]["pairs"],
            "covered_by_hour": run.hours.covered.tolist(), "per_seat": run.loads.sort_values("station_id")[
                "per_seat"].astype(float).fillna(-1.0).tolist(),
            "masks": [b.hex() if b is not None else "" for b in run.cells["covered_hours"]], "steps": steps}


def case_recommend(url: str, data_dir: str, workers: int, parts: int) -> dict[str, Any]:
    """A stored recommendation of the 50 best sites: in this process (``workers`` 0) or with its reach in ``parts``
    parts on a LocalCluster of ``workers`` processes (its start not counted)."""
    from yizhan.siting.recommend import recommend

    settings = Settings(database_url=url, data_dir=Path(data_dir), partition_workers=max(workers, 1))
    engine = make_engine(url)
    marks: list[tuple[float, str]] = []
    with local_dask(workers) as (client, t_cluster):
        t0 = time.perf_counter()
        got = recommend(engine, area="grid", k=50, radius_m=RADIUS_M, settings=settings,
                        parts=parts if workers else 1, scheduler=client,
                        progress=lambda m: marks.append((time.perf_counter() - t0, m)))
        seconds = time.perf_counter() - t0
    engine.dispose()
    solve = next((t for t, m in marks if " objective " in m), seconds)
    reach = next((t for t, m in marks if "reach of" in m), 0.0)
    return {"seconds": seconds, "cluster_s": t_cluster, "peak_mb": peak_mb(), "sites": [x["id"] for x in got["sites"]],
            "after": got["covered_share_after"], "method": got["method"], "until_solved_s": solve,
            "reach_from_s": reach}


def lattice(cells_xy: np.ndarray, rng: np.random.Generator) -> Any:
    """Streets every 200 m between the cells' centres (metres, UTM 50N): nodes on the cells' corners jittered by up
    to 20 m, edges to the east and north neighbours, 8 % of them missing."""
    x0, y0 = cells_xy.min(axis=0) - 100.0
    nx, ny = (np.round((cells_xy.max(axis=0) - cells_xy.min(axis=0)) / 200.0).astype(int) + 2).tolist()
    gx, gy = np.meshgrid(np.arange(nx) * 200.0, np.arange(ny) * 200.0, indexing="ij")
    x = x0 + gx.ravel() + rng.uniform(-20, 20, gx.size)
    y = y0 + gy.ravel() + rng.uniform(-20, 20, gy.size)
    idx = np.arange(nx * ny).reshape(nx, ny)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    keep = rng.random(len(u)) > 0.08
    return compile_street_graph(x, y, u[keep], v[keep], crs_epsg=UTM50N)


def _candidates(url: str, n: int, rng: np.random.Generator) -> None:
    """``n`` candidate sites in the grid area, each within 150 m of an order (premises sit where people are)."""
    import geopandas as gpd

    from yizhan.siting.candidates import store_candidates

    engine = make_engine(url)
    with engine.begin() as conn:
        info = get_area(conn, "grid")
        got = point_columns(conn, info.id, ("lon", "lat"))
        pick = rng.choice(len(got["lon"]), size=min(n, len(got["lon"])), replace=False)
        pts = np.column_stack([got["lon"][pick], got["lat"][pick]])
        jitter = rng.uniform(-0.0015, 0.0015, pts.shape)
        geo = gpd.points_from_xy(pts[:, 0] + jitter[:, 0], pts[:, 1] + jitter[:, 1])
        inside = info.contains(np.asarray(geo.x), np.asarray(geo.y))
        cands = gpd.GeoDataFrame({"external_id": [f"C{i}" for i in range(int(inside.sum()))],
                                  "name": [f"候选{i}" for i in range(int(inside.sum()))],
                                  "host_type": "shop", "address": None}, geometry=geo[inside], crs=4326)
        store_candidates(conn, info, cands, source="benchmark")
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description="partitioned coverage on Dask vs one process")
    parser.add_argument("--quick", action="store_true", help="a 100 x 100 grid and 500 stations")
    parser.add_argument("--parts", type=int, default=8, help="parts of the partitioned runs (default 8)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--network", action="store_true",
                        help="also along the streets: a street lattice every 200 m (jittered, 8 %% of blocks missing)")
    parser.add_argument("--network-only", action="store_true", help="along the streets only (implies --network)")
    parser.add_argument("--weekly", action="store_true",
                        help="also stored runs by hour and with capacity, one process against parts on Dask")
    parser.add_argument("--recommend", type=int, default=0, metavar="C",
                        help="also a recommendation of 50 sites among C candidates, one process against parts")
    parser.add_argument("--mode", default="straight", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case == "single":
        print(json.dumps(case_single(args.url, args.mode, args.data)))
        return 0
    if args.case == "weekly":
        print(json.dumps(case_weekly(args.url, args.data, args.workers, args.parts)))
        return 0
    if args.case == "recommend":
        print(json.dumps(case_recommend(args.url, args.data, args.workers, args.parts)))
        return 0
    if args.case == "dask":
        print(json.dumps(case_dask(args.url, args.mode, args.data, args.workers, args.parts, args.reference)))
        return 0
    side, n_st = (100, 500) if args.quick else (317, 5000)
    rng = np.random.default_rng(SEED)
    with throwaway_cluster("yizhan-bench-part-", keep=args.keep) as scratch:
        scratch.cluster.up()
        url = scratch.cluster.url("postgres")
        engine = make_engine(url)
        migrate(engine)
        say(f"generating a {side} x {side} grid of 200 m cells and {n_st:,} stations")
        grid = make_grid(side, n_st, rng, scratch.work)
        with engine.begin() as conn:
            ensure_area(conn, "grid", boundary=grid.boundary, crs_epsg=UTM50N, source="benchmark")
        import_stations(engine, grid.csv_stations, area="grid")
        summary = import_demand(engine, grid.csv_demand, area="grid", cell_size_m=200.0)
        engine.dispose()
        say(f"demand: {summary.points:,} points in {summary.cells:,} cells; cases each in a process of its own")
        me = Path(__file__)
        data = scratch.work / "data"
        modes = [] if args.network_only else ["straight"]
        if args.network or args.network_only:
            engine = make_engine(url)
            with engine.connect() as conn:
                info = get_area(conn, "grid")
                xy = np.asarray([tuple(r) for r in conn.execute(text("SELECT x, y FROM demand_cells"))])
            engine.dispose()
            graph = lattice(xy, rng)
            graph.save(graph_file(info, "walk", Settings(data_dir=data)))
            say(f"street lattice: {graph.n_nodes:,} nodes, {graph.n_edges:,} edges")
            modes.append("network")
        tables = []
        for mode in modes:
            single = json_from_child(me, ["--case", "single", "--mode", mode, "--url", url, "--data", str(data)],
                                     show_stderr=True)
            say(f"{mode}, single process: {single['seconds']:.2f} s (reads {single['read_s']:.2f} s, coverage "
                f"{single['compute_s']:.2f} s), peak {single['peak_mb']:.0f} MB")
            rows = [["single process", f"{single['seconds']:.2f} s", "", f"{single['peak_mb']:.0f} MB", "",
                     f"reads {single['read_s']:.2f} s, coverage {single['compute_s']:.2f} s"]]
            for workers in (1, 2):
                shutil.rmtree(data / "partitioned", ignore_errors=True)
                r = json_from_child(me, ["--case", "dask", "--mode", mode, "--url", url, "--data", str(data),
                                         "--workers", str(workers), "--parts", str(args.parts), "--reference",
                                         single["reference"]])
                say(f"{mode}, dask {workers} worker(s): {r['seconds']:.2f} s, workers' peak {r['worker_peak_mb']} MB, "
                    f"resumed {r['resume_s']:.2f} s, same as single: {r['same']}")
                rows.append([f"Dask, {workers} worker process(es), {r['parts']} parts", f"{r['seconds']:.2f} s",
                             f"{r['resume_s']:.2f} s", " / ".join(f"{m:.0f}" for m in r["worker_peak_mb"]) + " MB",
                             f"{r['client_peak_mb']:.0f} MB",
                             f"parts {r['part_s_min']:.2f}–{r['part_s_max']:.2f} s each; cluster start "
                             f"{r['cluster_s']:.1f} s; equal to single: {r['same']}; widened {r['widened']:,} cells"])
            Path(single["reference"]).unlink(missing_ok=True)
            tables.append((mode, rows))
        if args.weekly:
            rows = []
            first: dict[str, Any] | None = None
            for workers in (0, 1, 2):
                r = json_from_child(me, ["--case", "weekly", "--url", url, "--data", str(data), "--workers",
                                         str(workers), "--parts", str(args.parts)], show_stderr=True)
                if first is None:
                    first, same = r, "(the reference)"
                else:
                    same = str(abs(r["share"] - first["share"]) <= 1e-12 and r["masks"] == first["masks"]
                               and r["pairs"] == first["pairs"]
                               and np.allclose(r["covered_by_hour"], first["covered_by_hour"], rtol=1e-12)
                               and np.allclose(r["per_seat"], first["per_seat"], rtol=1e-9))
                case = "one process" if not workers else f"Dask, {workers} worker process(es), {args.parts} parts"
                say(f"by hour + capacity, {case}: {r['seconds']:.2f} s, equal: {same}")
                rows.append([case, f"{r['seconds']:.2f} s", f"{r['peak_mb']:.0f} MB",
                             " / ".join(f"{m:.0f}" for m in r["worker_peak_mb"]) + (" MB" if workers else ""),
                             f"{r['pairs']:,}", same + (f"; cluster start {r['cluster_s']:.1f} s" if workers else "")])
            tables.append(("weekly", rows))
        if args.recommend:
            _candidates(url, args.recommend, rng)
            rows, first = [], None
            for workers in (0, 1, 2):
                r = json_from_child(me, ["--case", "recommend", "--url", url, "--data", str(data), "--workers",
                                         str(workers), "--parts", str(args.parts)], show_stderr=True)
                first = first or r
                same = "(the reference)" if r is first else str(r["sites"] == first["sites"]
                                                                and abs(r["after"] - first["after"]) <= 1e-12)
                case = "one process" if not workers else f"Dask, {workers} worker process(es), {args.parts} parts"
                say(f"recommend, {case}: {r['seconds']:.2f} s, same sites: {same}")
                rows.append([case, f"{r['seconds']:.2f} s", f"{r['until_solved_s'] - r['reach_from_s']:.2f} s",
                             f"{r['peak_mb']:.0f} MB", f"{r['after']:.4f}", r["method"],
                             same + (f"; cluster start {r['cluster_s']:.1f} s" if workers else "")])
            tables.append(("recommend", rows))
    print()
    print(table("machine", ["", ""], machine_info()))
    print()
    for mode, rows in tables:
        if mode == "recommend":
            print(table(f"recommendation of 50 sites among {args.recommend:,} candidates within 1 km: "
                        f"{summary.cells:,} cells x {n_st:,} stations", ["case", "stored", "reach + solve",
                                                                        "peak of the caller", "share after",
                                                                        "method", "same sites"], rows))
            continue
        if mode == "weekly":
            print(table(f"stored run by hour + capacity within 1 km, straight line: {summary.cells:,} cells x "
                        f"{n_st:,} stations", ["case", "run", "peak of the caller", "peak per worker", "pairs",
                                               "equal to one process"], rows))
            continue
        what = "straight line" if mode == "straight" else "along the streets (door to door)"
        print(table(f"coverage within 1 km, {what}, measured on points: {summary.cells:,} cells x {n_st:,} stations",
                    ["case", "run", "again (resumed)", "peak per worker", "peak of the client", "notes"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
