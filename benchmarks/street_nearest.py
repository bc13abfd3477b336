"""Benchmark of the rider's nearest search along the streets (``GET /stations/nearest?by=network``) on a 1 M-node
street graph: the street table (yizhan.coverage.street_table) against the exact search, over real HTTP.

Run with ``.venv/bin/python benchmarks/street_nearest.py [--quick] [--keep]``. It starts its own throw-away
PostgreSQL + PostGIS cluster, creates an area over a synthetic street graph (``network.lattice``: a perturbed
lattice of 100 m blocks, 1 M nodes, about 100 x 100 km in UTM 50N; ``--quick``: 100k nodes) and imports 3,000
stations uniform at random over it (``--quick``: 300), with random amenities and hours.

1. The table built in this process (``build_street_table``: 10 stations per node within 6 km): seconds, the
   arrays' MB, the growth of this process's peak RSS; then the in-process cost of one answer (snapped point,
   k=5) from the table (``nearest_in_table``, routes walked); the same table built by the keeper the server uses
   and the CPU of a whole ``nearest_along_streets`` answered from it (area, snap, table, routes in lon/lat); one
   answer by the exact search (``exact_along_streets``, PostGIS read + Dijkstra), mean ms.
2. ``wrk`` (2 threads, a Lua script cycling through 2,000 random query points, k=5, by=network) against
   ``uvicorn --workers 2`` at 16 and 64 connections, for 20 s each (``--quick``: 8 s): first with the street
   table (each worker builds its own after its first search; the load starts once both answer from it), then
   with the table off (``street_table.use_tables(False)``: every search exact). req/s, p50, p90, p99 ms,
   errors (non-2xx and socket errors, timeouts after 30 s included), and each server's workers' peak RSS.

Times in seconds or milliseconds of wall time; memory MB (MiB).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from fastapi import FastAPI
from pyproj import Transformer
from shapely.geometry import Polygon

from yizhan.areas import ensure_area
from yizhan.coverage import street_table
from yizhan.coverage.network import snap_points
from yizhan.coverage.routing import exact_along_streets, nearest_along_streets
from yizhan.coverage.streets import graph_file
from yizhan.db.cluster import free_port
from yizhan.db.engine import libpq_url, make_engine, migrate
from yizhan.geo.streets import compile_street_graph
from yizhan.settings import Settings
from yizhan.stations.registry import StationFilter
from yizhan.stations.service import import_stations

from common import LOAD_AT_START, T0, loads, say, table, throwaway_cluster
from http_load import ServerProcess
from network import lattice

SEED = 20261202
EPSG = 32650
K = 5
HEADER = "id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status"
AMENITIES = ["charging", "drinking_water", "toilet", "microwave", "rest_seats", "wifi"]
HOURS = ["24/7", "Mo-Su 07:00-22:00", "Mo-Fr 08:30-17:30; Sa,Su 09:00-17:00"]
WRK_LUA = """
local points = {%s}
local i = 0
request = function()
  i = i %% #points + 1
  return wrk.format("GET", "/stations/nearest?by=network&k=%d&" .. points[i])
end
"""


def exact_app() -> FastAPI:
    """The app with the street tables off: every search along the streets is exact (uvicorn ``--factory``)."""
    from yizhan.api import create_app

    street_table.use_tables(False)
    return create_app()


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def workers_cpu_s(server: ServerProcess) -> float:
    """CPU seconds (user + system) the server's worker processes have used so far."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def workers_rss_mb(server: ServerProcess) -> str:
    """Peak RSS (VmHWM, MB) of each worker process of the server, as text."""
    out = []
    for pid in Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split():
        try:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            out.append(f"{int(next(ln for ln in status if ln.startswith('VmHWM:')).split()[1]) / 1024:,.0f}")
        except (OSError, StopIteration, ValueError):
            continue
    return " + ".join(out) or "?"


