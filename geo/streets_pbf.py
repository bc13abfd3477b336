"""Street graphs straight from an OpenStreetMap extract (.osm.pbf or .osm) to a ``StreetGraph``, without osmnx.

``yizhan.geo.streets_osmnx.streets_from_extract`` goes through a temporary OSM XML file, osmnx and networkx: fine for
a district, far too slow and memory-hungry for a province. This module reads the extract once with pyosmium
(ways filtered on ``highway`` in C++, node locations from a libosmium location index) and builds the graph
with numpy: one array entry per way node, no Python object per OSM node.

Topology: the same as osmnx's ``graph_from_xml(..., simplify=True)``
------------------------------------------------------------------------
- The ways kept are those where ``yizhan.geo.streets_osmnx.is_street(tags, profile)`` holds. Node references without
  a location are dropped (the way runs straight past them), repeated consecutive nodes are collapsed, and
  ways with fewer than two nodes left are dropped, as the osmnx route does.
- One-way (bike only; walk ignores it): a way is one-way when ``oneway`` is one of osmnx's values ``yes``,
  ``true``, ``1``, ``-1``, ``reverse``, ``T``, ``F`` or when ``junction=roundabout``; ``oneway=-1``, ``reverse``
  and ``T`` run against the node order. A one-way edge costs ``contraflow_factor`` (3) times its length
  backwards (see ``yizhan.coverage.network``), exactly as ``street_graph_from_networkx`` reads the directed
  osmnx graph (a street without a reverse twin is one-way).
- Graph nodes are osmnx's "endpoints" of the segment multigraph (each way segment a→b, plus b→a when two-way):
  nodes with no incoming or no outgoing segment, or not exactly two neighbours with 2 or 4 incident directed
  segments, i.e. dead ends, intersections, and one-way/two-way changes. All other nodes are geometry vertices,
  so two ways that merely continue each other (a way split where its name or surface changes) become one
  edge, as in osmnx. A node that is the end of one way and an inner node of another without being an
  endpoint (only possible where ways overlap) is made a graph node as well; osmnx would not.
- Rings without any endpoint (an isolated roundabout or loop path) are dropped, as osmnx's ``remove_rings``
  does; then only the largest weakly connected component is kept.

Coordinates are projected with pyproj from WGS 84 (lon, lat) to ``crs_epsg`` (default: the UTM zone of the
extract's centre: the header's bounding box when the file has one, else the street nodes' bounding box), and
edge lengths are planar metres in that CRS. Data © OpenStreetMap contributors (ODbL).

The steps are public for ``yizhan.geo.street_parts``, which builds one graph per partition of a province from the
same rules: ``street_way_chunks`` (the ways, read once, chunk by chunk), ``clean_ways``, ``endpoint_nodes``,
``graph_nodes`` and ``street_graph_from_ways`` (the graph of cleaned ways, with a chosen component and forced
graph nodes).
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import pyproj
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from yizhan.errors import InvalidInput
from yizhan.geo.osm import EXPECTED_FORMAT, checked_extract, iterate_extract, reading_error
from yizhan.geo.projection import utm_epsg
from yizhan.geo.streets import DEFAULT_CONTRAFLOW_FACTOR, StreetGraph, compile_street_graph
from yizhan.geo.streets_osmnx import PROFILES, is_street

# osmnx's values (osmnx.graph._add_paths), so that both routes read one-way tags alike
ONEWAY_VALUES = frozenset({"yes", "true", "1", "-1", "reverse", "T", "F"})
REVERSED_VALUES = frozenset({"-1", "reverse", "T"})
_UNDEFINED = 2147483647  # libosmium's coordinate of an undefined location (NodeRef.x / .y)
_CHUNK = 1 << 16  # ways whose WKB is decoded at once
_PROGRESS_EVERY = 1 << 18  # ways between two "reading" messages


def _noop(_msg: str) -> None:
    return None


def _oneway(tags: Any) -> int:
    """1: one-way along the node order, -1: against it, 0: two-way (osmnx's rules)."""
    value = tags.get("oneway")
    if value in ONEWAY_VALUES:
        return -1 if value in REVERSED_VALUES else 1
    return 1 if tags.get("junction") == "roundabout" else 0


def _fallback_wkb(nodes: Any) -> str:
    """Hex WKB LineString of a way node list like ``WKBFactory.create_linestring``, nan where unlocated."""
    xy = np.array([(nd.x, nd.y) for nd in nodes], dtype=np.float64)
    xy[(xy == _UNDEFINED).any(axis=1)] = np.nan
    return (struct.pack("<BII", 1, 2, len(xy)) + (xy / 1e7).astype("<f8").tobytes()).hex()


def _decode_wkb(chunk: list[str], counts: np.ndarray) -> np.ndarray:
    """(lon, lat) in degrees, shape (counts.sum(), 2), of little-endian hex WKB LineStrings of ``counts`` points."""
    raw = np.frombuffer(bytes.fromhex("".join(chunk)), dtype=np.uint8)
    size = 9 + 16 * counts
    start = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(size[:-1], out=start[1:])
    if len(raw) != size.sum() or np.any(raw[start] != 1):
        raise InvalidInput("unexpected WKB from pyosmium: expected little-endian LineStrings of every way node")
    body = np.ones(len(raw), dtype=bool)
    body[(start[:, None] + np.arange(9)).ravel()] = False
    return raw[body].view("<f8").reshape(-1, 2)


def extract_box(path: Path) -> tuple[float, float, float, float]:
    """The header's bounding box ``(west, south, east, north)`` in WGS 84 degrees; all nan when it has none."""
    try:
        box = osmium.FileProcessor(str(path)).header.box()
    except (RuntimeError, ValueError, OSError) as exc:
        raise reading_error(path, exc) from exc
    if not box.valid():
        return (math.nan,) * 4
    return (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)


def street_way_chunks(path: Path, profile: str, node_index: str,
                      progress: Callable[[str], None]) -> Iterator[tuple[np.ndarray, ...]]:
    """The street ways of an extract in file order, read once, in chunks of at most 65,536 ways.

    Each chunk is ``refs`` (int64 OSM node ids, one entry per way node), ``lonlat`` (float64, shape (n, 2), WGS 84
    degrees in (lon, lat) order; nan where the location is missing), ``n_nodes`` (int64 per way) and ``oneway``
    (int8 per way, see ``_oneway``; 0 for walk). Coordinates come from libosmium's WKB writer (one C++ call per
    way), not one Python object per node; memory holds one chunk and the node-location index ``node_index``.
    """
    directed = profile == "bike"
    refs, counts, oneway = array("q"), array("q"), array("b")
    chunk: list[str] = []
    fab = osmium.geom.WKBFactory()
    every_node = osmium.geom.ALL
    try:
        proc = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
                .with_locations(node_index)
                .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
                .with_filter(osmium.filter.KeyFilter("highway")))
    except (RuntimeError, ValueError, OSError) as exc:
        raise reading_error(path, exc) from exc
    n_highway = n_streets = n_refs = 0

    def _flush() -> tuple[np.ndarray, ...]:
        n = np.frombuffer(counts, dtype=np.int64).copy()
        return (np.frombuffer(refs, dtype=np.int64).copy(), _decode_wkb(chunk, n), n,
                np.frombuffer(oneway, dtype=np.int8).copy())

    for way in iterate_extract(path, proc):
        n_highway += 1
        if not n_highway % _PROGRESS_EVERY:
            progress(f"reading: {n_highway:,} highway ways, {n_streets:,} streets, {n_refs:,} node refs")
        tags = way.tags
        if not is_street(tags, profile):
            continue
        nodes = way.nodes
        ids = [nd.ref for nd in nodes]
        refs.extend(ids)
        counts.append(len(ids))
        oneway.append(_oneway(tags) if directed else 0)
        n_streets += 1
        n_refs += len(ids)
        try:
            chunk.append(fab.create_linestring(nodes, use_nodes=every_node))
        except (osmium.InvalidLocationError, RuntimeError):  # a node without location, or fewer than 2 nodes
            chunk.append(_fallback_wkb(nodes))
        if len(chunk) == _CHUNK:
            yield _flush()
            refs, counts, oneway, chunk = array("q"), array("q"), array("b"), []
    if chunk:
        yield _flush()
    progress(f"read: {n_highway:,} highway ways, {n_streets:,} {profile} streets, {n_refs:,} node refs")


