"""National-scale benchmark of the nearest-station service: 186,100 stations over China's cities.

Run with ``.venv/bin/python benchmarks/national.py [--quick]``. Everything happens in a throw-away PostgreSQL +
PostGIS cluster (fsync off) in a temporary folder, removed at the end (also on Ctrl-C or an error).

1. Generate ``yizhan.data.national.national_registry(186_100)`` and load it with ``load_national`` (COPY + one
   upsert, one transaction); stations/s for each step.
2. The database floor on the same data, one connection in this process: ``nearest_stations_async`` (what the
   route calls without ``open_at``: one statement on the async pool), ``nearest_stations`` (the sync path, two
   queries, used with ``open_at``), a bare ``SELECT ... ORDER BY geog <-> point LIMIT 5`` through psycopg, and
   that bare query from two processes at once (both cores), plus a per-call cost breakdown.
   Also the in-process station index (``stations.memindex``): its load from the database and its searches, and
   the rider's answer built around them (hours now, minutes, navigation links, orjson).
3. GET /stations/nearest?k=5 over loopback from an ``httpx.AsyncClient`` in this process against
   ``python -m uvicorn --factory yizhan.api:create_app --workers W`` (W = 1, 2, 4; uvloop and httptools, which
   uvicorn picks when installed; rate limit off, access log off) at 1, 8 and 64 concurrent clients: a fixed
   number of requests per level, bounded in time; the "raw" client rows are the ones to read at 64 clients.
   Each server answers from its in-process index (the levels start once every worker's index is loaded); the
   "db path" rows are 2 workers with the index off (``YIZHAN_NEAREST_INDEX_TTL_S=0``), as before it existed.
4. One level (8 clients, 2 workers) while the database is stopped and started again: 503s, other errors,
   time from the restart to the first 200 and to the last 503.

The server processes and the load levels are in ``http_load.py``, section 3b (``wrk``) in ``wrk_load.py``. Only
loopback traffic; nothing is downloaded. The issue's goal: >= 2,000 req/s and p99 <= 25 ms at 64 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import psycopg
from fastapi.encoders import jsonable_encoder
from sqlalchemy import text

from yizhan.data.national import CITIES, load_national, national_registry
from yizhan.db.cluster import Cluster
from yizhan.db.engine import AsyncPool, make_engine, migrate
from yizhan.settings import DEFAULT_TIMEZONE
from yizhan.stations.memindex import StationIndex
from yizhan.stations.nearest import nearest_stations_async
from yizhan.stations.registry import nearest_stations
from yizhan.stations.schema import station_collection
from yizhan.stations.search import rider_extras

from common import LOAD_AT_START, T0, cpu_probe, loads, ms, say, table, throwaway_cluster
from http_load import Level, healthz_level, load_level, uvicorn_workers
from wrk_load import bench_wrk

SEED = 7
K = 5
KNN_SQL = ("SELECT id, external_id, ST_Distance(geog, q) AS d FROM stations, "
           "CAST(ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS geography) AS q "
           "WHERE status = 'active' ORDER BY geog <-> q LIMIT 5")


@dataclass(frozen=True)
class Scale:
    stations: int
    requests: int  # per HTTP level
    level_seconds: float
    db_queries: int
    workers: tuple[int, ...] = (1, 2, 4)
    concurrency: tuple[int, ...] = (1, 8, 64)
    db_path_workers: tuple[int, ...] = (2,)  # servers with the in-process index off, for comparison


FULL = Scale(stations=186_100, requests=10_000, level_seconds=40, db_queries=3_000)
QUICK = Scale(stations=186_100, requests=300, level_seconds=10, db_queries=300, workers=(1, 2), db_path_workers=())


# -- the registry ----------------------------------------------------------------------------------------------
def load_registry(url: str, scale: Scale) -> list[list[Any]]:
    """Section 1: migrate, generate the national registry, load it, load it again (all updates), VACUUM ANALYZE;
    rows (step, seconds, stations/s)."""
    eng = make_engine(url)
    try:
        migrate(eng)
        t = time.perf_counter()
        records = national_registry(scale.stations, seed=2024)
        t_gen = time.perf_counter() - t
        say(f"generated {len(records):,} stations in {t_gen:.2f} s")
        t = time.perf_counter()
        summary = load_national(eng, records=records)
        t_load = time.perf_counter() - t
        say(f"loaded {summary.inserted:,} stations in {t_load:.2f} s")
        t = time.perf_counter()
        again = load_national(eng, records=records)
        t_reload = time.perf_counter() - t
        assert again.updated == len(records), again
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            t = time.perf_counter()
            conn.execute(text("VACUUM ANALYZE stations"))
            t_vac = time.perf_counter() - t
    finally:
        eng.dispose()
    n = len(records)
    return [["national_registry (generate, numpy)", f"{t_gen:.2f} s", f"{n / t_gen:,.0f} stations/s"],
            ["load_national, all new (COPY + upsert, 1 txn)", f"{t_load:.2f} s", f"{n / t_load:,.0f} stations/s"],
            ["load_national again, all updates", f"{t_reload:.2f} s", f"{n / t_reload:,.0f} stations/s"],
            ["VACUUM ANALYZE stations", f"{t_vac:.2f} s", ""]]


# -- the database floor ----------------------------------------------------------------------------------------
def query_points(n: int, rng: np.random.Generator) -> np.ndarray:
    """Where riders ask from: around cities like the stations (90 %), anywhere in the east (10 %)."""
    pop = np.array([c[3] for c in CITIES])
    city = rng.choice(len(CITIES), n, p=pop / pop.sum())
    lon = rng.normal([CITIES[c][1] for c in city], 0.1)
    lat = rng.normal([CITIES[c][2] for c in city], 0.08)
    far = rng.random(n) < 0.1
    lon[far] = rng.uniform(100, 125, far.sum())
    lat[far] = rng.uniform(20, 45, far.sum())
    return np.column_stack([lon, lat]).round(6)


def bare_knn(port: int, points: np.ndarray, seconds: float) -> list[float]:
    """Latencies of the bare KNN query on one psycopg connection (prepared after 5 runs, psycopg's default)."""
    lat_s: list[float] = []
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="yizhan") as conn:
        for lon, la in points[:20]:
            conn.execute(KNN_SQL, (float(lon), float(la))).fetchall()
        deadline = time.perf_counter() + seconds
        for lon, la in points:
            t = time.perf_counter()
            rows = conn.execute(KNN_SQL, (float(lon), float(la))).fetchall()
            lat_s.append(time.perf_counter() - t)
            assert len(rows) == K
            if time.perf_counter() > deadline:
                break
    return lat_s


