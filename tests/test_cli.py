"""The ``yizhan`` command as a user runs it, against a real database: in-process through its entry point, and as
real processes for ``--help`` and ``serve``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg
import pytest
from cli_runner import run_cli, run_cli_process, start_server

from yizhan.db.cluster import free_port

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
SAMPLE = SAMPLES / "stations_sample.csv"
BBOX = "116.3084,39.9905,116.3320,40.0123"


def yz(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """``yizhan ARGS`` run in this process (tests/cli_runner.py); the entry point as a process is tested below."""
    return run_cli(*args, env=env, check=check)


def _psql(url: str, sql: str) -> str:
    """Run ``sql`` with the psql client on ``url``; its unaligned output."""
    proc = subprocess.run(["psql", url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_help_lists_commands(cli_env):
    out = run_cli_process("--help", env=cli_env).stdout  # the real entry point, as a process
    for name in ("db", "area", "stations", "demand", "coverage", "map", "report", "serve", "demo"):
        assert name in out


def test_staff_workflow(cli_env, tmp_path):
    yz("area", "create", "wudaokou", "--bbox", BBOX, env=cli_env)
    out = yz("stations", "import", str(SAMPLE), env=cli_env).stdout
    assert "new" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,kind,lon,lat\nX1,ok,small,116.32,40.0\nX2,bad,huge,116.32,40.0\n")
    proc = yz("stations", "import", str(bad), env=cli_env, check=False)
    assert proc.returncode == 2
    assert "row 3, kind='huge'" in proc.stderr and "nothing was imported" in proc.stderr
    xlsx = tmp_path / "export.xlsx"
    yz("stations", "export", str(xlsx), env=cli_env)
    assert len(pd.read_excel(xlsx)) == len(pd.read_csv(SAMPLE))
    demand = tmp_path / "demand.csv"
    pd.DataFrame({"lon": [116.31, 116.315, 116.33, 116.325], "lat": [39.995, 40.0, 40.01, 40.011],
                  "weight": [3, 1, 2, 5]}).to_csv(demand, index=False)
    yz("demand", "import", str(demand), env=cli_env)
    summary = json.loads(yz("coverage", "--radius", "1000", "--json", env=cli_env).stdout)
    for key in ("radius_m", "stations", "demand_total", "demand_covered", "covered_share", "gaps", "run_id"):
        assert key in summary
    assert summary["radius_m"] == 1000 and summary["demand_total"] == 11
    assert 0 <= summary["covered_share"] <= 1
    html = tmp_path / "m.html"
    yz("map", "--out", str(html), env=cli_env)
    assert html.exists() and (tmp_path / "yizhan-assets").is_dir()
    yz("report", "--out-dir", str(tmp_path / "rep"), env=cli_env)
    assert (tmp_path / "rep" / f"gaps_run{summary['run_id']}.csv").exists()


@pytest.mark.slow
def test_demo_end_to_end_on_real_osm(cli_env, osm_path, tmp_path):
    proc = yz("demo", "--no-serve", "--osm", str(osm_path), env=cli_env)
    out = proc.stdout
    assert "covered share, straight line" in out and "covered share, along streets" in out
    assert "staff key" not in out and "served" not in out  # --no-serve: no server, so no key and no URLs
    names = {f.name for f in (tmp_path / "out").glob("*")}
    # run 1 is straight-line, run 2 along the walking network: its map and report are written
    assert {"map_run2.html", "gaps_run2.csv", "gaps_run2.geojson", "yizhan-assets",
            "map_recommendation1.html"} <= names
    assert "3 new sites (recommendation run 1)" in out and "covered share with them" in out
    gaps = pd.read_csv(tmp_path / "out" / "gaps_run2.csv")
    assert len(gaps) >= 1
    summary = json.loads(yz("coverage", "--mode", "network", "--profile", "bike", "--json", env=cli_env).stdout)
    assert summary["mode"] == "network" and summary["profile"] == "bike"
    assert summary["covered_share"] <= summary["covered_share_straight"]
    units = json.loads(yz("units", "show", "--json", env=cli_env).stdout)
    assert {"东北片区", "西北片区", "东南片区", "西南片区"} <= {u["name"] for u in units}
    assert sum(u["demand"] for u in units) == pytest.approx(summary["demand_total"])
    # a second demo run re-imports (updates) and makes new runs; the street graphs come from the cache
    again = yz("demo", "--no-serve", "--osm", str(osm_path), env=cli_env).stdout
    assert "updated" in again and (tmp_path / "out" / "map_run5.html").exists()


@pytest.mark.slow
def test_embedded_database_lifecycle():
    base = Path(tempfile.mkdtemp(prefix="yizhan-cli-"))
    os.chmod(base, 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIZHAN_") and k != "DATABASE_URL"}
    env.update(YIZHAN_DATA_DIR=str(base), COLUMNS="200")
    try:
        yz("db", "up", env=env)
        status = json.loads(yz("db", "status", "--json", env=env).stdout)
        assert status["running"] is True and status["mode"] == "embedded"
        url = yz("db", "url", env=env).stdout.strip()
        assert url.startswith("postgresql://") and str(status["port"]) in url
        assert _psql(url, "SELECT 1") == "1"
        assert yz("db", "url", "--sqlalchemy", env=env).stdout.strip() == url.replace("postgresql://",
                                                                                        "postgresql+psycopg://")
        yz("area", "create", "t", "--bbox", BBOX, env=env)
        assert "t" in yz("area", "list", env=env).stdout
        assert "stopped" in yz("db", "down", env=env).stdout
        assert json.loads(yz("db", "status", "--json", env=env).stdout)["running"] is False
        # the next command starts it again, and the data is still there
        assert "EPSG:32650" in yz("area", "list", env=env).stdout
    finally:
        yz("db", "down", env=env, check=False)
        subprocess.run(["rm", "-rf", str(base)], check=False)


@pytest.mark.slow
def test_serve_answers_http(cli_env, osm_path):
    yz("area", "create", "wudaokou", "--osm", str(osm_path), env=cli_env)
    yz("stations", "import", str(SAMPLE), env=cli_env)
    proc, base = start_server(env=cli_env)
    try:
        r = httpx.get(f"{base}/stations/nearest", params={"lon": 116.32, "lat": 40.0, "k": 2}, timeout=30)
        assert r.status_code == 200
        feats = r.json()["features"]
        assert len(feats) == 2 and feats[0]["properties"]["distance_m"] <= feats[1]["properties"]["distance_m"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_db_url_for_psql_and_sqlalchemy(cli_env, db_url):
    """`psql "$(yizhan db url)"` works; --sqlalchemy gives the driver form; a password is never printed."""
    from sqlalchemy.engine import make_url

    given = make_url(db_url)
    env = dict(cli_env, DATABASE_URL=given.set(password="s3cret-pw").render_as_string(hide_password=False))
    url = yz("db", "url", env=env).stdout.strip()
    assert url == f"postgresql://{given.username}@{given.host}:{given.port}/{given.database}"
    assert _psql(url, "SELECT 1") == "1"
    assert _psql(url, "SELECT current_database()") == given.database
    alchemy = yz("db", "url", "--sqlalchemy", env=env).stdout.strip()
    assert alchemy == url.replace("postgresql://", "postgresql+psycopg://", 1)
    assert "s3cret" not in url + alchemy
    from sqlalchemy import create_engine, text

    engine = create_engine(alchemy)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_sample_files_import_cleanly(cli_env):
    """The README's "your own data" steps with the sample files: township boundaries, the station sheet with
    Chinese headers, delivery orders; then a coverage run counts per township."""
    townships = SAMPLES / "townships_sample.geojson"
    yz("area", "create", "wudaokou", "--boundary", str(townships), env=cli_env)
    assert "4 units stored" in yz("units", "import", str(townships), "--level", "township", env=cli_env).stdout
    out = yz("stations", "import", str(SAMPLES / "stations_registry_zh.csv"), env=cli_env)
    assert "9 rows: 9 new" in out.stdout and "ignored" not in (out.stdout + out.stderr)
    assert "8 rows: 8 new" in yz("stations", "import", str(SAMPLE), env=cli_env).stdout
    orders = SAMPLES / "orders_sample.csv"
    out = yz("demand", "import", str(orders), env=cli_env).stdout
    assert f"{len(pd.read_csv(orders))} points ->" in out and "outside" not in out
    registry = pd.read_csv(SAMPLES / "stations_registry_zh.csv")
    active = (registry["状态"] == "运营").sum() + (pd.read_csv(SAMPLE)["status"] == "active").sum()
    summary = json.loads(yz("coverage", "--json", env=cli_env).stdout)
    assert summary["stations"] == active and summary["demand_total"] == pd.read_csv(orders)["订单量"].sum()
    units = json.loads(yz("units", "show", "--json", env=cli_env).stdout)
    # cells are counted by their centre: boundary cells whose centre lies outside every township are unassigned
    named = {u["name"] for u in units if "unassigned" not in u["name"]}
    assert named == {"燕园街道", "清华园街道", "学院路街道", "东升镇"}
    assert all(u["stations"] == 0 for u in units if u["name"] not in named)
    assert sum(u["demand"] for u in units) == pytest.approx(summary["demand_total"])
    assert set(registry["街道"]) == named  # each station's 街道 is a township of the file
    # the export follows the language of the last import (English), or --lang
    out_dir = Path(cli_env["YIZHAN_OUT_DIR"])
    english, chinese = out_dir / "registry_en.csv", out_dir / "registry_zh.xlsx"
    yz("stations", "export", str(english), env=cli_env)
    assert english.read_text(encoding="utf-8-sig").startswith("id,name,kind,lon,lat")
    yz("stations", "export", str(chinese), "--lang", "zh", env=cli_env)
    sheet = pd.read_excel(chinese, dtype=str)
    assert list(sheet.columns[:5]) == ["编号", "名称", "类型", "经度", "纬度"] and len(sheet) == 17
    assert set(sheet["类型"]) <= {"大型驿站", "小型驿站", "流动驿站"}
    bad = yz("stations", "export", str(english), "--lang", "fr", env=cli_env, check=False)
    assert bad.returncode == 2 and "lang 'fr'" in bad.stderr and "Traceback" not in bad.stderr


# -- failures: one line each, the traceback only with --debug --------------------------------------------------
def _one_line(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The one ``error:`` line that ends a failed command's stderr (exit ``code``, no traceback; progress lines
    may come before it), which names ``words``."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert proc.returncode == code and "Traceback" not in proc.stderr and errors == lines[-1:], (proc.returncode,
                                                                                                 proc.stderr)
    assert all(w in errors[0] for w in words), errors[0]
    return errors[0]


def test_debug_shows_the_traceback_of_a_failure(cli_env, tmp_path):
    missing = tmp_path / "nowhere" / "stations.csv"
    yz("area", "create", "wudaokou", "--bbox", BBOX, env=cli_env)
    _one_line(yz("stations", "import", str(missing), env=cli_env, check=False), 2, missing.name)
    for proc in (yz("--debug", "stations", "import", str(missing), env=cli_env, check=False),
                 yz("stations", "import", str(missing), env=dict(cli_env, YIZHAN_DEBUG="1"), check=False)):
        assert proc.returncode == 2 and "Traceback (most recent call last)" in proc.stderr
        assert proc.stderr.rstrip().splitlines()[-1].startswith("error: ")
    assert "--debug" in run_cli_process("--help", env=cli_env).stdout


def test_database_down_is_one_line(cli_env):
    env = dict(cli_env, DATABASE_URL=f"postgresql://yizhan@127.0.0.1:{free_port()}/nothing")
    _one_line(yz("area", "list", env=env, check=False), 1, "database", "run the command again")


@pytest.fixture
def blocked(engine, cli_env):  # type: ignore[no-untyped-def]
    """The stations table locked by another session for the test: ``yizhan stations export`` waits on it."""
    yz("area", "create", "wudaokou", "--bbox", BBOX, env=cli_env)
    yz("stations", "import", str(SAMPLE), env=cli_env)
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("LOCK TABLE stations IN ACCESS EXCLUSIVE MODE")
        yield conn
        conn.exec_driver_sql("ROLLBACK")


def _waiting_backend(engine, proc: subprocess.Popen[str]) -> int:  # type: ignore[no-untyped-def]
    """The process id of the database session that waits for the lock (the command's), once it waits."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
                                       "datname = current_database()").scalar()
        if pid is not None:
            return int(pid)
        time.sleep(0.2)
    raise AssertionError("the command never waited for the lock")


