"""Chinese coordinate systems: WGS 84, GCJ-02 ("Mars" coordinates) and BD-09 (Baidu).

All functions take and return longitude/latitude in decimal degrees, in the order (lon, lat), and are
vectorised: scalars or array-likes of any matching shape are accepted; results are ``numpy`` arrays
(0-d for scalar input).

- GCJ-02 is the published obfuscation of WGS 84 used by AutoNavi/Amap, Tencent and most Chinese web maps.
  It applies only inside China's rough bounding box (the usual ``out_of_china`` rule); outside it is the
  identity. The inverse has no closed form: it is solved by fixed-point iteration of the forward formula
  (error well under 1 mm after a few iterations).
- BD-09 is Baidu's further offset of GCJ-02, with the standard closed formulas in both directions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from pyproj import Geod

from yizhan.errors import InvalidInput

COORD_SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

ArrayLike = npt.ArrayLike
Pair = tuple[np.ndarray, np.ndarray]

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 formula.
GEOD = Geod(ellps="WGS84")
"""The WGS 84 ellipsoid's geodesics: distances in metres between lon/lat degrees (``GEOD.inv``)."""

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
# Rough bounding box of China used by the out_of_china rule, degrees (west, south, east, north).
_CHINA_BOX = (72.004, 0.8293, 137.8347, 55.8271)
_INVERSE_ITERATIONS = 8


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> Pair:
    lon_a, lat_a = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return lon_a.copy(), lat_a.copy()


