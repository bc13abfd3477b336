"""Benchmark of ``yizhan.geo.streets_pbf.street_graph_from_pbf`` on a province-sized replica of Wudaokou.

Run with ``.venv/bin/python benchmarks/province.py [--tiles N] [--keep DIR]``. The shared Wudaokou extract
(about 2.0 × 2.4 km, 7,450 nodes, 1,360 ways, 189 relations) is copied onto an N × N grid of tiles (default
40 × 40 = 1,600 copies, about 94 × 97 km), each copy shifted by the extract's width/height in degrees and with
its node/way/relation ids offset so that they stay unique (offsets 5e9 / 1e9 / 1e7 per tile: sparse ids, as in
a real extract). Neighbouring tiles are joined by one ``highway=residential`` way between two intersections
(east → west and north → south), so the largest component is the whole province: expected
``N² × nodes(tile)`` nodes and ``N² × edges(tile) + 2 N (N − 1)`` edges. The file is written with
``osmium.SimpleWriter`` to a temporary .osm.pbf.

Then, each in its own process so that its peak RSS (``ru_maxrss``) is its own:

- ``street_graph_from_pbf`` for walk and for bike, timed per phase from its progress messages, followed by the
  network coverage core on that graph: 10k stations and 250k demand points uniform over the graph's extent
  (STRtree build, snapping, ``network_nearest`` at 1,000 m);
- the osmnx route (``streets_from_extract`` + ``street_graph_from_networkx``) on a 3 × 3 replica, against
  ``street_graph_from_pbf`` on the same file.

Times in seconds (wall), memory in MB; a table at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import osmium

from yizhan.coverage.network import network_nearest, snap_points
from yizhan.geo.streets import street_graph_from_networkx
from yizhan.geo.streets_pbf import street_graph_from_pbf

from common import dict_table, json_from_child, machine_line, rss_mb, say

HERE = Path(__file__).resolve().parent
WUDAOKOU = HERE.parents[1] / "shared" / "data" / "osm" / "beijing_haidian_wudaokou.osm.pbf"
WIDTH, HEIGHT = 116.3320 - 116.3084, 40.0123 - 39.9905  # the extract's bounds, degrees of lon / lat
ID_OFFSET = {"n": 5_000_000_000, "w": 1_000_000_000, "r": 10_000_000}  # per tile; above the extract's max ids
SEED = 20261125
N_STATIONS, N_DEMAND, RADIUS_M = 10_000, 250_000, 1000.0
PHASES = ("read", "topology", "component", "geometry", "compile")


def _log(msg: str) -> None:
    """A progress line on stderr (stdout carries a child's JSON answer)."""
    say(msg, file=sys.stderr)


def _link_nodes(src: Path) -> dict[str, int]:
    """OSM ids of four intersections of the tile (≥ 3 streets in both the walk and bike graphs, not loops):
    the westmost, eastmost, southmost and northmost."""
    graphs = [street_graph_from_pbf(src, profile=p) for p in ("walk", "bike")]
    good = None
    for g in graphs:
        real = g.u != g.v
        deg = np.bincount(g.u[real], minlength=g.n_nodes) + np.bincount(g.v[real], minlength=g.n_nodes)
        ids = set(g.node_id[deg >= 3].tolist())
        good = ids if good is None else good & ids
    g = graphs[1]
    pick = np.flatnonzero(np.isin(g.node_id, np.array(sorted(good or ()))))
    return {"west": int(g.node_id[pick[np.argmin(g.x[pick])]]), "east": int(g.node_id[pick[np.argmax(g.x[pick])]]),
            "south": int(g.node_id[pick[np.argmin(g.y[pick])]]), "north": int(g.node_id[pick[np.argmax(g.y[pick])]])}


def make_province(src: Path, dst: Path, tiles: int) -> dict[str, Any]:
    """Write an N × N replica of ``src`` to ``dst`` (.osm.pbf) with linking ways; return counts and time."""
    t = time.perf_counter()
    nodes, ways, rels = [], [], []
    for obj in osmium.FileProcessor(str(src)):
        if obj.is_node():
            nodes.append((obj.id, obj.location.lon, obj.location.lat, dict(obj.tags)))
        elif obj.is_way():
            ways.append((obj.id, [nd.ref for nd in obj.nodes], dict(obj.tags)))
        else:
            rels.append((obj.id, [(m.type, m.ref, m.role) for m in obj.members], dict(obj.tags)))
    link = _link_nodes(src)
    n_off, w_off, r_off = ID_OFFSET["n"], ID_OFFSET["w"], ID_OFFSET["r"]
    Node, Way, Relation = osmium.osm.mutable.Node, osmium.osm.mutable.Way, osmium.osm.mutable.Relation
    writer = osmium.SimpleWriter(str(dst), overwrite=True)
    n_links = 0
    try:
        for k in range(tiles * tiles):
            i, j = divmod(k, tiles)
            dx, dy, off = i * WIDTH, j * HEIGHT, k * n_off
            for nid, lon, lat, tags in nodes:
                writer.add_node(Node(id=nid + off, location=(lon + dx, lat + dy), tags=tags))
            if k % 100 == 99:
                _log(f"generate: nodes of {k + 1:,} / {tiles * tiles:,} tiles")
        for k in range(tiles * tiles):
            off, woff = k * n_off, k * w_off
            for wid, refs, tags in ways:
                writer.add_way(Way(id=wid + woff, nodes=[r + off for r in refs], tags=tags))
        link_id = tiles * tiles * w_off
        road = {"highway": "residential", "name": "province link"}
        for k in range(tiles * tiles):
            i, j = divmod(k, tiles)
            for nb, a, b in (((i + 1) * tiles + j, "east", "west"), (k + 1, "north", "south")):
                if (a == "east" and i + 1 < tiles) or (a == "north" and j + 1 < tiles):
                    writer.add_way(Way(id=link_id + n_links, nodes=[link[a] + k * n_off, link[b] + nb * n_off],
                                       tags=road))
                    n_links += 1
        offsets = {"n": n_off, "w": w_off, "r": r_off}
        for k in range(tiles * tiles):
            for rid, members, tags in rels:
                writer.add_relation(Relation(id=rid + k * r_off, tags=tags,
                                             members=[(t_, ref + k * offsets[t_], role) for t_, ref, role in members]))
    finally:
        writer.close()
    copies = tiles * tiles
    return {"tiles": f"{tiles}x{tiles}", "file_mb": dst.stat().st_size / 1e6, "nodes": copies * len(nodes),
            "ways": copies * len(ways) + n_links, "relations": copies * len(rels), "links": n_links,
            "generate_s": time.perf_counter() - t}


def run_build(path: Path, profile: str, coverage: bool) -> dict[str, Any]:
    """street_graph_from_pbf with per-phase times and RSS, then (optionally) the coverage core on the graph."""
    marks: list[tuple[str, float, float, str]] = []

    def progress(msg: str) -> None:
        marks.append((msg.split(":")[0], time.perf_counter(), rss_mb(), msg))
        _log(f"{profile}: {msg}")

    t0 = time.perf_counter()
    graph = street_graph_from_pbf(path, profile=profile, progress=progress)
    total = time.perf_counter() - t0
    out: dict[str, Any] = {"profile": profile, "build_s": total, "nodes": graph.n_nodes, "edges": graph.n_edges,
                           "oneway_edges": int((graph.reverse_factor != 1).sum()), "rss_build_mb": rss_mb()}
    last = t0
    for phase, t, rss, msg in marks:
        if phase in PHASES:
            out[f"{phase}_s"], out[f"{phase}_rss_mb"], out[f"{phase}_msg"] = t - last, rss, msg
            last = t
    if coverage:
        rng = np.random.default_rng(SEED)
        lo, hi = (graph.x.min(), graph.y.min()), (graph.x.max(), graph.y.max())
        t = time.perf_counter()
        graph.tree()
        out["strtree_s"] = time.perf_counter() - t
        t = time.perf_counter()
        stations = snap_points(graph, rng.uniform(lo, hi, (N_STATIONS, 2)))
        out["snap_stations_s"] = time.perf_counter() - t
        t = time.perf_counter()
        demand = snap_points(graph, rng.uniform(lo, hi, (N_DEMAND, 2)))
        out["snap_demand_s"] = time.perf_counter() - t
        t = time.perf_counter()
        res = network_nearest(graph, stations, demand, radius_m=RADIUS_M)
        out["core_s"] = time.perf_counter() - t
        out["covered"] = float(res.covered.mean())
        out["too_far"] = float(demand.too_far.mean())
        out["rss_mb"] = rss_mb()
    return out


def run_osmnx(path: Path, profile: str) -> dict[str, Any]:
    """The osmnx route on ``path``: streets_from_extract + street_graph_from_networkx, timed."""
    from yizhan.geo.streets_osmnx import streets_from_extract

    t = time.perf_counter()
    G = streets_from_extract(path, profile=profile)
    t_osmnx = time.perf_counter() - t
    t = time.perf_counter()
    graph = street_graph_from_networkx(G)
    return {"profile": profile, "osmnx_s": t_osmnx, "networkx_compile_s": time.perf_counter() - t,
            "build_s": t_osmnx + time.perf_counter() - t, "nodes": graph.n_nodes, "edges": graph.n_edges,
            "rss_build_mb": rss_mb()}


def _subprocess(args: list[str]) -> dict[str, Any]:
    return json_from_child(__file__, args, show_stderr=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=40, help="tiles per side of the province (default 40)")
    parser.add_argument("--small", type=int, default=3, help="tiles per side of the osmnx comparison (default 3)")
    parser.add_argument("--no-bike", action="store_true", help="walk only")
    parser.add_argument("--keep", type=Path, help="write the generated files to DIR and keep them (reused)")
    parser.add_argument("--build", nargs=3, metavar=("PBF", "PROFILE", "COVERAGE"), help=argparse.SUPPRESS)
    parser.add_argument("--osmnx", nargs=2, metavar=("PBF", "PROFILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        print(json.dumps(run_build(Path(args.build[0]), args.build[1], args.build[2] == "1")))
        return
    if args.osmnx:
        print(json.dumps(run_osmnx(Path(args.osmnx[0]), args.osmnx[1])))
        return
    if not WUDAOKOU.is_file():
        sys.exit(f"the shared extract is missing: {WUDAOKOU}")
    print(machine_line(f"numpy {np.__version__}"), flush=True)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="yizhan-province-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        files = []
        for n in (args.tiles, args.small):
            path = folder / f"wudaokou-{n}x{n}.osm.pbf"
            meta_path = path.with_suffix(".json")
            if path.is_file() and meta_path.is_file():
                meta = json.loads(meta_path.read_text())
            else:
                _log(f"generating {n}x{n} tiles -> {path}")
                meta = make_province(WUDAOKOU, path, n)
                meta_path.write_text(json.dumps(meta))
            files.append((path, meta))
        (big, big_meta), (small, small_meta) = files
        single = {p: street_graph_from_pbf(WUDAOKOU, profile=p) for p in ("walk", "bike")}
        profiles = ["walk"] if args.no_bike else ["walk", "bike"]
        rows = []
        for p in profiles:
            _log(f"province {big_meta['tiles']}, {p}: street_graph_from_pbf + coverage core")
            rows.append({"case": f"{big_meta['tiles']} {p}", **_subprocess(["--build", str(big), p, "1"])})
        compare = []
        for p in profiles:
            _log(f"{small_meta['tiles']}, {p}: osmnx route and street_graph_from_pbf")
            compare.append({"case": f"{small_meta['tiles']} {p} osmnx", **_subprocess(["--osmnx", str(small), p])})
            compare.append({"case": f"{small_meta['tiles']} {p} pbf", **_subprocess(["--build", str(small), p, "0"])})
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    print(dict_table([big_meta, small_meta], [("replica", "tiles"), ("file MB", "file_mb"), ("OSM nodes", "nodes"),
                                               ("ways", "ways"), ("relations", "relations"), ("links", "links"),
                                               ("generate s", "generate_s")]))
    n2 = args.tiles ** 2
    for row in rows:
        g = single[row["profile"]]
        row["expected"] = f"{n2 * g.n_nodes:,} / {n2 * g.n_edges + 2 * args.tiles * (args.tiles - 1):,}"
    print()
    print("street_graph_from_pbf on the province (phase times in s, RSS in MB at the end of the phase)")
    print(dict_table(rows, [("case", "case"), ("nodes", "nodes"), ("edges", "edges"), ("expected n / e", "expected"),
                            ("one-way", "oneway_edges"), ("read", "read_s"), ("topology", "topology_s"),
                            ("component", "component_s"), ("geometry", "geometry_s"), ("compile", "compile_s"),
                            ("total", "build_s"), ("RSS read", "read_rss_mb"), ("RSS built", "rss_build_mb")]))
    for row in rows:
        print(f"  {row['case']}: {row['read_msg']}")
    print()
    print(f"coverage core on the province graph: {N_STATIONS:,} stations, {N_DEMAND:,} demand points, "
          f"radius {RADIUS_M:,.0f} m (times in s)")
    print(dict_table(rows, [("case", "case"), ("STRtree", "strtree_s"), ("snap stations", "snap_stations_s"),
                            ("snap demand", "snap_demand_s"), ("network_nearest", "core_s"), ("covered", "covered"),
                            ("too far", "too_far"), ("peak RSS MB", "rss_mb")]))
    print()
    print(f"osmnx route vs street_graph_from_pbf on the {small_meta['tiles']} replica (s, MB)")
    print(dict_table(compare, [("case", "case"), ("nodes", "nodes"), ("edges", "edges"), ("osmnx", "osmnx_s"),
                               ("nx → StreetGraph", "networkx_compile_s"), ("total", "build_s"),
                               ("peak RSS MB", "rss_build_mb")]))


if __name__ == "__main__":
    main()
