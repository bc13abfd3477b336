"""``area_union`` of many areas lying apart (a province's towns, each a station's service area with its blocks as
holes): the halves' parts do not merge, and the union still ends, the same ground as one ``union_all``."""

from __future__ import annotations

import numpy as np
import shapely

from yizhan.coverage.area_union import area_union


def _town(x: float, y: float) -> shapely.Polygon:
    """A 300 m square area with four 60 m blocks as holes (metres)."""
    holes = [shapely.box(x + a, y + b, x + a + 60, y + b + 60).exterior.coords[::-1]
             for a in (60, 180) for b in (60, 180)]
    return shapely.Polygon(shapely.box(x, y, x + 300, y + 300).exterior.coords, holes)


def test_many_areas_apart_unite_in_finite_time() -> None:
    rng = np.random.default_rng(5)
    towns = [_town(i * 1000.0, j * 1000.0) for i in range(12) for j in range(10)]  # 120 apart, > 16 per leaf
    overlapping = [_town(i * 1000.0 + 150, j * 1000.0 + 40) for i, j in rng.integers(0, 10, (15, 2))]
    polys = np.asarray(towns + overlapping, dtype=object)
    got, want = area_union(polys), shapely.union_all(polys)
    assert got.is_valid
    assert abs(got.area - want.area) <= 1e-9 * want.area
    assert shapely.symmetric_difference(got, want).area <= 1e-6 * want.area
    assert shapely.get_num_geometries(got) == shapely.get_num_geometries(want) > 100