def in_china(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """Whether points fall inside the box where GCJ-02 applies.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees (lon, lat order).

    Returns
    -------
    numpy.ndarray of bool
        True inside (72.004–137.8347 E, 0.8293–55.8271 N), the usual ``out_of_china`` rule negated.
    """
    lon_a, lat_a = _as_arrays(lon, lat)
    west, south, east, north = _CHINA_BOX
    return (lon_a > west) & (lon_a < east) & (lat_a > south) & (lat_a < north)


# The formula is written once for arrays and for plain floats: ``m`` is ``numpy`` or ``math`` (both have sin, cos,
# sqrt, fabs, radians and pi), so one point (a station's navigation link) costs no array overhead.
def _delta_lat(x: Any, y: Any, m: Any = np) -> Any:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * m.sqrt(m.fabs(x))
    ret += (20.0 * m.sin(6.0 * x * m.pi) + 20.0 * m.sin(2.0 * x * m.pi)) * 2.0 / 3.0
    ret += (20.0 * m.sin(y * m.pi) + 40.0 * m.sin(y / 3.0 * m.pi)) * 2.0 / 3.0
    ret += (160.0 * m.sin(y / 12.0 * m.pi) + 320.0 * m.sin(y * m.pi / 30.0)) * 2.0 / 3.0
    return ret


def _delta_lon(x: Any, y: Any, m: Any = np) -> Any:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * m.sqrt(m.fabs(x))
    ret += (20.0 * m.sin(6.0 * x * m.pi) + 20.0 * m.sin(2.0 * x * m.pi)) * 2.0 / 3.0
    ret += (20.0 * m.sin(x * m.pi) + 40.0 * m.sin(x / 3.0 * m.pi)) * 2.0 / 3.0
    ret += (150.0 * m.sin(x / 12.0 * m.pi) + 300.0 * m.sin(x / 30.0 * m.pi)) * 2.0 / 3.0
    return ret


def _offset(lon: Any, lat: Any, m: Any = np) -> tuple[Any, Any]:
    """GCJ-02 minus WGS 84 at WGS 84 point (lon, lat), degrees, wherever the point is (``m``: see above)."""
    x, y = lon - 105.0, lat - 35.0
    rad_lat = m.radians(lat)
    magic = 1.0 - _EE * m.sin(rad_lat) ** 2
    sqrt_magic = m.sqrt(magic)
    d_lat = (_delta_lat(x, y, m) * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * m.pi)
    d_lon = (_delta_lon(x, y, m) * 180.0) / (_A / sqrt_magic * m.cos(rad_lat) * m.pi)
    return d_lon, d_lat


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> Pair:
    """GCJ-02 minus WGS 84 at WGS 84 point (lon, lat), degrees; zero outside China."""
    d_lon, d_lat = _offset(lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, d_lon, 0.0), np.where(inside, d_lat, 0.0)


def wgs84_to_gcj02_point(lon: float, lat: float) -> tuple[float, float]:
    """One WGS 84 point (lon, lat degrees) in GCJ-02, as ``wgs84_to_gcj02`` gives it, in plain floats: about
    twenty times cheaper than the array function for a single point."""
    west, south, east, north = _CHINA_BOX
    if not (west < lon < east and south < lat < north):
        return lon, lat
    d_lon, d_lat = _offset(lon, lat, math)
    return lon + d_lon, lat + d_lat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """WGS 84 → GCJ-02 (forward obfuscation), degrees in (lon, lat) order; identity outside China."""
    lon_a, lat_a = _as_arrays(lon, lat)
    d_lon, d_lat = _gcj_offset(lon_a, lat_a)
    return lon_a + d_lon, lat_a + d_lat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """GCJ-02 → WGS 84 by fixed-point iteration of the forward formula, degrees in (lon, lat) order.

    The error after the iterations is far below 1 cm inside China; outside China it is the identity.
    """
    g_lon, g_lat = _as_arrays(lon, lat)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(_INVERSE_ITERATIONS):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        w_lon -= f_lon - g_lon
        w_lat -= f_lat - g_lat
    return w_lon, w_lat


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """GCJ-02 → BD-09 (standard Baidu formula), degrees in (lon, lat) order."""
    x, y = _as_arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """BD-09 → GCJ-02 (standard Baidu inverse formula), degrees in (lon, lat) order."""
    lon_a, lat_a = _as_arrays(lon, lat)
    x, y = lon_a - 0.0065, lat_a - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _identity(lon: ArrayLike, lat: ArrayLike) -> Pair:
    return _as_arrays(lon, lat)


_TO_WGS84: dict[str, Callable[[ArrayLike, ArrayLike], Pair]] = {
    "wgs84": _identity,
    "gcj02": gcj02_to_wgs84,
    "bd09": lambda lon, lat: gcj02_to_wgs84(*bd09_to_gcj02(lon, lat)),
}
_FROM_WGS84: dict[str, Callable[[ArrayLike, ArrayLike], Pair]] = {
    "wgs84": _identity,
    "gcj02": wgs84_to_gcj02,
    "bd09": lambda lon, lat: gcj02_to_bd09(*wgs84_to_gcj02(lon, lat)),
}


def _check_system(system: str) -> str:
    key = str(system).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in COORD_SYSTEMS:
        raise InvalidInput(f"coordinate system {system!r} is not known; expected one of {', '.join(COORD_SYSTEMS)}")
    return key


def to_wgs84(lon: ArrayLike, lat: ArrayLike, system: str) -> Pair:
    """Convert coordinates given in ``system`` to WGS 84 (EPSG:4326).

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees, (lon, lat) order, in the source system.
    system : str
        One of ``COORD_SYSTEMS``: "wgs84", "gcj02" or "bd09" (case and "-"/"_" are ignored).

    Returns
    -------
    tuple of numpy.ndarray
        (lon, lat) in WGS 84 degrees.

    Raises
    ------
    InvalidInput
        If ``system`` is not one of the accepted names.
    """
    return _TO_WGS84[_check_system(system)](lon, lat)


def from_wgs84(lon: ArrayLike, lat: ArrayLike, system: str) -> Pair:
    """Convert WGS 84 (EPSG:4326) coordinates to ``system``.

    Parameters
    ----------
    lon, lat : array_like
        WGS 84 longitude and latitude in degrees, (lon, lat) order.
    system : str
        One of ``COORD_SYSTEMS``: "wgs84", "gcj02" or "bd09" (case and "-"/"_" are ignored).

    Returns
    -------
    tuple of numpy.ndarray
        (lon, lat) in degrees of the target system.

    Raises
    ------
    InvalidInput
        If ``system`` is not one of the accepted names.
    """
    return _FROM_WGS84[_check_system(system)](lon, lat)
