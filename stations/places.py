"""Places a rider can type instead of giving a position: what the registry and the areas name, matched offline.

A rider types 五道口, 成府路, a station's name or its host's; the matches come from what is stored, nothing is
asked of a map service:

- the registry's active stations: their names, addresses and host names (a station is offered once, for the
  best of its fields that matches), at the station's position;
- townships: the imported administrative units (at a point inside each), and the ``township`` the registry
  writes beside its stations where no unit of that name was imported (at the middle of those stations);
- the study areas themselves, by display name or code name (at a point inside the boundary).

The stored street graphs keep no street names (``geo.streets.StreetGraph`` holds geometry and lengths only), so
a street is found through the addresses that name it (成府路 finds the stations "成府路附近").

Matching is on characters, so it works for Chinese without pinyin: the query and each name are compared after
``normalised`` (NFKC, so full-width letters and digits match half-width ones; lower case; spaces and punctuation
dropped), and a name matches when it contains the query. The order: a name equal to the query, then one starting
with it, then one containing it; within each, the shorter name first (the closer match), then areas and townships
before stations. Positions are WGS 84 lon/lat degrees. The query reaches SQL only as a bound parameter.

The stations' names are matched in PostgreSQL, or, when the caller has the in-process station index
(``memindex.StationIndex``), in memory from ``StationNames`` built once per index in a background thread
(``names_of``): one string of every normalised name, address, host name, searched with ``str.find``. Both give the
same places.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import orjson
from sqlalchemy import Connection, text

from yizhan.errors import InvalidInput
from yizhan.stations.memindex import StationIndex
from yizhan.stations.schema import Station

MAX_QUERY_CHARS = 40
"""The longest query taken, in characters (a place's name, not a sentence)."""
MAX_PLACES = 20
"""The most places one answer gives."""
SCANNED_ROWS = 500
"""At most this many matching rows of each source are ranked (the shortest names first)."""

PlaceKind = Literal["area", "township", "station", "address", "host"]
KIND_LABELS: dict[str, tuple[str, str]] = {
    "area": ("区域", "area"), "township": ("街道", "township"), "station": ("驿站", "station"),
    "address": ("地址", "address"), "host": ("承办单位", "host")}
"""Each kind of place: Chinese and English labels."""
_KIND_ORDER = {kind: i for i, kind in enumerate(KIND_LABELS)}

IGNORED = r"[\s\-_.,;:!?'\"()\[\]{}<>/\\|·・•、，。：；！？（）【】《》〈〉「」『』“”‘’~～#＃@]"
"""Characters a match ignores: spaces and punctuation (one class, read alike by Python and PostgreSQL)."""
_IGNORED = re.compile(IGNORED)


@dataclass(frozen=True)
class Place:
    """A place a rider may search from.

    Attributes
    ----------
    name : str
        The text that matched, as written (a station's name, its address, a township's name...).
    kind : str
        One of ``KIND_LABELS``: which field it came from.
    lon, lat : float
        WGS 84 longitude and latitude, degrees.
    area : str
        The area's code name.
    detail : str or None
        What the place belongs to when ``name`` is not the station's own name (the station an address or host
        belongs to), or None.
    station_id : str or None
        The registry id of the station the place belongs to, or None.
    """

    name: str
    kind: PlaceKind
    lon: float
    lat: float
    area: str
    detail: str | None = None
    station_id: str | None = None

    @property
    def kind_zh(self) -> str:
        """The kind in Chinese (地址, 街道...)."""
        return KIND_LABELS[self.kind][0]

    @property
    def kind_en(self) -> str:
        """The kind in English."""
        return KIND_LABELS[self.kind][1]


def normalised(value: str) -> str:
    """``value`` as matching compares it: NFKC (full-width forms as half-width), lower case, without spaces and
    punctuation (``IGNORED``): ``"成府路 1号"`` -> ``"成府路1号"``, ``"ＡＢＣ"`` -> ``"abc"``."""
    return _IGNORED.sub("", unicodedata.normalize("NFKC", value).lower())


def place_query(q: str) -> str:
    """The normalised query of ``q``; InvalidInput naming the value when it is longer than ``MAX_QUERY_CHARS`` or
    has nothing left to match (only spaces and punctuation)."""
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidInput(f"地点 q 太长：{len(q)} 个字符，最多 {MAX_QUERY_CHARS} 个 / place q is {len(q)} characters "
                           f"long; at most {MAX_QUERY_CHARS} are accepted")
    key = normalised(q)
    if not key:
        raise InvalidInput(f"地点 q={q!r} 里没有可以查找的字 / place q={q!r} has nothing to search for: type a "
                           "name, e.g. 五道口 or 成府路")
    return key


# Each source: rows of (kind, name, detail, station_id, lon, lat, area); ``:key`` is the normalised query and
# ``:ignored`` the IGNORED class, so ``_norm(column)`` is ``normalised`` done by PostgreSQL.
def _norm(column: str) -> str:
    return f"regexp_replace(lower(normalize(coalesce({column}, ''), NFKC)), :ignored, '', 'g')"


def _has(column: str) -> str:
    return f"strpos({_norm(column)}, :key) > 0"


_AREA_FILTER = "(CAST(:area AS text) IS NULL OR a.name = :area)"
_STATIONS = (
    "SELECT s.external_id, s.name, s.address, s.host_name, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat, "
    "a.name AS area FROM stations s JOIN areas a ON a.id = s.area_id "
    f"WHERE s.status = 'active' AND {_AREA_FILTER} "
    f"AND ({_has('s.name')} OR {_has('s.address')} OR {_has('s.host_name')}) "
    "ORDER BY least(CASE WHEN " + _has("s.name") + " THEN length(s.name) END, "
    "CASE WHEN " + _has("s.address") + " THEN length(s.address) END, "
    "CASE WHEN " + _has("s.host_name") + " THEN length(s.host_name) END), s.external_id LIMIT :scanned")
_UNITS = (
    "SELECT u.name, ST_X(ST_PointOnSurface(u.geom)) AS lon, ST_Y(ST_PointOnSurface(u.geom)) AS lat, "
    f"a.name AS area FROM admin_units u JOIN areas a ON a.id = u.area_id WHERE {_AREA_FILTER} AND {_has('u.name')} "
    "ORDER BY length(u.name), u.name LIMIT :scanned")
_TOWNSHIPS = (
    "SELECT s.township AS name, avg(ST_X(s.geom)) AS lon, avg(ST_Y(s.geom)) AS lat, a.name AS area "
    f"FROM stations s JOIN areas a ON a.id = s.area_id WHERE s.status = 'active' AND {_AREA_FILTER} "
    f"AND {_has('s.township')} GROUP BY a.name, s.township ORDER BY length(s.township), s.township LIMIT :scanned")
_AREAS = (
    "SELECT coalesce(a.display_name, a.name) AS name, ST_X(ST_PointOnSurface(a.boundary)) AS lon, "
    f"ST_Y(ST_PointOnSurface(a.boundary)) AS lat, a.name AS area FROM areas a WHERE {_AREA_FILTER} "
    f"AND a.boundary IS NOT NULL AND ({_has('a.display_name')} OR {_has('a.name')}) ORDER BY a.name "
    "LIMIT :scanned")


def find_places(conn: Connection, q: str, *, area: str | None = None, limit: int = 8,
                names: StationNames | None = None) -> list[Place]:
    """The places whose names contain the query ``q`` (see the module's docstring), best first, at most ``limit``
    (1 to ``MAX_PLACES``); only those of the area named ``area`` when given. Each station and township is
    offered once. The stations are matched in ``names`` when given (the registry's active stations in memory,
    ``names_of``), else in the database on ``conn``.

    Raises
    ------
    InvalidInput
        When ``q`` is too long or has nothing to match (``place_query``), or ``limit`` is out of range.
    """
    if not 1 <= limit <= MAX_PLACES:
        raise InvalidInput(f"limit={limit}: expected 1 to {MAX_PLACES}")
    key = place_query(q)
    params = {"key": key, "ignored": IGNORED, "area": area, "scanned": SCANNED_ROWS}
    found: list[Place] = []
    for r in conn.execute(text(_AREAS), params):
        found.append(Place(r.name, "area", float(r.lon), float(r.lat), r.area))
    units: set[tuple[str, str]] = set()
    for r in conn.execute(text(_UNITS), params):
        units.add((r.area, normalised(r.name)))
        found.append(Place(r.name, "township", float(r.lon), float(r.lat), r.area))
    townships = (names.townships(key, area) if names is not None else
                 [(r.area, r.name, float(r.lon), float(r.lat)) for r in conn.execute(text(_TOWNSHIPS), params)])
    for t_area, name, lon, lat in townships:
        if (t_area, normalised(name)) not in units:  # an imported unit of that name is the better position
            found.append(Place(name, "township", lon, lat, t_area))
    stations = (names.stations(key, area) if names is not None else
                [(r.external_id, r.name, r.address, r.host_name, float(r.lon), float(r.lat), r.area)
                 for r in conn.execute(text(_STATIONS), params)])
    for sid, name, address, host_name, lon, lat, s_area in stations:
        place = _station_place(key, sid, name, address, host_name, lon, lat, s_area)
        if place is not None:
            found.append(place)
    found.sort(key=lambda p: _rank(key, p))
    return found[:limit]


StationRow = tuple[str, str, str | None, str | None, float, float, str]
"""A station as matching reads it: id, name, address, host name, lon, lat (WGS 84 degrees), area."""


class StationNames:
    """The active stations' names, addresses and host names, normalised, for matching in memory.

    ``text`` holds every non-empty normalised field, each followed by a line break (a query never holds one,
    so a hit never spans two), area after area and, within an area, the shorter first, so the first
    ``SCANNED_ROWS`` hits are the closest, as the database path orders them. The registry's townships (the
    ``township`` written beside the stations) are kept per area with the middle of their stations.
    """

    def __init__(self, stations: Iterable[Station]) -> None:
        listed = list(stations)
        n = len(listed)
        self.rows: list[StationRow] = [(st["id"], st["name"], st["address"], st["host_name"], st["lon"], st["lat"],
                                        st["area"]) for st in listed]
        # each station's name, address and host name ("" where missing), normalised in one pass (NUL, which no
        # stored text holds, neither changes nor joins a neighbour)
        raw = "\0".join(v or "" for st in listed for v in (st["name"], st["address"], st["host_name"]))
        norms = normalised(raw).split("\0") if n else []
        lengths = np.fromiter(map(len, norms), np.int64, len(norms))
        names = sorted({st["area"] for st in listed})
        codes = {a: i for i, a in enumerate(names)}
        field_area = np.repeat(np.fromiter((codes[st["area"]] for st in listed), np.int64, n), 3)
        kept = np.flatnonzero(lengths > 0)
        order = kept[np.lexsort((lengths[kept], field_area[kept]))]  # by area, then the shorter first (stable)
        self.text = "".join([norms[i] + "\n" for i in order.tolist()])
        self.starts = np.zeros(len(order) + 1, np.int64)
        np.cumsum(lengths[order] + 1, out=self.starts[1:])
        self.row = order // 3  # the station of each field
        edges = np.searchsorted(field_area[order], np.arange(len(names) + 1))
        self.areas: dict[str, tuple[int, int]] = {a: (int(edges[i]), int(edges[i + 1])) for i, a in enumerate(names)
                                                  if edges[i + 1] > edges[i]}
        sums: dict[tuple[str, str], list[float]] = {}  # (area, township) -> [sum lon, sum lat, count]
        for st in listed:
            if st["township"]:
                acc = sums.setdefault((st["area"], st["township"]), [0.0, 0.0, 0.0])
                acc[0] += st["lon"]
                acc[1] += st["lat"]
                acc[2] += 1
        self._townships = [(a, t, acc[0] / acc[2], acc[1] / acc[2], normalised(t))
                           for (a, t), acc in sorted(sums.items())]

    @classmethod
    def from_index(cls, index: StationIndex) -> StationNames:
        """The names of the stations an in-process station index holds (its stations' JSON, read as one list)."""
        blob, off = index.blob, index.offsets.tolist()
        return cls(orjson.loads(b"[" + b",".join([blob[off[i]:off[i + 1]] for i in range(len(index))]) + b"]"))

    def stations(self, key: str, area: str | None) -> list[StationRow]:
        """The stations with a field containing the normalised query ``key`` (of ``area`` when given): at most
        ``SCANNED_ROWS`` fields per area, the shorter first."""
        spans = [self.areas[area]] if area is not None and area in self.areas else [] if area else self.areas.values()
        rows: dict[int, None] = {}
        for first, end in spans:
            pos, stop, seen = int(self.starts[first]), int(self.starts[end]), 0
            while seen < SCANNED_ROWS:
                at = self.text.find(key, pos, stop)
                if at < 0:
                    break
                e = int(np.searchsorted(self.starts, at, side="right")) - 1
                rows[int(self.row[e])] = None
                seen += 1
                pos = int(self.starts[e + 1])
        return [self.rows[i] for i in rows]

    def townships(self, key: str, area: str | None) -> list[tuple[str, str, float, float]]:
        """The registry's townships containing ``key``: (area, name, lon, lat) at the middle of their stations."""
        return [(a, t, lon, lat) for a, t, lon, lat, norm in self._townships
                if key in norm and (area is None or a == area)][:SCANNED_ROWS]


class NamesKeeper:
    """The ``StationNames`` of the newest in-process station index asked about, built in a background thread
    (a second or two for 100,000 stations) so that no rider's request waits for it: until they are built the
    caller matches in the database, which answers the same."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: tuple[StationIndex, StationNames] | None = None
        self._wanted: StationIndex | None = None  # the index asked about last
        self._building: StationIndex | None = None

    def names(self, index: StationIndex, *, wait: bool = False) -> StationNames | None:
        """The names of ``index``; None while they are being built (the build is started here), unless ``wait``,
        which builds them in the caller's thread if need be."""
        with self._lock:
            if self._built is not None and self._built[0] is index:
                return self._built[1]
            self._wanted = index
            start = not wait and self._building is not index
            if start:
                self._building = index
        if wait:
            return self._build(index)
        if start:
            threading.Thread(target=self._build, args=(index,), name="yizhan-place-names", daemon=True).start()
        return None

    def _build(self, index: StationIndex) -> StationNames:
        try:
            names = StationNames.from_index(index)
            with self._lock:
                if self._wanted is index or self._built is None:  # an older index's names never replace newer
                    self._built = (index, names)
            return names
        finally:
            with self._lock:
                if self._building is index:
                    self._building = None


_keeper = NamesKeeper()


def names_of(index: StationIndex, *, wait: bool = False) -> StationNames | None:
    """The ``StationNames`` of an in-process station index (``NamesKeeper.names``), kept while it is the newest
    one asked about; a reload of the index, after a change to the registry, has new ones built. None while they
    are being built, unless ``wait``."""
    return _keeper.names(index, wait=wait)


def _station_place(key: str, sid: str, name: str, address: str | None, host_name: str | None, lon: float,
                   lat: float, area: str) -> Place | None:
    """The station's best matching field as a place: its name, else its address, else its host's name."""
    fields: tuple[tuple[PlaceKind, str | None], ...] = (("station", name), ("address", address), ("host", host_name))
    matching = [(kind, value) for kind, value in fields if value and key in normalised(value)]
    if not matching:
        return None
    kind, value = min(matching, key=lambda kv: _tier(key, kv[1] or ""))  # the closest, name first on a tie
    assert value is not None
    return Place(value, kind, lon, lat, area, detail=None if kind == "station" else name, station_id=sid)


def _tier(key: str, value: str) -> int:
    """0 when the name is the query, 1 when it starts with it, 2 when it contains it."""
    norm = normalised(value)
    return 0 if norm == key else 1 if norm.startswith(key) else 2


def _rank(key: str, place: Place) -> tuple[int, int, int, str, str, str]:
    return (_tier(key, place.name), len(normalised(place.name)), _KIND_ORDER[place.kind], place.name, place.area,
            place.station_id or "")
