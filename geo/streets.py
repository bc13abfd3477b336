"""The street graph's data structure: nodes and edges compiled to arrays, in metres.

Everything is in metres in one projected CRS (x east, y north), normally the UTM zone of the street graph.
Readers build it from an OpenStreetMap extract (``yizhan.geo.streets_pbf``) or from an osmnx graph
(``street_graph_from_networkx`` here, graphs from ``yizhan.geo.streets_osmnx``); shortest paths over it live in
``yizhan.coverage.network``.

An edge ``e`` runs from node ``u[e]`` to node ``v[e]`` along ``geometry[e]`` and is ``length[e]`` metres long.
Travelling it forwards (u → v) costs ``length``; backwards ``length * reverse_factor`` (1 for two-way streets,
the ``contraflow_factor`` for one-way streets of a directed bike graph, ``inf`` where that is forbidden).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from scipy.sparse import csr_matrix

from yizhan.errors import InvalidInput

FORMAT = "yizhan.StreetGraph/1"
DEFAULT_CONTRAFLOW_FACTOR = 3.0


@dataclass(eq=False)
class StreetGraph:
    """A street graph compiled to arrays (metres in the projected CRS ``crs_epsg``; x east, y north).

    Attributes
    ----------
    x, y : ndarray, shape (n_nodes,)
        Node coordinates in metres.
    node_id : ndarray of int64, shape (n_nodes,)
        The source graph's node ids (OSM ids for osmnx graphs; positions when ids are not integers).
    u, v, length : ndarray, shape (n_edges,)
        Edge end nodes (indices into the node arrays) and edge length in metres; the edge runs u → v. A
        two-way street is one edge, not one per direction.
    reverse_factor : ndarray of float, shape (n_edges,)
        Cost of travelling the edge v → u as a multiple of its length: 1 for two-way streets, the contraflow
        factor for one-way streets, ``inf`` where forbidden.
    geometry : ndarray of shapely.LineString, shape (n_edges,)
        Edge geometries from u to v (straight segments where the source graph had none).
    crs_epsg : int
        EPSG code of the projected CRS.
    directed : bool
        False for walking (one-way tags ignored), True when one-way streets cost more backwards.
    adjacency_t : scipy.sparse.csr_matrix, shape (n_nodes, n_nodes)
        TRANSPOSED travel costs: entry ``[b, a]`` is the cheapest cost in metres of travelling a → b along one
        edge. Dijkstra from the stations over it gives each node's distance TO its nearest station.
        ``adjacency_t.T`` is the ordinary (from, to) adjacency.
    """

    x: np.ndarray
    y: np.ndarray
    node_id: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    reverse_factor: np.ndarray
    geometry: np.ndarray
    crs_epsg: int
    directed: bool
    adjacency_t: csr_matrix
    _tree: shapely.STRtree | None = field(default=None, repr=False)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.x)

    @property
    def n_edges(self) -> int:
        """Number of edges (a two-way street between two nodes is one edge)."""
        return len(self.u)

    def tree(self) -> shapely.STRtree:
        """STRtree of the edge geometries (built on first use, then kept)."""
        if self._tree is None:
            self._tree = shapely.STRtree(self.geometry, node_capacity=4)  # 4: nearest queries ~1.5x faster
        return self._tree

    def save(self, path: str | Path) -> Path:
        """Write the graph to an uncompressed ``.npz`` (no pickles; geometries as flat coordinate arrays).

        The file is written next to the target and renamed into place. Returns the written path.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        coords = shapely.get_coordinates(self.geometry)
        counts = shapely.get_num_coordinates(self.geometry)
        a = self.adjacency_t
        partial = target.with_name(f".{target.name}.partial.npz")
        with open(partial, "wb") as fh:
            np.savez(fh, format=np.array(FORMAT), x=self.x, y=self.y, node_id=self.node_id, u=self.u, v=self.v,
                     length=self.length, reverse_factor=self.reverse_factor, geom_coords=coords,
                     geom_counts=counts.astype(np.int64), crs_epsg=np.int64(self.crs_epsg),
                     directed=np.bool_(self.directed), csr_indptr=a.indptr, csr_indices=a.indices,
                     csr_data=a.data)
        partial.replace(target)
        return target

    @classmethod
    def load(cls, path: str | Path) -> StreetGraph:
        """Read a graph written by ``save``.

        Raises
        ------
        InvalidInput
            If the file is missing or not a saved StreetGraph.
        """
        p = Path(path)
        if not p.is_file():
            raise InvalidInput(f"{p}: file not found; expected a street graph written by StreetGraph.save")
        try:
            with np.load(p, allow_pickle=False) as z:
                if "format" not in z.files or str(z["format"]) != FORMAT:
                    raise InvalidInput(f"{p}: not a {FORMAT} file")
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InvalidInput(f"{p}: unreadable ({exc}); expected a {FORMAT} .npz") from exc
        n = len(arrays["x"])
        counts = arrays["geom_counts"]
        geoms = shapely.linestrings(arrays["geom_coords"], indices=np.repeat(np.arange(len(counts)), counts))
        adj = csr_matrix((arrays["csr_data"], arrays["csr_indices"], arrays["csr_indptr"]), shape=(n, n))
        return cls(x=arrays["x"], y=arrays["y"], node_id=arrays["node_id"], u=arrays["u"], v=arrays["v"],
                   length=arrays["length"], reverse_factor=arrays["reverse_factor"], geometry=np.asarray(geoms),
                   crs_epsg=int(arrays["crs_epsg"]), directed=bool(arrays["directed"]), adjacency_t=adj)




