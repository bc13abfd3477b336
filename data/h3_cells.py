"""H3 hexagons as demand cells: an option of a demand import (``yizhan demand import FILE --h3 9``).

A point's cell is the H3 cell of resolution ``res`` holding it (``h3.latlng_to_cell`` on its WGS 84 latitude and
longitude); cells are summed as the squares are (``data.demand_fast.CellSums``): each batch's points added to their
cells' sums (``H3Sums``) in the points' order (``np.add.at``: the same sums, to the last bit, as one ``np.bincount``
over all the points). A cell is stored with its hexagon (WGS 84 lon/lat polygon, as H3 draws its boundary), its
centre (WGS 84) and the centre's metres ``x``, ``y`` in the area's CRS; its key is ``h3:{res}:{index in hex}``; its
``cell_size_m`` the square root of the average hexagon area at ``res`` (metres), as an imported grid records the
square root of its mean cell area. The layer is no lattice (``data.layers``): gaps are found on the polygons.

h3 4.x has no vectorised ``latlng_to_cell``: the points are indexed one call each (``h3.api.basic_int``, integer
cells, about 0.6 s per million points on a quiet benchmark machine), while the server stores the batch before; a
cell's boundary is one call too. ``h3ronpy`` indexes numpy arrays in one call (0.3–0.4 s per million) but brings a
Rust build and ``arro3-core`` besides ``h3``; it would save about a quarter of a second per million points of an
import that takes several seconds, which did not pay for two more binary dependencies (benchmarks/README.md,
"Demand import at scale").
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Any

import h3  # type: ignore[import-untyped]
import h3.api.basic_int as h3int  # type: ignore[import-untyped]
import numpy as np
from psycopg import Connection as PgConnection
from psycopg import sql
from pyproj import Transformer
from sqlalchemy import Connection, text

from yizhan.areas import AreaInfo
from yizhan.data.demand_points import point_columns
from yizhan.db.binary_copy import HEADER as COPY_HEADER
from yizhan.db.binary_copy import TRAILER as COPY_TRAILER
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput

H3_RESOLUTIONS = range(7, 11)
"""The H3 resolutions a demand import takes, those sensible for a radius of about 1 km: 7 (about 5.2 km², edge about
1.4 km) to 10 (about 0.015 km², edge about 76 m); 9 (about 0.1 km², edge about 200 m) is nearest the default 200 m
squares (0.04 km²)."""


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
        seen = np.sort(cells)  # the batch's cells, each once (a sort: numpy's unique hashes, several times slower)
        seen = seen[np.concatenate(([True], seen[1:] != seen[:-1]))]
        at = np.minimum(np.searchsorted(self.keys, seen), max(len(self.keys) - 1, 0))
        new = seen[~(self.keys[at] == seen)] if len(self.keys) else seen
        if len(new):
            keys = np.sort(np.concatenate((self.keys, new)))
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


def cell_rings(cells: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The cells' boundaries as H3 draws them (counter-clockwise, WGS 84), grouped by their number of vertices (6 for
    a hexagon; a pentagon has 5, a cell cut by an icosahedron edge up to 10): the positions of each group's cells in
    ``cells`` and their rings, (m, k + 1, 2) lon, lat degrees, the first vertex repeated last."""
    boundaries = [h3int.cell_to_boundary(c) for c in cells.tolist()]
    sizes = np.fromiter((len(b) for b in boundaries), np.int64, count=len(boundaries))
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(boundaries)), np.float64, count=2 * int(sizes.sum()))
    first = 2 * (np.cumsum(sizes) - sizes)  # where each cell's (lat, lng) pairs begin in ``flat``
    where: list[np.ndarray] = []
    rings: list[np.ndarray] = []
    for k in np.unique(sizes).tolist():
        at = np.flatnonzero(sizes == k)
        latlng = flat[first[at][:, None] + np.arange(2 * k)].reshape(len(at), k, 2)
        ring = np.empty((len(at), k + 1, 2))
        ring[:, :k, 0], ring[:, :k, 1] = latlng[:, :, 1], latlng[:, :, 0]
        ring[:, k] = ring[:, 0]
        where.append(at)
        rings.append(ring)
    return where, rings


