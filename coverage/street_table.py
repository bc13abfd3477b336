"""Each street node's nearest stations along the streets, computed ahead, for the rider's nearest search.

A ``StreetTable`` holds, for one street graph and one set of stations, every node's ``k`` nearest stations along
the streets FROM that node within ``bound_m`` metres, door to door (the station's off-street leg included):
their distances (float64 metres), station numbers and the next step of the way (the edge taken and the slot of
the same station in the next node's row), so a route is walked without a search.

Built by bounded Dijkstra runs (``scipy.sparse.csgraph.dijkstra``) over the TRANSPOSED graph, from one virtual
node per station joined to its edge's end nodes at the partial costs ``coverage.network`` uses (``reverse_factor``
respected), in batches of nearby stations, each on the streets within the bound's straight-line reach, merged into
the running top-k rows. At 1 M nodes and k = 10 the rows take 162 MB (17 bytes per node and slot: distances are
float64 because an answer's 0.1 m rounding and its ties by id must be the exact search's); 3,000 stations within
6 km build in about 20–30 s on two busy cores, with little more memory than the rows.

A rider snapped at offset t on edge (u, v) gets exact answers from it: the candidates are the stations of u's and
v's rows and those on the rider's own edge; a station in neither row is at least ``min(cu + T_u, cv + T_v)``
away (cu, cv the costs to u and v; T the row's k-th distance, or ``bound_m`` when the row is shorter), so the
candidates nearer than that bound (after rounding to 0.1 m, as answers are) are certified. ``nearest`` answers
only when ``k`` certified stations pass the filter, else None and the caller searches exactly.

``TableKeeper`` keeps the tables of one database fresh in background threads: it LISTENs for ``yizhan_registry``
(sent on commit when stations or areas change), reloads the active stations and areas, and (re)builds the table
of every (area, profile) asked for since. While a change waits for its reload or a table for its rebuild,
``table`` gives None and the exact search answers.

Metres in the graph's projected CRS (x east, y north); lon/lat WGS 84 degrees at the edges.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
import shapely
from pyproj import Transformer
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine

from yizhan.areas import AreaInfo
from yizhan.coverage.network import Snapped, snap_points
from yizhan.db.engine import libpq_url
from yizhan.db.models import SRID
from yizhan.geo.streets import StreetGraph, edge_costs
from yizhan.stations.memindex import CHANNEL, LOAD_SQL
from yizhan.stations.schema import N_COLUMNS, Station, station_from_row

log = logging.getLogger(__name__)

TABLE_K = 10
"""Stations kept per node: at least the API's default k (5) with room for filters."""
TABLE_BOUND_M = 6000.0
"""How far (metres along the streets, door to door) the table looks from each node."""
_NO_HOP = -2  # no next step (an empty slot)
_AT_STATION = -1  # the node is an end of the station's own edge: the last step runs along it


@dataclass
class StreetTable:
    """Per node of ``graph`` (row) its ``k`` nearest stations within ``bound_m`` metres, nearest first.

    ``dist`` (n_nodes, k) float64 metres (``inf`` for an empty slot), ``station`` (n_nodes, k) int32 station
    number (-1 empty), ``hop`` the edge of the first step from the node (``-1``: the node ends the station's own
    edge, ``-2`` empty), ``hop_slot`` (int8) the same station's slot in the row of the step's far node (-1 when
    ties left it out: that route is then searched exactly). The stations: their snap on the graph
    (``edge``, ``offset_m``, ``offstreet_m``, metres) and their metric ``x``, ``y``.
    """

    graph: StreetGraph
    k: int
    bound_m: float
    dist: np.ndarray
    station: np.ndarray
    hop: np.ndarray
    hop_slot: np.ndarray
    snapped: Snapped
    x: np.ndarray
    y: np.ndarray
    edge_stations: dict[int, list[int]]
    build_s: float = 0.0
    steps: tuple[memoryview, ...] = ()  # hop, hop_slot flat; the graph's u, v: fast scalar reads for walking

    def freeze(self) -> StreetTable:
        """Make the flat views that walking reads (after the arrays are final)."""
        self.steps = tuple(np.ascontiguousarray(a).reshape(-1).data
                           for a in (self.hop, self.hop_slot, self.graph.u, self.graph.v))
        return self

    @property
    def usable(self) -> int:
        """How many stations lie on the streets (the others are never found)."""
        return int((~self.snapped.too_far).sum())

    @property
    def nbytes(self) -> int:
        """Bytes of the per-node arrays."""
        return int(self.dist.nbytes + self.station.nbytes + self.hop.nbytes + self.hop_slot.nbytes)


