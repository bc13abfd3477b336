"""Faults under load: the database restarts while riders keep asking for the nearest station.

Eight client threads send GET /stations/nearest over real HTTP (tests/live_server.py) while the main thread
stops the cluster once the riders have had answers, and starts it again once the outage has shown. The phases
follow what the clients saw, not the clock: every answer must be 200 or 503 (never a 500, never a transport
error: a hung request runs into the client's timeout and fails the test), every request during the outage must
get a 503, 200s must come back after the restart and stay, and the registry must be intact afterwards. How fast
(first 200 after the restart, slowest answer) is measured by benchmarks/national.py, section 4.

Imports under faults, on the session's cluster: an import process killed with SIGKILL while it writes leaves no
lock behind (the next import of the area runs at once and the killed one stored nothing), and two command-line
imports of overlapping files at once end each with success or one line saying another import of the area is
running, never a deadlock or a traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from live_server import live_server
from sqlalchemy import Engine, text

from yizhan.api import create_app
from yizhan.areas import AreaInfo
from yizhan.data.national import load_national
from yizhan.db.cluster import Cluster
from yizhan.db.engine import libpq_url, make_engine, migrate
from yizhan.settings import Settings
from yizhan.stations.service import IMPORT_LOCK_SPACE, import_stations

pytestmark = pytest.mark.fault

N_STATIONS = 20_000
CLIENTS = 8
BEFORE = 5 * CLIENTS  # answers before the database stops
DURING = 3 * CLIENTS  # 503s seen while it is down, before it starts again
AFTER = 40 * CLIENTS  # answers after the restart
CLIENT_TIMEOUT_S = 30.0  # turns a hung request into a transport error, which fails the test
PHASE_TIMEOUT_S = 120.0  # turns a stalled phase into a failure instead of a hung run


@dataclass
class Answer:
    start: float  # monotonic seconds
    end: float
    status: int | None  # None: a transport error (timeout, connection reset)
    detail: str


def _count(url: str) -> int:
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM stations")).scalar_one())
    finally:
        eng.dispose()


def test_restart_under_connections_keeps_the_port(restartable_cluster: Cluster) -> None:
    cluster = restartable_cluster
    port = cluster.port
    conns = [psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") for _ in range(4)]
    try:
        for c in conns:
            c.execute("SELECT 1")
        assert cluster.down()
        cluster.up()
    finally:
        for c in conns:
            c.close()
    assert cluster.port == port


def _wait_for(cond: threading.Condition, ready: Callable[[], bool], what: str) -> None:
    with cond:
        if not cond.wait_for(ready, timeout=PHASE_TIMEOUT_S):
            raise AssertionError(f"stalled: {what}")


def test_database_restart_during_load(restartable_cluster: Cluster, tmp_path: Path) -> None:
    cluster = restartable_cluster
    port = cluster.port
    url = cluster.url()
    eng = make_engine(url)
    try:
        migrate(eng)
        load_national(eng, N_STATIONS)
    finally:
        eng.dispose()
    before = _count(url)
    assert before == N_STATIONS

    rng = np.random.default_rng(5)
    points = np.column_stack([rng.uniform(102, 122, 2000), rng.uniform(22, 40, 2000)]).round(5)
    app = create_app(Settings(database_url=url, data_dir=tmp_path / "data", rate_limit_per_minute=0))
    answers: list[Answer] = []
    seen = threading.Condition()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT_S) as http:
            i = worker
            while not stop.is_set():
                lon, lat = points[i % len(points)]
                i += CLIENTS
                t = time.monotonic()
                try:
                    r = http.get("/stations/nearest", params={"lon": lon, "lat": lat, "k": 5})
                    ans = Answer(t, time.monotonic(), r.status_code, r.text[:200])
                except httpx.HTTPError as exc:
                    ans = Answer(t, time.monotonic(), None, f"{type(exc).__name__}: {exc}")
                with seen:
                    answers.append(ans)
                    seen.notify_all()

    def count(since: float, status: int | None = None) -> int:
        return sum(a.start >= since and (status is None or a.status == status) for a in answers)

    try:
        with live_server(app) as base:
            assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200
            threads = [threading.Thread(target=client, args=(w,), name=f"rider-{w}") for w in range(CLIENTS)]
            t0 = time.monotonic()
            for th in threads:
                th.start()
            try:
                _wait_for(seen, lambda: len(answers) >= BEFORE, f"{BEFORE} answers before the outage")
                down_at = time.monotonic()
                assert cluster.down()
                down_done = time.monotonic()
                _wait_for(seen, lambda: count(down_done, 503) >= DURING, f"{DURING} 503s during the outage")
                up_at = time.monotonic()
                cluster.up()
                up_done = time.monotonic()
                assert cluster.port == port
                _wait_for(seen, lambda: count(up_done) >= AFTER, f"{AFTER} answers after the restart")
            finally:
                stop.set()
                for th in threads:
                    th.join(CLIENT_TIMEOUT_S + 5)
            assert not any(th.is_alive() for th in threads), "a client thread hung"
    finally:
        app.state.db.dispose()

    answers.sort(key=lambda a: a.start)
    statuses = Counter(a.status for a in answers)
    outage = [a for a in answers if a.start >= down_done and a.end <= up_at]
    after = [a for a in answers if a.start >= up_done]
    first_ok = next((a for a in after if a.status == 200), None)
    recovered = [a for a in after if first_ok is not None and a.start >= first_ok.end]
    slowest = max(answers, key=lambda a: a.end - a.start)
    print(f"\n{len(answers)} requests in {time.monotonic() - t0:.1f} s: {dict(statuses)}; "
          f"stop took {down_done - down_at:.2f} s, start {up_done - up_at:.2f} s; "
          f"during the outage {Counter(a.status for a in outage)}; "
          f"first 200 {(first_ok.end - up_done) if first_ok else float('nan'):.2f} s after the restart; "
          f"slowest answer {slowest.end - slowest.start:.2f} s ({slowest.status})")

    bad = [a for a in answers if a.status not in (200, 503)]
    assert not bad, f"{len(bad)} answers neither 200 nor 503, e.g. {bad[:3]}"
    assert all(a.status == 200 for a in answers if a.end < down_at), "errors before the outage"
    assert outage and all(a.status == 503 for a in outage), Counter(a.status for a in outage)
    assert first_ok is not None, f"no 200 after the restart: {Counter(a.detail for a in after).most_common(3)}"
    assert recovered and all(a.status == 200 for a in recovered), Counter(a.status for a in recovered)
    assert _count(url) == before


# -- imports under faults ----------------------------------------------------------------------------------------
WUDAOKOU_INNER = (116.3090, 39.9910, 116.3310, 40.0115)  # inside the wudaokou fixture's bounds (W, S, E, N)


def _registry_csv(path: Path, n: int, prefix: str, seed: int) -> Path:
    """A registry CSV of ``n`` stations ``{prefix}000000``... at random points inside the Wudaokou area."""
    west, south, east, north = WUDAOKOU_INNER
    rng = np.random.default_rng(seed)
    lons = rng.uniform(west, east, n).round(6)
    lats = rng.uniform(south, north, n).round(6)
    with path.open("w") as f:
        f.write("id,name,kind,lon,lat,amenities,opening_hours\n")
        for i, (lon, lat) in enumerate(zip(lons, lats, strict=True)):
            f.write(f"{prefix}{i:06d},驿站 {prefix}{i},small,{lon},{lat},charging;toilet,24/7\n")
    return path


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "yizhan.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _writing(conn: psycopg.Connection, area_id: int) -> bool:
    """Whether a session holds the area's import lock and has started copying rows into the database (its last
    statement a COPY of checked rows)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.granted "
        "AND a.query LIKE 'COPY _stations_in%%')", (IMPORT_LOCK_SPACE, area_id)).fetchone()
    return bool(row and row[0])


