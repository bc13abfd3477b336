"""The active stations in memory, for ``GET /stations/nearest`` without a database round trip.

``StationIndex`` holds every active station (WGS 84 lon, lat; kind; amenities as a bitmask; area) and a KD-tree
of the points on the unit sphere (geodetic latitude as the sphere's latitude). A search gives the same answer as
``registry.nearest_stations``: the k stations nearest by chord passing the filters bound the answer by the
largest of their exact geodesic distances D (metres, WGS 84 ellipsoid, ``pyproj.Geod``); every station whose
great-circle angle is at most D / R_MIN is then ranked by its exact distance, ties by registry id.

Why D / R_MIN is enough: in geodetic coordinates the ellipsoid's line element is M² dφ² + N² cos²φ dλ² and the
unit sphere's dφ² + cos²φ dλ², with both radii of curvature M, N >= a (1 - e²) = R_MIN; so any path on the
ellipsoid is at least R_MIN times as long as its image on the sphere, and a station at geodesic distance s lies
within the angle s / R_MIN. The chord KD-tree only decides how many stations are re-checked, never the answer.

``IndexKeeper`` keeps one index fresh from a background thread: it LISTENs on its own connection for the
``yizhan_registry`` notification (sent on commit by triggers on ``stations`` and ``areas``) and reloads all active
stations in one query. The index answers only while that connection is up and while no committed change has
been waiting for a reload for more than ``ttl_s`` seconds; otherwise the caller uses the database path.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import orjson
import psycopg
from scipy.spatial import cKDTree

from yizhan.db.engine import libpq_url
from yizhan.geo.coords import GEOD
from yizhan.stations import vocab
from yizhan.stations.registry import StationFilter
from yizhan.stations.schema import AREA_AT, LAT_AT, LON_AT, N_COLUMNS, STATION_COLUMNS, Station, station_from_row

log = logging.getLogger(__name__)

R_MIN = GEOD.a * (1 - GEOD.es)  # the smallest radius of curvature of WGS 84 (meridian at the equator), metres
CHANNEL = "yizhan_registry"
APPLICATION_NAME = "yizhan station index"  # of the keeper's connection (pg_stat_activity)
AMENITY_BIT = {a: 1 << i for i, a in enumerate(vocab.AMENITIES)}
KIND_CODE = {k: i for i, k in enumerate(vocab.KINDS)}

_BITS = " + ".join(f"(CASE WHEN s.amenities @> ARRAY['{a}'] THEN {b} ELSE 0 END)" for a, b in AMENITY_BIT.items())
_KINDS = " ".join(f"WHEN '{k}' THEN {c}" for k, c in KIND_CODE.items())
# rows ordered by external_id in the database's collation: the row number is the tie-break of equal distances
LOAD_SQL = (
    f"SELECT {STATION_COLUMNS}, CASE s.kind {_KINDS} ELSE -1 END, CAST({_BITS} AS bigint), s.area_id "
    "FROM stations s JOIN areas a ON a.id = s.area_id WHERE s.status = 'active' ORDER BY s.external_id, s.id")
"""Every active station: its ``STATION_COLUMNS``, then kind code, amenity bits and area id."""
_KIND, _BITS_AT, _AREA_ID = N_COLUMNS, N_COLUMNS + 1, N_COLUMNS + 2
_LON, _LAT, _AREA = LON_AT, LAT_AT, AREA_AT  # within STATION_COLUMNS


def unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Points (degrees) on the unit sphere, shape (n, 3)."""
    lo, la = np.radians(lon), np.radians(lat)
    c = np.cos(la)
    return np.column_stack([c * np.cos(lo), c * np.sin(lo), np.sin(la)])


def chord_bound(distance_m: float) -> float:
    """The largest unit-sphere chord of two points at most ``distance_m`` geodesic metres apart (WGS 84)."""
    angle = min(np.pi, distance_m / R_MIN * (1 + 1e-9) + 1e-12)
    return 2.0 * float(np.sin(angle / 2)) * (1 + 1e-12) + 1e-15