def make_area(url: str, data_dir: Path, n_nodes: int, n_stations: int,
              rng: np.random.Generator) -> tuple[Any, np.ndarray, list[list[Any]]]:
    """The lattice's area, graph file and stations; the query points (lon, lat) and rows of timings."""
    rows: list[list[Any]] = []
    t = time.perf_counter()
    data = lattice(n_nodes, SEED)
    graph = compile_street_graph(data["x"], data["y"], data["u"], data["v"], crs_epsg=EPSG,
                                 geometry=data["geometry"])
    rows.append(["graph: generate + compile", f"{time.perf_counter() - t:.1f} s",
                 f"{graph.n_nodes:,} nodes, {graph.n_edges:,} edges"])
    to_ll = Transformer.from_crs(EPSG, 4326, always_xy=True)
    (x0, y0), (x1, y1) = data["lo"], data["hi"]
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    lon, lat = to_ll.transform(corners[:, 0], corners[:, 1])
    inner = np.array([x0 + 500, y0 + 500]), np.array([x1 - 500, y1 - 500])
    st_xy = rng.uniform(*inner, (n_stations, 2))
    q_xy = rng.uniform(*inner, (2000, 2))
    st_lon, st_lat = to_ll.transform(st_xy[:, 0], st_xy[:, 1])
    q_lon, q_lat = to_ll.transform(q_xy[:, 0], q_xy[:, 1])
    eng = make_engine(url)
    try:
        migrate(eng)
        with eng.begin() as conn:
            area = ensure_area(conn, "lattice", boundary=Polygon(zip(lon, lat, strict=True)), crs_epsg=EPSG)
        t = time.perf_counter()
        graph.save(graph_file(area, "walk", Settings(data_dir=data_dir)))
        rows.append(["graph: save", f"{time.perf_counter() - t:.1f} s", ""])
        lines = [HEADER]
        for i, (a, b) in enumerate(zip(st_lon, st_lat, strict=True)):
            amen = ";".join(sorted(rng.choice(AMENITIES, size=int(rng.integers(1, 5)), replace=False)))
            lines.append(f'L-{i:05d},驿站 {i},small,{a:.7f},{b:.7f},shop,,,{amen},"{HOURS[i % 3]}",4,3,active')
        t = time.perf_counter()
        import_stations(eng, "lattice.csv", area="lattice", data=("\n".join(lines) + "\n").encode(),
                        filename="lattice.csv")
        rows.append(["stations: import", f"{time.perf_counter() - t:.1f} s", f"{n_stations:,} stations"])
    finally:
        eng.dispose()
    return area, np.column_stack([q_lon, q_lat]), rows


def _spread(seconds: list[float]) -> str:
    """p50 / p99 / max of wall times, in ms."""
    ms = np.asarray(seconds) * 1e3
    return f"{np.percentile(ms, 50):.1f} / {np.percentile(ms, 99):.1f} / {ms.max():.1f}"


