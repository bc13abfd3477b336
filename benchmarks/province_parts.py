"""Benchmark of ``yizhan.geo.street_parts.partition_street_graphs`` on a province of more than 10 M street nodes.

Run with ``.venv/bin/python benchmarks/province_parts.py [--tiles 110] [--parts 4 8 16] [--whole 60] [--keep DIR]``.
The province is ``benchmarks/province.py``'s replica of the Wudaokou extract on an N × N grid (default 110 × 110
= 12,100 copies: 10.2 M walk graph nodes, 90 M OSM nodes in a ~1 GB .osm.pbf; generated once, kept with
``--keep``). Then, each in a process of its own:

- ``partition_street_graphs`` (walk) into P equal tiles over the province (2 × 2, 4 × 2, 4 × 4) with a 1 km
  halo: the streaming pass (node locations in a ``sparse_file_array`` on disk), the component join, and every
  part's build, each with its own peak memory (the process's peak RSS, ``VmHWM``, read and reset between steps);
- per part, as a worker would run it: load the part's graph, snap the stations within the halo of its rectangle
  and the demand points inside it, ``network_nearest`` at 1 km; 10k stations and 250k demand points uniform over
  the province; time and peak memory per part;
- ``street_graph_from_pbf`` of the whole province on a smaller replica (``--whole``, default 60 × 60, 3 M
  nodes): the peak memory a single build needs, to extrapolate to the province.

Times in seconds (wall), memory in MB (MiB).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyproj

from province import HEIGHT, WIDTH, WUDAOKOU, make_province
from yizhan.coverage.network import network_nearest, snap_points
from yizhan.geo.street_parts import grid_tiles, load_street_part, partition_street_graphs, read_street_parts
from yizhan.geo.streets_pbf import street_graph_from_pbf

from common import dict_table, json_from_child, machine_line, say

UTM50N = 32650
HALO_M = RADIUS_M = 1000.0
N_STATIONS, N_DEMAND = 10_000, 250_000
SEED = 20261202
GRIDS = {1: (1, 1), 2: (2, 1), 4: (2, 2), 8: (4, 2), 16: (4, 4), 32: (8, 4)}


def _log(msg: str) -> None:
    """A progress line on stderr (stdout carries a child's JSON answer)."""
    say(msg, file=sys.stderr)


def peak_mb(reset: bool = False) -> float:
    """This process's peak resident memory (``VmHWM``) since the start or the last reset, MB; then reset it."""
    status = Path("/proc/self/status").read_text()
    kb = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:")))
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    return kb / 1024


def anon_mb() -> float:
    """This process's resident anonymous memory now (``RssAnon``: not file pages such as the mapped node index), MB."""
    status = Path("/proc/self/status").read_text()
    return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("RssAnon:"))) / 1024


