"""Tests of yizhan.coverage.network: street-network coverage on the Wudaokou graph and on hand-made graphs."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point

from yizhan.coverage.euclidean import nearest_from_arrays
from yizhan.coverage.network import Snapped, network_nearest, service_areas, snap_points
from yizhan.errors import InvalidInput
from yizhan.geo.streets import StreetGraph, street_graph_from_networkx

UTM50N = "EPSG:32650"
FAR = 1e9  # a search limit in metres that reaches every node


@pytest.fixture(scope="module")
def nx_graphs(osm_path: Path) -> dict[str, nx.MultiDiGraph]:
    from yizhan.geo.streets_osmnx import streets_from_extract

    path = osm_path
    return {profile: streets_from_extract(path, profile=profile) for profile in ("walk", "bike")}


@pytest.fixture(scope="module")
def compiled(nx_graphs) -> dict[str, StreetGraph]:
    return {profile: street_graph_from_networkx(G) for profile, G in nx_graphs.items()}


def _planar(G: nx.MultiDiGraph, a: int, b: int, d: dict) -> float:
    """Planar length in metres of an edge: its geometry, else the straight segment between the nodes."""
    if "geometry" in d:
        return d["geometry"].length
    return math.dist((G.nodes[a]["x"], G.nodes[a]["y"]), (G.nodes[b]["x"], G.nodes[b]["y"]))


def _sample(graph: StreetGraph, n: int, seed: int) -> np.ndarray:
    """Uniform points (x, y metres) in the 5–95 % box of the nodes (the extract's streets reach beyond it)."""
    xy = np.column_stack([graph.x, graph.y])
    lo, hi = np.percentile(xy, 5, axis=0), np.percentile(xy, 95, axis=0)
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, 2))


def _reference(G: nx.MultiDiGraph, graph: StreetGraph, points: dict[object, tuple[int, float]], factor: float,
               lengths: str) -> nx.MultiDiGraph:
    """networkx graph of G's edges (forwards at their length, backwards at ``factor`` × length unless G has the
    reverse edge) with the snapped points inserted into their edges as nodes; ``points``: name → (edge, offset).
    Lengths are G's ``length`` attribute (``lengths="graph"``) or planar geometry lengths.
    """
    def weight(a: int, b: int, d: dict) -> float:
        return d["length"] if lengths == "graph" else _planar(G, a, b, d)

    on_edge: dict[int, list[tuple[float, object]]] = defaultdict(list)
    for name, (edge, offset) in points.items():
        on_edge[int(edge)].append((float(offset), name))
    split: dict[frozenset, list[float]] = defaultdict(list)
    for e in on_edge:
        split[frozenset((graph.node_id[graph.u[e]], graph.node_id[graph.v[e]]))].append(float(graph.length[e]))
    R = nx.MultiDiGraph()
    R.add_nodes_from(G.nodes)
    for a, b, d in G.edges(data=True):
        length = weight(a, b, d)
        if any(abs(length - L) < 1e-6 for L in split.get(frozenset((a, b)), [])):
            continue  # replaced by the chain of inserted points below
        R.add_edge(a, b, length=length)
        R.add_edge(b, a, length=length * factor)
    for e, pts in on_edge.items():
        a, b, L = graph.node_id[graph.u[e]], graph.node_id[graph.v[e]], float(graph.length[e])
        twins = G.get_edge_data(b, a, default={}).values()
        two_way = factor == 1 or any(abs(weight(b, a, d) - L) < 1e-6 for d in twins)
        back = 1.0 if two_way else factor
        chain = [(0.0, a), *sorted(pts, key=lambda p: p[0]), (L, b)]
        for (t0, p), (t1, q) in itertools.pairwise(chain):
            R.add_edge(p, q, length=t1 - t0)
            R.add_edge(q, p, length=(t1 - t0) * back)
    return R