def in_process(url: str, data_dir: Path, area: Any, points: np.ndarray, quick: bool) -> list[list[Any]]:
    """Section 1: the table built here, and one answer's cost from it and from the exact search."""
    from yizhan.coverage.streets import load_area_graph

    settings = Settings(data_dir=data_dir, database_url=url)
    graph = load_area_graph(area, "walk", settings)
    graph.tree()
    eng = make_engine(url)
    rows: list[list[Any]] = []
    try:
        with psycopg.connect(libpq_url(url)) as conn:
            snap = street_table.load_snapshot(conn)
        here = snap.stations[area.id]
        to_m = Transformer.from_crs(4326, EPSG, always_xy=True)
        sx, sy = to_m.transform(here.lon, here.lat)
        rss0 = peak_rss_mb()
        t = time.perf_counter()
        tab = street_table.build_street_table(graph, np.asarray(sx), np.asarray(sy), max_snap_m=settings.max_snap_m)
        build_s = time.perf_counter() - t
        rows.append(["table build (10 per node, 6 km)", f"{build_s:.1f} s",
                     f"{tab.nbytes / 2**20:,.0f} MB arrays; peak RSS +{peak_rss_mb() - rss0:,.0f} MB"])
        full = float((tab.station[:, -1] >= 0).mean())
        rows.append(["rows holding 10 stations", f"{full:.0%}", "the others: every station within 6 km"])
        qx, qy = to_m.transform(points[:, 0], points[:, 1])
        n_table = 500 if quick else 2000
        answered, spent = 0, 0.0
        for i in range(n_table):
            origin = snap_points(graph, np.array([[qx[i % len(qx)], qy[i % len(qy)]]]))
            t = time.perf_counter()
            found = street_table.nearest_in_table(tab, origin, K, here.ids, lambda j: True)
            spent += time.perf_counter() - t
            answered += found is not None
        rows.append(["one answer from the table (k=5, routes walked)", f"{spent / n_table * 1e3:.3f} ms",
                     f"{answered / n_table:.1%} of {n_table:,} points certified"])
        keeper = street_table.keeper_for(eng)
        assert keeper is not None
        t = time.perf_counter()
        nearest_along_streets(eng, float(points[0, 0]), float(points[0, 1]), k=K, flt=StationFilter(),
                              settings=settings)  # asks for the table
        assert keeper.wait_built(0, 1800), keeper.last_error
        rows.append(["the same table built by the server's keeper", f"{time.perf_counter() - t:.1f} s",
                     "registry read, area's graph, background thread"])
        before = dict(keeper.counts)

        def ask(i: int) -> float:
            t0 = time.perf_counter()
            nearest_along_streets(eng, float(points[i % len(points), 0]), float(points[i % len(points), 1]), k=K,
                                  flt=StationFilter(), settings=settings)
            return time.perf_counter() - t0

        t = time.process_time()
        alone = [ask(i) for i in range(n_table)]
        rows.append(["nearest_along_streets, table answering (CPU)",
                     f"{(time.process_time() - t) / n_table * 1e3:.3f} ms",
                     f"area, snap, table, routes in lon/lat; {keeper.counts['table'] - before['table']:,} of "
                     f"{n_table:,} from the table"])
        rows.append(["  its wall time, one at a time", _spread(alone), "p50 / p99 / max ms"])
        # as a server's worker threads run it: 8 searches at once in one process (the interpreter shared)
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(ask, range(n_table)))
        rows.append(["  its wall time, 8 threads at once", _spread(together), "p50 / p99 / max ms"])
        keeper.stop()
        n_exact = 10 if quick else 20
        t = time.perf_counter()
        for i in range(n_exact):
            exact_along_streets(eng, float(points[i, 0]), float(points[i, 1]), k=K, flt=StationFilter(),
                                settings=settings)
        rows.append(["one answer by the exact search (k=5)", f"{(time.perf_counter() - t) / n_exact * 1e3:.0f} ms",
                     f"{n_exact} points"])
        del tab
    finally:
        eng.dispose()
    return rows


def serve(url: str, data_dir: Path, work: Path, *, tables: bool) -> ServerProcess:
    """``uvicorn --workers 2`` of the API (rate limit and access log off), with or without street tables."""
    port = free_port()
    here = Path(__file__).resolve().parent
    env = {**os.environ, "DATABASE_URL": url, "YIZHAN_RATE_LIMIT_PER_MINUTE": "0", "YIZHAN_DATA_DIR": str(data_dir),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")]))}
    app = "yizhan.api:create_app" if tables else "street_nearest:exact_app"
    argv = [sys.executable, "-m", "uvicorn", "--factory", app, "--host", "127.0.0.1", "--port", str(port),
            "--workers", "2", "--no-access-log", "--log-level", "warning"]
    name = "uvicorn-table" if tables else "uvicorn-exact"
    return ServerProcess(argv, env, work / f"{name}.log", port, name=name, workers=2, ready_answers=6,
                         ready_s=120, grace_s=20, own_group=True)


def warm(server: ServerProcess, points: np.ndarray, *, fast_ms: float | None, timeout: float = 600.0) -> float:
    """Ask until each worker has loaded the graph (and, with ``fast_ms``, answers from its table: 40 answers per
    worker in a row faster than ``fast_ms``); the seconds that took."""
    t0 = time.monotonic()
    in_a_row, i = 0, 0
    need = 40 * server.workers if fast_ms is not None else 4 * server.workers
    with httpx.Client(base_url=server.base, timeout=120) as client:
        while in_a_row < need:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"{server.name}: not warm after {timeout:.0f} s")
            lon, lat = points[i % len(points)]
            i += 1
            t = time.perf_counter()
            try:
                r = client.get("/stations/nearest", params={"lon": lon, "lat": lat, "k": K, "by": "network"},
                               headers={"Connection": "close"})  # a new connection: any worker may take it
            except httpx.TransportError:
                in_a_row = 0
                continue
            took = (time.perf_counter() - t) * 1e3
            r.raise_for_status()
            in_a_row = in_a_row + 1 if fast_ms is None or took < fast_ms else 0
            if fast_ms is not None and in_a_row == 0:
                time.sleep(0.2)
    return time.monotonic() - t0


