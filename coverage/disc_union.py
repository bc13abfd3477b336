"""The union of many equal discs (the covered area of a straight-line run), without overlaying the discs inside it.

One ``shapely.union_all`` of every station's disc overlays them all: 64,032 discs of 65 vertices (a UTM zone of the
synthetic nation) take tens of seconds, though in a city most discs lie wholly inside the others and add nothing
to the outline but work. ``disc_union`` lays a lattice of square cells (a quarter of the radius) over the discs: a
cell is *full* when its four corners lie within the inscribed circle of one disc's polygon (so the cell lies inside
that polygon), and a disc is *inner* when its circumscribed circle touches only full cells. Only the other discs,
the *edge* discs, are overlaid.

Why that is enough: a point on the union's outline has uncovered ground arbitrarily near it, in cells that are not
full, so the disc whose outline it lies on reaches a cell that is not full: an edge disc. The union's outline is
thus made of the edge discs' outlines alone, and the union is the edge discs' union with some of its holes filled:
a hole of the edge discs' union (its outline less the parts of that union inside it) has no outline of the union
inside it, so it is either wholly covered (by inner discs) or wholly uncovered, which one point of it tells. A
filled hole swallows whatever part of the edge discs' union lay inside it (an island in a covered hole).

The result is the same ground as one ``union_all`` of the same discs, up to floating-point rounding: the area
agrees to 1e-9 relative and the Hausdorff distance is below 1e-6 m (``tests/test_disc_union.py``). Coordinates are
metres in a metric CRS, x east, y north.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import Polygon

QUAD_SEGS = 16
"""Segments per quarter circle of each disc (as ``shapely.buffer``'s ``quad_segs``): 64 per disc."""
FEW = 500
"""Up to this many discs are unioned at once, as they are."""
CELLS_PER_RADIUS = 4
"""The lattice's cell side is the radius divided by this."""
DENSE_CELLS = 1 << 26
"""Up to this many cells in the discs' bounding box, the full cells are marked in a boolean array (64 MB at most);
beyond, as sorted keys."""


def disc_union(centres: np.ndarray, radius_m: float, *, quad_segs: int = QUAD_SEGS) -> Any:
    """The union of the discs of ``radius_m`` metres around ``centres`` ((n, 2) metres, x east, y north), each a
    polygon of ``4 * quad_segs`` segments as ``shapely.buffer`` draws it; an empty polygon when there are none."""
    xy = np.asarray(centres, dtype=float).reshape(-1, 2)
    if not len(xy):
        return Polygon()
    if len(xy) <= FEW:
        return shapely.union_all(_discs(xy, radius_m, quad_segs))
    inner = inner_discs(xy, radius_m, radius_m / CELLS_PER_RADIUS, quad_segs)
    edge = shapely.union_all(_discs(xy[~inner], radius_m, quad_segs))
    if not inner.any():
        return edge
    return fill_covered_holes(edge, xy, radius_m, quad_segs)


def _discs(xy: np.ndarray, radius_m: float, quad_segs: int) -> np.ndarray:
    return np.asarray(shapely.buffer(shapely.points(xy), radius_m, quad_segs=quad_segs))


def fill_covered_holes(union: Any, xy: np.ndarray, radius_m: float, quad_segs: int) -> Any:
    """``union`` (the edge discs' union) with each hole whose inside lies in a disc of ``xy`` filled: a part in a
    filled hole joins the part around it, its own holes, when not filled, becoming that part's holes."""
    parts = shapely.get_parts(union)
    n_holes = shapely.get_num_interior_rings(parts)
    if not n_holes.any():
        return union
    owner = np.repeat(np.arange(len(parts)), n_holes)
    rings = shapely.get_interior_ring(parts[owner], np.concatenate([np.arange(k) for k in n_holes]))
    holes = np.asarray(shapely.polygons(rings))
    # each part's nearest hole around it (the smallest holding a point of the part), if any
    part, hole = shapely.STRtree(holes).query(shapely.point_on_surface(parts), predicate="within")
    order = np.lexsort((np.asarray(shapely.area(holes))[hole], part))
    part, hole = part[order], hole[order]
    first = np.ones(len(part), dtype=bool)
    first[1:] = part[1:] != part[:-1]
    parent = np.full(len(parts), -1)
    parent[part[first]] = hole[first]
    inside: dict[int, list[int]] = {}
    for p, h in enumerate(parent):
        inside.setdefault(int(h), []).append(p)
    # a hole's own ground: its outline less the parts right inside it (a point there, not in those parts, tells)
    ground = holes.copy()
    for h, within in inside.items():
        if h >= 0:
            ground[h] = shapely.polygons(rings[h], holes=shapely.get_exterior_ring(parts[within]))
    covered = covered_points(np.asarray(shapely.point_on_surface(ground)), xy, radius_m, quad_segs)
    if not covered.any():
        return union
    start = np.repeat(0, len(parts))
    start[1:] = np.cumsum(n_holes)[:-1]
    out = []
    for top in np.flatnonzero((parent < 0) | ~covered[parent]):
        kept, todo = [], [int(top)]
        while todo:  # the part's holes, a filled hole's parts' holes in its stead
            p = todo.pop()
            for h in range(int(start[p]), int(start[p] + n_holes[p])):
                if covered[h]:
                    todo.extend(inside.get(h, []))
                else:
                    kept.append(rings[h])
        out.append(shapely.polygons(shapely.get_exterior_ring(parts[top]), holes=kept or None))
    return out[0] if len(out) == 1 else shapely.multipolygons(out)


def covered_points(points: np.ndarray, xy: np.ndarray, radius_m: float, quad_segs: int) -> np.ndarray:
    """Whether each point lies in one of the disc polygons around ``xy``: the nearest centre decides, within the
    polygons' inscribed circle or beyond the radius; between, the polygons themselves."""
    pxy = shapely.get_coordinates(points)
    tree = cKDTree(xy)
    d, _ = tree.query(pxy)
    inner = radius_m * np.cos(np.pi / (4 * quad_segs))
    covered = np.asarray(d <= inner)
    for i in np.flatnonzero((d > inner) & (d <= radius_m)):
        near = tree.query_ball_point(pxy[i], radius_m * (1 + 1e-9))
        covered[i] = bool(shapely.intersects(points[i], _discs(xy[near], radius_m, quad_segs)).any())
    return covered


def inner_discs(xy: np.ndarray, radius_m: float, side: float, quad_segs: int) -> np.ndarray:
    """Per disc whether every cell of the lattice of ``side`` metres (aligned on 0) its circumscribed circle
    reaches is full (lies within the inscribed circle of some disc's polygon)."""
    inner = radius_m * np.cos(np.pi / (4 * quad_segs))  # the disc polygon's inscribed radius
    base = np.floor(xy / side).astype(np.int64)
    k = int(np.ceil(radius_m / side)) + 1
    d = np.arange(-k, k + 1)
    ci = base[:, :1] + d  # (n, 2k + 1): the cells' columns around each disc, then their rows
    cj = base[:, 1:] + d
    x0, y0 = ci * side - xy[:, :1], cj * side - xy[:, 1:]  # the cells' lower left corners from each centre
    fx2 = np.maximum(x0 * x0, (x0 + side) ** 2)  # the farthest corner, per axis
    fy2 = np.maximum(y0 * y0, (y0 + side) ** 2)
    nx = np.where((x0 <= 0) & (x0 + side >= 0), 0.0, np.minimum(np.abs(x0), np.abs(x0 + side)))  # the nearest
    ny = np.where((y0 <= 0) & (y0 + side >= 0), 0.0, np.minimum(np.abs(y0), np.abs(y0 + side)))
    full = fx2[:, :, None] + fy2[:, None, :] <= inner * inner  # (n, column, row)
    reach = radius_m * (1 + 1e-9)
    touches = nx[:, :, None] ** 2 + ny[:, None, :] ** 2 < reach * reach
    disc, a, b = np.nonzero(full)
    fi, fj = ci[disc, a], cj[disc, b]
    disc, a, b = np.nonzero(touches & ~full)  # a disc's own full cells are full
    ti, tj = ci[disc, a], cj[disc, b]
    lo = base.min(axis=0) - k
    shape = base.max(axis=0) + k + 1 - lo
    if int(shape[0]) * int(shape[1]) <= DENSE_CELLS:
        grid = np.zeros((int(shape[0]), int(shape[1])), dtype=bool)
        grid[fi - lo[0], fj - lo[1]] = True
        found = grid[ti - lo[0], tj - lo[1]]
    else:
        keys = np.unique(((fi - lo[0]) * shape[1]) + (fj - lo[1]))
        want = ((ti - lo[0]) * shape[1]) + (tj - lo[1])
        at = np.searchsorted(keys, want).clip(0, len(keys) - 1)
        found = keys[at] == want if len(keys) else np.zeros(len(want), dtype=bool)
    inside = np.ones(len(xy), dtype=bool)
    inside[disc[~found]] = False
    return inside
