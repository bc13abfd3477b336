"""Site selection on sparse coverage matrices: optimal answers against PySAL spopt's MCLP, valid bounds, set
covering, and the reach pairs (straight line and along the real Wudaokou streets) against the coverage engine."""

from __future__ import annotations

import numpy as np
import pulp
import pytest
from scipy.spatial import cKDTree
from spopt.locate import MCLP

from yizhan.coverage.network import network_nearest, snap_points
from yizhan.coverage.reach import network_reach, straight_reach
from yizhan.geo.streets_pbf import street_graph_from_pbf
from yizhan.siting.solver import CoverageMatrix, covered_by, evaluate_sites, greedy, solve_lscp, solve_mclp

RADIUS = 1000.0


def instance(seed: int, n: int, m: int, existing: int = 5, size: float = 8000.0):
    """Demand cells (x, y metres, weights), candidates and existing stations on a square of ``size`` metres."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, size, (6, 2))
    cells = np.vstack([rng.normal(centres[i % 6], size / 8, (1, 2)) for i in range(n)])
    weights = rng.integers(1, 30, n).astype(float)
    cands = rng.uniform(0, size, (m, 2))
    stations = rng.uniform(0, size, (existing, 2))
    return cells, weights, cands, stations


def matrix(cells, weights, cands, stations) -> tuple[CoverageMatrix, np.ndarray]:
    covered = cKDTree(stations).query(cells)[0] <= RADIUS
    dem, site, _ = straight_reach(cells, cands, RADIUS)
    return CoverageMatrix.from_pairs(dem, site, len(cands), weights, ~covered), covered


def spopt_optimum(cells, weights, cands, stations, k: int) -> float:
    """spopt's MCLP with the existing stations as predefined facilities: covered weight of the optimum."""
    facilities = np.vstack([stations, cands])
    cost = np.linalg.norm(cells[:, None, :] - facilities[None, :, :], axis=2)
    predefined = np.r_[np.ones(len(stations), dtype=int), np.zeros(len(cands), dtype=int)]
    model = MCLP.from_cost_matrix(cost, weights, RADIUS, p_facilities=len(stations) + k,
                                  predefined_facilities_arr=predefined)
    model = model.solve(pulp.PULP_CBC_CMD(msg=False))
    assert pulp.LpStatus[model.problem.status] == "Optimal"
    return float(pulp.value(model.problem.objective))


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "n", "m", "k"), [(0, 600, 120, 1), (1, 600, 120, 4), (2, 900, 200, 10),
                                                  (3, 2000, 300, 6), (4, 1500, 300, 25)])
def test_mclp_objective_equals_spopt_optimum(seed, n, m, k):
    cells, w, cands, stations = instance(seed, n, m)
    cm, covered = matrix(cells, w, cands, stations)
    sol = solve_mclp(cm, k, time_limit_s=60)
    optimum = spopt_optimum(cells, w, cands, stations, k)
    before = w[covered].sum()
    assert before + sol.objective == pytest.approx(optimum, abs=1e-6)
    assert sol.optimal and sol.gap <= 1e-6
    assert len(sol.chosen) <= k
    # the reported objective is what the chosen sites really cover, and gains add up to it, largest first
    assert covered_by(cm.matrix, cm.weights, sol.chosen) == pytest.approx(sol.objective)
    assert sol.gains.sum() == pytest.approx(sol.objective)
    assert (np.diff(sol.gains) <= 1e-9).all()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [5, 6, 7])
def test_bounds_hold_and_unproven_answers_are_not_called_optimal(seed):
    cells, w, cands, stations = instance(seed, 1200, 250)
    cm, covered = matrix(cells, w, cands, stations)
    for k in (3, 12):
        optimum = spopt_optimum(cells, w, cands, stations, k) - w[covered].sum()
        sol = solve_mclp(cm, k, time_limit_s=30, exact=False)  # local search + LP bound only
        assert sol.objective <= optimum + 1e-6 <= sol.bound + 2e-6
        assert sol.optimal == (sol.gap <= 1e-6)
        if sol.optimal:
            assert sol.objective == pytest.approx(optimum)
        else:
            assert "branch and cut" not in sol.method


def test_greedy_trap_is_escaped_by_the_swap_and_proven():
    # rows 0-3 are covered by site 0, rows {0,1,4} by site 1 and {2,3,5} by site 2: greedy takes site 0 first
    rows = np.array([0, 1, 2, 3, 0, 1, 4, 2, 3, 5])
    cols = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    cm = CoverageMatrix.from_pairs(rows, cols, 3, np.ones(6), np.ones(6, dtype=bool))
    at = cm.matrix.T.tocsr()
    first, _ = greedy(cm.matrix, at, cm.weights, 2)
    assert covered_by(cm.matrix, cm.weights, first) == 5
    sol = solve_mclp(cm, 2, time_limit_s=10)
    assert sol.objective == 6 and sorted(sol.chosen.tolist()) == [1, 2] and sol.optimal


