"""Gaps: adjacent uncovered demand cells merged into polygons and ranked by the demand they leave unmet."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import shapely


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
    [iy*size, (iy+1)*size]`` in metres of ``crs``. The squares are built exactly, so neighbours share their edges
    and the gaps are one coverage union (linear in the cells) instead of a general union."""
    idx = np.flatnonzero(uncovered)
    if len(idx) == 0:
        return _no_gaps(crs)
    x0, y0 = ix[idx] * size_m, iy[idx] * size_m
    squares = shapely.box(x0, y0, x0 + size_m, y0 + size_m)
    centres = np.asarray(shapely.points(x0 + size_m / 2, y0 + size_m / 2))
    return _ranked(shapely.coverage_union_all(squares), squares, idx, weights, crs, reps=centres)


def _no_gaps(crs: Any) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"rank": [], "demand": [], "area_m2": [], "cells": [], "members": []}, geometry=[],
                            crs=crs)


def _ranked(merged: Any, geoms: np.ndarray, idx: np.ndarray, weights: np.ndarray, crs: Any, *,
            reps: np.ndarray | None = None) -> gpd.GeoDataFrame:
    """The parts of ``merged`` as gaps: each part's cells (``geoms``, positions ``idx``) found by a point inside each
    cell (``reps``, else a point on its surface), their demand, area and number; ranked by demand, then area."""
    parts = np.asarray(shapely.get_parts(merged))
    tree = shapely.STRtree(parts)
    if reps is None:
        reps = shapely.point_on_surface(geoms)
    cell_i, part_i = tree.query(reps, predicate="within")
    owner = np.full(len(idx), -1)
    owner[cell_i] = part_i
    lost = np.flatnonzero(owner < 0)
    if len(lost):  # a point on a snapped edge: give it to the nearest part
        src, dst = tree.query_nearest(reps[lost], all_matches=False)
        owner[lost[src]] = dst
    order = np.argsort(owner, kind="stable")
    groups = np.split(idx[order], np.searchsorted(owner[order], np.arange(1, len(parts))))
    rows = []
    for geom, members in zip(parts, groups, strict=True):
        rows.append({"demand": float(weights[members].sum()), "area_m2": float(geom.area), "cells": len(members),
                     "members": members.tolist(), "geometry": geom})
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    gdf = gdf.sort_values(["demand", "area_m2"], ascending=False, kind="stable").reset_index(drop=True)
    gdf.insert(0, "rank", np.arange(1, len(gdf) + 1))
    return gdf
