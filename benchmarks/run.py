"""yizhan benchmarks: registry import rate, nearest-station latency/throughput, coverage time.

Run with ``.venv/bin/python benchmarks/run.py [--quick]``. Everything happens in a throw-away PostgreSQL +
PostGIS cluster (fsync off) in a temporary folder that is removed at the end, also on Ctrl-C or an error.
See ``benchmarks/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg
import pyproj
from shapely.geometry import box
from sqlalchemy import Engine, text

from yizhan.areas import ensure_area, get_area
from yizhan.coverage.analysis import run_coverage
from yizhan.data.demand import aggregate_cells, check_demand, demand_frame_from_file, import_demand
from yizhan.db.cluster import Cluster, free_port
from yizhan.db.engine import make_engine, migrate
from yizhan.stations.importer import frame_from_file, records_from_frame
from yizhan.stations.registry import nearest_stations, upsert_stations
from yizhan.stations.service import import_stations

HERE = Path(__file__).resolve().parent
BEIJING = (115.4, 39.4, 117.5, 41.1)  # west, south, east, north: roughly Beijing municipality
GRID_CENTRE = (116.40, 39.90)  # centre of the coverage grid (Tian'anmen), UTM 50N
UTM50N = 32650
SEED = 20261125

# (lon, lat, sigma in degrees, share): dense urban clusters of the station registry
CLUSTERS = [
    (116.397, 39.909, 0.060, 0.22),  # core (Dongcheng/Xicheng)
    (116.460, 39.920, 0.035, 0.10),  # CBD / Chaoyang
    (116.320, 39.990, 0.030, 0.10),  # Haidian / Wudaokou
    (116.290, 39.860, 0.030, 0.06),  # Fengtai
    (116.656, 39.909, 0.030, 0.06),  # Tongzhou
    (116.231, 40.220, 0.030, 0.05),  # Changping
    (116.338, 39.728, 0.030, 0.05),  # Daxing
    (116.654, 40.130, 0.030, 0.04),  # Shunyi
    (116.143, 39.748, 0.025, 0.03),  # Fangshan
    (116.102, 39.940, 0.020, 0.02),  # Mentougou
    (116.632, 40.316, 0.020, 0.02),  # Huairou
    (117.121, 40.141, 0.020, 0.02),  # Pinggu
    (116.843, 40.376, 0.020, 0.02),  # Miyun
    (115.975, 40.456, 0.020, 0.01),  # Yanqing
]
UNIFORM_SHARE = 1.0 - sum(c[3] for c in CLUSTERS)
DISTRICTS = ["东城", "西城", "朝阳", "海淀", "丰台", "石景山", "通州", "顺义", "昌平", "大兴", "房山", "门头沟",
             "怀柔", "平谷", "密云", "延庆"]
STREETS = ["中关村", "学院路", "望京", "三里屯", "建外", "金融街", "回龙观", "天通苑", "亦庄", "西红门", "良乡",
           "永顺", "梨园", "马坡", "石园", "龙泉", "南口", "旧宫", "大红门", "五道口"]
ROADS = ["长安街", "成府路", "建国路", "京顺路", "学清路", "北四环西路", "朝阳路", "通惠河北路", "双清路", "莲花池东路"]
BRANDS = ["户外劳动者服务站", "暖心驿站", "骑手之家", "工会爱心驿站", "快递小哥驿站"]
KINDS = (["小型", "大型", "流动", "small", "large"], [0.6, 0.2, 0.1, 0.07, 0.03])
HOSTS = (["党群服务中心", "加油站", "银行", "便利店", "工会", "其他", ""], [0.3, 0.15, 0.15, 0.15, 0.1, 0.05, 0.1])
AMENITY_WORDS = ["饮水", "充电", "微波炉", "卫生间", "空调", "暖气", "休息座椅", "医药箱", "爱心冰箱", "无线网络",
                 "雨具", "维修工具", "热水", "wifi", "toilet"]
HOURS = (["24/7", "Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00", "Mo-Su 07:00-22:00", "Mo-Sa 09:00-21:00",
          "Mo-Fr 07:30-19:30; Sa 09:00-12:00", "Mo-Su 06:00-24:00", ""], [0.2, 0.3, 0.2, 0.1, 0.1, 0.05, 0.05])
STATUS = (["运营", "active", "关闭", ""], [0.8, 0.1, 0.03, 0.07])
HEADER = ["编号", "名称", "类型", "经度", "纬度", "承办单位", "地址", "街道", "设施", "开放时间", "座位数", "星级",
          "状态"]


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

T0 = time.perf_counter()
LOAD_AT_START = os.getloadavg()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


@contextmanager
def timed(label: str) -> Iterator[dict[str, float]]:
    say(f"{label} ...")
    out: dict[str, float] = {}
    start = time.perf_counter()
    yield out
    out["s"] = time.perf_counter() - start
    say(f"{label}: {out['s']:.2f} s")


def table(title: str, headers: list[str], rows: list[list[Any]], align: str = "") -> str:
    """A plain-text table; ``align`` has one letter per column (l/r), default: first left, the rest right."""
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align, strict=True))

    rule = "-" * len(line(cells[0]))
    return "\n".join([f"\n{title}", rule, line(cells[0]), rule, *(line(r) for r in cells[1:]), rule])


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# -- CPU accounting (Linux /proc): who is busy during the HTTP load ------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process, all its threads."""
    f = _stat(pid)
    return (int(f[11]) + int(f[12])) / _TICK if f else 0.0


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds of the postmaster, its live children and its exited (waited-for) children."""
    f = _stat(postmaster)
    if not f:
        return 0.0
    total = sum(int(x) for x in f[11:15]) / _TICK
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            c = _stat(int(d.name))
            if c and int(c[1]) == postmaster:
                total += (int(c[11]) + int(c[12])) / _TICK
    return total


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- data generators ---------------------------------------------------------------------------------------------
def registry_frame(lon: np.ndarray, lat: np.ndarray, rng: np.random.Generator, prefix: str) -> pd.DataFrame:
    """A union-style registry (Chinese headers, Chinese and English vocabulary) for the given points."""
    n = len(lon)
    district = rng.integers(0, len(DISTRICTS), n)
    street = rng.integers(0, len(STREETS), n)
    d_names = np.array(DISTRICTS, dtype=object)[district]
    s_names = np.array(STREETS, dtype=object)[street]
    brands = np.array(BRANDS, dtype=object)[rng.integers(0, len(BRANDS), n)]
    roads = np.array(ROADS, dtype=object)[rng.integers(0, len(ROADS), n)]
    numbers = rng.integers(1, 400, n)
    k_amen = rng.integers(0, 7, n)
    amen_pool = np.array(AMENITY_WORDS, dtype=object)
    seps = ["；", ";", "、"]
    amenities = [seps[i % 3].join(rng.choice(amen_pool, k, replace=False)) if k else ""
                 for i, k in enumerate(k_amen)]
    stars = rng.integers(0, 6, n)
    return pd.DataFrame({
        "编号": [f"{prefix}{i:06d}" for i in range(1, n + 1)],
        "名称": [f"{d}区{s}{b}{i}号" for d, s, b, i in zip(d_names, s_names, brands, range(1, n + 1), strict=True)],
        "类型": rng.choice(KINDS[0], n, p=KINDS[1]),
        "经度": np.char.mod("%.6f", lon),
        "纬度": np.char.mod("%.6f", lat),
        "承办单位": rng.choice(HOSTS[0], n, p=HOSTS[1]),
        "地址": [f"北京市{d}区{r}{k}号" for d, r, k in zip(d_names, roads, numbers, strict=True)],
        "街道": [f"{s}街道" for s in s_names],
        "设施": amenities,
        "开放时间": rng.choice(HOURS[0], n, p=HOURS[1]),
        "座位数": rng.integers(2, 41, n).astype(str),
        "星级": np.where(stars > 0, stars.astype(str), ""),
        "状态": rng.choice(STATUS[0], n, p=STATUS[1]),
    }, columns=HEADER)


def beijing_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points over the Beijing box: dense Gaussian clusters plus a uniform background, clipped to the box."""
    w, s, e, nn = BEIJING
    which = rng.choice(len(CLUSTERS) + 1, n, p=[c[3] for c in CLUSTERS] + [UNIFORM_SHARE])
    lon = rng.uniform(w, e, n)
    lat = rng.uniform(s, nn, n)
    for i, (cx, cy, sigma, _) in enumerate(CLUSTERS):
        m = which == i
        lon[m] = rng.normal(cx, sigma * 1.3, m.sum())  # a degree of lon is ~0.77 of a degree of lat here
        lat[m] = rng.normal(cy, sigma, m.sum())
    eps = 1e-4
    return np.clip(lon, w + eps, e - eps), np.clip(lat, s + eps, nn - eps)


