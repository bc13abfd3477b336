"""Which of many points lie in a boundary, told mostly by a grid instead of the polygon.

A province's import tests ten million points against its boundary; shapely's ``intersects_xy`` on the prepared
polygon costs about 50 ns a point. Here a grid of ``side`` x ``side`` cells is laid over the boundary's box once:
a cell that no edge of the boundary comes near (no edge's box, grown by a margin far above rounding, touches it)
lies wholly inside or wholly outside, and its centre says which; a point in such a cell is answered by a look-up.
Only the points in the cells an edge passes near are tested on the polygon, and a point outside the box is out.
The answer is ``intersects_xy``'s, the edge included. Coordinates as given (WGS 84 lon, lat degrees, x east, y
north, in this package).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from yizhan.arrays import concat_ranges

SIDE = 256
"""Cells per side of the grid (65,536 in all, 64 KB)."""

CHUNK = 1 << 16
"""Points worked on at a time (a few hundred KB of buffers, used again for each chunk)."""

_MARGIN = 1e-9
"""How far beyond its own box an edge counts as passing near a cell, relative to the boundary's extent: far above
the rounding of a point's cell number, far below a cell."""

_OUT, _IN, _TEST = 0, 1, 2


class BoundaryTest:
    """Tests points against ``boundary`` (a Polygon or MultiPolygon, holes allowed), edge included."""

    def __init__(self, boundary: Any, side: int = SIDE) -> None:
        self.boundary = boundary
        shapely.prepare(boundary)
        w, s, e, n = boundary.bounds
        self.origin = (w, s)
        self.side = side
        # the grid a hair wider than the box, so that its east and north edges fall in the last cells
        self.per_x = side / (max(e - w, 1e-300) * (1 + 1e-9))
        self.per_y = side / (max(n - s, 1e-300) * (1 + 1e-9))
        margin = _MARGIN * max(e - w, n - s, 1.0)
        # the rings cut in pieces no longer than a cell, so that a slanting edge marks only the cells along it (in a
        # box far wider than high, or higher than wide, a sixteenth of a cell's longer side: a few thousand pieces)
        dx, dy = 1 / self.per_x, 1 / self.per_y
        rings = shapely.segmentize(shapely.get_rings(shapely.get_parts(boundary)), max(min(dx, dy), max(dx, dy) / 16))
        coords, ring = shapely.get_coordinates(rings, return_index=True)
        same = ring[1:] == ring[:-1]  # segments within a ring
        a, b = coords[:-1][same], coords[1:][same]
        i0 = self._cells(np.minimum(a[:, 0], b[:, 0]) - margin, w, self.per_x)
        i1 = self._cells(np.maximum(a[:, 0], b[:, 0]) + margin, w, self.per_x)
        j0 = self._cells(np.minimum(a[:, 1], b[:, 1]) - margin, s, self.per_y)
        j1 = self._cells(np.maximum(a[:, 1], b[:, 1]) + margin, s, self.per_y)
        width, height = i1 - i0 + 1, j1 - j0 + 1
        seg = np.repeat(np.arange(len(a)), width * height)
        k = concat_ranges(np.zeros_like(width), width * height)  # rank within the segment's cells
        # the grid with a border of cells all round, outside the box: where the points beyond it fall
        full = side + 2
        state = np.full(full * full, _OUT, dtype=np.uint8)
        state[(j0[seg] + k % height[seg]) * full + i0[seg] + k // height[seg]] = _TEST
        inner = np.arange(1, side + 1)
        cells = (inner[:, None] * full + inner[None, :]).ravel()  # row j, column i
        free = cells[state[cells] != _TEST]
        cx = w + (free % full - 0.5) / self.per_x
        cy = s + (free // full - 0.5) / self.per_y
        state[free[shapely.intersects_xy(boundary, cx, cy)]] = _IN
        self.state = state

    def _cells(self, v: np.ndarray, lo: float, per: float, work: np.ndarray | None = None,
               into: np.ndarray | None = None) -> np.ndarray:
        """The cell column (or row) of each value: 1 to ``side`` inside the box, 0 and ``side + 1`` the border
        (beyond the box, and NaN). ``work`` (float64) and ``into`` (int32), as long as ``v``, are used when given
        instead of fresh arrays; ``into`` is returned."""
        work = np.empty(len(v)) if work is None else work
        into = np.empty(len(v), np.int32) if into is None else into
        with np.errstate(over="ignore", invalid="ignore"):  # far beyond the box: inf, a border cell
            np.subtract(v, lo, out=work)
            work *= per
            work += 1.0
        np.fmax(work, 0.0, out=work)  # NaN: 0, a border cell
        np.fmin(work, self.side + 1, out=work)
        np.copyto(into, work, casting="unsafe")  # truncated: the cell
        return into

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether each point (arrays of x, y) lies in the boundary, its edge included.

        Worked in chunks of ``CHUNK`` points in buffers used again: on ten million points, arrays made fresh for
        each step cost more in first touches of memory than the arithmetic."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        n, full = len(x), self.side + 2
        out = np.empty(n, dtype=bool)
        size = min(n, CHUNK)
        f, cell, col = np.empty(size), np.empty(size, np.int32), np.empty(size, np.int32)
        tested = []
        for a in range(0, n, CHUNK):
            m = min(n - a, CHUNK)
            self._cells(y[a:a + m], self.origin[1], self.per_y, f[:m], cell[:m])
            self._cells(x[a:a + m], self.origin[0], self.per_x, f[:m], col[:m])
            c = cell[:m]
            c *= full
            c += col[:m]
            state = self.state.take(c)
            np.equal(state, _IN, out=out[a:a + m])
            tested.append(np.flatnonzero(state == _TEST) + a)
        test = np.concatenate(tested) if tested else np.empty(0, dtype=np.int64)
        out[test] = shapely.intersects_xy(self.boundary, x[test], y[test])
        return out
