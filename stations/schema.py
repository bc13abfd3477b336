"""The one shape of a station, from the database row to the API's GeoJSON.

``STATION_COLUMNS`` is the select list every station query reads and ``station_from_row`` the one function that
turns such a row into a ``Station`` (the registry, the async nearest search and the in-process index all use
them, so their answers have the same keys in the same order). ``station_feature`` and ``station_collection`` make
the API's GeoJSON of stations as plain dicts (the nearest-station hot path serialises them with orjson, with no
model validation per request); the pydantic models below document that same shape for OpenAPI and are the JSON
routes' response models.

Coordinates are lon/lat degrees (WGS 84 as stored; the API may give them in GCJ-02 or BD-09); distances are
geodesic metres on the WGS 84 ellipsoid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, NotRequired

import numpy as np
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from yizhan.geo.coords import from_wgs84
from yizhan.stations import vocab
from yizhan.stations.navigation import nav_links_many

Coord = Literal["wgs84", "gcj02", "bd09"]

STATION_COLUMNS = ("s.external_id, s.name, s.kind, s.host, s.host_name, s.address, s.township, s.amenities, "
                   "s.opening_hours, s.opening_hours_text, s.seats, s.stars, s.status, s.phone, "
                   "ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat, a.name AS area")
"""The select list of a station (``stations s JOIN areas a``), in the order ``station_from_row`` reads."""
N_COLUMNS = 17
"""How many columns ``STATION_COLUMNS`` selects: a query's own columns follow them."""
LON_AT, LAT_AT, AREA_AT = 14, 15, 16
"""Where lon, lat (WGS 84 degrees) and the area's name are within ``STATION_COLUMNS``."""


class Station(TypedDict):
    """A station as the registry's searches and look-ups give it (lon/lat WGS 84 degrees, metres)."""

    name: str
    kind: str
    host: str | None
    host_name: str | None  # the host as written (中国石化五道口加油站); ``host`` is its type code
    address: str | None
    township: str | None
    amenities: list[str]
    opening_hours: str | None
    opening_hours_text: str | None  # the hours as written when not the OSM rule (周一至周五 09:00-18:00)
    seats: int | None
    stars: int | None
    status: str
    phone: str | None
    lon: float
    lat: float
    area: str
    id: str
    distance_m: NotRequired[float]  # geodesic metres from the searched point (nearest searches)
    network_distance_m: NotRequired[float]  # metres along the streets (search by=network)
    route: NotRequired[list[list[float]]]  # the way there along the streets: [lon, lat] pairs, WGS 84


def station_from_row(row: Sequence[Any], distance_m: float | None = None) -> Station:
    """A ``Station`` from a row whose first columns are ``STATION_COLUMNS``; ``distance_m`` (metres) is rounded
    to centimetres."""
    (ext, name, kind, host, host_name, address, township, amenities, hours, hours_text, seats, stars, status, phone,
     lon, lat, area) = row[:N_COLUMNS]
    st: Station = {"name": name, "kind": kind, "host": host, "host_name": host_name, "address": address,
                   "township": township, "amenities": list(amenities or []), "opening_hours": hours,
                   "opening_hours_text": hours_text, "seats": seats, "stars": stars, "status": status,
                   "phone": phone, "lon": lon, "lat": lat, "area": area, "id": ext}
    if distance_m is not None:
        st["distance_m"] = round(float(distance_m), 2)
    return st


# --- the API's GeoJSON: plain dicts, and the models documenting them ---------------------------------------------


class PointGeometry(BaseModel):
    """A GeoJSON Point: [lon, lat] degrees in the answer's coordinate system, 7 decimals."""

    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2, description="[lon, lat], degrees")


class LineStringGeometry(BaseModel):
    """A GeoJSON LineString: [lon, lat] pairs (degrees) in the answer's coordinate system, 7 decimals."""

    type: Literal["LineString"]
    coordinates: list[list[float]] = Field(description="[[lon, lat], ...], degrees")


class NavLinks(BaseModel):
    """Navigation links to a station, each in the coordinate system its app expects."""

    amap_walk: str = Field(description="高德步行 Amap walking (its route URI, GCJ-02)")
    amap_ride: str = Field(description="高德骑行 Amap riding (GCJ-02)")
    baidu_walk: str = Field(description="百度步行 Baidu app walking (coord_type=wgs84)")
    baidu_ride: str = Field(description="百度骑行 Baidu app riding (coord_type=wgs84)")
    baidu_web: str = Field(description="百度网页 Baidu web page, walking (coord_type=wgs84)")
    geo: str = Field(description="geo: URI (WGS 84), any map app")


