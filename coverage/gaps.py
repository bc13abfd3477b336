"""Gaps: adjacent uncovered demand cells merged into polygons and ranked by the demand they leave unmet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def gaps_from_cells(cells: gpd.GeoDataFrame, *, uncovered: np.ndarray, weights: np.ndarray) -> gpd.GeoDataFrame:
    """Merge the uncovered cells that touch into gap polygons.

    Parameters
    ----------
    cells
        Cell polygons in a projected CRS (metres).
    uncovered, weights
        Per cell: True where no station is within reach; the cell's demand weight.

    Returns
    -------
    GeoDataFrame in the cells' CRS with ``rank`` (1 = most unmet demand), ``demand``, ``area_m2``, ``cells``
    and ``members`` (positional indices of the merged cells); ordered by rank.
    """
    crs = cells.crs
    idx = np.flatnonzero(uncovered)
    if len(idx) == 0:
        return _no_gaps(crs)
    geoms = cells.geometry.to_numpy()[idx]
    # snap to a 1 cm grid so cells that share an edge after reprojection really touch
    merged = shapely.set_precision(shapely.union_all(shapely.set_precision(geoms, 0.01)), 0.01)
    return _ranked(merged, geoms, idx, weights, crs)


def gaps_from_grid(ix: np.ndarray, iy: np.ndarray, size_m: float, crs: Any, *, uncovered: np.ndarray,
                   weights: np.ndarray) -> gpd.GeoDataFrame:
    """``gaps_from_cells`` for square cells on a lattice: cell i is the square ``[ix*size, (ix+1)*size] x
    [iy*size, (iy+1)*size]`` in metres of ``crs``. The gaps' polygons are drawn from the uncovered cells' boundary
    on the lattice (``_faces``: exact corners, no square built, no general union). A gap's cells are the uncovered
    cells joined through shared edges (cells meeting at a corner only are two polygons, so two gaps), found on the
    lattice's indices, with no point-in-polygon test."""
    idx = np.flatnonzero(uncovered)
    if len(idx) == 0:
        return _no_gaps(crs)
    cx, cy = ix[idx] - ix[idx].min(), iy[idx] - iy[idx].min()
    height = int(cy.max()) + 2  # a code's row never runs into the next column
    code = cx * height + cy
    order = np.argsort(code)
    sorted_code = code[order]

    def at(wanted: np.ndarray) -> np.ndarray:
        """Position (into ``idx``) of the uncovered cell with each code, -1 where there is none."""
        pos = np.minimum(np.searchsorted(sorted_code, wanted), len(sorted_code) - 1)
        return np.where(sorted_code[pos] == wanted, order[pos], -1)

    a, b = [], []
    for step in (height, 1):  # the cell east, the cell north
        nb = at(code + step)
        a.append(np.flatnonzero(nb >= 0))
        b.append(nb[nb >= 0])
    src, dst = np.concatenate(a), np.concatenate(b)
    n = len(idx)
    _, label = connected_components(coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)), directed=False)
    faces, inner = _faces(ix[idx], iy[idx], size_m, lambda di, dj: at(code + di * height + dj) >= 0)
    # each face's cell: the one holding a point inside it; the faces over no uncovered cell are holes of the gaps
    fx = np.floor(inner[:, 0] / size_m).astype(np.int64) - ix[idx].min()
    fy = np.floor(inner[:, 1] / size_m).astype(np.int64) - iy[idx].min()
    inside = (fx >= 0) & (fy >= 0) & (fy < height - 1)
    cell = np.full(len(faces), -1, dtype=np.int64)
    cell[inside] = at(fx[inside] * height + fy[inside])
    parts, cell = faces[cell >= 0], cell[cell >= 0]
    # each part's label: that of its cell
    if len(np.unique(label[cell])) != len(parts):
        raise AssertionError("the lattice's gaps and the union's parts disagree")  # cannot happen: a bug if it does
    part_of = np.empty(len(parts), dtype=np.int64)
    part_of[label[cell]] = np.arange(len(parts))
    return _rows(parts, part_of[label], idx, weights, crs)


def _faces(ix: np.ndarray, iy: np.ndarray, size_m: float,
           has: Callable[[int, int], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The faces the boundary of a set of lattice cells (``ix``, ``iy``; squares of ``size_m`` metres) cuts the
    plane into, and a point inside each ((n, 2) metres). The boundary is every side of a cell whose neighbour across
    it is not in the set (``has(di, dj)``: per cell, whether the cell at that offset is), a segment between two
    lattice corners; the segments meet only at their ends, so ``shapely.polygonize`` makes the faces without noding.
    The faces over the set's cells are the polygons of the union of its squares (``coverage_union_all`` of them, in
    about a third of the time: no square is built), the others the holes inside them."""
    x0, y0 = ix * size_m, iy * size_m
    x1, y1 = (ix + 1) * size_m, (iy + 1) * size_m
    segs = []
    for (di, dj), (ax, ay, bx, by) in (((-1, 0), (x0, y0, x0, y1)), ((1, 0), (x1, y0, x1, y1)),
                                       ((0, -1), (x0, y0, x1, y0)), ((0, 1), (x0, y1, x1, y1))):
        edge = ~has(di, dj)
        segs.append(np.stack([np.column_stack([ax[edge], ay[edge]]), np.column_stack([bx[edge], by[edge]])], axis=1))
    lines = np.asarray(shapely.linestrings(np.concatenate(segs)), dtype=object)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(lines)))
    return faces, shapely.get_coordinates(shapely.point_on_surface(faces))


def _no_gaps(crs: Any) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"rank": [], "demand": [], "area_m2": [], "cells": [], "members": []}, geometry=[],
                            crs=crs)


def _ranked(merged: Any, geoms: np.ndarray, idx: np.ndarray, weights: np.ndarray, crs: Any) -> gpd.GeoDataFrame:
    """The parts of ``merged`` as gaps: each part's cells (``geoms``, positions ``idx``) found by a point on each
    cell's surface, their demand, area and number; ranked by demand, then area."""
    parts = np.asarray(shapely.get_parts(merged))
    tree = shapely.STRtree(parts)
    reps = shapely.point_on_surface(geoms)
    cell_i, part_i = tree.query(reps, predicate="within")
    owner = np.full(len(idx), -1)
    owner[cell_i] = part_i
    lost = np.flatnonzero(owner < 0)
    if len(lost):  # a point on a snapped edge: give it to the nearest part
        src, dst = tree.query_nearest(reps[lost], all_matches=False)
        owner[lost[src]] = dst
    return _rows(parts, owner, idx, weights, crs)


def _rows(parts: np.ndarray, owner: np.ndarray, idx: np.ndarray, weights: np.ndarray, crs: Any) -> gpd.GeoDataFrame:
    """The gaps: each part with its cells (``idx[owner == part]``), their demand, area and number; ranked by demand,
    then area."""
    order = np.argsort(owner, kind="stable")
    groups = np.split(idx[order], np.searchsorted(owner[order], np.arange(1, len(parts))))
    demand = np.bincount(owner, weights=weights[idx], minlength=len(parts))
    rows = [{"demand": float(d), "area_m2": float(a), "cells": len(m), "members": m.tolist(), "geometry": g}
            for g, m, d, a in zip(parts, groups, demand, shapely.area(parts), strict=True)]
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    gdf = gdf.sort_values(["demand", "area_m2"], ascending=False, kind="stable").reset_index(drop=True)
    gdf.insert(0, "rank", np.arange(1, len(gdf) + 1))
    return gdf
