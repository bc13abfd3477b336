"""Site recommendation at county to province scale: sparse reach, MCLP solve, bound and gap.

Run with ``.venv/bin/python benchmarks/recommend.py [--quick] [--spopt]``. No database: the solver core works on
arrays, as ``yizhan recommend`` does after loading an area.

Instances (synthetic, seeded): demand cells on a 200 m grid over a square region, weights from a few dozen
Gaussian "town centres" plus a uniform background (deliveries concentrate in towns); existing stations placed in
the towns so they cover part of the demand; candidate sites drawn near demand (premises sit where people are).
Radius 1,000 m, straight line. For each size (demand cells x candidates) and K:

- reach: ``straight_reach`` (KD-tree) and building the sparse matrix of still-uncovered cells;
- solve: ``solve_mclp`` with a 60 s limit: greedy + swap, HiGHS LP bound, HiGHS branch and cut from the swap
  answer while time is left; objective, proven bound, relative gap, method, seconds;
- peak RSS of this process after the size (it only grows).

``--points P``: the same sizes measured on demand points, as ``recommend`` does when an area stores its orders
(the rows of the model are then the uncovered points, not cells): each cell's orders spread over 1 + Poisson(P - 1)
points uniform in the cell, equal shares; points covered by the stations' nearest distance, reach by
``straight_pairs`` (tree against tree), the matrix of uncovered points (the solver merges points reached by the same
candidates: "reduced rows"). Printed beside the cell rows of the same size.

``--network``: the same along a street network: a perturbed lattice of 100 m blocks (``benchmarks/network.py``)
of 250k and 1M nodes, demand points and candidates snapped to it, ``network_reach`` (bounded Dijkstra per tile of
candidates), then ``solve_mclp`` with K = 50.

``--spopt``: PySAL spopt's MCLP (dense cost matrix + PuLP/CBC) on 20k x 1k, stopped after 500 s.
The issue's goal: 50k x 5k, K = 50 within a proven 2 % gap in <= 60 s.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import time
from contextlib import suppress
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from yizhan.coverage.reach import straight_pairs, straight_reach
from yizhan.siting.solver import CoverageMatrix, solve_mclp

from common import aligned, machine_line, rss_mb

RADIUS = 1000.0
CELL = 200.0
SIZES = [(10_000, 1_000, (10, 50)), (50_000, 5_000, (10, 50, 200)), (200_000, 20_000, (10, 50, 200))]
QUICK = [(10_000, 1_000, (10, 50)), (50_000, 5_000, (50,))]


def instance(n_cells: int, n_cands: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cell centres (x, y metres), weights, candidate sites, existing stations."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_cells)))
    gx, gy = np.meshgrid(np.arange(side), np.arange(side))
    cells = (np.column_stack([gx.ravel(), gy.ravel()])[:n_cells] + 0.5) * CELL
    size = side * CELL
    towns = rng.uniform(0, size, (max(8, n_cells // 2000), 2))
    spread = rng.uniform(800, 3000, len(towns))
    d2 = np.min(((cells[:, None, :] - towns[None, :, :]) ** 2).sum(axis=2) / spread[None, :] ** 2, axis=1) \
        if n_cells * len(towns) <= 2e8 else np.zeros(n_cells)
    weights = np.round(40 * np.exp(-d2 / 2) + rng.exponential(0.8, n_cells), 1)
    p = weights / weights.sum()
    cands = cells[rng.choice(n_cells, n_cands, replace=False, p=p)] + rng.uniform(-CELL / 2, CELL / 2, (n_cands, 2))
    n_st = max(5, n_cands // 10)
    stations = towns[rng.integers(0, len(towns), n_st)] + rng.normal(0, 1500, (n_st, 2))
    return cells, weights, cands, stations


def points_of(cells: np.ndarray, weights: np.ndarray, per_cell: float, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Demand points (x, y metres) and their orders: each cell's weight split equally over 1 + Poisson(per_cell - 1)
    points drawn uniformly in the cell."""
    rng = np.random.default_rng(seed)
    count = 1 + rng.poisson(max(per_cell - 1.0, 0.0), len(cells))
    owner = np.repeat(np.arange(len(cells)), count)
    xy = cells[owner] + rng.uniform(-CELL / 2, CELL / 2, (len(owner), 2))
    return xy, (weights / count)[owner]


def run_size(n: int, m: int, ks: tuple[int, ...], time_limit: float, per_cell: float = 0.0) -> list[list[str]]:
    t0 = time.perf_counter()
    cells, w, cands, stations = instance(n, m)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    if per_cell:
        xy, w = points_of(cells, w, per_cell)
        covered = cKDTree(stations).query(xy)[0] <= RADIUS
        dem, site, _ = straight_pairs(xy, cands, RADIUS)
        unit = f"{len(xy):,} points"
    else:
        covered = cKDTree(stations).query(cells)[0] <= RADIUS
        dem, site, _ = straight_reach(cells, cands, RADIUS)
        unit = "cells"
    cm = CoverageMatrix.from_pairs(dem, site, m, w, ~covered & (w > 0))
    t_reach = time.perf_counter() - t0
    before = w[covered].sum() / w.sum()
    print(f"{n:,} cells ({unit}) x {m:,} candidates: generated in {t_gen:.1f} s, reach + matrix {t_reach:.2f} s, "
          f"{cm.matrix.shape[0]:,} uncovered rows, {cm.matrix.nnz:,} links, covered before {before:.1%}", flush=True)
    rows = []
    label = f"{n:,} x {m:,}" + (f" ({len(w):,} pts)" if per_cell else "")
    for k in ks:
        t0 = time.perf_counter()
        sol = solve_mclp(cm, k, time_limit_s=time_limit)
        secs = time.perf_counter() - t0
        after = (w[covered].sum() + sol.objective) / w.sum()
        rows.append([label, str(k), f"{t_reach:.2f}", f"{secs:.2f}", f"{before:.1%}", f"{after:.1%}",
                     f"{sol.objective:,.1f}", f"{sol.bound:,.1f}", f"{sol.gap:.3%}", sol.method,
                     f"{sol.details.get('reduced_rows', 0):,}", f"{rss_mb():,.0f}"])
        phases = ", ".join(f"{k} {v:.1f}" for k, v in sol.details.get("phase_seconds", {}).items())
        print("  " + " | ".join(rows[-1]) + f" | phases (s): {phases}", flush=True)
    return rows


