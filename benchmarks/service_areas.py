"""Benchmark of the service-area polygons (yizhan.coverage.network.service_areas) on synthetic lattices.

Run with ``.venv/bin/python benchmarks/service_areas.py [--quick]`` on a quiet machine (``uptime``). The street
graphs are the perturbed lattices of benchmarks/network.py (about 100 m blocks) with 100k nodes / 1k stations
and 1M nodes / 10k stations (``--quick`` skips the 1M case, which takes minutes), radius 1000 m, buffer 25 m.
Each case runs in its own process so that its peak RSS is its own.

Phases (seconds): the reached street pieces (``reached_pieces``), buffering every piece, the per-station
unions and the union of the stations' areas (together: ``service_areas`` as the callers run it), and for
comparison one union of all buffered pieces at once. The goal of issue 17 is 10 s at 1M nodes.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import shapely

from yizhan.coverage.network import node_distances, reached_pieces, service_areas, snap_points
from yizhan.geo.streets import compile_street_graph

from common import dict_table, fixed, json_from_child, machine_line, rss_mb
from network import SEED, lattice

CASES = [(100_000, 1_000), (1_000_000, 10_000)]
RADIUS_M = 1000.0
BUFFER_M = 25.0


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def run_case(n_nodes: int, n_stations: int) -> dict[str, Any]:
    """One lattice case; returns its timings (seconds), sizes, merged area (m²) and peak RSS (MB)."""
    rng = np.random.default_rng(SEED + n_nodes)
    data = lattice(n_nodes, SEED + n_nodes)
    graph = compile_street_graph(data["x"], data["y"], data["u"], data["v"], crs_epsg=32650,
                                 geometry=data["geometry"])
    stations = snap_points(graph, rng.uniform(data["lo"], data["hi"], (n_stations, 2)))
    node_dist, node_station = node_distances(graph, stations, limit_m=RADIUS_M)
    (pieces, _), t_pieces = _timed(reached_pieces, graph, stations, node_dist, node_station, radius_m=RADIUS_M)
    blobs, t_buffer = _timed(shapely.buffer, pieces, BUFFER_M, quad_segs=4)
    rss_before = rss_mb()
    (_, merged), t_total = _timed(service_areas, graph, stations, node_dist, node_station,
                                            radius_m=RADIUS_M, buffer_m=BUFFER_M)
    _, t_per_only = _timed(service_areas, graph, stations, node_dist, node_station, radius_m=RADIUS_M,
                           buffer_m=BUFFER_M, merge=False)
    once, t_once = _timed(shapely.union_all, blobs)
    return {"case": f"{graph.n_nodes:,} nodes / {n_stations:,} st.", "pieces": len(pieces),
            "reached_pieces": t_pieces, "buffer": t_buffer, "service_areas": t_total,
            "per_station_only": t_per_only, "merge": t_total - t_per_only, "union_once": t_once,
            "us_per_piece": 1e6 * t_total / max(len(pieces), 1), "area_km2": merged.area / 1e6,
            "area_once_km2": once.area / 1e6, "rss_before_mb": rss_before, "rss_mb": rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1M-node case")
    parser.add_argument("--one", nargs=2, type=int, metavar=("NODES", "STATIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_case(*args.one)))
        return
    print(machine_line(f"shapely {shapely.__version__} (GEOS {shapely.geos_version_string})"))
    rows = []
    for n_nodes, n_stations in CASES[:1] if args.quick else CASES:
        print(f"running {n_nodes:,} nodes, {n_stations:,} stations ...", flush=True)
        rows.append(json_from_child(__file__, ["--one", str(n_nodes), str(n_stations)]))
    print(f"\nService areas on lattices (seconds; radius {RADIUS_M:.0f} m, buffer {BUFFER_M:.0f} m)\n")
    print(dict_table(rows, [("case", "case"), ("pieces", "pieces"), ("reached pieces", "reached_pieces"),
                            ("buffer", "buffer"), ("service_areas", "service_areas"),
                            ("per station only", "per_station_only"), ("merge", "merge"),
                            ("one union of all", "union_once"), ("µs / piece", "us_per_piece"),
                            ("area km²", "area_km2"), ("area once km²", "area_once_km2"),
                            ("RSS MB before", "rss_before_mb"), ("peak RSS MB", "rss_mb")], fixed(3)))


if __name__ == "__main__":
    main()
