"""Rendered maps of ``GET /map``, kept per map and per state of the area's stations.

A map costs about 0.3 s of CPU to render, even for a few dozen stations, and the page of a run or a
recommendation changes only when the stations of its area change (the run's cells and gaps are stored once): a
rendered page is kept under (``run`` or ``recommendation``, its id, the asset prefix, the stations' count and
latest ``updated_at``) and rendered again when an import adds, changes or removes a station of the area. At most
one map is rendered at a time, so a burst of the same request renders it once.
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
STATIONS_STATE = "SELECT count(*), max(updated_at) FROM stations WHERE area_id = :area"
"""What changes when an area's stations do: their number and the latest change (import upserts set ``updated_at``)."""


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
            count, changed = conn.execute(text(STATIONS_STATE), {"area": area}).one()
        return kind, map_id, asset_prefix, count, changed