@dataclass
class Grid:
    csv_demand: Path
    csv_stations: Path
    boundary: Any
    cells: int


def make_grid(scale: Scale, rng: np.random.Generator, folder: Path) -> Grid:
    """One demand point at the centre of every 200 m cell of a square grid (UTM 50N) plus clustered stations."""
    to_m = pyproj.Transformer.from_crs(4326, UTM50N, always_xy=True)
    to_deg = pyproj.Transformer.from_crs(UTM50N, 4326, always_xy=True)
    size, side = 200.0, scale.grid_side
    cx, cy = to_m.transform(*GRID_CENTRE)
    x0 = np.floor((cx - side * size / 2) / size) * size
    y0 = np.floor((cy - side * size / 2) / size) * size
    ix, iy = np.meshgrid(np.arange(side), np.arange(side))
    x = x0 + (ix.ravel() + 0.5) * size
    y = y0 + (iy.ravel() + 0.5) * size
    lon, lat = to_deg.transform(x, y)
    r = np.hypot(x - cx, y - cy)
    weight = np.round(rng.gamma(2.0, 1.0, len(x)) * (0.2 + 4.0 * np.exp(-((r / 12_000.0) ** 2))), 3)
    stamp = pd.Timestamp("2026-11-01T00:00:00") + pd.to_timedelta(rng.integers(0, 30 * 86400, len(x)), unit="s")
    demand = pd.DataFrame({"lon": np.char.mod("%.7f", lon), "lat": np.char.mod("%.7f", lat), "weight": weight,
                           "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S+08:00")})
    csv_demand = folder / "demand.csv"
    demand.to_csv(csv_demand, index=False)
    # stations: 60 % around the centre (sigma 8 km), 40 % uniform over the square
    n = scale.cov_stations
    half = side * size / 2
    central = rng.random(n) < 0.6
    sx = np.where(central, rng.normal(cx, 8_000.0, n), rng.uniform(cx - half, cx + half, n))
    sy = np.where(central, rng.normal(cy, 8_000.0, n), rng.uniform(cy - half, cy + half, n))
    sx, sy = np.clip(sx, x0 + 1, x0 + side * size - 1), np.clip(sy, y0 + 1, y0 + side * size - 1)
    slon, slat = to_deg.transform(sx, sy)
    csv_stations = folder / "grid_stations.csv"
    registry_frame(np.asarray(slon), np.asarray(slat), rng, "G").to_csv(csv_stations, index=False)
    # boundary: the lon/lat box around the square's edge (densified) plus a margin
    t = np.linspace(0, side * size, 64)
    ex = np.concatenate([x0 + t, x0 + t, np.full(64, x0), np.full(64, x0 + side * size)])
    ey = np.concatenate([np.full(64, y0), np.full(64, y0 + side * size), y0 + t, y0 + t])
    blon, blat = to_deg.transform(ex, ey)
    boundary = box(min(blon) - 0.01, min(blat) - 0.01, max(blon) + 0.01, max(blat) + 0.01)
    return Grid(csv_demand, csv_stations, boundary, side * side)