@pytest.mark.parametrize("lengths", ["planar", "graph"])
@pytest.mark.parametrize("profile", ["walk", "bike"])
def test_network_distances_equal_networkx(nx_graphs, profile, lengths):
    G = nx_graphs[profile]
    graph = street_graph_from_networkx(G, lengths=lengths)
    stations = snap_points(graph, _sample(graph, 6, seed=1))
    demand = snap_points(graph, _sample(graph, 50, seed=2))
    assert not stations.too_far.any() and not demand.too_far.any()
    res = network_nearest(graph, stations, demand, radius_m=1000, limit_m=FAR)
    points = {("s", i): (stations.edge[i], stations.offset_m[i]) for i in range(len(stations))}
    points |= {("d", i): (demand.edge[i], demand.offset_m[i]) for i in range(len(demand))}
    factor = 1.0 if profile == "walk" else 3.0
    towards = _reference(G, graph, points, factor, lengths).reverse(copy=False)  # distances TO the stations
    ref = nx.multi_source_dijkstra_path_length(towards, [("s", i) for i in range(len(stations))], weight="length")
    want = np.array([ref.get(("d", i), math.inf) for i in range(len(demand))])
    assert np.all(np.isfinite(want))
    np.testing.assert_allclose(res.distance_m, want, rtol=0, atol=1e-6)
    # node level: every street node's distance to its nearest station
    nodes = np.array([ref.get(n, math.inf) for n in graph.node_id.tolist()])
    np.testing.assert_allclose(res.node_dist, nodes, rtol=0, atol=1e-6)
    # the chosen station is one at that distance
    for j in np.unique(res.station):
        own = nx.single_source_dijkstra_path_length(towards, ("s", int(j)), weight="length")
        mine = np.flatnonzero(res.station == j)
        np.testing.assert_allclose(res.distance_m[mine], [own[("d", int(i))] for i in mine], rtol=0, atol=1e-6)
    assert np.all(res.station >= 0) and res.covered.tolist() == (res.distance_m <= 1000).tolist()


def test_straight_line_is_a_lower_bound(compiled):
    graph = compiled["walk"]
    stations = snap_points(graph, _sample(graph, 6, seed=1))
    demand = snap_points(graph, _sample(graph, 50, seed=2))
    d_xy = np.column_stack([demand.x, demand.y])
    for j in range(len(stations)):
        res = network_nearest(graph, stations.take([j]), demand, radius_m=1000, limit_m=FAR)
        straight = np.hypot(d_xy[:, 0] - stations.x[j], d_xy[:, 1] - stations.y[j])
        assert np.all(res.distance_m >= straight - 1e-6)
        assert np.all(res.station == 0)


@pytest.mark.parametrize("radius", [500.0, 1000.0])
def test_network_share_below_straight_line_share(compiled, radius):
    graph = compiled["walk"]
    s_xy, d_xy = _sample(graph, 6, seed=1), _sample(graph, 500, seed=3)
    stations, demand = snap_points(graph, s_xy), snap_points(graph, d_xy)
    between_snapped = network_nearest(graph, stations, demand, radius_m=radius)
    snapped_line = nearest_from_arrays(np.column_stack([demand.x, demand.y]),
                                       np.column_stack([stations.x, stations.y]), radius)
    assert between_snapped.covered.mean() <= snapped_line.covered.mean()
    assert np.all(between_snapped.distance_m >= snapped_line.distance_m - 1e-6)
    door_to_door = network_nearest(graph, stations, demand, radius_m=radius, include_access=True)
    raw_line = nearest_from_arrays(d_xy, s_xy, radius)
    assert door_to_door.covered.mean() <= raw_line.covered.mean()
    assert np.all(door_to_door.distance_m >= raw_line.distance_m - 1e-6)
    assert door_to_door.covered.sum() <= between_snapped.covered.sum()


def test_coverage_is_plausible_and_service_areas_hold_covered_points(compiled):
    graph = compiled["walk"]
    stations = snap_points(graph, _sample(graph, 6, seed=1))
    demand = snap_points(graph, _sample(graph, 500, seed=3))
    res = network_nearest(graph, stations, demand, radius_m=1000)
    assert 0.3 <= res.covered.mean() <= 1.0
    assert np.all(np.isinf(res.distance_m[res.station < 0]))
    finite = np.isfinite(res.access_m)
    np.testing.assert_allclose(res.access_m[finite],
                               demand.offstreet_m[finite] + stations.offstreet_m[res.station[finite]])
    per_station, merged = service_areas(graph, stations, res.node_dist, res.node_station, radius_m=1000)
    assert len(per_station) == len(stations) and merged.area > 0
    pts = shapely.points(np.column_stack([demand.x, demand.y]))
    assert shapely.contains(merged, pts[res.covered]).all()
    for i in np.flatnonzero(res.covered):
        assert per_station[res.station[i]].contains(pts[i])
    assert merged.area < shapely.union_all(shapely.buffer(shapely.points(np.column_stack([stations.x, stations.y])),
                                                          1000)).area


