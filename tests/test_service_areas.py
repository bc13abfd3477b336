"""Tests of service areas: the street pieces behind them (yizhan.coverage.network.reached_pieces) on hand-made
graphs, and their merged area (yizhan.coverage.area_union) against one GEOS union on hand-made polygons, a
perturbed lattice and the real Wudaokou walk graph."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from yizhan.coverage.area_union import area_union
from yizhan.coverage.network import node_distances, reached_pieces, service_areas, snap_points
from yizhan.geo.streets import StreetGraph, compile_street_graph, street_graph_from_networkx


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


def _same_area(got: Any, want: Any, *, rel: float = 1e-9, hausdorff_m: float = 1e-6) -> None:
    """``got`` is a valid (multi)polygon covering the same ground as ``want``: symmetric difference area / area
    within ``rel``, Hausdorff distance between them within ``hausdorff_m`` metres."""
    assert shapely.is_valid(got), shapely.is_valid_reason(got)
    assert got.geom_type in ("Polygon", "MultiPolygon")
    assert shapely.symmetric_difference(got, want).area <= rel * max(want.area, 1.0)
    assert shapely.hausdorff_distance(got, want) <= hausdorff_m


def _framed(outer: float, inner: float, x: float = 0.0, y: float = 0.0) -> Polygon:
    """A square of side ``outer`` metres with a square hole of side ``inner``, both centred on (x, y)."""
    return box(x - outer / 2, y - outer / 2, x + outer / 2, y + outer / 2).difference(
        box(x - inner / 2, y - inner / 2, x + inner / 2, y + inner / 2))


def test_area_union_keeps_holes_no_one_reaches_and_cuts_or_fills_the_others():
    a = _framed(100, 60)  # hole 60 x 60 m around (0, 0)
    cases = {
        "apart": [a, _framed(100, 60, x=300)],
        "a hole partly covered by another area": [a, box(10, -5, 200, 5)],
        "a hole filled by an island that has a hole with an island in it":
            [a, _framed(40, 20), box(-4, -4, 4, 4)],
        "holes made by the union only (four frames round a square)":
            [box(-50, -50, 50, -30), box(-50, 30, 50, 50), box(-50, -50, -30, 50), box(30, -50, 50, 50)],
        "the same frame twice, and a multipolygon":
            [a, a, MultiPolygon([_framed(100, 60, y=90), box(500, 0, 510, 10)])],
        "with empties": [Polygon(), a, shapely.MultiPolygon()],
    }
    for name, polys in cases.items():
        arr = np.array(polys, dtype=object)
        got = area_union(arr)
        _same_area(got, shapely.union_all(arr))
        assert got.area > 0, name
    island = area_union(np.array(cases["a hole filled by an island that has a hole with an island in it"],
                                 dtype=object))
    assert island.geom_type == "MultiPolygon" and len(island.geoms) == 3
    assert island.contains(shapely.Point(0, 0)) and not island.contains(shapely.Point(7, 0))
    assert not island.contains(shapely.Point(25, 0)) and island.contains(shapely.Point(15, 0))
    four = area_union(np.array(cases["holes made by the union only (four frames round a square)"], dtype=object))
    assert four.geom_type == "Polygon" and len(four.interiors) == 1
    assert area_union(np.array([Polygon(), Polygon()], dtype=object)).is_empty
    assert area_union(np.empty(0, dtype=object)).is_empty


def _lattice(side: int, seed: int) -> StreetGraph:
    """A perturbed square lattice of ``side`` x ``side`` nodes: 100 m blocks, ±20 m jitter, 10 % of the edges
    removed, a quarter of them bent by a midpoint (metres, UTM 50N)."""
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    x = 400_000.0 + i.ravel() * 100.0 + rng.uniform(-20, 20, side * side)
    y = 4_400_000.0 + j.ravel() * 100.0 + rng.uniform(-20, 20, side * side)
    idx = i * side + j
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    keep = rng.random(len(u)) > 0.10
    u, v = u[keep], v[keep]
    bent = rng.random(len(u)) < 0.25
    mid = np.column_stack([(x[u] + x[v]) / 2, (y[u] + y[v]) / 2]) + rng.uniform(-15, 15, (len(u), 2))
    geoms = [shapely.LineString([(x[a], y[a]), tuple(m), (x[b], y[b])] if bend else [(x[a], y[a]), (x[b], y[b])])
             for a, b, m, bend in zip(u, v, mid, bent, strict=True)]
    return compile_street_graph(x, y, u, v, crs_epsg=32650, geometry=np.array(geoms, dtype=object))


@pytest.mark.parametrize("stations", [15, 60])
def test_merged_area_on_a_lattice_is_one_union_of_the_stations_areas(stations):
    graph = _lattice(60, seed=7)  # 3,600 nodes, about 6 x 6 km
    rng = np.random.default_rng(stations)
    snap = snap_points(graph, rng.uniform([400_000, 4_400_000], [405_900, 4_405_900], (stations, 2)))
    node_dist, node_station = node_distances(graph, snap, limit_m=800)
    per_station, merged = service_areas(graph, snap, node_dist, node_station, radius_m=800, buffer_m=25)
    want = shapely.union_all(per_station)
    _same_area(merged, want)
    # blocks enclosed by one station's streets and blocks between several stations both stay holes
    assert len(shapely.get_parts(merged)) >= 1 and sum(len(p.interiors) for p in shapely.get_parts(merged)) > 50


def test_merged_area_on_the_wudaokou_walk_graph(osm_path: Path):
    from yizhan.geo.streets_osmnx import streets_from_extract

    graph = street_graph_from_networkx(streets_from_extract(osm_path, profile="walk"))
    xy = np.column_stack([graph.x, graph.y])
    lo, hi = np.percentile(xy, 5, axis=0), np.percentile(xy, 95, axis=0)
    snap = snap_points(graph, np.random.default_rng(5).uniform(lo, hi, (12, 2)))
    node_dist, node_station = node_distances(graph, snap, limit_m=600, include_access=True)
    per_station, merged = service_areas(graph, snap, node_dist, node_station, radius_m=600, include_access=True)
    want = shapely.union_all(per_station)
    assert want.area > 0.5e6 and not math.isclose(want.area, sum(p.area for p in per_station))  # they overlap
    _same_area(merged, want)
