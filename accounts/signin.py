"""Signing in: the throttle first, then the password, then a new session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from yizhan.accounts.passwords import hash_password, needs_rehash, password_matches
from yizhan.accounts.sessions import drop_expired_sessions, start_session
from yizhan.accounts.throttle import check_attempt, clear_account, lock_attempts, record_failure
from yizhan.settings import Settings

WRONG = "用户名或密码不正确 / wrong user name or password"
"""What a failed sign-in says (the same whether the name or the password was wrong, or the user is disabled)."""


@dataclass(frozen=True)
class SignInResult:
    """A new session: the token for the cookie and who signed in."""

    token: str
    user_id: int
    name: str
    role: str


def sign_in(conn: Connection, name: str, password: str, address: str, settings: Settings, *,
            now: datetime) -> SignInResult | None:
    """Sign ``name`` in from client ``address`` at ``now``: the new session, or None when the name or password is
    wrong or the user is disabled (the failure is then counted, in this transaction: the caller commits it and
    says :data:`WRONG`). The throttle is asked before the password is checked: SignInThrottled (429) whatever the
    password. A successful sign-in also deletes every session expired at ``now``."""
    lock_attempts(conn, name, address)
    check_attempt(conn, name, address, settings, now=now)
    row = conn.execute(text("SELECT id, name, role, password_hash, disabled_at FROM users "
                            "WHERE lower(name) = lower(:n)"), {"n": name.strip()[:100]}).first()
    matches = password_matches(row.password_hash if row is not None else None, password)
    if row is None or not matches or row.disabled_at is not None:
        record_failure(conn, name, address, now=now)
        return None
    clear_account(conn, name)
    if needs_rehash(row.password_hash):
        conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :i"),
                     {"h": hash_password(password), "i": row.id})
    drop_expired_sessions(conn, settings, now=now)  # the table keeps only live sessions
    return SignInResult(token=start_session(conn, row.id, now=now), user_id=row.id, name=row.name, role=row.role)
