"""Staff API keys: created once and shown once, stored only as SHA-256 hashes, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import Connection, text

from yizhan.errors import InvalidInput, NotFound


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(conn: Connection, name: str) -> str:
    """Create a key called ``name`` and return it; only its hash is stored, so it cannot be shown again."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("key name: expected 1 to 100 characters")
    if conn.execute(text("SELECT 1 FROM api_keys WHERE name = :n"), {"n": name}).first():
        raise InvalidInput(f"key name {name!r} is taken; revoke it first or choose another name")
    key = "yz_" + secrets.token_urlsafe(32)
    conn.execute(text("INSERT INTO api_keys (name, key_hash) VALUES (:n, :h)"), {"n": name, "h": _digest(key)})
    return key


def revoke_key(conn: Connection, name: str) -> None:
    """Revoke the key called ``name`` (its row stays, as a record); the name becomes free again."""
    done = conn.execute(text("UPDATE api_keys SET revoked_at = now(), name = name || ' (revoked ' || id || ')' "
                             "WHERE name = :n AND revoked_at IS NULL"), {"n": name}).rowcount
    if not done:
        raise NotFound(f"no active key called {name!r}")


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
