"""National-scale benchmark of the nearest-station service: 186,100 stations over China's cities.

Run with ``.venv/bin/python benchmarks/national.py [--quick]``. Everything happens in a throw-away PostgreSQL +
PostGIS cluster (fsync off) in a temporary folder, removed at the end (also on Ctrl-C or an error).

1. Generate ``yizhan.data.national.national_registry(186_100)`` and load it with ``load_national`` (COPY + one
   upsert, one transaction); stations/s for each step.
2. The database floor on the same data, one connection in this process: ``nearest_stations_async`` (what the
   route calls without ``open_at``: one statement on the async pool), ``nearest_stations`` (the sync path, two
   queries, used with ``open_at``), a bare ``SELECT ... ORDER BY geog <-> point LIMIT 5`` through psycopg, and
   that bare query from two processes at once (both cores), plus a per-call cost breakdown.
   Also the in-process station index (``stations.memindex``): its load from the database and its searches.
3. GET /stations/nearest?k=5 over loopback from an ``httpx.AsyncClient`` in this process against
   ``python -m uvicorn --factory yizhan.api:create_app --workers W`` (W = 1, 2, 4; uvloop and httptools, which
   uvicorn picks when installed; rate limit off, access log off) at 1, 8 and 64 concurrent clients: a fixed
   number of requests per level, bounded in time; the "raw" client rows are the ones to read at 64 clients.
   Each server answers from its in-process index (the levels start once every worker's index is loaded); the
   "db path" rows are 2 workers with the index off (``YIZHAN_NEAREST_INDEX_TTL_S=0``), as before it existed.
4. One level (8 clients, 2 workers) while the database is stopped and started again: 503s, other errors,
   time from the restart to the first 200 and to the last 503.

Only loopback traffic; nothing is downloaded. The issue's goal: >= 2,000 req/s and p99 <= 25 ms at 64 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from sqlalchemy import text

from yizhan.data.national import CITIES, load_national, national_registry
from yizhan.db.cluster import Cluster, free_port
from yizhan.db.engine import AsyncPool, make_engine, migrate
from yizhan.stations.memindex import StationIndex
from yizhan.stations.nearest import nearest_stations_async
from yizhan.stations.registry import nearest_stations

T0 = time.perf_counter()
LOAD_AT_START = os.getloadavg()
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


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    rule = "-" * len(line(cells[0]))
    return "\n".join([f"\n{title}", rule, line(cells[0]), rule, *(line(r) for r in cells[1:]), rule])


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def ms(values: list[float], q: float) -> str:
    return f"{pct(values, q) * 1e3:.1f}"


# -- CPU accounting (Linux /proc) ------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def tree_cpu(root: int, *, waited: bool = False) -> float:
    """CPU seconds of ``root`` and its live children (plus its exited, waited-for children when ``waited``)."""
    f = _stat(root)
    if not f:
        return 0.0
    total = sum(int(x) for x in f[11:15 if waited else 13]) / _TICK
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            c = _stat(int(d.name))
            if c and int(c[1]) == root:
                total += (int(c[11]) + int(c[12])) / _TICK
    return total


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


# -- the database floor ---------------------------------------------------------------------------------------
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
    from fastapi.encoders import jsonable_encoder

    from yizhan.api import _feature

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
            body = {"type": "FeatureCollection", "features": [_feature(s, "wgs84") for s in got],
                    "query": {"lon": float(lon), "lat": float(la), "coord": "wgs84", "k": K, "amenity": [],
                              "open_at": None, "by": "straight"}}
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
    for lon, la in points[:n]:
        t = time.perf_counter()
        got = index.nearest(float(lon), float(la), k=K)
        lat_index.append(time.perf_counter() - t)
        assert got is not None and len(got) == K
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
        ["StationIndex.load: all active stations, one query + KD-tree (once per reload)",
         f"{t_index * 1e3:.0f}"],
        ["nearest_stations_async (the route's path without the index)", f"{np.mean(lat_async) * 1e3:.2f}"],
        ["pool checkout + pre-ping + nearest_stations + return (sync path)", f"{np.mean(lat_checkout) * 1e3:.2f}"],
        ["  of which nearest_stations on a held conn", f"{np.mean(lat_nearest) * 1e3:.2f}"],
        ["  of which the bare KNN query alone", f"{np.mean(lat_bare) * 1e3:.2f}"],
        ["_feature() x5 (from_wgs84 numpy per station, labels)", f"{np.mean(lat_feature) * 1e3:.2f}"],
        ["jsonable_encoder + json.dumps of the body (the route now uses orjson)", f"{np.mean(lat_json) * 1e3:.2f}"],
    ]
    return rows, breakdown


# -- the HTTP server and load --------------------------------------------------------------------------------
class Server:
    """``python -m uvicorn --factory yizhan.api:create_app --workers W`` in a child process."""

    def __init__(self, url: str, workers: int, data_dir: Path, log: Path, *, index: bool = True) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.index = index
        env = {**os.environ, "DATABASE_URL": url, "YIZHAN_RATE_LIMIT_PER_MINUTE": "0",
               "YIZHAN_DATA_DIR": str(data_dir), "YIZHAN_NEAREST_INDEX_TTL_S": "2" if index else "0"}
        with open(log, "w") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "yizhan.api:create_app", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
                stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_ready(self, workers: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        ok = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/readyz", timeout=10).status_code == 200:
                    ok += 1
                    if ok >= 3 * workers:  # every worker has (very likely) connected and migrated
                        return
                    continue
            time.sleep(0.2)
        raise RuntimeError(f"uvicorn did not become ready in {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def wait_index(self, workers: int, timeout: float = 120.0) -> float:
        """Ask for the nearest stations until 50 answers per worker in a row came from the in-process index
        (each worker loads it in the background after its first search); the seconds that took."""
        t0 = time.monotonic()
        in_a_row = 0
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while in_a_row < 50 * workers:
                if time.monotonic() - t0 > timeout:
                    raise RuntimeError(f"the station index did not answer within {timeout:.0f} s")
                r = client.get("/stations/nearest", params={"lon": 116.4, "lat": 39.9, "k": K},
                               headers={"Connection": "close"})  # a new connection: any worker may take it
                in_a_row = in_a_row + 1 if r.headers.get("x-nearest-source") == "index" else 0
        return time.monotonic() - t0

    def cpu(self) -> float:
        return tree_cpu(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class Level:
    done: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    events: list[tuple[float, float, str]] = field(default_factory=list)  # start, end, status
    first_error: str | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    from_db: int = 0  # answers the database gave (X-Nearest-Source: database), raw client only

    def record(self, start: float, end: float, status: str, problem: str | None) -> None:
        """One answered (or failed) request: its timing, status, and the first problem seen."""
        self.events.append((start, end, status))
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if problem is None:
            self.latencies.append(end - start)
        else:
            self.errors += 1
            self.first_error = self.first_error or problem


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, one connection per worker: far cheaper per request
    than httpx, whose connection pool costs grow with the number of connections (at 64 connections httpx itself
    caps the rate at a few hundred requests/s on this machine)."""

    def __init__(self, base: str, timeout: float) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        return (await self.get_with_head(path))[:2]

    async def get_with_head(self, path: str) -> tuple[int, bytes, bytes]:
        """Status, body and the raw head (status line and headers)."""
        return await asyncio.wait_for(self._get(path), self.timeout)

    async def _get(self, path: str) -> tuple[int, bytes, bytes]:
        if self.conn is None:
            self.conn = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.conn
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = next(int(ln.split(b":", 1)[1]) for ln in lines if ln.lower().startswith(b"content-length:"))
            body = await reader.readexactly(length)
        except BaseException:
            self.close()
            raise
        return int(lines[0].split()[1]), body, head

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None


