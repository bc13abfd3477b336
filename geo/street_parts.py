"""Street graphs per partition of a province, built from its .osm.pbf in one streaming pass.

A province's (or the nation's) street graph does not fit one worker's memory; a partitioned run needs, for every
partition rectangle, only the streets near it. ``partition_street_graphs`` reads the extract once with pyosmium
(node locations from a libosmium index, on disk for large files), writes each street way's pieces near a
partition to that partition's spill files, then builds every partition's graph from its own spill alone with the
rules of ``yizhan.geo.streets_pbf`` and saves it with ``StreetGraph.save``. Peak memory follows the largest
partition (its spill and its graph) and the node-location index, never the province's graph.

Coordinates: partition rectangles ``(xmin, ymin, xmax, ymax)`` in metres of the projected CRS ``crs_epsg`` (x
east, y north), disjoint (they may touch) and covering the streets of interest. OSM data are WGS 84 (lon, lat)
and projected once, as ``street_graph_from_pbf`` projects them.

Exactness
---------
A partition keeps every street segment whose bounding box meets its rectangle grown by ``halo_m`` on every side
(the "grown rectangle"), so it holds every street within ``halo_m`` of the rectangle. A node inside the grown
rectangle keeps all its segments, so it is a graph node of the partition exactly when it is one of the whole
graph (same degree rules). Where a way is cut (a node outside the grown rectangle), that node is made a graph
node: an end of the partition graph, or a vertex where the whole graph has none. Distances are unaffected: a
street path is never shorter than the straight line, so a path of at most ``halo_m`` from a point of the
rectangle never leaves the grown rectangle, and every edge it uses is there with the same geometry.

The component: ``street_graph_from_pbf`` keeps the largest weakly connected component of the whole graph. Here
each partition labels the components of its own spill; two labels are the same component when they share an OSM
node (every node lies in some grown rectangle, and two segments through one node are both in that partition);
component sizes are counted over graph nodes, each in the one partition whose rectangle holds it (the first, for
a node on a shared edge). So the kept component is the whole graph's largest as long as the rectangles cover the
extract's streets; streets farther than ``halo_m`` from every rectangle are left out and do not count.

For a coverage run within ``radius_m``: a demand point snapped ``s`` metres off the street starts up to ``s``
outside its rectangle, and a station's snap is the whole graph's only when its nearest street is inside the grown
rectangle. ``halo_m >= radius_m + 3 * max_snap_m`` makes a partition's answer for its own points exact with the
stations within ``halo_m - max_snap_m`` of the rectangle; points and stations already on the streets need
``halo_m >= radius_m`` only.

Files: ``out_dir/<profile>/part-<i>.npz`` (``StreetGraph.save``) and ``out_dir/<profile>/manifest.json``; the
spill and node index go to a temporary folder in ``out_dir/<profile>`` and are removed at the end.
Data © OpenStreetMap contributors (ODbL).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyproj
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from yizhan.errors import InvalidInput
from yizhan.geo.osm import checked_extract
from yizhan.geo.projection import utm_epsg
from yizhan.geo.streets import DEFAULT_CONTRAFLOW_FACTOR, StreetGraph
from yizhan.geo.streets_osmnx import PROFILES
from yizhan.geo.streets_pbf import (
    clean_ways,
    endpoint_nodes,
    extract_box,
    graph_nodes,
    projected_crs,
    street_graph_from_ways,
    street_way_chunks,
)

FORMAT = "yizhan.StreetParts/1"
MANIFEST = "manifest.json"
DISK_INDEX_FROM_BYTES = 128 << 20  # extracts larger than this keep node locations in a file, not in memory
_SPILL = (("refs", np.int64), ("xy", np.float64), ("counts", np.int64), ("oneway", np.int8))


def _noop(_msg: str) -> None:
    return None


def grid_tiles(bounds: tuple[float, float, float, float], nx: int, ny: int) -> np.ndarray:
    """``nx`` × ``ny`` equal rectangles covering ``bounds`` ``(xmin, ymin, xmax, ymax)`` (metres).

    Returns an array of shape (nx * ny, 4) of ``(xmin, ymin, xmax, ymax)``, west to east, then south to north
    within each column; neighbours share their edges exactly.
    """
    if nx < 1 or ny < 1:
        raise InvalidInput(f"分区数 tiles per side: {nx} x {ny}; expected at least 1 x 1")
    xmin, ymin, xmax, ymax = bounds
    xs, ys = np.linspace(xmin, xmax, nx + 1), np.linspace(ymin, ymax, ny + 1)
    return np.array([(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(nx) for j in range(ny)], dtype=np.float64)


def _checked_tiles(tiles: Any) -> np.ndarray:
    """Tiles as a float64 (k, 4) array, checked: finite, non-empty, pairwise disjoint interiors."""
    try:
        rects = np.asarray(tiles, dtype=np.float64).reshape(-1, 4)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"分区矩形无效 / tiles: {exc}; expected rectangles (xmin, ymin, xmax, ymax) in "
                           f"metres") from exc
    if len(rects) == 0:
        raise InvalidInput("没有分区矩形 / "
                           "tiles: none given; expected at least one rectangle (xmin, ymin, xmax, ymax) in metres")
    for i, (x0, y0, x1, y1) in enumerate(rects):
        if not (np.isfinite([x0, y0, x1, y1]).all() and x0 < x1 and y0 < y1):
            raise InvalidInput(f"分区矩形无效 / tile {i}: ({x0}, {y0}, {x1}, {y1}); expected finite xmin < xmax, "
                               f"ymin < ymax in metres")
    lo_x = np.maximum(rects[:, None, 0], rects[None, :, 0])
    hi_x = np.minimum(rects[:, None, 2], rects[None, :, 2])
    lo_y = np.maximum(rects[:, None, 1], rects[None, :, 1])
    hi_y = np.minimum(rects[:, None, 3], rects[None, :, 3])
    overlap = np.triu((hi_x > lo_x) & (hi_y > lo_y), k=1)
    if overlap.any():
        i, j = (int(v) for v in np.argwhere(overlap)[0])
        raise InvalidInput(f"分区重叠 / tiles {i} and {j} overlap: {rects[i].tolist()} and {rects[j].tolist()}; "
                           "expected disjoint rectangles (they may share an edge)")
    return rects


def _owner(x: np.ndarray, y: np.ndarray, rects: np.ndarray) -> np.ndarray:
    """Index of the first rectangle (closed) holding each point, -1 for none."""
    owner = np.full(len(x), -1, dtype=np.int64)
    for i, (x0, y0, x1, y1) in enumerate(rects):
        owner[(owner < 0) & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)] = i
    return owner


def _spill_ways(p: Path, grown: np.ndarray, profile: str, node_index: str, transformer: pyproj.Transformer,
                spill: Path, say: Callable[[str], None]) -> np.ndarray:
    """The streaming pass: each street way's pieces near each grown rectangle appended to that part's spill.

    A piece is a maximal run of consecutive segments whose bounding box meets the grown rectangle. Returns the
    number of pieces and of way-node entries spilled per part (shape (k, 2)).
    """
    k = len(grown)
    written = np.zeros((k, 2), dtype=np.int64)
    with contextlib.ExitStack() as stack:
        handles: list[list[BinaryIO]] = [[stack.enter_context(open(spill / f"part-{i}.{name}", "wb"))
                                          for name, _ in _SPILL] for i in range(k)]
        for refs, lonlat, counts, oneway in street_way_chunks(p, profile, node_index, say):
            refs, lonlat, way, one = clean_ways(refs, lonlat, counts, oneway)
            if len(refs) < 2:
                continue
            px, py = transformer.transform(lonlat[:, 0], lonlat[:, 1])
            x, y = np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)
            seg = way[1:] == way[:-1]  # segment s joins entries s and s + 1
            sx0, sx1 = np.minimum(x[:-1], x[1:]), np.maximum(x[:-1], x[1:])
            sy0, sy1 = np.minimum(y[:-1], y[1:]), np.maximum(y[:-1], y[1:])
            for i, (gx0, gy0, gx1, gy1) in enumerate(grown):
                hit = seg & (sx1 >= gx0) & (sx0 <= gx1) & (sy1 >= gy0) & (sy0 <= gy1)
                if not hit.any():
                    continue
                keep = np.zeros(len(refs), dtype=bool)
                keep[:-1] |= hit
                keep[1:] |= hit
                start = keep.copy()
                start[1:] &= ~hit  # a kept entry starts a piece unless the segment before it is kept
                piece = np.cumsum(start)[keep] - 1
                n_nodes = np.bincount(piece)
                piece_oneway = one[way[start]].astype(np.int8)  # already in travel order: 1 or 0
                h = handles[i]
                refs[keep].tofile(h[0])
                np.column_stack([x[keep], y[keep]]).tofile(h[1])
                n_nodes.astype(np.int64).tofile(h[2])
                piece_oneway.tofile(h[3])
                written[i] += (len(n_nodes), int(keep.sum()))
    return written


def _read_spill(spill: Path, i: int) -> tuple[np.ndarray, ...]:
    """One part's spilled pieces as ``clean_ways`` returns them: refs, xy (metres), way index, oneway."""
    refs, xy, counts, oneway = (np.fromfile(spill / f"part-{i}.{name}", dtype=dtype) for name, dtype in _SPILL)
    return clean_ways(refs, xy.reshape(-1, 2), counts, oneway)


