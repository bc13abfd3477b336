"""Benchmark of coverage by hour of the week (yizhan.weekly): 168 hours x 1 M demand points x 10 k stations at 1 km.

Run with ``.venv/bin/python benchmarks/by_hour.py [--quick]`` on a quiet machine (``--quick``: 100 k points, 1 k
stations, a 100 k-node lattice). Each case runs in a process of its own, so that its peak RSS is its own.

- **Straight line**: demand points and stations in a 60 x 60 km city (80 % in Gaussian clusters around 40 centres,
  20 % uniform), metres of one projected CRS. Each point is one order; 90 % carry a time over four weeks (hours drawn
  from the default delivery profile), 10 % none (spread over the week by the profile: 168 entries each). Stations
  carry a mix of real rules (``RULES``: 24/7, office hours, two periods a day, shops 10–22, petrol 06–22, ...).
  End to end = opening by hour (``station_open`` + ``pack``) + the demand matrix (``demand_by_hour``) + pairs
  (``coverage.reach.straight_pairs``) + masks (``covered_masks``) + figures (``hour_figures`` with 100 units, and
  the summary). Beside it in the same run: the plain nearest-station coverage without hours
  (``coverage.euclidean.nearest_from_arrays``) and the list-building ``straight_reach`` it replaces.
- **Along the streets**: a perturbed lattice of 100 m blocks (``network.lattice``, 1 M nodes, about 100 x 100 km),
  1 M demand points and 10 k stations uniform over it, snapped to their nearest edges. The one shortest-path pass
  (``coverage.reach.network_reach``, door to door) is timed apart; then masks + figures (the hours applied as masks,
  not 168 passes). Beside it: the plain nearest-station coverage along the streets (``network_nearest``).

Times are wall seconds (one run each; the machine's load is printed), memory is the process's peak RSS in MB.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import scipy

from yizhan.coverage.euclidean import nearest_from_arrays
from yizhan.coverage.network import network_nearest, snap_points
from yizhan.coverage.reach import straight_pairs, straight_reach
from yizhan.geo.streets import compile_street_graph
from yizhan.weekly.availability import station_open
from yizhan.weekly.figures import hour_figures
from yizhan.weekly.masks import covered_masks, pack
from yizhan.weekly.profile import DEFAULT_PROFILE, demand_by_hour
from yizhan.weekly.week import HOURS, hour_of_week, weeks_spanned

from common import dict_table, fixed, json_from_child, machine_line, rss_mb
from network import lattice

SEED = 20261202
RADIUS_M = 1000.0
SIDE_M = 60_000.0
UNITS = 10  # a 10 x 10 grid of units (townships)
RULES = [  # (rule, share of stations)
    ("24/7", 0.12),
    ("Mo-Fr 09:00-17:00; PH off", 0.22),  # union and government offices
    ("Mo-Fr 08:30-12:00,14:30-18:00; PH off", 0.14),  # two periods a day
    ("Mo-Su 10:00-22:00", 0.14),  # shops, malls
    ("Mo-Su 06:00-22:00", 0.12),  # petrol stations
    ("Mo-Fr 09:00-17:00; Sa 09:00-12:00", 0.10),  # banks
    ("Mo-Su 07:00-23:00", 0.08),  # convenience shops
    ('unknown "不定时"', 0.04),
    ("Mo-Sa 08:00-20:00; Su off", 0.04),
]


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def clustered(n: int, side: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` points (x, y metres) in a ``side``-metre square: 80 % around 40 centres, 20 % uniform."""
    k = int(n * 0.8)
    centres = rng.uniform(0, side, (40, 2))
    near = centres[rng.integers(0, 40, k)] + rng.normal(0, side / 15, (k, 2))
    return np.clip(np.vstack([near, rng.uniform(0, side, (n - k, 2))]), 0, side)


def station_rules(m: int, rng: np.random.Generator) -> list[str]:
    """A rule for each of ``m`` stations drawn from ``RULES`` by their shares."""
    shares = np.array([s for _, s in RULES])
    pick = rng.choice(len(RULES), size=m, p=shares / shares.sum())
    return [RULES[i][0] for i in pick]


def order_times(n: int, rng: np.random.Generator) -> np.ndarray:
    """UTC instants (``datetime64[us]``) of ``n`` orders over four weeks from Monday 2 November 2026, their local
    (UTC+8) hours of the week drawn from the default profile; 10 % NaT (no time)."""
    h = rng.choice(HOURS, size=n, p=DEFAULT_PROFILE)
    week = rng.integers(0, 4, n)
    start = np.datetime64("2026-11-01T16:00", "us")  # Monday 2 November 00:00 in Shanghai
    minutes = (week * HOURS + h) * 60 + rng.integers(0, 60, n)
    times = start + minutes.astype("timedelta64[m]")
    times[rng.random(n) < 0.10] = np.datetime64("NaT")
    return times


