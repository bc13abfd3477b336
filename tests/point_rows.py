"""Stored demand points as a row each, for tests: read through ``data.demand_points.point_columns`` (the points are
stored as blocks of column bytes) and written back whole through ``replace_points`` (what a test once did with an
UPDATE or a DELETE on a row per point)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from yizhan.data.demand_points import (
    BYTE_COLUMNS,
    NO_TIME,
    PG_EPOCH_US,
    TABLE,
    PointBlock,
    drop_points,
    point_columns,
    replace_points,
)

__all__ = ["NO_TIME", "point_frame", "rewrite_points"]


def point_frame(conn: Connection, area_id: int | None = None) -> pd.DataFrame:
    """The stored points of area ``area_id`` (of every area when None, by area then number) as a frame: ``area_id``,
    ``id``, ``lon``, ``lat``, ``x``, ``y``, ``weight``, ``micros`` and ``observed_at`` (UTC, NaT without a time)."""
    areas = [area_id] if area_id is not None else list(conn.execute(text(
        f"SELECT DISTINCT area_id FROM {TABLE} ORDER BY 1")).scalars())
    frames = []
    for a in areas:
        got = point_columns(conn, int(a), ("id", *BYTE_COLUMNS))
        frame = pd.DataFrame({"area_id": np.full(len(got["id"]), int(a)), **got})
        frames.append(frame)
    if not frames:
        return pd.DataFrame({c: [] for c in ("area_id", "id", *BYTE_COLUMNS, "observed_at")})
    out = pd.concat(frames, ignore_index=True)
    stamps = pd.to_datetime(np.where(out["micros"] == NO_TIME, 0, out["micros"] + PG_EPOCH_US), unit="us", utc=True)
    out["observed_at"] = pd.Series(stamps).where(out["micros"].to_numpy() != NO_TIME)
    return out


def rewrite_points(conn: Connection, area_id: int, change: Callable[[pd.DataFrame], pd.DataFrame | None]) -> None:
    """Store again the area's points as ``change`` leaves its frame (``point_frame``; return a new frame, or None
    after changing it in place): its ``lon``, ``lat``, ``x``, ``y``, ``weight`` and ``micros`` (``NO_TIME`` for
    none), renumbered from 1 in its order. An empty frame forgets the area's points."""
    frame = point_frame(conn, area_id)
    changed = change(frame)
    frame = frame if changed is None else changed
    raw = conn.connection.driver_connection
    if not len(frame):
        drop_points(raw, area_id)
        return
    micros = frame["micros"].to_numpy(np.int64)
    block = PointBlock(*(frame[c].to_numpy(float) for c in ("lon", "lat", "x", "y", "weight")), micros,
                       micros != NO_TIME)
    replace_points(raw, area_id, [block])
