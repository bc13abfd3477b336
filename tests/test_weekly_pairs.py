"""The faster straight-line pairs (coverage.reach.straight_pairs) give exactly the pairs and metres of
``straight_reach``, ordered by demand then site, also for points at exactly the radius and across demand blocks."""

from __future__ import annotations

import numpy as np
import pytest

from yizhan.coverage.reach import straight_pairs, straight_reach


def in_demand_order(dem: np.ndarray, site: np.ndarray, dist: np.ndarray) -> tuple[list[int], list[int], np.ndarray]:
    order = np.lexsort((site, dem))
    return dem[order].tolist(), site[order].tolist(), dist[order]


@pytest.mark.parametrize("block", [1, 97, 250_000])
def test_straight_pairs_equal_straight_reach(block: int) -> None:
    rng = np.random.default_rng(11)
    demand = np.vstack([rng.uniform(0, 5_000, (2_000, 2)), rng.normal(2_500, 300, (1_000, 2))])
    sites = rng.uniform(0, 5_000, (60, 2))
    got = straight_pairs(demand, sites, 800.0, block=block)
    ref = in_demand_order(*straight_reach(demand, sites, 800.0))
    assert len(ref[0]) > 1_000
    assert got[0].tolist() == ref[0] and got[1].tolist() == ref[1]
    assert np.array_equal(got[2], ref[2]), "the same metres, to the bit"
    assert got[0].dtype == np.int64 and got[1].dtype == np.int64


def test_points_at_exactly_the_radius_and_empty_inputs() -> None:
    sites = np.array([[0.0, 0.0], [3_000.0, 0.0]])
    demand = np.array([[600.0, 800.0], [1_000.0, 0.0], [1_000.0, 0.001], [3_000.0, -1_000.0], [0.0, 0.0]])
    got = straight_pairs(demand, sites, 1_000.0)
    assert list(zip(got[0].tolist(), got[1].tolist(), strict=True)) == [(0, 0), (1, 0), (3, 1), (4, 0)]
    ref = in_demand_order(*straight_reach(demand, sites, 1_000.0))
    assert got[0].tolist() == ref[0] and got[1].tolist() == ref[1]
    assert got[2].tolist() == [1_000.0, 1_000.0, 1_000.0, 0.0]
    for empty in (straight_pairs(demand, sites[:0], 1_000.0), straight_pairs(demand[:0], sites, 1_000.0)):
        assert [len(x) for x in empty] == [0, 0, 0]