def edge_costs(length: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``length * factor`` with 0 for zero lengths (0 · inf is 0 here, not nan)."""
    with np.errstate(invalid="ignore"):
        return np.where(length > 0, length * factor, 0.0)


def _csr_towards(n: int, u: np.ndarray, v: np.ndarray, length: np.ndarray, rf: np.ndarray) -> csr_matrix:
    """Transposed adjacency (entry [b, a] = cheapest a → b cost), keeping the minimum over parallel edges."""
    back = edge_costs(length, rf)
    ok = np.isfinite(back)
    rows = np.concatenate([v, u[ok]])  # a → b stored at row b
    cols = np.concatenate([u, v[ok]])
    data = np.concatenate([length, back[ok]]).astype(np.float64)
    keep = rows != cols  # a self-loop never shortens a path
    rows, cols, data = rows[keep], cols[keep], data[keep]
    order = np.lexsort((data, cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, data = rows[first], cols[first], data[first]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    idx_dtype = np.int32 if max(n, len(rows)) < np.iinfo(np.int32).max else np.int64
    return csr_matrix((data, cols.astype(idx_dtype), indptr.astype(idx_dtype)), shape=(n, n))


def compile_street_graph(x: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray,
                         length: np.ndarray | None = None, *, crs_epsg: int, geometry: np.ndarray | None = None,
                         directed: bool = False,
                         contraflow_factor: float = DEFAULT_CONTRAFLOW_FACTOR,
                         node_id: np.ndarray | None = None) -> StreetGraph:
    """Compile node and directed-edge arrays into a ``StreetGraph``.

    Parameters
    ----------
    x, y : ndarray, shape (n_nodes,)
        Node coordinates in metres (x east, y north) in the CRS ``crs_epsg``.
    u, v : ndarray of int, shape (n_edges,)
        Edges as travelled u → v (node indices). An edge and its reverse twin (same end nodes and same
        geometry, as osmnx stores two-way streets) become one two-way edge.
    length : ndarray, shape (n_edges,), optional
        Edge lengths in metres; default: the planar length of the geometry in the projected CRS.
    crs_epsg : int
        EPSG code of the projected CRS.
    geometry : ndarray of LineString or None, optional
        Edge geometries; missing ones (None) are straight segments between the nodes. Geometries that run
        v → u are reversed.
    directed : bool
        False: every edge is two-way (walking). True: an edge without a reverse twin is one-way and costs
        ``contraflow_factor`` times its length backwards.
    contraflow_factor : float
        Backward cost multiplier of one-way edges (>= 1, ``inf`` forbids contraflow).
    node_id : ndarray of int64, optional
        Source node ids (default: positions).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    n, m = len(x), len(u)
    if not (len(y) == n and len(v) == m and (length is None or len(length) == m)):
        raise InvalidInput("street graph: x/y and u/v/length must have matching lengths")
    if m == 0:
        raise InvalidInput("street graph has no edges")
    if u.min() < 0 or v.min() < 0 or max(u.max(), v.max()) >= n:
        raise InvalidInput("street graph: edge end node index out of range")
    if not contraflow_factor >= 1:
        raise InvalidInput(f"contraflow factor {contraflow_factor}: expected a number >= 1 (inf forbids)")
    geoms = np.empty(m, dtype=object) if geometry is None else np.array(geometry, dtype=object)
    missing = shapely.is_missing(geoms)
    if missing.any():
        seg = np.stack([x[u[missing]], y[u[missing]], x[v[missing]], y[v[missing]]], axis=1).reshape(-1, 2, 2)
        geoms[missing] = shapely.linestrings(seg)
    coords = shapely.get_coordinates(geoms)
    counts = shapely.get_num_coordinates(geoms)
    if np.any(counts < 2):
        raise InvalidInput("street graph: every edge geometry needs at least two points")
    length = shapely.length(geoms) if length is None else np.asarray(length, dtype=np.float64)
    if not (np.all(np.isfinite(length)) and np.all(length >= 0)):
        raise InvalidInput("street graph: edge lengths must be finite metres >= 0")
    start = np.zeros(m, dtype=np.int64)
    np.cumsum(counts[:-1], out=start[1:])
    first, second, penult = coords[start], coords[start + 1], coords[start + counts - 2]
    d_u = np.hypot(first[:, 0] - x[u], first[:, 1] - y[u])
    d_v = np.hypot(first[:, 0] - x[v], first[:, 1] - y[v])
    flip = (d_v < d_u) & (u != v)
    if flip.any():
        geoms[flip] = shapely.reverse(geoms[flip])
        second[flip], penult[flip] = penult[flip], second[flip].copy()
    # one key per street whatever its direction: end nodes in order and the second point from the lower node
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    loop_fwd = (second[:, 0] < penult[:, 0]) | ((second[:, 0] == penult[:, 0]) & (second[:, 1] <= penult[:, 1]))
    fwd = np.where(u == v, loop_fwd, u < v)
    key = np.where(fwd[:, None], second, penult)
    order = np.lexsort((key[:, 1], key[:, 0], counts, hi, lo))
    k_lo, k_hi, k_n, k_key = lo[order], hi[order], counts[order], key[order]
    new = np.ones(m, dtype=bool)
    new[1:] = ((k_lo[1:] != k_lo[:-1]) | (k_hi[1:] != k_hi[:-1]) | (k_n[1:] != k_n[:-1])
               | (k_key[1:, 0] != k_key[:-1, 0]) | (k_key[1:, 1] != k_key[:-1, 1]))
    group_start = np.flatnonzero(new)
    rep = order[group_start]
    f = fwd[order].astype(np.int64)
    n_fwd = np.add.reduceat(f, group_start)
    n_all = np.diff(np.append(group_start, m))
    two_way = (n_fwd > 0) & (n_fwd < n_all)
    rf = np.where(two_way | (not directed), 1.0, float(contraflow_factor))
    e_len = np.minimum.reduceat(length[order], group_start)
    e_u, e_v = u[rep], v[rep]
    ids = np.arange(n, dtype=np.int64) if node_id is None else np.asarray(node_id, dtype=np.int64)
    return StreetGraph(x=x, y=y, node_id=ids, u=e_u, v=e_v, length=e_len, reverse_factor=rf,
                       geometry=geoms[rep], crs_epsg=int(crs_epsg), directed=bool(directed),
                       adjacency_t=_csr_towards(n, e_u, e_v, e_len, rf))


def street_graph_from_networkx(graph: Any, *, directed: bool | None = None,
                               contraflow_factor: float = DEFAULT_CONTRAFLOW_FACTOR,
                               lengths: Literal["planar", "graph"] = "planar") -> StreetGraph:
    """Compile a projected osmnx street graph (``yizhan.geo.streets_osmnx``) into a ``StreetGraph``.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        Node ``x``/``y`` in metres of the projected ``graph.graph["crs"]``; optional edge LineString
        ``geometry`` (a straight segment when missing) and edge ``length`` in metres.
    directed : bool, optional
        Honour one-way streets. Default: True for directed graphs unless ``graph.graph["profile"] == "walk"``.
    contraflow_factor : float
        Backward cost multiplier of one-way streets when directed (see the module notes).
    lengths : {"planar", "graph"}
        "planar" (default): edge lengths are the planar lengths of the geometries in the projected CRS, the
        same ruler as straight-line coverage, so a straight line is never longer than the network path.
        "graph": osmnx's ``length`` attribute (great-circle on a sphere; differs from UTM lengths by up to
        about ±0.2 % depending on the street's bearing).

    Raises
    ------
    InvalidInput
        If the CRS is missing, geographic or has no EPSG code, or the graph has no edges.
    """
    import pyproj

    crs_value = graph.graph.get("crs")
    if crs_value is None:
        raise InvalidInput("street graph has no CRS; expected a projected graph (graph.graph['crs'])")
    crs = pyproj.CRS(crs_value)
    epsg = crs.to_epsg()
    if not crs.is_projected or epsg is None:
        raise InvalidInput(f"street graph CRS {crs_value!r}: expected a projected CRS with an EPSG code (metres)")
    nodes = list(graph.nodes)
    pos = {node: i for i, node in enumerate(nodes)}
    try:
        node_id = np.array(nodes, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        node_id = np.arange(len(nodes), dtype=np.int64)
    x = np.fromiter((d["x"] for _, d in graph.nodes(data=True)), dtype=np.float64, count=len(nodes))
    y = np.fromiter((d["y"] for _, d in graph.nodes(data=True)), dtype=np.float64, count=len(nodes))
    if lengths not in ("planar", "graph"):
        raise InvalidInput(f"lengths {lengths!r}: expected 'planar' or 'graph'")
    us, vs, attr, geoms = [], [], [], []
    for a, b, d in graph.edges(data=True):
        us.append(pos[a])
        vs.append(pos[b])
        geoms.append(d.get("geometry"))
        attr.append(d.get("length", np.nan))
    edge_length = None
    if lengths == "graph":
        edge_length = np.array(attr, dtype=np.float64)
        if np.isnan(edge_length).any():
            raise InvalidInput("street graph: some edges have no 'length'; use lengths='planar'")
    if directed is None:
        directed = graph.is_directed() and graph.graph.get("profile") != "walk"
    geometry = np.empty(len(geoms), dtype=object)
    geometry[:] = geoms
    return compile_street_graph(x, y, np.array(us, dtype=np.int64), np.array(vs, dtype=np.int64),
                                edge_length, crs_epsg=epsg, geometry=geometry,
                                directed=directed, contraflow_factor=contraflow_factor, node_id=node_id)
