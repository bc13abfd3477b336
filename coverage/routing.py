"""Routes from one point to chosen stations along a street graph (metres; x east, y north, graph CRS).

Used by the rider's "nearest by network" search: one Dijkstra from the rider's point over the forward graph
gives the distance to every candidate station and the path to each.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString
from shapely.ops import substring
from sqlalchemy import Connection, Engine, text

from yizhan.areas import AreaInfo, get_area
from yizhan.coverage import street_table
from yizhan.coverage.network import Snapped, snap_points
from yizhan.coverage.streets import load_area_graph, loaded_area_graph
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput
from yizhan.geo.coords import GEOD
from yizhan.geo.streets import StreetGraph
from yizhan.settings import Settings
from yizhan.stations.registry import StationFilter, stations_within

# per loaded graph, built on first use and dropped with the graph
_forward: weakref.WeakKeyDictionary[StreetGraph, csr_matrix] = weakref.WeakKeyDictionary()
_pairs: weakref.WeakKeyDictionary[StreetGraph, dict[tuple[int, int], int]] = weakref.WeakKeyDictionary()


def _forward_csr(graph: StreetGraph) -> csr_matrix:
    """The (from, to) adjacency of ``graph``."""
    if graph not in _forward:
        _forward[graph] = graph.adjacency_t.T.tocsr()
    return _forward[graph]


def _back(length: np.ndarray, factor: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(length > 0, length * factor, 0.0)


@dataclass
class Routes:
    """Per target: network distance in metres from the origin (``inf`` beyond the limit) and the route."""

    distance_m: np.ndarray
    routes: list[LineString | None]


def routes_from_point(graph: StreetGraph, origin: Snapped, targets: Snapped, *, limit_m: float) -> Routes:
    """Distances and routes from one snapped origin to snapped targets, along the streets.

    An edge u → v costs its length forwards and ``length * reverse_factor`` backwards (as in
    ``coverage.network``); the origin and the targets sit on their edges at their offsets.
    """
    n = graph.n_nodes
    e, t = int(origin.edge[0]), float(origin.offset_m[0])
    length, rf = float(graph.length[e]), float(graph.reverse_factor[e])
    start_cost = np.array([_back(np.array([t]), np.array([rf]))[0], length - t])  # to u (backwards), to v
    a = _forward_csr(graph)
    ends = np.array([graph.u[e], graph.v[e]])
    ok = np.isfinite(start_cost)
    idx_dtype = a.indices.dtype
    indptr = np.concatenate([a.indptr, [a.indptr[-1] + ok.sum()]]).astype(idx_dtype)
    aug = csr_matrix((np.concatenate([a.data, start_cost[ok]]), np.concatenate([a.indices, ends[ok]]).astype(idx_dtype),
                      indptr), shape=(n + 1, n + 1))
    dist, pred = dijkstra(aug, directed=True, indices=n, return_predecessors=True,  # type: ignore[call-overload]
                          limit=float(limit_m))  # scipy-stubs take no plain int for indices; scipy does (one source)
    te, ts = targets.edge, targets.offset_m
    tl, trf = graph.length[te], graph.reverse_factor[te]
    via_u = dist[graph.u[te]] + ts                      # arrive from u travelling forwards
    via_v = dist[graph.v[te]] + _back(tl - ts, trf)     # arrive from v travelling backwards
    best = np.minimum(via_u, via_v)
    end_node = np.where(via_u <= via_v, graph.u[te], graph.v[te])
    same = te == e
    direct = np.where(ts >= t, ts - t, _back(t - ts, np.full(len(ts), rf)))
    use_direct = same & (direct <= best)
    best = np.where(use_direct, direct, best)
    best[~targets.too_far & ~(best <= limit_m)] = np.inf
    best[targets.too_far] = np.inf
    routes: list[LineString | None] = []
    for i in range(len(te)):
        if not np.isfinite(best[i]):
            routes.append(None)
        elif use_direct[i]:
            routes.append(_piece(graph, e, t, float(ts[i])))
        else:
            routes.append(_route(graph, pred, n, e, t, int(end_node[i]), int(te[i]), float(ts[i])))
    return Routes(best, routes)


def _piece(graph: StreetGraph, edge: int, a: float, b: float) -> LineString:
    """The part of an edge's geometry between offsets ``a`` and ``b`` (metres from u), oriented a → b."""
    line = graph.geometry[edge]
    scale = line.length / graph.length[edge] if graph.length[edge] > 0 else 1.0
    piece = substring(line, min(a, b) * scale, max(a, b) * scale)
    if piece.geom_type == "Point":
        piece = LineString([piece.coords[0], piece.coords[0]])
    return piece if a <= b else shapely.reverse(piece)


