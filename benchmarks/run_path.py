"""A straight-line coverage run end to end against its kernel, on a 100k-cell grid with 5k stations.

Run with ``.venv/bin/python benchmarks/run_path.py [--side 317] [--stations 5000] [--repeat 3]``. Its own throw-away
PostGIS cluster (fsync off) in a temporary folder. Prints, per repeat, ``run_coverage`` end to end (read the
stations and the layer's cells, coverage, gaps, covered area, store the run) with its phases, and, in the same
process on the same arrays, the kernel alone: the nearest station of every cell centre within the radius
(``coverage.euclidean.nearest_from_arrays``). Measured on the cell centres and on the stored points, each repeat
also with the covered area as it was drawn before (``disc_union_before``: the full cells' squares merged and
overlaid with the edge discs), and the union of the discs alone, both ways, on the same stations.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from typing import Any

import numpy as np
import shapely
from sqlalchemy import text

import yizhan.coverage.cell_coverage as cell_coverage
from yizhan.areas import ensure_area, get_area
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.disc_union import CELLS_PER_RADIUS, FEW, QUAD_SEGS, disc_union
from yizhan.coverage.euclidean import nearest_from_arrays
from yizhan.coverage.runs import layer_cells
from yizhan.data.demand import import_demand
from yizhan.db.engine import make_engine, migrate
from yizhan.stations.registry import stations_frame
from yizhan.stations.service import import_stations

from beijing_data import UTM50N, make_grid
from common import loads, machine_info, rss_mb, say, table, throwaway_cluster

SEED = 20261202
RADIUS_M = 1000.0


def disc_union_before(centres: np.ndarray, radius_m: float, *, quad_segs: int = QUAD_SEGS) -> Any:
    """``coverage.disc_union`` as it was before the edge discs' holes were filled: the full cells' squares merged
    (``coverage_union_all``) and overlaid once with the edge discs. Kept here to measure against."""
    xy = np.asarray(centres, dtype=float).reshape(-1, 2)
    if len(xy) <= FEW:
        return shapely.union_all(shapely.buffer(shapely.points(xy), radius_m, quad_segs=quad_segs))
    side = radius_m / CELLS_PER_RADIUS
    inner = radius_m * np.cos(np.pi / (4 * quad_segs))
    base = np.floor(xy / side).astype(np.int64)
    k = int(np.ceil(radius_m / side)) + 1
    offsets = [(di, dj) for di in range(-k, k + 1) for dj in range(-k, k + 1)]
    keys = []
    for di, dj in offsets:
        ci, cj = base[:, 0] + di, base[:, 1] + dj
        x0, y0 = ci * side - xy[:, 0], cj * side - xy[:, 1]
        far2 = np.maximum(x0 * x0, (x0 + side) ** 2) + np.maximum(y0 * y0, (y0 + side) ** 2)
        ok = far2 <= inner * inner
        keys.append((ci[ok] << 32) | (cj[ok] + (1 << 31)))
    full = np.unique(np.concatenate(keys))
    inside = np.ones(len(xy), dtype=bool)
    reach = radius_m * (1 + 1e-9)
    for di, dj in offsets:
        ci, cj = base[:, 0] + di, base[:, 1] + dj
        x0, y0 = ci * side - xy[:, 0], cj * side - xy[:, 1]
        nx = np.where((x0 <= 0) & (x0 + side >= 0), 0.0, np.minimum(np.abs(x0), np.abs(x0 + side)))
        ny = np.where((y0 <= 0) & (y0 + side >= 0), 0.0, np.minimum(np.abs(y0), np.abs(y0 + side)))
        touches = nx * nx + ny * ny < reach * reach
        key = (ci << 32) | (cj + (1 << 31))
        at = np.searchsorted(full, key).clip(0, max(len(full) - 1, 0))
        found = full[at] == key if len(full) else np.zeros(len(key), dtype=bool)
        inside &= ~touches | found
    discs = shapely.buffer(shapely.points(xy[~inside]), radius_m, quad_segs=quad_segs)
    if not len(full):
        return shapely.union_all(discs)
    i, j = full >> 32, (full & 0xFFFFFFFF) - (1 << 31)
    core = shapely.coverage_union_all(shapely.box(i * side, j * side, (i + 1) * side, (j + 1) * side))
    return shapely.union_all(np.concatenate([[core], discs]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=317, help="grid side in 200 m cells (317: 100,489 cells)")
    parser.add_argument("--stations", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--profile", choices=("cells", "points"), help="print a profile of one run measured so")
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    print(table("machine", ["", ""], machine_info()))
    with throwaway_cluster("yizhan-run-path-", keep=args.keep) as scratch:
        engine = make_engine(scratch.cluster.up())
        migrate(engine)
        grid = make_grid(args.side, args.stations, rng, scratch.work)
        with engine.begin() as conn:
            ensure_area(conn, "grid", boundary=grid.boundary, crs_epsg=UTM50N, source="benchmark")
        import_stations(engine, grid.csv_stations, area="grid")
        summary = import_demand(engine, grid.csv_demand, area="grid", cell_size_m=200.0)
        say(f"{summary.points:,} points in {summary.cells:,} cells, {args.stations:,} stations")
        with engine.connect() as conn:
            info = get_area(conn, "grid")
            cells = layer_cells(conn, info.id)
            st = stations_frame(conn, info.id).to_crs(UTM50N)
        assert cells is not None
        st_xy = np.column_stack([st.geometry.x, st.geometry.y])
        if args.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            prof.runcall(run_coverage, engine, area="grid", radius_m=RADIUS_M, measure=args.profile)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
            return 0
        rows = []
        unions = []
        for rep in range(args.repeat):
            times = []
            for union in (disc_union_before, disc_union):
                t = time.perf_counter()
                area = union(st_xy, RADIUS_M).area
                times.append(time.perf_counter() - t)
            unions.append([rep + 1, f"{times[0]:.3f} s", f"{times[1]:.3f} s", f"{area:,.0f}", loads(os.getloadavg())])
        print(table(f"the union of {len(st_xy):,} discs of {RADIUS_M:g} m alone", ["repeat", "before", "now",
                                                                                    "area (m²)", "load"], unions))
        now = cell_coverage.disc_union
        for measure, rep, before in itertools.product(("cells", "points"), range(args.repeat), (True, False)):
            cell_coverage.disc_union = disc_union_before if before else now  # type: ignore[assignment]
            marks: list[tuple[float, str]] = []

            def mark(msg: str, marks: list[tuple[float, str]] = marks) -> None:
                marks.append((time.perf_counter(), msg))

            start = time.perf_counter()
            run = run_coverage(engine, area="grid", radius_m=RADIUS_M, measure=measure, progress=mark)
            end = time.perf_counter()
            t = time.perf_counter()
            nearest_from_arrays(cells.xy, st_xy, RADIUS_M)
            kernel = time.perf_counter() - t
            total = end - start
            phases = [(msg.split(" ", 1)[0], b - a) for (a, msg), (b, _) in
                      itertools.pairwise([(start, "resolve"), *marks, (end, "")])]
            rows.append([measure, "before" if before else "now", rep + 1, f"{total:.3f} s", f"{kernel:.3f} s",
                         f"{total / kernel:.1f}x",
                         " · ".join(f"{k} {v:.2f}" for k, v in phases), f"{run['covered_share'] * 100:.2f} %",
                         f"{run['gaps']:,}", f"{run['covered_area_km2']:,.3f}", loads(os.getloadavg())])
        cell_coverage.disc_union = now
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT pg_total_relation_size('run_cells') / count(DISTINCT run_id) "
                                       "FROM run_cells")).scalar_one()
        headers = ["measured on", "covered area", "repeat", "run_coverage", "kernel", "ratio", "phases (s)", "covered",
                   "gaps", "area (km²)", "load"]
        print(table("run_coverage end to end beside its kernel", headers, rows))
        print(f"run_cells per run: {stored / 1e6:.1f} MB; peak RSS {rss_mb():.0f} MB")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
