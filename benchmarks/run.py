"""yizhan benchmarks: registry import rate, nearest-station latency/throughput, coverage time.

Run with ``.venv/bin/python benchmarks/run.py [--quick]``. Everything happens in a throw-away PostgreSQL +
PostGIS cluster (fsync off) in a temporary folder that is removed at the end, also on Ctrl-C or an error.
See ``benchmarks/README.md`` for what each figure means. The synthetic data come from ``beijing_data.py``, the
API server and the HTTP load from ``http_load.py``, the shared helpers from ``common.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from shapely.geometry import box
from sqlalchemy import Engine, text

from yizhan.areas import ensure_area, get_area
from yizhan.coverage.analysis import run_coverage
from yizhan.data.demand import aggregate_cells, check_demand, demand_frame_from_file, import_demand
from yizhan.db.engine import make_engine, migrate
from yizhan.stations.columns import frame_from_file
from yizhan.stations.importer import records_from_frame
from yizhan.stations.registry import nearest_stations, upsert_stations
from yizhan.stations.service import import_stations

from beijing_data import BEIJING, UTM50N, beijing_points, make_grid, registry_frame
from common import T0, cpu_probe, machine_info, ms, parallel_scaling, pct, rss_mb, say, table, throwaway_cluster, timed
from http_load import load_level, serve_script

SEED = 20261125


@dataclass(frozen=True)
class Scale:
    stations: int  # rows of the registry import
    requests: int  # HTTP requests per concurrency level
    level_seconds: float  # time bound per concurrency level
    db_queries: int  # nearest_stations calls on one connection
    grid_side: int  # demand grid is grid_side x grid_side cells of 200 m
    cov_stations: int  # stations of the coverage area
    concurrency: tuple[int, ...] = (1, 8, 32)


FULL = Scale(stations=100_000, requests=2_000, level_seconds=120, db_queries=2_000, grid_side=317, cov_stations=5_000)
QUICK = Scale(stations=10_000, requests=200, level_seconds=30, db_queries=200, grid_side=100, cov_stations=500)


def bench_import(engine: Engine, scale: Scale, rng: np.random.Generator, folder: Path,
                 results: list[list[Any]]) -> None:
    n = scale.stations
    say(f"generating a {n:,}-row registry CSV over Beijing ({BEIJING})")
    lon, lat = beijing_points(n, rng)
    path = folder / "registry.csv"
    registry_frame(lon, lat, rng, "BJ").to_csv(path, index=False)
    say(f"registry CSV: {path.stat().st_size / 1e6:.1f} MB")
    with engine.begin() as conn:
        ensure_area(conn, "北京市", boundary=box(*BEIJING), source="benchmark")

    with timed(f"import {n:,} stations (all new)") as t1:
        s1 = import_stations(engine, path, area="北京市")
    assert s1.inserted == n, s1
    with timed(f"re-import the same {n:,} stations (all updates)") as t2:
        s2 = import_stations(engine, path, area="北京市")
    assert s2.updated == n, s2
    results.append(["import, all new (end to end)", f"{t1['s']:.2f} s", f"{n / t1['s']:,.0f} stations/s"])
    results.append(["re-import, all updates (end to end)", f"{t2['s']:.2f} s", f"{n / t2['s']:,.0f} stations/s"])

    # phase breakdown on a third import (all updates again), the same functions import_stations calls
    say("phase breakdown (a third import, all updates)")
    t = time.perf_counter()
    df = frame_from_file(path)
    t_read = time.perf_counter() - t
    with engine.connect() as conn:
        info = get_area(conn, "北京市")
    t = time.perf_counter()
    records = records_from_frame(df, source=path.name, area_contains=info.contains, area_name=info.name)
    t_check = time.perf_counter() - t
    t = time.perf_counter()
    records_from_frame(df, source=path.name)
    t_check_noarea = time.perf_counter() - t
    t = time.perf_counter()
    with engine.begin() as conn:
        upsert_stations(conn, info.id, info.name, records)
    t_upsert = time.perf_counter() - t
    results.append(["  read CSV (frame_from_file)", f"{t_read:.2f} s", f"{n / t_read:,.0f} rows/s"])
    results.append(["  validate rows (records_from_frame)", f"{t_check:.2f} s", f"{n / t_check:,.0f} rows/s"])
    results.append(["    of which area point-in-polygon", f"{max(t_check - t_check_noarea, 0):.2f} s",
                    "(validate without area_contains: " f"{t_check_noarea:.2f} s)"])
    results.append(["  COPY + upsert (upsert_stations)", f"{t_upsert:.2f} s", f"{n / t_upsert:,.0f} rows/s"])


def raw_db_loop(engine: Engine, points: np.ndarray, k: int, n: int, seconds: float, *, reuse: bool) -> list[float]:
    """Latencies of ``n`` nearest_stations calls (at most ``seconds``), after 20 warm-up calls."""
    latencies: list[float] = []
    with engine.connect() as held:
        for lon, lat in points[:20]:
            nearest_stations(held, float(lon), float(lat), k=k)
        start = time.perf_counter()
        for i in range(n):
            lon, lat = points[i % len(points)]
            t = time.perf_counter()
            if reuse:
                got = nearest_stations(held, float(lon), float(lat), k=k)
            else:
                with engine.connect() as conn:
                    got = nearest_stations(conn, float(lon), float(lat), k=k)
            latencies.append(time.perf_counter() - t)
            assert len(got) == k, got
            if time.perf_counter() - start > seconds:
                break
    return latencies


def db_sessions(engine: Engine) -> int:
    """Sessions ever opened to the engine's database (pg_stat_database.sessions, PostgreSQL 14+)."""
    time.sleep(1.2)  # backends flush their statistics at most once a second
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        return int(conn.execute(text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()"))
                   .scalar_one())


def bench_nearest(engine: Engine, url: str, scale: Scale, rng: np.random.Generator, folder: Path,
                  postmaster: int, server_rss: list[float]) -> list[list[Any]]:
    k = 5
    w, s, e, nn = BEIJING
    points = np.column_stack([rng.uniform(w, e, scale.requests), rng.uniform(s, nn, scale.requests)])
    points = np.round(points, 6)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        say("VACUUM ANALYZE stations (as autovacuum would after an import)")
        conn.execute(text("VACUUM ANALYZE stations"))

    # raw DB rate: nearest_stations on one reused connection, and with a pool checkout per call (as the API does)
    raw_rows = []
    for label, reuse in (("raw DB, 1 conn reused", True), ("raw DB, checkout per call", False)):
        say(f"{label}: {scale.db_queries:,} nearest_stations(k={k}) calls")
        lat_db = raw_db_loop(engine, points, k, scale.db_queries, scale.level_seconds, reuse=reuse)
        rate = len(lat_db) / sum(lat_db)
        say(f"{label}: {rate:,.0f} calls/s, median {pct(lat_db, 50) * 1e3:.2f} ms")
        raw_rows.append([label, f"{len(lat_db):,}", f"{rate:,.0f}", ms(lat_db, 50), ms(lat_db, 99), 0, "", "", "",
                         ""])

    say("starting the API server (uvicorn, 1 worker)")
    server = serve_script(url, folder / "server.log")
    try:
        server.wait_ready()
        say(f"API up on {server.base}")

        probe = cpu_probe(server.proc.pid, postmaster, server_children=False)
        rows = []
        for conc in scale.concurrency:
            say(f"HTTP: {scale.requests:,} requests at concurrency {conc} (at most {scale.level_seconds:.0f} s)")
            sessions0 = db_sessions(engine)
            r = asyncio.run(load_level(server.base, points, conc, scale.requests, scale.level_seconds, probe, k=k,
                                       timeout=60))
            sessions = db_sessions(engine) - sessions0
            rate = r.done / r.seconds
            say(f"HTTP c={conc}: {rate:,.0f} req/s, median {ms(r.latencies, 50)} ms, errors {r.errors}"
                + (f" (first: {r.first_error})" if r.first_error else ""))
            rows.append([f"c={conc}", f"{r.done:,}", f"{rate:,.0f}", ms(r.latencies, 50), ms(r.latencies, 99), r.errors,
                         f"{r.cpu['client'] * 100:.0f}", f"{r.cpu['server'] * 100:.0f}",
                         f"{r.cpu['postgres'] * 100:.0f}", sessions])
        server_rss.append(server.peak_rss_mb())
    finally:
        server.stop()
    return rows + raw_rows


def bench_coverage(engine: Engine, scale: Scale, rng: np.random.Generator, folder: Path,
                   results: list[list[Any]]) -> None:
    say(f"generating {scale.grid_side}x{scale.grid_side} demand points (200 m grid, "
        f"{scale.grid_side * 0.2:.1f} km square) and {scale.cov_stations:,} stations")
    grid = make_grid(scale.grid_side, scale.cov_stations, rng, folder)
    with engine.begin() as conn:
        ensure_area(conn, "grid", boundary=grid.boundary, crs_epsg=UTM50N, source="benchmark")
    with timed(f"import {scale.cov_stations:,} stations into the grid area") as ts:
        import_stations(engine, grid.csv_stations, area="grid")
    with timed(f"import_demand: {grid.cells:,} points -> cells") as td:
        summary = import_demand(engine, grid.csv_demand, area="grid", cell_size_m=200.0)
    say(f"demand: {summary.points:,} points, {summary.cells:,} cells, weight {summary.weight_total:,.1f}")
    if summary.cells != grid.cells:
        say(f"WARNING: expected {grid.cells:,} cells, got {summary.cells:,}")
    # breakdown of import_demand: file read + checks, and the PostGIS aggregation alone
    t = time.perf_counter()
    check_demand(demand_frame_from_file(grid.csv_demand), source=grid.csv_demand.name)
    t_check = time.perf_counter() - t
    with engine.begin() as conn:
        info = get_area(conn, "grid")
        t = time.perf_counter()
        aggregate_cells(conn, info, 200.0)
        t_agg = time.perf_counter() - t

    marks: list[tuple[float, str]] = []

    def progress(msg: str) -> None:
        marks.append((time.perf_counter(), msg))
        say(f"  coverage: {msg}")

    with timed(f"run_coverage: {summary.cells:,} cells x {scale.cov_stations:,} stations, radius 1000 m") as tc:
        start = time.perf_counter()
        run = run_coverage(engine, area="grid", radius_m=1000.0, progress=progress)
        end = time.perf_counter()
    results.append([f"import {scale.cov_stations:,} stations", f"{ts['s']:.2f} s", ""])
    results.append([f"import_demand ({summary.points:,} points -> {summary.cells:,} cells)", f"{td['s']:.2f} s",
                    f"{summary.points / td['s']:,.0f} points/s"])
    results.append(["  read + check file (outside the DB)", f"{t_check:.2f} s", ""])
    results.append(["  aggregate_cells alone", f"{t_agg:.2f} s", ""])
    results.append(["  rest (COPY points, delete, commit)", f"{max(td['s'] - t_check - t_agg, 0):.2f} s", ""])
    results.append([f"run_coverage ({run['cells']:,} cells x {run['stations']:,} active stations)",
                    f"{tc['s']:.2f} s", f"covered share {run['covered_share'] * 100:.2f} %"])
    bounds = [(start, "resolve area"), *marks, (end, "")]
    labels = {"loading": "load stations + cells, reproject", "straight": "nearest station (KD-tree)",
              "merging": "gaps + covered disc union + insert run", "storing": "store run cells + gaps, commit"}
    for (t_a, msg), (t_b, _) in itertools.pairwise(bounds):
        key = msg.split(" ", 1)[0]
        results.append([f"  {labels.get(key, msg)}", f"{t_b - t_a:.2f} s", ""])
    results.append(["  result", "", f"{run['gaps']:,} gaps, {run['covered_area_km2']:,.1f} km² covered"])


def main() -> int:
    parser = argparse.ArgumentParser(description="yizhan benchmarks (own throw-away PostGIS cluster)")
    parser.add_argument("--quick", action="store_true", help="about 10x smaller: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (CSVs, logs) at the end")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    rng = np.random.default_rng(SEED)
    results_import: list[list[Any]] = []
    results_cov: list[list[Any]] = []
    server_rss: list[float] = []
    with throwaway_cluster("yizhan-bench-", keep=args.keep) as scratch:
        cluster, work = scratch.cluster, scratch.work
        scaling = parallel_scaling()
        say(f"CPU scaling, 2 busy processes vs 1: {scaling:.2f}x")
        say(f"starting a throw-away PostgreSQL cluster in {scratch.base} ({'quick' if args.quick else 'full'} run)")
        cluster.up()
        postmaster = scratch.postmaster()
        with psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres",
                             autocommit=True) as admin:
            versions = admin.execute("SELECT version()").fetchone()[0].split(" on ")[0]
            admin.execute("CREATE DATABASE bench_registry")
            admin.execute("CREATE DATABASE bench_coverage")
        urls = {name: cluster.url(name) for name in ("bench_registry", "bench_coverage")}
        engines: list[Engine] = []
        for name, url in urls.items():
            eng = make_engine(url)
            scratch.on_exit(f"dispose engine {len(engines)}", eng.dispose)
            engines.append(eng)
            migrate(eng)
            say(f"migrated {name}")
        with engines[0].connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()

        bench_import(engines[0], scale, rng, work, results_import)
        results_near = bench_nearest(engines[0], urls["bench_registry"], scale, rng, work, postmaster, server_rss)
        bench_coverage(engines[1], scale, rng, work, results_cov)

        machine = [*machine_info(), ["2 busy processes vs 1 (CPU scaling)", f"{scaling:.2f}x"],
                   ["PostgreSQL", f"{versions} (fsync off)"], ["PostGIS", postgis],
                   ["peak RSS, this process", f"{rss_mb():,.0f} MB"],
                   ["peak RSS, API server process", f"{server_rss[0]:,.0f} MB" if server_rss else "?"]]
        print("\n" + "=" * 100)
        print(f"yizhan benchmark ({'QUICK' if args.quick else 'full'} run), total {time.perf_counter() - T0:.0f} s")
        print(table("Machine", ["item", "value"], machine, align="ll"))
        print(table(f"1. Registry import ({scale.stations:,} rows, CSV with Chinese headers)",
                    ["step", "time", "rate"], results_import, align="lrl"))
        print(table(f"2. GET /stations/nearest?k=5 ({scale.requests:,} requests per level, random points over "
                    "Beijing; CPU % = CPU seconds / wall seconds, 200 % = both cores)",
                    ["level", "requests", "req/s", "p50 ms", "p99 ms", "errors", "client CPU%", "server CPU%",
                     "postgres CPU%", "DB sessions"], results_near))
        print(table("3. Coverage (200 m cells, radius 1000 m)", ["step", "time", "note"], results_cov, align="lrl"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