def _edge_between(graph: StreetGraph, a: int, b: int) -> tuple[int, bool]:
    """The shortest edge joining nodes a and b, and whether it runs a → b."""
    table = _pairs.get(graph)
    if table is None:
        table = {}
        for i in np.argsort(-graph.length):  # shortest wins
            table[(int(graph.u[i]), int(graph.v[i]))] = int(i)
        _pairs[graph] = table
    if (a, b) in table and ((b, a) not in table or graph.length[table[(a, b)]] <= graph.length[table[(b, a)]]):
        return table[(a, b)], True
    return table[(b, a)], False



def _route(graph: StreetGraph, pred: np.ndarray, origin_node: int, e0: int, t0: float, end: int, e1: int,
           t1: float) -> LineString:
    nodes = [end]
    while pred[nodes[-1]] != origin_node and pred[nodes[-1]] >= 0:
        nodes.append(int(pred[nodes[-1]]))
    nodes.reverse()
    first = nodes[0]
    parts: list[Any] = [_piece(graph, e0, t0, 0.0 if first == graph.u[e0] else float(graph.length[e0]))]
    for a, b in itertools.pairwise(nodes):
        i, forward = _edge_between(graph, a, b)
        geom = graph.geometry[i]
        parts.append(geom if forward else shapely.reverse(geom))
    parts.append(_piece(graph, e1, 0.0 if end == graph.u[e1] else float(graph.length[e1]), t1))
    coords: list[tuple[float, float]] = []
    for p in parts:
        for c in p.coords:
            if not coords or coords[-1] != tuple(c):
                coords.append(tuple(c))
    if len(coords) == 1:
        coords.append(coords[0])
    return LineString(coords)


MAX_SEARCH_M = 30_000.0


def _area_at(conn: Connection, lon: float, lat: float, name: str | None) -> AreaInfo:
    if name:
        return get_area(conn, name)
    found = conn.execute(text(f"SELECT name FROM areas WHERE ST_Covers(boundary, ST_SetSRID(ST_MakePoint(:x, :y), "
                              f"{SRID})) ORDER BY ST_Area(boundary) LIMIT 1"), {"x": lon, "y": lat}).scalar()
    if found is None:
        raise InvalidInput(f"lon/lat: ({lon}, {lat}) lies in no study area; by=network searches the street network "
                           "of the area holding the point (or pass area=)")
    return get_area(conn, found)


_local = threading.local()  # pyproj transformers are not shared between threads


def _transformer(src: int, dst: int) -> Transformer:
    """A (lon/lat or x/y order) transformer from EPSG ``src`` to ``dst``, one per thread and pair."""
    cache: dict[tuple[int, int], Transformer] = _local.__dict__.setdefault("transformers", {})
    found = cache.get((src, dst))
    if found is None:
        found = cache[(src, dst)] = Transformer.from_crs(src, dst, always_xy=True)
    return found