@dataclass
class StationIndex:
    """Active stations of the registry (row i = i-th by external id) and a KD-tree of their unit vectors."""

    lon: np.ndarray
    lat: np.ndarray
    kind: np.ndarray  # code in vocab.KINDS order, -1 for any other
    bits: np.ndarray  # amenities, one bit each (AMENITY_BIT)
    area: np.ndarray  # area id
    area_ids: dict[str, int]
    blob: bytes  # every station's ``Station`` as JSON (no distance), one after the other (UTF-8)
    offsets: np.ndarray  # station i is blob[offsets[i]:offsets[i + 1]]
    xyz: np.ndarray
    tree: cKDTree
    grow_cap: ClassVar[int] = 4096  # filtered: beyond this many chord candidates, scan every station passing it

    @classmethod
    def from_rows(cls, rows: list[tuple[Any, ...]]) -> StationIndex:
        """Build from ``LOAD_SQL`` rows."""
        n = len(rows)
        lon = np.fromiter((r[_LON] for r in rows), float, n)
        lat = np.fromiter((r[_LAT] for r in rows), float, n)
        xyz = unit_vectors(lon, lat) if n else np.zeros((0, 3))
        parts = [orjson.dumps(station_from_row(r)) for r in rows]
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(np.fromiter((len(b) for b in parts), np.int64, n), out=offsets[1:])
        return cls(lon=lon, lat=lat, kind=np.fromiter((r[_KIND] for r in rows), np.int8, n),
                   bits=np.fromiter((r[_BITS_AT] for r in rows), np.int64, n),
                   area=np.fromiter((r[_AREA_ID] for r in rows), np.int64, n),
                   area_ids={r[_AREA]: r[_AREA_ID] for r in rows}, blob=b"".join(parts), offsets=offsets, xyz=xyz,
                   tree=cKDTree(xyz, balanced_tree=False, compact_nodes=False))

    @classmethod
    def load(cls, conn: psycopg.Connection[Any]) -> StationIndex:
        """All active stations, read in one query on ``conn``."""
        return cls.from_rows(conn.execute(LOAD_SQL).fetchall())

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def nearest(self, lon: float, lat: float, *, k: int = 5, amenities: list[str] | None = None,
                kind: str | None = None, area: str | None = None) -> list[Station] | None:
        """What ``registry.nearest_stations`` answers without ``open_at``: the ``k`` active stations nearest to
        (lon, lat) (WGS 84 degrees) passing the filters, by exact geodesic metres (``distance_m``), ties by id.
        None when only the database can answer (an area name holding NUL: PostgreSQL text refuses it)."""
        if amenities or kind is not None or area is not None:
            StationFilter(amenities, None, kind, area)  # the same validation errors as the database path
        if k < 1:
            raise ValueError("k must be at least 1")
        if area is not None and "\x00" in area:
            return None
        want = sum(AMENITY_BIT[a] for a in set(amenities or []))
        kc = KIND_CODE[kind] if kind is not None else None
        aid = self.area_ids.get(area) if area is not None else None
        if area is not None and aid is None:
            return []
        filtered = bool(want) or kc is not None or aid is not None

        def passes(idx: np.ndarray) -> np.ndarray:
            ok = np.ones(len(idx), bool)
            if want:
                ok &= (self.bits[idx] & want) == want
            if kc is not None:
                ok &= self.kind[idx] == kc
            if aid is not None:
                ok &= self.area[idx] == aid
            return ok

        n = len(self)
        if n == 0:
            return []
        rlon, rlat = math.radians(lon), math.radians(lat)
        q = np.array([math.cos(rlat) * math.cos(rlon), math.cos(rlat) * math.sin(rlon), math.sin(rlat)])
        head = 2 * k + 8  # candidates whose exact distances bound the answer
        m = min(n, head if not filtered else 4 * k + 32)
        while True:
            chord, idx = self.tree.query(q, k=m)
            chord, idx = np.atleast_1d(chord), np.atleast_1d(idx)
            reach = float(chord[-1])  # every station not among the m has a chord >= reach
            complete = m >= n
            if filtered:
                ok = passes(idx)
                chord, idx = chord[ok], idx[ok]
            if len(idx) >= k or complete:
                break
            if m >= self.grow_cap:  # a rare filter: look at every station that passes it
                idx = np.flatnonzero(passes(np.arange(n)))
                chord = np.linalg.norm(self.xyz[idx] - q, axis=1)
                order = np.argsort(chord, kind="stable")
                chord, idx, reach, complete = chord[order], idx[order], math.inf, True
                break
            m = min(n, m * 4)
        if len(idx) == 0:
            return []
        # chord and idx are in chord order: the stations within the bound are a prefix of them
        dist = self._distances(lon, lat, idx[:head])
        bound = float(np.partition(dist, k - 1)[k - 1]) if len(dist) >= k else float(dist.max())
        r = chord_bound(bound)
        if complete or reach > r:
            p = int(np.searchsorted(chord, r, side="right"))
            idx = idx[:p]
            dist = dist[:p] if p <= len(dist) else np.concatenate([dist, self._distances(lon, lat, idx[len(dist):])])
        else:  # stations beyond the m candidates may lie within the bound
            ball = np.asarray(self.tree.query_ball_point(q, r), dtype=np.int64)
            idx = ball[passes(ball)] if filtered else ball
            dist = self._distances(lon, lat, idx)
        order = np.lexsort((idx, dist))[:k]
        out: list[Station] = []
        for j in order:
            i = idx[j]
            st: Station = orjson.loads(self.blob[self.offsets[i]:self.offsets[i + 1]])
            st["distance_m"] = round(float(dist[j]), 2)  # as station_from_row rounds it
            out.append(st)
        return out

    def _distances(self, lon: float, lat: float, idx: np.ndarray) -> np.ndarray:
        """Exact geodesic metres (WGS 84) from (lon, lat) to stations ``idx``."""
        n = len(idx)
        _, _, dist = GEOD.inv(np.full(n, lon), np.full(n, lat), self.lon[idx], self.lat[idx], inplace=True)
        return np.asarray(dist)