def test_set_covering_reaches_the_target_with_the_fewest_sites():
    cells, w, cands, stations = instance(8, 1000, 200)
    cm, covered = matrix(cells, w, cands, stations)
    total = w.sum()
    required = 0.9 * total - w[covered].sum()
    sol = solve_lscp(cm, required, time_limit_s=60)
    n = len(sol.chosen)
    assert sol.objective == n and sol.optimal
    assert covered_by(cm.matrix, cm.weights, sol.chosen) >= required - 1e-6
    fewer = solve_mclp(cm, n - 1, time_limit_s=60)
    assert fewer.optimal and fewer.objective < required  # one site fewer cannot reach the target
    with pytest.raises(ValueError, match="less than"):
        solve_lscp(cm, cm.weights.sum() + 1.0)


def test_evaluation_of_given_sites_against_the_best():
    cells, w, cands, stations = instance(9, 800, 150)
    cm, _ = matrix(cells, w, cands, stations)
    mine = np.array([3, 40, 77])
    ev = evaluate_sites(cm, mine)
    assert sorted(ev.chosen.tolist()) == mine.tolist()
    assert ev.objective == pytest.approx(covered_by(cm.matrix, cm.weights, mine))
    best = solve_mclp(cm, 3)
    assert ev.objective <= best.objective <= ev.bound + 1e-6
    assert not ev.optimal


def test_straight_reach_matches_brute_force():
    cells, _, cands, _ = instance(10, 700, 90)
    dem, site, dist = straight_reach(cells, cands, RADIUS)
    full = np.linalg.norm(cells[:, None, :] - cands[None, :, :], axis=2)
    ref = np.argwhere(full <= RADIUS)
    assert sorted(zip(dem.tolist(), site.tolist(), strict=True)) == sorted(map(tuple, ref.tolist()))
    assert np.allclose(dist, full[dem, site])


@pytest.mark.parametrize("profile", ["walk", "bike"])
def test_network_reach_equals_the_coverage_engine(extracts, profile):
    graph = street_graph_from_pbf(extracts[1], profile=profile)
    rng = np.random.default_rng(11)
    lo, hi = (graph.x.min(), graph.y.min()), (graph.x.max(), graph.y.max())
    demand = snap_points(graph, rng.uniform(lo, hi, (2500, 2)))
    sites = snap_points(graph, rng.uniform(lo, hi, (40, 2)))
    dem, site, dist = network_reach(graph, sites, demand, radius_m=RADIUS)
    assert len(dem) > 500
    for k in range(len(sites)):
        one = network_nearest(graph, sites.take([k]), demand, radius_m=RADIUS, include_access=True)
        mine = site == k
        assert np.array_equal(np.flatnonzero(one.covered), np.sort(dem[mine]))
        assert np.allclose(one.distance_m[dem[mine]], dist[mine], atol=1e-6)


def test_sites_that_add_nothing_are_not_recommended():
    cm = CoverageMatrix.from_pairs(np.array([0, 0, 0]), np.array([0, 1, 2]), 3, np.array([5.0]), np.ones(1, bool))
    sol = solve_mclp(cm, 5)
    assert len(sol.chosen) == 1 and sol.objective == 5 and sol.optimal
    # an evaluation lists every given site, the useless ones with gain 0
    ev = evaluate_sites(cm, np.array([0, 1]))
    assert len(ev.chosen) == 2 and sorted(ev.gains.tolist()) == [0.0, 5.0]


@pytest.mark.parametrize("scale", [1e-10, 1.0, 1e7])
def test_weights_of_any_scale(scale):
    cells, w, cands, stations = instance(12, 900, 150)
    cm, _ = matrix(cells, w * scale, cands, stations)
    sol = solve_mclp(cm, 40, time_limit_s=20, exact=False)
    assert (sol.gains > 1e-9 * cm.weights.sum()).all()
    assert sol.objective <= sol.bound * (1 + 1e-9)
    ref = solve_mclp(CoverageMatrix(cm.matrix, cm.weights / scale, cm.rows), 40, time_limit_s=20, exact=False)
    assert sol.objective / scale == pytest.approx(ref.objective, rel=1e-9)
    lscp = solve_lscp(cm, 0.5 * cm.weights.sum(), time_limit_s=20)
    assert len(lscp.chosen) >= 1 and lscp.bound <= lscp.objective
