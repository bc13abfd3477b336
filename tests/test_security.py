"""Staff keys stored hashed, rider rate limits and CORS, over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from cli_runner import run_cli, start_server
from live_server import live_server
from sqlalchemy import text

from yizhan import ratelimit
from yizhan.api import create_app
from yizhan.errors import TooManyRequests
from yizhan.ratelimit import RateLimiter
from yizhan.settings import Settings


def _cli(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIZHAN_")}
    env["DATABASE_URL"] = db_url
    return run_cli(*args, env=env, check=False)


def test_keys_are_stored_hashed_and_can_be_revoked(db_url, engine, wudaokou, tmp_path):
    made = _cli("keys", "create", "jiashan-staff", db_url=db_url)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("yz_") and len(key) > 40
    assert _cli("keys", "create", "jiashan-staff", db_url=db_url).returncode == 2  # name taken
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_keys")).scalars().all()
        dump = conn.execute(text("SELECT string_agg(t::text, ' ') FROM api_keys t")).scalar_one()
    assert len(stored) == 1 and key not in dump and stored[0] != key
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path))  # no key in the settings at all
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            assert client.get("/gaps.csv").status_code == 401
            assert client.get("/gaps.csv", headers={"X-API-Key": key + "x"}).status_code == 401
            ok = client.get("/gaps.csv", headers={"X-API-Key": key})
            assert ok.status_code == 404 and "no coverage run" in ok.json()["detail"]  # authorised: no run yet
            assert "jiashan-staff" in _cli("keys", "list", db_url=db_url).stdout
            assert _cli("keys", "revoke", "jiashan-staff", db_url=db_url).returncode == 0
            assert client.get("/gaps.csv", headers={"X-API-Key": key}).status_code == 401
            assert _cli("keys", "revoke", "jiashan-staff", db_url=db_url).returncode == 2
    finally:
        app.state.db.dispose()


def test_rider_rate_limit_and_cors(db_url, wudaokou, tmp_path):
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path, staff_key="k", rate_limit_per_minute=5,
                              cors_origins=["https://riders.example"]))
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            params = {"lon": 116.32, "lat": 40.0}
            codes = [client.get("/stations/nearest", params=params).status_code for _ in range(6)]
            assert codes == [200] * 5 + [429]
            limited = client.get("/stations", params=params)
            assert limited.status_code == 429
            assert int(limited.headers["Retry-After"]) >= 1 and "at most 5 a minute" in limited.json()["detail"]
            # staff and health routes are not rate limited
            assert client.get("/healthz").status_code == 200
            assert client.get("/runs", headers={"X-API-Key": "k"}).status_code == 200
            pre = client.options("/stations/nearest", headers={"Origin": "https://riders.example",
                                                              "Access-Control-Request-Method": "GET"})
            assert pre.headers["access-control-allow-origin"] == "https://riders.example"
            other = client.options("/stations/nearest", headers={"Origin": "https://evil.example",
                                                                "Access-Control-Request-Method": "GET"})
            assert "access-control-allow-origin" not in other.headers
    finally:
        app.state.db.dispose()


def test_no_cors_unless_configured(db_url, tmp_path):
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path))
    try:
        with live_server(app) as base:
            r = httpx.get(f"{base}/healthz", headers={"Origin": "https://riders.example"})
            assert "access-control-allow-origin" not in r.headers
    finally:
        app.state.db.dispose()


def test_token_bucket_refills(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    limiter = RateLimiter(60)  # one a second, bursts of 60
    for _ in range(60):
        limiter.check("a")
    with pytest.raises(TooManyRequests) as info:
        limiter.check("a")
    assert info.value.retry_after == 1
    limiter.check("b")  # another client has its own bucket
    now[0] += 1.0
    limiter.check("a")
    RateLimiter(0).check("a")  # 0 disables the limit


def test_revoke_works_when_the_revoked_name_is_taken(db_url, engine, wudaokou, tmp_path):
    """Revoking renames the key's row ``NAME (revoked ID)`` so the name is free again; a row already called so
    (stored before such names were refused), or a name at the 100-character limit, must not stop the revoke."""
    key = _cli("keys", "create", "jiashan-staff", db_url=db_url).stdout.strip()
    long_name = "长" * 100
    long_key = _cli("keys", "create", long_name, db_url=db_url).stdout.strip()
    with engine.begin() as conn:
        key_id = conn.execute(text("SELECT id FROM api_keys WHERE name = 'jiashan-staff'")).scalar_one()
        conn.execute(text("INSERT INTO api_keys (name, key_hash) VALUES (:n, :h)"),
                     {"n": f"jiashan-staff (revoked {key_id})", "h": "0" * 64})
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path))
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            for k in (key, long_key):
                assert client.get("/gaps.csv", headers={"X-API-Key": k}).status_code == 404  # authorised
            for name in ("jiashan-staff", long_name):
                done = _cli("keys", "revoke", name, db_url=db_url)
                assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
            for k in (key, long_key):
                assert client.get("/gaps.csv", headers={"X-API-Key": k}).status_code == 401
    finally:
        app.state.db.dispose()
    with engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM api_keys WHERE revoked_at IS NOT NULL")).scalars().all()
    assert len(names) == 2 and all(len(n) <= 100 and "(revoked " in n for n in names)
    refused = _cli("keys", "create", f"jiashan-staff (revoked {key_id + 7})", db_url=db_url)
    assert refused.returncode == 2 and "revoked" in refused.stderr


# --- forwarded headers and the limit across worker processes -------------------------------------------------------
SHARED_TAKER = """
import sys
from pathlib import Path
from yizhan.errors import TooManyRequests
from yizhan.ratelimit import shared_rate_limiter

