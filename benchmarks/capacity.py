"""Capacity at province scale: 2SFCA and E2SFCA on 1 M demand points x 10 k stations at 1 km, the loads at every
hour of the week, and PySAL ``access`` beside them on the largest input it can take.

Run with ``.venv/bin/python benchmarks/capacity.py [--quick] [--pysal-limit SECONDS]`` on a quiet machine. No
database: the capacity core works on arrays, as a run does after its pairs are made.

Instance (synthetic, seeded): stations at one per km² on average over a square (100 km a side for 10 k), 60 % of
them in towns, 40 % anywhere; demand points (orders) 80 % in the towns, 20 % anywhere; seats 2–12, 10 % unknown;
each point an order at one hour of the week drawn from a lunch and dinner profile, over 4 weeks; opening hours:
half the stations keep a host's hours (Mo–Fr 08:30–18:00), 30 % open daily 07:00–22:00, 20 % 24/7.

Timed apart, in this process:

- pairs: ``straight_reach`` (KD-tree) within 1,000 m and sorting them by demand then station (the contract's order);
- 2SFCA, E2SFCA stepwise and gaussian: ``two_step_fca`` on those pairs (sparse matrix-vector products);
- loads: ``station_loads`` over the 168 hours (catchment per station and hour, peak hours, crowded stations,
  accessibility at the area's peak hour);
- peak RSS of this process (MB) after each step (it only grows).

Then PySAL ``access`` (``Access.two_stage_fca`` and ``enhanced_two_stage_fca`` with the same steps) in a fresh
process per size, growing 10 k x 100, 100 k x 1 k, 1 M x 10 k (``--quick``: the first two; ``--beyond``: then
4 M x 40 k) until a size does not finish within ``--pysal-limit`` seconds (default 600) or runs out of memory;
``two_step_fca`` is timed on the same pairs in the same process, the largest accessibility difference is printed as
a check, and the process's own peak RSS.
The issue's goal: the 2SFCA on 1 M x 10 k at 1 km in <= 5 s.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from yizhan.capacity.fca import gaussian_decay, no_decay, stepwise_decay, two_step_fca
from yizhan.capacity.loads import station_loads
from yizhan.coverage.reach import straight_reach

from common import aligned, machine_line, rss_mb

RADIUS = 1000.0
WEEKS = 4.0
FULL = (1_000_000, 10_000)
QUICK = (100_000, 1_000)
PYSAL_SIZES = [(10_000, 100), (100_000, 1_000), (1_000_000, 10_000)]
BEYOND = [(4_000_000, 40_000)]  # ``--beyond``: past the size, to find where PySAL stops


def profile() -> np.ndarray:
    """(168,) share of orders by hour of the week: lunch and dinner peaks, weekends a little busier, nights quiet."""
    day = np.full(24, 0.2)
    day[7:10] = 1.0
    day[10:14] = [2.0, 4.0, 5.0, 3.0]
    day[14:17] = 1.2
    day[17:21] = [3.0, 4.5, 3.5, 2.0]
    day[21:24] = [1.2, 0.8, 0.4]
    week = np.concatenate([day * (1.2 if d >= 5 else 1.0) for d in range(7)])
    return week / week.sum()


def instance(n: int, m: int, seed: int = 1) -> dict[str, Any]:
    """Points and stations (x, y metres), orders per point, its hour, seats (NaN unknown), open hours (m, 168)."""
    rng = np.random.default_rng(seed)
    side = np.sqrt(m) * 1000.0  # one station per km² on average
    towns = rng.uniform(0, side, (max(4, m // 40), 2))
    spread = rng.uniform(1000, 4000, len(towns))

    def scatter(k: int, share_in_towns: float, widen: float) -> np.ndarray:
        t = rng.integers(0, len(towns), k)
        near = towns[t] + rng.normal(0, 1, (k, 2)) * spread[t, None] * widen
        anywhere = rng.uniform(0, side, (k, 2))
        return np.clip(np.where((rng.random(k) < share_in_towns)[:, None], near, anywhere), 0, side)

    points = scatter(n, 0.8, 1.0)
    stations = scatter(m, 0.6, 1.5)
    seats = rng.integers(2, 13, m).astype(float)
    seats[rng.random(m) < 0.1] = np.nan
    hour = rng.choice(168, n, p=profile())
    orders = rng.integers(1, 4, n).astype(float)
    open_ = np.zeros((m, 168), dtype=bool)
    kind = rng.random(m)
    h = np.arange(168)
    host = (h // 24 < 5) & (h % 24 >= 8) & (h % 24 < 18)
    daily = (h % 24 >= 7) & (h % 24 < 22)
    open_[kind < 0.5] = host
    open_[(kind >= 0.5) & (kind < 0.8)] = daily
    open_[kind >= 0.8] = True
    return {"points": points, "stations": stations, "seats": seats, "hour": hour, "orders": orders, "open": open_}


def sorted_pairs(points: np.ndarray, stations: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair within the radius, sorted by demand then station."""
    dem, site, dist = straight_reach(points, stations, RADIUS)
    order = np.lexsort((site, dem))
    return dem[order], site[order], dist[order]