def run_network(n_nodes: int, n_demand: int, n_cands: int, k: int, time_limit: float) -> list[str]:
    from yizhan.coverage.network import network_nearest, snap_points
    from yizhan.coverage.reach import network_reach
    from yizhan.geo.streets import compile_street_graph

    from network import lattice

    rng = np.random.default_rng(3)
    data = lattice(n_nodes, 3)
    graph = compile_street_graph(data["x"], data["y"], data["u"], data["v"], crs_epsg=32650,
                                 geometry=data["geometry"])
    lo, hi = np.array(data["lo"]), np.array(data["hi"])
    demand = snap_points(graph, rng.uniform(lo, hi, (n_demand, 2)))
    cands = snap_points(graph, rng.uniform(lo, hi, (n_cands, 2)))
    stations = snap_points(graph, rng.uniform(lo, hi, (max(5, n_cands // 10), 2)))
    w = np.round(rng.exponential(3.0, n_demand), 1)
    covered = network_nearest(graph, stations, demand, radius_m=RADIUS, include_access=True).covered
    t0 = time.perf_counter()
    dem, site, _ = network_reach(graph, cands, demand, radius_m=RADIUS)
    t_reach = time.perf_counter() - t0
    cm = CoverageMatrix.from_pairs(dem, site, n_cands, w, ~covered & (w > 0))
    t0 = time.perf_counter()
    sol = solve_mclp(cm, k, time_limit_s=time_limit)
    secs = time.perf_counter() - t0
    row = [f"{graph.n_nodes:,} nodes, {n_demand:,} x {n_cands:,}", str(k), f"{t_reach:.2f}", f"{len(dem):,}",
           f"{secs:.2f}", f"{sol.gap:.3%}", sol.method, f"{rss_mb():,.0f}"]
    print("  " + " | ".join(row), flush=True)
    return row


def _spopt(n: int, m: int, k: int, out: mp.Queue) -> None:
    import pulp
    from spopt.locate import MCLP

    cells, w, cands, _ = instance(n, m)
    t0 = time.perf_counter()
    cost = np.sqrt(((cells[:, None, :] - cands[None, :, :]) ** 2).sum(axis=2))
    built = MCLP.from_cost_matrix(cost, w, RADIUS, p_facilities=k)
    t_build = time.perf_counter() - t0
    built.solve(pulp.PULP_CBC_CMD(msg=False))
    out.put((t_build, time.perf_counter() - t0, float(pulp.value(built.problem.objective))))


def _kill_tree(pid: int) -> None:
    """Kill a process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, found = [pid], []
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    for p in found:
        with suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def run_spopt(n: int, m: int, k: int, limit: float) -> str:
    q: mp.Queue = mp.Queue()
    p = mp.Process(target=_spopt, args=(n, m, k, q))
    t0 = time.perf_counter()
    p.start()
    p.join(limit)
    if p.is_alive():
        _kill_tree(p.pid)  # PuLP's CBC runs as a child process of its own: stop it too
        p.join()
        return f"spopt MCLP {n:,} x {m:,}, K={k}: not finished after {limit:.0f} s (stopped)"
    t_build, t_all, obj = q.get()
    return (f"spopt MCLP {n:,} x {m:,}, K={k}: build {t_build:.1f} s, total {t_all:.1f} s, objective {obj:,.1f} "
            f"(wall {time.perf_counter() - t0:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="two small sizes only")
    ap.add_argument("--spopt", action="store_true", help="also time spopt's dense MCLP on 20k x 1k (up to 500 s)")
    ap.add_argument("--network", action="store_true", help="also along street lattices of 250k and 1M nodes")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per solve (default 60)")
    ap.add_argument("--points", type=float, default=0.0, metavar="P",
                    help="also measure demand points, P per cell on average (as recommend does with stored orders)")
    args = ap.parse_args()
    print(machine_line(), flush=True)
    rows = []
    for n, m, ks in (QUICK if args.quick else SIZES):
        rows += run_size(n, m, ks, args.time_limit)
        if args.points:
            rows += run_size(n, m, ks, args.time_limit, args.points)
    head = ["cells x candidates", "K", "reach s", "solve s", "before", "after", "objective", "bound", "gap",
            "method", "reduced rows", "peak RSS MB"]
    print()
    print(aligned([head, *rows]))
    if args.network:
        print("\nalong the streets (network_reach, then the same solver):")
        net = [run_network(n, d, c, 50, args.time_limit) for n, d, c in
               ([(250_000, 50_000, 5_000)] if args.quick else [(250_000, 50_000, 5_000), (1_000_000, 200_000, 20_000)])]
        head = ["graph, demand x candidates", "K", "reach s", "pairs", "solve s", "gap", "method", "peak RSS MB"]
        print(aligned([head, *net]))
    if args.spopt:
        print()
        print(run_spopt(20_000, 1_000, 50, 500.0), flush=True)


if __name__ == "__main__":
    main()
