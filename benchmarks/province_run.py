"""A province along the streets end to end, as a planner runs it: street graphs per tile from the province's
extract, then a stored coverage run in parts on Dask.

Run with ``.venv/bin/python benchmarks/province_run.py [--tiles 110] [--grid 4 4] [--workers 2]``. The province is
``benchmarks/province.py``'s replica of the Wudaokou extract on an N x N grid (110 x 110: 10.2 M walk graph nodes,
a 1.2 GB .osm.pbf, generated once into ``--keep`` and reused), in a throw-away PostGIS cluster (fsync off):

1. the area (its boundary the copies' streets' box), 10,000 stations and 250,000 demand points uniform over it
   (``import_stations``, ``import_demand``: 200 m cells);
2. ``coverage.streets.build_street_parts`` (as ``yizhan network parts``): one streaming pass over the extract and a
   graph per tile of ``--grid`` with the halo a run at 1 km needs; time and the peak memory of this step's process;
3. ``run_coverage(mode="network", parts=...)`` at 1 km (as ``yizhan coverage --mode network --partitions N``) on a
   LocalCluster of ``--workers`` processes: each worker loads its tile's graph and reads its own cells, points and
   stations from PostGIS; the run is merged, gapped and stored in the calling process. Its phases (from the progress
   messages), each part's time, the peak memory of every worker and of the caller.

Times in seconds (wall), memory in MB; the machine's load is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry import Polygon, box

from province_parts import N_DEMAND, N_STATIONS, RADIUS_M, SEED, UTM50N, _generated, province_bounds
from yizhan.areas import ensure_area
from yizhan.coverage.partitions import street_parts_halo
from yizhan.coverage.streets import build_street_parts
from yizhan.data.demand import import_demand
from yizhan.db.engine import make_engine, migrate
from yizhan.settings import Settings
from yizhan.stations.service import import_stations

from common import json_from_child, local_dask, machine_line, say, throwaway_cluster

CELL_M = 200.0


def peak_mb() -> float:
    """This process's peak resident memory (``VmHWM``), MB."""
    status = Path("/proc/self/status").read_text()
    return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:"))) / 1024


def load_area(url: str, tiles: int, work: Path) -> dict[str, Any]:
    """The province as an area with its stations and demand points; the seconds of each import."""
    xmin, ymin, xmax, ymax = province_bounds(tiles)
    to_ll = pyproj.Transformer.from_crs(UTM50N, 4326, always_xy=True)
    # the metric box's edges followed every 1 km in WGS 84 (a box in metres is not one in degrees), grown by 1 km
    outline = shapely.segmentize(box(xmin - 1000, ymin - 1000, xmax + 1000, ymax + 1000), 1000.0)
    lon, lat = to_ll.transform(*shapely.get_coordinates(outline).T)
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        ensure_area(conn, "province", boundary=Polygon(np.column_stack([lon, lat])), crs_epsg=UTM50N,
                    source="benchmark")
    rng = np.random.default_rng(SEED)
    sx, sy = to_ll.transform(*rng.uniform((xmin, ymin), (xmax, ymax), (N_STATIONS, 2)).T)
    st = work / "stations.csv"
    pd.DataFrame({"id": [f"P{i}" for i in range(N_STATIONS)], "name": [f"驿站{i}" for i in range(N_STATIONS)],
                  "kind": "small", "lon": sx, "lat": sy}).to_csv(st, index=False, float_format="%.7f")
    dx, dy = to_ll.transform(*rng.uniform((xmin, ymin), (xmax, ymax), (N_DEMAND, 2)).T)
    dm = work / "orders.csv"
    pd.DataFrame({"lon": dx, "lat": dy, "weight": 1}).to_csv(dm, index=False, float_format="%.7f")
    t = time.perf_counter()
    import_stations(engine, st, area="province")
    t_st = time.perf_counter() - t
    t = time.perf_counter()
    summary = import_demand(engine, dm, area="province", cell_size_m=CELL_M)
    t_dm = time.perf_counter() - t
    engine.dispose()
    return {"stations_s": t_st, "demand_s": t_dm, "cells": summary.cells, "points": summary.points}


