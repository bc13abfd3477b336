"""The area within a distance of many line pieces, drawn on a grid (the merged covered area of a network run).

A network run's covered area is every reached street piece buffered by a few tens of metres, all united. Done
in GEOS that is one overlay per piece (about 50 µs each: minutes for a province). Here the distance to the
pieces is measured on a grid instead and the area's outline is drawn where it equals the buffer:

1. each of the pieces' straight segments writes its exact distance into the grid nodes of its own box widened by
   the buffer (a compiled loop; farther nodes keep a cap just beyond the buffer, which never reaches the outline);
2. the filled contour of that distance field below the buffer (``contourpy``) gives polygons with holes,
   interpolated linearly between grid nodes.

The grid is cut in tiles of ``tile_px`` pixels, so memory stays bounded (about 24 bytes a pixel at work: the
distance grid and the contour's index grids, 8 bytes each, and the contour's own); the tiles are drawn side by side
on threads (the distance grid and the contour both let go of the GIL), each seeing only the segments that reach
it. The contour is drawn in grid indices; along a straight street it has a point at every grid line it crosses,
all on one line, and those points are left out (most of a block's outline). Neighbouring tiles share their edge
nodes and their polygons' coordinates are rounded to millimetres, so they meet vertex for vertex: the outlines
reaching a seam are united as a coverage, the blocks' holes given back, and the answer built from flat arrays
with each point copied once.

The error: the distance along a straight street is linear across the grid, so its contour is exact there; around
caps (dead ends, the reach's frontier) and where two streets' buffers meet, linear interpolation between nodes
misses by up to a fraction of a pixel (about ``pixel_m**2 / (8 * buffer_m)`` on a cap: 0.5 m with 10 m pixels
and a 25 m buffer, as the GEOS buffer's own arcs with ``quad_segs=4``), and each block's sharp inner corners are
cut (about a pixel² each): the area comes out larger, +1 % with 10 m pixels on 100 m blocks.
benchmarks/README.md ("Service areas") gives the measured error against the exact GEOS union. Coordinates in one
projected CRS: metres, x east, y north.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, cast

import contourpy
import numpy as np
import shapely

if "coverage" in sys.modules:
    import numba
else:
    # numba probes for the coverage.py tool with a top-level ``import coverage``; run from the repository root
    # (``python -m``) that name is this package's own ``coverage`` directory, so the probe is told there is none
    sys.modules["coverage"] = None  # type: ignore[assignment]
    try:
        import numba
    finally:
        del sys.modules["coverage"]

from yizhan.arrays import concat_ranges
from yizhan.errors import InvalidInput

DEFAULT_PIXEL_M = 5.0
DEFAULT_TILE_PX = 2048


def _segments(pieces: np.ndarray) -> np.ndarray:
    """The pieces' straight segments as rows (x0, y0, x1, y1), metres."""
    coords, idx = shapely.get_coordinates(pieces, return_index=True)
    same = idx[1:] == idx[:-1]
    return np.column_stack([coords[:-1][same], coords[1:][same]])


@numba.njit(cache=True, nogil=True)
def _distance_grid(seg: np.ndarray, gx0: float, gy0: float, col0: int, row0: int, w: int, h: int, pixel_m: float,
                   cap: float, level: float, gap: float) -> np.ndarray:  # pragma: no cover - compiled
    """Distance in metres from each grid node (gx0 + (col0 + c) * pixel_m, gy0 + (row0 + r) * pixel_m), c < w,
    r < h, to the nearest segment, as rows r, columns c; nodes farther than ``cap`` from every segment hold
    ``cap``. Each segment writes its exact distance into the nodes of its own box widened by ``cap``. Last, a node
    within ``gap`` of ``level`` is moved to ``level + gap``, so that no contour point at ``level`` sits on a node."""
    z = np.full((h, w), cap, dtype=np.float64)
    cap2 = cap * cap
    for k in range(seg.shape[0]):
        x0, y0, x1, y1 = seg[k, 0], seg[k, 1], seg[k, 2], seg[k, 3]
        dx, dy = x1 - x0, y1 - y0
        dd = dx * dx + dy * dy
        c0 = max(int(np.ceil((min(x0, x1) - cap - gx0) / pixel_m)) - col0, 0)
        c1 = min(int(np.floor((max(x0, x1) + cap - gx0) / pixel_m)) - col0, w - 1)
        r0 = max(int(np.ceil((min(y0, y1) - cap - gy0) / pixel_m)) - row0, 0)
        r1 = min(int(np.floor((max(y0, y1) + cap - gy0) / pixel_m)) - row0, h - 1)
        for r in range(r0, r1 + 1):
            py = gy0 + (row0 + r) * pixel_m - y0
            for c in range(c0, c1 + 1):
                px = gx0 + (col0 + c) * pixel_m - x0
                t = (px * dx + py * dy) / dd if dd > 0.0 else 0.0
                t = min(max(t, 0.0), 1.0)
                ex, ey = px - t * dx, py - t * dy
                d2 = ex * ex + ey * ey
                if d2 < cap2:
                    d = np.sqrt(d2)
                    if d < z[r, c]:
                        z[r, c] = d
    lo, hi = level - gap, level + gap
    for r in range(h):
        for c in range(w):
            if lo < z[r, c] < hi:
                z[r, c] = hi
    return z


