"""What a station's own page shows: the registry's station as the API gives it, with its hours now and in
Chinese, its amenities labelled and its phone number made dialable.

Everything here is plain data for a template that escapes every text; links are kept only when their scheme is
one the page may open (``http(s)``, ``geo``, the map apps' own), so no ``javascript:`` URL from data reaches a page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from yizhan.stations import vocab
from yizhan.stations.hours import hours_now
from yizhan.stations.hours_zh import hours_zh

SAFE_LINK = re.compile(r"^(https?|geo|amapuri|androidamap|iosamap|baidumap|bdapp):", re.IGNORECASE)
"""Schemes a navigation link may have on a page."""
NAV_APPS: tuple[tuple[str, str, str], ...] = (
    ("amap_walk", "高德 步行", "Amap, walking"), ("amap_ride", "高德 骑行", "Amap, riding"),
    ("baidu_walk", "百度 步行", "Baidu, walking"), ("baidu_ride", "百度 骑行", "Baidu, riding"),
    ("baidu_web", "百度网页", "Baidu web page"), ("geo", "其他地图", "Other map app"))
"""The navigation links a feature's ``nav`` may carry: key, Chinese and English button labels, in display order."""


@dataclass(frozen=True)
class NavLink:
    """One navigation button: the app's name in Chinese and English, and its link."""

    zh: str
    en: str
    href: str


@dataclass(frozen=True)
class StationView:
    """A station's page: texts as they are shown (the template escapes them)."""

    id: str
    name: str
    kind_zh: str
    kind_en: str
    lon: float
    """WGS 84 longitude, degrees."""
    lat: float
    """WGS 84 latitude, degrees."""
    host: str | None
    address: str | None
    phone: str | None
    tel: str | None
    """The phone number as a ``tel:`` link, or None when it has no digits."""
    hours_zh: str | None
    hours_text: str | None
    open_now: bool | None
    """Open at the page's time; None when the hours are not known."""
    status_zh: str | None
    status_en: str | None
    amenities: list[tuple[str, str, str]] = field(default_factory=list)
    """(code, Chinese label, English label) of each amenity."""
    nav: list[NavLink] = field(default_factory=list)


def tel_link(phone: str | None) -> str | None:
    """``tel:`` link of a phone number as written (``010-6234 5678`` -> ``tel:010-62345678``); None when it has
    no digits. Only digits, ``+``, ``-`` and ``,`` (pause) are kept."""
    if not phone:
        return None
    first = re.split(r"[/;、，,]| 或 ", phone.strip())[0]
    kept = re.sub(r"[^0-9+\-]", "", first)
    return f"tel:{kept}" if re.search(r"\d", kept) else None


def nav_links(nav: Any) -> list[NavLink]:
    """The navigation buttons of a feature's ``nav`` member ({amap, baidu, geo} links), in display order; links
    with another scheme, and a missing ``nav``, give none."""
    if not isinstance(nav, dict):
        return []
    return [NavLink(zh, en, str(nav[key])) for key, zh, en in NAV_APPS
            if isinstance(nav.get(key), str) and SAFE_LINK.match(nav[key])]


def station_view(feature: dict[str, Any], *, at: datetime, tz: str) -> StationView:
    """The page of a station from its API feature (``station_feature`` in WGS 84) at the instant ``at``
    (aware, or naive local time in ``tz``)."""
    p = feature["properties"]
    lon, lat = feature["geometry"]["coordinates"]
    rule = p.get("opening_hours")
    now = hours_now(rule, at, tz=tz)
    return StationView(
        id=p["id"], name=p["name"], kind_zh=vocab.label("kind", p["kind"]), kind_en=vocab.label_en("kind", p["kind"]),
        lon=float(lon), lat=float(lat), host=p.get("host_name") or (vocab.label("host", p["host"]) if p.get("host")
                                                                     else None),
        address=p.get("address"), phone=p.get("phone"), tel=tel_link(p.get("phone")),
        hours_zh=p.get("hours_zh") or (hours_zh(rule) if rule else None), hours_text=p.get("opening_hours_text"),
        open_now=None if now is None or now.unknown else now.open_now,
        status_zh=p.get("status_zh") or (now.said_zh() if now else None),
        status_en=p.get("status_en") or (now.said_en() if now else None),
        amenities=[(a, vocab.label("amenity", a), vocab.label_en("amenity", a)) for a in p.get("amenities") or []],
        nav=nav_links(p.get("nav")))
