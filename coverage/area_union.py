"""The union of many areas with many holes, done on their outlines (the merged covered area of a network run).

A station's service area along the streets is a polygon with one hole per street block it surrounds: a city's
stations together have hundreds of thousands of such holes. GEOS's ``union_all`` runs every hole's vertices
through each round of its cascaded overlay, although nearly all of them come out unchanged. ``area_union``
overlays only the outlines (each polygon's exterior ring filled) and then puts the holes back:

- a hole that no other polygon's outline touches is a hole of the union, as it is;
- a hole that another polygon's outline reaches is cut by those polygons (``difference``) first; what other
  polygons cover inside it (an island) comes back as a polygon of its own.

The answer is the same point set as ``shapely.union_all`` (the tests compare both); rings may be ordered and
started differently. Coordinates pass through untouched, in whatever projected CRS the polygons are (metres, x
east, y north in this package).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

_LEAF = 16  # outlines united by one GEOS union_all; more are halved first


def _outlines_and_holes(parts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each polygon's outline filled, and its holes' rings with the index of the polygon they belong to."""
    if len(parts) == 0:
        none = np.empty(0, dtype=object)
        return none, none, np.empty(0, dtype=np.int64)
    outlines = np.asarray(shapely.polygons(shapely.get_exterior_ring(parts)), dtype=object)
    rings, owner = shapely.get_rings(parts, return_index=True)
    first = np.concatenate([[0], np.cumsum(shapely.get_num_interior_rings(parts) + 1)[:-1]])
    is_hole = np.ones(len(rings), dtype=bool)
    is_hole[first] = False
    return outlines, np.asarray(rings[is_hole], dtype=object), owner[is_hole]


