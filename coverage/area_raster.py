"""The area within a distance of many line pieces, drawn on a grid (the merged covered area of a network run).

A network run's covered area is every reached street piece buffered by a few tens of metres, all united. Done
in GEOS that is one overlay per piece (about 50 µs each: minutes for a province). Here the distance to the
pieces is measured on a grid instead and the area's outline is drawn where it equals the buffer:

1. the pieces' segments are sampled every half pixel and each sample marks its pixel and the segment it lies on;
2. the Euclidean distance transform (``scipy.ndimage``) finds, for every grid node, the nearest marked pixel;
3. near the outline (grid nodes within the buffer plus two pixels) the distance is computed exactly, to the
   segments marked in the 3 x 3 pixels around that nearest pixel;
4. the filled contour of the distance field below the buffer (``contourpy``) gives polygons with holes,
   interpolated linearly between grid nodes.

The grid is cut in tiles of ``tile_px`` pixels with a margin wider than the buffer, so memory stays bounded; the
tiles' polygons are clipped to the tiles' own boxes and united (``area_union``).

The error: the distance along a straight street is linear across the grid, so its contour is exact there; around
caps (dead ends, the reach's frontier) and where two streets' buffers meet, linear interpolation between nodes
misses by up to a fraction of a pixel (about ``pixel_m**2 / (8 * buffer_m)`` on a cap: 0.5 m with 10 m pixels
and a 25 m buffer, as the GEOS buffer's own arcs with ``quad_segs=4``). benchmarks/README.md ("Service areas")
gives the measured error against the exact GEOS union. Coordinates in one projected CRS: metres, x east, y north.
"""

from __future__ import annotations

from typing import Any, cast

import contourpy
import numpy as np
import shapely
from scipy import ndimage

from yizhan.coverage.area_union import area_union
from yizhan.errors import InvalidInput

DEFAULT_PIXEL_M = 5.0
DEFAULT_TILE_PX = 2048


def _segments(pieces: np.ndarray) -> np.ndarray:
    """The pieces' straight segments as rows (x0, y0, x1, y1), metres."""
    coords, idx = shapely.get_coordinates(pieces, return_index=True)
    same = idx[1:] == idx[:-1]
    return np.column_stack([coords[:-1][same], coords[1:][same]])


def _samples(seg: np.ndarray, step_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step_m`` metres (or closer) along each segment, both ends included, and their segment."""
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    n = np.ceil(length / step_m).astype(np.int64) + 1
    which = np.repeat(np.arange(len(seg)), n)
    start = np.cumsum(n) - n
    t = (np.arange(len(which)) - start[which]) / np.maximum(n[which] - 1, 1)
    s = seg[which]
    return np.column_stack([s[:, 0] + t * (s[:, 2] - s[:, 0]), s[:, 1] + t * (s[:, 3] - s[:, 1])]), which


def _point_segment_distance(px: np.ndarray, py: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Distance in metres from points (px, py) to segments ``seg`` (rows x0, y0, x1, y1), element-wise."""
    x0, y0, dx, dy = seg[:, 0], seg[:, 1], seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
    dd = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip(np.where(dd > 0, ((px - x0) * dx + (py - y0) * dy) / dd, 0.0), 0.0, 1.0)
    return np.asarray(np.hypot(px - (x0 + t * dx), py - (y0 + t * dy)))


def _tile_polygons(seg: np.ndarray, x0: float, y0: float, nx: int, ny: int, margin: int, pixel_m: float,
                   buffer_m: float) -> np.ndarray:
    """Polygons of the area within ``buffer_m`` of the segments, over the grid nodes (x0 + i * pixel_m,
    y0 + j * pixel_m), i < nx, j < ny, computed with ``margin`` more pixels round them, clipped to the nodes' box."""
    gx0, gy0 = x0 - margin * pixel_m, y0 - margin * pixel_m
    w, h = nx + 2 * margin, ny + 2 * margin
    pts, which = _samples(seg, pixel_m / 2)
    col = np.rint((pts[:, 0] - gx0) / pixel_m).astype(np.int64)
    row = np.rint((pts[:, 1] - gy0) / pixel_m).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    col, row, which = col[inside], row[inside], which[inside]
    if len(col) == 0:
        return np.empty(0, dtype=object)
    owner = np.full((h, w), -1, dtype=np.int64)
    owner[row, col] = which  # the last segment sampled in a pixel
    first = np.full((h, w), -1, dtype=np.int64)
    first[row[::-1], col[::-1]] = which[::-1]  # and the first: a crossing's two streets
    dist_px, (near_r, near_c) = ndimage.distance_transform_edt(owner < 0, return_indices=True)
    band = dist_px * pixel_m <= buffer_m + 2.5 * pixel_m
    # far from the outline the grid distance will do; it only has to lie on the right side of the buffer
    z = np.where(band, 0.0, dist_px * pixel_m)
    br, bc = np.nonzero(band)
    px, py = gx0 + bc * pixel_m, gy0 + br * pixel_m
    nr, nc = near_r[br, bc], near_c[br, bc]
    best = np.full(len(br), np.inf)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r, c = np.clip(nr + dr, 0, h - 1), np.clip(nc + dc, 0, w - 1)
            for grid in (owner, first):
                cand = grid[r, c]
                ok = cand >= 0
                best[ok] = np.minimum(best[ok], _point_segment_distance(px[ok], py[ok], seg[cand[ok]]))
    z[br, bc] = best
    core = z[margin:margin + ny, margin:margin + nx]
    xs = x0 + np.arange(nx) * pixel_m
    ys = y0 + np.arange(ny) * pixel_m
    gen = contourpy.contour_generator(xs, ys, core, fill_type=contourpy.FillType.ChunkCombinedOffsetOffset)
    points, offsets, outer = cast(tuple[Any, Any, Any], gen.filled(-1.0, buffer_m))
    polys = [shapely.from_ragged_array(shapely.GeometryType.POLYGON, p, (o, oo))
             for p, o, oo in zip(points, offsets, outer, strict=True) if p is not None]
    if not polys:
        return np.empty(0, dtype=object)
    return np.concatenate([np.asarray(p, dtype=object) for p in polys])


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
        Tile side in pixels: memory per tile is about 40 bytes per pixel.

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
    margin = int(np.ceil(buffer_m / pixel_m)) + 3
    lo = np.minimum(seg[:, [0, 1]], seg[:, [2, 3]]).min(axis=0) - buffer_m - pixel_m
    hi = np.maximum(seg[:, [0, 1]], seg[:, [2, 3]]).max(axis=0) + buffer_m + pixel_m
    lo = np.floor(lo / pixel_m) * pixel_m  # grid nodes on whole multiples of the pixel: tiles meet on nodes
    n_x, n_y = (np.ceil((hi - lo) / pixel_m).astype(np.int64) + 1).tolist()
    step = tile_px - 1  # neighbouring tiles share their edge nodes
    reach = (margin + 1) * pixel_m
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
                parts.append(_tile_polygons(seg[near], tx0, ty0, nx, ny, margin, pixel_m, buffer_m))
    polys = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    if len(parts) == 1:
        return polys[0] if len(polys) == 1 else shapely.multipolygons(polys)
    return area_union(polys)