class StationPublic(BaseModel):
    """A station's properties in the API: the registry's fields, its kind's Chinese label, and in nearest
    searches the distance to it."""

    name: str = Field(description="名称 Name")
    kind: str = Field(description=f"类型 Kind: {', '.join(vocab.KINDS)}")
    host: str | None = Field(description=f"承办单位类型 Host type: {', '.join(vocab.HOSTS)}")
    host_name: str | None = Field(None, description="承办单位名称 The host's name as the registry writes it "
                                                    "(中国石化五道口加油站); empty when only its type is known")
    address: str | None = Field(description="地址 Address")
    township: str | None = Field(description="街道乡镇 Township")
    amenities: list[str] = Field(description=f"设施 Amenities: any of {', '.join(vocab.AMENITIES)}")
    opening_hours: str | None = Field(description="开放时间 Opening hours (OpenStreetMap syntax)")
    opening_hours_text: str | None = Field(None, description="开放时间说明 The opening hours as the registry wrote "
                                                             "them (周一至周五 09:00-18:00), when that was not "
                                                             "the OpenStreetMap rule itself")
    seats: int | None = Field(description="座位数 Seats")
    stars: int | None = Field(description="星级 Stars")
    status: str = Field(description=f"状态 Status: {', '.join(vocab.STATUSES)}")
    phone: str | None = Field(None, description="联系电话 The station's phone number as written "
                                                "(010-62345678, 138 0013 8000)")
    area: str = Field(description="所属区域 Area")
    id: str = Field(description="编号 Registry id")
    distance_m: float | None = Field(None, description="直线距离 Geodesic distance from the searched point, metres "
                                                       "(nearest searches only)")
    kind_label: str = Field(description="类型名称 The kind's Chinese label")
    network_distance_m: float | None = Field(None, description="步行/骑行距离 Distance along the streets, metres "
                                                               "(by=network only)")
    route: LineStringGeometry | None = Field(None, description="路线 The way along the streets (by=network only)")
    open_now: bool | None = Field(None, description="正在营业 Open at the request time (or open_at); false when "
                                                    "the hours are unknown")
    opens_at: str | None = Field(None, description="下次开放 When closed: when it opens next, local time ISO 8601 "
                                                   "with the offset (2026-12-02T08:00:00+08:00); null if not within "
                                                   "a year")
    closes_at: str | None = Field(None, description="关闭时间 When open: when it closes, local time ISO 8601; null "
                                                    "when it does not within a year (24/7)")
    hours_zh: str | None = Field(None, description="开放时间（中文） The opening hours said in Chinese "
                                                   "(每天 07:00–23:00; 24小时开放)")
    status_zh: str | None = Field(None, description="营业状态 营业至 20:00 / 已关闭 · 明天 08:00 开放 / 24小时营业 / "
                                                    "不定时 · 请先电话确认")
    status_en: str | None = Field(None, description="The state in English: open until 20:00 / closed · opens "
                                                    "tomorrow 08:00 / open 24 hours / hours vary · call ahead")
    walk_min: int | None = Field(None, description="步行分钟 Minutes on foot along the streets (by=network), at "
                                                   "the answer's speeds.walk_kmh")
    ride_min: int | None = Field(None, description="骑行分钟 Minutes by bike or e-bike along the streets "
                                                   "(by=network), at speeds.ride_kmh")
    straight_walk_min: int | None = Field(None, description="直线步行分钟 Minutes on foot over the straight-line "
                                                            "distance (a lower bound; by=straight)")
    straight_ride_min: int | None = Field(None, description="直线骑行分钟 Minutes by bike over the straight-line "
                                                            "distance (a lower bound; by=straight)")
    nav: NavLinks | None = Field(None, description="导航 One-tap navigation links")


class StationFeature(BaseModel):
    """A station as a GeoJSON Feature (``id`` = the registry id)."""

    type: Literal["Feature"]
    id: str
    geometry: PointGeometry
    properties: StationPublic