class _Tile(NamedTuple):
    """One tile's polygons as flat arrays: ``points`` (n, 2) in metres, rounded to millimetres; ``rings`` the
    offsets of each ring's points (closed rings, n_rings + 1); ``polys`` the offsets of each polygon's rings, its
    shell first (n_polys + 1); ``on_edge`` whether each polygon reaches the tile's edge (n_polys)."""

    points: np.ndarray
    rings: np.ndarray
    polys: np.ndarray
    on_edge: np.ndarray


def _tile_polygons(seg: np.ndarray, x0: float, y0: float, col0: int, row0: int, nx: int, ny: int, pixel_m: float,
                   buffer_m: float, mesh: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]) -> _Tile:
    """Polygons of the area within ``buffer_m`` of the segments over the grid nodes (x0 + (col0 + i) * pixel_m,
    y0 + (row0 + j) * pixel_m), i < nx, j < ny, clipped to the nodes' box. The contour is drawn in grid indices
    and only then placed: tiles of one grid then reach a shared edge node with the same whole index and the same
    interpolation, so their polygons meet there vertex for vertex. ``mesh`` keeps the index grids of each tile
    shape (the contour needs them as full arrays)."""
    # distances beyond buffer + 1.5 pixels never reach the contour: along a grid cell's edge or diagonal the
    # distance changes by at most its length; no node within 5 mm of the level: every ring's points then stay
    # apart when rounded to millimetres
    z = _distance_grid(seg, x0, y0, col0, row0, nx, ny, pixel_m, buffer_m + 1.5 * pixel_m, buffer_m, 5e-3)
    if (nx, ny) not in mesh:
        mesh[nx, ny] = cast(tuple[np.ndarray, np.ndarray], tuple(np.meshgrid(np.arange(nx, dtype=np.float64),
                                                                             np.arange(ny, dtype=np.float64))))
    xi, yi = mesh[nx, ny]
    # the threaded generator, on one thread, lets go of the GIL while it works: tiles are contoured side by side
    gen = contourpy.ThreadedContourGenerator(xi, yi, z, cast(Any, None), thread_count=1, corner_mask=True,
                                             line_type=contourpy.LineType.Separate,
                                             fill_type=contourpy.FillType.ChunkCombinedOffsetOffset,
                                             quad_as_tri=False, z_interp=contourpy.ZInterp.Linear)
    points, rings, polys = (chunks[0] for chunks in cast(tuple[Any, Any, Any], gen.filled(-1.0, buffer_m)))
    if points is None:
        return _Tile(np.empty((0, 2)), np.zeros(1, np.int64), np.zeros(1, np.int64), np.empty(0, dtype=bool))
    rings, polys = rings.astype(np.int64), polys.astype(np.int64)
    first = rings[polys[:-1]]  # each polygon's first point: its points run to the next polygon's
    x_lo, y_lo = np.minimum.reduceat(points, first).T
    x_hi, y_hi = np.maximum.reduceat(points, first).T
    on_edge = (x_lo <= 0.0) | (y_lo <= 0.0) | (x_hi >= nx - 1) | (y_hi >= ny - 1)
    points, rings = _straight_points_out(points, rings, nx - 1, ny - 1, STRAIGHT_M / pixel_m)
    # in metres, to whole millimetres: a seam's crossing points then agree to the last bit
    points[:, 0] = np.round(x0 + (col0 + points[:, 0]) * pixel_m, 3)
    points[:, 1] = np.round(y0 + (row0 + points[:, 1]) * pixel_m, 3)
    return _Tile(points, rings, polys, on_edge)


