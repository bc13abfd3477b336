"""Tests of yizhan.geo.street_parts: partition street graphs from one pass, exact against the whole graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import osmium
import pyproj
import pytest

from yizhan.coverage.network import network_nearest, snap_points
from yizhan.errors import InvalidInput
from yizhan.geo.street_parts import (
    MANIFEST,
    grid_tiles,
    load_street_part,
    partition_street_graphs,
    read_street_parts,
)
from yizhan.geo.streets import StreetGraph
from yizhan.geo.streets_pbf import street_graph_from_pbf

UTM50N = 32650
PROFILES = ("walk", "bike")
# the demo extract (a copy of the shared Wudaokou extract with its bounding box in the header)
DEMO_PBF = Path(__file__).resolve().parents[1] / "data" / "osm" / "beijing_haidian_wudaokou.osm.pbf"
SEED = 20261202


def _street_bounds(pbf: Path) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) in metres of UTM 50N of every node of the extract, 1 m wider on each side."""
    lonlat = np.array([(n.location.lon, n.location.lat) for n in osmium.FileProcessor(str(pbf), osmium.osm.NODE)])
    x, y = pyproj.Transformer.from_crs(4326, UTM50N, always_xy=True).transform(lonlat[:, 0], lonlat[:, 1])
    return float(np.min(x)) - 1, float(np.min(y)) - 1, float(np.max(x)) + 1, float(np.max(y)) + 1


@pytest.fixture(scope="module")
def whole() -> dict[str, StreetGraph]:
    """The whole graphs of the demo extract, per profile, in UTM 50N."""
    return {profile: street_graph_from_pbf(DEMO_PBF, profile=profile, crs_epsg=UTM50N) for profile in PROFILES}


def _graph_bounds(g: StreetGraph) -> tuple[float, float, float, float]:
    return float(g.x.min()) - 1, float(g.y.min()) - 1, float(g.x.max()) + 1, float(g.y.max()) + 1


def _inside(xy: np.ndarray, rect: np.ndarray, margin: float = 0.0) -> np.ndarray:
    x0, y0, x1, y1 = rect
    return ((xy[:, 0] >= x0 - margin) & (xy[:, 0] <= x1 + margin) & (xy[:, 1] >= y0 - margin)
            & (xy[:, 1] <= y1 + margin))