def nearest_along_streets(engine: Engine, lon: float, lat: float, *, k: int, flt: StationFilter,
                          profile: str = "walk", settings: Settings) -> list[dict[str, Any]]:
    """The ``k`` stations nearest to (lon, lat) (WGS 84) along the ``profile`` streets of the point's area,
    door to door: the legs from the point and from the station to their nearest streets are included.

    Each result has ``network_distance_m`` (rounded to 0.1 m; ties by registry id), the straight-line
    ``distance_m`` and ``route``: the path as a list of (lon, lat) WGS 84 pairs from the point to the station.

    Two ways give the same answer. The street table of the area's graph (``coverage.street_table``: each
    street node's nearest stations, built in the background and rebuilt when the registry changes) answers when
    it can certify ``k`` stations passing ``flt``, with no database round trip. Otherwise the exact search:
    straight-line distance is a lower bound of the network distance, so it takes the stations within a
    straight-line bound L, routes to all of them with one Dijkstra limited to L, and stops once ``k`` are
    reachable within L (doubling L otherwise). The database is read in short connections between the routing
    passes, so no transaction stays open while the CPU routes.
    """
    keeper = street_table.keeper_for(engine)
    info, graph, origin, here = _placed(engine, keeper, lon, lat, flt=flt, profile=profile, settings=settings)
    if keeper is not None:
        held = keeper.table(info, profile, graph, settings.max_snap_m)
        if held is not None:
            found = _from_table(*held, origin, (lon, lat), here, k=k, flt=flt,
                                to_ll=_transformer(graph.crs_epsg, SRID))
            if found is not None:
                keeper.counts["table"] += 1
                return found
        keeper.counts["exact"] += 1
    return _exact(engine, info, graph, origin, here, lon, lat, k=k, flt=flt, settings=settings)


def nearest_from_table(engine: Engine, lon: float, lat: float, *, k: int, flt: StationFilter,
                       profile: str = "walk", settings: Settings) -> list[dict[str, Any]] | None:
    """What ``nearest_along_streets`` answers, when the street table can give it from memory alone (the registry
    and the area's graph and table already loaded, ``k`` stations certified); else None, having read no file and
    asked no database. Under a millisecond: the server calls it on its event loop, and hands only the rest to a
    worker thread (CPU-bound searches in threads would queue the loop behind them)."""
    keeper = street_table.keeper_for(engine)
    info = keeper.area_at(lon, lat, flt.area) if keeper is not None else None
    if keeper is None or info is None:
        return None
    graph = loaded_area_graph(info, profile, settings)
    if graph is None:
        return None
    held = keeper.table(info, profile, graph, settings.max_snap_m)
    if held is None:
        return None
    here = _transformer(SRID, graph.crs_epsg).transform(lon, lat)
    origin = snap_points(graph, np.array([here]), max_snap_m=settings.max_snap_m)
    if origin.too_far[0]:
        return None  # the full search says why, in one place
    found = _from_table(*held, origin, (lon, lat), here, k=k, flt=flt, to_ll=_transformer(graph.crs_epsg, SRID))
    if found is not None:
        keeper.counts["table"] += 1
    return found


def exact_along_streets(engine: Engine, lon: float, lat: float, *, k: int, flt: StationFilter,
                        profile: str = "walk", settings: Settings) -> list[dict[str, Any]]:
    """What ``nearest_along_streets`` answers, always by the exact search (never the street table)."""
    info, graph, origin, here = _placed(engine, None, lon, lat, flt=flt, profile=profile, settings=settings)
    return _exact(engine, info, graph, origin, here, lon, lat, k=k, flt=flt, settings=settings)


def _placed(engine: Engine, keeper: street_table.TableKeeper | None, lon: float, lat: float, *,
            flt: StationFilter, profile: str,
            settings: Settings) -> tuple[AreaInfo, StreetGraph, Snapped, tuple[float, float]]:
    """The point's area (from the keeper's registry in memory when fresh, else the database), its ``profile``
    graph, the point snapped on it and its metric x, y; a point too far from the streets is refused."""
    info = keeper.area_at(lon, lat, flt.area) if keeper is not None else None
    if info is None:
        with engine.connect() as conn:
            info = _area_at(conn, lon, lat, flt.area)
    graph = load_area_graph(info, profile, settings)
    here = _transformer(SRID, graph.crs_epsg).transform(lon, lat)
    origin = snap_points(graph, np.array([here]), max_snap_m=settings.max_snap_m)
    if origin.too_far[0]:
        raise InvalidInput(f"lon/lat: ({lon}, {lat}) is {origin.offstreet_m[0]:.0f} m from the nearest {profile} "
                           f"street of area {info.name!r} (more than {settings.max_snap_m:g} m)")
    return info, graph, origin, here