STRAIGHT_M = 1e-5  # metres: a point this close to the straight line through its neighbours adds nothing
EDGE_EPS = 1e-9  # grid indices: the contour's points on a tile's edge lie within a few ulps of it


@numba.njit(cache=True, inline="always")
def _on_edge_line(v: float, v_max: float) -> bool:  # pragma: no cover - compiled
    return abs(v) < EDGE_EPS or abs(v - v_max) < EDGE_EPS


@numba.njit(cache=True, nogil=True)
def _straight_points_out(points: np.ndarray, rings: np.ndarray, x_max: float, y_max: float,
                         tol: float) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """The closed rings (``points`` from ``rings[k]`` to ``rings[k + 1]``, in grid indices from 0 to ``x_max``,
    ``y_max``) without the points on a straight line, and their offsets. Along a straight street the contour has
    a point at every grid line it crosses, all on one line: most of a block's outline.

    A point inside the tile goes when it lies within ``tol`` of the straight line from the last point kept to the
    next one. A point on the tile's edge (to ``EDGE_EPS``) goes exactly when both its neighbours lie on that edge
    line: the neighbouring tile, whose ring runs along that edge through the same points, then leaves out the
    same ones, and the two still meet vertex for vertex."""
    out = np.empty_like(points)
    kept = np.zeros(len(rings), dtype=np.int64)
    n = 0
    for k in range(len(rings) - 1):
        a, b = rings[k], rings[k + 1]  # points[b - 1] closes the ring: it is points[a]
        first = n
        for i in range(a, b - 1):
            prev = i - 1 if i > a else b - 2
            x, y = points[i, 0], points[i, 1]
            on_x, on_y = _on_edge_line(x, x_max), _on_edge_line(y, y_max)
            if on_x or on_y:
                if (on_x and abs(points[prev, 0] - x) < EDGE_EPS and abs(points[i + 1, 0] - x) < EDGE_EPS) or (
                        on_y and abs(points[prev, 1] - y) < EDGE_EPS and abs(points[i + 1, 1] - y) < EDGE_EPS):
                    continue
            elif n > first:
                ax, ay = out[n - 1, 0], out[n - 1, 1]
                cx, cy = points[i + 1, 0] - ax, points[i + 1, 1] - ay
                cross = (x - ax) * cy - (y - ay) * cx
                if cross * cross < tol * tol * (cx * cx + cy * cy):
                    continue
            out[n, 0], out[n, 1] = x, y
            n += 1
        out[n, 0], out[n, 1] = out[first, 0], out[first, 1]  # closed again
        n += 1
        kept[k + 1] = n
    return out[:n], kept


