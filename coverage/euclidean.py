"""Straight-line coverage: each demand cell's nearest station and whether it lies within the radius.

The core works on arrays of projected coordinates in metres (x east, y north, in one metric CRS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass
class NearestResult:
    """Per demand point: index of the nearest station (-1 when there is none), distance in metres, covered."""

    station: np.ndarray
    distance_m: np.ndarray
    covered: np.ndarray


def nearest_from_arrays(demand_xy: np.ndarray, station_xy: np.ndarray, radius_m: float) -> NearestResult:
    """Nearest station of every demand point and coverage within ``radius_m``.

    Parameters
    ----------
    demand_xy, station_xy
        Arrays of shape (n, 2) and (m, 2): x, y in metres of the same projected CRS.
    radius_m
        Service radius in metres; a point at exactly the radius is covered.
    """
    n = len(demand_xy)
    if len(station_xy) == 0:
        return NearestResult(np.full(n, -1), np.full(n, np.inf), np.zeros(n, dtype=bool))
    dist, idx = cKDTree(station_xy).query(demand_xy, k=1) if n else (np.empty(0), np.empty(0, dtype=int))
    return NearestResult(np.asarray(idx, dtype=np.int64), np.asarray(dist, dtype=float), np.asarray(dist) <= radius_m)


def covered_share(weights: np.ndarray, covered: np.ndarray) -> tuple[float, float, float]:
    """Total weight, covered weight and the covered share (0–1; 0 when there is no demand)."""
    total = float(np.sum(weights))
    done = float(np.sum(weights[covered]))
    return total, done, (done / total if total > 0 else 0.0)
