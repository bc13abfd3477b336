"""HTTP load for the benchmarks: the API server in a child process, and levels of GET /stations/nearest from
``httpx`` or from a minimal raw HTTP/1.1 client.

Not a script: ``run.py`` and ``national.py`` import it. A level sends a fixed number of requests (or stops at a
time bound) from ``concurrency`` workers, each on one keep-alive connection, after a warm-up of one request per
connection; it records every request's start and end (``time.perf_counter`` seconds), status and the first
problem, and the CPU seconds a probe reports per wall second over the level (1.0 = one core). Query points are
(lon, lat) WGS 84 degrees.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from yizhan.db.cluster import free_port

from common import say

HERE = Path(__file__).resolve().parent
Probe = Callable[[], dict[str, float]]  # CPU seconds so far, per party ("client", "server", "postgres")


# -- the server -------------------------------------------------------------------------------------------------
class ServerProcess:
    """An API server with ``workers`` worker processes on ``port`` (loopback) in a child process, its output in
    ``log``; ready after ``ready_answers`` 200s from ``/readyz`` within ``ready_s`` seconds, stopped with SIGINT
    and, after ``grace_s`` seconds, SIGKILL (to its whole process group with ``own_group``)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, port: int, *, name: str, workers: int,
                 ready_answers: int, ready_s: float, grace_s: float, own_group: bool) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self.name = name
        self.workers = workers
        self.ready_answers = ready_answers
        self.ready_s = ready_s
        self.grace_s = grace_s
        self.own_group = own_group
        with open(log, "w") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=own_group)

    def wait_ready(self) -> None:
        """Wait until ``/readyz`` answered 200 ``ready_answers`` times (several workers: a few times each)."""
        timeout = self.ready_s
        deadline = time.monotonic() + timeout
        ok = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/readyz", timeout=10).status_code == 200:
                    ok += 1
                    if ok >= self.ready_answers:
                        return
                    continue
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def wait_index(self, k: int = 5, timeout: float = 120.0) -> float:
        """Ask for the nearest stations until 50 answers per worker in a row came from the in-process index
        (each worker loads it in the background after its first search); the seconds that took. A dropped
        connection starts the count again: on a busy machine uvicorn's supervisor may replace a worker that missed
        its 5 s health check while loading the index."""
        t0 = time.monotonic()
        in_a_row = 0
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while in_a_row < 50 * self.workers:
                if time.monotonic() - t0 > timeout:
                    raise RuntimeError(f"the station index did not answer within {timeout:.0f} s")
                try:
                    r = client.get("/stations/nearest", params={"lon": 116.4, "lat": 39.9, "k": k},
                                   headers={"Connection": "close"})  # a new connection: any worker may take it
                except httpx.TransportError as exc:
                    say(f"  {self.name}: {type(exc).__name__} while waiting for the index ({exc}); again")
                    in_a_row = 0
                    continue
                in_a_row = in_a_row + 1 if r.headers.get("x-nearest-source") == "index" else 0
        return time.monotonic() - t0

    def peak_rss_mb(self) -> float:
        """The server process's peak resident memory (VmHWM), MB; NaN when it has exited."""
        with suppress(OSError, ValueError, StopIteration):
            status = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
            return int(next(ln for ln in status if ln.startswith("VmHWM:")).split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        """SIGINT (uvicorn's graceful shutdown), then SIGKILL (to the whole group with ``own_group``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(self.grace_s)
            except subprocess.TimeoutExpired:
                if self.own_group:
                    with suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                else:
                    self.proc.kill()
                self.proc.wait()


def serve_script(url: str, log: Path) -> ServerProcess:
    """``benchmarks/_serve.py``: ``create_app(Settings(database_url=url, staff_key=...))`` in one uvicorn process
    (one worker, rate limit and access log off); the staff key goes through the environment."""
    port = free_port()
    env = {**os.environ, "YIZHAN_BENCH_STAFF_KEY": secrets.token_hex(16)}
    env.pop("DATABASE_URL", None)
    return ServerProcess([sys.executable, str(HERE / "_serve.py"), "--url", url, "--port", str(port)], env, log,
                         port, name="the API server", workers=1, ready_answers=1, ready_s=60, grace_s=15,
                         own_group=False)


def uvicorn_workers(url: str, workers: int, data_dir: Path, log: Path, *, index: bool = True) -> ServerProcess:
    """``python -m uvicorn --factory yizhan.api:create_app --workers W`` (rate limit and access log off), with the
    in-process station index (reloaded every 2 s) or without it (``YIZHAN_NEAREST_INDEX_TTL_S=0``)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "YIZHAN_RATE_LIMIT_PER_MINUTE": "0",
           "YIZHAN_DATA_DIR": str(data_dir), "YIZHAN_NEAREST_INDEX_TTL_S": "2" if index else "0"}
    argv = [sys.executable, "-m", "uvicorn", "--factory", "yizhan.api:create_app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    # every worker has (very likely) connected and migrated after 3 answers per worker
    return ServerProcess(argv, env, log, port, name="uvicorn", workers=workers, ready_answers=3 * workers,
                         ready_s=90, grace_s=20, own_group=True)


# -- one level of load ----------------------------------------------------------------------------------------
@dataclass
class Level:
    """What one level of load gave: counts, wall seconds, latencies of the good answers, CPU per wall second."""

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


Ask = Callable[[float, float], Awaitable[tuple[str, str | None]]]  # (lon, lat) -> status, problem or None


async def _drive(out: Level, points: np.ndarray, n: int, seconds: float, asks: list[Ask],
                 catch: tuple[type[BaseException], ...], probe: Probe | None) -> None:
    """One worker per ``asks`` entry, together sending ``n`` requests (at most ``seconds``), cycling through
    ``points``; exceptions of the ``catch`` types count as failed requests. Fills in ``out``: every request, the
    wall seconds, the count and the CPU per wall second between two probes."""
    next_i = 0
    deadline = time.perf_counter() + seconds

    async def worker(ask: Ask) -> None:
        nonlocal next_i
        while next_i < n and time.perf_counter() < deadline:
            lon, lat = points[next_i % len(points)]
            next_i += 1
            t = time.perf_counter()
            try:
                status, problem = await ask(lon, lat)
            except catch as exc:
                status = type(exc).__name__
                problem = f"{status}: {exc}"
            out.record(t, time.perf_counter(), status, problem)

    cpu0 = probe() if probe else {}
    start = time.perf_counter()
    await asyncio.gather(*[worker(ask) for ask in asks])
    out.seconds = time.perf_counter() - start
    cpu1 = probe() if probe else {}
    out.done = len(out.events)
    out.cpu = {key: (cpu1[key] - cpu0[key]) / out.seconds for key in cpu0}


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


def answers_fully(body: dict[str, Any], k: int) -> bool:
    """A nearest answer as it should be: ``k`` stations, or fewer when the rest lie beyond the answer's
    ``max_distance_m`` (every one listed within it; none listed: a ``reason`` says so)."""
    features = body["features"]
    if len(features) == k:
        return True
    limit = body["query"]["max_distance_m"]
    return all(f["properties"]["distance_m"] <= limit for f in features) and (bool(features) or "reason" in body)


async def load_level(base: str, points: np.ndarray, concurrency: int, n: int, seconds: float,
                     probe: Probe | None = None, *, k: int = 5, timeout: float = 30.0,
                     client_kind: str = "httpx") -> Level:
    """``n`` GET /stations/nearest?k=``k`` (at most ``seconds``) from ``concurrency`` workers on keep-alive
    connections, cycling through ``points``; an answer counts as good when it is a 200 that ``answers_fully``."""
    if client_kind == "raw":
        return await raw_level(base, points, concurrency, n, seconds, probe, k=k, timeout=timeout)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    out = Level()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:

        async def ask(lon: float, lat: float) -> tuple[str, str | None]:
            r = await client.get("/stations/nearest", params={"lon": lon, "lat": lat, "k": k})
            ok = r.status_code == 200 and answers_fully(r.json(), k)
            return str(r.status_code), None if ok else f"HTTP {r.status_code}: {r.text[:200]}"

        # warm-up: open the connections (and the server's DB pool) outside the measurement
        await asyncio.gather(*[client.get("/stations/nearest", params={"lon": p[0], "lat": p[1], "k": k})
                               for p in points[:concurrency]])
        await _drive(out, points, n, seconds, [ask] * concurrency, (httpx.HTTPError, ValueError, KeyError), probe)
    return out


async def raw_level(base: str, points: np.ndarray, concurrency: int, n: int, seconds: float,
                    probe: Probe | None = None, *, k: int = 5, timeout: float = 30.0) -> Level:
    """``load_level`` from ``RawClient``s; also counts the answers that came from the database."""
    out = Level()
    clients = [RawClient(base, timeout) for _ in range(concurrency)]

    def path(lon: float, lat: float) -> str:
        return f"/stations/nearest?lon={lon}&lat={lat}&k={k}"

    def asker(client: RawClient) -> Ask:
        async def ask(lon: float, lat: float) -> tuple[str, str | None]:
            code, body, head = await client.get_with_head(path(lon, lat))
            out.from_db += b"x-nearest-source: database" in head.lower()
            ok = code == 200 and answers_fully(json.loads(body), k)
            return str(code), None if ok else f"HTTP {code}: {body[:200]!r}"

        return ask

    try:
        await asyncio.gather(*[c.get(path(*points[i])) for i, c in enumerate(clients)])
        await _drive(out, points, n, seconds, [asker(c) for c in clients],
                     (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, KeyError, StopIteration), probe)
    finally:
        for c in clients:
            c.close()
    return out


async def healthz_level(base: str, concurrency: int, n: int, seconds: float) -> Level:
    """The framework floor: ``n`` GET /healthz (a sync route, no database) from ``concurrency`` raw clients."""
    out = Level()
    clients = [RawClient(base, 30.0) for _ in range(concurrency)]

    def asker(client: RawClient) -> Ask:
        async def ask(_lon: float, _lat: float) -> tuple[str, str | None]:
            code, _ = await client.get("/healthz")
            return str(code), None if code == 200 else f"HTTP {code}"

        return ask

    try:
        await asyncio.gather(*[c.get("/healthz") for c in clients])
        await _drive(out, np.zeros((1, 2)), n, seconds, [asker(c) for c in clients], (), None)
    finally:
        for c in clients:
            c.close()
    return out