def async_path(url: str, points: np.ndarray) -> list[float]:
    """Latencies of ``nearest_stations_async`` one after another on a one-connection async pool (after 20 warm-up
    calls, so the statement is prepared)."""
    async def run() -> list[float]:
        pool = AsyncPool(url, max_size=1)
        out: list[float] = []
        try:
            for lon, la in points[:20]:
                await nearest_stations_async(pool, float(lon), float(la), k=K)
            for lon, la in points:
                t = time.perf_counter()
                got = await nearest_stations_async(pool, float(lon), float(la), k=K)
                out.append(time.perf_counter() - t)
                assert len(got) == K
        finally:
            await pool.close()
        return out

    return asyncio.run(run())


def db_floor(url: str, port: int, points: np.ndarray, scale: Scale) -> tuple[list[list[Any]], list[list[Any]]]:
    rows: list[list[Any]] = []
    eng = make_engine(url)
    n = scale.db_queries
    try:
        lat_nearest: list[float] = []
        with eng.connect() as conn:
            for lon, la in points[:20]:
                nearest_stations(conn, float(lon), float(la), k=K)
            for lon, la in points[:n]:
                t = time.perf_counter()
                got = nearest_stations(conn, float(lon), float(la), k=K)
                lat_nearest.append(time.perf_counter() - t)
                assert len(got) == K
        lat_checkout: list[float] = []
        lat_feature: list[float] = []
        lat_json: list[float] = []
        for lon, la in points[:n]:
            t = time.perf_counter()
            with eng.connect() as conn:
                got = nearest_stations(conn, float(lon), float(la), k=K)
            t1 = time.perf_counter()
            body = station_collection(got, "wgs84", query={"lon": float(lon), "lat": float(la), "coord": "wgs84",
                                                           "k": K, "amenity": [], "open_at": None, "by": "straight"})
            t2 = time.perf_counter()
            json.dumps(jsonable_encoder(body), ensure_ascii=False, separators=(",", ":")).encode()
            t3 = time.perf_counter()
            lat_checkout.append(t1 - t)
            lat_feature.append(t2 - t1)
            lat_json.append(t3 - t2)
    finally:
        eng.dispose()
    lat_async = async_path(url, points[:n])
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=yizhan") as conn:
        t = time.perf_counter()
        index = StationIndex.load(conn)
        t_index = time.perf_counter() - t
    lat_index: list[float] = []
    lat_rider: list[float] = []  # the rider's answer around the index's: hours now, minutes, links, orjson
    lat_rider_again: list[float] = []  # the same stations again: their links cached
    now = datetime.now(ZoneInfo(DEFAULT_TIMEZONE))
    for lats in (lat_rider, lat_rider_again):
        for lon, la in points[:n]:
            t = time.perf_counter()
            got = index.nearest(float(lon), float(la), k=K)
            t1 = time.perf_counter()
            assert got is not None and len(got) == K
            orjson.dumps(station_collection(got, "wgs84", rider_extras(got, now, tz=DEFAULT_TIMEZONE), nav=True))
            lats.append(time.perf_counter() - t1)
            if lats is lat_rider:
                lat_index.append(t1 - t)
    del index
    lat_bare = bare_knn(port, points[:n], scale.level_seconds)
    with ProcessPoolExecutor(2) as pool:
        t = time.perf_counter()
        both = list(pool.map(bare_knn, [port, port], [points[:n], points[n:2 * n]], [scale.level_seconds] * 2))
        wall = time.perf_counter() - t
    both_n = sum(len(b) for b in both)
    for label, lat_s in [("StationIndex.nearest, in process (no database)", lat_index),
                         ("nearest_stations_async, 1-conn async pool (1 statement)", lat_async),
                         ("nearest_stations, 1 conn held (2 queries: KNN + exact re-check)", lat_nearest),
                         ("nearest_stations, pool checkout per call (as the route)", lat_checkout),
                         ("bare KNN SELECT via psycopg, 1 conn", lat_bare)]:
        rows.append([label, f"{len(lat_s):,}", f"{len(lat_s) / sum(lat_s):,.0f}", ms(lat_s, 50), ms(lat_s, 99)])
    rows.append(["bare KNN SELECT, 2 processes (both cores)", f"{both_n:,}", f"{both_n / wall:,.0f}",
                 ms(both[0] + both[1], 50), ms(both[0] + both[1], 99)])
    breakdown = [
        ["StationIndex.nearest (the route's path while the index is loaded)", f"{np.mean(lat_index) * 1e3:.2f}"],
        ["rider's answer of the 5: hours now, minutes, nav links, orjson (first sight of each station)",
         f"{np.mean(lat_rider) * 1e3:.2f}"],
        ["  the same points again (each station's links cached)", f"{np.mean(lat_rider_again) * 1e3:.2f}"],
        ["StationIndex.load: all active stations, one query + KD-tree (once per reload)",
         f"{t_index * 1e3:.0f}"],
        ["nearest_stations_async (the route's path without the index)", f"{np.mean(lat_async) * 1e3:.2f}"],
        ["pool checkout + pre-ping + nearest_stations + return (sync path)", f"{np.mean(lat_checkout) * 1e3:.2f}"],
        ["  of which nearest_stations on a held conn", f"{np.mean(lat_nearest) * 1e3:.2f}"],
        ["  of which the bare KNN query alone", f"{np.mean(lat_bare) * 1e3:.2f}"],
        ["station_collection of the 5 (GeoJSON dicts, kind labels)", f"{np.mean(lat_feature) * 1e3:.2f}"],
        ["jsonable_encoder + json.dumps of the body (the route now uses orjson)", f"{np.mean(lat_json) * 1e3:.2f}"],
    ]
    return rows, breakdown