def _hand_graph(nodes: dict[int, tuple[float, float]], edges: list[tuple[int, int]], *, profile: str = "walk",
                geometry: dict[tuple[int, int], LineString] | None = None) -> nx.MultiDiGraph:
    G = nx.MultiDiGraph(crs=UTM50N, profile=profile)
    for n, (x, y) in nodes.items():
        G.add_node(n, x=x, y=y)
    for a, b in edges:
        line = (geometry or {}).get((a, b))
        length = line.length if line is not None else math.dist(nodes[a], nodes[b])
        attrs = {"length": length} | ({"geometry": line} if line is not None else {})
        G.add_edge(a, b, **attrs)
    return G


def _river(bridge: bool) -> nx.MultiDiGraph:
    """Two banks 300 m apart (south y=0, north y=300), x from -3000 to 5000 m, a bridge only at x=5000."""
    xs = np.arange(-3000, 5001, 500)
    nodes = {i: (float(x), 0.0) for i, x in enumerate(xs)} | {100 + i: (float(x), 300.0) for i, x in enumerate(xs)}
    edges = [(i, i + 1) for i in range(len(xs) - 1)] + [(100 + i, 101 + i) for i in range(len(xs) - 1)]
    edges.append((len(xs) - 1, 100 + len(xs) - 1))  # the far bridge
    if bridge:
        mid = int(np.flatnonzero(xs == 0)[0])
        edges.append((mid, 100 + mid))  # a bridge at x = 0
    return _hand_graph(nodes, edges)


def test_river_without_bridge_is_not_covered():
    station_xy, demand_xy = np.array([[100.0, 320.0]]), np.array([[100.0, -20.0]])
    assert nearest_from_arrays(demand_xy, station_xy, 1000).covered.all()  # 340 m straight across
    graph = street_graph_from_networkx(_river(bridge=False))
    stations, demand = snap_points(graph, station_xy), snap_points(graph, demand_xy)
    res = network_nearest(graph, stations, demand, radius_m=1000)
    assert not res.covered[0] and res.station[0] == -1 and math.isinf(res.distance_m[0])
    far = network_nearest(graph, stations, demand, radius_m=1000, limit_m=20_000)
    assert far.distance_m[0] == pytest.approx(4900 + 300 + 4900, abs=1e-6) and far.station[0] == 0
    per_station, merged = service_areas(graph, stations, res.node_dist, res.node_station, radius_m=1000)
    for p in (Point(100, -20), Point(100, 0)):
        assert not per_station[0].contains(p) and not merged.contains(p)
    assert per_station[0].contains(Point(900, 300)) and not per_station[0].contains(Point(1200, 300))
    alone, none = service_areas(graph, stations, res.node_dist, res.node_station, radius_m=1000, merge=False)
    assert none is None and alone[0].equals(per_station[0])

    bridged = street_graph_from_networkx(_river(bridge=True))
    stations, demand = snap_points(bridged, station_xy), snap_points(bridged, demand_xy)
    res = network_nearest(bridged, stations, demand, radius_m=1000)
    assert res.covered[0] and res.station[0] == 0
    assert res.distance_m[0] == pytest.approx(100 + 300 + 100, abs=1e-6)
    assert res.access_m[0] == pytest.approx(40.0)
    assert network_nearest(bridged, stations, demand, radius_m=1000, include_access=True).distance_m[0] == \
        pytest.approx(540.0)
    per_station, merged = service_areas(bridged, stations, res.node_dist, res.node_station, radius_m=1000)
    assert per_station[0].contains(Point(100, -20)) and merged.contains(Point(100, 0))


