"""Tests of yizhan.geo.streets_pbf: StreetGraphs straight from the Wudaokou extract, checked against osmnx."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import osmium
import pytest
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from yizhan.coverage.network import network_nearest, snap_points
from yizhan.errors import InvalidInput
from yizhan.geo.streets import StreetGraph, street_graph_from_networkx
from yizhan.geo.streets_pbf import street_graph_from_pbf

UTM50N = 32650
PROFILES = ("walk", "bike")
# `extracts` (conftest, session scope): the shared Wudaokou extract as (.osm, .osm.pbf) under
# Path(__file__).resolve().parents[2] / "shared" / "data" / "osm"; skipped when absent (a bare clone)


@pytest.fixture(scope="module")
def direct(extracts) -> dict[tuple[str, str], StreetGraph]:
    """Graphs built by street_graph_from_pbf, keyed by (file kind, profile)."""
    xml, pbf = extracts
    return {(kind, profile): street_graph_from_pbf(path, profile=profile)
            for kind, path in (("pbf", pbf), ("xml", xml)) for profile in PROFILES}


@pytest.fixture(scope="module")
def via_osmnx(extracts) -> dict[str, StreetGraph]:
    """The osmnx route (XML → osmnx → street_graph_from_networkx) in EPSG:32650."""
    from yizhan.geo.streets_osmnx import reproject_streets, streets_from_extract

    return {profile: street_graph_from_networkx(reproject_streets(streets_from_extract(extracts[0], profile=profile),
                                                                  UTM50N))
            for profile in PROFILES}


def _edges(g: StreetGraph) -> list[tuple]:
    """Edges as comparable keys: OSM end ids, reverse factor and vertices (mm), two-way ones in one orientation."""
    keys = []
    for e in range(g.n_edges):
        a, b = int(g.node_id[g.u[e]]), int(g.node_id[g.v[e]])
        coords = tuple(map(tuple, np.round(shapely.get_coordinates(g.geometry[e]) * 1000).astype(np.int64)))
        rf = float(g.reverse_factor[e])
        if rf == 1.0 and ((b, coords[::-1]) < (a, coords)):
            a, b, coords = b, a, coords[::-1]
        keys.append((a, b, rf, round(float(g.length[e]), 3), coords))
    return sorted(keys)


def _components(g: StreetGraph) -> int:
    adj = coo_matrix((np.ones(g.n_edges), (g.u, g.v)), shape=(g.n_nodes, g.n_nodes))
    return connected_components(adj, directed=True, connection="weak")[0]


@pytest.mark.parametrize("profile", PROFILES)
def test_pbf_and_xml_give_identical_graphs(direct, profile):
    a, b = direct["pbf", profile], direct["xml", profile]
    assert a.crs_epsg == b.crs_epsg == UTM50N
    for name in ("node_id", "x", "y", "u", "v", "length", "reverse_factor"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert all(shapely.equals_exact(a.geometry, b.geometry, tolerance=0.0))
    assert (a.adjacency_t != b.adjacency_t).nnz == 0


@pytest.mark.parametrize("profile", PROFILES)
def test_same_network_as_the_osmnx_route(direct, via_osmnx, profile):
    mine, ref = direct["pbf", profile], via_osmnx[profile]
    assert abs(mine.n_nodes - ref.n_nodes) <= 0.1 * ref.n_nodes
    assert abs(mine.n_edges - ref.n_edges) <= 0.1 * ref.n_edges
    # in fact the same graph: osmnx's simplification rules are reproduced exactly on this extract
    assert set(mine.node_id.tolist()) == set(ref.node_id.tolist())
    assert _edges(mine) == _edges(ref)
    assert mine.length.sum() == pytest.approx(ref.length.sum(), rel=1e-9)


@pytest.mark.parametrize("profile", PROFILES)
def test_network_coverage_agrees_with_the_osmnx_route(direct, via_osmnx, profile):
    mine, ref = direct["pbf", profile], via_osmnx[profile]
    rng = np.random.default_rng(7)
    xy = np.column_stack([ref.x, ref.y])
    lo, hi = np.percentile(xy, 5, axis=0), np.percentile(xy, 95, axis=0)
    stations = lo + (hi - lo) * np.array([[0.1, 0.2], [0.5, 0.1], [0.9, 0.3], [0.2, 0.8], [0.6, 0.6], [0.85, 0.9]])
    demand = rng.uniform(lo, hi, (200, 2))
    results = [network_nearest(g, snap_points(g, stations), snap_points(g, demand), radius_m=1000.0)
               for g in (mine, ref)]
    covered = [r.covered.mean() for r in results]
    assert 0.2 < covered[1] < 1.0  # a meaningful case: some demand covered, some not
    assert abs(covered[0] - covered[1]) <= 0.02
    both = results[0].covered & results[1].covered
    assert both.sum() > 50
    diff = np.abs(results[0].distance_m[both] - results[1].distance_m[both])
    assert np.median(diff) < 5.0
    assert diff.max() < 1e-6  # the same graph gives the same distances


def test_walk_ignores_oneway_and_bike_honours_it(extracts, direct):
    walk, bike = direct["pbf", "walk"], direct["pbf", "bike"]
    assert not walk.directed and np.all(walk.reverse_factor == 1.0)
    assert bike.directed
    oneway = bike.reverse_factor != 1.0
    assert 0 < oneway.sum() < bike.n_edges
    assert np.all(bike.reverse_factor[oneway] == 3.0)  # the default contraflow factor
    strict = street_graph_from_pbf(extracts[1], profile="bike", contraflow_factor=np.inf)
    assert np.isinf(strict.reverse_factor).sum() == oneway.sum()


@pytest.mark.parametrize("profile", PROFILES)
def test_one_connected_metric_component(direct, profile):
    g = direct["pbf", profile]
    assert _components(g) == 1
    assert g.x.min() > 100_000 and g.y.min() > 4_000_000  # UTM metres, not degrees
    assert g.length.min() >= 0 and g.length.max() < 5000
    np.testing.assert_allclose(g.length, shapely.length(g.geometry))
    assert g.node_id.min() > 0 and len(np.unique(g.node_id)) == g.n_nodes
    starts = shapely.get_coordinates(shapely.get_point(g.geometry, 0))
    np.testing.assert_allclose(starts, np.column_stack([g.x[g.u], g.y[g.u]]))


def test_crs_and_progress(extracts):
    messages: list[str] = []
    g = street_graph_from_pbf(extracts[1], crs_epsg=32649, progress=messages.append)
    assert g.crs_epsg == 32649
    assert [m.split(":")[0] for m in messages] == ["read", "topology", "component", "geometry", "compile"]
    assert "631 walk streets" in messages[0]


def test_bad_input(tmp_path, extracts):
    with pytest.raises(InvalidInput, match="not found"):
        street_graph_from_pbf(tmp_path / "missing.osm.pbf")
    with pytest.raises(InvalidInput, match="profile"):
        street_graph_from_pbf(extracts[1], profile="car")
    with pytest.raises(InvalidInput, match="projected"):
        street_graph_from_pbf(extracts[1], crs_epsg=4326)
    junk = tmp_path / "junk.osm.pbf"
    junk.write_bytes(b"not an extract")
    with pytest.raises(InvalidInput):
        street_graph_from_pbf(junk)


def _write(path: Path, nodes: dict[int, tuple[float, float]], ways: list[tuple[int, list[int], dict]]) -> Path:
    writer = osmium.SimpleWriter(str(path), overwrite=True)
    try:
        for nid, (dx, dy) in sorted(nodes.items()):
            writer.add_node(osmium.osm.mutable.Node(id=nid, location=(116.31 + dx * 1e-3, 40.0 + dy * 1e-3)))
        for wid, refs, tags in ways:
            writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=refs, tags=tags))
    finally:
        writer.close()
    return path


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_cases_match_osmnx(tmp_path, profile):
    """Ways continuing each other, one-way (forwards, -1, roundabout), a missing node, a ring, a detached piece."""
    from yizhan.geo.streets_osmnx import reproject_streets, streets_from_extract

    grid = {10 * i + j + 1: (2.0 * i, 2.0 * j) for i in range(3) for j in range(3)}  # 1..23, ~170 m blocks
    extra = {101: (1.0, 0.3), 102: (1.3, 0.0), 103: (5.0, 1.0), 104: (5.5, 1.5), 105: (5.0, 2.0),
             106: (4.5, 1.5), 201: (9.0, 9.0), 202: (9.5, 9.0), 203: (9.5, 9.5), 301: (-3, -3), 302: (-3, -2)}
    road = {"highway": "residential"}
    ways = [
        (1, [1, 101, 11], road), (2, [11, 102, 21], road),  # ways 1 and 6 meet at node 1 and continue each other
        (3, [2, 12], road), (4, [12, 22], {"highway": "residential", "name": "b"}),  # continue each other at 12
        (5, [3, 13, 23], {"highway": "residential", "oneway": "yes"}),
        (6, [1, 2, 3], road), (7, [23, 22], {"highway": "residential", "oneway": "-1"}),
        (8, [11, 999, 13], road),  # 999 has no location: the way runs straight from 11 to 13
        (9, [21, 103], road), (10, [103, 104, 105, 106, 103], {"highway": "tertiary", "junction": "roundabout"}),
        (11, [201, 202, 203, 201], {"highway": "footway"}),  # an isolated ring: dropped
        (12, [301, 302], road), (13, [105, 22, 22], road),  # a detached street: dropped; a repeated node
        (14, [2, 2], road), (15, [3], road),  # one distinct node, a single node: no street
    ]
    path = _write(tmp_path / "edge.osm", {**grid, **extra}, ways)
    mine = street_graph_from_pbf(path, profile=profile, crs_epsg=UTM50N)
    ref = street_graph_from_networkx(reproject_streets(streets_from_extract(path, profile=profile), UTM50N))
    assert _edges(mine) == _edges(ref)
    assert not set(mine.node_id.tolist()) & {1, 12}  # ways 6 and 1, and 3 and 4, form one edge each
    assert not set(mine.node_id.tolist()) & {201, 301, 999}
    assert _components(mine) == 1
    # one-way for bike: 3 → 13 → 23 (way 5), 22 → 23 (way 7 reversed), the roundabout's two halves
    assert (mine.reverse_factor != 1).sum() == (5 if profile == "bike" else 0)
