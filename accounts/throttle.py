"""Failed sign-ins counted in the database per account and per client address, within the settings'
``signin_window_minutes``: when an account has ``signin_failures_per_account`` failures in the window (or an
address ``signin_failures_per_address``), the next attempt is refused before its password is looked at, until the
oldest failure that matters leaves the window. Counting in the database makes the limit hold across the worker
processes of a server; attempts on one account (and from one address) are taken one at a time under transaction
advisory locks, so concurrent attempts cannot slip past the count."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from yizhan.errors import TooManyRequests
from yizhan.settings import Settings

ADDRESS_MAX = 64
"""Characters of a client address stored (an IPv6 address has at most 45)."""


class SignInThrottled(TooManyRequests):
    """Too many failed sign-ins to an account or from an address within the window; ``retry_after`` seconds."""


def account_key(name: str) -> str:
    """How an account is counted: its name stripped and lower-cased (so case does not give more tries)."""
    return name.strip().lower()[:100]


def lock_attempts(conn: Connection, name: str, address: str) -> None:
    """Take this transaction's turn for sign-ins to ``name`` and from ``address`` (account first, then address,
    in every transaction, so two attempts never wait on each other in a circle)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('signin account ' || :a))"), {"a": account_key(name)})
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('signin address ' || :a))"),
                 {"a": address[:ADDRESS_MAX]})


def _free_at(conn: Connection, column: str, value: str, limit: int, since: datetime,
             window: timedelta) -> datetime | None:
    """When the ``limit``-th most recent failure with ``column = value`` since ``since`` leaves the window, if
    there are that many; None while fewer."""
    at = conn.execute(text(f"SELECT at FROM signin_failures WHERE {column} = :v AND at > :since "
                           "ORDER BY at DESC OFFSET :n LIMIT 1"),
                      {"v": value, "since": since, "n": limit - 1}).scalar()
    return None if at is None else at + window


def check_attempt(conn: Connection, name: str, address: str, settings: Settings, *, now: datetime) -> None:
    """SignInThrottled (429) when account ``name`` or client ``address`` has had its allowance of failed sign-ins
    within the window before ``now``; its message says, in Chinese and English, at what local time (the settings'
    time zone) to try again."""
    window = timedelta(minutes=settings.signin_window_minutes)
    since = now - window
    ends = [t for t in (
        _free_at(conn, "account", account_key(name), settings.signin_failures_per_account, since, window),
        _free_at(conn, "address", address[:ADDRESS_MAX], settings.signin_failures_per_address, since, window),
    ) if t is not None]
    if not ends:
        return
    free = max(ends)
    local = free.astimezone(ZoneInfo(settings.timezone))
    wait_s = max(1, math.ceil((free - now).total_seconds()))
    minutes = max(1, math.ceil(wait_s / 60))
    raise SignInThrottled(
        f"登录失败次数过多，请于 {local:%H:%M}（约 {minutes} 分钟后）再试 / too many failed sign-ins: try again "
        f"at {local:%H:%M} (in about {minutes} min)", retry_after=wait_s)


def record_failure(conn: Connection, name: str, address: str, *, now: datetime) -> None:
    """Count a failed sign-in to ``name`` from ``address`` at ``now`` (and forget those older than a day)."""
    conn.execute(text("INSERT INTO signin_failures (account, address, at) VALUES (:a, :d, :t)"),
                 {"a": account_key(name), "d": address[:ADDRESS_MAX], "t": now})
    conn.execute(text("DELETE FROM signin_failures WHERE at < :old"), {"old": now - timedelta(days=1)})


def clear_account(conn: Connection, name: str) -> None:
    """Forget the failures of account ``name`` (after it signed in; the address's failures stay counted)."""
    conn.execute(text("DELETE FROM signin_failures WHERE account = :a"), {"a": account_key(name)})