def _distance_to(xy: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """Straight-line metres from each point to the rectangle (0 inside)."""
    x0, y0, x1, y1 = rect
    dx = np.maximum(np.maximum(x0 - xy[:, 0], xy[:, 0] - x1), 0)
    dy = np.maximum(np.maximum(y0 - xy[:, 1], xy[:, 1] - y1), 0)
    return np.hypot(dx, dy)


def _owner(xy: np.ndarray, rects: np.ndarray) -> np.ndarray:
    owner = np.full(len(xy), -1)
    for i, rect in enumerate(rects):
        owner[(owner < 0) & _inside(xy, rect)] = i
    return owner


@pytest.mark.parametrize("profile", PROFILES)
def test_one_part_is_the_whole_graph(tmp_path, whole, profile):
    g = whole[profile]
    bounds = _street_bounds(DEMO_PBF)
    manifest = partition_street_graphs(DEMO_PBF, [bounds], halo_m=500, profile=profile, out_dir=tmp_path)
    part = load_street_part(manifest, 0)
    assert part.crs_epsg == UTM50N  # from the header's box, as street_graph_from_pbf chooses it
    assert part.directed == (profile == "bike")
    assert sorted(part.node_id.tolist()) == sorted(g.node_id.tolist())
    assert (part.n_nodes, part.n_edges) == (g.n_nodes, g.n_edges)
    assert part.length.sum() == pytest.approx(g.length.sum(), abs=1e-6)
    assert sorted(part.reverse_factor.tolist()) == sorted(g.reverse_factor.tolist())


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("nx", "ny", "halo"), [(2, 1, 1000.0), (2, 2, 1000.0), (2, 2, 400.0), (3, 3, 300.0)])
def test_partition_distances_equal_the_whole_graph(tmp_path, whole, profile, nx, ny, halo):
    """Nearest stations along the streets within the halo: the same on each part as on the whole graph."""
    g = whole[profile]
    rects = grid_tiles(_graph_bounds(g), nx, ny)  # over the whole graph; the extract's far nodes are no streets
    messages: list[str] = []
    manifest = partition_street_graphs(DEMO_PBF, rects, halo_m=halo, profile=profile, out_dir=tmp_path,
                                       crs_epsg=UTM50N, progress=messages.append)
    assert manifest == tmp_path / profile / MANIFEST
    assert {m.split(":")[0] for m in messages} >= {"read", "spilled", "components", f"part {nx * ny}/{nx * ny}"}
    meta = read_street_parts(manifest.parent)
    assert (meta["crs_epsg"], meta["halo_m"], len(meta["parts"])) == (UTM50N, halo, nx * ny)
    assert meta["component_graph_nodes"] == g.n_nodes
    parts = [load_street_part(manifest, i) if p["file"] else None for i, p in enumerate(meta["parts"])]
    rng = np.random.default_rng(SEED)
    lo, hi = (g.x.min(), g.y.min()), (g.x.max(), g.y.max())
    whole_ids = set(g.node_id.tolist())
    n_cut = 0
    for i, (part, rect) in enumerate(zip(parts, rects, strict=True)):
        if part is None:  # no street of the kept network within the halo
            assert not _inside(np.column_stack([g.x, g.y]), rect, halo).any()
            continue
        assert (part.n_nodes, part.n_edges) == (meta["parts"][i]["nodes"], meta["parts"][i]["edges"])
        # every node within the halo is the whole graph's, graph node for graph node; cut ends lie outside it
        near_w = set(g.node_id[_inside(np.column_stack([g.x, g.y]), rect, halo)].tolist())
        inside = _inside(np.column_stack([part.x, part.y]), rect, halo)
        assert set(part.node_id[inside].tolist()) == near_w
        cut = set(part.node_id[~inside].tolist()) - whole_ids
        n_cut += len(cut)
    assert n_cut > 0  # ways are cut at the halo's edge, and the cut nodes are ends of the part graphs

    # 1. points and stations on the streets, radius = halo
    on_demand = snap_points(g, rng.uniform(lo, hi, (4000, 2)))
    demand_xy = np.column_stack([on_demand.x, on_demand.y])
    on_st = snap_points(g, rng.uniform(lo, hi, (40, 2)))
    station_xy = np.column_stack([on_st.x, on_st.y])
    # 2. points and stations off the streets: max snap s, radius = halo - 3 s
    raw_demand, raw_st = rng.uniform(lo, hi, (4000, 2)), rng.uniform(lo, hi, (40, 2))
    s = 50.0
    cases = [(demand_xy, station_xy, halo, 300.0, halo), (raw_demand, raw_st, halo - 3 * s, s, halo - s)]
    for dem, st, radius, max_snap, station_reach in cases:
        ref = network_nearest(g, snap_points(g, st, max_snap_m=max_snap), snap_points(g, dem, max_snap_m=max_snap),
                              radius_m=radius)
        owner = _owner(dem, rects)
        assert (owner >= 0).all()
        n_covered = 0
        for i, (part, rect) in enumerate(zip(parts, rects, strict=True)):
            mine = np.flatnonzero(owner == i)
            if part is None:
                assert not np.isfinite(ref.distance_m[mine]).any()
                continue
            near = np.flatnonzero(_distance_to(st, rect) <= station_reach)
            res = network_nearest(part, snap_points(part, st[near], max_snap_m=max_snap),
                                  snap_points(part, dem[mine], max_snap_m=max_snap), radius_m=radius)
            np.testing.assert_array_equal(res.covered, ref.covered[mine])
            finite = np.isfinite(ref.distance_m[mine])
            np.testing.assert_array_equal(np.isfinite(res.distance_m), finite)
            np.testing.assert_allclose(res.distance_m[finite], ref.distance_m[mine][finite], rtol=0, atol=1e-6)
            n_covered += int(res.covered.sum())
        assert 0 < n_covered < len(dem)  # the comparison has covered and uncovered points to tell apart