def _ms(out: str, label: str) -> str:
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == label:
            value, unit = float(parts[1].rstrip("usm")), parts[1].lstrip("0123456789.")
            return f"{value * {'us': 1e-3, 'ms': 1.0, 's': 1e3}[unit]:.1f}"
    return "?"


def run_wrk(server: ServerProcess, script: Path, label: str, seconds: int) -> list[list[Any]]:
    """``wrk`` at 16 and 64 connections; one row each."""
    wrk = shutil.which("wrk")
    assert wrk is not None
    rows = []
    for conns in (16, 64):
        cpu = workers_cpu_s(server)
        done = subprocess.run([wrk, "-t2", f"-c{conns}", f"-d{seconds}s", "--timeout", "30s", "--latency", "-s",
                               str(script), server.base], capture_output=True, text=True, timeout=seconds + 120)
        out = done.stdout
        rate = next((ln.split()[1] for ln in out.splitlines() if ln.startswith("Requests/sec:")), "?")
        errors = sum(int(x) for ln in out.splitlines() if "Non-2xx" in ln or "Socket errors" in ln
                     for x in ln.replace(",", " ").split() if x.isdigit())
        total = next((int(ln.split()[0]) for ln in out.splitlines() if "requests in" in ln), 0)
        per = (workers_cpu_s(server) - cpu) / total * 1e3 if total else float("nan")
        row = [f"{label} c={conns}", rate, _ms(out, "50%"), _ms(out, "90%"), _ms(out, "99%"), errors, f"{per:.2f}"]
        say("  " + "  ".join(str(c) for c in row))
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description="yizhan street-distance nearest benchmark (own PostGIS cluster)")
    parser.add_argument("--quick", action="store_true", help="100k nodes, 300 stations, 8 s per level")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) at the end")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    n_nodes, n_stations, seconds = (100_000, 300, 8) if args.quick else (1_000_000, 3_000, 20)
    rng = np.random.default_rng(SEED)
    with throwaway_cluster("yizhan-street-", keep=args.keep) as scratch:
        say(f"starting a throw-away PostgreSQL cluster in {scratch.base}")
        url = scratch.cluster.up()
        data_dir = scratch.work / "data"
        area, points, setup = make_area(url, data_dir, n_nodes, n_stations, rng)
        say("in-process: table build and one answer")
        local = in_process(url, data_dir, area, points, args.quick)
        for row in local:
            say("  " + "  ".join(str(c) for c in row))
        script = scratch.work / "network.lua"
        script.write_text(WRK_LUA % (", ".join(f'"lon={x:.6f}&lat={y:.6f}"' for x, y in points), K))
        http: list[list[Any]] = []
        memory: list[list[Any]] = []
        for tables in (True, False):
            server = serve(url, data_dir, scratch.work, tables=tables)
            try:
                server.wait_ready()
                warm_s = warm(server, points, fast_ms=40.0 if tables else None)
                label = "street table" if tables else "exact search"
                say(f"{label}: warm after {warm_s:.0f} s (graph loaded{', table built' if tables else ''})")
                http += run_wrk(server, script, label, seconds)
                memory.append([label, f"{warm_s:.0f} s", workers_rss_mb(server)])
            finally:
                server.stop()
        print("\n" + "=" * 100)
        print(f"yizhan street-distance nearest benchmark ({'QUICK' if args.quick else 'full'} run), total "
              f"{time.perf_counter() - T0:.0f} s; nproc {len(os.sched_getaffinity(0))}, load average at start "
              f"{loads(LOAD_AT_START)}, at end {loads(os.getloadavg())}")
        print(table(f"Setup ({n_nodes:,}-node lattice, {n_stations:,} stations)", ["step", "time", ""], setup))
        print(table("1. In this process", ["what", "figure", ""], local))
        print(table("2. GET /stations/nearest?by=network&k=5 from wrk (2 threads, uvicorn --workers 2)",
                    ["level", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "server CPU ms/req"], http))
        print(table("2b. Servers", ["server", "warm-up", "workers' peak RSS MB"], memory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