def child_build(url: str, pbf: str, data: str, nx: int, ny: int) -> dict[str, Any]:
    """Step 2 in a process of its own (its peak memory is the step's)."""
    from yizhan.areas import get_area

    settings = Settings(database_url=url, data_dir=Path(data))
    engine = make_engine(url)
    with engine.connect() as conn:
        info = get_area(conn, "province")
    engine.dispose()
    halo = street_parts_halo(RADIUS_M, settings.max_snap_m, CELL_M)
    said: list[str] = []
    t = time.perf_counter()
    manifest = build_street_parts(info, Path(pbf), profile="walk", tiles=(nx, ny), halo_m=halo, settings=settings,
                                  progress=lambda m: (said.append(m), print(f"  build: {m}", file=sys.stderr)))
    meta = json.loads(Path(manifest).read_text())
    nodes = [p.get("nodes", 0) for p in meta["parts"]]
    return {"seconds": time.perf_counter() - t, "peak_mb": peak_mb(), "halo_m": halo, "parts": len(meta["parts"]),
            "largest_part_nodes": max(nodes), "nodes": int(sum(nodes)), "pass_s": meta.get("pass_s"),
            "component_s": meta.get("component_s")}


def child_run(url: str, data: str, workers: int, parts: int) -> dict[str, Any]:
    """Step 3 in a process of its own: the stored run in parts on a LocalCluster (its start timed apart)."""
    from yizhan.coverage.analysis import run_coverage

    settings = Settings(database_url=url, data_dir=Path(data), partition_workers=workers)
    engine = make_engine(url)
    marks: list[tuple[float, str]] = []
    with local_dask(workers) as (client, started):
        t0 = time.perf_counter()
        summary = run_coverage(engine, area="province", mode="network", radius_m=RADIUS_M, settings=settings,
                               parts=parts, scheduler=client,
                               progress=lambda m: (marks.append((time.perf_counter() - t0, m)),
                                                   print(f"  run {time.perf_counter() - t0:7.1f}s: {m}",
                                                         file=sys.stderr)))
        seconds = time.perf_counter() - t0
        workers_peak = sorted(client.run(peak_mb).values())
    engine.dispose()
    part_s = [float(m.split(", ")[-1].split(" s")[0]) for _, m in marks if " done: " in m and m.startswith("part ")]
    return {"seconds": seconds, "cluster_s": started, "caller_peak_mb": peak_mb(), "workers_peak_mb": workers_peak,
            "covered_share": summary["covered_share"], "cells": summary["cells"], "gaps": summary["gaps"],
            "part_s": part_s, "marks": [(round(t, 2), m) for t, m in marks]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=110, help="copies per side of the province (default 110)")
    parser.add_argument("--grid", type=int, nargs=2, default=[4, 4], metavar=("NX", "NY"),
                        help="tiles of the street graphs (default 4 4)")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes (default 2)")
    parser.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "yizhan-parts-bench",
                        help="folder of the generated extracts (kept, shared with province_parts.py)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "build":
            answer = child_build(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]))
        else:
            answer = child_run(rest[0], rest[1], int(rest[2]), int(rest[3]))
        print(json.dumps(answer))
        return
    print(machine_line(f"load at the start {os.getloadavg()[0]:.1f}"), flush=True)
    args.keep.mkdir(parents=True, exist_ok=True)
    pbf, meta = _generated(args.keep, args.tiles)
    print(f"province: {meta['tiles']} copies, {meta['file_mb']:,.0f} MB, {meta['nodes']:,} OSM nodes", flush=True)
    nx, ny = args.grid
    with throwaway_cluster("yizhan-province-run-", keep=False) as scratch:
        url = scratch.cluster.up()
        data = scratch.work / "data"
        loaded = load_area(url, args.tiles, scratch.work)
        say(f"area: {loaded['points']:,} points in {loaded['cells']:,} cells ({loaded['demand_s']:.1f} s), "
            f"{N_STATIONS:,} stations ({loaded['stations_s']:.1f} s)")
        built = json_from_child(__file__, ["--child", "build", url, str(pbf), str(data), str(nx), str(ny)],
                                show_stderr=True)
        say(f"street graphs per tile ({nx} x {ny}, halo {built['halo_m']:,.0f} m): {built['seconds']:.1f} s, "
            f"{built['nodes']:,} nodes over the tiles (largest {built['largest_part_nodes']:,}), peak "
            f"{built['peak_mb']:,.0f} MB")
        run = json_from_child(__file__, ["--child", "run", url, str(data), str(args.workers), str(nx * ny)],
                              show_stderr=True)
        say(f"stored run in {nx * ny} parts on {args.workers} workers: {run['seconds']:.1f} s (cluster start "
            f"{run['cluster_s']:.1f} s apart); covered {run['covered_share']:.4f} of {run['cells']:,} cells, "
            f"{run['gaps']} gaps; parts {min(run['part_s']):.1f}–{max(run['part_s']):.1f} s; workers' peak "
            f"{' / '.join(f'{m:,.0f}' for m in run['workers_peak_mb'])} MB, the caller's "
            f"{run['caller_peak_mb']:,.0f} MB")
        for t, m in run["marks"]:
            if " done: " not in m:
                print(f"  {t:8.2f} s  {m}")
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
