"""An area's stored demand profile: how its demand spreads over the 168 hours of the week (Monday 00:00 first, the
area's local time), summing to 1, from a planner's file. Demand without times is spread by it; without a stored
profile the built-in one applies (``yizhan.weekly.profile``, which also reads the files)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Connection, text

from yizhan.errors import InvalidInput

HOURS = 168


def store_profile(conn: Connection, area_id: int, weights: np.ndarray, *, source: str) -> None:
    """Keep ``weights`` (168 numbers >= 0, not all 0; normalised to sum 1 here) as the area's profile, replacing any
    before; ``source`` says where it came from (the file's name)."""
    w = np.asarray(weights, dtype=float).reshape(-1)
    if len(w) != HOURS or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise InvalidInput(f"需求时段分布须为 168 个不小于 0 的数 / a demand profile is 168 numbers >= 0, not all 0 "
                           f"(got {len(w)})")
    conn.execute(text("INSERT INTO demand_profiles (area_id, weights, source) VALUES (:a, :w, :s) "
                      "ON CONFLICT (area_id) DO UPDATE SET weights = EXCLUDED.weights, source = EXCLUDED.source, "
                      "created_at = now()"),
                 {"a": area_id, "w": [float(x) for x in w / w.sum()], "s": source})


def stored_profile(conn: Connection, area_id: int) -> tuple[np.ndarray, str] | None:
    """The area's stored profile (168,) and its source, or None when it has none."""
    row = conn.execute(text("SELECT weights, source FROM demand_profiles WHERE area_id = :a"), {"a": area_id}).first()
    return None if row is None else (np.asarray(row.weights, dtype=float), str(row.source))


def drop_profile(conn: Connection, area_id: int) -> bool:
    """Forget the area's stored profile (the built-in one applies again); whether there was one."""
    return conn.execute(text("DELETE FROM demand_profiles WHERE area_id = :a"), {"a": area_id}).rowcount > 0