def units_of(xy: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The unit of each point on a ``UNITS`` x ``UNITS`` grid over the box ``lo``–``hi``."""
    cell = np.clip(((xy - lo) / (hi - lo) * UNITS).astype(np.int64), 0, UNITS - 1)
    return cell[:, 0] * UNITS + cell[:, 1]


def hours_inputs(n: int, m: int, rng: np.random.Generator) -> tuple[dict[str, float], Any, Any, Any]:
    """Opening by hour and the demand matrix, timed: (timings, packed open masks, open (m, 168), demand csr)."""
    rules = station_rules(m, rng)
    times = order_times(n, rng)
    hour, t_hour = _timed(hour_of_week, times, "Asia/Shanghai")
    weeks = weeks_spanned(times)
    avail, t_open = _timed(station_open, rules)
    packed, t_pack = _timed(pack, avail.open)
    demand, t_matrix = _timed(demand_by_hour, np.arange(n), hour, np.ones(n), n, DEFAULT_PROFILE)
    return ({"hour_of_week": t_hour, "station_open": t_open + t_pack, "demand_matrix": t_matrix,
             "nnz": int(demand.nnz), "weeks": weeks}, packed, avail, demand)


def masks_and_figures(dem: np.ndarray, site: np.ndarray, packed: np.ndarray, avail: Any, demand: Any,
                      owner: np.ndarray, weeks: float) -> tuple[dict[str, Any], Any]:
    """Masks from the pairs, then the figures and their summary, timed."""
    n = demand.shape[0]
    masks, t_masks = _timed(covered_masks, dem, site, packed, n)
    fig, t_fig = _timed(hour_figures, masks, demand, open_hours=avail.open, owner=owner, n_units=UNITS * UNITS)
    summary, t_sum = _timed(fig.summary, measured="points", week_start=avail.week_start.isoformat(),
                            holidays=avail.holidays, unknown_hours_stations=int(avail.unknown.sum()), weeks=weeks)
    share = float(summary["covered_share"])
    return {"masks": t_masks, "figures": t_fig + t_sum, "share_by_hour": share,
            "uncovered_per_week": summary["uncovered_demand_hours_per_week"],
            "night_gaps": summary["night_gap_cells"]}, summary


def repeat_pass(n: int, demand_xy: np.ndarray, site_xy: np.ndarray, packed: np.ndarray, avail: Any, demand: Any,
                owner: np.ndarray, weeks: float, rng: np.random.Generator) -> dict[str, Any]:
    """The end to end again in the same process (the opening, the demand matrix from the same hours, pairs, masks,
    figures): the first pass also pays for memory the process touches for the first time, which a fresh virtual
    machine gives slowly (measured: the 1 M-point demand matrix, 210 MB, took 2.8, 1.6 and 0.3 s in three calls
    in a row)."""
    hour = np.asarray(demand.argmax(axis=1)).ravel().astype(np.int64)  # one timed hour per point, same size
    hour[rng.random(n) < 0.10] = -1
    _, t_open = _timed(station_open, station_rules(len(site_xy), rng))
    matrix, t_matrix = _timed(demand_by_hour, np.arange(n), hour, np.ones(n), n, DEFAULT_PROFILE)
    (dem, site, _), t_pairs = _timed(straight_pairs, demand_xy, site_xy, RADIUS_M)
    masks, t_masks = _timed(covered_masks, dem, site, packed, n)
    fig, t_fig = _timed(hour_figures, masks, matrix, open_hours=avail.open, owner=owner, n_units=UNITS * UNITS)
    _, t_sum = _timed(fig.summary, weeks=weeks)
    return {"end_to_end_again": t_open + t_matrix + t_pairs + t_masks + t_fig + t_sum,
            "again_parts": f"matrix {t_matrix:.2f}, pairs {t_pairs:.2f}, masks {t_masks:.2f}, "
                           f"figures {t_fig + t_sum:.2f}"}


def run_straight(n: int, m: int) -> dict[str, Any]:
    """The straight-line case (see the module's docstring)."""
    rng = np.random.default_rng(SEED)
    demand_xy = clustered(n, SIDE_M, rng)
    site_xy = clustered(m, SIDE_M, rng)
    timing, packed, avail, demand = hours_inputs(n, m, rng)
    owner = units_of(demand_xy, np.zeros(2), np.full(2, SIDE_M))
    (dem, site, _dist), t_pairs = _timed(straight_pairs, demand_xy, site_xy, RADIUS_M)
    res, summary = masks_and_figures(dem, site, packed, avail, demand, owner, timing["weeks"])
    plain, t_plain = _timed(nearest_from_arrays, demand_xy, site_xy, RADIUS_M)
    rss_main = rss_mb()
    again = repeat_pass(n, demand_xy, site_xy, packed, avail, demand, owner, timing["weeks"], rng)
    old, t_old = _timed(straight_reach, demand_xy, site_xy, RADIUS_M)
    assert len(old[0]) == len(dem)
    end_to_end = timing["station_open"] + timing["demand_matrix"] + t_pairs + res["masks"] + res["figures"]
    return {"case": f"straight, {n:,} pts x {m:,} st.", "pairs": len(dem), **timing, "pairs_s": t_pairs, **res,
            "end_to_end": end_to_end, "plain_nearest": t_plain, "share_plain": float(plain.covered.mean()),
            "straight_reach_old": t_old, "rss_mb": rss_main, "worst": summary["worst_hours"][:3], **again}


def run_network(n_nodes: int, n: int, m: int) -> dict[str, Any]:
    """The along-the-streets case (see the module's docstring)."""
    from yizhan.coverage.reach import network_reach

    rng = np.random.default_rng(SEED + 1)
    data, t_gen = _timed(lattice, n_nodes, SEED)
    graph, t_compile = _timed(compile_street_graph, data["x"], data["y"], data["u"], data["v"], crs_epsg=32650,
                              geometry=data["geometry"])
    lo, hi = np.asarray(data["lo"]), np.asarray(data["hi"])
    demand_xy = rng.uniform(lo, hi, (n, 2))
    site_xy = rng.uniform(lo, hi, (m, 2))
    del data
    site_snap, t_snap_s = _timed(snap_points, graph, site_xy)
    demand_snap, t_snap_d = _timed(snap_points, graph, demand_xy)
    timing, packed, avail, demand = hours_inputs(n, m, rng)
    owner = units_of(demand_xy, lo, hi)
    (dem, site, _dist), t_pass = _timed(network_reach, graph, site_snap, demand_snap, radius_m=RADIUS_M)
    res, _summary = masks_and_figures(dem, site, packed, avail, demand, owner, timing["weeks"])
    plain, t_plain = _timed(network_nearest, graph, site_snap, demand_snap, radius_m=RADIUS_M)
    after = timing["station_open"] + timing["demand_matrix"] + res["masks"] + res["figures"]
    return {"case": f"streets, {graph.n_nodes:,} nodes, {n:,} pts x {m:,} st.", "pairs": len(dem), **timing,
            "generate": t_gen, "compile": t_compile, "snap": t_snap_s + t_snap_d, "pass": t_pass, **res,
            "after_pass": after, "plain_nearest": t_plain, "share_plain": float(plain.covered.mean()),
            "rss_mb": rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 k points, 1 k stations, a 100 k-node lattice")
    parser.add_argument("--straight", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--network", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.straight:
        print(json.dumps(run_straight(*args.straight)))
        return
    if args.network:
        print(json.dumps(run_network(*args.network)))
        return
    n, m, nodes = (100_000, 1_000, 100_000) if args.quick else (1_000_000, 10_000, 1_000_000)
    print(machine_line(f"numpy {np.__version__}, scipy {scipy.__version__}"), flush=True)
    print(f"running straight line, {n:,} points x {m:,} stations ...", flush=True)
    straight = json_from_child(__file__, ["--straight", str(n), str(m)], show_stderr=True)
    print(f"running along the streets, {nodes:,} nodes, {n:,} points x {m:,} stations ...", flush=True)
    street = json_from_child(__file__, ["--network", str(nodes), str(n), str(m)], show_stderr=True)
    f = fixed(2)
    print(f"\nBy hour of the week (seconds; radius {RADIUS_M:.0f} m; 168 hours)\n")
    print(dict_table([straight, street], [
        ("case", "case"), ("pairs", "pairs"), ("matrix nnz", "nnz"), ("hour of week", "hour_of_week"),
        ("opening", "station_open"), ("demand matrix", "demand_matrix"), ("masks", "masks"),
        ("figures", "figures")], f))
    print(dict_table([straight], [
        ("straight line", "case"), ("pairs", "pairs_s"), ("end to end", "end_to_end"),
        ("again, same process", "end_to_end_again"),
        ("plain nearest (no hours)", "plain_nearest"), ("old straight_reach", "straight_reach_old"),
        ("share, week", "share_by_hour"), ("share, plain", "share_plain"), ("peak RSS MB", "rss_mb")], f))
    print(dict_table([street], [
        ("along the streets", "case"), ("lattice", "generate"), ("compile", "compile"), ("snap", "snap"),
        ("shortest-path pass", "pass"), ("after the pass", "after_pass"),
        ("plain nearest (no hours)", "plain_nearest"), ("share, week", "share_by_hour"),
        ("share, plain", "share_plain"), ("peak RSS MB", "rss_mb")], f))
    print("\nend to end = opening + demand matrix + pairs + masks + figures; after the pass = opening + demand "
          "matrix + masks + figures; share, week = covered demand over all 168 hours (stations counted only when "
          "open); share, plain = demand within the radius of any station at all")
    print("straight line again, same process:", straight["again_parts"])
    print("worst hours, straight line:", ", ".join(f"{w['label_en']} ({w['share']:.1%})" for w in straight["worst"]))


if __name__ == "__main__":
    main()