def test_snaps_to_the_middle_of_an_edge_and_flags_far_points():
    nodes = {1: (0.0, 0.0), 2: (500.0, 0.0), 3: (500.0, 500.0), 4: (0.0, 500.0)}
    # edge 4 → 1 has a bent geometry stored backwards (1 → 4): it must be turned round
    bent = LineString([(0, 0), (-100, 250), (0, 500)])
    graph = street_graph_from_networkx(_hand_graph(nodes, [(1, 2), (2, 3), (4, 1)], geometry={(4, 1): bent}))
    snap = snap_points(graph, np.array([[250.0, 30.0], [250.0, 1600.0], [-110.0, 250.0]]))
    e0 = snap.edge[0]
    assert {graph.node_id[graph.u[e0]], graph.node_id[graph.v[e0]]} == {1, 2}
    along = snap.offset_m[0] if graph.node_id[graph.u[e0]] == 1 else graph.length[e0] - snap.offset_m[0]
    assert along == pytest.approx(250.0, abs=1e-9)
    assert snap.offstreet_m[0] == pytest.approx(30.0) and (snap.x[0], snap.y[0]) == pytest.approx((250.0, 0.0))
    assert snap.too_far.tolist() == [False, True, False]
    assert snap.offstreet_m[1] > 1000
    e2 = snap.edge[2]
    assert graph.node_id[graph.u[e2]] == 4 and graph.length[e2] == pytest.approx(bent.length)
    assert snap.offset_m[2] == pytest.approx(bent.length / 2, abs=1e-6)  # measured from u = node 4
    assert (snap.x[2], snap.y[2]) == pytest.approx((-100.0, 250.0))
    # too-far points take no part: such a station serves nobody, such demand is not covered
    res = network_nearest(graph, snap.take([1]), snap.take([0]), radius_m=10_000)
    assert res.station.tolist() == [-1] and not res.covered.any()
    res = network_nearest(graph, snap.take([0]), snap.take([1, 2]), radius_m=10_000)
    assert res.station.tolist() == [-1, 0] and math.isinf(res.distance_m[0])


def test_one_way_streets_for_bikes():
    nodes = {1: (0.0, 0.0), 2: (1000.0, 0.0)}
    station_xy, demand_xy = np.array([[500.0, 10.0]]), np.array([[400.0, 10.0], [600.0, 10.0]])
    one_way = _hand_graph(nodes, [(1, 2)], profile="bike")
    expected = {3.0: [100.0, 300.0], 1.0: [100.0, 100.0], math.inf: [100.0, math.inf]}
    for factor, want in expected.items():
        graph = street_graph_from_networkx(one_way, contraflow_factor=factor)
        assert graph.directed and graph.reverse_factor.tolist() == [factor]
        res = network_nearest(graph, snap_points(graph, station_xy), snap_points(graph, demand_xy), radius_m=1000)
        assert res.distance_m.tolist() == pytest.approx(want)
    for G in (_hand_graph(nodes, [(1, 2), (2, 1)], profile="bike"), _hand_graph(nodes, [(1, 2)], profile="walk")):
        graph = street_graph_from_networkx(G)
        assert graph.n_edges == 1 and graph.reverse_factor.tolist() == [1.0]
        res = network_nearest(graph, snap_points(graph, station_xy), snap_points(graph, demand_xy), radius_m=1000)
        assert res.distance_m.tolist() == pytest.approx([100.0, 100.0])


