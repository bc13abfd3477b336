"""A rider's nearest-station search: which of the four ways answers it.

1. The in-process station index (``memindex``), while it is loaded and fresh: no database round trip.
2. Otherwise one statement on the async pool (``nearest.nearest_stations_async``).
3. Along the streets (``by="network"``), the street table when it can answer from memory alone, on the event loop
   (under a millisecond; ``source`` ``table``).
4. Searches the others cannot answer run in a worker thread on the engine: with ``open_at`` (opening hours
   are checked in Python) and the exact search along the streets (CPU-bound routing).

Then the answer a rider's page shows (``rider_answer``): the stations within ``max_distance_m`` metres, each
with its hours now (``hours_said``: open now, the next change as local ISO 8601, the rule and the state in Chinese
and English) and its minutes on foot and by bike; and instead of an empty list, the reason and the station that
would help (the nearest beyond the limit, or the one opening soonest).

Points are (lon, lat) WGS 84 degrees; distances are metres (``distance_m`` geodesic; ``network_distance_m``
along the streets); speeds km/h; times local wall-clock in the settings' zone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import anyio

from yizhan.db.lifecycle import Database
from yizhan.settings import RIDE_KMH, WALK_KMH, Settings
from yizhan.stations.hours import hours_now, local_time
from yizhan.stations.hours_zh import hours_zh, when_en, when_zh
from yizhan.stations.memindex import IndexKeeper
from yizhan.stations.nearest import nearest_stations_async
from yizhan.stations.registry import StationFilter, nearest_stations
from yizhan.stations.schema import Station

StreetSearch = Callable[..., Sequence[Mapping[str, Any]]]
"""``along_streets(engine, lon, lat, *, k, flt, profile, settings)``: the ``k`` stations passing ``flt`` nearest
along the ``profile`` streets (``coverage.routing.nearest_along_streets``): each a ``Station`` with
``network_distance_m`` and ``route``."""


TableSearch = Callable[..., Sequence[Mapping[str, Any]] | None]
"""``from_table(engine, lon, lat, *, k, flt, profile, settings)``: what ``along_streets`` answers when the street
table can give it from memory alone (``coverage.routing.nearest_from_table``), else None."""


@dataclass(frozen=True)
class NearestSearch:
    """What a rider asks: the ``k`` active stations nearest to (lon, lat) (WGS 84 degrees) with all ``amenities``,
    open at ``open_at`` (naive: local time), with ``all_day`` open round the clock, of ``kind``, in ``area``;
    ``by`` straight line or along the ``profile`` streets."""

    lon: float
    lat: float
    k: int = 5
    amenities: list[str] | None = None
    open_at: datetime | None = None
    kind: str | None = None
    area: str | None = None
    by: Literal["straight", "network"] = "straight"
    profile: Literal["walk", "bike"] = "walk"
    max_distance_m: float | None = None  # rider_answer: farther stations are not listed
    all_day: bool = False


@dataclass(frozen=True)
class NearestFound:
    """The stations found, nearest first, and which way answered: ``index``, ``table`` (the street table, in
    memory) or ``database``."""

    stations: list[Station]
    source: Literal["index", "table", "database"]


def station_index_factory(settings: Settings) -> Callable[[str], IndexKeeper] | None:
    """What makes the app's in-process station index for a database URL (None when
    ``YIZHAN_NEAREST_INDEX_TTL_S`` is 0: every search asks the database)."""
    ttl = settings.nearest_index_ttl_s
    if ttl <= 0:
        return None
    return lambda url: IndexKeeper(url, ttl)


async def find_nearest(db: Database[IndexKeeper], q: NearestSearch, *, settings: Settings,
                       along_streets: StreetSearch, from_table: TableSearch | None = None) -> NearestFound:
    """Answer ``q`` the cheapest way that gives the exact answer (see the module's docstring)."""
    if q.by == "straight" and q.open_at is None and not q.all_day:  # the hot path: the index, else one statement
        keeper = db.station_index
        index = keeper.current() if keeper is not None else None
        found = (index.nearest(q.lon, q.lat, k=q.k, amenities=q.amenities, kind=q.kind, area=q.area)
                 if index is not None else None)
        if found is not None:
            return NearestFound(found, "index")
        found = await nearest_stations_async(await db.pool(), q.lon, q.lat, k=q.k, amenities=q.amenities,
                                             kind=q.kind, area=q.area)
        return NearestFound(found, "database")
    if q.by == "network" and from_table is not None and (eng := db.made_engine) is not None:
        flt = StationFilter(q.amenities, q.open_at, q.kind, q.area, settings.timezone, q.all_day)
        quick = from_table(eng, q.lon, q.lat, k=q.k, flt=flt, profile=q.profile, settings=settings)
        if quick is not None:  # from memory in under a millisecond: no thread hop, nothing queued behind it
            return NearestFound(cast(list[Station], list(quick)), "table")
    # opening hours are checked in Python, street routing is CPU work: in a worker thread
    found = await anyio.to_thread.run_sync(_search_on_engine, db, q, settings, along_streets)
    return NearestFound(found, "database")


def _search_on_engine(db: Database[IndexKeeper], q: NearestSearch, settings: Settings,
                      along_streets: StreetSearch) -> list[Station]:
    if q.by == "network":  # reads in short connections of its own: no transaction stays open while it routes
        flt = StationFilter(q.amenities, q.open_at, q.kind, q.area, settings.timezone, q.all_day)
        found = along_streets(db.engine(), q.lon, q.lat, k=q.k, flt=flt, profile=q.profile, settings=settings)
        return cast(list[Station], list(found))
    with db.engine().connect() as conn:
        return nearest_stations(conn, q.lon, q.lat, k=q.k, amenities=q.amenities, open_at=q.open_at, kind=q.kind,
                                area=q.area, tz=settings.timezone, all_day=q.all_day)


# --- the rider's answer -------------------------------------------------------------------------------------------

NEXT_OPEN_POOL = 20
"""How many of the nearest stations (within the limit, hours aside) ``rider_answer`` looks at for the one opening
soonest when none is open."""


@dataclass(frozen=True)
class RiderAnswer:
    """What ``GET /stations/nearest`` answers: the ``stations`` found (nearest first, within the limit), their
    ``extras`` (``hours_said`` and minutes, one dict per station), which way answered, the instant the hours are
    said for (aware, local zone), and when nothing is listed the ``reason`` with ``nearest_beyond`` or ``next_open``
    (a station and its extras)."""

    stations: list[Station]
    extras: list[dict[str, Any]]
    source: Literal["index", "table", "database"]
    at: datetime
    reason: dict[str, str] | None = None
    nearest_beyond: tuple[Station, dict[str, Any]] | None = None
    next_open: tuple[Station, dict[str, Any]] | None = None
    speeds: dict[str, Any] = field(default_factory=dict)


def _unknown_hours(text: str | None) -> dict[str, Any]:
    return {"open_now": False, "opens_at": None, "closes_at": None, "hours_zh": text or None,
            "status_zh": "开放时间未知 · 请先电话确认", "status_en": "hours unknown · call ahead"}


@lru_cache(maxsize=16384)
def _hours_at_minute(rule: str, minute: datetime, tz: str) -> dict[str, Any]:
    """``hours_said`` of ``rule`` at ``minute`` (naive local, whole minute); one entry per (rule, minute, zone)."""
    now = hours_now(rule, minute, tz=tz)
    said = hours_zh(rule)
    if now is None:
        return _unknown_hours(said)
    return {"open_now": now.open_now,
            "opens_at": None if now.opens_at is None else now.opens_at.isoformat(timespec="seconds"),
            "closes_at": None if now.closes_at is None else now.closes_at.isoformat(timespec="seconds"),
            "hours_zh": "24小时开放" if rule.strip() == "24/7" else said,
            "status_zh": now.said_zh(), "status_en": now.said_en()}


def hours_said(rule: str | None, at: datetime, *, tz: str, text: str | None = None) -> dict[str, Any]:
    """A station's hours at ``at`` (aware, or naive local in ``tz``), to the minute, as the API gives them:
    ``open_now`` (false when unknown), ``opens_at`` / ``closes_at`` (the next change, local ISO 8601 with the
    offset, or null), ``hours_zh`` (the rule in Chinese; without a rule the registry's own ``text``),
    ``status_zh`` / ``status_en`` (营业至 20:00 / open until 20:00 ...). Cached per (rule, minute): the dict
    returned is shared, not to be changed."""
    return _said(rule, _minute(at, tz), tz, text)


def _minute(at: datetime, tz: str) -> datetime:
    """``at`` as naive local time in ``tz``, to the whole minute: the key ``hours_said`` is cached by."""
    return local_time(at, tz).replace(second=0, microsecond=0)


def _said(rule: str | None, minute: datetime, tz: str, text: str | None) -> dict[str, Any]:
    return _hours_at_minute(rule, minute, tz) if rule else _unknown_hours(text)


def minutes(distance_m: float, kmh: float) -> int:
    """Whole minutes (rounded up) to cover ``distance_m`` metres at ``kmh`` km/h."""
    return math.ceil(distance_m / (kmh * 1000 / 60) - 1e-9)


def speeds(by: str) -> dict[str, Any]:
    """The speeds the minutes assume (km/h) and whether the distance is along the streets or straight."""
    return {"walk_kmh": WALK_KMH, "ride_kmh": RIDE_KMH, "along": "streets" if by == "network" else "straight"}


def rider_extras(stations: Sequence[Station], at: datetime, *, tz: str) -> list[dict[str, Any]]:
    """Each station's ``hours_said`` at ``at`` and minutes from the searched point: ``walk_min`` / ``ride_min``
    along the streets (stations with ``network_distance_m``), otherwise ``straight_walk_min`` /
    ``straight_ride_min`` over the straight-line ``distance_m`` (a lower bound); nothing for a look-up without a
    point."""
    out = []
    minute = _minute(at, tz)  # once for all the stations
    for st in stations:
        said = _said(st["opening_hours"], minute, tz, st["opening_hours_text"])
        if "network_distance_m" in st:
            d = st["network_distance_m"]
            out.append({**said, "walk_min": minutes(d, WALK_KMH), "ride_min": minutes(d, RIDE_KMH)})
        elif "distance_m" in st:
            d = st["distance_m"]
            out.append({**said, "straight_walk_min": minutes(d, WALK_KMH), "straight_ride_min": minutes(d, RIDE_KMH)})
        else:
            out.append(dict(said))
    return out


def _distance(st: Station) -> float:
    return float(st.get("network_distance_m", st.get("distance_m", 0.0)))


def distance_zh_en(metres: float) -> tuple[str, str]:
    """A limit as a rider reads it: 3 公里 / 3 km, 800 米 / 800 m."""
    if metres >= 1000:
        km = f"{metres / 1000:.1f}".removesuffix(".0")
        return f"{km} 公里", f"{km} km"
    return f"{metres:.0f} 米", f"{metres:.0f} m"


async def rider_answer(db: Database[IndexKeeper], q: NearestSearch, *, settings: Settings,
                       along_streets: StreetSearch, from_table: TableSearch | None = None, open_now: bool = False,
                       now: datetime | None = None) -> RiderAnswer:
    """``find_nearest`` as a rider's page needs it (see the module's docstring). ``q.open_at`` filters to stations
    open then and is the instant their hours are said for (else ``now``, default the current time in the
    settings' zone); ``open_now`` filters to stations open ``now`` (``q.open_at`` then ignored);
    ``q.max_distance_m`` (default the settings' ``max_distance_m``) drops farther stations,
    measured along the streets for ``by=network``.

    Nothing left: ``none_within`` with the nearest station beyond the limit (``nearest_beyond``) when no station
    passing the other filters lies within it; else, when ``q.all_day`` emptied the list, ``none_all_day``; else (an
    open-at filter emptied it) ``none_open`` with the one opening soonest among the nearest within the limit
    (``next_open``)."""
    tz = settings.timezone
    at = q.open_at if q.open_at is not None and not open_now else (now or datetime.now(ZoneInfo(tz)))
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(tz))
    if open_now:
        q = replace(q, open_at=at)
    limit = q.max_distance_m if q.max_distance_m is not None else settings.max_distance_m
    found = await find_nearest(db, q, settings=settings, along_streets=along_streets, from_table=from_table)
    # nearest first: all are within the limit when the last one is
    within = (found.stations if not found.stations or _distance(found.stations[-1]) <= limit
              else [s for s in found.stations if _distance(s) <= limit])
    if within:
        return RiderAnswer(within, rider_extras(within, at, tz=tz), found.source, at, speeds=speeds(q.by))
    zh, en = distance_zh_en(limit)
    if q.open_at is not None or q.all_day:  # the hours emptied the list: is anything there at all?
        anyhow = await find_nearest(db, replace(q, open_at=None, all_day=False, k=max(q.k, NEXT_OPEN_POOL)),
                                    settings=settings, along_streets=along_streets, from_table=from_table)
        near = [s for s in anyhow.stations if _distance(s) <= limit]
        if near and q.all_day:
            return RiderAnswer([], [], found.source, at, {"code": "none_all_day",
                                                         "zh": f"附近 {zh}内没有24小时开放的驿站",
                                                         "en": f"no station open 24 hours within {en}"},
                               speeds=speeds(q.by))
        if near:
            reason, soonest = _none_open(near, at, tz, said_now=open_now)
            return RiderAnswer([], [], found.source, at, reason, next_open=soonest, speeds=speeds(q.by))
        found = anyhow
    beyond = found.stations[0] if found.stations else None
    return RiderAnswer([], [], found.source, at, {"code": "none_within", "zh": f"附近 {zh}内没有驿站",
                                                 "en": f"no station within {en}"},
                       nearest_beyond=None if beyond is None else (beyond, rider_extras([beyond], at, tz=tz)[0]),
                       speeds=speeds(q.by))


def _none_open(near: list[Station], at: datetime, tz: str, *,
               said_now: bool) -> tuple[dict[str, str], tuple[Station, dict[str, Any]] | None]:
    """The ``none_open`` reason and the station of ``near`` opening soonest (the nearer of equals), if any."""
    extras = rider_extras(near, at, tz=tz)
    opening = [(datetime.fromisoformat(e["opens_at"]), i) for i, e in enumerate(extras) if e["opens_at"]]
    local = local_time(at, tz)
    asked_zh = "现在" if said_now else f"{local.month}月{local.day}日 {local:%H:%M} "
    asked_en = "now" if said_now else f"at {local:%d %b %H:%M}"
    if not opening:
        return {"code": "none_open", "zh": f"{asked_zh}没有开放的驿站", "en": f"no station open {asked_en}"}, None
    t, i = min(opening)
    t = t.replace(tzinfo=None)
    zh, en = f"{when_zh(t, local)}{t:%H:%M}", f"{when_en(t, local)}{t:%H:%M}"
    return ({"code": "none_open", "zh": f"{asked_zh}没有开放的驿站 · 最近的 {zh} 开放",
             "en": f"no station open {asked_en} · the nearest opens {en}"}, (near[i], extras[i]))
