"""One-tap navigation links to a station: the URIs the map apps on a rider's phone open.

Pure functions: a station's WGS 84 (lon, lat) degrees and name in, links out, each carrying the coordinate system
its app expects:

- Amap (高德): its route URI ``https://uri.amap.com/navigation?to=LON,LAT,NAME&mode=walk|ride&src=yizhan&callnative=1``
  (lbs.amap.com URI API, 路径规划): the point in GCJ-02, Amap's own coordinates (the route URI has no parameter
  naming another system), lon before lat; ``src`` names the caller as Amap asks; ``callnative=1`` opens the app
  when installed, else Amap's web page (riding only in the app).
- Baidu (百度): the app's ``baidumap://map/direction`` and the web form ``https://api.map.baidu.com/direction``,
  ``destination=latlng:LAT,LON|name:NAME`` (lat before lon) with ``coord_type=wgs84`` stated, so that Baidu
  converts to its BD-09 itself; ``mode`` walking or riding; ``src`` names the calling application as Baidu's URI
  API asks (``webapp.company.app``).
- ``geo:LAT,LON?q=LAT,LON(NAME)`` (RFC 5870, WGS 84, lat before lon): any map app on Android.

Coordinates are written with 7 decimals (about 1 cm); names are percent-encoded (UTF-8).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal
from urllib.parse import quote

from yizhan.geo.coords import wgs84_to_gcj02_point

Mode = Literal["walk", "ride"]
AMAP_SRC = "yizhan"
"""Who calls Amap's route URI (its ``src`` parameter)."""
BAIDU_SRC = "webapp.yizhan.rider"
"""Who calls Baidu's URI API (its ``src`` parameter, ``webapp.company.app``)."""
NAV_KEYS = ("amap_walk", "amap_ride", "baidu_walk", "baidu_ride", "baidu_web", "geo")
"""The links of one station, in this order."""

_BAIDU_MODE = {"walk": "walking", "ride": "riding"}


def _name(name: str) -> str:
    """``name`` percent-encoded for a query value, with the separators the links use (``,`` ``|`` ``(``
    ``)``) encoded too."""
    return quote(name.strip() or "驿站", safe="")


def amap_link(gcj_lon: float, gcj_lat: float, name: str, mode: Mode = "walk", *, quoted: bool = False) -> str:
    """Amap's navigation URI to a point given in GCJ-02 degrees (lon, lat); ``quoted``: ``name`` is already
    percent-encoded (``_name``)."""
    return (f"https://uri.amap.com/navigation?to={gcj_lon:.7f},{gcj_lat:.7f},{name if quoted else _name(name)}"
            f"&mode={mode}&src={AMAP_SRC}&callnative=1")


def baidu_link(lon: float, lat: float, name: str, mode: Mode = "walk", *, web: bool = False,
               quoted: bool = False) -> str:
    """Baidu's direction URI (the app's, or with ``web`` the web page's) to a WGS 84 point (lon, lat degrees),
    written lat first with ``coord_type=wgs84``; ``quoted`` as in ``amap_link``."""
    dest = f"destination=latlng:{lat:.7f},{lon:.7f}|name:{name if quoted else _name(name)}"
    if web:
        return (f"https://api.map.baidu.com/direction?{dest}&coord_type=wgs84&mode={_BAIDU_MODE[mode]}"
                f"&output=html&src={BAIDU_SRC}")
    return f"baidumap://map/direction?{dest}&coord_type=wgs84&mode={_BAIDU_MODE[mode]}&src={BAIDU_SRC}"


def geo_link(lon: float, lat: float, name: str, *, quoted: bool = False) -> str:
    """The ``geo:`` URI (WGS 84, lat first) with the name as the point's label; ``quoted`` as in ``amap_link``."""
    return f"geo:{lat:.7f},{lon:.7f}?q={lat:.7f},{lon:.7f}({name if quoted else _name(name)})"


CACHE_SIZE = 65_536
"""How many stations' links are kept (a rider's search asks for the same stations again and again), the least
recently asked dropped first."""


@functools.lru_cache(maxsize=CACHE_SIZE)
def _links(x: float, y: float, name: str) -> dict[str, str]:
    gx, gy = wgs84_to_gcj02_point(x, y)
    q = _name(name)
    return {"amap_walk": amap_link(gx, gy, q, "walk", quoted=True),
            "amap_ride": amap_link(gx, gy, q, "ride", quoted=True),
            "baidu_walk": baidu_link(x, y, q, "walk", quoted=True),
            "baidu_ride": baidu_link(x, y, q, "ride", quoted=True),
            "baidu_web": baidu_link(x, y, q, "walk", web=True, quoted=True),
            "geo": geo_link(x, y, q, quoted=True)}


def nav_links_many(lon: Sequence[float], lat: Sequence[float], names: Sequence[str]) -> list[dict[str, str]]:
    """The links (``NAV_KEYS``) of each station at WGS 84 (lon[i], lat[i]) degrees named names[i]: the ones made
    before from the cache, the others made now (a few microseconds each: one GCJ-02 point in plain floats, the
    name encoded once). The dicts are shared, not to be changed."""
    return [_links(float(x), float(y), name) for x, y, name in zip(lon, lat, names, strict=True)]


def nav_links(lon: float, lat: float, name: str) -> dict[str, str]:
    """The links (``NAV_KEYS``) of one station at WGS 84 (lon, lat) degrees."""
    return nav_links_many([lon], [lat], [name])[0]