def _exact(engine: Engine, info: AreaInfo, graph: StreetGraph, origin: Snapped, here: tuple[float, float],
           lon: float, lat: float, *, k: int, flt: StationFilter, settings: Settings) -> list[dict[str, Any]]:
    to_m = _transformer(SRID, graph.crs_epsg)
    to_ll = _transformer(graph.crs_epsg, SRID)
    area_flt = replace(flt, area=info.name)
    bound = 2000.0
    while True:
        # planar metres in the area's UTM zone differ from geodesic ones by well under 1 %
        with engine.connect() as conn:
            cands = stations_within(conn, lon, lat, bound * 1.01, area_flt)
        chosen: list[dict[str, Any]] = []
        if cands:
            xy = np.array([to_m.transform(c["lon"], c["lat"]) for c in cands])
            snapped = snap_points(graph, xy, max_snap_m=settings.max_snap_m)
            res = routes_from_point(graph, origin, snapped, limit_m=bound)
            for i, (c, d, route) in enumerate(zip(cands, res.distance_m, res.routes, strict=True)):
                if np.isfinite(d) and route is not None:
                    # door to door: the rider's and the station's legs to their streets are part of the way
                    d = d + origin.offstreet_m[0] + snapped.offstreet_m[i]
                    way = np.vstack([[here], np.asarray(route.coords), [xy[i]]])
                    rx, ry = to_ll.transform(way[:, 0], way[:, 1])
                    lonlat = [[round(float(a), 7), round(float(b), 7)] for a, b in zip(rx, ry, strict=True)]
                    chosen.append({**c, "network_distance_m": round(float(d), 1), "route": lonlat})
        chosen = [c for c in chosen if c["network_distance_m"] <= bound]
        if len(chosen) >= k or bound >= MAX_SEARCH_M:
            chosen.sort(key=lambda c: (c["network_distance_m"], c["id"]))
            return chosen[:k]
        bound *= 2


def _from_table(table: street_table.StreetTable, stations: street_table.AreaStations, origin: Snapped,
                lonlat: tuple[float, float], here: tuple[float, float], *, k: int, flt: StationFilter,
                to_ll: Transformer) -> list[dict[str, Any]] | None:
    """The answer of ``nearest_along_streets`` from the street table, or None when it cannot certify it."""
    want = frozenset(flt.amenities or ())
    kind, hours = flt.kind, flt.by_hours

    def accept(j: int) -> bool:
        st = stations.stations[j]
        if want and not want <= stations.amenities[j]:
            return False
        if kind is not None and st["kind"] != kind:
            return False
        return not hours or flt.passes(st["opening_hours"])

    found = street_table.nearest_in_table(table, origin, k, stations.ids, accept)
    if found is None:
        return None
    idx = np.array([f.station for f in found], dtype=np.int64)
    n = len(idx)
    lons, lats = np.full(n, lonlat[0]), np.full(n, lonlat[1])
    _, _, straight = GEOD.inv(lons, lats, stations.lon[idx], stations.lat[idx])
    ways = [np.vstack([[here], f.route, [[table.x[f.station], table.y[f.station]]]]) for f in found]
    out: list[dict[str, Any]] = []
    for f, metres, route in zip(found, np.atleast_1d(straight).tolist(), street_table.routes_lonlat(ways, to_ll),
                                strict=True):
        st = stations.stations[f.station]
        out.append({**st, "amenities": list(st["amenities"]), "distance_m": round(float(metres), 2),
                    "network_distance_m": round(f.distance_m, 1), "route": route})
    return out