def province_bounds(tiles: int) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) in metres of UTM 50N holding the street graph of every copy (1 m margin).

    The extract's own nodes reach 9 x 12 km (a few far members of relations): tiles over them would be mostly
    empty, so the tiles cover the copies' street graphs; the few small components outside are left out.
    """
    g = street_graph_from_pbf(WUDAOKOU, profile="walk", crs_epsg=UTM50N)
    lon, lat = pyproj.Transformer.from_crs(UTM50N, 4326, always_xy=True).transform(g.x, g.y)
    west, south, east, north = np.min(lon), np.min(lat), np.max(lon), np.max(lat)
    east, north = east + (tiles - 1) * WIDTH, north + (tiles - 1) * HEIGHT
    t = np.linspace(0, 1, 501)
    lon = np.concatenate([west + t * (east - west), np.full(501, east), east - t * (east - west), np.full(501, west)])
    lat = np.concatenate([np.full(501, south), south + t * (north - south), np.full(501, north),
                          north - t * (north - south)])
    x, y = pyproj.Transformer.from_crs(4326, UTM50N, always_xy=True).transform(lon, lat)
    return float(np.min(x)) - 1, float(np.min(y)) - 1, float(np.max(x)) + 1, float(np.max(y)) + 1


def run_parts(pbf: Path, n_parts: int, tiles: int, out: Path) -> dict[str, Any]:
    """partition_street_graphs into ``n_parts`` tiles; times and peak memory of the pass and of every part."""
    peak_mb(reset=True)
    marks: dict[str, Any] = {"parts": [], "pass_anon_mb": anon_mb()}
    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        head = msg.split(":")[0]
        if head in ("reading", "read", "spilled"):  # sampled every 262,144 highway ways
            marks["pass_anon_mb"] = max(marks["pass_anon_mb"], anon_mb())
        if head == "spilled":
            marks["pass_peak_mb"] = peak_mb(reset=True)
            marks["pass_msg"] = msg
        elif head == "components":
            marks["component_peak_mb"] = peak_mb(reset=True)
            marks["component_msg"] = msg
        elif head.startswith("part "):
            marks["parts"].append(peak_mb(reset=True))
        _log(f"{n_parts} parts: {msg}")

    nx, ny = GRIDS[n_parts]
    manifest = partition_street_graphs(pbf, grid_tiles(province_bounds(tiles), nx, ny), halo_m=HALO_M,
                                       profile="walk", out_dir=out, crs_epsg=UTM50N, progress=progress)
    total = time.perf_counter() - t0
    meta = read_street_parts(manifest)
    parts = [{**p, "peak_mb": pk} for p, pk in zip(meta["parts"], marks["parts"], strict=True)]
    return {"n_parts": n_parts, "manifest": str(manifest), "total_s": total, "pass_s": meta["pass_s"],
            "component_s": meta["component_s"], "pass_peak_mb": marks["pass_peak_mb"],
            "component_peak_mb": marks["component_peak_mb"], "pass_anon_mb": marks["pass_anon_mb"],
            "pass_msg": marks["pass_msg"],
            "component_msg": marks["component_msg"], "graph_nodes": meta["component_graph_nodes"], "parts": parts}


def run_cover(manifest: Path, tiles: int) -> dict[str, Any]:
    """Each part as a worker runs it: load, snap its stations and demand, network_nearest at 1 km."""
    rng = np.random.default_rng(SEED)
    xmin, ymin, xmax, ymax = province_bounds(tiles)
    stations = rng.uniform((xmin, ymin), (xmax, ymax), (N_STATIONS, 2))
    demand = rng.uniform((xmin, ymin), (xmax, ymax), (N_DEMAND, 2))
    meta = read_street_parts(manifest)
    rows = []
    for part in meta["parts"]:
        if part["file"] is None:
            continue
        peak_mb(reset=True)
        x0, y0, x1, y1 = part["rect"]
        row: dict[str, Any] = {"index": part["index"]}
        t = time.perf_counter()
        graph = load_street_part(manifest, part["index"])
        row["load_s"] = time.perf_counter() - t
        t = time.perf_counter()
        graph.tree()
        row["strtree_s"] = time.perf_counter() - t
        dx = np.maximum(np.maximum(x0 - stations[:, 0], stations[:, 0] - x1), 0)
        dy = np.maximum(np.maximum(y0 - stations[:, 1], stations[:, 1] - y1), 0)
        st = stations[np.hypot(dx, dy) <= meta["halo_m"]]
        mine = demand[(demand[:, 0] >= x0) & (demand[:, 0] < x1) & (demand[:, 1] >= y0) & (demand[:, 1] < y1)]
        t = time.perf_counter()
        st_snap, dm_snap = snap_points(graph, st), snap_points(graph, mine)
        row["snap_s"] = time.perf_counter() - t
        t = time.perf_counter()
        res = network_nearest(graph, st_snap, dm_snap, radius_m=RADIUS_M)
        row["core_s"] = time.perf_counter() - t
        row.update(nodes=graph.n_nodes, stations=len(st), demand=len(mine), covered=int(res.covered.sum()),
                   total_s=row["load_s"] + row["strtree_s"] + row["snap_s"] + row["core_s"], peak_mb=peak_mb())
        _log(f"cover part {part['index']}: {row}")
        rows.append(row)
        del graph, res, st_snap, dm_snap
    return {"rows": rows}


def run_whole(pbf: Path) -> dict[str, Any]:
    """street_graph_from_pbf of the whole file (walk): time and peak memory."""
    t = time.perf_counter()
    graph = street_graph_from_pbf(pbf, profile="walk", crs_epsg=UTM50N)
    return {"build_s": time.perf_counter() - t, "nodes": graph.n_nodes, "edges": graph.n_edges, "peak_mb": peak_mb()}


def _generated(folder: Path, n: int) -> tuple[Path, dict[str, Any]]:
    path = folder / f"wudaokou-{n}x{n}.osm.pbf"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        return path, json.loads(meta_path.read_text())
    _log(f"generating {n}x{n} tiles -> {path}")
    meta = make_province(WUDAOKOU, path, n)
    meta_path.write_text(json.dumps(meta))
    return path, meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=110, help="copies per side of the province (default 110)")
    parser.add_argument("--parts", type=int, nargs="+", default=[4, 8, 16], choices=sorted(GRIDS),
                        help="numbers of partitions (default 4 8 16)")
    parser.add_argument("--whole", type=int, default=60, help="copies per side of the whole-graph build (0: none)")
    parser.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "yizhan-parts-bench",
                        help="folder of the generated extracts and graphs (kept)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "parts":
            answer = run_parts(Path(rest[0]), int(rest[1]), int(rest[2]), Path(rest[3]))
        elif kind == "cover":
            answer = run_cover(Path(rest[0]), int(rest[1]))
        else:
            answer = run_whole(Path(rest[0]))
        print(json.dumps(answer))
        return
    print(machine_line(f"numpy {np.__version__}"), flush=True)
    args.keep.mkdir(parents=True, exist_ok=True)
    pbf, meta = _generated(args.keep, args.tiles)
    print(f"province: {meta['tiles']} copies, {meta['file_mb']:,.0f} MB, {meta['nodes']:,} OSM nodes, "
          f"{meta['ways']:,} ways", flush=True)
    runs, covers = [], []
    for n_parts in args.parts:
        _log(f"{n_parts} parts: partition_street_graphs")
        run = json_from_child(__file__, ["--child", "parts", str(pbf), str(n_parts), str(args.tiles),
                                         str(args.keep / f"parts-{n_parts}")], show_stderr=True)
        runs.append(run)
        biggest = max(run["parts"], key=lambda p: p["nodes"])
        print(f"\n{n_parts} parts: pass {run['pass_s']:.1f} s (peak {run['pass_peak_mb']:,.0f} MB, of which "
              f"anonymous {run.get('pass_anon_mb', float('nan')):,.0f} MB), components "
              f"{run['component_s']:.1f} s (peak {run['component_peak_mb']:,.0f} MB), all {run['total_s']:.1f} s; "
              f"{run['graph_nodes']:,} graph nodes in the kept component; largest part {biggest['nodes']:,} nodes "
              f"built in {biggest['build_s']:.1f} s, peak {biggest['peak_mb']:,.0f} MB", flush=True)
        print(f"  {run['pass_msg']}\n  {run['component_msg']}")
        print(dict_table(run["parts"], [("part", "index"), ("nodes", "nodes"), ("edges", "edges"),
                                        ("pieces", "pieces"), ("way nodes", "way_nodes"), ("build s", "build_s"),
                                        ("peak MB", "peak_mb")]), flush=True)
        _log(f"{n_parts} parts: coverage per part")
        cover = json_from_child(__file__, ["--child", "cover", run["manifest"], str(args.tiles)], show_stderr=True)
        covers.append(cover)
        rows = cover["rows"]
        print(f"coverage per part ({N_STATIONS:,} stations, {N_DEMAND:,} demand points, {RADIUS_M:,.0f} m): "
              f"sum {sum(r['total_s'] for r in rows):.1f} s, slowest part {max(r['total_s'] for r in rows):.1f} s, "
              f"covered {sum(r['covered'] for r in rows) / N_DEMAND:.3f}")
        print(dict_table(rows, [("part", "index"), ("nodes", "nodes"), ("stations", "stations"),
                                ("demand", "demand"), ("load", "load_s"), ("STRtree", "strtree_s"),
                                ("snap", "snap_s"), ("nearest", "core_s"), ("total", "total_s"),
                                ("covered", "covered"), ("peak MB", "peak_mb")]), flush=True)
    if args.whole:
        small, small_meta = _generated(args.keep, args.whole)
        _log(f"whole graph of {small_meta['tiles']}: street_graph_from_pbf")
        whole = json_from_child(__file__, ["--child", "whole", str(small)], show_stderr=True)
        print(f"\nwhole graph, {small_meta['tiles']} replica: {whole['nodes']:,} nodes, {whole['edges']:,} edges "
              f"in {whole['build_s']:.1f} s, peak {whole['peak_mb']:,.0f} MB "
              f"({whole['peak_mb'] * 1024 / whole['nodes']:,.0f} KB per 1,000 nodes)")
        (args.keep / "whole.json").write_text(json.dumps(whole))
    (args.keep / f"results-{args.tiles}.json").write_text(json.dumps({"runs": runs, "covers": covers}))


if __name__ == "__main__":
    main()