async def load_level(base: str, points: np.ndarray, concurrency: int, n: int, seconds: float,
                     probe: Any = None, *, timeout: float = 30.0, client_kind: str = "httpx") -> Level:
    """``n`` GET /stations/nearest (at most ``seconds``) from ``concurrency`` workers on keep-alive connections."""
    if client_kind == "raw":
        return await raw_level(base, points, concurrency, n, seconds, probe, timeout=timeout)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    out = Level()
    next_i = 0
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:
        await asyncio.gather(*[client.get("/stations/nearest", params={"lon": p[0], "lat": p[1], "k": K})
                               for p in points[:concurrency]])
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal next_i
            while next_i < n and time.perf_counter() < deadline:
                lon, lat = points[next_i % len(points)]
                next_i += 1
                t = time.perf_counter()
                try:
                    r = await client.get("/stations/nearest", params={"lon": lon, "lat": lat, "k": K})
                    status = str(r.status_code)
                    ok = r.status_code == 200 and len(r.json()["features"]) == K
                    problem = None if ok else f"HTTP {r.status_code}: {r.text[:200]}"
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    status = type(exc).__name__
                    problem = f"{status}: {exc}"
                out.record(t, time.perf_counter(), status, problem)

        cpu0 = probe() if probe else {}
        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        out.seconds = time.perf_counter() - start
        cpu1 = probe() if probe else {}
    out.done = len(out.events)
    out.cpu = {key: (cpu1[key] - cpu0[key]) / out.seconds for key in cpu0}
    return out


