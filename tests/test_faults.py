"""Faults under load: the database restarts while riders keep asking for the nearest station.

Eight client threads send GET /stations/nearest over real HTTP (tests/live_server.py) while the main thread
stops the cluster after ~1.5 s and starts it again ~1.5 s later. Every answer must be 200 or 503 (never a 500,
never a hang), the outage must show as 503s, 200s must come back within a few seconds of the restart, and the
registry must be intact afterwards.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psycopg
from live_server import live_server
from sqlalchemy import text

from yizhan.api import create_app
from yizhan.data.national import load_national
from yizhan.db.cluster import Cluster
from yizhan.db.engine import make_engine, migrate
from yizhan.settings import Settings

N_STATIONS = 20_000
CLIENTS = 8
DOWN_AFTER_S = 1.5
OUTAGE_S = 1.5
AFTER_UP_S = 5.0  # keep the load on this long after the database is back
CLIENT_TIMEOUT_S = 8.0
MAX_LATENCY_S = 5.0
MAX_RECOVERY_S = 3.0  # first 200 after the restart, and only 200s from then on


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
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        mine: list[Answer] = []
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
                mine.append(ans)
        with lock:
            answers.extend(mine)

    try:
        with live_server(app) as base:
            assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200
            threads = [threading.Thread(target=client, args=(w,), name=f"rider-{w}") for w in range(CLIENTS)]
            t0 = time.monotonic()
            for th in threads:
                th.start()
            time.sleep(DOWN_AFTER_S)
            down_at = time.monotonic()
            assert cluster.down()
            down_done = time.monotonic()
            time.sleep(max(0.0, OUTAGE_S - (down_done - down_at)))
            up_at = time.monotonic()
            cluster.up()
            up_done = time.monotonic()
            assert cluster.port == port
            time.sleep(AFTER_UP_S)
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
    recovery = (first_ok.end - up_done) if first_ok else float("inf")
    tail = [a for a in answers if a.start >= up_done + MAX_RECOVERY_S]
    slowest = max(answers, key=lambda a: a.end - a.start)
    print(f"\n{len(answers)} requests in {time.monotonic() - t0:.1f} s: {dict(statuses)}; "
          f"stop took {down_done - down_at:.2f} s, start {up_done - up_at:.2f} s; "
          f"during the outage {Counter(a.status for a in outage)}; first 200 {recovery:.2f} s after the restart; "
          f"slowest answer {slowest.end - slowest.start:.2f} s ({slowest.status})")

    bad = [a for a in answers if a.status not in (200, 503)]
    assert not bad, f"{len(bad)} answers neither 200 nor 503, e.g. {bad[:3]}"
    assert slowest.end - slowest.start < MAX_LATENCY_S, slowest
    assert statuses[200] > 0 and statuses[503] > 0, statuses
    assert outage and all(a.status == 503 for a in outage), Counter(a.status for a in outage)
    assert all(a.status == 200 for a in answers if a.end < down_at), "errors before the outage"
    assert recovery < MAX_RECOVERY_S, (f"no 200 within {MAX_RECOVERY_S} s of the restart: "
                                       f"{Counter(a.detail for a in after).most_common(3)}")
    assert tail and all(a.status == 200 for a in tail), Counter(a.status for a in tail)
    assert _count(url) == before