def _write(path: Path, nodes: dict[int, tuple[float, float]], ways: list[tuple[int, list[int]]]) -> Path:
    """A small extract: node offsets in units of 1e-3 degree from (116.31, 40.0); every way a residential street."""
    writer = osmium.SimpleWriter(str(path), overwrite=True)
    try:
        for nid, (dx, dy) in sorted(nodes.items()):
            writer.add_node(osmium.osm.mutable.Node(id=nid, location=(116.31 + dx * 1e-3, 40.0 + dy * 1e-3)))
        for wid, refs in ways:
            writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=refs, tags={"highway": "residential"}))
    finally:
        writer.close()
    return path


def test_the_whole_graphs_largest_component_is_kept(tmp_path):
    """A street joined only through the other part is kept; a piece larger here but smaller overall is not.

    A U: a bottom and a top street (west to east, 1 to 21, about 1.7 km) joined by an east street with four side
    stubs; in the west part the bottom and the top are apart. A plus (5 graph nodes) lies in the west part only,
    more than the U has there (4), fewer than its 2 + 4 x 2 = 10 overall. A loop hangs off the bottom street by a
    way from its one vertex beyond the west part's halo: all the loop is in the west part, where it would have no
    graph node if that vertex, where the west part cuts the hanging way, were not made one.
    """
    nodes: dict[int, tuple[float, float]] = {}
    bottom = list(range(1, 22))
    top = list(range(101, 122))
    for k in range(21):
        nodes[1 + k], nodes[101 + k] = (float(k), 0.0), (float(k), 10.0)
    east = [21] + [201 + j for j in range(9)] + [121]
    for j in range(9):
        nodes[201 + j] = (20.0, 1.0 + j)
    ways = [(1, bottom), (2, top), (3, east)]
    for j in range(0, 9, 2):  # four stubs eastwards from the east street
        nodes[301 + j] = (21.0, 1.0 + j)
        ways.append((10 + j, [201 + j, 301 + j]))
    plus = {401: (2.0, 5.0), 402: (3.0, 5.0), 403: (4.0, 5.0), 404: (3.0, 4.0), 405: (3.0, 6.0)}
    nodes.update(plus)
    ways += [(50, [401, 402, 403]), (51, [404, 402, 405])]
    nodes.update({501: (10.0, 3.0), 502: (13.5, 4.0), 503: (10.0, 5.0)})  # a loop; 502 beyond the halo
    ways += [(60, [501, 502, 503, 501]), (61, [502, 16])]
    pbf = _write(tmp_path / "u.osm.pbf", nodes, ways)
    g = street_graph_from_pbf(pbf, crs_epsg=UTM50N)
    assert not set(plus) & set(g.node_id.tolist())
    bounds = _street_bounds(pbf)
    rects = grid_tiles(bounds, 2, 1)
    manifest = partition_street_graphs(pbf, rects, halo_m=200, profile="walk", out_dir=tmp_path / "out",
                                       crs_epsg=UTM50N)
    west = load_street_part(manifest, 0)
    ids = set(west.node_id.tolist())
    assert {1, 101} <= ids  # both arms of the U, joined only in the east part
    assert not set(plus) & ids
    assert read_street_parts(manifest)["component_graph_nodes"] == g.n_nodes
    east_part = load_street_part(manifest, 1)
    assert set(g.node_id.tolist()) - {1, 101} <= set(east_part.node_id.tolist())
    for part in (g, west):  # the loop: one edge from 502 round to itself, of the same length
        at = int(np.flatnonzero(part.node_id == 502)[0])
        loop = np.flatnonzero((part.u == at) & (part.v == at))
        assert len(loop) == 1
        assert part.length[loop[0]] == pytest.approx(g.length[(g.u == g.v)][0], abs=1e-6)