def buffered_lines_area(pieces: np.ndarray, buffer_m: float, *, pixel_m: float = DEFAULT_PIXEL_M,
                        tile_px: int = DEFAULT_TILE_PX, threads: int | None = None) -> Any:
    """The ground within ``buffer_m`` metres of any of the line pieces, drawn on a grid of ``pixel_m`` metres.

    Parameters
    ----------
    pieces : ndarray of shapely LineStrings
        In one projected CRS (metres, x east, y north).
    buffer_m : float
        Distance in metres (> 0), as the half-width of ``shapely.buffer``.
    pixel_m : float
        Grid spacing in metres (> 0); the outline is interpolated between grid nodes (see the module's note on
        the error).
    tile_px : int
        Tile side in pixels (>= 2): memory per tile at work is about 24 bytes per pixel and the contour's polygons,
        times the threads.
    threads : int, optional
        Tiles drawn side by side (the distance grid runs without the GIL); by default one per CPU this process may
        use. The answer does not depend on it.

    Returns
    -------
    shapely geometry
        A valid Polygon or MultiPolygon (holes where blocks stay uncovered), or an empty Polygon.
    """
    if not buffer_m > 0 or not pixel_m > 0:
        raise InvalidInput(f"buffer {buffer_m} m, pixel {pixel_m} m: expected positive numbers of metres")
    if tile_px < 2:
        raise InvalidInput(f"tile of {tile_px} pixels: expected 2 or more")
    pieces = np.asarray(pieces, dtype=object)
    seg = _segments(pieces[~shapely.is_empty(pieces)]) if len(pieces) else np.empty((0, 4))
    if len(seg) == 0:
        return shapely.Polygon()
    seg_lo = np.minimum(seg[:, [0, 1]], seg[:, [2, 3]])
    seg_hi = np.maximum(seg[:, [0, 1]], seg[:, [2, 3]])
    lo = seg_lo.min(axis=0) - buffer_m - pixel_m
    hi = seg_hi.max(axis=0) + buffer_m + pixel_m
    lo = np.floor(lo / pixel_m) * pixel_m  # grid nodes on whole multiples of the pixel: tiles meet on nodes
    n_x, n_y = (np.ceil((hi - lo) / pixel_m).astype(np.int64) + 1).tolist()
    step = tile_px - 1  # neighbouring tiles share their edge nodes
    n_ti, n_tj = -(-max(n_x - 1, 1) // step), -(-max(n_y - 1, 1) // step)
    tile_of, seg_of = _segments_by_tile(seg_lo, seg_hi, lo, step * pixel_m, buffer_m + 2 * pixel_m, n_ti, n_tj)
    bounds = np.searchsorted(tile_of, np.arange(n_ti * n_tj + 1))

    mesh: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def draw(t: int) -> _Tile:
        i, j = (t // n_tj) * step, (t % n_tj) * step
        mine = seg[seg_of[bounds[t]:bounds[t + 1]]]
        return _tile_polygons(mine, lo[0], lo[1], i, j, min(tile_px, n_x - i), min(tile_px, n_y - j), pixel_m,
                              buffer_m, mesh)

    busy = np.flatnonzero(np.diff(bounds) > 0).tolist()
    n_threads = max(1, min(threads or _usable_cpus(), len(busy)))
    if n_threads == 1:
        tiles = [draw(t) for t in busy]
    else:
        with ThreadPoolExecutor(n_threads) as pool:
            tiles = list(pool.map(draw, busy))
    return _merge_tiles(tiles, seamless=len(busy) == 1)


def _usable_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _segments_by_tile(seg_lo: np.ndarray, seg_hi: np.ndarray, lo: np.ndarray, tile_m: float, reach: float,
                      n_ti: int, n_tj: int) -> tuple[np.ndarray, np.ndarray]:
    """Each segment once for every tile its box widened by ``reach`` (metres) touches: (tile, segment) pairs
    sorted by tile, tile ``ti * n_tj + tj`` starting at ``lo + (ti, tj) * tile_m``. A pair too many only costs
    an empty loop: the grid keeps to its own nodes."""
    t_lo = np.clip(np.ceil((seg_lo - reach - lo) / tile_m).astype(np.int64) - 1, 0, [n_ti - 1, n_tj - 1])
    t_hi = np.clip(np.floor((seg_hi + reach - lo) / tile_m).astype(np.int64), 0, [n_ti - 1, n_tj - 1])
    span = t_hi - t_lo + 1
    count = span[:, 0] * span[:, 1]
    seg_of = np.repeat(np.arange(len(seg_lo)), count)
    k = concat_ranges(np.zeros_like(count), count)  # rank within its segment's tiles
    ti = t_lo[seg_of, 0] + k // span[seg_of, 1]
    tj = t_lo[seg_of, 1] + k % span[seg_of, 1]
    tile_of = ti * n_tj + tj
    order = np.argsort(tile_of, kind="stable")
    return tile_of[order], seg_of[order]


def _merge_tiles(tiles: list[_Tile], *, seamless: bool) -> Any:
    """The union of the tiles' polygons, built once from flat arrays. Only the polygons that reach their tile's
    edge meet others (none when ``seamless``): their shells are united as a coverage, then their holes, each
    inside the tile it came from, are given to the united part that covers their polygon; the others pass through
    as they are. Returns a Polygon, a MultiPolygon or an empty Polygon."""
    # every ring as (source, first point, end): the sources are the tiles, then the united shells
    source = np.concatenate([np.full(len(t.rings) - 1, k) for k, t in enumerate(tiles)])
    ring_start = np.concatenate([t.rings[:-1] for t in tiles])
    ring_end = np.concatenate([t.rings[1:] for t in tiles])
    base_ring = np.cumsum([0] + [len(t.rings) - 1 for t in tiles])
    poly_ring = np.concatenate([t.polys[:-1] + b for t, b in zip(tiles, base_ring[:-1], strict=True)])
    poly_rings = np.concatenate([np.diff(t.polys) for t in tiles])
    on_edge = np.concatenate([t.on_edge for t in tiles]) & (not seamless)
    if len(poly_ring) == 0:
        return shapely.Polygon()
    seam, alone = np.flatnonzero(on_edge), np.flatnonzero(~on_edge)
    sources = [t.points for t in tiles]
    # the output's rings, each as (polygon out, rank, ring in the table)
    out_poly, rank, ring = [np.empty(0, np.int64)] * 3, [np.empty(0, np.int64)] * 3, [np.empty(0, np.int64)] * 3
    n_united = 0
    if len(seam):
        shells = np.concatenate([_shells(t.points, t.rings, t.polys[:-1][t.on_edge]) for t in tiles])
        united = shapely.get_parts(shapely.coverage_union_all(shells))
        n_united = len(united)
        owner = np.zeros(len(seam), dtype=np.int64)
        if n_united > 1:
            src, dst = shapely.STRtree(united).query(shapely.point_on_surface(shells), predicate="intersects")
            owner[src] = dst
        _, u_points, (u_rings, u_polys) = shapely.to_ragged_array(united)
        out_poly[0] = np.repeat(np.arange(n_united), np.diff(u_polys))
        rank[0] = np.zeros(len(u_rings) - 1, np.int64)
        ring[0] = len(ring_start) + np.arange(len(u_rings) - 1)
        ring[1] = concat_ranges(poly_ring[seam] + 1, poly_rings[seam] - 1)  # their holes
        out_poly[1] = np.repeat(owner, poly_rings[seam] - 1)
        rank[1] = np.ones(len(ring[1]), np.int64)
        source = np.concatenate([source, np.full(len(u_rings) - 1, len(tiles))])
        ring_start = np.concatenate([ring_start, u_rings[:-1]])
        ring_end = np.concatenate([ring_end, u_rings[1:]])
        sources.append(u_points)
    if len(alone):
        ring[2] = concat_ranges(poly_ring[alone], poly_rings[alone])
        out_poly[2] = n_united + np.repeat(np.arange(len(alone)), poly_rings[alone])
        rank[2] = np.zeros(len(ring[2]), np.int64)
    out_poly_all, rank_all, ring_all = (np.concatenate(a) for a in (out_poly, rank, ring))
    order = np.lexsort((ring_all, rank_all, out_poly_all))  # per polygon its shell first, then its holes
    ring_all = ring_all[order]
    n_out = n_united + len(alone)
    ring_offsets = np.concatenate([[0], np.cumsum(ring_end[ring_all] - ring_start[ring_all])])
    coords = np.empty((ring_offsets[-1], 2))
    for k, points in enumerate(sources):  # each point copied once, straight to its place
        mine = np.flatnonzero(source[ring_all] == k)
        _copy_rings(coords, points, ring_start[ring_all[mine]], ring_end[ring_all[mine]], ring_offsets[mine])
    poly_offsets = np.concatenate([[0], np.cumsum(np.bincount(out_poly_all, minlength=n_out))])
    if n_out == 1:
        return shapely.from_ragged_array(shapely.GeometryType.POLYGON, coords, (ring_offsets, poly_offsets))[0]
    return shapely.from_ragged_array(shapely.GeometryType.MULTIPOLYGON, coords,
                                     (ring_offsets, poly_offsets, np.array([0, n_out])))[0]


def _shells(points: np.ndarray, rings: np.ndarray, shell_ring: np.ndarray) -> np.ndarray:
    """Polygons of the rings ``shell_ring`` alone (no holes)."""
    start, end = rings[shell_ring], rings[shell_ring + 1]
    size = end - start
    return np.asarray(shapely.polygons(shapely.linearrings(
        points[concat_ranges(start, size)], indices=np.repeat(np.arange(len(start)), size))), dtype=object)


@numba.njit(cache=True, nogil=True)
def _copy_rings(out: np.ndarray, points: np.ndarray, start: np.ndarray, end: np.ndarray,
                at: np.ndarray) -> None:  # pragma: no cover - compiled
    """Copies the points ``start[k]`` to ``end[k]`` into ``out`` from row ``at[k]`` on, for every k."""
    for k in range(len(start)):
        d = at[k]
        for i in range(start[k], end[k]):
            out[d, 0] = points[i, 0]
            out[d, 1] = points[i, 1]
            d += 1