def _pair_edges(graph: StreetGraph) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys ``a * n + b`` of every directed step a → b along one edge and the cheapest such edge."""
    n = np.int64(graph.n_nodes)
    u, v = graph.u.astype(np.int64), graph.v.astype(np.int64)
    ids = np.arange(graph.n_edges, dtype=np.int64)
    back = edge_costs(graph.length, graph.reverse_factor)
    keys = np.concatenate([u * n + v, v * n + u])
    cost = np.concatenate([graph.length, back])
    edge = np.concatenate([ids, ids])
    ok = np.isfinite(cost) & (np.concatenate([u, v]) != np.concatenate([v, u]))
    keys, cost, edge = keys[ok], cost[ok], edge[ok]
    order = np.lexsort((cost, keys))
    keys, edge = keys[order], edge[order]
    first = np.concatenate([[True], keys[1:] != keys[:-1]])
    return keys[first], edge[first]


def _merge(table: StreetTable, node: np.ndarray, dist: np.ndarray, station: np.ndarray, hop: np.ndarray) -> None:
    """Merge new (node, distance, station, hop) entries into the table's rows (k smallest per node)."""
    k = table.k
    touched = np.unique(node)
    old = table.station[touched] >= 0
    rows = np.repeat(touched, k).reshape(-1, k)
    node = np.concatenate([rows[old], node])
    dist = np.concatenate([table.dist[touched][old], dist])
    station = np.concatenate([table.station[touched][old], station])
    hop = np.concatenate([table.hop[touched][old], hop])
    order = np.lexsort((station, dist, node))
    node, dist, station, hop = node[order], dist[order], station[order], hop[order]
    start = np.flatnonzero(np.concatenate([[True], node[1:] != node[:-1]]))
    rank = np.arange(len(node)) - np.repeat(start, np.diff(np.append(start, len(node))))
    keep = rank < k
    table.dist[touched] = np.inf
    table.station[touched] = -1
    table.hop[touched] = _NO_HOP
    table.dist[node[keep], rank[keep]] = dist[keep]
    table.station[node[keep], rank[keep]] = station[keep]
    table.hop[node[keep], rank[keep]] = hop[keep]


