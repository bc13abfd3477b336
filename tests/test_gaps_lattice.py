"""The gaps of a lattice layer drawn from the uncovered cells' boundary (``coverage.gaps._faces``) are the polygons
of the union of their squares: the same ground, the same parts and holes, on patterns with holes, islands inside
holes, cells meeting at a corner only and negative indices."""

from __future__ import annotations

import numpy as np
import shapely

from yizhan.coverage.gaps import gaps_from_grid

SIZE = 200.0


def _union(ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    squares = shapely.box(ix * SIZE, iy * SIZE, (ix + 1) * SIZE, (iy + 1) * SIZE)
    return np.asarray(shapely.get_parts(shapely.coverage_union_all(squares)))


def _check(ix: np.ndarray, iy: np.ndarray) -> None:
    weights = np.arange(1, len(ix) + 1, dtype=float)
    gaps = gaps_from_grid(ix, iy, SIZE, 32650, uncovered=np.ones(len(ix), dtype=bool), weights=weights)
    want = _union(ix, iy)
    got = gaps.geometry.to_numpy()
    assert len(got) == len(want)
    assert all(g.is_valid for g in got)
    # part by part: each gap is one part of the union, exactly (its corners are the lattice's)
    want_by_area = sorted(want, key=lambda g: (g.area, g.bounds))
    got_by_area = sorted(got, key=lambda g: (g.area, g.bounds))
    for g, w in zip(got_by_area, want_by_area, strict=True):
        assert shapely.symmetric_difference(g, w).area == 0.0
        assert shapely.get_num_interior_rings(g) == shapely.get_num_interior_rings(w)
    assert sorted(c for c in gaps["cells"]) == sorted(len(m) for m in gaps["members"])
    assert gaps["demand"].sum() == weights.sum()


def test_a_ring_with_an_island_in_its_hole_and_corner_touches() -> None:
    ring = [(i, j) for i in range(-5, 6) for j in range(-5, 6) if max(abs(i), abs(j)) in (4, 5)]
    island = [(0, 0), (1, 0), (0, 1)]
    corners = [(10, 10), (11, 11), (12, 10), (11, 9)]  # four cells around (11, 10), meeting at corners only
    cells = np.asarray(ring + island + corners)
    _check(cells[:, 0], cells[:, 1])
    gaps = gaps_from_grid(cells[:, 0], cells[:, 1], SIZE, 32650, uncovered=np.ones(len(cells), dtype=bool),
                          weights=np.ones(len(cells)))
    assert len(gaps) == 1 + 1 + 4  # the ring (with a hole), the island, four corner cells apart
    assert sorted(shapely.get_num_interior_rings(gaps.geometry.to_numpy())) == [0, 0, 0, 0, 0, 1]


def test_random_lattices_agree_with_the_union_of_squares() -> None:
    rng = np.random.default_rng(11)
    for density in (0.2, 0.5, 0.8):
        cells = np.argwhere(rng.random((60, 45)) < density) + np.array([-30, 1_000])
        _check(cells[:, 0], cells[:, 1])
