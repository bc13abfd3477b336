"""Tests of the merged service area drawn on a grid (yizhan.coverage.area_raster, network.covered_area) against
the exact GEOS union of the buffered street pieces, on a perturbed lattice and on the real Wudaokou walk graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.ops import substring
from test_service_areas import _lattice

from yizhan.coverage.area_raster import buffered_lines_area
from yizhan.coverage.network import (
    COARSE_PIXEL_M,
    EXACT_BELOW_PIECES,
    FINE_GRID_BELOW_PIECES,
    FINE_PIXEL_M,
    _substrings,
    area_pixel_m,
    covered_area,
    node_distances,
    reached_pieces,
    snap_points,
)
from yizhan.errors import InvalidInput
from yizhan.geo.streets import street_graph_from_networkx


def _close(got: Any, want: Any, *, rel: float, widest_m: float) -> None:
    """Valid, the symmetric difference within ``rel`` of the area, and no part of it wider than ``widest_m``."""
    assert shapely.is_valid(got) and got.geom_type in ("Polygon", "MultiPolygon")
    diff = shapely.symmetric_difference(got, want)
    assert diff.area <= rel * want.area
    parts = shapely.get_parts(diff)
    assert max((2 * shapely.maximum_inscribed_circle(p).length for p in parts), default=0.0) <= widest_m


@pytest.mark.parametrize("tile_px", [2048, 150])
def test_grid_area_on_a_lattice_is_the_exact_union_to_a_pixel(tile_px):
    graph = _lattice(40, seed=7)  # 1,600 nodes, about 4 x 4 km
    snap = snap_points(graph, np.random.default_rng(3).uniform([400_000, 4_400_000], [403_900, 4_403_900], (20, 2)))
    node_dist, node_station = node_distances(graph, snap, limit_m=800)
    pieces, _ = reached_pieces(graph, snap, node_dist, node_station, radius_m=800)
    want = shapely.union_all(shapely.buffer(pieces, 25.0, quad_segs=4))
    got = buffered_lines_area(pieces, 25.0, pixel_m=5.0, tile_px=tile_px)
    _close(got, want, rel=5e-3, widest_m=5.0)
    holes = sum(len(p.interiors) for p in shapely.get_parts(got))
    assert abs(holes - sum(len(p.interiors) for p in shapely.get_parts(want))) <= 0.02 * holes
    merged, pixel = covered_area(graph, snap, node_dist, node_station, radius_m=800, pixel_m=5.0, exact_below=0)
    assert pixel == 5.0
    # another tiling leaves out other straight runs of points: the same ground to the millimetre they are rounded to
    assert shapely.is_valid(merged) and shapely.hausdorff_distance(merged, got) <= 2e-3
    assert shapely.symmetric_difference(merged, got).area <= 1e-5 * got.area
    # below the threshold of pieces the union is the exact one
    exact, pixel = covered_area(graph, snap, node_dist, node_station, radius_m=800, exact_below=len(pieces) + 1)
    assert pixel is None
    assert shapely.symmetric_difference(exact, want).area <= 1e-9 * want.area
    # a street left out shows: its band is missing, as from the exact union (a piece may come twice, once per
    # station reaching it, so every copy is left out)
    longest = pieces[int(np.argmax(shapely.length(pieces)))]
    rest = pieces[~shapely.equals(pieces, longest)]
    gap = shapely.difference(want, shapely.union_all(shapely.buffer(rest, 25.0, quad_segs=4))).area
    assert gap > 10 * shapely.length(longest)
    without = buffered_lines_area(rest, 25.0, pixel_m=5.0, tile_px=tile_px)
    assert shapely.difference(want, without).area == pytest.approx(gap, rel=0.1)


def test_grid_area_on_the_wudaokou_walk_graph(osm_path: Path):
    from yizhan.geo.streets_osmnx import streets_from_extract

    graph = street_graph_from_networkx(streets_from_extract(osm_path, profile="walk"))
    xy = np.column_stack([graph.x, graph.y])
    lo, hi = np.percentile(xy, 5, axis=0), np.percentile(xy, 95, axis=0)
    snap = snap_points(graph, np.random.default_rng(5).uniform(lo, hi, (12, 2)))
    node_dist, node_station = node_distances(graph, snap, limit_m=600, include_access=True)
    pieces, _ = reached_pieces(graph, snap, node_dist, node_station, radius_m=600, include_access=True)
    want = shapely.union_all(shapely.buffer(pieces, 25.0, quad_segs=4))
    got = covered_area(graph, snap, node_dist, node_station, radius_m=600, include_access=True, pixel_m=5.0,
                       exact_below=0).area
    _close(got, want, rel=1e-2, widest_m=5.0)


def test_nothing_reached_and_bad_sizes():
    assert buffered_lines_area(np.empty(0, dtype=object), 25.0).is_empty
    line = np.array([shapely.LineString([(0, 0), (100, 0)])], dtype=object)
    area = buffered_lines_area(line, 25.0, pixel_m=2.0)
    assert area.area == pytest.approx(100 * 50 + np.pi * 25**2, rel=2e-3)
    with pytest.raises(InvalidInput, match="expected positive"):
        buffered_lines_area(line, 0.0)


def test_threads_do_not_change_the_ground():
    graph = _lattice(30, seed=11)
    snap = snap_points(graph, np.random.default_rng(8).uniform([400_000, 4_400_000], [402_900, 4_402_900], (12, 2)))
    node_dist, node_station = node_distances(graph, snap, limit_m=700)
    pieces, _ = reached_pieces(graph, snap, node_dist, node_station, radius_m=700)
    one = buffered_lines_area(pieces, 25.0, pixel_m=5.0, tile_px=100, threads=1)
    two = buffered_lines_area(pieces, 25.0, pixel_m=5.0, tile_px=100, threads=2)
    assert shapely.is_valid(one) and shapely.equals_exact(one, two, tolerance=0.0)
    with pytest.raises(InvalidInput, match="expected 2 or more"):
        buffered_lines_area(pieces, 25.0, tile_px=1)


def test_how_the_covered_area_is_drawn_follows_the_number_of_pieces():
    assert area_pixel_m(EXACT_BELOW_PIECES - 1) is None
    assert area_pixel_m(EXACT_BELOW_PIECES) == FINE_PIXEL_M == 5.0
    assert area_pixel_m(FINE_GRID_BELOW_PIECES - 1) == FINE_PIXEL_M
    assert area_pixel_m(FINE_GRID_BELOW_PIECES) == COARSE_PIXEL_M == 10.0
    assert area_pixel_m(10, exact_below=5) == FINE_PIXEL_M


def test_pieces_cut_from_the_streets_are_shapely_substrings():
    rng = np.random.default_rng(1)
    lines = np.array([shapely.LineString(rng.uniform(0, 100, (rng.integers(2, 6), 2))) for _ in range(500)]
                     + [shapely.LineString([(0, 0), (0, 0), (5, 0)])], dtype=object)
    length = shapely.length(lines)
    start = rng.uniform(0, 1, len(lines)) * length
    end = start + rng.uniform(0, 1, len(lines)) * (length - start)
    start[:50], end[50:100], start[-1], end[-1] = 0.0, length[50:100], 0.0, 5.0
    got = _substrings(lines, start, end)
    want = np.array([substring(g, a, b) for g, a, b in zip(lines, start, end, strict=True)], dtype=object)
    assert np.all(shapely.hausdorff_distance(got, want) <= 1e-9)
