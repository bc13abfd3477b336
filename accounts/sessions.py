"""Console sessions: an opaque random token in the browser's cookie, only its SHA-256 in the database, a CSRF token
for the session's forms, an idle and an absolute lifetime (the settings' ``session_idle_minutes`` and
``session_max_hours``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from yizhan.settings import Settings

TOKEN_BYTES = 32
"""Random bytes of a session token and of a CSRF token (URL-safe base64 in the cookie and the form)."""
TOUCH_EVERY_S = 30.0
"""A session's last use is written at most this often, seconds (the idle expiry is this much coarser)."""


@dataclass(frozen=True)
class SignedIn:
    """The user behind a valid session, and the session's CSRF token."""

    user_id: int
    name: str
    role: str
    csrf_token: str
    started_at: datetime
    expires_at: datetime
    """When the session ends unless used again (the sooner of the idle and the absolute end)."""


def token_digest(token: str) -> str:
    """The SHA-256 (hex) of a session token: what is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(conn: Connection, user_id: int, *, now: datetime) -> str:
    """Start a session of user ``user_id`` at ``now``; the token for the cookie (shown once, stored hashed)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    conn.execute(text("INSERT INTO console_sessions (token_hash, user_id, csrf_token, created_at, last_seen_at) "
                      "VALUES (:h, :u, :c, :t, :t)"),
                 {"h": token_digest(token), "u": user_id, "c": secrets.token_urlsafe(TOKEN_BYTES), "t": now})
    return token


def session_user(conn: Connection, token: str | None, settings: Settings, *, now: datetime) -> SignedIn | None:
    """The signed-in user of ``token`` at ``now``, the session's last use moved to ``now``; None when there is no
    such session, it has been unused for ``session_idle_minutes``, it began over ``session_max_hours`` ago (an
    expired session is deleted) or its user is disabled."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(text(
        "SELECT s.id, s.token_hash, s.csrf_token, s.created_at, s.last_seen_at, u.id AS user_id, u.name, u.role, "
        "u.disabled_at FROM console_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = :h"),
        {"h": token_digest(token)}).first()
    if row is None or not hmac.compare_digest(row.token_hash, token_digest(token)):
        return None
    idle, most = timedelta(minutes=settings.session_idle_minutes), timedelta(hours=settings.session_max_hours)
    if row.disabled_at is not None or now - row.last_seen_at > idle or now - row.created_at > most:
        conn.execute(text("DELETE FROM console_sessions WHERE id = :i"), {"i": row.id})
        return None
    if (now - row.last_seen_at).total_seconds() >= TOUCH_EVERY_S:
        conn.execute(text("UPDATE console_sessions SET last_seen_at = :t WHERE id = :i"), {"t": now, "i": row.id})
        last = now
    else:
        last = row.last_seen_at
    return SignedIn(user_id=row.user_id, name=row.name, role=row.role, csrf_token=row.csrf_token,
                    started_at=row.created_at, expires_at=min(last + idle, row.created_at + most))


def end_session(conn: Connection, token: str | None) -> None:
    """End the session of ``token`` (signing out); nothing when there is none."""
    if token:
        conn.execute(text("DELETE FROM console_sessions WHERE token_hash = :h"), {"h": token_digest(token)})


def drop_expired_sessions(conn: Connection, settings: Settings, *, now: datetime) -> int:
    """Delete the sessions expired at ``now``; how many."""
    return conn.execute(text(
        "DELETE FROM console_sessions WHERE last_seen_at < :idle OR created_at < :most"),
        {"idle": now - timedelta(minutes=settings.session_idle_minutes),
         "most": now - timedelta(hours=settings.session_max_hours)}).rowcount
