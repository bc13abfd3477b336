"""A rider's nearest-station search: which of the three ways answers it.

1. The in-process station index (``memindex``), while it is loaded and fresh: no database round trip.
2. Otherwise one statement on the async pool (``nearest.nearest_stations_async``).
3. Searches the first two cannot answer run in a worker thread on the engine: with ``open_at`` (opening hours
   are checked in Python) and along the streets (``by="network"``, CPU-bound routing).

Points are (lon, lat) WGS 84 degrees; distances are metres (``distance_m`` geodesic; ``network_distance_m``
along the streets).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

import anyio

from yizhan.db.lifecycle import Database
from yizhan.settings import Settings
from yizhan.stations.memindex import IndexKeeper
from yizhan.stations.nearest import nearest_stations_async
from yizhan.stations.registry import StationFilter, nearest_stations
from yizhan.stations.schema import Station

StreetSearch = Callable[..., Sequence[Mapping[str, Any]]]
"""``along_streets(engine, lon, lat, *, k, flt, profile, settings)``: the ``k`` stations passing ``flt`` nearest
along the ``profile`` streets (``coverage.routing.nearest_along_streets``): each a ``Station`` with
``network_distance_m`` and ``route``."""


@dataclass(frozen=True)
class NearestSearch:
    """What a rider asks: the ``k`` active stations nearest to (lon, lat) (WGS 84 degrees) with all ``amenities``,
    open at ``open_at`` (naive: local time), of ``kind``, in ``area``; ``by`` straight line or along the
    ``profile`` streets."""

    lon: float
    lat: float
    k: int = 5
    amenities: list[str] | None = None
    open_at: datetime | None = None
    kind: str | None = None
    area: str | None = None
    by: Literal["straight", "network"] = "straight"
    profile: Literal["walk", "bike"] = "walk"


@dataclass(frozen=True)
class NearestFound:
    """The stations found, nearest first, and which way answered: ``index`` or ``database``."""

    stations: list[Station]
    source: Literal["index", "database"]


def station_index_factory(settings: Settings) -> Callable[[str], IndexKeeper] | None:
    """What makes the app's in-process station index for a database URL (None when
    ``YIZHAN_NEAREST_INDEX_TTL_S`` is 0: every search asks the database)."""
    ttl = settings.nearest_index_ttl_s
    if ttl <= 0:
        return None
    return lambda url: IndexKeeper(url, ttl)


async def find_nearest(db: Database[IndexKeeper], q: NearestSearch, *, settings: Settings,
                       along_streets: StreetSearch) -> NearestFound:
    """Answer ``q`` the cheapest way that gives the exact answer (see the module's docstring)."""
    if q.by == "straight" and q.open_at is None:  # the hot path: the in-process index, else one statement
        keeper = db.station_index
        index = keeper.current() if keeper is not None else None
        found = (index.nearest(q.lon, q.lat, k=q.k, amenities=q.amenities, kind=q.kind, area=q.area)
                 if index is not None else None)
        if found is not None:
            return NearestFound(found, "index")
        found = await nearest_stations_async(await db.pool(), q.lon, q.lat, k=q.k, amenities=q.amenities,
                                             kind=q.kind, area=q.area)
        return NearestFound(found, "database")
    # opening hours are checked in Python, street routing is CPU work: in a worker thread
    found = await anyio.to_thread.run_sync(_search_on_engine, db, q, settings, along_streets)
    return NearestFound(found, "database")


def _search_on_engine(db: Database[IndexKeeper], q: NearestSearch, settings: Settings,
                      along_streets: StreetSearch) -> list[Station]:
    if q.by == "network":  # reads in short connections of its own: no transaction stays open while it routes
        flt = StationFilter(q.amenities, q.open_at, q.kind, q.area, settings.timezone)
        found = along_streets(db.engine(), q.lon, q.lat, k=q.k, flt=flt, profile=q.profile, settings=settings)
        return cast(list[Station], list(found))
    with db.engine().connect() as conn:
        return nearest_stations(conn, q.lon, q.lat, k=q.k, amenities=q.amenities, open_at=q.open_at, kind=q.kind,
                                area=q.area, tz=settings.timezone)