def build_street_table(graph: StreetGraph, x: np.ndarray, y: np.ndarray, *, k: int = TABLE_K,
                       bound_m: float = TABLE_BOUND_M, max_snap_m: float, batch: int = 16) -> StreetTable:
    """The table of ``graph`` for stations at metric ``x``, ``y`` (graph CRS, metres); stations farther than
    ``max_snap_m`` from every street are left out (as the exact search leaves them out). ``batch`` stations
    share one Dijkstra call (its dense output is ``batch`` x nodes float64 + int32)."""
    started = time.perf_counter()
    n = graph.n_nodes
    snap = snap_points(graph, np.column_stack([x, y]).reshape(-1, 2), max_snap_m=max_snap_m)
    table = StreetTable(graph=graph, k=k, bound_m=float(bound_m), dist=np.full((n, k), np.inf),
                        station=np.full((n, k), -1, np.int32), hop=np.full((n, k), _NO_HOP, np.int32),
                        hop_slot=np.full((n, k), -1, np.int8), snapped=snap, x=np.asarray(x, float),
                        y=np.asarray(y, float), edge_stations={})
    ok = np.flatnonzero(~snap.too_far)
    for j in ok:
        table.edge_stations.setdefault(int(snap.edge[j]), []).append(int(j))
    if len(ok) == 0:
        table.build_s = time.perf_counter() - started
        return table.freeze()
    e, s, off = snap.edge[ok], snap.offset_m[ok], snap.offstreet_m[ok]
    cost = np.stack([s, edge_costs(graph.length[e] - s, graph.reverse_factor[e])], axis=1) + off[:, None]
    ends = np.stack([graph.u[e], graph.v[e]], axis=1).astype(np.int64)
    a = graph.adjacency_t
    keys, key_edge = _pair_edges(graph)
    # stations near each other share a batch (2 km cells, serpentine), and a batch searches only the streets within
    # the bound's reach in a straight line from its stations' snapped points: a way costing c metres runs at most
    # c / shrink metres in a straight line, shrink the least cost per metre of drawn street over all edges
    sxy = np.column_stack([snap.x[ok], snap.y[ok]])
    cell = np.floor((sxy - sxy.min(axis=0)) / 2000.0).astype(np.int64)
    order = np.lexsort((np.where(cell[:, 0] % 2 == 1, -cell[:, 1], cell[:, 1]), cell[:, 0]))
    drawn = shapely.length(graph.geometry)
    rf = graph.reverse_factor[np.isfinite(graph.reverse_factor)]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_m = graph.length[drawn > 0] / drawn[drawn > 0]
    shrink = min(1.0, float(per_m.min(initial=1.0)), float(rf.min(initial=1.0)) * float(per_m.min(initial=1.0)))
    reach = float(bound_m) / max(shrink, 1e-6) * 1.001 + 1.0
    local = np.full(n, -1, np.int64)
    pending: list[tuple[np.ndarray, ...]] = []
    held = 0
    for b0 in range(0, len(ok), batch):
        part = order[b0:b0 + batch]
        lo, hi = sxy[part].min(axis=0) - reach, sxy[part].max(axis=0) + reach
        sub = np.flatnonzero((graph.x >= lo[0]) & (graph.x <= hi[0]) & (graph.y >= lo[1]) & (graph.y <= hi[1]))
        dist, pred = _batch(a, sub, local, cost[part], ends[part], bound_m)
        m = len(sub)
        row, lnode = np.nonzero(np.isfinite(dist))
        d, lp = dist[row, lnode], pred[row, lnode].astype(np.int64)
        node = sub[lnode]
        hop = np.full(len(node), _AT_STATION, np.int64)
        step = lp < m
        hop[step] = key_edge[np.searchsorted(keys, node[step] * n + sub[lp[step]])]
        pending.append((node, d, ok[part[row]].astype(np.int32), hop.astype(np.int32)))
        held += len(node)
        if held > 2_000_000:
            _merge(table, *(np.concatenate(col) for col in zip(*pending, strict=True)))
            pending, held = [], 0
    if pending:
        _merge(table, *(np.concatenate(col) for col in zip(*pending, strict=True)))
    _link_slots(table)
    table.build_s = time.perf_counter() - started
    return table.freeze()


def _batch(a: csr_matrix, sub: np.ndarray, local: np.ndarray, cost: np.ndarray, ends: np.ndarray,
           bound_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounded Dijkstra over the transposed adjacency ``a`` cut to nodes ``sub`` (sorted), from one virtual node
    per station joined to its edge's ``ends`` at ``cost``; distances and predecessors (b x len(sub), local
    numbers; a predecessor >= len(sub) is the station's own node). ``local`` (all -1) is scratch space."""
    m, b = len(sub), len(cost)
    local[sub] = np.arange(m)
    try:
        first, counts = a.indptr[sub], a.indptr[sub + 1] - a.indptr[sub]
        pos = np.repeat(first - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
        col = local[a.indices[pos]]
        keep = col >= 0
        row = np.repeat(np.arange(m), counts)[keep]
        vcol = local[ends]
        vkeep = np.isfinite(cost) & (vcol >= 0)
        vrow = np.repeat(np.arange(m, m + b), 2).reshape(-1, 2)[vkeep]
        rows = np.concatenate([row, vrow])
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=m + b))])
        graph = csr_matrix((np.concatenate([a.data[pos][keep], cost[vkeep]]),
                            np.concatenate([col[keep], vcol[vkeep]]).astype(np.int32), indptr.astype(np.int32)),
                           shape=(m + b, m + b))
    finally:
        local[sub] = -1
    dist, pred = dijkstra(graph, directed=True, indices=np.arange(m, m + b), return_predecessors=True,
                          limit=float(bound_m))
    return np.atleast_2d(dist)[:, :m], np.atleast_2d(pred)[:, :m]


