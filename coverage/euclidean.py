"""Straight-line coverage: each demand cell's nearest station and whether it lies within the radius.

The core works on arrays of projected coordinates in metres (x east, y north, in one metric CRS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from yizhan.geo.coords import GEOD


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


GEODESIC_MARGIN = 0.001
"""Relative band around the radius in which a straight-line distance measured in the area's metric CRS is checked
on the ellipsoid: a UTM plane differs from the geodesic by up to 0.06 % at 1 km within its zone, so 0.1 % (plus
1 m) holds every point whose side of the radius the plane could get wrong."""


def geodesic_band(radius_m: float) -> float:
    """Half-width in metres of the band around ``radius_m`` re-checked on the ellipsoid."""
    return radius_m * GEODESIC_MARGIN + 1.0


def recheck_nearest(res: NearestResult, demand_xy: np.ndarray, station_xy: np.ndarray, demand_lonlat: np.ndarray,
                    station_lonlat: np.ndarray, radius_m: float) -> int:
    """Decide coverage on the ellipsoid for the points whose planar nearest distance lies within ``geodesic_band``
    of ``radius_m``: each such point is covered when any station within the band's outer edge (planar) is within
    ``radius_m`` metres along the WGS 84 geodesic. Updates ``res.covered`` in place; returns how many points were
    checked. Their ``distance_m`` becomes the geodesic distance to the nearest of those stations (the planar one when
    none lies within the band's outer edge), so the distance and the flag agree. ``*_xy`` metres (x east, y north) of
    one projected CRS, ``*_lonlat`` WGS 84 (lon, lat) degrees."""
    band = geodesic_band(radius_m)
    near = np.flatnonzero(np.abs(res.distance_m - radius_m) <= band)
    if not len(near) or not len(station_xy):
        return 0
    found = cKDTree(station_xy).query_ball_point(demand_xy[near], radius_m + band)
    counts = np.fromiter((len(f) for f in found), dtype=np.int64, count=len(found))
    sites = np.fromiter((j for f in found for j in f), dtype=np.int64, count=int(counts.sum()))
    owner = np.repeat(np.arange(len(near)), counts)
    dlon, dlat = demand_lonlat[near[owner]].T
    slon, slat = station_lonlat[sites].T
    _, _, dist = GEOD.inv(dlon, dlat, slon, slat)
    best = np.full(len(near), np.inf)
    np.minimum.at(best, owner, np.asarray(dist, dtype=float))
    res.covered[near] = best <= radius_m
    res.distance_m[near] = np.where(np.isfinite(best), best, res.distance_m[near])
    return len(near)


def recheck_pairs(dem: np.ndarray, site: np.ndarray, dist_m: np.ndarray, demand_lonlat: np.ndarray,
                  station_lonlat: np.ndarray, radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Straight-line pairs found within ``radius_m + geodesic_band`` (planar metres) cut to those within
    ``radius_m`` on the ellipsoid: pairs in the band get their geodesic distance. Returns the kept pairs and how
    many were checked."""
    band = geodesic_band(radius_m)
    check = np.flatnonzero(np.abs(dist_m - radius_m) <= band)
    dist = np.asarray(dist_m, dtype=float).copy()
    if len(check):
        dlon, dlat = demand_lonlat[dem[check]].T
        slon, slat = station_lonlat[site[check]].T
        dist[check] = GEOD.inv(dlon, dlat, slon, slat)[2]
    keep = dist <= radius_m
    return dem[keep], site[keep], dist[keep], len(check)