def _rings_as_polygons(parts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each polygon's outline filled, and its holes as polygons with the index of the polygon they belong to."""
    outlines, holes, owner = _outlines_and_holes(parts)
    return outlines, np.asarray(shapely.polygons(holes), dtype=object), owner


def _with_holes(parts: np.ndarray, rings: np.ndarray, owner: np.ndarray) -> list[Any]:
    """Each polygon of ``parts`` with its own holes, then the ``rings`` whose ``owner`` is its index, in order."""
    order = np.argsort(owner, kind="stable")
    rings, owner = rings[order], owner[order]
    bounds = np.searchsorted(owner, np.arange(len(parts) + 1))
    out = []
    for k, part in enumerate(parts):
        holes = np.concatenate([shapely.get_rings(part)[1:], rings[bounds[k]:bounds[k + 1]]])
        out.append(shapely.polygons(shapely.get_exterior_ring(part), holes=holes if len(holes) else None))
    return out


def _cut_holes(holes: np.ndarray, hole_of: np.ndarray, outlines: np.ndarray,
               parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Holes cut by the other polygons whose outlines reach them: (holes left untouched, the cut holes' parts)."""
    # the outlines are the large ones: query with them so that each is prepared once
    part_j, hole_i = shapely.STRtree(holes).query(outlines, predicate="intersects")
    foreign = part_j != hole_of[hole_i]
    hole_i, part_j = hole_i[foreign], part_j[foreign]
    untouched = np.ones(len(holes), dtype=bool)
    untouched[hole_i] = False
    if len(hole_i) == 0:
        return holes, np.empty(0, dtype=object)
    order = np.argsort(hole_i, kind="stable")
    hole_i, part_j = hole_i[order], part_j[order]
    cut = np.asarray(shapely.difference(holes[hole_i], parts[part_j]))
    # a hole reached by several polygons: what is outside all of them
    starts = np.flatnonzero(np.r_[True, hole_i[1:] != hole_i[:-1]])
    left = [cut[a] if b - a == 1 else shapely.intersection_all(cut[a:b])
            for a, b in zip(starts, np.r_[starts[1:], len(cut)], strict=True)]
    # two polygons' holes over the same block give the same ground twice: one union of the few cut holes
    merged = shapely.get_parts(shapely.union_all(np.asarray(left, dtype=object)))
    return holes[untouched], merged[~shapely.is_empty(merged)]


def _outline_union(outlines: np.ndarray) -> Any:
    """Union of filled outlines, halving the set along its longer side and uniting the halves with ``area_union``.

    The halves' unions have holes of their own (blocks between several stations' outlines): they too are carried
    past each overlay instead of through it.
    """
    if len(outlines) <= _LEAF:
        return shapely.union_all(outlines)
    centre = shapely.get_coordinates(shapely.centroid(outlines))
    side = int(np.ptp(centre[:, 1]) > np.ptp(centre[:, 0]))
    order = np.argsort(centre[:, side], kind="stable")
    half = len(order) // 2
    # the two halves' parts are overlaid once, not halved again: apart from each other (a province's towns) they
    # would come back as many parts as went in, and be halved for ever
    return area_union(np.array([_outline_union(outlines[order[:half]]), _outline_union(outlines[order[half:]])],
                               dtype=object), halve=False)


def area_union(polygons: np.ndarray, *, halve: bool = True) -> Any:
    """Union of (multi)polygons that have many holes, overlaying only their outlines.

    Parameters
    ----------
    polygons : ndarray of shapely geometries
        Polygons, multipolygons or empty geometries, all in one projected CRS (metres, x east, y north).
    halve : bool
        Unite the outlines by halving the set (``_outline_union``); False: by one ``union_all`` (two halves' parts).

    Returns
    -------
    shapely geometry
        The union: a Polygon, a MultiPolygon, or an empty Polygon when there is nothing to unite; the same point
        set as ``shapely.union_all(polygons)``.
    """
    parts = np.asarray(shapely.get_parts(np.asarray(polygons, dtype=object)), dtype=object)
    parts = parts[~shapely.is_empty(parts)]
    if len(parts) == 0:
        return shapely.Polygon()
    outlines, holes, hole_of = _rings_as_polygons(parts)
    outer = np.asarray(shapely.get_parts(_outline_union(outlines) if halve else shapely.union_all(outlines)),
                       dtype=object)
    untouched, cut = _cut_holes(holes, hole_of, outlines, parts)
    gaps = np.concatenate([untouched, cut])
    # what other polygons cover inside a cut hole (an island in a block) is a polygon of its own, with the holes
    # cut inside it; those are then no holes of the outer parts
    points = shapely.STRtree(shapely.point_on_surface(gaps))
    _, enclosed, _ = _rings_as_polygons(cut[shapely.get_num_interior_rings(cut) > 0])
    islands = np.empty(0, dtype=object)
    inner = np.zeros(len(gaps), dtype=bool)
    if len(enclosed):
        inner[points.query(enclosed, predicate="contains")[1]] = True
        islands = shapely.get_parts(shapely.difference(shapely.union_all(enclosed), shapely.union_all(gaps[inner])))
    # every other hole lies inside one part of the united outlines (itself inside an outline): find which
    part_k, gap_i = points.query(outer, predicate="contains")
    keep = ~inner[gap_i]
    part_k, gap_i = part_k[keep], gap_i[keep]
    out = _with_holes(outer, np.asarray(shapely.get_exterior_ring(gaps[gap_i]), dtype=object), part_k)
    out.extend(islands[~shapely.is_empty(islands)])
    union = out[0] if len(out) == 1 else shapely.multipolygons(out)
    # a hole whose inner point no part contains (a sliver at the limits of floating point) is cut the slow way
    lost = np.ones(len(gaps), dtype=bool)
    lost[gap_i] = False
    lost &= ~inner
    return shapely.difference(union, shapely.union_all(gaps[lost])) if lost.any() else union


def union_of_regions(pieces: np.ndarray, regions: np.ndarray, *, tolerance_m: float = 1e-3) -> Any:
    """Union of areas each cut to its own region, the regions' interiors disjoint (a run in parts: each part's
    covered area cut to the part's region).

    Only a polygon that reaches its region's edge (to within ``tolerance_m``) can meet another region's; every
    other polygon is a polygon of the union as it is, holes and all. The reaching ones' outlines are united
    (``_outline_union``) and their holes, each inside its own region where no other piece lies, given to the united
    part that holds their polygon. The holes, most of a covered area's vertices, are never overlaid. When a
    polygon's hole lies on its region's edge (a region with an enclave of another region in it), ``area_union``
    unites the pieces instead.

    Parameters
    ----------
    pieces : ndarray of shapely geometries
        Polygons, multipolygons or empty geometries, ``pieces[i]`` inside ``regions[i]``; one projected CRS (metres,
        x east, y north). Points and lines a cut left are no ground and are left out.
    regions : ndarray of shapely geometries
        The pieces' regions, interiors disjoint (they may share edges).
    tolerance_m : float
        How near its region's edge (metres) a polygon counts as reaching it: above the error of the cut.

    Returns
    -------
    shapely geometry
        A Polygon, a MultiPolygon or an empty Polygon; the same point set as ``shapely.union_all(pieces)``.
    """
    polys, of = shapely.get_parts(np.asarray(pieces, dtype=object), return_index=True)
    keep = (shapely.get_type_id(polys) == shapely.GeometryType.POLYGON) & ~shapely.is_empty(polys)
    polys, of = np.asarray(polys[keep], dtype=object), of[keep]  # a cut may leave a point or a line: no ground
    if len(polys) == 0:
        return shapely.Polygon()
    regions = np.asarray(regions, dtype=object)
    edges = np.asarray(shapely.boundary(regions), dtype=object)
    shapely.prepare(edges)
    # a region with a hole (an enclave of another region): a polygon's hole may lie on that edge, with the
    # enclave's ground inside it; such holes are cut by the others' pieces, as area_union does for every hole
    region_parts, part_of = shapely.get_parts(regions, return_index=True)
    holed = np.bincount(part_of, weights=shapely.get_num_interior_rings(region_parts), minlength=len(regions)) > 0
    around = np.flatnonzero(holed[of])
    if len(around) and shapely.dwithin(edges[of[around]], shapely.boundary(polys[around]), tolerance_m).any():
        return area_union(polys)
    reach = shapely.dwithin(edges[of], shapely.get_exterior_ring(polys), tolerance_m)
    alone, meeting = polys[~reach], polys[reach]
    if len(meeting) == 0:
        return alone[0] if len(alone) == 1 else shapely.multipolygons(alone)
    outlines, holes, hole_of = _outlines_and_holes(meeting)
    united = np.asarray(shapely.get_parts(_outline_union(outlines)), dtype=object)
    owner = np.zeros(len(meeting), dtype=np.int64)
    if len(united) > 1:  # an outline's inner point lies inside exactly one united part
        got, part = shapely.STRtree(united).query(shapely.point_on_surface(outlines), predicate="intersects")
        owner[got] = part
    every = np.concatenate([np.asarray(_with_holes(united, holes, owner[hole_of]), dtype=object), alone])
    return every[0] if len(every) == 1 else shapely.multipolygons(every)