def _link_slots(table: StreetTable, chunk: int = 1_000_000) -> None:
    """For every step, the slot of the same station in the row of the step's far node."""
    g = table.graph
    node, slot = np.nonzero(table.hop >= 0)
    for c0 in range(0, len(node), chunk):
        nd, sl = node[c0:c0 + chunk], slot[c0:c0 + chunk]
        h = table.hop[nd, sl]
        far = np.where(g.u[h] == nd, g.v[h], g.u[h])
        same = table.station[far] == table.station[nd, sl][:, None]
        found = same.any(axis=1)
        table.hop_slot[nd, sl] = np.where(found, same.argmax(axis=1), -1)


# --- answering from the table ------------------------------------------------------------------------------------

@dataclass
class Found:
    """One station found: its number in the table, metres along the streets door to door and the route (metric
    x, y pairs from the rider to the station, through their snapped points)."""

    station: int
    distance_m: float
    route: np.ndarray


def piece_coords(line: BaseGeometry, length_m: float, a: float, b: float) -> list[tuple[float, float]]:
    """Coordinates of the part of an edge's geometry between offsets ``a`` and ``b`` (metres of the graph's
    ``length_m``, from u), oriented a → b."""
    xy: list[list[float]] = shapely.get_coordinates(line).tolist()
    cum = [0.0]
    for (x0, y0), (x1, y1) in itertools.pairwise(xy):
        cum.append(cum[-1] + math.hypot(x1 - x0, y1 - y0))
    scale = cum[-1] / length_m if length_m > 0 else 1.0
    lo, hi = min(a, b) * scale, max(a, b) * scale

    def at(d: float) -> tuple[float, float]:
        for i in range(1, len(cum)):
            if d <= cum[i] or i == len(cum) - 1:
                seg = cum[i] - cum[i - 1]
                f = min(1.0, max(0.0, (d - cum[i - 1]) / seg)) if seg > 0 else 0.0
                (x0, y0), (x1, y1) = xy[i - 1], xy[i]
                return x0 + f * (x1 - x0), y0 + f * (y1 - y0)
        return xy[0][0], xy[0][1]

    out = [at(lo), *((p[0], p[1]) for p, c in zip(xy, cum, strict=True) if lo < c < hi), at(hi)]
    return out if a <= b else out[::-1]


def _back(length: float, factor: float) -> float:
    return length * factor if length > 0 else 0.0


def nearest_in_table(table: StreetTable, origin: Snapped, k: int, ids: Sequence[str],
                     accept: Callable[[int], bool]) -> list[Found] | None:
    """The ``k`` stations nearest to the snapped ``origin`` (one point) along the streets that ``accept`` takes,
    door to door (both off-street legs), ordered by distance rounded to 0.1 m, then ``ids``; fewer only when every
    station on the streets was a candidate; None when the table cannot certify the answer (the caller then
    searches exactly)."""
    if k > table.k:
        return None
    g = table.graph
    e, t, o = int(origin.edge[0]), float(origin.offset_m[0]), float(origin.offstreet_m[0])
    u, v = int(g.u[e]), int(g.v[e])
    length, rf = float(g.length[e]), float(g.reverse_factor[e])
    cu, cv = _back(t, rf), length - t
    best: dict[int, tuple[float, int, int]] = {}  # station -> distance, start node (-1: along the edge), slot
    limit = np.inf
    for node, c in ((u, cu), (v, cv)):
        row_s = table.station[node]
        full = row_s[-1] >= 0
        far = float(table.dist[node, -1]) if full else table.bound_m
        limit = min(limit, c + far)
        if not np.isfinite(c):
            continue
        for slot, (st, d) in enumerate(zip(row_s.tolist(), table.dist[node].tolist(), strict=True)):
            if st < 0:
                break
            total = c + d
            if st not in best or total < best[st][0]:
                best[st] = (total, node, slot)
    snap = table.snapped
    for st in table.edge_stations.get(e, ()):
        ts = float(snap.offset_m[st])
        direct = (ts - t if ts >= t else _back(t - ts, rf)) + float(snap.offstreet_m[st])
        if st not in best or direct <= best[st][0]:
            best[st] = (direct, -1, -1)
    cap = round(limit + o - 1e-6, 1)
    ranked = sorted((round(d + o, 1), ids[st], st) for st, (d, _, _) in best.items())
    found: list[Found] = []
    for rounded, _, st in ranked:
        if not rounded < cap:
            return None
        if not accept(st):
            continue
        d, node, slot = best[st]
        route = _walk(table, e, t, node, slot, st)
        if route is None:
            return None
        found.append(Found(st, d + o, route))
        if len(found) == k:
            return found
    # fewer than k pass: the answer is whole only if every station reachable at all was a candidate
    return found if len(best) == table.usable else None