async def raw_level(base: str, points: np.ndarray, concurrency: int, n: int, seconds: float,
                    probe: Any = None, *, timeout: float = 30.0) -> Level:
    out = Level()
    next_i = 0
    clients = [RawClient(base, timeout) for _ in range(concurrency)]

    def path(lon: float, lat: float) -> str:
        return f"/stations/nearest?lon={lon}&lat={lat}&k={K}"

    await asyncio.gather(*[c.get(path(*points[i])) for i, c in enumerate(clients)])
    deadline = time.perf_counter() + seconds

    async def worker(client: RawClient) -> None:
        nonlocal next_i
        while next_i < n and time.perf_counter() < deadline:
            lon, lat = points[next_i % len(points)]
            next_i += 1
            t = time.perf_counter()
            try:
                code, body, head = await client.get_with_head(path(lon, lat))
                status = str(code)
                out.from_db += b"x-nearest-source: database" in head.lower()
                ok = code == 200 and len(json.loads(body)["features"]) == K
                problem = None if ok else f"HTTP {code}: {body[:200]!r}"
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, KeyError, StopIteration) as exc:
                status = type(exc).__name__
                problem = f"{status}: {exc}"
            out.record(t, time.perf_counter(), status, problem)

    cpu0 = probe() if probe else {}
    start = time.perf_counter()
    await asyncio.gather(*[worker(c) for c in clients])
    out.seconds = time.perf_counter() - start
    cpu1 = probe() if probe else {}
    for c in clients:
        c.close()
    out.done = len(out.events)
    out.cpu = {key: (cpu1[key] - cpu0[key]) / out.seconds for key in cpu0}
    return out


