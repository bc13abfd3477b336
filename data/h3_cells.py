"""H3 hexagons as demand cells: an option of a demand import (``yizhan demand import FILE --h3 9``).

A point's cell is the H3 cell of resolution ``res`` holding it (``h3.latlng_to_cell`` on its WGS 84 latitude and
longitude); cells are summed as the squares are (``data.demand_fast.CellSums``): each batch's points added to their
cells' sums in the points' order (``np.add.at``: the same sums, to the last bit, as one ``np.bincount`` over all
the points). A cell is stored with its hexagon (WGS 84 lon/lat polygon, as H3 draws its boundary), its centre (WGS
84) and the centre's metres ``x``, ``y`` in the area's CRS; its key is ``h3:{res}:{index in hex}``; its
``cell_size_m`` the square root of the average hexagon area at ``res`` (metres), as an imported grid records the
square root of its mean cell area. The layer is no lattice (``data.layers``): gaps are found on the polygons.

h3 4.x has no vectorised ``latlng_to_cell``: the points are indexed one call each (``h3.api.basic_int``, integer
cells, about 0.6 s per million points on this project's benchmark machine), while the server stores the batch
before. ``h3ronpy`` indexes a numpy array in one call (about 0.3 s per million) but brings a Rust build and
``arro3-core`` besides ``h3``; the import reads a million points in about a second, so the half second it would
save did not pay for two more binary dependencies (benchmarks/README.md, "Demand import at scale").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import h3  # type: ignore[import-untyped]
import h3.api.basic_int as h3int  # type: ignore[import-untyped]
import numpy as np
import shapely
from psycopg import Connection as PgConnection
from psycopg import sql
from pyproj import Transformer

from yizhan.areas import AreaInfo
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput

H3_RESOLUTIONS = range(7, 11)
"""The H3 resolutions a demand import takes: 7 (about 5.2 km², edge about 1.4 km) to 10 (about 0.015 km², edge about
76 m); 9 (about 0.1 km², edge about 200 m) is the size of the default 200 m squares' neighbourhood for a 1 km
radius."""


def check_resolution(res: int) -> int:
    """``res`` if an import takes it (``H3_RESOLUTIONS``), else InvalidInput in one line."""
    if isinstance(res, bool) or not isinstance(res, int) or res not in H3_RESOLUTIONS:
        raise InvalidInput(f"H3 分辨率 {res} 不可用，须为 7 至 10 / H3 resolution {res}: expected 7 to 10 "
                           f"(9: cells of about 0.1 km², edge about 200 m)")
    return res


def cell_size_m(res: int) -> float:
    """The square root of the average hexagon area at ``res`` (metres): the cell size a layer of H3 cells records."""
    return float(np.sqrt(h3.average_hexagon_area(res, unit="m^2")))


def h3_indices(lon: np.ndarray, lat: np.ndarray, res: int) -> np.ndarray:
    """The H3 cells (uint64) of resolution ``res`` holding the points (WGS 84 lon, lat degrees)."""
    n = len(lon)
    cell = h3int.latlng_to_cell
    return np.fromiter((cell(y, x, res) for x, y in zip(np.asarray(lon, np.float64).tolist(),
                                                         np.asarray(lat, np.float64).tolist(), strict=True)),
                       dtype=np.uint64, count=n)


@dataclass
class H3Cells:
    """Demand cells of H3 resolution ``res``: ``cells`` the H3 indices (uint64, ascending), summed ``weight`` and
    ``points``."""

    cells: np.ndarray
    weight: np.ndarray
    points: np.ndarray
    res: int

    def __len__(self) -> int:
        return len(self.cells)


class H3Sums:
    """Points summed by H3 cell as their batches come (``add``): the cells seen so far kept sorted with a sum and a
    count each, each batch's points added in their order (``np.add.at``), new cells merged in first."""

    def __init__(self, res: int) -> None:
        self.res = check_resolution(res)
        self.keys = np.zeros(0, np.uint64)
        self.sums = np.zeros(0, np.float64)
        self.counts = np.zeros(0, np.int64)

    def add_points(self, lon: np.ndarray, lat: np.ndarray, weight: np.ndarray) -> None:
        """Add points (WGS 84 lon, lat degrees) with their weights."""
        self.add(h3_indices(lon, lat, self.res), weight)

    def add(self, cells: np.ndarray, weight: np.ndarray) -> None:
        """Add points in H3 cells ``cells`` (uint64) with their weights."""
        if not len(cells):
            return
        new = np.setdiff1d(np.unique(cells), self.keys, assume_unique=True)
        if len(new):
            keys = np.union1d(self.keys, new)
            at = np.searchsorted(keys, self.keys)
            sums, counts = np.zeros(len(keys)), np.zeros(len(keys), np.int64)
            sums[at], counts[at] = self.sums, self.counts
            self.keys, self.sums, self.counts = keys, sums, counts
        at = np.searchsorted(self.keys, cells)
        np.add.at(self.sums, at, np.asarray(weight, np.float64))
        np.add.at(self.counts, at, 1)

    def cells(self) -> H3Cells:
        """The sums by cell, in the order of the cells' indices."""
        return H3Cells(self.keys.copy(), self.sums.copy(), self.counts.copy(), self.res)