def ours(n: int, m: int) -> list[list[str]]:
    """The capacity core on n points x m stations, timed step by step."""
    rows: list[list[str]] = []

    def row(step: str, secs: float, note: str = "") -> None:
        rows.append([step, f"{secs:.2f}", f"{rss_mb():,.0f}", note])
        print("  " + " | ".join(rows[-1]), flush=True)

    t0 = time.perf_counter()
    inst = instance(n, m)
    row("instance", time.perf_counter() - t0, f"{n:,} points x {m:,} stations")
    t0 = time.perf_counter()
    dem, site, dist = sorted_pairs(inst["points"], inst["stations"])
    t_pairs = time.perf_counter() - t0
    reached = np.bincount(dem, minlength=n) > 0
    row("pairs (straight, 1 km, sorted)", t_pairs,
        f"{len(dem):,} pairs, {len(dem) / n:.1f} stations per point, {reached.mean():.0%} of points reach one")
    demand = np.bincount(np.arange(n), weights=inst["orders"], minlength=n)
    for decay in (no_decay(RADIUS), stepwise_decay(RADIUS), gaussian_decay(RADIUS)):
        t0 = time.perf_counter()
        fca = two_step_fca(dem, site, dist, demand, inst["seats"], decay=decay)
        secs = time.perf_counter() - t0
        row(f"{decay.method} {decay.kind}", secs,
            f"accessibility median {np.median(fca.accessibility[reached]):.4f} seats per order where reached")
    t0 = time.perf_counter()
    p = csr_matrix((inst["orders"], (np.arange(n), inst["hour"])), shape=(n, 168))
    t_matrix = time.perf_counter() - t0
    t0 = time.perf_counter()
    loads = station_loads(dem, site, dist, p, inst["seats"], inst["open"], decay=stepwise_decay(RADIUS),
                          weeks=WEEKS)
    s = loads.summary
    row("loads, 168 hours (E2SFCA stepwise)", time.perf_counter() - t0,
        f"demand matrix {t_matrix:.2f} s apart; area peak hour {s['peak_hour']}, {s['crowded']:,} crowded of "
        f"{s['stations']:,} (most {np.nanmax(loads.table['per_seat']):.1f} orders a seat), "
        f"{s['stations_without_seats']:,} without seats")
    return rows


