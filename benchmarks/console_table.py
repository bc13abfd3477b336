"""The console's registry table (``console.registry.station_page``, behind ``GET /console/registry``): time per
page of one area holding a province's registry, searched, sorted and paged in PostgreSQL.

Run with ``.venv/bin/python benchmarks/console_table.py [--stations N]`` (default 100,000; ``--quick`` 10,000). A
throw-away PostgreSQL + PostGIS cluster (fsync off) in a temporary folder, removed at the end. The registry is the
synthetic Beijing one of ``run.py`` (``beijing_data.registry_frame``), all in the one area 北京市. Each page is
asked ``--repeat`` times on one connection after one warm-up; the figures are milliseconds per page (p50, p99)
and how many stations matched.
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
from yizhan.console.registry import station_page
from yizhan.db.engine import make_engine, migrate
from yizhan.stations.service import import_stations

from beijing_data import BEIJING, beijing_points, registry_frame
from common import machine_line, ms, say, table, throwaway_cluster, timed

SEED = 20261202
PAGES: list[tuple[str, dict[str, Any]]] = [
    ("first page by id", {}),
    ("first page by name, descending", {"sort": "name", "descending": True}),
    ("by township, page 100", {"sort": "township", "page": 100}),
    ("last page by id", {"page": 1_000_000}),
    ("search 成府路 (every 10th address)", {"q": "成府路"}),
    ("search 成府路, sorted by name, page 20", {"q": "成府路", "sort": "name", "page": 20}),
    ("search 学院路街道 (a township)", {"q": "学院路街道"}),
    ("search 火星 (nothing)", {"q": "火星"}),
]


def main() -> int:
    parser = argparse.ArgumentParser(description="the console's registry table over a large registry")
    parser.add_argument("--stations", type=int, default=100_000, help="stations in the one area (default 100,000)")
    parser.add_argument("--quick", action="store_true", help="10,000 stations, 10 calls per page")
    parser.add_argument("--repeat", type=int, default=30, help="calls per page (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder at the end")
    args = parser.parse_args()
    n = 10_000 if args.quick else args.stations
    repeat = 10 if args.quick else args.repeat
    rng = np.random.default_rng(SEED)
    rows: list[list[Any]] = []
    with throwaway_cluster("yizhan-console-table-", keep=args.keep) as scratch:
        scratch.cluster.up()
        with psycopg.connect(host="127.0.0.1", port=scratch.cluster.port, user="postgres", dbname="postgres",
                             autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench_console_table")
        engine = make_engine(scratch.cluster.url("bench_console_table"))
        scratch.on_exit("dispose the engine", engine.dispose)
        migrate(engine)
        lon, lat = beijing_points(n, rng)
        path = scratch.work / "registry.csv"
        registry_frame(lon, lat, rng, "BJ").to_csv(path, index=False)
        with engine.begin() as conn:
            area = ensure_area(conn, "北京市", boundary=box(*BEIJING), source="benchmark")
        with timed(f"import {n:,} stations"):
            import_stations(engine, path, area="北京市")
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE stations")
            for label, how in PAGES:
                found = station_page(conn, area.id, **how)  # warm-up
                times = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    station_page(conn, area.id, **how)
                    times.append(time.perf_counter() - t)
                say(f"{label}: {ms(times, 50)} ms")
                rows.append([label, f"{found.total:,}", f"{found.page:,}/{found.pages:,}", ms(times, 50),
                             ms(times, 99)])
    print(machine_line())
    print(table(f"The console's registry table: one area of {n:,} stations, 50 a page, {repeat} calls each",
                ["page", "matched", "page/pages", "p50 ms", "p99 ms"], rows, align="lrrrr"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
