"""The union of discs by ``coverage.disc_union`` against one ``shapely.union_all`` of the same discs: the same
ground (area to 1e-9 relative, Hausdorff distance under 1e-6 m), on dense and sparse clusters of real-sized
station sets, with holes, and on the few-disc and empty cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

import yizhan.coverage.disc_union as disc_union_module
from yizhan.coverage.disc_union import FEW, covered_points, disc_union, inner_discs

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
    inside = inner_discs(xy, RADIUS, RADIUS / 4, 16)
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


def _field_with_a_gap() -> np.ndarray:
    """Stations 600 m apart over 24 km square, none within 2.2 km of its centre: a hole in the covered area
    ringed by discs that reach uncovered cells, inside a city whose middle discs reach only full cells."""
    g = np.arange(-12_000.0, 12_001.0, 600.0)
    xy = np.column_stack([a.ravel() for a in np.meshgrid(g, g)])
    xy = xy[np.hypot(xy[:, 0] - 3000.0, xy[:, 1]) > 2200.0]
    rng = np.random.default_rng(11)
    return xy + rng.normal(0, 60, xy.shape) + np.array([440_000.0, 4_400_000.0])


def test_a_gap_in_a_city_stays_a_hole_and_the_city_around_it_is_filled() -> None:
    xy = _field_with_a_gap()
    inside = inner_discs(xy, RADIUS, RADIUS / 4, 16)
    # the discs around the gap and along the city's edge are overlaid; the city between them is not
    assert 100 < inside.sum() < len(xy) - 100
    got = disc_union(xy, RADIUS)
    assert shapely.get_num_interior_rings(got) == 1
    assert not got.contains(shapely.Point(443_000.0, 4_400_000.0))
    assert got.contains(shapely.Point(440_000.0 - 6000.0, 4_400_000.0))
    _same(xy)


def test_the_full_cells_as_sorted_keys_agree_with_the_dense_array(monkeypatch: Any) -> None:
    rng = np.random.default_rng(5)
    xy = np.concatenate([_field_with_a_gap(), rng.uniform(420_000, 460_000, (400, 2)) +
                         np.array([0.0, 3_980_000.0])])
    dense = inner_discs(xy, RADIUS, RADIUS / 4, 16)
    monkeypatch.setattr(disc_union_module, "DENSE_CELLS", 0)
    assert (inner_discs(xy, RADIUS, RADIUS / 4, 16) == dense).all()
    _same(xy)


def test_many_random_cities() -> None:
    # clusters of every density: the holes between them, covered or not, decided as one union_all does
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        centres = rng.uniform(0, 30_000, (6, 2))
        xy = np.concatenate([c + rng.normal(0, rng.uniform(800, 4000), (250, 2)) for c in centres])
        _same(xy + np.array([400_000.0, 4_000_000.0]))


def test_points_between_the_polygons_inscribed_and_circumscribed_circles_are_judged_on_the_polygon() -> None:
    # a disc polygon of 64 sides: a vertex lies on the circle, the middle of a side 0.12 % within it
    centre = np.array([[300_000.0, 2_500_000.0]])
    half_side = np.pi / 64
    pts = centre + np.array([[RADIUS * 0.9999, 0.0],  # towards a vertex: inside the polygon
                             [RADIUS * 0.9995 * np.cos(half_side), RADIUS * 0.9995 * np.sin(half_side)],  # beyond
                             [RADIUS * 0.5, 0.0],  # well inside
                             [RADIUS * 1.001, 0.0]])  # beyond the circle
    points = shapely.points(pts)
    disc = shapely.buffer(shapely.points(centre[0]), RADIUS, quad_segs=16)
    got = covered_points(points, centre, RADIUS, 16)
    assert list(got) == [True, False, True, False]
    assert list(got) == list(shapely.intersects(points, disc))


def test_a_lone_station_in_a_hole_leaves_the_hole_around_it_uncovered() -> None:
    # a wide ring of stations 4–6 km around a centre, one station at the centre: its disc is an island in the
    # hole, where a point inside the hole's outline (its middle) is covered though the hole around the island is not
    rng = np.random.default_rng(23)
    t = rng.uniform(0, 2 * np.pi, 3000)
    rad = rng.uniform(4000, 6000, len(t))
    centre = np.array([520_000.0, 3_100_000.0])
    xy = np.concatenate([np.column_stack([rad * np.cos(t), rad * np.sin(t)]), [[0.0, 0.0]]]) + centre
    assert inner_discs(xy, RADIUS, RADIUS / 4, 16).sum() > 500
    got = disc_union(xy, RADIUS)
    assert got.contains(shapely.Point(*centre))
    assert not got.contains(shapely.Point(centre[0] + 2000.0, centre[1]))
    _same(xy)