def test_kill_9_during_a_cli_import_leaves_no_lock(cli_env: dict[str, str], db_url: str, engine: Engine,
                                                    wudaokou: AreaInfo, tmp_path: Path) -> None:
    big = _registry_csv(tmp_path / "big.csv", 200_000, "K", seed=11)
    proc = _cli("stations", "import", str(big), "--area", wudaokou.name, env=cli_env)
    try:
        with psycopg.connect(libpq_url(db_url), autocommit=True) as watch:
            deadline = time.monotonic() + PHASE_TIMEOUT_S
            while not _writing(watch, wudaokou.id):
                assert proc.poll() is None, f"the import ended before it was killed: {proc.communicate()}"
                assert time.monotonic() < deadline, "the import never started writing"
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    small = _registry_csv(tmp_path / "small.csv", 50, "S", seed=12)
    t = time.monotonic()
    summary = import_stations(engine, small, area=wudaokou.name)  # Conflict if the dead import's lock were held
    print(f"\nthe next import ran {time.monotonic() - t:.2f} s after the kill")
    assert (summary.inserted, summary.updated) == (50, 0)
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT external_id FROM stations")).scalars().all()
    assert sorted(ids) == [f"S{i:06d}" for i in range(50)], "the killed import stored rows"


def test_two_cli_imports_of_one_area_at_once(cli_env: dict[str, str], engine: Engine, wudaokou: AreaInfo,
                                             tmp_path: Path) -> None:
    n = 20_000
    forward = _registry_csv(tmp_path / "forward.csv", n, "F", seed=21)
    lines = forward.read_text().splitlines()
    backward = tmp_path / "backward.csv"
    backward.write_text("\n".join([lines[0], *lines[:0:-1]]) + "\n")  # the same ids in the opposite order
    procs = [_cli("stations", "import", str(p), "--area", wudaokou.name, env=cli_env) for p in (forward, backward)]
    outcomes = [(p.wait(PHASE_TIMEOUT_S), *p.communicate()) for p in procs]
    for code, out, err in outcomes:
        assert "Traceback" not in err and "deadlock" not in err.lower(), err
        if code == 0:
            assert f"{n} rows" in out
        else:
            assert code == 1, (code, out, err)  # another job: the environment (cli.failures), not the input
            assert "another import of this area is running" in err, err
            assert len(err.strip().splitlines()) <= 2, err  # the progress line and the one error line
    assert any(code == 0 for code, _, _ in outcomes)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM stations")).scalar_one() == n
