"""Benchmark of the merge of a run in parts' covered areas (yizhan.coverage.area_union.union_of_regions).

Run with ``.venv/bin/python benchmarks/parts_merge.py [--nodes 1000000] [--stations 10000] [--grid 4]`` on a quiet
machine. The street graph is the perturbed lattice of benchmarks/network.py (about 100 m blocks); the covered area
is drawn as a network run draws it (``network.covered_area``: reached pieces within 1000 m, buffered 25 m, on a grid
at this size), then cut into ``--grid`` x ``--grid`` tiles as the parts of a run cut theirs (each part's area
intersected with its region). The pieces are merged three ways in the same process: ``union_of_regions`` (what a run
in parts does now: only polygons that reach their region's edge overlaid, only their outlines), ``area_union`` (the
merge before it: every outline overlaid, the holes carried past) and, with ``--union-all``, one GEOS ``union_all``.
Each answer is compared with the first (normalised, vertex for vertex: the cut's seam vertices stay, so the whole
area has fewer) and with the whole by area; the first also by its symmetric difference with the whole. Seconds
(wall) and the process's peak RSS (MB) after each merge.
"""

from __future__ import annotations

import argparse

import numpy as np
import shapely

from service_areas import BUFFER_M, RADIUS_M, _timed  # the same case as the service areas' benchmark
from yizhan.coverage.area_union import area_union, union_of_regions
from yizhan.coverage.network import covered_area, node_distances, snap_points
from yizhan.geo.streets import compile_street_graph

from common import machine_line, rss_mb
from network import SEED, lattice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--grid", type=int, default=4, help="tiles per side (default 4)")
    parser.add_argument("--union-all", action="store_true", help="also one GEOS union_all (minutes at 1M nodes)")
    args = parser.parse_args()
    print(machine_line(f"shapely {shapely.__version__} (GEOS {shapely.geos_version_string})"))
    rng = np.random.default_rng(SEED + args.nodes)
    data = lattice(args.nodes, SEED + args.nodes)
    graph = compile_street_graph(data["x"], data["y"], data["u"], data["v"], crs_epsg=32650,
                                 geometry=data["geometry"])
    stations = snap_points(graph, rng.uniform(data["lo"], data["hi"], (args.stations, 2)))
    node_dist, node_station = node_distances(graph, stations, limit_m=RADIUS_M)
    (whole, pixel), t_draw = _timed(covered_area, graph, stations, node_dist, node_station, radius_m=RADIUS_M,
                                    buffer_m=BUFFER_M)
    edges_x = np.linspace(data["lo"][0], data["hi"][0], args.grid + 1)
    edges_y = np.linspace(data["lo"][1], data["hi"][1], args.grid + 1)
    far = 1e6
    edges_x[0] -= far
    edges_x[-1] += far
    edges_y[0] -= far
    edges_y[-1] += far
    regions = np.asarray([shapely.box(edges_x[i], edges_y[j], edges_x[i + 1], edges_y[j + 1])
                          for i in range(args.grid) for j in range(args.grid)], dtype=object)
    pieces, t_cut = _timed(shapely.intersection, whole, regions)
    n_vertices = int(shapely.get_num_coordinates(pieces).sum())
    holes = int(shapely.get_num_interior_rings(shapely.get_parts(pieces)).sum())
    print(f"{graph.n_nodes:,} nodes, {args.stations:,} stations: covered area drawn in {t_draw:.1f} s "
          f"({'exact' if pixel is None else f'{pixel:g} m pixels'}), {whole.area / 1e6:,.1f} km²; cut into "
          f"{len(regions)} parts in {t_cut:.1f} s: {n_vertices:,} vertices, {holes:,} holes; RSS {rss_mb():,.0f} MB")
    ways = [("union_of_regions (now)", lambda: union_of_regions(pieces, regions)),
            ("area_union (before)", lambda: area_union(pieces))]
    if args.union_all:
        ways.append(("one union_all", lambda: shapely.union_all(pieces)))
    print("\n| merge | seconds | peak RSS MB | vertex for vertex as the first | area / whole − 1 |")
    print("|---|---:|---:|---|---:|")
    first = None
    for name, way in ways:
        got, t = _timed(way)
        mine = shapely.normalize(got)
        first = mine if first is None else first
        same = "—" if mine is first else ("yes" if shapely.equals_exact(mine, first, 1e-9) else "no")
        print(f"| {name} | {t:.2f} | {rss_mb():,.0f} | {same} | {got.area / whole.area - 1:.1e} |", flush=True)
    sd, t_sd = _timed(shapely.symmetric_difference, first, whole)
    print(f"\nThe first merge against the whole area: symmetric difference {sd.area:.3g} m² "
          f"({sd.area / whole.area:.1e} of it; {t_sd:.1f} s)")

if __name__ == "__main__":
    main()
