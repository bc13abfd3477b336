"""The union of discs by ``coverage.disc_union`` against one ``shapely.union_all`` of the same discs: the same
ground (area to 1e-9 relative, Hausdorff distance under 1e-6 m), on dense and sparse clusters of real-sized
station sets, with holes, and on the few-disc and empty cases."""

from __future__ import annotations

import numpy as np
import shapely

from yizhan.coverage.disc_union import FEW, disc_union, full_cells

RADIUS = 1000.0


def _reference(xy: np.ndarray) -> shapely.Geometry:
    return shapely.union_all(shapely.buffer(shapely.points(xy), RADIUS, quad_segs=16))


def _same(xy: np.ndarray) -> None:
    got, want = disc_union(xy, RADIUS), _reference(xy)
    assert got.is_valid
    assert abs(got.area - want.area) <= 1e-9 * want.area
    assert shapely.hausdorff_distance(got, want) < 1e-6
    assert shapely.get_num_interior_rings(got) == shapely.get_num_interior_rings(want) or \
        abs(shapely.symmetric_difference(got, want).area) <= 1e-9 * want.area


def test_dense_city_and_sparse_outskirts() -> None:
    rng = np.random.default_rng(7)
    centre = rng.normal(0, 2500, (1500, 2))  # a dense centre: most discs lie inside the others
    ring = rng.uniform(-15_000, 15_000, (300, 2))  # scattered discs, some alone
    xy = np.concatenate([centre, ring]) + np.array([448_000.0, 4_420_000.0])
    _, inside = full_cells(xy, RADIUS, RADIUS / 4, 16)
    assert inside.sum() > 500  # the shortcut is taken for many discs
    assert not inside[len(centre):].all()
    _same(xy)


def test_holes_inside_the_union_stay_holes() -> None:
    # a ring of stations 3 km around a centre without one: the middle is a hole in the covered area
    t = np.linspace(0, 2 * np.pi, 800, endpoint=False)
    rng = np.random.default_rng(3)
    rad = 3000 + rng.normal(0, 300, len(t))
    xy = np.column_stack([rad * np.cos(t), rad * np.sin(t)]) + np.array([500_000.0, 3_000_000.0])
    got = disc_union(xy, RADIUS)
    assert shapely.get_num_interior_rings(got) >= 1
    assert not got.contains(shapely.Point(500_000.0, 3_000_000.0))
    _same(xy)


def test_few_and_no_discs() -> None:
    xy = np.array([[0.0, 0.0], [1500.0, 0.0], [10_000.0, 0.0]])
    _same(xy)
    assert len(xy) <= FEW
    assert disc_union(np.empty((0, 2)), RADIUS).is_empty