limiter = shared_rate_limiter(20, Path(sys.argv[1]))
allowed = 0
for _ in range(30):
    try:
        limiter.check("10.1.2.3")
        allowed += 1
    except TooManyRequests:
        pass
print(allowed)
"""


def test_shared_buckets_hold_across_processes(tmp_path):
    """Two processes taking from one client's bucket in the shared file get 20 tokens between them, not 20 each
    (plus at most what refills while they run: 20 a minute)."""
    path = tmp_path / "limits" / "rate-limit.buckets"
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", SHARED_TAKER, str(path)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    counts = [int(p.communicate(timeout=60)[0]) for p in procs]
    refilled = (time.monotonic() - started) * 20 / 60
    assert all(p.returncode == 0 for p in procs)
    assert 20 <= sum(counts) <= 20 + refilled + 1, counts
    # another client has a bucket of its own in the same file
    limiter = ratelimit.shared_rate_limiter(20, path)
    limiter.check("10.9.9.9")
    with pytest.raises(TooManyRequests):
        limiter.check("10.1.2.3")
    limiter.close()


def _serve(cli_env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    return start_server("--no-access-log", *args, env=dict(cli_env, YIZHAN_RATE_LIMIT_PER_MINUTE="5"))


def _codes(base: str, forwarded: list[str]) -> list[int]:
    """Status of one rider request per forwarded address, each on a new connection (any worker may take it)."""
    return [httpx.get(f"{base}/stations", headers={"X-Forwarded-For": addr}, timeout=30).status_code
            for addr in forwarded]


@pytest.mark.slow
def test_forwarded_for_is_believed_only_from_trusted_proxies(cli_env, wudaokou):
    rotating = [f"203.0.113.{i}" for i in range(1, 9)]
    proc, base = _serve(cli_env, "--workers", "2")
    try:  # no trusted proxy: a rotating X-Forwarded-For from 127.0.0.1 is one client, across both workers
        assert _codes(base, rotating) == [200] * 5 + [429] * 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    proc, base = _serve(cli_env, "--trusted-proxy", "127.0.0.1")
    try:  # behind a trusted proxy each forwarded address is its own client, with its own limit
        assert _codes(base, rotating) == [200] * 8
        assert _codes(base, ["198.51.100.7"] * 6) == [200] * 5 + [429]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