def _read_streets(path: Path, profile: str, node_index: str,
                  progress: Callable[[str], None]) -> tuple[np.ndarray, ...]:
    """Every street way of the extract at once: ``street_way_chunks`` joined, and the header box (see there)."""
    parts = list(street_way_chunks(path, profile, node_index, progress))
    if not parts:
        return (np.empty(0, dtype=np.int64), np.empty((0, 2)), np.empty(0, dtype=np.int64),
                np.empty(0, dtype=np.int8), np.array(extract_box(path)))
    refs, lonlat, counts, oneway = (np.concatenate(a) for a in zip(*parts, strict=True))
    return refs, lonlat, counts, oneway, np.array(extract_box(path))


def clean_ways(refs: np.ndarray, lonlat: np.ndarray, counts: np.ndarray,
                oneway: np.ndarray) -> tuple[np.ndarray, ...]:
    """Drop unlocated refs and repeated consecutive nodes, reverse ``oneway=-1`` ways, drop ways of < 2 nodes.

    Returns ``refs``, ``lonlat``, ``way`` (way index of each entry, non-decreasing) and ``oneway`` (bool per
    way index: one-way along the new node order).
    """
    way = np.repeat(np.arange(len(counts)), counts)
    start = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=start[1:])
    pos = np.arange(len(refs)) - start[way]
    rev = oneway[way] < 0
    order = np.where(rev, start[way] + counts[way] - 1 - pos, np.arange(len(refs)))
    refs, lonlat = refs[order], lonlat[order]
    keep = np.isfinite(lonlat).all(axis=1)
    refs, lonlat, way = refs[keep], lonlat[keep], way[keep]
    dup = np.zeros(len(refs), dtype=bool)
    dup[1:] = (refs[1:] == refs[:-1]) & (way[1:] == way[:-1])
    refs, lonlat, way = refs[~dup], lonlat[~dup], way[~dup]
    n_left = np.bincount(way, minlength=len(counts))
    keep = n_left[way] >= 2
    return refs[keep], lonlat[keep], way[keep], oneway != 0


