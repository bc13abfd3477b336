"""Staff API keys: created once and shown once, stored only as SHA-256 hashes, revocable."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from sqlalchemy import Connection, text

from yizhan.errors import InvalidInput, NotFound

NAME_MAX = 100
"""Characters of a key's name (the ``api_keys.name`` column)."""

REVOKED_NAME = re.compile(r"\(revoked \d+(-\d+)?\)\s*$")
"""How a revoked key's row is renamed (``NAME (revoked ID)``); a new key may not be called so."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(conn: Connection, name: str) -> str:
    """Create a key called ``name`` and return it; only its hash is stored, so it cannot be shown again."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"key name: expected 1 to {NAME_MAX} characters, got {len(name)}")
    if REVOKED_NAME.search(name):
        raise InvalidInput(f"key name {name!r} looks like a revoked key's record (… (revoked N)); choose another name")
    if conn.execute(text("SELECT 1 FROM api_keys WHERE name = :n"), {"n": name}).first():
        raise InvalidInput(f"key name {name!r} is taken; revoke it first or choose another name")
    key = "yz_" + secrets.token_urlsafe(32)
    conn.execute(text("INSERT INTO api_keys (name, key_hash) VALUES (:n, :h)"), {"n": name, "h": _digest(key)})
    return key


def revoke_key(conn: Connection, name: str) -> None:
    """Revoke the key called ``name``: it stops working at once; its row stays as a record, renamed
    ``NAME (revoked ID)`` (see :func:`revoked_name`), so the name becomes free again."""
    key_id = conn.execute(text("SELECT id FROM api_keys WHERE name = :n AND revoked_at IS NULL FOR UPDATE"),
                          {"n": name}).scalar()
    if key_id is None:
        raise NotFound(f"no active key called {name!r}")
    conn.execute(text("UPDATE api_keys SET revoked_at = now(), name = :r WHERE id = :i"),
                 {"r": revoked_name(conn, name, key_id), "i": key_id})


def revoked_name(conn: Connection, name: str, key_id: int) -> str:
    """The record name of key ``key_id`` called ``name`` once revoked: ``NAME (revoked ID)``, ``NAME (revoked
    ID-2)``, … whichever is free, the name shortened so the whole fits in :data:`NAME_MAX` characters."""
    n = 1
    while True:
        tag = f" (revoked {key_id})" if n == 1 else f" (revoked {key_id}-{n})"
        candidate = name[: NAME_MAX - len(tag)].rstrip() + tag
        if conn.execute(text("SELECT 1 FROM api_keys WHERE name = :n"), {"n": candidate}).first() is None:
            return candidate
        n += 1


def list_keys(conn: Connection) -> list[dict[str, Any]]:
    """Names and dates of all keys (never the keys)."""
    rows = conn.execute(text("SELECT name, created_at, revoked_at FROM api_keys ORDER BY created_at")).all()
    return [dict(r._mapping) for r in rows]


def key_is_valid(conn: Connection, key: str, *, extra: str | None = None) -> bool:
    """Whether ``key`` is an active stored key, or equals ``extra`` (the settings' key); constant-time compares."""
    if extra is not None and hmac.compare_digest(key.encode(), extra.encode()):
        return True
    digest = _digest(key)
    stored = conn.execute(text("SELECT key_hash FROM api_keys WHERE key_hash = :h AND revoked_at IS NULL"),
                          {"h": digest}).scalar()
    return stored is not None and hmac.compare_digest(stored, digest)