class IndexKeeper:
    """A ``StationIndex`` of one database, reloaded from a daemon thread when the registry changes.

    ``current()`` gives the index while the thread's connection to the database is up and no committed change
    has waited longer than ``ttl_s`` seconds for its reload (changes arrive as notifications; a reload reads every
    active station again); otherwise None, and the caller asks the database. After a lost connection the thread
    reconnects, retrying with a growing pause (0.25 s to 5 s), and reloads before the index answers again.
    """

    def __init__(self, url: str, ttl_s: float) -> None:
        self.url = libpq_url(url)
        self.ttl_s = ttl_s
        self.reloads = 0  # completed loads
        self.last_error: str | None = None
        self._index: StationIndex | None = None
        self._online = False
        self._pending_since: float | None = None  # monotonic time of the oldest change not in the index
        self._stop = threading.Event()
        self._loaded = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="yizhan-station-index", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (it ends within half a second) and stop answering."""
        self._stop.set()
        self._online = False

    def current(self) -> StationIndex | None:
        """The index, if it may answer now."""
        idx = self._index
        if idx is None or not self._online:
            return None
        pending = self._pending_since
        if pending is not None and time.monotonic() - pending >= self.ttl_s:
            return None
        return idx

    def wait_for_reload(self, after: int, timeout: float) -> bool:
        """Block until more than ``after`` loads have completed (at most ``timeout`` seconds); whether they did."""
        with self._loaded:
            return self._loaded.wait_for(lambda: self.reloads > after, timeout)

    def _load(self, conn: psycopg.Connection[Any]) -> None:
        started = time.monotonic()
        index = StationIndex.load(conn)
        changed_meanwhile = bool(list(conn.notifies(timeout=0)))  # arrived during the load
        self._index = index
        self._pending_since = started if changed_meanwhile else None
        self._online = True
        with self._loaded:
            self.reloads += 1
            self._loaded.notify_all()

    def _run(self) -> None:
        pause = 0.25
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                                     application_name=APPLICATION_NAME) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._load(conn)
                    pause = 0.25
                    while not self._stop.is_set():
                        if self._pending_since is None:
                            for _ in conn.notifies(timeout=0.5, stop_after=1):
                                self._pending_since = time.monotonic()
                        if self._pending_since is not None and not self._stop.is_set():
                            self._load(conn)
            except Exception as exc:  # the database is down or restarting: answer from the database path
                self._online = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.debug("station index: %s", self.last_error)
            self._stop.wait(pause)
            pause = min(5.0, pause * 2)