# -- the HTTP server ---------------------------------------------------------------------------------------------
class Server:
    """``benchmarks/_serve.py`` in a child process."""

    def __init__(self, url: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "YIZHAN_BENCH_STAFF_KEY": secrets.token_hex(16)}
        env.pop("DATABASE_URL", None)
        with open(log, "w") as fh:
            self.proc = subprocess.Popen([sys.executable, str(HERE / "_serve.py"), "--url", url,
                                          "--port", str(self.port)], stdout=fh, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the API server exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            with suppress(httpx.HTTPError):
                r = httpx.get(f"{self.base}/readyz", timeout=10)
                if r.status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the API server did not become ready in {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def peak_rss_mb(self) -> float:
        """The server's peak resident memory (VmHWM), MB; NaN when it has exited."""
        with suppress(OSError, ValueError, StopIteration):
            status = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
            return int(next(ln for ln in status if ln.startswith("VmHWM:")).split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class LoadResult:
    concurrency: int
    done: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu: dict[str, float]
    first_error: str | None = None


async def load_level(base: str, points: np.ndarray, concurrency: int, n: int, seconds: float, k: int,
                     cpu_probe: Callable[[], dict[str, float]]) -> LoadResult:
    """``n`` GET /stations/nearest requests (at most ``seconds``) from ``concurrency`` workers on keep-alive."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    next_i = 0
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        # warm-up: open the connections (and the server's DB pool) outside the measurement
        await asyncio.gather(*[client.get("/stations/nearest", params={"lon": p[0], "lat": p[1], "k": k})
                               for p in points[:concurrency]])
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors, first_error, next_i
            while next_i < n and time.perf_counter() < deadline:
                lon, lat = points[next_i % len(points)]
                next_i += 1
                t = time.perf_counter()
                try:
                    r = await client.get("/stations/nearest", params={"lon": lon, "lat": lat, "k": k})
                    ok = r.status_code == 200 and len(r.json()["features"]) == k
                    problem = None if ok else f"HTTP {r.status_code}: {r.text[:200]}"
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                if problem is None:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors += 1
                    first_error = first_error or problem

        cpu0 = cpu_probe()
        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        elapsed = time.perf_counter() - start
        cpu1 = cpu_probe()
    cpu = {key: (cpu1[key] - cpu0[key]) / elapsed for key in cpu0}
    return LoadResult(concurrency, len(latencies) + errors, errors, elapsed, latencies, cpu, first_error)


def _spin(n: int) -> float:
    start = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - start


def parallel_scaling(n: int = 10_000_000) -> float:
    """Throughput of two CPU-bound processes at once relative to one (2.0 = two full cores)."""
    one = _spin(n)
    with ProcessPoolExecutor(2) as pool:
        two = list(pool.map(_spin, [n, n]))
    return 2 * one / max(two)


# -- the benchmark ---------------------------------------------------------------------------------------------
def machine_info() -> list[list[Any]]:
    model = "?"
    with suppress(OSError):
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    mem = "?"
    with suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    load = "/".join(f"{x:.2f}" for x in LOAD_AT_START)
    return [["nproc (usable CPUs)", len(os.sched_getaffinity(0))], ["CPU model", model], ["memory", mem],
            ["load average at start (1/5/15 min)", load],
            ["python", platform.python_version()], ["platform", platform.platform()]]


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
        raw_rows.append([label, f"{len(lat_db):,}", f"{rate:,.0f}", f"{pct(lat_db, 50) * 1e3:.1f}",
                         f"{pct(lat_db, 99) * 1e3:.1f}", 0, "", "", "", ""])

    say("starting the API server (uvicorn, 1 worker)")
    server = Server(url, folder / "server.log")
    try:
        server.wait_ready()
        say(f"API up on {server.base}")

        def probe() -> dict[str, float]:
            return {"client": self_cpu(), "server": proc_cpu(server.proc.pid), "postgres": postgres_cpu(postmaster)}

        rows = []
        for conc in scale.concurrency:
            say(f"HTTP: {scale.requests:,} requests at concurrency {conc} (at most {scale.level_seconds:.0f} s)")
            sessions0 = db_sessions(engine)
            r = asyncio.run(load_level(server.base, points, conc, scale.requests, scale.level_seconds, k, probe))
            sessions = db_sessions(engine) - sessions0
            rate = r.done / r.seconds
            say(f"HTTP c={conc}: {rate:,.0f} req/s, median {pct(r.latencies, 50) * 1e3:.1f} ms, errors {r.errors}"
                + (f" (first: {r.first_error})" if r.first_error else ""))
            rows.append([f"c={conc}", f"{r.done:,}", f"{rate:,.0f}", f"{pct(r.latencies, 50) * 1e3:.1f}",
                         f"{pct(r.latencies, 99) * 1e3:.1f}", r.errors,
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
    grid = make_grid(scale, rng, folder)
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
    results.append(["  aggregate_cells alone (PostGIS)", f"{t_agg:.2f} s", ""])
    results.append(["  rest (COPY points, delete, commit)", f"{max(td['s'] - t_check - t_agg, 0):.2f} s", ""])
    results.append([f"run_coverage ({run['cells']:,} cells x {run['stations']:,} active stations)",
                    f"{tc['s']:.2f} s", f"covered share {run['covered_share'] * 100:.2f} %"])
    bounds = [(start, "resolve area"), *marks, (end, "")]
    labels = {"loading": "load stations + cells, reproject", "nearest": "nearest station (KD-tree)",
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
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill too

    base = Path(tempfile.mkdtemp(prefix="yizhan-bench-"))
    os.chmod(base, 0o755)  # as root, the postgres user must traverse it
    work = base / "work"
    work.mkdir()
    cluster = Cluster(base, durable=False)
    engines: list[Engine] = []
    results_import: list[list[Any]] = []
    results_cov: list[list[Any]] = []
    server_rss: list[float] = []
    try:
        scaling = parallel_scaling()
        say(f"CPU scaling, 2 busy processes vs 1: {scaling:.2f}x")
        say(f"starting a throw-away PostgreSQL cluster in {base} ({'quick' if args.quick else 'full'} run)")
        cluster.up()
        postmaster = int((cluster.data / "postmaster.pid").read_text().split("\n")[0])
        with psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres",
                             autocommit=True) as admin:
            versions = admin.execute("SELECT version()").fetchone()[0].split(" on ")[0]
            admin.execute("CREATE DATABASE bench_registry")
            admin.execute("CREATE DATABASE bench_coverage")
        urls = {name: cluster.url(name) for name in ("bench_registry", "bench_coverage")}
        for name, url in urls.items():
            eng = make_engine(url)
            engines.append(eng)
            migrate(eng)
            say(f"migrated {name}")
        with engines[0].connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()

        bench_import(engines[0], scale, rng, work, results_import)
        results_near = bench_nearest(engines[0], urls["bench_registry"], scale, rng, work, postmaster, server_rss)
        bench_coverage(engines[1], scale, rng, work, results_cov)

        rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        machine = [*machine_info(), ["2 busy processes vs 1 (CPU scaling)", f"{scaling:.2f}x"],
                   ["PostgreSQL", f"{versions} (fsync off)"], ["PostGIS", postgis],
                   ["peak RSS, this process", f"{rss_self:,.0f} MB"],
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
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # let the clean-up finish
            signal.signal(sig, signal.SIG_IGN)
        for step, action in [*((f"dispose engine {i}", eng.dispose) for i, eng in enumerate(engines)),
                             ("stop the cluster", cluster.down)]:
            try:
                action()
            except Exception as exc:
                print(f"clean-up: {step} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