# -- over HTTP -------------------------------------------------------------------------------------------------
def bench_http(url: str, points: np.ndarray, scale: Scale, work: Path, postmaster: int) -> list[list[Any]]:
    """Section 3: for each server (W workers, index on; the db-path servers, index off) the levels from httpx and
    the raw client, then GET /healthz at 64 raw clients; one table row per level."""
    rows: list[list[Any]] = []
    for workers, index in [(w, True) for w in scale.workers] + [(w, False) for w in scale.db_path_workers]:
        tag = f"workers={workers}" + ("" if index else " db path")
        say(f"uvicorn --workers {workers}" + ("" if index else ", index off (YIZHAN_NEAREST_INDEX_TTL_S=0)"))
        server = uvicorn_workers(url, workers, work / "data",
                                 work / f"uvicorn-{workers}{'' if index else '-db'}.log", index=index)
        try:
            server.wait_ready()
            if index:
                say(f"  every worker's index answers after {server.wait_index(k=K):.1f} s")

            probe = cpu_probe(server.proc.pid, postmaster, server_children=True)
            for conc, kind in [(c, k) for c in scale.concurrency for k in ("httpx", "raw")]:
                r = asyncio.run(load_level(server.base, points, conc, scale.requests, scale.level_seconds, probe,
                                           client_kind=kind))
                rate = r.done / r.seconds
                say(f"  {tag} c={conc} {kind}: {rate:,.0f} req/s, p50 {ms(r.latencies, 50)} ms, "
                    f"p99 {ms(r.latencies, 99)} ms, errors {r.errors}"
                    + (f" (first: {r.first_error})" if r.first_error else ""))
                rows.append([f"{tag} c={conc} {kind}", f"{r.done:,}", f"{rate:,.0f}", ms(r.latencies, 50),
                             ms(r.latencies, 99), r.errors, f"{r.cpu['client'] * 100:.0f}",
                             f"{r.cpu['server'] * 100:.0f}", f"{r.cpu['postgres'] * 100:.0f}",
                             f"{r.from_db:,}" if kind == "raw" else ""])
            # the framework floor: a route that touches no database, on the same server
            r = asyncio.run(healthz_level(server.base, 64, scale.requests, scale.level_seconds))
            rows.append([f"{tag} c=64 raw GET /healthz (no DB)", f"{r.done:,}",
                         f"{r.done / r.seconds:,.0f}", ms(r.latencies, 50), ms(r.latencies, 99), r.errors, "", "", "",
                         ""])
        finally:
            server.stop()
    return rows