def _walk(table: StreetTable, e: int, t: float, node: int, slot: int, st: int) -> np.ndarray | None:
    """The route from the rider (edge ``e``, offset ``t``) to station ``st``, starting at ``node`` whose row
    holds the station at ``slot`` (``node`` -1: along the rider's own edge). Metric x, y pairs; None when a step
    is missing from the table."""
    g, snap = table.graph, table.snapped
    se, ts = int(snap.edge[st]), float(snap.offset_m[st])
    length = float(g.length[e])
    if node < 0:
        return np.array(piece_coords(g.geometry[e], length, t, ts))
    first = piece_coords(g.geometry[e], length, t, 0.0 if node == g.u[e] else length)
    hop, hop_slot, gu, gv = table.steps
    k = table.k
    edges: list[int] = []
    forward: list[bool] = []
    for _ in range(g.n_nodes):
        h = hop[node * k + slot]
        if h == _AT_STATION:
            end = 0.0 if node == gu[se] else float(g.length[se])
            last = piece_coords(g.geometry[se], float(g.length[se]), end, ts)
            if not edges:
                return np.array(first + last)
            xy, idx = shapely.get_coordinates(g.geometry[edges], return_index=True)
            count = np.bincount(idx, minlength=len(edges))
            start = np.concatenate([[0], np.cumsum(count)[:-1]])
            pos = np.arange(len(idx)) - start[idx]
            fwd = np.array(forward)[idx]
            take = np.where(fwd, start[idx] + pos, start[idx] + count[idx] - 1 - pos)
            return np.vstack([np.array(first), xy[take], np.array(last)])
        if h < 0 or slot < 0:
            return None
        ahead = gu[h] == node
        edges.append(h)
        forward.append(ahead)
        slot = hop_slot[node * k + slot]
        node = gv[h] if ahead else gu[h]
    return None


def routes_lonlat(ways: Sequence[np.ndarray], to_ll: Transformer) -> list[list[list[float]]]:
    """Routes of metric x, y pairs as lists of [lon, lat] WGS 84 pairs rounded to 1e-7 degrees, repeated points
    dropped (one transformation for all)."""
    kept = []
    for xy in ways:
        xy = xy[np.concatenate([[True], np.any(np.diff(xy, axis=0) != 0, axis=1)])]
        kept.append(np.vstack([xy, xy]) if len(xy) == 1 else xy)
    if not kept:
        return []
    flat = np.vstack(kept)
    lon, lat = to_ll.transform(flat[:, 0], flat[:, 1])
    pairs: list[list[float]] = np.round(np.column_stack([lon, lat]), 7).tolist()
    out, at = [], 0
    for xy in kept:
        out.append(pairs[at:at + len(xy)])
        at += len(xy)
    return out


# --- the registry in memory and the tables kept fresh --------------------------------------------------------------

@dataclass
class AreaStations:
    """The active stations of one area, by registry id (Python's string order): their ``Station`` dicts (no
    distance), lon/lat (WGS 84 degrees) and what the filters read."""

    ids: list[str]
    stations: list[Station]
    lon: np.ndarray
    lat: np.ndarray
    amenities: list[frozenset[str]]
    signature: tuple[tuple[str, float, float], ...]  # what a table depends on: ids and places


@dataclass
class Snapshot:
    """Areas (smallest first, as the database picks the area of a point) and their active stations."""

    areas: list[AreaInfo]
    by_name: dict[str, AreaInfo]
    stations: dict[int, AreaStations]


def _prepared(wkb: bytes | None) -> BaseGeometry | None:
    if wkb is None:
        return None
    geom = shapely.from_wkb(wkb)
    shapely.prepare(geom)  # point-in-area tests per request
    return geom