def h3_cells(lon: np.ndarray, lat: np.ndarray, weight: np.ndarray, res: int) -> H3Cells:
    """The points (WGS 84 lon, lat degrees) summed by H3 cell of resolution ``res``."""
    sums = H3Sums(res)
    sums.add_points(lon, lat, weight)
    return sums.cells()


def cell_keys(cells: np.ndarray, res: int) -> list[str]:
    """The cells' keys ``h3:{res}:{index in hex}``."""
    return [f"h3:{res}:{int(c):x}" for c in cells]


def cell_shapes(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells' hexagons (shapely polygons, WGS 84 lon/lat, their boundaries as H3 gives them: counter-clockwise)
    and their centres' lon, lat degrees."""
    rings: list[tuple[tuple[float, float], ...]] = [h3int.cell_to_boundary(int(c)) for c in cells]
    sizes = np.fromiter((len(r) + 1 for r in rings), np.int64, count=len(rings))
    coords = np.empty((int(sizes.sum()), 2))
    at = 0
    for ring in rings:  # (lat, lng) pairs, the ring closed by its first point again
        k = len(ring)
        coords[at:at + k] = ring
        coords[at + k] = ring[0]
        at += k + 1
    coords = coords[:, ::-1].copy()  # lon, lat
    linear = shapely.linearrings(coords, indices=np.repeat(np.arange(len(rings)), sizes))
    polygons = np.asarray(shapely.polygons(linear), dtype=object)
    centres = np.array([h3int.cell_to_latlng(int(c)) for c in cells]).reshape(-1, 2)
    return polygons, centres[:, 1].copy(), centres[:, 0].copy()


def copy_h3_cells(conn: PgConnection[Any], area: AreaInfo, cells: H3Cells, layer_id: int, *,
                  table: str | None = None) -> None:
    """Append the cells to ``demand_cells`` in layer ``layer_id`` by COPY, or load them into ``table`` (the layer's
    own table, created in the open transaction: ``data.layers.new_layer``; written frozen): each cell's key, size
    (``cell_size_m``), weight, points, hexagon and centre in WGS 84 and the centre's metres ``x``, ``y`` in the
    area's CRS. The rows go in the cells' order, so their ids follow it."""
    if not len(cells):
        return
    polygons, clon, clat = cell_shapes(cells.cells)
    x, y = Transformer.from_crs(SRID, area.crs_epsg, always_xy=True).transform(clon, clat)
    geom = np.asarray(shapely.to_wkb(shapely.set_srid(polygons, SRID), hex=True, include_srid=True), dtype=object)
    centre = np.asarray(shapely.to_wkb(shapely.set_srid(shapely.points(clon, clat), SRID), hex=True,
                                       include_srid=True), dtype=object)
    size = cell_size_m(cells.res)
    statement = sql.SQL("COPY {} (area_id, layer_id, cell_key, cell_size_m, weight, points, geom, centroid, x, y) "
                        "FROM STDIN{}").format(sql.Identifier(table or "demand_cells"),
                                              sql.SQL(" (FREEZE)") if table else sql.SQL(""))
    keys = cell_keys(cells.cells, cells.res)
    with conn.cursor() as cur, cur.copy(statement) as cp:
        for row in zip(keys, cells.weight.tolist(), cells.points.tolist(), geom.tolist(), centre.tolist(),
                       np.asarray(x).tolist(), np.asarray(y).tolist(), strict=True):
            cp.write_row((area.id, layer_id, row[0], size, *row[1:]))


def point_keys(cell_keys_of_layer: Any, lon: np.ndarray, lat: np.ndarray) -> np.ndarray | None:
    """The keys of the H3 cells holding the points (WGS 84 lon, lat degrees) when a layer's cells (their keys,
    ``cell_keys_of_layer``) are H3 cells (``h3:{res}:...``), at the layer's resolution; None for any other layer."""
    first = next(iter(cell_keys_of_layer), None)
    if not isinstance(first, str) or not first.startswith("h3:"):
        return None
    res = int(first.split(":")[1])
    return np.asarray(cell_keys(h3_indices(lon, lat, res), res), dtype=object)