def test_bad_input(tmp_path):
    rect = [440_000.0, 4_426_000.0, 441_000.0, 4_427_000.0]
    with pytest.raises(InvalidInput, match="not found"):
        partition_street_graphs(tmp_path / "none.osm.pbf", [rect], halo_m=100, profile="walk", out_dir=tmp_path)
    with pytest.raises(InvalidInput, match="profile 'car'"):
        partition_street_graphs(DEMO_PBF, [rect], halo_m=100, profile="car", out_dir=tmp_path)
    with pytest.raises(InvalidInput, match="halo_m: -5"):
        partition_street_graphs(DEMO_PBF, [rect], halo_m=-5, profile="walk", out_dir=tmp_path)
    with pytest.raises(InvalidInput, match=r"tile 0: .*expected finite xmin < xmax"):
        partition_street_graphs(DEMO_PBF, [[1.0, 0.0, 0.0, 1.0]], halo_m=100, profile="walk", out_dir=tmp_path)
    with pytest.raises(InvalidInput, match="tiles 0 and 1 overlap"):
        partition_street_graphs(DEMO_PBF, [rect, [440_500.0, 4_426_500.0, 441_500.0, 4_427_500.0]], halo_m=100,
                                profile="walk", out_dir=tmp_path)
    with pytest.raises(InvalidInput, match="projected"):
        partition_street_graphs(DEMO_PBF, [rect], halo_m=100, profile="walk", out_dir=tmp_path, crs_epsg=4326)
    with pytest.raises(InvalidInput, match="no walk street comes within"):
        partition_street_graphs(DEMO_PBF, [[0.0, 0.0, 10.0, 10.0]], halo_m=100, profile="walk", out_dir=tmp_path)
    assert not list(tmp_path.rglob(".spill-*"))  # the spill is removed on failure too


def test_an_extract_without_a_bounding_box_needs_a_crs(tmp_path, extracts):
    """The shared extract's PBF has no bounding box in its header (the demo's has): without ``crs_epsg`` the tiles'
    CRS cannot be chosen (skipped on a bare clone, which lacks the shared extract)."""
    rect = [440_000.0, 4_426_000.0, 441_000.0, 4_427_000.0]
    with pytest.raises(InvalidInput, match="no bounding box in its header; pass crs_epsg"):
        partition_street_graphs(extracts[1], [rect], halo_m=100, profile="walk", out_dir=tmp_path)
    assert not list(tmp_path.rglob(".spill-*"))  # the spill is removed on failure too


def test_manifest_and_loader(tmp_path, whole):
    rects = grid_tiles(_graph_bounds(whole["walk"]), 2, 1)
    manifest = partition_street_graphs(DEMO_PBF, rects, halo_m=300, profile="walk", out_dir=tmp_path,
                                       crs_epsg=UTM50N)
    data = json.loads(manifest.read_text(encoding="utf-8"))
    assert data["format"] == "yizhan.StreetParts/1"
    assert [p["rect"] for p in data["parts"]] == rects.tolist()
    assert all(p["halo_m"] == 300 and p["file"] == f"part-{p['index']}.npz" for p in data["parts"])
    assert sorted(f.name for f in manifest.parent.iterdir()) == ["manifest.json", "part-0.npz", "part-1.npz"]
    with pytest.raises(InvalidInput, match=r"street part 2: not in .*expected 0 to 1"):
        load_street_part(manifest, 2)
    with pytest.raises(InvalidInput, match="file not found"):
        read_street_parts(tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"not a yizhan\.StreetParts/1 manifest"):
        read_street_parts(tmp_path / "bad.json")
    # a tile with no street near it has no file, and says so when loaded
    empty = [[0.0, 0.0, 10.0, 10.0], *_street_bounds_list()]
    manifest = partition_street_graphs(DEMO_PBF, empty, halo_m=100, profile="walk", out_dir=tmp_path / "e",
                                       crs_epsg=UTM50N)
    assert read_street_parts(manifest)["parts"][0]["file"] is None
    with pytest.raises(InvalidInput, match="street part 0: no street of the walk network comes within 100 m"):
        load_street_part(manifest, 0)
    assert load_street_part(manifest, 1).n_nodes == whole["walk"].n_nodes


def _street_bounds_list() -> list[list[float]]:
    return [list(_street_bounds(DEMO_PBF))]
