"""``geo.boundary_test.BoundaryTest`` gives ``shapely.intersects_xy``'s answer, edge included, on boundaries of
every shape: a box, a star with slanting edges, a district with a hole, two islands, a sliver; points at random,
on vertices and on edges, on the box's own edges, beyond it, and NaN."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from yizhan.geo.boundary_test import CHUNK, BoundaryTest


def _star(cx: float, cy: float, r: float, spikes: int) -> Polygon:
    k = np.arange(2 * spikes)
    radius = np.where(k % 2 == 0, r, 0.35 * r)
    angle = k * np.pi / spikes
    return Polygon(np.column_stack([cx + radius * np.cos(angle), cy + radius * np.sin(angle)]))


BOUNDARIES = {
    "box": box(115.4, 39.4, 117.5, 41.1),
    "star": _star(116.4, 39.9, 0.3, 37),
    "with a hole": box(116.0, 39.6, 116.8, 40.2).difference(_star(116.4, 39.9, 0.2, 5)),
    "two islands": MultiPolygon([_star(116.2, 39.9, 0.1, 9), box(116.5, 39.95, 116.52, 39.97)]),
    "a sliver": Polygon([(116.0, 39.9), (116.9, 39.9000001), (116.9, 39.9000003)]),
}


def _points(boundary: shapely.Geometry, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    w, s, e, n = boundary.bounds
    pad = 0.1 * max(e - w, n - s)
    spread = rng.uniform((w - pad, s - pad), (e + pad, n + pad), (3 * CHUNK + 17, 2))  # several chunks
    rings = shapely.get_rings(shapely.get_parts(boundary))
    vertices = shapely.get_coordinates(rings)
    along = shapely.get_coordinates(shapely.line_interpolate_point(rings[rng.integers(0, len(rings), 2000)],
                                                                   rng.uniform(0, 1, 2000), normalized=True))
    corners = np.array([[w, s], [e, n], [w, n], [e, s], [e, (s + n) / 2], [(w + e) / 2, n]])
    odd = np.array([[np.nan, s], [w, np.nan], [np.inf, s], [-np.inf, n], [1e300, 1e300]])
    xy = np.concatenate([spread, vertices, along, corners, odd])
    return xy[:, 0], xy[:, 1]


@pytest.mark.parametrize("name", list(BOUNDARIES))
def test_the_same_answer_as_shapely(name: str) -> None:
    boundary = BOUNDARIES[name]
    x, y = _points(boundary, np.random.default_rng(len(name)))
    want = shapely.intersects_xy(boundary, x, y)
    got = BoundaryTest(boundary)(x, y)
    assert got.dtype == bool and got.shape == x.shape
    assert np.array_equal(got, want), np.flatnonzero(got != want)[:10]
    assert want.any() and not want.all()


def test_most_points_are_told_by_the_grid() -> None:
    test = BoundaryTest(BOUNDARIES["star"])
    assert (test.state == 2).mean() < 0.2  # cells an edge passes near: the slanting edges mark only their own
    assert not BoundaryTest(BOUNDARIES["box"])(np.empty(0), np.empty(0)).size
