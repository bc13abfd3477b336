"""Benchmark of the service-area polygons (yizhan.coverage.network.service_areas) on synthetic lattices.

Run with ``.venv/bin/python benchmarks/service_areas.py [--quick] [--no-old-merge-above NODES]`` on a quiet
machine (``uptime``). The street graphs are the perturbed lattices of benchmarks/network.py (about 100 m blocks)
with 100k nodes / 1k stations and 1M nodes / 10k stations (``--quick`` skips the 1M case, which takes minutes),
radius 1000 m, buffer 25 m. Each case runs in its own process so that its peak RSS is its own.

Phases (seconds): the reached street pieces (``reached_pieces``), buffering every piece, the per-station unions
(``service_areas(merge=False)``), then the merge of the stations' areas two ways in the same process: today's
route before issue 17 (one GEOS ``union_all``) and ``area_union`` (outlines overlaid, holes carried past), with the
symmetric difference of the two (m², and relative to the area). ``service_areas`` as the callers run it is the
pieces, buffering, per-station unions and ``area_union``. Peak RSS is read after each merge. The goal of issue 17
is 10 s at 1M nodes; ``--no-old-merge-above`` skips the old merge on larger cases.

Beside them the merged area on a grid (``area_raster.buffered_lines_area``, what ``network.covered_area`` runs)
with 5 m and 10 m pixels, with its error against ``area_union``'s exact area: symmetric difference relative to the
area, Hausdorff distance (m) and the widest part of the symmetric difference (twice its largest inscribed circle's
radius, m). ``--no-per-station-above NODES`` runs only the grid route on larger cases (the exact route takes
minutes at 1M nodes). Last, ``network.covered_area`` as a network run calls it, end to end from the stations'
node distances: the reached pieces, then the exact union or the grid with the pixel it chooses by their number.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import shapely

from yizhan.coverage.area_raster import buffered_lines_area
from yizhan.coverage.area_union import area_union
from yizhan.coverage.network import covered_area, node_distances, reached_pieces, service_areas, snap_points
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


def _directed(a: Any, b: Any) -> float:
    """The largest distance (m) from a vertex of ``a``'s rings to ``b``'s rings, through a tree of ``b``'s segments."""
    coords, idx = shapely.get_coordinates(shapely.get_parts(shapely.boundary(b)), return_index=True)  # ring by ring
    same = idx[1:] == idx[:-1]
    segments = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))
    points = shapely.points(shapely.get_coordinates(shapely.boundary(a)))
    _, dist = shapely.STRtree(segments).query_nearest(points, return_distance=True, all_matches=False)
    return float(dist.max(initial=0.0))


def _hausdorff(a: Any, b: Any) -> float:
    """The discrete Hausdorff distance of two polygonal areas' outlines (m): as ``shapely.hausdorff_distance``
    (each vertex's distance to the other's rings), in O(n log n) instead of its O(n · m) (over ten minutes at 100k
    nodes)."""
    return max(_directed(a, b), _directed(b, a))


def _raster(pieces: np.ndarray, exact: Any, pixel_m: float) -> dict[str, Any]:
    """The raster route on the pieces: time, area, peak RSS, and its error against ``exact`` when given."""
    got, t = _timed(buffered_lines_area, pieces, BUFFER_M, pixel_m=pixel_m)
    row: dict[str, Any] = {f"raster_{pixel_m:g}": t, f"raster_{pixel_m:g}_km2": got.area / 1e6,
                           f"raster_{pixel_m:g}_rss": rss_mb()}
    if exact is not None:
        sd = shapely.symmetric_difference(got, exact)
        parts = shapely.get_parts(sd)
        widest = max((shapely.maximum_inscribed_circle(p).length for p in parts), default=0.0)
        row |= {f"raster_{pixel_m:g}_rel": f"{sd.area / exact.area:.1e}",
                f"raster_{pixel_m:g}_haus": _hausdorff(got, exact),
                f"raster_{pixel_m:g}_wide": 2 * widest}
    return row


def _covered(graph: Any, stations: Any, node_dist: np.ndarray, node_station: np.ndarray) -> dict[str, Any]:
    """``covered_area`` as a network run calls it (the reached pieces included, the pixel chosen by their number)."""
    (got, pixel), t = _timed(covered_area, graph, stations, node_dist, node_station, radius_m=RADIUS_M,
                             buffer_m=BUFFER_M)
    return {"covered_area": t, "covered_area_pixel": "exact" if pixel is None else f"{pixel:g} m",
            "covered_area_km2": got.area / 1e6}