def load_snapshot(conn: psycopg.Connection[Any]) -> Snapshot:
    """Every area and every active station, read on ``conn``."""
    found = conn.execute("SELECT id, name, crs_epsg, ST_AsBinary(boundary), display_name FROM areas "
                         "ORDER BY ST_Area(boundary), name")
    areas = [AreaInfo(r[0], r[1], r[2], _prepared(r[3]), r[4]) for r in found]
    rows: dict[int, list[tuple[Any, ...]]] = {}
    for r in conn.execute(LOAD_SQL):
        rows.setdefault(int(r[N_COLUMNS + 2]), []).append(r)
    stations: dict[int, AreaStations] = {}
    for area_id, rs in rows.items():
        sts = sorted((station_from_row(r) for r in rs), key=lambda s: s["id"])
        stations[area_id] = AreaStations(
            ids=[s["id"] for s in sts], stations=sts, lon=np.array([s["lon"] for s in sts], float),
            lat=np.array([s["lat"] for s in sts], float), amenities=[frozenset(s["amenities"]) for s in sts],
            signature=tuple((s["id"], s["lon"], s["lat"]) for s in sts))
    return Snapshot(areas, {a.name: a for a in areas}, stations)


@dataclass
class _Want:
    area: AreaInfo
    profile: str
    graph: StreetGraph
    max_snap_m: float


