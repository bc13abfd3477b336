"""``union_of_regions``: areas each cut to its own region (a run in parts), united; against one ``union_all``.

The covered ground is a street lattice's buffer: a block is a hole where the lattice's streets round it are
covered. Cut by tiles or by irregular regions, blocks on a seam come back as holes only once the pieces meet;
blocks inside a region stay the holes they were; a town apart from every seam passes through untouched.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from yizhan.coverage.area_union import union_of_regions


def _lattice_area(x0: float, y0: float, blocks: int, block_m: float = 100.0, street_m: float = 20.0) -> Polygon:
    """A square of ``blocks`` x ``blocks`` city blocks (holes of ``block_m - street_m``) with streets all round."""
    side = blocks * block_m + street_m
    holes = [box(x0 + street_m + i * block_m, y0 + street_m + j * block_m,
                 x0 + (i + 1) * block_m, y0 + (j + 1) * block_m).exterior.coords[::-1]
             for i in range(blocks) for j in range(blocks)]
    return Polygon(box(x0, y0, x0 + side, y0 + side).exterior.coords, holes)


def _check(ground: shapely.Geometry, regions: list[shapely.Geometry]) -> shapely.Geometry:
    pieces = np.asarray([shapely.intersection(ground, r) for r in regions], dtype=object)
    got = union_of_regions(pieces, np.asarray(regions, dtype=object))
    want = shapely.union_all(pieces)
    assert shapely.is_valid(got), shapely.is_valid_reason(got)
    assert got.geom_type in ("Polygon", "MultiPolygon")
    assert abs(got.area - ground.area) <= 1e-9 * ground.area
    assert shapely.symmetric_difference(got, want).area <= 1e-9 * want.area
    assert shapely.symmetric_difference(got, ground).area <= 1e-9 * ground.area
    return got


def _tiles(xs: list[float], ys: list[float]) -> list[Polygon]:
    return [box(a, b, c, d) for a, c in pairwise(xs) for b, d in pairwise(ys)]


def test_tiles_cut_through_blocks_give_the_same_ground_and_holes() -> None:
    city = _lattice_area(0, 0, 12)
    town = _lattice_area(5_000, 300, 2)  # apart from every seam
    ground = MultiPolygon([city, town])
    # seams through blocks (450) and along a street (600): the cut blocks are holes again only once united
    got = _check(ground, _tiles([-1e4, 450, 600.0, 1e4], [-1e4, 333.3, 1e4]))
    assert got.geom_type == "MultiPolygon" and len(got.geoms) == 2
    assert sorted(len(g.interiors) for g in got.geoms) == [4, 144]  # every block a hole, none twice


def test_irregular_regions_and_a_region_with_nothing() -> None:
    ground = _lattice_area(0, 0, 8)
    wedge = Polygon([(-1e4, -1e4), (10_410, -1e4), (-1e4, 10_410)])  # x + y < 410: the blocks cut diagonally
    rest = box(-1e4, -1e4, 1e4, 1e4).difference(wedge)
    far = box(2e4, 2e4, 3e4, 3e4)  # its piece is empty
    got = _check(ground, [wedge, rest, far])
    assert got.geom_type == "Polygon" and len(got.interiors) == 64
    # a cut that leaves only a point (a region touching the ground at a corner) adds no ground
    corner = Polygon([(-1e4, -1e4), (1e4, -1e4), (-1e4, 1e4)])  # x + y < 0
    got = _check(ground, [corner, box(-1e4, -1e4, 1e4, 1e4).difference(corner)])
    assert got.geom_type == "Polygon" and len(got.interiors) == 64


def test_a_region_round_an_enclave_of_another() -> None:
    ground = _lattice_area(0, 0, 8)
    enclave = box(230, 230, 570, 570)  # through blocks on every side
    around = box(-1e4, -1e4, 1e4, 1e4).difference(enclave)
    got = _check(ground, [around, enclave])
    assert got.geom_type == "Polygon" and len(got.interiors) == 64
    # and an enclave whose piece lies apart, inside a hole of the piece around it
    lake = box(330, 330, 370, 370)  # inside one block
    got = _check(ground, [box(-1e4, -1e4, 1e4, 1e4).difference(lake), lake])
    assert got.geom_type == "Polygon" and len(got.interiors) == 64


def test_pieces_that_meet_no_seam_pass_through_as_they_are() -> None:
    towns = [_lattice_area(1_000 * i + 100, 100, 2) for i in range(3)]
    regions = [box(1_000 * i, 0, 1_000 * (i + 1), 1_000) for i in range(3)]
    got = union_of_regions(np.asarray(towns, dtype=object), np.asarray(regions, dtype=object))
    assert got.geom_type == "MultiPolygon"
    assert all(g.equals_exact(t, 0) for g, t in zip(got.geoms, towns, strict=True))


@pytest.mark.parametrize("pieces", [[], [Polygon(), MultiPolygon()]])
def test_nothing_to_unite_is_an_empty_polygon(pieces: list[shapely.Geometry]) -> None:
    regions = [box(0, 0, 1, 1), box(1, 0, 2, 1)][:len(pieces)]
    got = union_of_regions(np.asarray(pieces, dtype=object), np.asarray(regions, dtype=object))
    assert got.is_empty and got.geom_type == "Polygon"
