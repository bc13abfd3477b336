"""The HTTP API while the database is down or failing: clean 503 answers, recovery without a restart."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from api_data import KEY, STAFF
from live_server import live_server

from yizhan.api import create_app
from yizhan.db.cluster import Cluster
from yizhan.settings import Settings


@pytest.mark.fault
def test_database_down_is_503_then_recovers(restartable_cluster: Cluster, tmp_path: Path) -> None:
    port = restartable_cluster.port
    app = create_app(Settings(database_url=restartable_cluster.url(), staff_key=KEY, data_dir=tmp_path / "data"))
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            r = client.get("/readyz")
            assert r.status_code == 200, r.text
            assert client.get("/stations").json()["total"] == 0  # the schema exists

            assert restartable_cluster.down()
            for path, kw in [("/readyz", {}), ("/stations", {}), ("/stations/nearest", {"params": {"lon": 116.3,
                                                                                                   "lat": 40}}),
                             ("/gaps.csv", {"headers": STAFF}), ("/map", {"headers": STAFF})]:
                r = client.get(path, **kw)
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert r.headers["content-type"].startswith("application/json")
                assert "database" in r.json()["detail"], r.text
            assert client.get("/healthz").status_code == 200  # does not touch the database

            restartable_cluster.up()
            assert restartable_cluster.port == port
            deadline = time.monotonic() + 10
            while True:  # the first request after the restart must already work; allow a short grace anyway
                r = client.get("/readyz")
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert r.status_code == 200, r.text
            assert client.get("/stations").status_code == 200
    finally:
        app.state.db.dispose()


@pytest.mark.fault
def test_database_down_before_first_use_is_503(tmp_path: Path) -> None:
    """An app whose database never answered: 503 (not 500), and it connects later without a restart."""
    base = Path(tempfile.mkdtemp(prefix="yizhan-api-late-"))
    os.chmod(base, 0o755)
    cluster = Cluster(base, durable=False)
    port = cluster.port  # chosen now, the server is started only later
    app = create_app(Settings(database_url=cluster.url(), staff_key=KEY, data_dir=tmp_path / "data"))
    try:
        with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            r = client.get("/readyz")
            assert r.status_code == 503, r.text
            assert "database" in r.json()["detail"]
            cluster.up()
            assert cluster.port == port
            r = client.get("/readyz")
            assert r.status_code == 200, r.text
    finally:
        app.state.db.dispose()
        cluster.down()
        shutil.rmtree(base, ignore_errors=True)


def test_database_errors_are_one_unavailable_answer() -> None:
    """The database-down family maps to DatabaseUnavailable (503): too slow, too busy, or down."""
    import psycopg
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from yizhan.errors import (
        DATABASE_BUSY,
        DATABASE_DOWN,
        DATABASE_SLOW,
        DatabaseUnavailable,
        as_unavailable,
        http_status,
    )

    assert str(as_unavailable(PoolTimeout())) == DATABASE_BUSY
    assert str(as_unavailable(psycopg.errors.QueryCanceled("canceling statement due to statement timeout"))) \
        == DATABASE_SLOW
    slow = OperationalError("SELECT 1", {}, psycopg.errors.QueryCanceled("canceling statement due to statement "
                                                                        "timeout"))
    assert str(as_unavailable(slow)) == DATABASE_SLOW
    down = OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))
    assert str(as_unavailable(down)) == DATABASE_DOWN == str(DatabaseUnavailable())
    assert http_status(as_unavailable(down)) == 503