@dataclass
class TableKeeper:
    """The street tables of one database (see the module's docstring). ``counts`` says how many searches each
    way answered (``table``, ``exact``)."""

    url: str
    k: int = TABLE_K
    bound_m: float = TABLE_BOUND_M
    idle_s: float = 300.0
    counts: dict[str, int] = field(default_factory=lambda: {"table": 0, "exact": 0})
    builds: int = 0
    paused: bool = False
    """While True no table is (re)built: stale ones leave every search to the exact way (tests, maintenance)."""
    last_error: str | None = None
    _snapshot: Snapshot | None = None
    _pending: bool = True
    _tables: dict[tuple[int, str], tuple[StreetTable, tuple[Any, ...]]] = field(default_factory=dict)
    _wants: dict[tuple[int, str], _Want] = field(default_factory=dict)
    _wake: threading.Event = field(default_factory=threading.Event)
    _built: threading.Condition = field(default_factory=threading.Condition)
    _used: float = field(default_factory=time.monotonic)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Start the listening and the building thread."""
        for target, name in ((self._listen, "yizhan-street-table-listen"), (self._build, "yizhan-street-table")):
            th = threading.Thread(target=target, name=name, daemon=True)
            th.start()
            self._threads.append(th)

    def stop(self) -> None:
        """Stop both threads (within about a second, a build in progress first ends) and stop answering."""
        self._stop.set()
        self._pending = True
        self._wake.set()

    def resume(self) -> None:
        """Build again after ``paused``."""
        self.paused = False
        self._wake.set()

    @property
    def stopped(self) -> bool:
        """Whether the keeper has stopped (asked to, or idle)."""
        return self._stop.is_set()

    def area_at(self, lon: float, lat: float, name: str | None) -> AreaInfo | None:
        """The area named ``name``, else the smallest area covering (lon, lat) (WGS 84); None when the registry
        in memory may be behind or holds no such area (the database then decides)."""
        self._used = time.monotonic()
        snap = self._snapshot
        if snap is None or self._pending:
            return None
        if name:
            return snap.by_name.get(name)
        point = shapely.Point(lon, lat)
        for area in snap.areas:
            if area.boundary is not None and area.boundary.covers(point):
                return area
        return None

    def table(self, area: AreaInfo, profile: str, graph: StreetGraph,
              max_snap_m: float) -> tuple[StreetTable, AreaStations] | None:
        """The fresh table of ``area``'s ``profile`` graph and its stations, or None (then one is built in the
        background, unless under way)."""
        self._used = time.monotonic()
        snap = self._snapshot
        key = (area.id, profile)
        if snap is None or self._pending:
            self._want(key, _Want(area, profile, graph, max_snap_m))
            return None
        here = snap.stations.get(area.id)
        sig = (here.signature if here is not None else (), max_snap_m, id(graph))
        held = self._tables.get(key)
        if held is not None and held[0].graph is graph and (
                (held[1][0] is sig[0] and held[1][1:] == sig[1:]) or held[1] == sig):
            if held[1][0] is not sig[0]:  # the same stations in a newer snapshot: compared once, not per search
                self._tables[key] = (held[0], sig)
            return held[0], here if here is not None else AreaStations([], [], np.empty(0), np.empty(0), [], ())
        self._want(key, _Want(area, profile, graph, max_snap_m))
        return None

    def _want(self, key: tuple[int, str], want: _Want) -> None:
        if key not in self._wants:
            self._wants[key] = want
            self._wake.set()

    def wait_built(self, after: int, timeout: float) -> bool:
        """Block until more than ``after`` tables have been built (at most ``timeout`` s); whether they were."""
        with self._built:
            return self._built.wait_for(lambda: self.builds > after, timeout)

    def _listen(self) -> None:
        pause = 0.25
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                                     application_name="yizhan street tables") as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._pending = True
                    while not self._stop.is_set():
                        if time.monotonic() - self._used > self.idle_s:
                            self.stop()
                            break
                        if self._pending:
                            snapshot = load_snapshot(conn)
                            changed = bool(list(conn.notifies(timeout=0)))
                            self._snapshot = snapshot
                            self._pending = changed
                            self._wake.set()  # stale tables are rebuilt
                            pause = 0.25
                            continue
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._pending = True
            except Exception as exc:  # the database is down or gone: the exact search answers (or fails)
                self._pending = True
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.debug("street tables: %s", self.last_error)
            failed = time.monotonic()
            self._stop.wait(pause)
            pause = min(5.0, pause * 2)
            # connect again only once a search asks (a dropped database is left alone), until idle
            while not self._stop.is_set() and self._used < failed:
                if time.monotonic() - self._used > self.idle_s:
                    self.stop()
                self._stop.wait(0.25)

    def _build(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            snap = self._snapshot
            if snap is None or self._pending or self.paused:
                continue
            for key, want in list(self._wants.items()):
                if self._stop.is_set() or self._pending:
                    break
                here = snap.stations.get(want.area.id)
                sig = (here.signature if here is not None else (), want.max_snap_m, id(want.graph))
                held = self._tables.get(key)
                if held is None or held[1] != sig or held[0].graph is not want.graph:
                    try:
                        table = self._make(want, here)
                    except Exception as exc:  # a broken graph file: keep answering exactly
                        self.last_error = f"{type(exc).__name__}: {exc}"
                        log.warning("street table of area %s (%s) not built: %s", want.area.name, want.profile,
                                    self.last_error)
                        self._wants.pop(key, None)
                        continue
                    self._tables[key] = (table, sig)
                    log.info("street table of area %s (%s): %d nodes, %d stations, %.1f s, %.0f MB",
                             want.area.name, want.profile, want.graph.n_nodes, len(table.x), table.build_s,
                             table.nbytes / 2**20)
                    with self._built:
                        self.builds += 1
                        self._built.notify_all()
                self._wants.pop(key, None)

    def _make(self, want: _Want, here: AreaStations | None) -> StreetTable:
        if here is None or not len(here.ids):
            x = y = np.empty(0)
        else:
            to_m = Transformer.from_crs(SRID, want.graph.crs_epsg, always_xy=True)
            x, y = to_m.transform(here.lon, here.lat)
        return build_street_table(want.graph, np.asarray(x, float), np.asarray(y, float), k=self.k,
                                  bound_m=self.bound_m, max_snap_m=want.max_snap_m)


_keepers: dict[str, TableKeeper] = {}
_keepers_lock = threading.Lock()
_urls: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_switch = {"on": True}


def use_tables(on: bool) -> None:
    """Whether this process answers from street tables at all (on by default; off, every search is exact: the
    benchmark's baseline)."""
    _switch["on"] = on


def keeper_for(engine: Engine) -> TableKeeper | None:
    """The running ``TableKeeper`` of ``engine``'s database (started on first use, again after it went idle);
    None when tables are off (``use_tables``)."""
    if not _switch["on"]:
        return None
    url = _urls.get(engine)
    if url is None:
        url = _urls[engine] = engine.url.render_as_string(hide_password=False)
    keeper = _keepers.get(url)
    if keeper is None or keeper.stopped:
        with _keepers_lock:
            keeper = _keepers.get(url)
            if keeper is None or keeper.stopped:
                keeper = _keepers[url] = TableKeeper(libpq_url(url))
                keeper.start()
    return keeper
