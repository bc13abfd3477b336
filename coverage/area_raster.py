"""The area within a distance of many line pieces, drawn on a grid (the merged covered area of a network run).

A network run's covered area is every reached street piece buffered by a few tens of metres, all united. Done
in GEOS that is one overlay per piece (about 50 µs each: minutes for a province). Here the distance to the
pieces is measured on a grid instead and the area's outline is drawn where it equals the buffer:

1. each of the pieces' straight segments writes its exact distance into the grid nodes of its own box widened by
   the buffer (a compiled loop; farther nodes keep a cap just beyond the buffer, which never reaches the outline);
2. the filled contour of that distance field below the buffer (``contourpy``) gives polygons with holes,
   interpolated linearly between grid nodes.

The grid is cut in tiles of ``tile_px`` pixels, so memory stays bounded (4 bytes a pixel and the contour's own);
neighbouring tiles share their edge nodes and their polygons' coordinates are rounded to millimetres, so they meet
vertex for vertex: the outlines reaching a seam are united as a coverage and the blocks' holes given back.

The error: the distance along a straight street is linear across the grid, so its contour is exact there; around
caps (dead ends, the reach's frontier) and where two streets' buffers meet, linear interpolation between nodes
misses by up to a fraction of a pixel (about ``pixel_m**2 / (8 * buffer_m)`` on a cap: 0.5 m with 10 m pixels
and a 25 m buffer, as the GEOS buffer's own arcs with ``quad_segs=4``), and each block's sharp inner corners are
cut (about a pixel² each): the area comes out larger, +1 % with 10 m pixels on 100 m blocks.
benchmarks/README.md ("Service areas") gives the measured error against the exact GEOS union. Coordinates in one
projected CRS: metres, x east, y north.
"""

from __future__ import annotations

import sys
from typing import Any, cast

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
                   cap: float) -> np.ndarray:  # pragma: no cover - compiled
    """Distance in metres from each grid node (gx0 + (col0 + c) * pixel_m, gy0 + (row0 + r) * pixel_m), c < w,
    r < h, to the nearest segment, as float32 rows r, columns c; nodes farther than ``cap`` from every segment hold
    ``cap``. Each segment writes its exact distance into the nodes of its own box widened by ``cap``."""
    z = np.full((h, w), cap, dtype=np.float32)
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
                    d = np.float32(np.sqrt(d2))
                    if d < z[r, c]:
                        z[r, c] = d
    return z


