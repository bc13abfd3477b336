"""Console accounts on a real PostGIS: argon2 hashes only, names and passwords checked, sessions with idle and
absolute expiry (the clock passed in, never slept on), sessions ended when a user is disabled or re-passworded,
the sign-in throttle per account and per address (asked before the password), and the ``yizhan users`` commands."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from cli_runner import run_cli
from sqlalchemy import Engine, text

from yizhan.accounts.passwords import password_matches
from yizhan.accounts.sessions import drop_expired_sessions, end_session, session_user, start_session
from yizhan.accounts.signin import sign_in
from yizhan.accounts.throttle import SignInThrottled
from yizhan.accounts.users import create_user, list_users, set_disabled, set_password
from yizhan.errors import InvalidInput, NotFound
from yizhan.settings import Settings

T0 = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
PASSWORD = "correct horse battery"


def make(engine: Engine, name: str = "wangfang", role: str = "staff", password: str = PASSWORD) -> int:
    with engine.begin() as conn:
        return create_user(conn, name, role, password).id


def attempt(engine: Engine, settings: Settings, name: str, password: str, *, at: datetime,
            address: str = "10.0.0.1") -> str | None:
    """One sign-in, committed whatever its outcome (as the sign-in page does): the token, or None when refused."""
    with engine.begin() as conn:
        done = sign_in(conn, name, password, address, settings, now=at)
    return None if done is None else done.token


def test_passwords_are_stored_as_argon2_hashes_only(engine: Engine) -> None:
    make(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM users")).one()
        stored = conn.execute(text("SELECT u::text FROM users u")).scalar_one()
    assert row.password_hash.startswith("$argon2id$v=19$m=")
    assert PASSWORD not in stored  # nowhere in the row, in any form the database can print
    assert password_matches(row.password_hash, PASSWORD)
    assert not password_matches(row.password_hash, PASSWORD + "x")
    assert not password_matches(None, PASSWORD)  # no account: False, after as long a check
    with engine.begin() as conn, pytest.raises(Exception, match="ck_users_password_hash_argon2"):
        conn.execute(text("UPDATE users SET password_hash = 'plain text'"))


@pytest.mark.parametrize(("name", "role", "password", "match"), [
    ("", "staff", PASSWORD, "user name ''"),
    ("wang fang", "staff", PASSWORD, "no spaces"),
    ("<script>", "staff", PASSWORD, "user name '<script>'"),
    ("x" * 51, "staff", PASSWORD, "1 to 50"),
    ("王芳", "boss", PASSWORD, "role 'boss': expected one of admin, staff, planner"),
    ("王芳", "staff", "short", "at least 10 characters \\(got 5\\)"),
    ("王芳", "staff", " " * 12, "at least 10 characters"),
])
def test_names_roles_and_passwords_are_checked(engine: Engine, name: str, role: str, password: str,
                                               match: str) -> None:
    with engine.begin() as conn, pytest.raises(InvalidInput, match=match):
        create_user(conn, name, role, password)


def test_names_are_unique_without_regard_to_case_and_chinese_names_work(engine: Engine) -> None:
    make(engine, "WangFang")
    make(engine, "王芳", role="planner")
    with engine.begin() as conn, pytest.raises(InvalidInput, match="'wangfang' is taken"):
        create_user(conn, "wangfang", "staff", PASSWORD)
    with engine.connect() as conn:
        assert [(u.name, u.role, u.active) for u in list_users(conn)] == [("WangFang", "staff", True),
                                                                           ("王芳", "planner", True)]


def test_a_session_ends_after_its_idle_time(engine: Engine) -> None:
    settings = Settings(session_idle_minutes=120, session_max_hours=12)
    uid = make(engine)
    with engine.begin() as conn:
        token = start_session(conn, uid, now=T0)
    with engine.begin() as conn:
        user = session_user(conn, token, settings, now=T0 + timedelta(minutes=119))
        assert user is not None and user.name == "wangfang" and len(user.csrf_token) >= 40
        assert user.expires_at == T0 + timedelta(minutes=119 + 120)
    with engine.begin() as conn:  # used at +119 min: good until +239 min, not after
        assert session_user(conn, token, settings, now=T0 + timedelta(minutes=238)) is not None
    with engine.begin() as conn:
        assert session_user(conn, token, settings, now=T0 + timedelta(minutes=238 + 121)) is None
    with engine.connect() as conn:  # and it is gone
        assert conn.execute(text("SELECT count(*) FROM console_sessions")).scalar() == 0


def test_a_session_ends_at_its_absolute_lifetime_however_often_used(engine: Engine) -> None:
    settings = Settings(session_idle_minutes=120, session_max_hours=12)
    uid = make(engine)
    with engine.begin() as conn:
        token = start_session(conn, uid, now=T0)
    at = T0
    while at + timedelta(minutes=100) <= T0 + timedelta(hours=12):
        at += timedelta(minutes=100)
        with engine.begin() as conn:
            assert session_user(conn, token, settings, now=at) is not None, at
    with engine.begin() as conn:
        assert session_user(conn, token, settings, now=T0 + timedelta(hours=12, seconds=1)) is None


def test_only_the_tokens_hash_is_stored_and_sign_out_ends_it(engine: Engine) -> None:
    settings = Settings()
    uid = make(engine)
    with engine.begin() as conn:
        token = start_session(conn, uid, now=T0)
        other = start_session(conn, uid, now=T0)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT string_agg(s::text, ' ') FROM console_sessions s")).scalar_one()
    assert token not in stored and other not in stored
    with engine.begin() as conn:
        assert session_user(conn, token + "x", settings, now=T0) is None
        assert session_user(conn, None, settings, now=T0) is None
        end_session(conn, token)
        assert session_user(conn, token, settings, now=T0) is None
        assert session_user(conn, other, settings, now=T0) is not None  # the other browser stays signed in
        assert drop_expired_sessions(conn, settings, now=T0 + timedelta(days=1)) == 1


def test_disabling_a_user_or_changing_the_password_ends_every_session(engine: Engine) -> None:
    settings = Settings()
    make(engine, "admin1", role="admin")
    uid = make(engine)
    with engine.begin() as conn:
        tokens = [start_session(conn, uid, now=T0) for _ in range(2)]
        set_disabled(conn, "WANGFANG", True)
    with engine.begin() as conn:
        assert [session_user(conn, t, settings, now=T0) for t in tokens] == [None, None]
    assert attempt(engine, settings, "wangfang", PASSWORD, at=T0) is None  # a disabled user cannot sign in
    with engine.begin() as conn:
        set_disabled(conn, "wangfang", False)
    token = attempt(engine, settings, "wangfang", PASSWORD, at=T0)
    assert token is not None
    with engine.begin() as conn:
        set_password(conn, "wangfang", "a brand new password")
    with engine.begin() as conn:
        assert session_user(conn, token, settings, now=T0) is None
    assert attempt(engine, settings, "wangfang", PASSWORD, at=T0) is None
    assert attempt(engine, settings, "wangfang", "a brand new password", at=T0) is not None


def test_the_last_admin_cannot_be_disabled(engine: Engine) -> None:
    make(engine, "root1", role="admin")
    with engine.begin() as conn, pytest.raises(InvalidInput, match="last active admin"):
        set_disabled(conn, "root1", True)
    with engine.begin() as conn, pytest.raises(NotFound, match="no user called 'nobody'"):
        set_disabled(conn, "nobody", True)


def test_the_tenth_wrong_password_of_an_account_is_throttled_before_the_password_is_checked(engine: Engine) -> None:
    settings = Settings(signin_failures_per_account=9, signin_window_minutes=15, timezone="Asia/Shanghai")
    make(engine)
    for i in range(9):  # from different addresses: the account's own count
        assert attempt(engine, settings, "WangFang", f"wrong password {i}", at=T0 + timedelta(seconds=i),
                       address=f"10.0.0.{i}") is None
    with pytest.raises(SignInThrottled, match="请于 10:15（约 15 分钟后）再试 / too many failed sign-ins: try again "
                                              "at 10:15 \\(in about 15 min\\)") as refused:
        attempt(engine, settings, "wangfang", PASSWORD, at=T0 + timedelta(seconds=30))  # even the right one
    assert 14 * 60 < refused.value.retry_after <= 15 * 60
    with engine.connect() as conn:  # the refused attempt was not counted as a failure, nor checked
        assert conn.execute(text("SELECT count(*) FROM signin_failures")).scalar() == 9
    # once the first failure leaves the window, one more attempt is allowed
    assert attempt(engine, settings, "wangfang", PASSWORD, at=T0 + timedelta(minutes=15, seconds=1)) is not None
    with engine.connect() as conn:  # and a successful sign-in forgets the account's failures
        assert conn.execute(text("SELECT count(*) FROM signin_failures")).scalar() == 0


def test_an_address_is_throttled_across_accounts(engine: Engine) -> None:
    settings = Settings(signin_failures_per_address=9, signin_failures_per_account=9)
    make(engine)
    for i in range(9):  # nine accounts (most of them do not exist), one address
        assert attempt(engine, settings, f"guess{i}", "some password", at=T0, address="203.0.113.7") is None
    with pytest.raises(SignInThrottled, match="try again at 10:15"):
        attempt(engine, settings, "wangfang", PASSWORD, at=T0, address="203.0.113.7")
    assert attempt(engine, settings, "wangfang", PASSWORD, at=T0, address="203.0.113.8") is not None


def test_the_default_address_allowance_is_the_settings(engine: Engine) -> None:
    settings = Settings()
    assert (settings.signin_failures_per_account, settings.signin_failures_per_address) == (9, 30)
    for i in range(30):
        assert attempt(engine, settings, f"guess{i}", "some password", at=T0, address="198.51.100.1") is None
    with pytest.raises(SignInThrottled):
        attempt(engine, settings, "guess99", "some password", at=T0, address="198.51.100.1")


def yizhan_with_stdin(env: dict[str, str], stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yizhan.cli", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_the_users_commands(cli_env: dict[str, str], engine: Engine) -> None:
    made = yizhan_with_stdin(cli_env, PASSWORD + "\n", "users", "create", "李强", "--role", "admin",
                             "--password-stdin")
    assert made.returncode == 0, made.stderr
    assert "user 李强 (admin) created" in made.stdout
    short = yizhan_with_stdin(cli_env, "short\n", "users", "create", "wang", "--role", "staff", "--password-stdin")
    assert short.returncode == 2 and short.stderr.count("\n") == 1, short.stderr
    assert "error: 密码至少 10 个字符（现在 5 个） / a password needs at least 10 characters (got 5)" in short.stderr
    bad_role = run_cli("users", "create", "wang", "--role", "boss", env=cli_env, check=False)
    assert bad_role.returncode == 2 and "role 'boss': expected one of admin, staff, planner" in bad_role.stderr
    made = yizhan_with_stdin(cli_env, PASSWORD + "\n", "users", "create", "wang", "--role", "planner",
                             "--password-stdin")
    assert made.returncode == 0, made.stderr
    listed = run_cli("users", "list", env=cli_env).stdout
    assert "李强" in listed and "planner" in listed and PASSWORD not in listed
    assert "disabled" in run_cli("users", "disable", "wang", env=cli_env).stdout
    with engine.connect() as conn:
        assert [u.active for u in list_users(conn) if u.name == "wang"] == [False]
    run_cli("users", "enable", "wang", env=cli_env)
    changed = yizhan_with_stdin(cli_env, "another long password\n", "users", "password", "wang", "--password-stdin")
    assert changed.returncode == 0 and "password of wang changed" in changed.stdout, changed.stderr
    assert attempt(engine, Settings(), "wang", "another long password", at=T0) is not None
    missing = run_cli("users", "disable", "nobody", env=cli_env, check=False)
    assert missing.returncode == 2 and "no user called 'nobody'" in missing.stderr
    last = run_cli("users", "disable", "李强", env=cli_env, check=False)
    assert last.returncode == 2 and "last active admin" in last.stderr


def test_users_create_asks_the_password_twice_without_showing_it(cli_env: dict[str, str], engine: Engine) -> None:
    from typer.testing import CliRunner

    from yizhan.cli import users  # noqa: F401  (registers the users commands)
    from yizhan.cli.common import app
    from yizhan.db.engine import dispose_engines
    from yizhan.settings import get_settings

    get_settings.cache_clear()
    try:
        typed = f"{PASSWORD}\nnot the same one\n{PASSWORD}\n{PASSWORD}\n"  # a mistyped confirmation is asked again
        result = CliRunner().invoke(app, ["users", "create", "zhao", "--role", "planner"], input=typed, env=cli_env)
    finally:
        dispose_engines()
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output and PASSWORD not in result.output
    assert attempt(engine, Settings(), "zhao", PASSWORD, at=T0) is not None