def cell_centres(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cells' centres as H3 gives them: lon, lat degrees (WGS 84)."""
    centres = np.array([h3int.cell_to_latlng(c) for c in cells.tolist()], np.float64).reshape(-1, 2)
    return centres[:, 1].copy(), centres[:, 0].copy()


_EWKB_POINT = 0x20000001
_EWKB_POLYGON = 0x20000003


def _row_type(key_len: int, vertices: int) -> np.dtype:
    """A cell's row in PostgreSQL's binary COPY format, its key ``key_len`` bytes and its ring ``vertices`` points
    (the columns of ``copy_h3_cells``)."""
    return np.dtype([("n", ">i2"), ("la", ">i4"), ("a", ">i4"), ("ll", ">i4"), ("l", ">i4"), ("lk", ">i4"),
                     ("k", f"S{key_len}"), ("ls", ">i4"), ("s", ">f8"), ("lw", ">i4"), ("w", ">f8"), ("lp", ">i4"),
                     ("p", ">i4"), ("lg", ">i4"), ("gbo", "u1"), ("gt", "<u4"), ("gsrid", "<u4"), ("rings", "<u4"),
                     ("npts", "<u4"), ("ring", "<f8", (2 * vertices,)), ("lc", ">i4"), ("cbo", "u1"), ("ct", "<u4"),
                     ("csrid", "<u4"), ("cx", "<f8"), ("cy", "<f8"), ("lx", ">i4"), ("x", ">f8"), ("ly", ">i4"),
                     ("y", ">f8")])


def cell_rows(area: AreaInfo, cells: H3Cells, layer_id: int) -> bytes:
    """The cells' rows in PostgreSQL's binary COPY format (without the file's header and trailer), in the cells'
    order: see ``copy_h3_cells``."""
    n = len(cells)
    keys = np.array([k.encode() for k in cell_keys(cells.cells, cells.res)])
    key_len = keys.dtype.itemsize
    clon, clat = cell_centres(cells.cells)
    x, y = Transformer.from_crs(SRID, area.crs_epsg, always_xy=True).transform(clon, clat)
    where, rings = cell_rings(cells.cells)
    lengths = np.zeros(n, np.int64)
    groups = []
    for at, ring in zip(where, rings, strict=True):
        rows = np.zeros(len(at), _row_type(key_len, ring.shape[1]))
        rows["n"], rows["la"], rows["a"], rows["ll"], rows["l"] = 10, 4, area.id, 4, layer_id
        rows["lk"], rows["k"] = key_len, keys[at]
        rows["ls"], rows["s"], rows["lw"], rows["w"] = 8, cell_size_m(cells.res), 8, cells.weight[at]
        rows["lp"], rows["p"] = 4, cells.points[at]
        rows["lg"], rows["gbo"], rows["gt"], rows["gsrid"] = 17 + 16 * ring.shape[1], 1, _EWKB_POLYGON, SRID
        rows["rings"], rows["npts"], rows["ring"] = 1, ring.shape[1], ring.reshape(len(at), -1)
        rows["lc"], rows["cbo"], rows["ct"], rows["csrid"] = 25, 1, _EWKB_POINT, SRID
        rows["cx"], rows["cy"] = clon[at], clat[at]
        rows["lx"], rows["x"], rows["ly"], rows["y"] = 8, np.asarray(x)[at], 8, np.asarray(y)[at]
        lengths[at] = rows.dtype.itemsize
        groups.append((at, rows))
    if len(groups) == 1:
        return groups[0][1].tobytes()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out = np.empty(int(lengths.sum()), np.uint8)
    for at, rows in groups:  # each group's rows put back at their cells' places
        width = rows.dtype.itemsize
        out[(starts[at][:, None] + np.arange(width)).ravel()] = rows.view(np.uint8)
    return out.tobytes()


def copy_h3_cells(conn: PgConnection[Any], area: AreaInfo, cells: H3Cells, layer_id: int, *,
                  table: str | None = None) -> None:
    """Append the cells to ``demand_cells`` in layer ``layer_id`` by binary COPY, or load them into ``table`` (the
    layer's own table, created in the open transaction: ``data.layers.new_layer``; written frozen): each cell's key,
    size (``cell_size_m``), weight, points, hexagon (as H3 draws its boundary) and centre in WGS 84 lon/lat, and the
    centre's metres ``x``, ``y`` in the area's CRS. The rows go in the cells' order, so their ids follow it."""
    if not len(cells):
        return
    statement = sql.SQL("COPY {} (area_id, layer_id, cell_key, cell_size_m, weight, points, geom, centroid, x, y) "
                        "FROM STDIN (FORMAT BINARY{})").format(sql.Identifier(table or "demand_cells"),
                                                              sql.SQL(", FREEZE") if table else sql.SQL(""))
    with conn.cursor() as cur, cur.copy(statement) as cp:
        cp.write(COPY_HEADER)
        cp.write(cell_rows(area, cells, layer_id))
        cp.write(COPY_TRAILER)


def point_keys(cell_keys_of_layer: Any, lon: np.ndarray, lat: np.ndarray) -> np.ndarray | None:
    """The keys of the H3 cells holding the points (WGS 84 lon, lat degrees) when a layer's cells (their keys,
    ``cell_keys_of_layer``) are H3 cells (``h3:{res}:...``), at the layer's resolution; None for any other layer."""
    first = next(iter(cell_keys_of_layer), None)
    if not isinstance(first, str) or not first.startswith("h3:"):
        return None
    res = int(first.split(":")[1])
    return np.asarray(cell_keys(h3_indices(lon, lat, res), res), dtype=object)


def layer_reach_m(conn: Connection, layer_id: int, crs_epsg: int) -> float | None:
    """For a layer of H3 cells (its ``params``), the farthest a point of a cell lies from the cell's centre: the
    largest distance from a centre (``x``, ``y``) to a vertex of its hexagon, in metres of EPSG ``crs_epsg``, plus a
    metre (a point on an edge, the edge drawn straight between its vertices); None for any other layer."""
    h3_layer = conn.execute(text("SELECT coalesce((params->>'h3')::boolean, false) FROM demand_layers WHERE id = :l"),
                            {"l": layer_id}).scalar()
    if not h3_layer:
        return None
    reach = conn.execute(text("SELECT max(ST_MaxDistance(ST_Transform(geom, :crs), ST_SetSRID(ST_MakePoint(x, y), "
                              ":crs))) FROM demand_cells WHERE layer_id = :l"), {"l": layer_id, "crs": crs_epsg}
                         ).scalar()
    return None if reach is None else float(reach) + 1.0


def stray_points(conn: Connection, area_id: int, layer_id: int) -> int | None:
    """For a layer of H3 cells (its ``params``), how many of the area's stored points lie in none of its cells (their
    own H3 cells at the layer's resolution, found here); None for any other layer."""
    res = conn.execute(text("SELECT (params->>'h3_res')::int FROM demand_layers WHERE id = :l AND "
                            "coalesce((params->>'h3')::boolean, false)"), {"l": layer_id}).scalar()
    if res is None:
        return None
    got = point_columns(conn, area_id, ("lon", "lat"))
    lon, lat = got["lon"], got["lat"]
    keys = set(conn.execute(text("SELECT cell_key FROM demand_cells WHERE layer_id = :l"), {"l": layer_id}).scalars())
    found = cell_keys(h3_indices(np.asarray(lon, np.float64), np.asarray(lat, np.float64), int(res)), int(res))
    return sum(k not in keys for k in found)