class StationCollection(BaseModel):
    """Stations as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"]
    features: list[StationFeature]


class StationPage(StationCollection):
    """A page of the registry: ``total`` stations match, ``features`` holds ``limit`` of them from ``offset``."""

    total: int
    limit: int
    offset: int


class NearestEcho(BaseModel):
    """The nearest search as understood (``open_at`` ISO 8601; ``profile`` with by=network only; ``at`` the
    instant the hours are said for, local ISO 8601)."""

    lon: float
    lat: float
    coord: Coord
    k: int
    amenity: list[str]
    open_at: str | None
    by: Literal["straight", "network"]
    profile: Literal["walk", "bike"] | None = None
    open_now: bool = False
    open_24h: bool = False
    max_distance_m: float | None = None
    at: str | None = None


class Speeds(BaseModel):
    """The speeds the minutes assume, km/h, and what distance they cover (``streets`` or ``straight``)."""

    walk_kmh: float
    ride_kmh: float
    along: Literal["streets", "straight"]


class Reason(BaseModel):
    """Why nothing is listed: ``none_within`` (no station within max_distance_m), ``none_open`` (none open) or
    ``none_all_day`` (none within it open 24 hours)."""

    code: Literal["none_within", "none_open", "none_all_day"]
    zh: str = Field(description="附近 3 公里内没有驿站 / 现在没有开放的驿站 · 最近的 07:00 开放")
    en: str


class NearestAnswer(StationCollection):
    """The nearest stations, nearest first, and the search they answer; when empty, the ``reason`` and the
    station that would help: ``nearest_beyond`` the limit, or ``next_open`` (opening soonest)."""

    query: NearestEcho
    speeds: Speeds | None = None
    reason: Reason | None = None
    nearest_beyond: StationFeature | None = None
    next_open: StationFeature | None = None


def _rounded(x: Iterable[Any], y: Iterable[Any]) -> list[list[float]]:
    return [[round(float(a), 7), round(float(b), 7)] for a, b in zip(x, y, strict=True)]


def station_feature(st: Station, coord: str = "wgs84", extra: dict[str, Any] | None = None,
                    nav: dict[str, str] | None = None) -> dict[str, Any]:
    """The GeoJSON Feature of ``st`` (a ``StationFeature`` as a plain dict): the point and the route in ``coord``
    (``wgs84``, ``gcj02`` or ``bd09``), the properties of ``StationPublic``, then ``extra`` (hours, minutes)
    and the ``nav`` links. ``st`` is left unchanged."""
    props: dict[str, Any] = dict(st)
    lon, lat = float(props.pop("lon")), float(props.pop("lat"))
    if coord == "wgs84":
        point = [round(lon, 7), round(lat, 7)]
    else:
        x, y = from_wgs84(np.array([lon]), np.array([lat]), coord)
        point = _rounded(x, y)[0]
    props["kind_label"] = vocab.label("kind", st["kind"])
    if "route" in st and coord == "wgs84":  # the street search gives it in WGS 84, rounded to 1e-7 degrees
        props["route"] = {"type": "LineString", "coordinates": st["route"]}
    elif "route" in st:
        path = np.asarray(st["route"], dtype=float).reshape(-1, 2)
        rx, ry = from_wgs84(path[:, 0], path[:, 1], coord)
        props["route"] = {"type": "LineString", "coordinates": _rounded(rx, ry)}
    if extra:
        props.update(extra)
    if nav is not None:
        props["nav"] = nav
    return {"type": "Feature", "id": st["id"], "geometry": {"type": "Point", "coordinates": point},
            "properties": props}


def station_collection(stations: Iterable[Station], coord: str = "wgs84",
                       extras: Sequence[dict[str, Any]] | None = None, *, nav: bool = False,
                       **members: Any) -> dict[str, Any]:
    """The GeoJSON FeatureCollection of ``stations`` in ``coord`` (a ``StationCollection`` as a plain dict), with
    each station's ``extras`` (same order) and with ``nav`` its navigation links among its properties, and
    ``members`` added after the features (``total``, ``query``...)."""
    items = list(stations)
    links = rider_nav(items) if nav else [None] * len(items)
    more = extras if extras is not None else [None] * len(items)
    return {"type": "FeatureCollection",
            "features": [station_feature(s, coord, e, n) for s, e, n in zip(items, more, links, strict=True)],
            **members}


def rider_nav(stations: Sequence[Station]) -> list[dict[str, str]]:
    """The navigation links (``navigation.NAV_KEYS``) of each station, from its WGS 84 point and name."""
    return nav_links_many([s["lon"] for s in stations], [s["lat"] for s in stations], [s["name"] for s in stations])