def _tile_polygons(seg: np.ndarray, x0: float, y0: float, col0: int, row0: int, nx: int, ny: int, pixel_m: float,
                   buffer_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Polygons of the area within ``buffer_m`` of the segments over the grid nodes (x0 + (col0 + i) * pixel_m,
    y0 + (row0 + j) * pixel_m), i < nx, j < ny, clipped to the nodes' box, and whether each reaches the box's
    edge. Tiles of one grid compute their shared edge nodes from the same numbers, so their polygons meet there
    vertex for vertex."""
    # distances beyond buffer + 1.5 pixels never reach the contour: along a grid cell's edge or diagonal the
    # distance changes by at most its length
    z = _distance_grid(seg, x0, y0, col0, row0, nx, ny, pixel_m, buffer_m + 1.5 * pixel_m)
    # no node within 5 mm of the level: every ring's points then stay apart when rounded to millimetres below
    z[np.abs(z - buffer_m) < 5e-3] = buffer_m + 5e-3
    xs = x0 + (col0 + np.arange(nx)) * pixel_m
    ys = y0 + (row0 + np.arange(ny)) * pixel_m
    gen = contourpy.contour_generator(xs, ys, z, fill_type=contourpy.FillType.ChunkCombinedOffsetOffset)
    points, offsets, outer = cast(tuple[Any, Any, Any], gen.filled(-1.0, buffer_m))
    # whole millimetres: a seam's crossing points, interpolated in both tiles, then agree to the last bit
    polys = [shapely.from_ragged_array(shapely.GeometryType.POLYGON, np.round(p, 3), (o, oo))
             for p, o, oo in zip(points, offsets, outer, strict=True) if p is not None]
    if not polys:
        return np.empty(0, dtype=object), np.empty(0, dtype=bool)
    out = np.concatenate([np.asarray(p, dtype=object) for p in polys])
    x_lo, y_lo, x_hi, y_hi = shapely.bounds(out).T
    on_edge = (x_lo <= xs[0] + 1e-6) | (y_lo <= ys[0] + 1e-6) | (x_hi >= xs[-1] - 1e-6) | (y_hi >= ys[-1] - 1e-6)
    return out, on_edge


def buffered_lines_area(pieces: np.ndarray, buffer_m: float, *, pixel_m: float = DEFAULT_PIXEL_M,
                        tile_px: int = DEFAULT_TILE_PX) -> Any:
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
        Tile side in pixels: memory per tile is about 4 bytes per pixel and the contour's polygons.

    Returns
    -------
    shapely geometry
        A valid Polygon or MultiPolygon (holes where blocks stay uncovered), or an empty Polygon.
    """
    if not buffer_m > 0 or not pixel_m > 0:
        raise InvalidInput(f"buffer {buffer_m} m, pixel {pixel_m} m: expected positive numbers of metres")
    pieces = np.asarray(pieces, dtype=object)
    seg = _segments(pieces[~shapely.is_empty(pieces)]) if len(pieces) else np.empty((0, 4))
    if len(seg) == 0:
        return shapely.Polygon()
    lo = np.minimum(seg[:, [0, 1]], seg[:, [2, 3]]).min(axis=0) - buffer_m - pixel_m
    hi = np.maximum(seg[:, [0, 1]], seg[:, [2, 3]]).max(axis=0) + buffer_m + pixel_m
    lo = np.floor(lo / pixel_m) * pixel_m  # grid nodes on whole multiples of the pixel: tiles meet on nodes
    n_x, n_y = (np.ceil((hi - lo) / pixel_m).astype(np.int64) + 1).tolist()
    step = tile_px - 1  # neighbouring tiles share their edge nodes
    reach = buffer_m + 2 * pixel_m
    seg_lo = np.minimum(seg[:, [0, 1]], seg[:, [2, 3]])
    seg_hi = np.maximum(seg[:, [0, 1]], seg[:, [2, 3]])
    parts = []
    for i in range(0, max(n_x - 1, 1), step):
        for j in range(0, max(n_y - 1, 1), step):
            nx, ny = min(tile_px, n_x - i), min(tile_px, n_y - j)
            tx0, ty0 = lo[0] + i * pixel_m, lo[1] + j * pixel_m
            tx1, ty1 = tx0 + (nx - 1) * pixel_m, ty0 + (ny - 1) * pixel_m
            near = ((seg_hi[:, 0] >= tx0 - reach) & (seg_lo[:, 0] <= tx1 + reach)
                    & (seg_hi[:, 1] >= ty0 - reach) & (seg_lo[:, 1] <= ty1 + reach))
            if near.any():
                parts.append(_tile_polygons(seg[near], lo[0], lo[1], i, j, nx, ny, pixel_m, buffer_m))
    polys = np.concatenate([p for p, _ in parts]) if parts else np.empty(0, dtype=object)
    if len(polys) == 0:
        return shapely.Polygon()
    if len(parts) == 1:
        return polys[0] if len(polys) == 1 else shapely.multipolygons(polys)
    return _merge_tiles(polys, np.concatenate([e for _, e in parts]))


def _merge_tiles(polys: np.ndarray, on_edge: np.ndarray) -> Any:
    """The union of the tiles' polygons. Only those that reach their tile's edge meet others: their outlines (the
    shells, holes filled) are united as a coverage, then their holes, each inside the tile it came from, are
    given back to the united part that covers their polygon; the others pass through as they are."""
    seam = polys[on_edge]
    if len(seam) == 0:
        return shapely.multipolygons(polys)
    united = shapely.get_parts(shapely.coverage_union_all(shapely.polygons(shapely.get_exterior_ring(seam))))
    n_holes = shapely.get_num_interior_rings(seam)
    owner = np.zeros(len(seam), dtype=np.int64)
    if len(united) > 1:
        src, dst = shapely.STRtree(united).query(shapely.point_on_surface(seam), predicate="intersects")
        owner[src] = dst
    rings, ring_of = shapely.get_rings(seam, return_index=True)
    first = np.cumsum(n_holes + 1) - n_holes - 1
    is_hole = np.ones(len(rings), dtype=bool)
    is_hole[first] = False
    holes, hole_owner = rings[is_hole], owner[ring_of[is_hole]]
    order = np.argsort(hole_owner, kind="stable")
    cut = np.searchsorted(hole_owner[order], np.arange(len(united) + 1))
    out = [shapely.polygons(shapely.get_exterior_ring(u),
                            holes=np.concatenate([shapely.get_rings(u)[1:], holes[order[cut[k]:cut[k + 1]]]]))
           for k, u in enumerate(united)]
    return shapely.multipolygons(np.concatenate([np.asarray(out, dtype=object), polys[~on_edge]]))