def _label_part(spill: Path, i: int, rects: np.ndarray) -> dict[str, np.ndarray]:
    """Components of one part's spill, and per component its graph nodes inside this part's own rectangle.

    Returns ``ids`` (sorted OSM ids of the spill's nodes), ``label`` (their local component), ``owned`` (held
    by this part: the first rectangle holding the node is this one), ``count`` (graph nodes owned per
    component) and ``min_id`` (the smallest owned graph node's id per component, int64 max for none).
    """
    refs, xy, way, oneway = _read_spill(spill, i)
    ids, first, node = np.unique(refs, return_index=True, return_inverse=True)
    n = len(ids)
    if n == 0:
        none = np.empty(0, dtype=np.int64)
        return {"ids": none, "label": none, "owned": np.empty(0, dtype=bool), "count": none, "min_id": none}
    gnode = graph_nodes(node, way, endpoint_nodes(node, way, oneway, n))
    seg = np.flatnonzero(way[1:] == way[:-1])
    adj = coo_matrix((np.ones(len(seg), dtype=np.int8), (node[seg], node[seg + 1])), shape=(n, n))
    n_comp, label = connected_components(adj, directed=False)
    owned = _owner(xy[first, 0], xy[first, 1], rects) == i
    counted = gnode & owned
    count = np.bincount(label[counted], minlength=n_comp)
    min_id = np.full(n_comp, np.iinfo(np.int64).max, dtype=np.int64)
    comp, at = np.unique(label[counted], return_index=True)  # ids are sorted: the first is the smallest
    min_id[comp] = ids[counted][at]
    return {"ids": ids, "label": label.astype(np.int64), "owned": owned, "count": count, "min_id": min_id}