def bench_restart(cluster: Cluster, url: str, points: np.ndarray, work: Path, *, conc: int = 8,
                  workers: int = 2) -> list[list[Any]]:
    """One level while the database stops (after 2 s) and starts again (2 s later); 10 s in all."""
    server = uvicorn_workers(url, workers, work / "data", work / "uvicorn-restart.log")
    marks: dict[str, float] = {}
    try:
        server.wait_ready()
        server.wait_index(k=K)

        async def run() -> Level:
            async def chaos() -> None:
                await asyncio.sleep(2.0)
                marks["down"] = time.perf_counter()
                await asyncio.to_thread(cluster.down)
                marks["down_done"] = time.perf_counter()
                await asyncio.sleep(2.0)
                marks["up"] = time.perf_counter()
                await asyncio.to_thread(cluster.up)
                marks["up_done"] = time.perf_counter()

            task = asyncio.create_task(chaos())
            level = await load_level(server.base, points, conc, 10**9, 10.0, timeout=10.0, client_kind="raw")
            await task
            return level

        r = asyncio.run(run())
    finally:
        server.stop()
    after = [e for e in r.events if e[0] >= marks["up_done"]]
    first_ok = next((e[1] for e in after if e[2] == "200"), float("inf"))
    last_503 = max((e[1] for e in r.events if e[2] == "503"), default=marks["up_done"])
    other = {s: c for s, c in r.statuses.items() if s not in ("200", "503")}
    slowest = max((e[1] - e[0] for e in r.events), default=0.0)
    say(f"restart: {r.statuses}, stop {marks['down_done'] - marks['down']:.2f} s, start "
        f"{marks['up_done'] - marks['up']:.2f} s, first 200 {first_ok - marks['up_done']:.2f} s after the restart")
    return [
        ["requests (10 s, 8 raw clients, 2 workers)", f"{r.done:,}"],
        ["200 / 503 / other", f"{r.statuses.get('200', 0):,} / {r.statuses.get('503', 0):,} / {other or 0}"],
        ["database stop (pg_ctl -m fast) took", f"{marks['down_done'] - marks['down']:.2f} s"],
        ["database start (Cluster.up) took", f"{marks['up_done'] - marks['up']:.2f} s"],
        ["first 200 after the database was back", f"{first_ok - marks['up_done']:.2f} s"],
        ["last 503 after the database was back", f"{last_503 - marks['up_done']:.2f} s"],
        ["slowest answer", f"{slowest * 1e3:.0f} ms"],
        ["port unchanged", str(cluster.url() == url)],
    ]


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


