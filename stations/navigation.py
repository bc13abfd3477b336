"""One-tap navigation links to a station: the URIs the map apps on a rider's phone open.

Pure functions: a station's WGS 84 (lon, lat) degrees and name in, links out, each carrying the coordinate system
its app expects:

- Amap (高德): ``https://uri.amap.com/navigation?to=LON,LAT,NAME&mode=walk|ride&coordinate=gaode&callnative=1``,
  GCJ-02 (``coordinate=gaode``), lon before lat; opens the app when installed, else Amap's web page.
- Baidu (百度): the app's ``baidumap://map/direction`` and the web form ``https://api.map.baidu.com/direction``,
  ``destination=latlng:LAT,LON|name:NAME`` (lat before lon) with ``coord_type=wgs84`` stated, so that Baidu
  converts to its BD-09 itself; ``mode`` walking or riding; ``src`` names the calling application as Baidu's URI
  API asks (``webapp.company.app``).
- ``geo:LAT,LON?q=LAT,LON(NAME)`` (RFC 5870, WGS 84, lat before lon): any map app on Android.

Coordinates are written with 7 decimals (about 1 cm); names are percent-encoded (UTF-8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast
from urllib.parse import quote

import numpy as np

from yizhan.geo.coords import from_wgs84

Mode = Literal["walk", "ride"]
BAIDU_SRC = "webapp.yizhan.rider"
"""Who calls Baidu's URI API (its ``src`` parameter, ``webapp.company.app``)."""
NAV_KEYS = ("amap_walk", "amap_ride", "baidu_walk", "baidu_ride", "baidu_web", "geo")
"""The links of one station, in this order."""

_BAIDU_MODE = {"walk": "walking", "ride": "riding"}


def _name(name: str) -> str:
    """``name`` percent-encoded for a query value, with the separators the links use (``,`` ``|`` ``(``
    ``)``) encoded too."""
    return quote(name.strip() or "驿站", safe="")


def amap_link(gcj_lon: float, gcj_lat: float, name: str, mode: Mode = "walk") -> str:
    """Amap's navigation URI to a point given in GCJ-02 degrees (lon, lat)."""
    return (f"https://uri.amap.com/navigation?to={gcj_lon:.7f},{gcj_lat:.7f},{_name(name)}"
            f"&mode={mode}&coordinate=gaode&callnative=1")


def baidu_link(lon: float, lat: float, name: str, mode: Mode = "walk", *, web: bool = False) -> str:
    """Baidu's direction URI (the app's, or with ``web`` the web page's) to a WGS 84 point (lon, lat degrees),
    written lat first with ``coord_type=wgs84``."""
    dest = f"destination=latlng:{lat:.7f},{lon:.7f}|name:{_name(name)}"
    if web:
        return (f"https://api.map.baidu.com/direction?{dest}&coord_type=wgs84&mode={_BAIDU_MODE[mode]}"
                f"&output=html&src={BAIDU_SRC}")
    return f"baidumap://map/direction?{dest}&coord_type=wgs84&mode={_BAIDU_MODE[mode]}&src={BAIDU_SRC}"


def geo_link(lon: float, lat: float, name: str) -> str:
    """The ``geo:`` URI (WGS 84, lat first) with the name as the point's label."""
    return f"geo:{lat:.7f},{lon:.7f}?q={lat:.7f},{lon:.7f}({_name(name)})"


CACHE_SIZE = 65_536
"""How many stations' links ``nav_links_many`` keeps (a rider's search asks for the same stations again and again);
when full the cache starts again empty."""
_CACHE: dict[tuple[float, float, str], dict[str, str]] = {}


def _links(x: float, y: float, gx: float, gy: float, name: str) -> dict[str, str]:
    return {"amap_walk": amap_link(gx, gy, name, "walk"), "amap_ride": amap_link(gx, gy, name, "ride"),
            "baidu_walk": baidu_link(x, y, name, "walk"), "baidu_ride": baidu_link(x, y, name, "ride"),
            "baidu_web": baidu_link(x, y, name, "walk", web=True), "geo": geo_link(x, y, name)}


def nav_links_many(lon: Sequence[float], lat: Sequence[float], names: Sequence[str]) -> list[dict[str, str]]:
    """The links (``NAV_KEYS``) of each station at WGS 84 (lon[i], lat[i]) degrees named names[i]: the ones made
    before from the cache, the others' GCJ-02 points converted in one call. The dicts are shared, not to be
    changed."""
    keys = [(float(x), float(y), name) for x, y, name in zip(lon, lat, names, strict=True)]
    out = [_CACHE.get(key) for key in keys]
    missing = [i for i, links in enumerate(out) if links is None]
    if missing:
        glon, glat = from_wgs84(np.array([keys[i][0] for i in missing]), np.array([keys[i][1] for i in missing]),
                                "gcj02")
        if len(_CACHE) + len(missing) > CACHE_SIZE:
            _CACHE.clear()
        for i, gx, gy in zip(missing, glon.tolist(), glat.tolist(), strict=True):
            x, y, name = keys[i]
            out[i] = _CACHE[keys[i]] = _links(x, y, gx, gy, name)
    return cast(list[dict[str, str]], out)


def nav_links(lon: float, lat: float, name: str) -> dict[str, str]:
    """The links (``NAV_KEYS``) of one station at WGS 84 (lon, lat) degrees."""
    return nav_links_many([lon], [lat], [name])[0]
