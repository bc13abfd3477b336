"""Street-network coverage: distance along the streets from each demand point to its nearest station.

Everything is in metres in one projected CRS (x east, y north), normally the UTM zone of the street graph.
The core works on arrays: the street graph (``yizhan.geo.streets.StreetGraph``) and ``Snapped`` points.

Model
-----
- An edge ``e`` runs from node ``u[e]`` to node ``v[e]`` along ``geometry[e]`` and is ``length[e]`` metres
  long (by default the planar length of the geometry, the same ruler as straight-line coverage; osmnx's
  great-circle ``length`` differs from it by up to ~0.2 %, see ``street_graph_from_networkx``). Travelling it
  forwards (u → v) costs ``length``; travelling it backwards costs ``length * reverse_factor``: 1 for two-way
  streets (every edge of an undirected walk graph), the ``contraflow_factor`` for one-way streets of a
  directed (bike) graph, ``inf`` where that is forbidden.
- Bike rule: a rider may push the bike against a one-way street at walking pace. That is counted as
  ``contraflow_factor`` (default 3: about 15 km/h riding against 5 km/h pushing, as routing engines do) times
  the length, so bike distances are "riding-equivalent metres". ``contraflow_factor=1`` gives plain metres
  with free contraflow, ``inf`` forbids it.
- Points (stations, demand) are snapped to the nearest edge: edge index and offset from ``u`` in metres.
  Points farther than ``max_snap_m`` from every street are flagged ``too_far`` and take no part.
- Nearest-edge snapping, not nearest node: a point beside the middle of a long block starts mid-block.
- Distances run FROM a demand point TO a station: one multi-source Dijkstra from all stations over the
  transposed graph, where each station is a virtual node joined to its edge's two end nodes.
- Network distances count from the snapped points. The off-street legs (point to its snapped point) are
  reported separately and added only with ``include_access=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from yizhan.coverage.area_raster import DEFAULT_PIXEL_M, buffered_lines_area
from yizhan.coverage.area_union import area_union
from yizhan.errors import InvalidInput
from yizhan.geo.streets import StreetGraph, edge_costs

DEFAULT_MAX_SNAP_M = 300.0


@dataclass
class Snapped:
    """Points placed on their nearest street edge (metres; x east, y north).

    Attributes
    ----------
    edge : ndarray of int64, shape (n,)
        Index of the nearest edge.
    offset_m : ndarray, shape (n,)
        Position along the edge from its ``u`` node, in metres of the edge's ``length`` (0 … length).
    offstreet_m : ndarray, shape (n,)
        Straight-line distance from the point to its snapped position.
    x, y : ndarray, shape (n,)
        The snapped position.
    too_far : ndarray of bool, shape (n,)
        Points farther than ``max_snap_m`` from every street; network functions leave them out.
    """

    edge: np.ndarray
    offset_m: np.ndarray
    offstreet_m: np.ndarray
    x: np.ndarray
    y: np.ndarray
    too_far: np.ndarray

    def __len__(self) -> int:
        return len(self.edge)

    def take(self, index: np.ndarray | list[int]) -> Snapped:
        """The points selected by ``index`` (positions or a boolean mask), in that order."""
        i = np.asarray(index)
        return Snapped(self.edge[i], self.offset_m[i], self.offstreet_m[i], self.x[i], self.y[i], self.too_far[i])


@dataclass
class NetworkNearest:
    """Per demand point its nearest station along the streets; per graph node the Dijkstra result.

    Attributes
    ----------
    station : ndarray of int64, shape (n_demand,)
        Index of the nearest station (the station's catchment); -1 when none is reachable within the limit
        or the demand point is too far from the streets.
    distance_m : ndarray, shape (n_demand,)
        Network distance in metres from the snapped demand point to the snapped station (plus both off-street
        legs when computed with ``include_access=True``); ``inf`` when no station is within the limit.
    covered : ndarray of bool, shape (n_demand,)
        ``distance_m <= radius_m``.
    access_m : ndarray, shape (n_demand,)
        Off-street legs of the demand point and of its station, metres (``nan`` without a station).
    node_dist : ndarray, shape (n_nodes,)
        Per graph node: metres to its nearest station (``inf`` beyond the limit).
    node_station : ndarray of int64, shape (n_nodes,)
        Per graph node: index of that station, -1 beyond the limit.
    """

    station: np.ndarray
    distance_m: np.ndarray
    covered: np.ndarray
    access_m: np.ndarray
    node_dist: np.ndarray
    node_station: np.ndarray


def snap_points(graph: StreetGraph, xy: np.ndarray, *, max_snap_m: float = DEFAULT_MAX_SNAP_M) -> Snapped:
    """Place points on their nearest street edge (not merely the nearest node).

    Parameters
    ----------
    graph : StreetGraph
        The street graph.
    xy : ndarray, shape (n, 2)
        Points as x east, y north in metres of the graph's CRS.
    max_snap_m : float
        Points farther than this many metres from every street are flagged ``too_far`` (still snapped).

    Returns
    -------
    Snapped
        Edge, offset along it from ``u`` (metres), off-street distance, snapped x/y and the ``too_far`` mask.
    """
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(pts)):
        raise InvalidInput("points to snap must have finite x/y metres")
    n = len(pts)
    if n == 0:
        empty = np.empty(0)
        return Snapped(np.empty(0, dtype=np.int64), empty, empty, empty, empty, np.empty(0, dtype=bool))
    geoms = cast(np.ndarray, shapely.points(pts))  # (n, 2) coordinates give an array of n Points
    # query in a serpentine order of 250 m cells: neighbouring queries share tree nodes (~3x faster)
    cell = np.floor((pts - pts.min(axis=0)) / 250.0).astype(np.int64)
    order = np.lexsort((np.where(cell[:, 0] % 2 == 1, -cell[:, 1], cell[:, 1]), cell[:, 0]))
    (src, dst), dist = graph.tree().query_nearest(geoms[order], return_distance=True, all_matches=False)
    edge = np.empty(n, dtype=np.int64)
    edge[order[src]] = dst
    off = np.empty(n)
    off[order[src]] = dist
    lines = graph.geometry[edge]
    along = shapely.line_locate_point(lines, geoms)
    glen = shapely.length(lines)
    snapped = shapely.get_coordinates(shapely.line_interpolate_point(lines, along))
    length = graph.length[edge]
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.where(glen > 0, np.clip(along / glen, 0.0, 1.0) * length, 0.0)
    return Snapped(edge=edge, offset_m=offset, offstreet_m=off, x=snapped[:, 0], y=snapped[:, 1],
                   too_far=off > max_snap_m)


def node_distances(graph: StreetGraph, station_snap: Snapped, *, limit_m: float,
                   include_access: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every node's network distance to its nearest station: one multi-source Dijkstra over all stations.

    Each usable station (not ``too_far``) becomes a virtual node joined to its edge's end nodes by the partial
    costs, and a single ``scipy.sparse.csgraph.dijkstra`` with ``min_only=True`` runs from all of them over
    the transposed graph, so distances are FROM the node TO the station.

    Parameters
    ----------
    graph : StreetGraph
    station_snap : Snapped
        Snapped stations.
    limit_m : float
        Search radius in metres; nodes farther from every station get ``inf``.
    include_access : bool
        Add each station's off-street leg to its distances.

    Returns
    -------
    node_dist : ndarray, shape (n_nodes,)
        Metres to the nearest station (``inf`` beyond ``limit_m``).
    node_station : ndarray of int64, shape (n_nodes,)
        Index into the stations, -1 beyond ``limit_m``.
    """
    n = graph.n_nodes
    ok = np.flatnonzero(~station_snap.too_far)
    if len(ok) == 0:
        return np.full(n, np.inf), np.full(n, -1, dtype=np.int64)
    e = station_snap.edge[ok]
    s = station_snap.offset_m[ok]
    extra = station_snap.offstreet_m[ok] if include_access else np.zeros(len(ok))
    # a station at offset s on u → v is reached from u at cost s and from v at cost (length - s) · reverse_factor
    cost = np.stack([s, edge_costs(graph.length[e] - s, graph.reverse_factor[e])], axis=1) + extra[:, None]
    cols = np.stack([graph.u[e], graph.v[e]], axis=1)
    finite = np.isfinite(cost)
    a = graph.adjacency_t
    idx_dtype = a.indices.dtype
    indptr = np.concatenate([a.indptr, a.indptr[-1] + np.cumsum(finite.sum(axis=1), dtype=a.indptr.dtype)])
    indices = np.concatenate([a.indices, cols[finite].astype(idx_dtype)])
    data = np.concatenate([a.data, cost[finite]])
    size = n + len(ok)
    aug = csr_matrix((data, indices, indptr.astype(idx_dtype)), shape=(size, size))
    dist, _pred, src = dijkstra(aug, directed=True, indices=np.arange(n, size), min_only=True,
                                return_predecessors=True, limit=float(limit_m))
    node_dist = np.ascontiguousarray(dist[:n])
    src = src[:n].astype(np.int64)
    reached = src >= n
    node_station = np.full(n, -1, dtype=np.int64)
    node_station[reached] = ok[src[reached] - n]
    node_dist[~reached] = np.inf
    return node_dist, node_station


def demand_distances(graph: StreetGraph, station_snap: Snapped, demand_snap: Snapped, node_dist: np.ndarray,
                     node_station: np.ndarray, *, radius_m: float, limit_m: float | None = None,
                     include_access: bool = False) -> NetworkNearest:
    """Nearest station of every demand point from the node distances of ``node_distances``.

    A demand point at offset t on edge u → v (length L, reverse factor r) reaches the stations via v at
    ``(L - t) + node_dist[v]``, via u at ``t · r + node_dist[u]`` and, for a station at offset s on the same
    edge, directly at ``s - t`` (s >= t) or ``(t - s) · r``. Parameters as in ``network_nearest``; the node
    arrays must come from the same stations, limit and ``include_access``.
    """
    limit = float(radius_m if limit_m is None else limit_m)
    nd = len(demand_snap)
    ok_d = np.flatnonzero(~demand_snap.too_far)
    e = demand_snap.edge[ok_d]
    t = demand_snap.offset_m[ok_d]
    length, rf = graph.length[e], graph.reverse_factor[e]
    du, dv = graph.u[e], graph.v[e]
    via_v = (length - t) + node_dist[dv]
    via_u = edge_costs(t, rf) + node_dist[du]
    best = np.minimum(via_u, via_v)
    station = np.where(via_u <= via_v, node_station[du], node_station[dv])
    ok_s = np.flatnonzero(~station_snap.too_far)
    if len(ok_s) and len(ok_d):
        extra = station_snap.offstreet_m if include_access else np.zeros(len(station_snap))
        order = ok_s[np.argsort(station_snap.edge[ok_s], kind="stable")]
        per_edge = np.bincount(station_snap.edge[ok_s], minlength=graph.n_edges)
        first = np.concatenate([[0], np.cumsum(per_edge)[:-1]])
        lo = first[e]
        hi = lo + per_edge[e]
        for j in range(int((hi - lo).max(initial=0))):
            has = np.flatnonzero(lo + j < hi)
            k = order[lo[has] + j]
            s = station_snap.offset_m[k]
            tt = t[has]
            direct = np.where(s >= tt, s - tt, edge_costs(tt - s, rf[has])) + extra[k]
            better = direct < best[has]
            best[has[better]] = direct[better]
            station[has[better]] = k[better]
    distance = np.full(nd, np.inf)
    chosen = np.full(nd, -1, dtype=np.int64)
    distance[ok_d] = best
    chosen[ok_d] = station
    access = np.full(nd, np.nan)
    found = chosen >= 0
    access[found] = demand_snap.offstreet_m[found] + station_snap.offstreet_m[chosen[found]]
    if include_access:
        distance[found] += demand_snap.offstreet_m[found]
    beyond = ~(distance <= limit)
    distance[beyond] = np.inf
    chosen[beyond] = -1
    access[beyond] = np.nan
    return NetworkNearest(station=chosen, distance_m=distance, covered=distance <= radius_m, access_m=access,
                          node_dist=node_dist, node_station=node_station)


def network_nearest(graph: StreetGraph, station_snap: Snapped, demand_snap: Snapped, *, radius_m: float,
                    limit_m: float | None = None, include_access: bool = False) -> NetworkNearest:
    """Nearest station along the streets for every demand point, and coverage within ``radius_m``.

    Parameters
    ----------
    graph : StreetGraph
    station_snap, demand_snap : Snapped
        Stations and demand points snapped with ``snap_points``; ``too_far`` points are left out (stations
        serve nobody, demand gets station -1, distance ``inf``, not covered).
    radius_m : float
        Service radius in metres; a point at exactly the radius is covered.
    limit_m : float, optional
        Search limit in metres (default ``radius_m``; must not be smaller). Beyond it a demand point gets
        station -1 and distance ``inf``.
    include_access : bool
        False (default): distances count between the snapped points; the off-street legs are in ``access_m``.
        True: both off-street legs are added to the distance (and to the choice of station).

    Returns
    -------
    NetworkNearest
        Per demand point station, distance, covered and access legs; per node the Dijkstra result.
    """
    if not (np.isfinite(radius_m) and radius_m >= 0):
        raise InvalidInput(f"radius {radius_m} m: expected a finite number of metres >= 0")
    limit = float(radius_m if limit_m is None else limit_m)
    if not limit >= radius_m:
        raise InvalidInput(f"limit {limit_m} m is below the radius {radius_m} m")
    node_dist, node_station = node_distances(graph, station_snap, limit_m=limit, include_access=include_access)
    return demand_distances(graph, station_snap, demand_snap, node_dist, node_station, radius_m=radius_m,
                            limit_m=limit, include_access=include_access)


def served_demand(result: NetworkNearest, n_stations: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Covered demand (weight, or count without weights) that each station serves as the nearest one."""
    w = np.ones(len(result.station)) if weights is None else np.asarray(weights, dtype=np.float64)
    mask = result.covered & (result.station >= 0)
    return np.bincount(result.station[mask], weights=w[mask], minlength=n_stations)


def _substrings(lines: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Vectorised ``shapely.ops.substring``: the part of each line between ``start`` and ``end`` (line units)."""
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    seg = np.hypot(np.diff(coords[:, 0]), np.diff(coords[:, 1]))
    seg[idx[1:] != idx[:-1]] = 0.0
    along = np.concatenate([[0.0], np.cumsum(seg)])  # across all lines, not decreasing
    first = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    last = np.r_[first[1:], len(idx)] - 1
    cum = along - along[first][idx]
    inner = (cum > start[idx]) & (cum < end[idx])

    def at(dist: np.ndarray) -> np.ndarray:
        """The point ``dist`` along each line (``shapely.line_interpolate_point``, kept to the line's ends)."""
        pos = along[first] + np.clip(dist, 0.0, along[last] - along[first])
        i = np.clip(np.searchsorted(along, pos, side="right") - 1, first, np.maximum(last - 1, first))
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.clip(np.nan_to_num((pos - along[i]) / (along[i + 1] - along[i])), 0.0, 1.0)
        nxt = np.minimum(i + 1, last)
        return cast(np.ndarray, coords[i] + t[:, None] * (coords[nxt] - coords[i]))

    p0, p1 = at(start), at(end)
    k = np.arange(len(lines))
    line = np.concatenate([k, idx[inner], k])
    pos = np.concatenate([start, cum[inner], end])
    order = np.lexsort((pos, line))
    return np.asarray(shapely.linestrings(np.concatenate([p0, coords[inner], p1])[order], indices=line[order]))


def reached_pieces(graph: StreetGraph, station_snap: Snapped, node_dist: np.ndarray, node_station: np.ndarray, *,
                   radius_m: float, include_access: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The street pieces within ``radius_m`` of each station along the streets, and the station of each.

    A street piece belongs to the station it reaches first: fully reached edges whole, partly reached edges
    cut at the remaining distance, an edge reached by two stations split where their costs are equal, plus the
    part of the station's own edge within the radius. Arguments as in ``service_areas``.

    Returns
    -------
    pieces : ndarray of shapely LineStrings, shape (n_pieces,)
        In the graph's CRS (metres, x east, y north).
    owner : ndarray of int64, shape (n_pieces,)
        Index into the stations of each piece.
    """
    r = float(radius_m)
    length, rf, u, v = graph.length, graph.reverse_factor, graph.u, graph.v
    da, db = node_dist[u], node_dist[v]
    sa, sb = node_station[u], node_station[v]
    ra, rb = da <= r, db <= r
    with np.errstate(invalid="ignore", divide="ignore"):
        reach_a = np.where(ra, (r - np.where(ra, da, 0.0)) / rf, -1.0)  # from u backwards along the edge
        reach_b = np.where(rb, r - np.where(rb, db, 0.0), -1.0)  # from v forwards
        split = np.where(ra & rb, (length + np.where(rb, db, 0.0) - np.where(ra, da, 0.0)) / (1.0 + rf), 0.0)
    split = np.clip(np.nan_to_num(split, nan=0.0), 0.0, length)
    other = ra & rb & (sa != sb)
    end_a = np.minimum(length, reach_a)
    start_b = np.maximum(0.0, length - reach_b)
    end_a = np.where(other, np.minimum(end_a, split), end_a)
    start_b = np.where(other, np.maximum(start_b, split), start_b)
    whole_edge = ra & rb & (sa == sb) & (end_a >= start_b)
    pa = ra & ~whole_edge & (end_a > 0)
    pb = rb & ~whole_edge & (start_b < length)
    ok = np.flatnonzero(~station_snap.too_far)
    e_s = station_snap.edge[ok]
    s = station_snap.offset_m[ok]
    own = r - (station_snap.offstreet_m[ok] if include_access else np.zeros(len(ok)))
    with np.errstate(invalid="ignore", divide="ignore"):
        own_end = np.minimum(length[e_s], s + np.where(own > 0, own, 0.0) / rf[e_s])
    own_start = np.maximum(0.0, s - own)
    own_ok = own > 0
    edge = np.concatenate([np.flatnonzero(whole_edge), np.flatnonzero(pa), np.flatnonzero(pb), e_s[own_ok]])
    t0 = np.concatenate([np.zeros(whole_edge.sum()), np.zeros(pa.sum()), start_b[pb], own_start[own_ok]])
    t1 = np.concatenate([length[whole_edge], end_a[pa], length[pb], own_end[own_ok]])
    st = np.concatenate([sa[whole_edge], sa[pa], sb[pb], ok[own_ok]])
    keep = t1 > t0
    edge, t0, t1, st = edge[keep], t0[keep], t1[keep], st[keep]
    if len(edge) == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    lines = graph.geometry[edge]
    glen = shapely.length(lines)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(length[edge] > 0, glen / length[edge], 0.0)
    whole = (t0 <= 0) & (t1 >= length[edge])
    pieces = lines.copy()
    part = np.flatnonzero(~whole)
    if len(part):
        pieces[part] = _substrings(lines[part], t0[part] * scale[part], t1[part] * scale[part])
    return pieces, st


def service_areas(graph: StreetGraph, station_snap: Snapped, node_dist: np.ndarray, node_station: np.ndarray, *,
                  radius_m: float, buffer_m: float = 25.0, include_access: bool = False,
                  merge: bool = True) -> tuple[np.ndarray, Any]:
    """Service areas built from the street pieces within ``radius_m`` of each station, buffered and unioned.

    A street piece belongs to the station it reaches first: fully reached edges whole, partly reached edges
    cut at the remaining distance, an edge reached by two stations split where their costs are equal, plus the
    part of the station's own edge within the radius. Streets that are not reached (the far bank of a river
    without a bridge) stay outside, unlike a disc or convex hull.

    Parameters
    ----------
    graph : StreetGraph
    station_snap : Snapped
        The stations the node arrays were computed from.
    node_dist, node_station : ndarray, shape (n_nodes,)
        From ``network_nearest`` (``NetworkNearest.node_dist`` / ``node_station``) or ``node_distances``,
        computed with a limit >= ``radius_m`` and the same ``include_access``.
    radius_m : float
        Service radius in metres.
    buffer_m : float
        Half-width in metres of the area around each reached street piece (> 0).
    include_access : bool
        As used for the node arrays: the station's off-street leg shortens its reach.
    merge : bool
        Also return the union of all areas (``area_union``: the stations' outlines overlaid, their holes carried
        past the overlay); else None.

    Returns
    -------
    per_station : ndarray of shapely geometries, shape (n_stations,)
        (Multi)polygon per station in the graph's CRS (empty when it reaches no street).
    merged : shapely geometry or None
        Union of all of them.

    Notes
    -----
    This is map output, not part of the fast core. The per-station GEOS unions cost about 50 µs per street piece
    (8.8 s for the 174k pieces of the benchmark's 100k-node lattice with 1k stations); the merge of the stations'
    areas, 18–21 s there with one ``union_all``, is a few seconds with ``area_union`` (benchmarks/README.md, "Service
    areas"). ``reached_pieces`` gives the pieces.
    """
    if not buffer_m > 0:
        raise InvalidInput(f"buffer {buffer_m} m: expected a positive number of metres")
    pieces, st = reached_pieces(graph, station_snap, node_dist, node_station, radius_m=radius_m,
                                include_access=include_access)
    per_station = np.array([shapely.Polygon() for _ in range(len(station_snap))], dtype=object)
    if len(pieces) == 0:
        return per_station, (shapely.Polygon() if merge else None)
    # buffering each piece and unioning is ~10x faster than buffering one MultiLineString in GEOS
    order = np.argsort(st, kind="stable")
    blobs = shapely.buffer(pieces[order], buffer_m, quad_segs=4)
    owners, first = np.unique(st[order], return_index=True)
    for owner, group in zip(owners, np.split(blobs, first[1:]), strict=True):
        per_station[owner] = shapely.union_all(group)
    return per_station, (area_union(per_station[owners]) if merge else None)


EXACT_BELOW_PIECES = 20_000
FINE_GRID_BELOW_PIECES = 500_000
FINE_PIXEL_M, COARSE_PIXEL_M = DEFAULT_PIXEL_M, 10.0


class CoveredArea(NamedTuple):
    """The merged service area (``area``, in the graph's CRS) and how it was drawn: ``pixel_m`` is the grid's
    pixel in metres, None for the exact union."""

    area: Any
    pixel_m: float | None


def area_pixel_m(n_pieces: int, *, exact_below: int = EXACT_BELOW_PIECES) -> float | None:
    """How ``covered_area`` draws ``n_pieces`` reached street pieces: None for the exact union (below
    ``exact_below``), a grid of ``FINE_PIXEL_M`` metres below ``FINE_GRID_BELOW_PIECES`` (a city: seconds), else of
    ``COARSE_PIXEL_M`` (a metropolis or a province: 4 times fewer pixels; benchmarks/README.md, "Service areas")."""
    if n_pieces < exact_below:
        return None
    return FINE_PIXEL_M if n_pieces < FINE_GRID_BELOW_PIECES else COARSE_PIXEL_M


def covered_area(graph: StreetGraph, station_snap: Snapped, node_dist: np.ndarray, node_station: np.ndarray, *,
                 radius_m: float, buffer_m: float = 25.0, include_access: bool = False,
                 pixel_m: float | None = None, exact_below: int = EXACT_BELOW_PIECES) -> CoveredArea:
    """The merged service area of all stations: the street pieces within ``radius_m``, buffered and united.

    Below ``exact_below`` reached pieces it is the exact GEOS union of the buffered pieces (the same ground as
    ``service_areas(merge=True)``, about 50 µs a piece); from there on it is drawn on a grid
    (``area_raster.buffered_lines_area``) of ``pixel_m`` metres, by default as ``area_pixel_m`` says for the
    number of pieces. Arguments as in ``service_areas``; the area is in the graph's CRS (metres, x east, y north).
    The grid's ground is the exact buffer's to within a pixel: true circles where GEOS draws 16-gons, the blocks'
    sharp inner corners cut by the grid, so its area comes out a little larger (+0.3 % with 5 m pixels, +1 % with
    10 m on the benchmark's lattice; benchmarks/README.md, "Service areas"). ``service_areas`` gives the stations'
    own areas.
    """
    if not buffer_m > 0:
        raise InvalidInput(f"buffer {buffer_m} m: expected a positive number of metres")
    pieces, _ = reached_pieces(graph, station_snap, node_dist, node_station, radius_m=radius_m,
                               include_access=include_access)
    if len(pieces) == 0:
        return CoveredArea(shapely.Polygon(), None)
    if len(pieces) < exact_below:
        return CoveredArea(shapely.union_all(shapely.buffer(pieces, buffer_m, quad_segs=4)), None)
    pixel = pixel_m if pixel_m is not None else cast(float, area_pixel_m(len(pieces), exact_below=exact_below))
    return CoveredArea(buffered_lines_area(pieces, buffer_m, pixel_m=pixel), pixel)