def main() -> int:
    parser = argparse.ArgumentParser(description="yizhan national benchmark (own throw-away PostGIS cluster)")
    parser.add_argument("--quick", action="store_true", help="fewer requests and workers: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) at the end")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    # a few query points lie more than the default 3 km from every station: the servers list them all the same
    # (up to 50 km), so that every answer holds k stations and the levels compare with runs before the limit
    os.environ.setdefault("YIZHAN_MAX_DISTANCE_M", "50000")
    with throwaway_cluster("yizhan-national-", keep=args.keep) as scratch:
        cluster, work = scratch.cluster, scratch.work
        say(f"starting a throw-away PostgreSQL cluster in {scratch.base}")
        url = cluster.up()
        postmaster = scratch.postmaster()
        load_rows = load_registry(url, scale)

        rng = np.random.default_rng(SEED)
        points = query_points(max(2 * scale.db_queries, scale.requests), rng)
        say("database floor")
        db_rows, breakdown = db_floor(url, cluster.port, points, scale)
        say("HTTP levels")
        http_rows = bench_http(url, points, scale, work, postmaster)
        say("HTTP levels from wrk")
        wrk_rows = bench_wrk(url, points, work, 10 if args.quick else 30)
        say("HTTP under a database restart")
        restart_rows = bench_restart(cluster, url, points, work)

        print("\n" + "=" * 100)
        print(f"yizhan national benchmark ({'QUICK' if args.quick else 'full'} run), "
              f"total {time.perf_counter() - T0:.0f} s; nproc {len(os.sched_getaffinity(0))}, load average at start "
              f"{loads(LOAD_AT_START)}, at end {loads(os.getloadavg())}; uvicorn {_version('uvicorn')}, "
              f"uvloop {_version('uvloop')}, httptools {_version('httptools')}")
        print(table(f"1. Registry ({scale.stations:,} stations)", ["step", "time", "rate"], load_rows))
        print(table(f"2. Database floor (k={K}, {scale.db_queries:,} queries, random points near cities)",
                    ["path", "calls", "calls/s", "p50 ms", "p99 ms"], db_rows))
        print(table("2b. Per-request cost outside HTTP (mean ms)", ["part", "ms"], breakdown))
        print(table(f"3. GET /stations/nearest?k={K} ({scale.requests:,} requests per level, at most "
                    f"{scale.level_seconds:.0f} s; CPU % = CPU s / wall s, 200 % = both cores)",
                    ["level", "requests", "req/s", "p50 ms", "p99 ms", "errors", "client CPU%", "server CPU%",
                     "postgres CPU%", "db answers"], http_rows))
        print(table("3b. GET /stations/nearest from wrk (2 threads; in-process index)",
                    ["level", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors"], wrk_rows))
        print(table("4. Database restart during load", ["item", "value"], restart_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