def own_peak_mb() -> float:
    """This process's own peak resident memory, MB (``VmHWM``: ``ru_maxrss`` keeps the parent's peak across the
    fork and exec that start a process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return rss_mb()


def _pysal(n: int, m: int, out: mp.Queue) -> None:
    """In a fresh process: PySAL access and ``two_step_fca`` on the same pairs, with times and peak RSS."""
    import pandas as pd
    from access import Access, weights

    inst = instance(n, m)
    dem, site, dist = sorted_pairs(inst["points"], inst["stations"])
    demand = inst["orders"]
    res: dict[str, Any] = {"pairs": len(dem)}
    for decay in (no_decay(RADIUS), stepwise_decay(RADIUS)):
        t0 = time.perf_counter()
        mine = two_step_fca(dem, site, dist, demand, inst["seats"], decay=decay)
        res[f"ours_{decay.kind}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        a = Access(demand_df=pd.DataFrame({"geoid": np.arange(n), "orders": demand}), demand_index="geoid",
                   demand_value="orders", supply_df=pd.DataFrame({"geoid": np.arange(m), "seats": inst["seats"]}),
                   supply_index="geoid", supply_value="seats",
                   cost_df=pd.DataFrame({"origin": dem, "dest": site, "cost": dist}), cost_origin="origin",
                   cost_dest="dest", cost_name="cost")
        if decay.kind == "none":
            got = a.two_stage_fca(name="fca", max_cost=RADIUS)
        else:
            got = a.enhanced_two_stage_fca(name="fca", max_cost=RADIUS, weight_fn=weights.step_fn(dict(decay.steps)))
        res[f"pysal_{decay.kind}"] = time.perf_counter() - t0
        ref = got["fca_seats"].reindex(np.arange(n)).to_numpy(dtype=float)
        ok = np.isfinite(ref)
        res[f"diff_{decay.kind}"] = float(np.abs(ref[ok] - mine.accessibility[ok]).max()) if ok.any() else 0.0
    res["rss"] = own_peak_mb()
    out.put(res)


def pysal_ladder(sizes: list[tuple[int, int]], limit: float) -> list[list[str]]:
    """PySAL access at growing sizes, each in a fresh process, until one fails or runs out of time."""
    ctx = mp.get_context("spawn")
    rows: list[list[str]] = []
    for n, m in sizes:
        q: mp.Queue = ctx.Queue()
        proc = ctx.Process(target=_pysal, args=(n, m, q))
        t0 = time.perf_counter()
        proc.start()
        try:
            r = q.get(timeout=limit)
        except queue.Empty:
            r = None
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
        wall = time.perf_counter() - t0
        if r is None:
            rows.append([f"{n:,} x {m:,}", "-", "-", "-", "-", "-", "-",
                         f"not finished (exit {proc.exitcode}) after {wall:.0f} s"])
            print("  " + " | ".join(rows[-1]), flush=True)
            break
        rows.append([f"{n:,} x {m:,}", f"{r['pairs']:,}", f"{r['pysal_none']:.2f}", f"{r['ours_none']:.3f}",
                     f"{r['pysal_stepwise']:.2f}", f"{r['ours_stepwise']:.3f}", f"{r['rss']:,.0f}",
                     f"max |diff| {max(r['diff_none'], r['diff_stepwise']):.1e}"])
        print("  " + " | ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 k points x 1 k stations; PySAL up to that size")
    ap.add_argument("--pysal-limit", type=float, default=600.0, help="seconds PySAL may take per size (600)")
    ap.add_argument("--no-pysal", action="store_true", help="only this package's figures")
    ap.add_argument("--beyond", action="store_true", help="PySAL also on 4 M x 40 k (some 4 GB)")
    args = ap.parse_args()
    print(machine_line(), flush=True)
    n, m = QUICK if args.quick else FULL
    print(f"\nthe capacity core, {n:,} points x {m:,} stations, radius {RADIUS:,.0f} m:", flush=True)
    rows = ours(n, m)
    print()
    print(aligned([["step", "s", "peak RSS MB", ""], *rows]))
    if args.no_pysal:
        return
    print("\nPySAL access beside two_step_fca on the same pairs (a fresh process per size):", flush=True)
    sizes = [s for s in PYSAL_SIZES if s[0] <= n] + (BEYOND if args.beyond and not args.quick else [])
    ladder = pysal_ladder(sizes, args.pysal_limit)
    head = ["points x stations", "pairs", "PySAL 2SFCA s", "ours s", "PySAL E2SFCA s", "ours s", "peak RSS MB",
            "check"]
    print()
    print(aligned([head, *ladder]))


if __name__ == "__main__":
    main()
