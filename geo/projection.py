"""Projections: pick a metric CRS (WGS 84 / UTM) for data stored in WGS 84 lon/lat (EPSG:4326)."""

from __future__ import annotations

import math

import pyproj
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from yizhan.errors import InvalidInput

WGS84 = 4326


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 / UTM zone containing a point.

    Parameters
    ----------
    lon, lat : float
        WGS 84 longitude and latitude in degrees, (lon, lat) order.

    Returns
    -------
    int
        326zz north of the equator (lat >= 0), 327zz south, with zone zz in 1–60. The Norway and Svalbard
        zone exceptions are not applied.

    Raises
    ------
    InvalidInput
        If the point is not a finite lon in [-180, 180] and lat in [-90, 90].
    """
    if not (math.isfinite(lon) and math.isfinite(lat) and -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise InvalidInput(f"point ({lon}, {lat}): expected WGS 84 lon in [-180, 180] and lat in [-90, 90] degrees")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def metric_crs_for(geometry_or_bounds: BaseGeometry | tuple[float, float, float, float]) -> pyproj.CRS:
    """Metric CRS (WGS 84 / UTM of the centroid) for a geometry or bbox in EPSG:4326.

    Parameters
    ----------
    geometry_or_bounds : shapely geometry or tuple of float
        A geometry in WGS 84 lon/lat degrees, or a bbox ``(west, south, east, north)`` in degrees.

    Returns
    -------
    pyproj.CRS
        The UTM CRS of the centroid; its units are metres.
    """
    geom = box(*geometry_or_bounds) if isinstance(geometry_or_bounds, tuple | list) else geometry_or_bounds
    if geom.is_empty:
        raise InvalidInput("geometry: expected a non-empty geometry in EPSG:4326 (lon, lat degrees)")
    c = geom.centroid
    return pyproj.CRS.from_epsg(utm_epsg(c.x, c.y))