def bench_http(url: str, points: np.ndarray, scale: Scale, work: Path, postmaster: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for workers, index in [(w, True) for w in scale.workers] + [(w, False) for w in scale.db_path_workers]:
        tag = f"workers={workers}" + ("" if index else " db path")
        say(f"uvicorn --workers {workers}" + ("" if index else ", index off (YIZHAN_NEAREST_INDEX_TTL_S=0)"))
        server = Server(url, workers, work / "data", work / f"uvicorn-{workers}{'' if index else '-db'}.log",
                        index=index)
        try:
            server.wait_ready(workers)
            if index:
                say(f"  every worker's index answers after {server.wait_index(workers):.1f} s")

            def probe(server: Server = server) -> dict[str, float]:
                return {"client": self_cpu(), "server": server.cpu(), "postgres": tree_cpu(postmaster, waited=True)}

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


WRK_LUA = """
local points = {%s}
local i = 0
request = function()
  i = i %% #points + 1
  return wrk.format("GET", "/stations/nearest?k=%d&" .. points[i])
end
"""


def _wrk_ms(text_: str, label: str) -> str:
    """A latency percentile line of ``wrk --latency`` ("99%%   12.34ms") in milliseconds."""
    for line in text_.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == label:
            value, unit = float(parts[1].rstrip("usm")), parts[1].lstrip("0123456789.")
            return f"{value * {'us': 1e-3, 'ms': 1.0, 's': 1e3}[unit]:.1f}"
    return "?"


def bench_wrk(url: str, points: np.ndarray, work: Path, seconds: int) -> list[list[Any]]:
    """GET /stations/nearest from ``wrk`` (a C load generator: far less client CPU than a Python client on the
    same two cores) at 8 and 64 connections, 2 threads, against the index with 1 and 2 uvicorn workers."""
    wrk = shutil.which("wrk")
    if wrk is None:
        say("wrk not installed (Debian: apt-get install wrk): wrk levels skipped")
        return [["wrk not installed", "", "", "", "", ""]]
    script = work / "nearest.lua"
    script.write_text(WRK_LUA % (", ".join(f'"lon={x:.6f}&lat={y:.6f}"' for x, y in points[:5000]), K))
    rows: list[list[Any]] = []
    for workers in (1, 2):
        server = Server(url, workers, work / "data", work / f"uvicorn-wrk-{workers}.log")
        try:
            server.wait_ready(workers)
            server.wait_index(workers)
            for conns in (8, 64):
                done = subprocess.run([wrk, "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(script),
                                       server.base], capture_output=True, text=True, timeout=seconds + 60)
                out = done.stdout
                rate = next((ln.split()[1] for ln in out.splitlines() if ln.startswith("Requests/sec:")), "?")
                errors = sum(int(x) for ln in out.splitlines() if "Non-2xx" in ln or "Socket errors" in ln
                             for x in ln.replace(",", " ").split() if x.isdigit())
                say(f"  wrk workers={workers} c={conns}: {rate} req/s, p50 {_wrk_ms(out, '50%')} ms, "
                    f"p99 {_wrk_ms(out, '99%')} ms, errors {errors}")
                rows.append([f"workers={workers} c={conns} wrk", rate, _wrk_ms(out, "50%"), _wrk_ms(out, "90%"),
                             _wrk_ms(out, "99%"), errors])
        finally:
            server.stop()
    return rows


async def healthz_level(base: str, concurrency: int, n: int, seconds: float) -> Level:
    """The framework floor: GET /healthz (a sync route, no database) from the raw client."""
    out = Level()
    sent = 0
    clients = [RawClient(base, 30.0) for _ in range(concurrency)]
    await asyncio.gather(*[c.get("/healthz") for c in clients])
    deadline = time.perf_counter() + seconds

    async def worker(client: RawClient) -> None:
        nonlocal sent
        while sent < n and time.perf_counter() < deadline:
            sent += 1
            t = time.perf_counter()
            code, _ = await client.get("/healthz")
            if code == 200:
                out.latencies.append(time.perf_counter() - t)
            else:
                out.errors += 1

    start = time.perf_counter()
    await asyncio.gather(*[worker(c) for c in clients])
    out.seconds = time.perf_counter() - start
    for c in clients:
        c.close()
    out.done = len(out.latencies) + out.errors
    return out


def bench_restart(cluster: Cluster, url: str, points: np.ndarray, work: Path, *, conc: int = 8,
                  workers: int = 2) -> list[list[Any]]:
    """One level while the database stops (after 2 s) and starts again (2 s later); 10 s in all."""
    server = Server(url, workers, work / "data", work / "uvicorn-restart.log")
    marks: dict[str, float] = {}
    try:
        server.wait_ready(workers)
        server.wait_index(workers)

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


def main() -> int:
    parser = argparse.ArgumentParser(description="yizhan national benchmark (own throw-away PostGIS cluster)")
    parser.add_argument("--quick", action="store_true", help="fewer requests and workers: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) at the end")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    base = Path(tempfile.mkdtemp(prefix="yizhan-national-"))
    os.chmod(base, 0o755)  # as root, the postgres user must traverse it
    work = base / "work"
    work.mkdir()
    cluster = Cluster(base, durable=False)
    load_rows: list[list[Any]] = []
    try:
        say(f"starting a throw-away PostgreSQL cluster in {base}")
        url = cluster.up()
        postmaster = int((cluster.data / "postmaster.pid").read_text().split("\n")[0])
        eng = make_engine(url)
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
        eng.dispose()
        n = len(records)
        load_rows = [["national_registry (generate, numpy)", f"{t_gen:.2f} s", f"{n / t_gen:,.0f} stations/s"],
                     ["load_national, all new (COPY + upsert, 1 txn)", f"{t_load:.2f} s",
                      f"{n / t_load:,.0f} stations/s"],
                     ["load_national again, all updates", f"{t_reload:.2f} s", f"{n / t_reload:,.0f} stations/s"],
                     ["VACUUM ANALYZE stations", f"{t_vac:.2f} s", ""]]
        del records

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
        from importlib.metadata import PackageNotFoundError, version

        def ver(pkg: str) -> str:
            try:
                return version(pkg)
            except PackageNotFoundError:
                return "not installed"

        print(f"yizhan national benchmark ({'QUICK' if args.quick else 'full'} run), "
              f"total {time.perf_counter() - T0:.0f} s; nproc {len(os.sched_getaffinity(0))}, load average at start "
              f"{'/'.join(f'{x:.2f}' for x in LOAD_AT_START)}, at end "
              f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}; uvicorn {ver('uvicorn')}, uvloop {ver('uvloop')}, "
              f"httptools {ver('httptools')}")
        print(table(f"1. Registry ({n:,} stations)", ["step", "time", "rate"], load_rows))
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
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        try:
            cluster.down()
        except Exception as exc:
            print(f"clean-up: stopping the cluster failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