def _largest_component(spill: Path, k: int, n_comp: list[int], counts: np.ndarray, min_ids: np.ndarray,
                       shared_ids: np.ndarray, shared_keys: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Join the parts' component labels into the whole graph's components and choose its largest.

    Component keys are ``offset[part] + label``. ``shared_ids``/``shared_keys`` are every part's nodes outside
    its own rectangle; each is joined to the same node's key in the part that owns it and to its other copies.
    Returns the chosen flag per key, the chosen component's graph-node count and the number of components.
    """
    offsets = np.concatenate([[0], np.cumsum(n_comp)])
    n_keys = int(offsets[-1])
    order = np.argsort(shared_ids, kind="stable")
    sid, skey = shared_ids[order], shared_keys[order]
    same = np.flatnonzero(sid[1:] == sid[:-1])
    a, b = [skey[same]], [skey[same + 1]]
    for i in range(k):
        with np.load(spill / f"labels-{i}.npz") as z:
            own_ids, own_keys = z["ids"][z["owned"]], z["label"][z["owned"]] + offsets[i]
        if len(own_ids) == 0:
            continue
        pos = np.minimum(np.searchsorted(own_ids, sid), len(own_ids) - 1)
        hit = own_ids[pos] == sid
        a.append(skey[hit])
        b.append(own_keys[pos[hit]])
    src, dst = np.concatenate(a), np.concatenate(b)
    join = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n_keys, n_keys))
    n_global, glabel = connected_components(join, directed=False)
    size = np.bincount(glabel, weights=counts, minlength=n_global)
    smallest = np.full(n_global, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, glabel, min_ids)
    giant = int(np.lexsort((smallest, -size))[0])
    return glabel == giant, int(size[giant]), n_global


def partition_street_graphs(pbf: str | Path, tiles: Any, *, halo_m: float, profile: str, out_dir: str | Path,
                            crs_epsg: int | None = None, progress: Callable[[str], None] | None = None,
                            node_index: str | None = None,
                            contraflow_factor: float = DEFAULT_CONTRAFLOW_FACTOR) -> Path:
    """Street graphs of the partitions of an extract, from one streaming pass over it; returns the manifest path.

    Parameters
    ----------
    pbf : str or Path
        An .osm.pbf (or .osm) extract, e.g. a province.
    tiles : array-like, shape (k, 4)
        Partition rectangles ``(xmin, ymin, xmax, ymax)`` in metres of ``crs_epsg`` (x east, y north), disjoint
        (shared edges allowed) and covering the extract's streets (``grid_tiles`` makes a grid).
    halo_m : float
        Metres around each rectangle whose streets the partition also holds (> 0); see the module notes for the
        halo a coverage radius needs.
    profile : {"walk", "bike"}
        As ``street_graph_from_pbf``.
    out_dir : str or Path
        Graphs go to ``out_dir/<profile>/part-<i>.npz``, the manifest to ``out_dir/<profile>/manifest.json``.
    crs_epsg : int, optional
        EPSG code of the tiles' projected CRS; default: the UTM zone of the centre of the extract's header box
        (an extract without one needs it given).
    progress : callable, optional
        Called with one-line messages: ``"reading: ..."``/``"read: ..."`` during the pass, ``"spilled: ..."``
        at its end, ``"components: ..."``, then ``"part i/k: ..."`` as each partition's graph is saved.
    node_index : str, optional
        libosmium node-location index; default ``"flex_mem"`` (memory) for extracts up to 128 MB, else
        ``"sparse_file_array"`` in the temporary folder (disk, memory-mapped).
    contraflow_factor : float
        Backward cost multiplier of one-way streets for bike.

    Returns
    -------
    Path
        The manifest: JSON with ``format``, ``source``, ``profile``, ``crs_epsg``, ``halo_m``, ``directed``,
        the kept component's size, timings, and ``parts``: per part its ``index``, ``rect`` (metres),
        ``halo_m``, ``file`` (relative to the manifest; null when no street of the kept component comes near
        it), ``nodes``,
        ``edges`` and the spilled ``pieces``/``way_nodes``.

    Raises
    ------
    InvalidInput
        If the file, tiles, halo, profile or CRS is unusable, or no street comes near any tile.

    Examples
    --------
    >>> tiles = grid_tiles((440_000.0, 4_420_000.0, 540_000.0, 4_520_000.0), 4, 4)  # doctest: +SKIP
    >>> manifest = partition_street_graphs("hebei.osm.pbf", tiles, halo_m=1_500.0, profile="walk",
    ...                                    out_dir="/shared/streets", crs_epsg=32650)  # doctest: +SKIP
    >>> graph = load_street_part(manifest, 5)  # on the worker that runs part 5  # doctest: +SKIP
    """
    p = checked_extract(pbf)
    if profile not in PROFILES:
        raise InvalidInput(f"路网类型无效 / profile {profile!r} is not known; expected one of {', '.join(PROFILES)}")
    if not (isinstance(halo_m, int | float) and math.isfinite(halo_m) and halo_m > 0):
        raise InvalidInput(f"外延距离无效 / halo_m: {halo_m!r}; expected a positive number of metres")
    rects = _checked_tiles(tiles)
    if crs_epsg is None:
        west, south, east, north = extract_box(p)
        if not math.isfinite(west):
            raise InvalidInput(f"{p}: 文件头没有范围 / "
                               f"the file has no bounding box in its header; pass crs_epsg, the EPSG code of "
                               "the tiles' projected CRS")
        crs_epsg = utm_epsg((west + east) / 2, (south + north) / 2)
    transformer = pyproj.Transformer.from_crs(4326, projected_crs(crs_epsg), always_xy=True)
    say = progress or _noop
    folder = Path(out_dir) / profile
    folder.mkdir(parents=True, exist_ok=True)
    grown = rects + np.array([-halo_m, -halo_m, halo_m, halo_m])
    k = len(rects)
    spill = Path(tempfile.mkdtemp(prefix=".spill-", dir=folder))
    try:
        index = node_index or ("flex_mem" if p.stat().st_size <= DISK_INDEX_FROM_BYTES
                               else f"sparse_file_array,{spill / 'nodes.idx'}")
        t0 = time.perf_counter()
        written = _spill_ways(p, grown, profile, index, transformer, spill, say)
        (spill / "nodes.idx").unlink(missing_ok=True)
        pass_s = time.perf_counter() - t0
        say(f"spilled: {int(written[:, 0].sum()):,} pieces, {int(written[:, 1].sum()):,} way nodes to {k} parts "
            f"in {pass_s:.1f} s")
        if not written[:, 1].any():
            raise InvalidInput(f"{p}: 分区附近没有街道 / "
                               f"no {profile} street comes within {halo_m:g} m of any tile; expected tiles in "
                               f"metres of EPSG:{crs_epsg} over the extract")
        t1 = time.perf_counter()
        n_comp, counts, min_ids, shared_ids, shared_keys = [], [], [], [], []
        offset = 0
        for i in range(k):
            lab = _label_part(spill, i, rects)
            np.savez(spill / f"labels-{i}.npz", ids=lab["ids"], label=lab["label"], owned=lab["owned"])
            shared_ids.append(lab["ids"][~lab["owned"]])
            shared_keys.append(lab["label"][~lab["owned"]] + offset)
            n_comp.append(len(lab["count"]))
            counts.append(lab["count"])
            min_ids.append(lab["min_id"])
            offset += len(lab["count"])
        chosen, size, n_global = _largest_component(spill, k, n_comp, np.concatenate(counts),
                                                    np.concatenate(min_ids), np.concatenate(shared_ids),
                                                    np.concatenate(shared_keys))
        del shared_ids, shared_keys
        component_s = time.perf_counter() - t1
        say(f"components: {n_global:,}; the largest has {size:,} graph nodes ({component_s:.1f} s)")
        parts = []
        for i in range(k):
            t = time.perf_counter()
            part: dict[str, Any] = {"index": i, "rect": rects[i].tolist(), "halo_m": float(halo_m), "file": None,
                                    "nodes": 0, "edges": 0, "pieces": int(written[i, 0]),
                                    "way_nodes": int(written[i, 1])}
            with np.load(spill / f"labels-{i}.npz") as z:
                ids, label = z["ids"], z["label"]
            keep_ids = ids[chosen[label + int(np.sum(n_comp[:i]))]] if len(ids) else ids
            if len(keep_ids):
                refs, xy, way, oneway = _read_spill(spill, i)
                gx0, gy0, gx1, gy1 = grown[i]
                cut = (xy[:, 0] < gx0) | (xy[:, 0] > gx1) | (xy[:, 1] < gy0) | (xy[:, 1] > gy1)
                epsg = int(crs_epsg)

                def as_is(rows: np.ndarray, epsg: int = epsg) -> tuple[np.ndarray, np.ndarray, int]:
                    return rows[:, 0].copy(), rows[:, 1].copy(), epsg

                graph = street_graph_from_ways(refs, xy, way, oneway, profile=profile, project=as_is,
                                               contraflow_factor=contraflow_factor, source=f"{p} part {i}",
                                               forced=cut, keep_ids=keep_ids)
                del refs, xy, way, oneway, cut
                graph.save(folder / f"part-{i}.npz")
                part.update(file=f"part-{i}.npz", nodes=graph.n_nodes, edges=graph.n_edges)
                del graph
            else:
                (folder / f"part-{i}.npz").unlink(missing_ok=True)
            part["build_s"] = time.perf_counter() - t
            parts.append(part)
            say(f"part {i + 1}/{k}: {part['nodes']:,} nodes, {part['edges']:,} edges from {part['pieces']:,} pieces "
                f"({part['build_s']:.1f} s)")
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    manifest = {"format": FORMAT, "source": p.name, "profile": profile, "crs_epsg": int(crs_epsg),
                "halo_m": float(halo_m), "directed": profile == "bike", "component_graph_nodes": size,
                "pass_s": pass_s, "component_s": component_s, "parts": parts}
    target = folder / MANIFEST
    partial = folder / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    partial.replace(target)
    return target


def read_street_parts(manifest: str | Path) -> dict[str, Any]:
    """The manifest written by ``partition_street_graphs`` (``manifest`` is the file or its folder).

    Raises
    ------
    InvalidInput
        If it is missing or not such a manifest.
    """
    m = Path(manifest)
    if m.is_dir():
        m = m / MANIFEST
    try:
        data = json.loads(m.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInput(f"{m}: 找不到路网分区清单 / "
                           f"file not found; expected the {MANIFEST} of partitioned street graphs") from exc
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{m}: 无法读取 / "
                           f"unreadable ({exc}); expected the {MANIFEST} of partitioned street graphs") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput(f"{m}: 不是路网分区清单 / not a {FORMAT} manifest")
    data["path"] = str(m)
    return data


def load_street_part(manifest: str | Path, index: int) -> StreetGraph:
    """Partition ``index``'s street graph, as a worker reads it from a shared path.

    ``manifest`` is the manifest file or its folder (``out_dir/<profile>``). The graph is in metres of the
    manifest's ``crs_epsg`` (x east, y north) and holds every street of the whole graph within the manifest's
    ``halo_m`` of the part's ``rect``.

    Raises
    ------
    InvalidInput
        If the manifest has no such part, or no street of the kept network comes near it.

    Examples
    --------
    >>> graph = load_street_part("/shared/streets/walk", 3)  # doctest: +SKIP
    >>> graph.crs_epsg, graph.n_nodes  # doctest: +SKIP
    (32650, 812345)
    """
    data = read_street_parts(manifest)
    parts = data["parts"]
    if not (isinstance(index, int) and 0 <= index < len(parts)):
        raise InvalidInput(f"没有该路网分区 / street part {index!r}: not in {data['path']}; expected 0 to "
                           f"{len(parts) - 1}")
    entry = parts[index]
    if entry["file"] is None:
        raise InvalidInput(f"该路网分区没有街道 / street part {index}: no street of the {data['profile']} network "
                           f"comes within {data['halo_m']:g} m of its rectangle {entry['rect']}")
    return StreetGraph.load(Path(data["path"]).parent / entry["file"])
