"""Navigation links to a station: every link decoded back (its URL parsed, its coordinate converted from the
system its app reads back to WGS 84) lands within 1 m of the station, names survive the encoding, and the API's
answers carry such links."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from api_data import STATIONS, Q
from pyproj import Geod

from yizhan.areas import AreaInfo
from yizhan.geo.coords import to_wgs84
from yizhan.stations.navigation import NAV_KEYS, nav_links, nav_links_many

GEOD = Geod(ellps="WGS84")
BAIDU_COORD = {"wgs84": "wgs84", "gcj02": "gcj02", "bd09ll": "bd09"}


def decode(link: str) -> tuple[float, float, str, str | None]:
    """(lon, lat) in WGS 84 degrees, the name and the travel mode a navigation link carries, read as its app
    reads it."""
    parts = urlsplit(link)
    if parts.scheme == "geo":
        lat, lon = (float(v) for v in parts.path.split(","))
        q = unquote(parts.query.removeprefix("q="))
        m = re.fullmatch(r"(-?[\d.]+),(-?[\d.]+)\((.*)\)", q)
        assert m is not None, link
        assert (float(m[1]), float(m[2])) == (lat, lon), link  # the label's point is the same point
        return lon, lat, m[3], None
    query = parse_qs(parts.query, keep_blank_values=True)
    if parts.netloc == "uri.amap.com":
        assert parts.path == "/navigation" and query["callnative"] == ["1"] and query["src"] == ["yizhan"], link
        assert "coordinate" not in query, link  # not a parameter of Amap's route URI: its points are GCJ-02
        x, y, name = query["to"][0].split(",", 2)
        wlon, wlat = to_wgs84(float(x), float(y), "gcj02")
        return float(wlon), float(wlat), name, query["mode"][0]
    assert parts.scheme == "baidumap" or parts.netloc == "api.map.baidu.com", link
    assert query["src"][0], link
    dest = query["destination"][0]
    m = re.fullmatch(r"latlng:(-?[\d.]+),(-?[\d.]+)\|name:(.*)", dest)
    assert m is not None, link
    wlon, wlat = to_wgs84(float(m[2]), float(m[1]), BAIDU_COORD[query["coord_type"][0]])
    return float(wlon), float(wlat), m[3], query["mode"][0]


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


@pytest.mark.parametrize(("lon", "lat", "name"), [
    (116.3185, 39.9990, "驿站 五道口"),
    (121.4737, 31.2304, "户外劳动者驿站（南京东路）"),
    (87.6168, 43.8256, "A&B, 1|2 (west) 100%"),  # every separator the links use, in a name
    (113.2644, 23.1291, ""),
])
def test_every_link_decodes_back_to_the_station(lon: float, lat: float, name: str) -> None:
    links = nav_links(lon, lat, name)
    assert tuple(links) == NAV_KEYS
    modes = {"amap_walk": "walk", "amap_ride": "ride", "baidu_walk": "walking", "baidu_ride": "riding",
             "baidu_web": "walking", "geo": None}
    for key, link in links.items():
        x, y, said, mode = decode(link)
        assert metres((x, y), (lon, lat)) < 1.0, (key, link)
        assert said == (name or "驿站"), (key, link)
        assert mode == modes[key], (key, link)
        assert " " not in link and all(ord(c) < 128 for c in link), link  # the name is percent-encoded


def test_amap_carries_gcj02_and_baidu_states_wgs84() -> None:
    """Amap reads GCJ-02: its link's numbers are the shifted point (hundreds of metres in Beijing); Baidu's state
    ``coord_type=wgs84`` and carry the WGS 84 numbers, as does ``geo:``."""
    lon, lat = 116.3185, 39.9990
    links = nav_links(lon, lat, "x")
    to = parse_qs(urlsplit(links["amap_walk"]).query)["to"][0].split(",")
    assert 100 < metres((float(to[0]), float(to[1])), (lon, lat)) < 1000
    assert "latlng:39.9990000,116.3185000" in unquote(links["baidu_walk"])
    assert "coord_type=wgs84" in links["baidu_web"] and "output=html" in links["baidu_web"]
    assert links["geo"].startswith("geo:39.9990000,116.3185000?q=39.9990000,116.3185000(")


def test_many_equals_one_at_a_time() -> None:
    pts = [(116.3185, 39.9990, "a"), (116.32, 40.0, "b"), (2.35, 48.85, "c")]  # Paris: GCJ-02 is WGS 84 there
    many = nav_links_many([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts])
    assert many == [nav_links(*p) for p in pts]
    assert nav_links_many([], [], []) == []


def test_api_answers_carry_links_to_each_station(api: httpx.Client, seeded: AreaInfo) -> None:
    for coord in ("wgs84", "gcj02", "bd09"):  # the links do not depend on the answer's coordinate system
        r = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "k": 50, "coord": coord})
        assert r.status_code == 200, r.text
        feats = r.json()["features"]
        assert feats
        for f in feats:
            lon, lat = STATIONS[f["id"]][:2]
            for key, link in f["properties"]["nav"].items():
                x, y, name, _ = decode(link)
                assert metres((x, y), (lon, lat)) < 1.0, (coord, key, link)
                assert name == f["properties"]["name"]
    one = api.get("/stations/N-247").json()["properties"]["nav"]
    assert all(metres(decode(v)[:2], STATIONS["N-247"][:2]) < 1.0 for v in one.values())
