"""Rendered maps of ``GET /map``, kept per map and per state of what the page draws from outside its run.

A map costs about 0.3 s of CPU to render, even for a few dozen stations. A run's cells, gaps and figures are
stored once, but its page also draws what the area holds now: its stations (the registry), its display name (the
title), its townships (the choropleth and the table) and its streets (the offline basemap, rebuilt with the
network); a recommendation's page also its candidates (the sites' addresses) and its demand cells (the heat map).
A rendered page is kept under (``run`` or ``recommendation``, its id, the asset prefix, and the state of each of
those: counts, latest ``updated_at``, highest id, the name) and rendered again when any of them changes: an
import that adds, changes or removes a station, a new display name, re-imported townships or demand, a rebuilt
street network. At most one map is rendered at a time, so a burst of the same request renders it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine, text

MapKind = Literal["run", "recommendation"]
AREA_OF: dict[MapKind, str] = {
    "run": "SELECT area_id FROM coverage_runs WHERE id = :id",
    "recommendation": "SELECT area_id FROM recommendation_runs WHERE id = :id",
}
"""The area of a stored map's run."""
AREA_STATE = """
SELECT (SELECT count(*) FROM stations WHERE area_id = :area),
       (SELECT max(updated_at) FROM stations WHERE area_id = :area),
       (SELECT display_name FROM areas WHERE id = :area),
       (SELECT count(*) FROM admin_units WHERE area_id = :area),
       (SELECT max(id) FROM admin_units WHERE area_id = :area),
       (SELECT recorded_at FROM area_extracts WHERE area_id = :area)"""
"""What a run's page draws from its area as it is now: the stations' number and latest change (import upserts set
``updated_at``; a removal lowers the number), the display name, the townships (replaced whole, so new ids) and when
the streets were last built."""
RECOMMENDATION_STATE = """
SELECT (SELECT count(*) FROM candidate_sites WHERE area_id = :area),
       (SELECT max(updated_at) FROM candidate_sites WHERE area_id = :area),
       (SELECT count(*) FROM area_cells WHERE area_id = :area),
       (SELECT sum(weight) FROM area_cells WHERE area_id = :area)"""
"""What a recommendation's page draws besides: the candidates (the sites' addresses) and the demand cells."""


@dataclass
class CacheStats:
    """How the cache has answered: maps rendered (misses) and maps served as kept (hits)."""

    renders: int = 0
    hits: int = 0


class MapCache:
    """Up to ``max_maps`` rendered pages, the least recently asked dropped first."""

    def __init__(self, max_maps: int = 32) -> None:
        self.max_maps = max_maps
        self.stats = CacheStats()
        self._pages: OrderedDict[tuple[object, ...], str] = OrderedDict()
        self._lock = threading.Lock()
        self._rendering = threading.Lock()

    def page(self, eng: Engine, kind: MapKind, map_id: int, asset_prefix: str,
             render: Callable[[], str]) -> tuple[str, bool]:
        """The page of the ``kind`` run ``map_id`` and whether it was kept (True) or rendered now by ``render``.
        A map whose run does not exist is not kept (``render`` says so: NotFound)."""
        key = self._key(eng, kind, map_id, asset_prefix)
        if key is None:
            return render(), False
        if (page := self._get(key)) is not None:
            return page, True
        with self._rendering:
            if (page := self._get(key)) is not None:  # rendered while this request waited
                return page, True
            page = render()
            with self._lock:
                self.stats.renders += 1
                self._pages[key] = page
                while len(self._pages) > self.max_maps:
                    self._pages.popitem(last=False)
        return page, False

    def _get(self, key: tuple[object, ...]) -> str | None:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
                self.stats.hits += 1
            return page

    @staticmethod
    def _key(eng: Engine, kind: MapKind, map_id: int, asset_prefix: str) -> tuple[object, ...] | None:
        """The cache key of a map (None when its run does not exist)."""
        with eng.connect() as conn:
            area = conn.execute(text(AREA_OF[kind]), {"id": map_id}).scalar_one_or_none()
            if area is None:
                return None
            state = tuple(conn.execute(text(AREA_STATE), {"area": area}).one())
            if kind == "recommendation":
                state += tuple(conn.execute(text(RECOMMENDATION_STATE), {"area": area}).one())
        return (kind, map_id, asset_prefix, *state)
