"""A straight-line coverage run end to end against its kernel, on a 100k-cell grid with 5k stations.

Run with ``.venv/bin/python benchmarks/run_path.py [--side 317] [--stations 5000] [--repeat 3]``. Its own throw-away
PostGIS cluster (fsync off) in a temporary folder. Prints, per repeat, ``run_coverage`` end to end (read the
stations and the layer's cells, coverage, gaps, covered area, store the run) with its phases, and, in the same
process on the same arrays, the kernel alone: the nearest station of every cell centre within the radius
(``coverage.euclidean.nearest_from_arrays``). Measured on the cell centres and on the stored points.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np
from sqlalchemy import text

from yizhan.areas import ensure_area, get_area
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.euclidean import nearest_from_arrays
from yizhan.coverage.runs import layer_cells
from yizhan.data.demand import import_demand
from yizhan.db.engine import make_engine, migrate
from yizhan.stations.registry import stations_frame
from yizhan.stations.service import import_stations

from beijing_data import UTM50N, make_grid
from common import machine_info, rss_mb, say, table, throwaway_cluster

SEED = 20261202
RADIUS_M = 1000.0


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
        for measure, rep in itertools.product(("cells", "points"), range(args.repeat)):
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
            rows.append([measure, rep + 1, f"{total:.3f} s", f"{kernel:.3f} s", f"{total / kernel:.1f}x",
                         " · ".join(f"{k} {v:.2f}" for k, v in phases), f"{run['covered_share'] * 100:.2f} %",
                         f"{run['gaps']:,}"])
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT pg_total_relation_size('run_cells') / count(DISTINCT run_id) "
                                       "FROM run_cells")).scalar_one()
        headers = ["measured on", "repeat", "run_coverage", "kernel", "ratio", "phases (s)", "covered", "gaps"]
        print(table("run_coverage end to end beside its kernel", headers, rows))
        print(f"run_cells per run: {stored / 1e6:.1f} MB; peak RSS {rss_mb():.0f} MB")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