def endpoint_nodes(node: np.ndarray, way: np.ndarray, oneway: np.ndarray, n: int) -> np.ndarray:
    """osmnx's ``_is_endpoint`` for every node of the segment multigraph (bool, shape (n,)).

    ``node`` are compact node indices of the way nodes in way order, ``way`` their way index, ``oneway`` per
    way. An endpoint has no incoming or no outgoing segment, or not exactly 2 neighbours and 2 or 4 segments.
    """
    seg = np.flatnonzero(way[1:] == way[:-1])
    a, b = node[seg], node[seg + 1]
    two = ~oneway[way[seg]]
    out_deg = np.bincount(a, minlength=n) + np.bincount(b[two], minlength=n)
    in_deg = np.bincount(b, minlength=n) + np.bincount(a[two], minlength=n)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs = np.sort(lo * np.int64(n) + hi, kind="stable")  # np.unique is ~40x slower here (numpy 2.4)
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]
    neighbours = np.bincount(pairs // n, minlength=n) + np.bincount(pairs % n, minlength=n)
    deg = in_deg + out_deg
    endpoint: np.ndarray = (in_deg == 0) | (out_deg == 0) | ~((neighbours == 2) & ((deg == 2) | (deg == 4)))
    return endpoint


def graph_nodes(node: np.ndarray, way: np.ndarray, endpoint: np.ndarray) -> np.ndarray:
    """The graph nodes (bool per compact node): osmnx's endpoints, and a way end inside another way.

    A way end that is no endpoint becomes a graph node too unless exactly two way ends meet there and no way
    passes through it (two ways merely continuing each other); only overlapping ways make such nodes.
    """
    n = len(endpoint)
    first = np.ones(len(node), dtype=bool)
    first[1:] = way[1:] != way[:-1]
    way_end = first.copy()
    way_end[:-1] |= first[1:]
    way_end[-1:] = True
    end_occ = np.bincount(node[way_end], minlength=n)
    inner_occ = np.bincount(node[~way_end], minlength=n)
    odd = ~endpoint & (end_occ > 0) & ~((end_occ == 2) & (inner_occ == 0))
    graph_node: np.ndarray = endpoint | odd
    return graph_node


def _chains(node: np.ndarray, way: np.ndarray, oneway: np.ndarray,
            graph_node: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ways at graph nodes and join pieces through the nodes where two ways merely continue each other.

    Returns ``seq`` (positions into the way-node arrays, the vertices of every edge in travel order),
    ``edge_of`` (edge index of each ``seq`` entry, non-decreasing) and ``edge_oneway`` (bool per edge).
    Edges run between graph nodes (``graph_nodes``); rings through no graph node are left out.
    """
    m = len(node)
    first = np.ones(m, dtype=bool)
    first[1:] = way[1:] != way[:-1]
    last = np.ones(m, dtype=bool)
    last[:-1] = first[1:]
    way_end = first | last
    brk = np.flatnonzero(way_end | graph_node[node])
    same = way[brk[1:]] == way[brk[:-1]]
    ps, pe = brk[:-1][same], brk[1:][same]  # piece p covers positions ps[p] .. pe[p] of one way
    n_p = len(ps)
    p_oneway = oneway[way[ps]]
    # incidences of pieces at junctions: piece index, side (0: start, 1: end); two per junction, paired
    inc_node = np.concatenate([node[ps], node[pe]])
    inc_piece = np.concatenate([np.arange(n_p), np.arange(n_p)])
    inc_side = np.repeat(np.array([0, 1], dtype=np.int64), n_p)
    at = np.flatnonzero(~graph_node[inc_node])
    at = at[np.argsort(inc_node[at], kind="stable")]
    pair = at.reshape(-1, 2)
    # directed pieces: d < n_p runs piece d forwards, d >= n_p runs piece d - n_p backwards (two-way only);
    # leaving a piece through an incidence continues on the partner's piece, away from the partner's side
    partner = np.full(2 * n_p, -1, dtype=np.int64)
    partner[pair[:, 0]], partner[pair[:, 1]] = pair[:, 1], pair[:, 0]
    succ = np.full(2 * n_p, -1, dtype=np.int64)
    out_fwd, out_bwd = partner[n_p:], partner[:n_p]  # forwards leaves by the end side, backwards by the start
    for leave, d in ((out_fwd, np.arange(n_p)), (out_bwd, np.arange(n_p, 2 * n_p))):
        ok = leave >= 0
        q, side = inc_piece[leave[ok]], inc_side[leave[ok]]
        succ[d[ok]] = np.where(side == 0, q, q + n_p)
    valid = np.concatenate([np.ones(n_p, dtype=bool), ~p_oneway])
    succ[~valid] = -1
    linked = np.flatnonzero(succ >= 0)
    succ[linked[~valid[succ[linked]]]] = -1  # never happens by the degree rule; keeps chains one-way-consistent
    # list ranking by pointer jumping: rank = pieces to go to the chain's tail, tail = its last directed piece
    rank = (succ >= 0).astype(np.int64)
    tail = np.where(succ >= 0, succ, np.arange(2 * n_p))
    nxt = succ.copy()
    for _ in range(int(np.ceil(np.log2(max(n_p, 1)))) + 2):
        go = np.flatnonzero(nxt >= 0)
        if len(go) == 0:
            break
        ahead = nxt[go]
        rank[go] += rank[ahead]
        tail[go] = tail[ahead]
        nxt[go] = nxt[ahead]
    live = np.flatnonzero(valid & (nxt < 0))  # the rest circles forever: rings without a graph node
    order = live[np.lexsort((-rank[live], tail[live]))]
    chain_start = np.ones(len(order), dtype=bool)
    chain_start[1:] = tail[order[1:]] != tail[order[:-1]]
    chain = np.cumsum(chain_start) - 1
    head = order[chain_start][chain]
    # a two-way chain appears in both directions: keep the one whose head piece is the lower (or forwards)
    h, t = head % n_p, tail[order] % n_p
    keep = p_oneway[order % n_p] | (h < t) | ((h == t) & (head < n_p))
    order, chain_start = order[keep], chain_start[keep]
    edge = np.cumsum(chain_start) - 1
    # vertices: every directed piece's positions, less its first one unless it starts the edge
    fwd = order < n_p
    p = order % n_p
    skip = (~chain_start).astype(np.int64)
    size = pe[p] - ps[p] + 1 - skip
    item = np.repeat(np.arange(len(order)), size)
    offsets = np.zeros(len(order), dtype=np.int64)
    np.cumsum(size[:-1], out=offsets[1:])
    k = np.arange(len(item)) - offsets[item] + skip[item]
    seq = np.where(fwd[item], ps[p][item] + k, pe[p][item] - k)
    edge_oneway = p_oneway[p[chain_start]]
    return seq, edge[item], edge_oneway


def street_graph_from_pbf(path: str | Path, *, profile: str = "walk", crs_epsg: int | None = None,
                          progress: Callable[[str], None] | None = None,
                          contraflow_factor: float = DEFAULT_CONTRAFLOW_FACTOR,
                          node_index: str = "flex_mem") -> StreetGraph:
    """Street graph of an OSM extract for walking or cycling, built from the file without osmnx/networkx.

    Same network as ``street_graph_from_networkx(streets_from_extract(path, profile=profile))``: the
    ``is_street`` ways, split at osmnx's graph nodes, one-way honoured for bike only, largest weakly connected
    component (see the module notes for the rules and the rare differences).

    Parameters
    ----------
    path : str or Path
        An .osm.pbf or .osm file (anything pyosmium reads).
    profile : {"walk", "bike"}
        Travel mode: walk is undirected; bike is directed with one-way streets costing ``contraflow_factor``
        times their length backwards.
    crs_epsg : int, optional
        EPSG code of the projected (metre) CRS; default: WGS 84 / UTM zone of the extract's centre.
    progress : callable, optional
        Called with one-line messages: ``"reading: ..."`` while ways are read (every 262,144 highway ways),
        then one message as each phase ends: ``"read: ..."``, ``"topology: ..."``, ``"component: ..."``,
        ``"geometry: ..."``, ``"compile: ..."``.
    contraflow_factor : float
        Backward cost multiplier of one-way streets for bike (>= 1; ``inf`` forbids contraflow).
    node_index : str
        libosmium node-location index: ``"flex_mem"`` (default, in memory, dense or sparse as the ids
        require) or e.g. ``"sparse_file_array,/tmp/nodes.idx"`` for files whose locations do not fit in memory.

    Returns
    -------
    StreetGraph
        Node x/y in metres (x east, y north) of ``crs_epsg``, ``node_id`` the OSM node ids, edge geometries in
        travel order u → v, planar lengths in metres, ``directed`` True for bike.

    Raises
    ------
    InvalidInput
        If the file is missing or unreadable, the profile or CRS is unusable, or there are no streets.
    """
    p = checked_extract(path)
    if profile not in PROFILES:
        raise InvalidInput(f"profile {profile!r} is not known; expected one of {', '.join(PROFILES)}")
    say = progress or _noop
    refs, lonlat, counts, oneway, header = _read_streets(p, profile, node_index, say)
    refs, lonlat, way, oneway = clean_ways(refs, lonlat, counts, oneway)
    if len(refs) == 0:
        raise InvalidInput(f"{p}: no {profile} streets found; expected {EXPECTED_FORMAT} with highway ways")

    def project(lonlat: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        epsg = crs_epsg
        if epsg is None:
            west, south, east, north = header
            if not np.isfinite(header).all():
                west, south, east = lonlat[:, 0].min(), lonlat[:, 1].min(), lonlat[:, 0].max()
                north = lonlat[:, 1].max()
            epsg = utm_epsg((west + east) / 2, (south + north) / 2)
        transformer = pyproj.Transformer.from_crs(4326, projected_crs(epsg), always_xy=True)
        px, py = transformer.transform(lonlat[:, 0], lonlat[:, 1])
        return np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64), int(epsg)

    return street_graph_from_ways(refs, lonlat, way, oneway, profile=profile, project=project,
                                  contraflow_factor=contraflow_factor, progress=say, source=str(p))


def projected_crs(crs_epsg: int) -> pyproj.CRS:
    """The CRS of an EPSG code, checked to be projected (metres).

    Raises
    ------
    InvalidInput
        If the code is unknown or names a geographic CRS.
    """
    try:
        crs = pyproj.CRS.from_epsg(int(crs_epsg))
    except pyproj.exceptions.CRSError as exc:
        raise InvalidInput(f"EPSG:{crs_epsg}: not a known CRS ({exc}); expected a projected CRS in metres") from exc
    if not crs.is_projected:
        raise InvalidInput(f"EPSG:{crs_epsg}: expected a projected CRS in metres, not a geographic one")
    return crs


def street_graph_from_ways(refs: np.ndarray, coords: np.ndarray, way: np.ndarray, oneway: np.ndarray, *,
                           profile: str,
                           project: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, int]],
                           contraflow_factor: float = DEFAULT_CONTRAFLOW_FACTOR,
                           progress: Callable[[str], None] | None = None, source: str = "streets",
                           forced: np.ndarray | None = None, keep_ids: np.ndarray | None = None) -> StreetGraph:
    """The street graph of cleaned street ways (``clean_ways``' output), with the module's topology rules.

    Parameters
    ----------
    refs, coords, way, oneway : ndarray
        As ``clean_ways`` returns them: OSM node id, coordinates (shape (n, 2), any order ``project`` reads)
        and way index of every way node, ``oneway`` per way index.
    profile : {"walk", "bike"}
        Bike makes a directed graph (see ``street_graph_from_pbf``).
    project : callable
        Given the coordinate rows of the graph's distinct vertices (shape (k, 2)), returns their x east and y
        north in metres of a projected CRS and that CRS's EPSG code.
    contraflow_factor : float
        Backward cost multiplier of one-way streets for bike.
    progress : callable, optional
        Called with ``"topology: ..."``, ``"component: ..."``, ``"geometry: ..."``, ``"compile: ..."``.
    source : str
        Named in error messages.
    forced : ndarray of bool, optional
        Per way-node entry: make the node a graph node whatever its degree (a way cut there, see
        ``yizhan.geo.street_parts``).
    keep_ids : ndarray of int64, optional
        Sorted OSM ids of the nodes whose component is kept; default: the largest weakly connected component
        (most graph nodes; of equal ones, that of the smallest graph-node id).

    Raises
    ------
    InvalidInput
        If the ways form only closed rings.
    """
    say = progress or _noop
    ids, first, node = np.unique(refs, return_index=True, return_inverse=True)
    endpoint = endpoint_nodes(node, way, oneway, len(ids))
    graph_node = graph_nodes(node, way, endpoint)
    if forced is not None:
        graph_node[node[forced]] = True
    seq, edge_of, edge_oneway = _chains(node, way, oneway, graph_node)
    if len(seq) == 0:
        raise InvalidInput(f"{source}: the {profile} streets form only closed rings; expected a street network")
    ends = np.flatnonzero(np.r_[True, edge_of[1:] != edge_of[:-1]])
    u_osm, v_osm = node[seq[ends]], node[seq[np.r_[ends[1:], len(seq)] - 1]]
    gn, inv = np.unique(np.concatenate([u_osm, v_osm]), return_inverse=True)
    say(f"topology: {len(ids):,} distinct street nodes, {len(ends):,} edges between {len(gn):,} graph nodes")
    n_e = len(ends)
    eu, ev = inv[:n_e], inv[n_e:]
    if keep_ids is None:  # largest weakly connected component over the graph nodes
        adj = coo_matrix((np.ones(n_e, dtype=np.int8), (eu, ev)), shape=(len(gn), len(gn)))
        n_comp, label = connected_components(adj, directed=True, connection="weak")
        keep_node = label == np.argmax(np.bincount(label))
        what = f"of {n_comp:,} components"
    else:
        at = np.minimum(np.searchsorted(keep_ids, ids[gn]), max(len(keep_ids) - 1, 0))
        keep_node = (keep_ids[at] == ids[gn]) if len(keep_ids) else np.zeros(len(gn), dtype=bool)
        what = "in the chosen component"
    keep_edge = keep_node[eu]
    if not keep_edge.any():
        raise InvalidInput(f"{source}: none of the {profile} streets is in the chosen component")
    say(f"component: {int(keep_node.sum()):,} nodes, {int(keep_edge.sum()):,} edges kept {what}")
    new_index = np.cumsum(keep_node) - 1
    gn, eu, ev = gn[keep_node], new_index[eu[keep_edge]], new_index[ev[keep_edge]]
    edge_oneway = edge_oneway[keep_edge]
    in_kept = keep_edge[edge_of]
    seq, edge_of = seq[in_kept], np.cumsum(keep_edge)[edge_of[in_kept]] - 1
    # projection: every distinct vertex once
    used, vert = np.unique(node[seq], return_inverse=True)
    px, py, crs_epsg = project(coords[first[used]])
    geometry = np.asarray(shapely.linestrings(np.column_stack([px[vert], py[vert]]), indices=edge_of))
    gx = np.empty(len(gn))
    gy = np.empty(len(gn))
    at = np.searchsorted(used, gn)
    gx[:], gy[:] = px[at], py[at]
    say(f"geometry: {len(seq):,} vertices projected to EPSG:{crs_epsg}")
    directed = profile == "bike"
    if directed:  # compile_street_graph reads a street without a reverse twin as one-way
        two = np.flatnonzero(~edge_oneway)
        eu, ev = np.concatenate([eu, ev[two]]), np.concatenate([ev, eu[two]])
        geometry = np.concatenate([geometry, geometry[two]])
    graph = compile_street_graph(gx, gy, eu, ev, crs_epsg=int(crs_epsg), geometry=geometry, directed=directed,
                                 contraflow_factor=contraflow_factor, node_id=ids[gn])
    say(f"compile: {graph.n_nodes:,} nodes, {graph.n_edges:,} edges")
    return graph
