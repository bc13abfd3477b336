"""Benchmark of street-network coverage (yizhan.coverage.network) on synthetic grids and the Wudaokou extract.

Run with ``.venv/bin/python benchmarks/network.py [--quick]``. Synthetic street graphs are perturbed lattices
(about 100 m blocks, 10 % of the blocks' sides removed, a quarter of the edges bent by a midpoint) with
10k / 100k / 1M nodes, 100 / 1k / 10k stations and one demand point per four nodes, all uniform at random from
a fixed seed. Each case runs in its own process so that its peak RSS is its own. ``--quick`` skips the 1M case.

Phases: compile (arrays to StreetGraph and its CSR), save/load (.npz), snap (STRtree build, stations,
demand), the core (multi-source Dijkstra over all stations incl. the virtual station nodes, then the per-demand
distances; best of 3) and service areas (up to 100k nodes). Times in seconds, metres in UTM 50N.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import shapely
from scipy.sparse.csgraph import dijkstra

from yizhan.coverage.network import demand_distances, network_nearest, node_distances, service_areas, snap_points
from yizhan.geo.streets import StreetGraph, compile_street_graph, street_graph_from_networkx

from common import dict_table, fixed, json_from_child, machine_line, rss_mb

HERE = Path(__file__).resolve().parent
WUDAOKOU = HERE.parents[1] / "shared" / "data" / "osm" / "beijing_haidian_wudaokou.osm"
SEED = 20261125
CASES = [(10_000, 100), (100_000, 1_000), (1_000_000, 10_000)]
RADIUS_M = 1000.0
REPEATS = 3


def lattice(n_nodes: int, seed: int) -> dict[str, Any]:
    """A perturbed square lattice of about ``n_nodes`` nodes: 100 m blocks, ±20 m jitter, 10 % edges removed.

    Returns node x/y (metres, UTM-like offsets), edge u/v and edge geometries (a quarter bent by a midpoint).
    """
    rng = np.random.default_rng(seed)
    side = math.isqrt(n_nodes)
    i, j = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    x = 400_000.0 + i.ravel() * 100.0 + rng.uniform(-20, 20, side * side)
    y = 4_400_000.0 + j.ravel() * 100.0 + rng.uniform(-20, 20, side * side)
    idx = (i * side + j)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    keep = rng.random(len(u)) > 0.10
    u, v = u[keep], v[keep]
    m = len(u)
    bent = rng.random(m) < 0.25
    mid = np.column_stack([(x[u] + x[v]) / 2, (y[u] + y[v]) / 2]) + rng.uniform(-15, 15, (m, 2))
    counts = np.where(bent, 3, 2)
    coords = np.empty((counts.sum(), 2))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    coords[start] = np.column_stack([x[u], y[u]])
    coords[start[bent] + 1] = mid[bent]
    coords[start + counts - 1] = np.column_stack([x[v], y[v]])
    geoms = np.asarray(shapely.linestrings(coords, indices=np.repeat(np.arange(m), counts)))
    return {"x": x, "y": y, "u": u, "v": v, "geometry": geoms,
            "lo": (x.min(), y.min()), "hi": (x.max(), y.max())}


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def _best(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    best, out = np.inf, None
    for _ in range(REPEATS):
        out, dt = _timed(fn, *args, **kwargs)
        best = min(best, dt)
    return out, best


def _bare_dijkstra(graph: StreetGraph, station_nodes: np.ndarray) -> None:
    dijkstra(graph.adjacency_t, directed=True, indices=station_nodes, min_only=True, return_predecessors=True,
             limit=RADIUS_M)


def run_case(n_nodes: int, n_stations: int) -> dict[str, Any]:
    """One synthetic case; returns its timings (seconds), sizes and peak RSS (MB)."""
    rng = np.random.default_rng(SEED + n_nodes)
    data, t_gen = _timed(lattice, n_nodes, SEED + n_nodes)
    graph, t_compile = _timed(compile_street_graph, data["x"], data["y"], data["u"], data["v"],
                              crs_epsg=32650, geometry=data["geometry"])
    with tempfile.TemporaryDirectory(prefix="yizhan-bench-net-") as tmp:
        path, t_save = _timed(graph.save, Path(tmp) / "graph.npz")
        size_mb = path.stat().st_size / 1e6
        graph, t_load = _timed(StreetGraph.load, path)
    _, t_tree = _timed(graph.tree)
    station_xy = rng.uniform(data["lo"], data["hi"], (n_stations, 2))
    demand_xy = rng.uniform(data["lo"], data["hi"], (n_nodes // 4, 2))
    stations, t_snap_s = _timed(snap_points, graph, station_xy)
    demand, t_snap_d = _timed(snap_points, graph, demand_xy)
    (node_dist, node_station), t_dijkstra = _best(node_distances, graph, stations, limit_m=RADIUS_M)
    res, t_demand = _best(demand_distances, graph, stations, demand, node_dist, node_station, radius_m=RADIUS_M)
    _, t_core = _best(network_nearest, graph, stations, demand, radius_m=RADIUS_M)
    _, t_bare = _best(_bare_dijkstra, graph, graph.u[stations.edge])
    rss_core = rss_mb()
    t_areas = None
    if n_nodes <= 100_000:
        _, t_areas = _timed(service_areas, graph, stations, res.node_dist, res.node_station, radius_m=RADIUS_M)
    return {"case": f"{graph.n_nodes:,} nodes / {n_stations:,} st.", "nodes": graph.n_nodes,
            "edges": graph.n_edges, "stations": n_stations, "demand": len(demand), "generate": t_gen,
            "compile": t_compile, "save": t_save, "load": t_load, "file_mb": size_mb, "strtree": t_tree,
            "snap_stations": t_snap_s, "snap_demand": t_snap_d, "dijkstra": t_dijkstra, "per_demand": t_demand,
            "core": t_core, "bare_dijkstra": t_bare, "service_areas": t_areas,
            "covered": float(res.covered.mean()), "rss_core_mb": rss_core, "rss_mb": rss_mb()}


def run_wudaokou() -> dict[str, Any]:
    """The real Wudaokou walk graph: osmnx build, compile, snap 6 stations and 2,000 demand points, coverage."""
    from yizhan.geo.streets_osmnx import streets_from_extract

    G, t_osmnx = _timed(streets_from_extract, WUDAOKOU, profile="walk")
    graph, t_compile = _timed(street_graph_from_networkx, G)
    _, t_tree = _timed(graph.tree)
    rng = np.random.default_rng(SEED)
    xy = np.column_stack([graph.x, graph.y])
    lo, hi = np.percentile(xy, 5, axis=0), np.percentile(xy, 95, axis=0)
    stations, t_snap_s = _timed(snap_points, graph, rng.uniform(lo, hi, (6, 2)))
    demand, t_snap_d = _timed(snap_points, graph, rng.uniform(lo, hi, (2_000, 2)))
    res, t_core = _best(network_nearest, graph, stations, demand, radius_m=RADIUS_M)
    _, t_areas = _timed(service_areas, graph, stations, res.node_dist, res.node_station, radius_m=RADIUS_M)
    return {"case": "Wudaokou walk (real)", "nodes": graph.n_nodes, "edges": graph.n_edges, "stations": 6,
            "demand": len(demand), "osmnx_build": t_osmnx, "compile": t_compile, "strtree": t_tree,
            "snap_stations": t_snap_s, "snap_demand": t_snap_d, "core": t_core, "service_areas": t_areas,
            "covered": float(res.covered.mean()), "rss_mb": rss_mb()}


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    return dict_table(rows, columns, fixed(4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1M-node case")
    parser.add_argument("--one", nargs=2, type=int, metavar=("NODES", "STATIONS"), help=argparse.SUPPRESS)
    parser.add_argument("--wudaokou", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_case(*args.one)))
        return
    if args.wudaokou:
        print(json.dumps(run_wudaokou()))
        return
    print(machine_line(f"numpy {np.__version__}, scipy {scipy.__version__}, shapely {shapely.__version__} "
                       f"(GEOS {shapely.geos_version_string})"))
    rows = []
    for n_nodes, n_stations in CASES[:2] if args.quick else CASES:
        print(f"running {n_nodes:,} nodes, {n_stations:,} stations ...", flush=True)
        rows.append(json_from_child(__file__, ["--one", str(n_nodes), str(n_stations)]))
    real = None
    if WUDAOKOU.exists():
        print("running the Wudaokou walk graph ...", flush=True)
        real = json_from_child(__file__, ["--wudaokou"])
    else:
        print(f"Wudaokou extract not found at {WUDAOKOU}: skipped")
    print("\nSynthetic lattices (seconds; core phases best of 3; radius 1000 m; demand = nodes / 4)\n")
    print(_table(rows, [("case", "case"), ("edges", "edges"), ("demand", "demand"), ("compile", "compile"),
                        ("save", "save"), ("load", "load"), ("npz MB", "file_mb"), ("STRtree", "strtree"),
                        ("snap st.", "snap_stations"), ("snap demand", "snap_demand")]))
    print()
    print(_table(rows, [("case", "case"), ("dijkstra+virtual", "dijkstra"), ("per-demand", "per_demand"),
                        ("core total", "core"), ("bare scipy", "bare_dijkstra"),
                        ("service areas", "service_areas"), ("covered", "covered"),
                        ("peak RSS MB before areas", "rss_core_mb"), ("peak RSS MB", "rss_mb")]))
    if real:
        print("\nWudaokou walk graph (real OSM; 6 stations, 2,000 demand points)\n")
        print(_table([real], [("case", "case"), ("nodes", "nodes"), ("edges", "edges"),
                              ("osmnx build", "osmnx_build"), ("from_networkx", "compile"), ("STRtree", "strtree"),
                              ("snap st.", "snap_stations"), ("snap demand", "snap_demand"), ("core", "core"),
                              ("service areas", "service_areas"), ("covered", "covered"),
                              ("peak RSS MB", "rss_mb")]))
    print("\ncore total = network_nearest after load and snapping (Dijkstra incl. virtual station nodes + "
          "per-demand distances); bare scipy = csgraph.dijkstra from the stations' nearest nodes, no virtual "
          "nodes, for reference")


if __name__ == "__main__":
    main()