def test_long_block_stations_on_the_demand_edge():
    graph = street_graph_from_networkx(_hand_graph({1: (0.0, 0.0), 2: (5000.0, 0.0)}, [(1, 2)]))
    stations = snap_points(graph, np.array([[1000.0, 5.0], [2500.0, -5.0]]))
    demand = snap_points(graph, np.array([[1200.0, 0.0], [2000.0, 0.0], [3200.0, 0.0], [4000.0, 0.0]]))
    u_first = graph.node_id[graph.u[0]] == 1
    assert stations.offset_m.tolist() == pytest.approx([1000.0, 2500.0] if u_first else [4000.0, 2500.0])
    res = network_nearest(graph, stations, demand, radius_m=1000)
    assert res.station.tolist() == [0, 1, 1, -1]
    assert res.distance_m.tolist() == pytest.approx([200.0, 500.0, 700.0, math.inf])
    assert res.covered.tolist() == [True, True, True, False]
    assert res.node_dist.tolist() == [1000.0, math.inf]  # node 2 is beyond the limit: 3200 m needs the direct path
    per_station, merged = service_areas(graph, stations, res.node_dist, res.node_station, radius_m=1000)
    assert merged.contains(Point(0, 0)) and merged.contains(Point(3450, 0)) and not merged.contains(Point(3600, 0))
    assert per_station[1].contains(Point(1600, 0)) and not per_station[1].contains(Point(1400, 0))


def test_compiled_wudaokou_graphs(nx_graphs, compiled):
    walk, bike = compiled["walk"], compiled["bike"]
    assert walk.crs_epsg == bike.crs_epsg == 32650
    assert not walk.directed and bike.directed
    assert walk.n_nodes == nx_graphs["walk"].number_of_nodes()
    assert walk.n_edges <= nx_graphs["walk"].number_of_edges() // 2 + 1  # each street once, not per direction
    assert np.all(walk.reverse_factor == 1.0)
    assert set(np.unique(bike.reverse_factor)) == {1.0, 3.0}  # two-way streets and one-ways
    assert np.all(walk.length > 0) and np.all(shapely.get_num_coordinates(walk.geometry) >= 2)
    starts = shapely.get_coordinates(shapely.get_point(walk.geometry, 0))
    np.testing.assert_allclose(starts, np.column_stack([walk.x[walk.u], walk.y[walk.u]]), atol=1e-6)


def test_save_load_round_trip(compiled, tmp_path):
    graph = compiled["bike"]
    loaded = StreetGraph.load(graph.save(tmp_path / "graphs" / "wudaokou-bike.npz"))
    for name in ("x", "y", "node_id", "u", "v", "length", "reverse_factor"):
        a, b = getattr(graph, name), getattr(loaded, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert shapely.equals_exact(graph.geometry, loaded.geometry, tolerance=0).all()
    assert (loaded.crs_epsg, loaded.directed, loaded.n_nodes) == (graph.crs_epsg, graph.directed, graph.n_nodes)
    assert (graph.adjacency_t != loaded.adjacency_t).nnz == 0
    stations, demand = snap_points(loaded, _sample(loaded, 6, seed=1)), snap_points(loaded, _sample(loaded, 50, 2))
    a = network_nearest(graph, stations, demand, radius_m=800)
    b = network_nearest(loaded, stations, demand, radius_m=800)
    assert np.array_equal(a.distance_m, b.distance_m) and np.array_equal(a.station, b.station)
    (tmp_path / "empty.npz").write_bytes(b"")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    for bad in ("missing.npz", "empty.npz", "other.npz"):
        with pytest.raises(InvalidInput):
            StreetGraph.load(tmp_path / bad)


def test_edge_cases():
    graph = street_graph_from_networkx(_river(bridge=True))
    demand = snap_points(graph, np.array([[0.0, 10.0], [50.0, 290.0]]))
    none = Snapped(*(np.empty(0, dtype=d) for d in (np.int64, float, float, float, float, bool)))
    res = network_nearest(graph, none, demand, radius_m=1000)
    assert res.station.tolist() == [-1, -1] and np.isinf(res.distance_m).all() and not res.covered.any()
    assert len(snap_points(graph, np.empty((0, 2)))) == 0
    with pytest.raises(InvalidInput):
        network_nearest(graph, demand, demand, radius_m=1000, limit_m=500)
    same = network_nearest(graph, demand, demand, radius_m=0)
    assert same.distance_m.tolist() == [0.0, 0.0] and same.station.tolist() == [0, 1] and same.covered.all()
    lat_lon = _hand_graph({1: (116.3, 40.0), 2: (116.31, 40.0)}, [(1, 2)])
    lat_lon.graph["crs"] = "EPSG:4326"
    with pytest.raises(InvalidInput):
        street_graph_from_networkx(lat_lon)