def run_case(n_nodes: int, n_stations: int, old_merge: bool, per_station: bool = True,
             pixels: tuple[float, ...] = (5.0, 10.0)) -> dict[str, Any]:
    """One lattice case; returns its timings (seconds), sizes, merged areas (km²), their difference and peak RSS."""
    rng = np.random.default_rng(SEED + n_nodes)
    data = lattice(n_nodes, SEED + n_nodes)
    graph = compile_street_graph(data["x"], data["y"], data["u"], data["v"], crs_epsg=32650,
                                 geometry=data["geometry"])
    stations = snap_points(graph, rng.uniform(data["lo"], data["hi"], (n_stations, 2)))
    node_dist, node_station = node_distances(graph, stations, limit_m=RADIUS_M)
    (pieces, _), t_pieces = _timed(reached_pieces, graph, stations, node_dist, node_station, radius_m=RADIUS_M)
    _, t_buffer = _timed(shapely.buffer, pieces, BUFFER_M, quad_segs=4)
    rss_before = rss_mb()
    if not per_station:
        row: dict[str, Any] = {"case": f"{graph.n_nodes:,} nodes / {n_stations:,} st.", "pieces": len(pieces),
                               "reached_pieces": t_pieces, "buffer": t_buffer, "rss_before_mb": rss_before}
        for px in pixels:
            row |= _raster(pieces, None, px)
        return row | _covered(graph, stations, node_dist, node_station)
    (per_station, _), t_per = _timed(service_areas, graph, stations, node_dist, node_station, radius_m=RADIUS_M,
                                     buffer_m=BUFFER_M, merge=False)
    reached = per_station[~shapely.is_empty(per_station)]
    merged, t_new = _timed(area_union, reached)
    rss_new = rss_mb()
    row = {
        "case": f"{graph.n_nodes:,} nodes / {n_stations:,} st.", "pieces": len(pieces), "reached_pieces": t_pieces,
        "buffer": t_buffer, "per_station": t_per, "area_union": t_new, "service_areas": t_pieces + t_per + t_new,
        "holes": int(shapely.get_num_interior_rings(shapely.get_parts(merged)).sum()), "area_km2": merged.area / 1e6,
        "rss_before_mb": rss_before, "rss_new_mb": rss_new, "union_all": None, "symdiff_m2": None,
        "symdiff_rel": None, "rss_old_mb": None}
    if old_merge:
        once, t_old = _timed(shapely.union_all, reached)
        sd = shapely.symmetric_difference(once, merged).area
        row |= {"union_all": t_old, "symdiff_m2": sd, "symdiff_rel": f"{sd / once.area:.1e}", "rss_old_mb": rss_mb()}
    for px in pixels:
        row |= _raster(pieces, merged, px)
    return row | _covered(graph, stations, node_dist, node_station)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1M-node case")
    parser.add_argument("--no-old-merge-above", type=int, default=None, metavar="NODES",
                        help="skip the old merge (one union_all) on cases with more nodes")
    parser.add_argument("--no-per-station-above", type=int, default=None, metavar="NODES",
                        help="on cases with more nodes run only the raster route (no per-station unions, no merge)")
    parser.add_argument("--one", nargs=4, type=int, metavar=("NODES", "STATIONS", "OLD", "PER"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_case(args.one[0], args.one[1], bool(args.one[2]), bool(args.one[3]))))
        return
    print(machine_line(f"shapely {shapely.__version__} (GEOS {shapely.geos_version_string})"))
    rows = []
    for n_nodes, n_stations in CASES[:1] if args.quick else CASES:
        old = args.no_old_merge_above is None or n_nodes <= args.no_old_merge_above
        print(f"running {n_nodes:,} nodes, {n_stations:,} stations ...", flush=True)
        per = args.no_per_station_above is None or n_nodes <= args.no_per_station_above
        rows.append(json_from_child(__file__, ["--one", str(n_nodes), str(n_stations), str(int(old)), str(int(per))]))
    print(f"\nService areas on lattices (seconds; radius {RADIUS_M:.0f} m, buffer {BUFFER_M:.0f} m)\n")
    print(dict_table(rows, [("case", "case"), ("pieces", "pieces"), ("reached pieces", "reached_pieces"),
                            ("buffer", "buffer"), ("per-station unions", "per_station"),
                            ("merge: area_union", "area_union"), ("merge: one union_all (old)", "union_all"),
                            ("service_areas", "service_areas"), ("holes", "holes"), ("area km²", "area_km2"),
                            ("sym. diff. m²", "symdiff_m2"), ("sym. diff. / area", "symdiff_rel"),
                            ("RSS MB before", "rss_before_mb"), ("peak RSS MB new", "rss_new_mb"),
                            ("peak RSS MB old", "rss_old_mb")], fixed(3)))
    print("\nThe merged area on a grid (buffered_lines_area; error against area_union's exact GEOS area)\n")
    cols = [("case", "case")]
    for px in ("5", "10"):
        cols += [(f"{px} m pixels s", f"raster_{px}"), ("area km²", f"raster_{px}_km2"),
                 ("sym. diff. / area", f"raster_{px}_rel"), ("Hausdorff m", f"raster_{px}_haus"),
                 ("widest miss m", f"raster_{px}_wide"), ("peak RSS MB", f"raster_{px}_rss")]
    print(dict_table(rows, cols, fixed(3)))
    print("\nThe merged area as a network run draws it (network.covered_area: reached pieces, then exact or grid)\n")
    print(dict_table(rows, [("case", "case"), ("covered_area s", "covered_area"), ("drawn", "covered_area_pixel"),
                            ("area km²", "covered_area_km2")], fixed(3)))


if __name__ == "__main__":
    main()
