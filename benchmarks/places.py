"""Places a rider types (``stations.places.find_places``, behind ``GET /places``): time per query against one area
holding a large registry, and the area the rider's page opens on (``stations.area_view.area_view``).

Run with ``.venv/bin/python benchmarks/places.py [--stations N]`` (default 100,000; ``--quick`` 10,000). A
throw-away PostgreSQL + PostGIS cluster (fsync off) in a temporary folder, removed at the end. The registry is the
synthetic Beijing one of ``run.py`` (``beijing_data.registry_frame``: names like 海淀区五道口骑手之家12号,
addresses like 北京市海淀区成府路17号, townships like 学院路街道), all in the one area 北京市, as a city with one
area would have it. Each query is asked ``--repeat`` times on one connection after one warm-up, with the stations
matched in PostgreSQL (no station index yet, or it is down) and in memory (``StationNames`` of the in-process
station index, as ``GET /places`` does once the index and its names are loaded); the figures are milliseconds per
call (p50, p99) and how many places came back. Building the in-memory names after each reload of the index (in a
background thread, off the riders' requests) is timed too.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import psycopg
from shapely.geometry import box

from yizhan.areas import ensure_area
from yizhan.db.engine import make_engine, migrate
from yizhan.stations.area_view import area_view
from yizhan.stations.memindex import LOAD_SQL, StationIndex
from yizhan.stations.places import StationNames, find_places
from yizhan.stations.service import import_stations

from beijing_data import BEIJING, beijing_points, registry_frame
from common import machine_line, ms, say, table, throwaway_cluster, timed

SEED = 20261202
QUERIES = [
    ("五道口", "a township's part: in every 20th name and township"),
    ("成府路", "a road: in every 10th address"),
    ("学院路街道", "a township, exactly"),
    ("海淀区五道口骑手之家", "a long part of names"),
    ("BJ000123", "no name holds it"),
    ("火星", "nothing matches"),
    ("1", "one character: most names"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description="places a rider types: find_places over a large registry")
    parser.add_argument("--stations", type=int, default=100_000, help="stations in the one area (default 100,000)")
    parser.add_argument("--quick", action="store_true", help="10,000 stations, 10 calls per query")
    parser.add_argument("--repeat", type=int, default=30, help="calls per query (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder at the end")
    args = parser.parse_args()
    n = 10_000 if args.quick else args.stations
    repeat = 10 if args.quick else args.repeat
    rng = np.random.default_rng(SEED)
    rows: list[list[Any]] = []
    with throwaway_cluster("yizhan-places-", keep=args.keep) as scratch:
        scratch.cluster.up()
        with psycopg.connect(host="127.0.0.1", port=scratch.cluster.port, user="postgres", dbname="postgres",
                             autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench_places")
        engine = make_engine(scratch.cluster.url("bench_places"))
        scratch.on_exit("dispose the engine", engine.dispose)
        migrate(engine)
        lon, lat = beijing_points(n, rng)
        path = scratch.work / "registry.csv"
        registry_frame(lon, lat, rng, "BJ").to_csv(path, index=False)
        with engine.begin() as conn:
            ensure_area(conn, "北京市", boundary=box(*BEIJING), source="benchmark")
        with timed(f"import {n:,} stations"):
            import_stations(engine, path, area="北京市")
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE stations")
            index = StationIndex.from_rows(list(conn.exec_driver_sql(LOAD_SQL).all()))
            t = time.perf_counter()
            names = StationNames.from_index(index)
            built = time.perf_counter() - t
            say(f"in-memory names of {len(index):,} active stations: {built:.2f} s")
            rows.append(["StationNames.from_index", f"{len(index):,} active stations, once per reload", "",
                         f"{built * 1e3:.0f}", ""])
            for q, what in QUERIES:
                for where, given in (("database", None), ("memory", names)):
                    found = find_places(conn, q, area="北京市", names=given)  # warm-up
                    times = []
                    for _ in range(repeat):
                        t = time.perf_counter()
                        find_places(conn, q, area="北京市", names=given)
                        times.append(time.perf_counter() - t)
                    say(f"find_places {q!r} ({where}): {ms(times, 50)} ms")
                    rows.append([f"find_places({q!r}), {where}", what, len(found), ms(times, 50), ms(times, 99)])
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                area_view(conn)
                times.append(time.perf_counter() - t)
            rows.append(["area_view() (the page's area)", "the area with most stations", 1, ms(times, 50),
                         ms(times, 99)])
    print(machine_line())
    print(table(f"Places a rider types: one area of {n:,} stations, {repeat} calls each, one connection",
                ["call", "what", "places", "p50 ms", "p99 ms"], rows, align="llrrr"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
