"""Tests of the street pieces behind service areas (yizhan.coverage.network.reached_pieces) on hand-made graphs."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from yizhan.coverage.network import node_distances, reached_pieces, service_areas, snap_points
from yizhan.geo.streets import StreetGraph, compile_street_graph


def _street(n_blocks: int = 6, block_m: float = 500.0) -> StreetGraph:
    """One straight two-way street along y = 0 from x = 0, nodes every ``block_m`` metres (UTM 50N)."""
    x = np.arange(n_blocks + 1) * block_m
    return compile_street_graph(x, np.zeros(len(x)), np.arange(n_blocks), np.arange(1, n_blocks + 1),
                                crs_epsg=32650)


def test_pieces_stop_at_the_radius_and_split_where_two_stations_are_equally_far():
    graph = _street()  # 0 … 3000 m
    stations = snap_points(graph, np.array([[1000.0, 10.0], [2600.0, -10.0]]))
    node_dist, node_station = node_distances(graph, stations, limit_m=1000)
    pieces, owner = reached_pieces(graph, stations, node_dist, node_station, radius_m=1000)
    assert len(pieces) == len(owner) and set(owner.tolist()) == {0, 1}
    # station 0 reaches 0 … 2000 m, station 1 reaches 1600 … 3000 m: they share the street at 1800 m
    for k, (lo, hi) in enumerate([(0.0, 1800.0), (1800.0, 3000.0)]):
        mine = shapely.union_all(pieces[owner == k])
        assert mine.length == pytest.approx(hi - lo, abs=1e-6)
        assert shapely.bounds(mine)[[0, 2]] == pytest.approx([lo, hi], abs=1e-6)


def test_service_areas_are_the_buffered_pieces_of_each_station():
    graph = _street()
    stations = snap_points(graph, np.array([[1000.0, 10.0], [2600.0, -10.0], [9000.0, 9000.0]]))
    node_dist, node_station = node_distances(graph, stations, limit_m=800)
    pieces, owner = reached_pieces(graph, stations, node_dist, node_station, radius_m=800)
    assert 2 not in owner.tolist()  # the third station is 9 km off the street: too far to serve
    per_station, merged = service_areas(graph, stations, node_dist, node_station, radius_m=800, buffer_m=25)
    for k in range(2):
        expected = shapely.union_all(shapely.buffer(pieces[owner == k], 25.0, quad_segs=4))
        assert per_station[k].symmetric_difference(expected).area < 1e-6
    assert per_station[2].is_empty
    # 200 … 1800 m and 1800 … 3000 m (station 1 reaches 1800 … 3400 m, cut at the street's end), 25 m each side
    assert merged.area == pytest.approx(2800 * 50 + np.pi * 25**2, rel=0.01)


def test_no_piece_when_no_station_reaches_a_street():
    graph = _street()
    stations = snap_points(graph, np.array([[9000.0, 9000.0]]))
    node_dist, node_station = node_distances(graph, stations, limit_m=1000)
    pieces, owner = reached_pieces(graph, stations, node_dist, node_station, radius_m=1000)
    assert len(pieces) == 0 and len(owner) == 0 and owner.dtype == np.int64
    per_station, merged = service_areas(graph, stations, node_dist, node_station, radius_m=1000)
    assert per_station[0].is_empty and merged.is_empty