def _export(cli_env: dict[str, str], tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "yizhan.cli", "stations", "export", str(tmp_path / "s.csv")],
                            env={**cli_env, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_interrupt_is_one_line(engine, blocked, cli_env, tmp_path):
    proc = _export(cli_env, tmp_path)
    _waiting_backend(engine, proc)
    proc.send_signal(signal.SIGINT)
    _one_line(_finished(proc), 1, "interrupted", "run the command again")
    assert not list(tmp_path.glob("*s.*csv"))  # no export, no temporary file


def test_cancelled_statement_is_one_line(engine, blocked, cli_env, tmp_path):
    proc = _export(cli_env, tmp_path)
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT pg_cancel_backend({_waiting_backend(engine, proc)})").scalar()
    _one_line(_finished(proc), 1, "cancelled", "run it again")


def test_lock_timeout_is_one_line(engine, blocked, cli_env, tmp_path, db_url):
    with engine.connect() as conn:
        database = conn.exec_driver_sql("SELECT current_database()").scalar()
        conn.exec_driver_sql(f"ALTER DATABASE {database} SET lock_timeout = '300ms'")
        conn.commit()
    _one_line(_finished(_export(cli_env, tmp_path)), 1, "another job", "lock timeout")


def test_database_failures_are_described() -> None:
    """The classes a deadlock, a timeout and a refused value arrive as (psycopg's own, wrapped by SQLAlchemy)."""
    from sqlalchemy.exc import DataError, OperationalError

    from yizhan.cli.failures import describe

    def wrapped(cls: type[Exception], text: str) -> BaseException:
        return (OperationalError if issubclass(cls, psycopg.OperationalError) else DataError)("SQL", {}, cls(text))

    deadlock = describe(wrapped(psycopg.errors.DeadlockDetected, "deadlock detected"))
    assert deadlock is not None and "deadlock" in deadlock[0] and deadlock[1] == 1
    slow = describe(wrapped(psycopg.errors.QueryCanceled, "canceling statement due to statement timeout"))
    assert slow is not None and "statement timeout" in slow[0] and slow[1] == 1
    value = describe(wrapped(psycopg.errors.StringDataRightTruncation, "value too long for type character "
                                                                       "varying(300)"))
    assert value is not None and "varying(300)" in value[0] and value[1] == 2
    assert describe(RuntimeError("a bug")) is None  # keeps its traceback


def test_ctrl_c_stops_the_server_cleanly(cli_env):
    """Ctrl-C is how ``yizhan serve`` is stopped: after uvicorn's own clean shutdown, no error line, exit 0."""
    proc, _ = start_server(env=cli_env)
    proc.send_signal(signal.SIGINT)
    done = _finished(proc)
    assert done.returncode == 0 and "error:" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_coverage_in_parts_on_a_local_dask_cluster(cli_env, tmp_path):
    """``yizhan coverage --partitions 3`` starts its own local cluster of worker processes and stores the same run
    as the one-process command, by hour and with capacity too."""
    env = {**cli_env, "YIZHAN_PARTITION_WORKERS": "1"}
    yz("area", "create", "wudaokou", "--bbox", BBOX, env=env)
    yz("stations", "import", str(SAMPLE), env=env)
    rng = np.random.default_rng(5)
    demand = tmp_path / "orders.csv"
    pd.DataFrame({"lon": rng.uniform(116.309, 116.331, 400), "lat": rng.uniform(39.991, 40.012, 400),
                  "weight": rng.integers(1, 4, 400)}).to_csv(demand, index=False)
    yz("demand", "import", str(demand), env=env)
    whole = json.loads(yz("coverage", "--radius", "500", "--json", env=env).stdout)
    proc = run_cli_process("coverage", "--radius", "500", "--partitions", "3", "--json", env=env)
    parts = json.loads(proc.stdout)
    for key in ("cells", "gaps", "measured", "demand_total"):
        assert parts[key] == whole[key]
    assert parts["covered_share"] == pytest.approx(whole["covered_share"], abs=1e-12)
    assert parts["run_id"] != whole["run_id"]
    weekly = json.loads(yz("coverage", "--radius", "500", "--by-hour", "--capacity", "--json", env=env).stdout)
    proc = run_cli_process("coverage", "--radius", "500", "--partitions", "2", "--by-hour", "--capacity", "--json",
                           env=env)
    weekly_parts = json.loads(proc.stdout)
    assert weekly_parts["covered_share"] == pytest.approx(weekly["covered_share"], abs=1e-12)
    for key in ("by_hour", "capacity"):
        assert key in weekly and _close(weekly_parts[key], weekly[key]), key


def _close(a: Any, b: Any) -> bool:
    """The same JSON document, numbers to 1e-9 relative (sums over pairs taken in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return bool(a == b)


def test_network_parts_from_a_province_extract(cli_env, extracts, tmp_path):
    """``yizhan network parts`` cuts the area's streets into tiles in one pass over the extract; a wrong --tiles
    is refused in one line."""
    yz("area", "create", "wudaokou", "--bbox", BBOX, env=cli_env)
    out = yz("network", "parts", "--osm", str(extracts[1]), "--tiles", "2x1", "--halo", "1500", "--profile", "walk",
             env=cli_env).stdout
    manifest = json.loads((Path(cli_env["YIZHAN_DATA_DIR"]) / "graphs").glob("area*-parts/walk/manifest.json")
                          .__next__().read_text())
    assert "walk:" in out and len(manifest["parts"]) == 2 and manifest["halo_m"] == 1500
    bad = yz("network", "parts", "--osm", str(extracts[1]), "--tiles", "two", env=cli_env, check=False)
    assert bad.returncode == 2 and "--tiles" in bad.stdout + bad.stderr and "Traceback" not in bad.stderr
