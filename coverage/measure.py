"""What a coverage run measures: the area's stored demand points when it has them, else its cell centres.

Cells stay the unit of display and of gaps, but a cell's centre can stand badly for its orders: on a held-out extract
the street share was 11.6 % from 200 m cell centres and 17.6 % from the order points themselves (a cell whose points
were 92 % within 1 km counted wholly uncovered). So a run judges each stored point, sums the covered orders per
cell, and calls a cell covered when at least half of its orders are. Metres in the area's metric CRS (x east,
y north); lon/lat WGS 84 degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyproj import Transformer
from sqlalchemy import Connection

from yizhan.areas import AreaInfo
from yizhan.arrays import lattice_code
from yizhan.data.demand import stored_points
from yizhan.data.h3_cells import point_keys
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput

MEASURES = ("auto", "points", "cells")
"""``auto``: the points when the area has them, else the cells; ``points``: the points (an error without them);
``cells``: the cell centres, as before points were measured."""
HALF = 0.5
"""A cell measured on its points counts as covered when at least this share of its orders is."""


@dataclass
class Demand:
    """The demand locations a run judges and the orders at them.

    ``measured`` is ``points`` or ``cells``; ``xy`` (n, 2) metres and ``lonlat`` (n, 2) degrees of each location (a
    stored point, or a cell centre); ``cell`` the index of its cell in the run's cell frame; ``weight`` its orders.
    ``cell_lonlat`` (n_cells, 2) the cell centres in degrees. The items carry the times: ``item_loc`` (a location
    index), ``item_hour`` (hour of the week 0–167, -1 without a time) and ``item_weight``; ``first_time`` and
    ``last_time`` the span of the times stored; ``point_id`` the stored points' database ids (measured on points,
    else None), which name a location across processes (the parts of a partitioned run)."""

    measured: str
    xy: np.ndarray
    lonlat: np.ndarray
    cell: np.ndarray
    weight: np.ndarray
    cell_lonlat: np.ndarray
    item_loc: np.ndarray
    item_hour: np.ndarray
    item_weight: np.ndarray
    first_time: pd.Timestamp | None = None
    last_time: pd.Timestamp | None = None
    notes: list[str] = field(default_factory=list)
    point_id: np.ndarray | None = None

    @property
    def timed(self) -> int:
        """How many items carry a time."""
        return int((self.item_hour >= 0).sum())


def check_measure(measure: str) -> None:
    """InvalidInput naming ``measure`` when it is none of ``MEASURES``."""
    if measure not in MEASURES:
        raise InvalidInput(f"计算对象 measure: {measure!r}; 可用 expected {', '.join(MEASURES)}")


def measured_demand(conn: Connection, area: AreaInfo, cells: pd.DataFrame, cells_xy: np.ndarray,
                    cell_size_m: float | None, *, measure: str = "auto", timezone: str,
                    times: bool = True, lattice: tuple[np.ndarray, np.ndarray] | None = None) -> Demand:
    """The locations a run of ``area`` judges (see ``MEASURES``), from its cell frame ``cells`` (``cell_key``,
    ``weight``, in ``cells_xy`` order: centres in metres of the area CRS) and its stored points (their times read as
    hours of the week in ``timezone``). Measured on the cells with ``times`` False, the points are not read.

    ``lattice``: the cells' column and row on the lattice of squares of ``cell_size_m`` metres
    (``LayerCells.lattice_index``) when the layer is one; the points then find their cells by those numbers (the
    cells' keys are made of them) instead of by their keys written out."""
    check_measure(measure)
    to_ll = Transformer.from_crs(area.crs_epsg, SRID, always_xy=True)
    cell_lonlat = np.column_stack(to_ll.transform(cells_xy[:, 0], cells_xy[:, 1])) if len(cells_xy) \
        else np.empty((0, 2))
    n_cells = len(cells)
    weights = cells["weight"].to_numpy(float)
    wanted = measure != "cells" or times
    pts = stored_points(conn, area, cell_size_m=cell_size_m, timezone=timezone) if cell_size_m and wanted else None
    notes: list[str] = []
    cell_of = np.empty(0, np.int64)
    if pts is not None and len(pts) and lattice is not None:
        cell_of = pd.Index(lattice_code(*lattice)).get_indexer(lattice_code(pts.ix, pts.iy))
    elif pts is not None and len(pts):
        index = pd.Index(cells["cell_key"].astype(str))
        h3_keys = point_keys(index, pts.lon, pts.lat)  # a layer of H3 cells: the points' own H3 cells
        cell_of = index.get_indexer(pd.Index((pts.cell_key if h3_keys is None else h3_keys).astype(str)))
    if pts is not None and len(pts) and (cell_of < 0).any():
        # points stored after the cells were made: the cells speak for the demand
        stray = int((cell_of < 0).sum())
        if measure == "points":
            raise InvalidInput(f"区域 {area.name!r} 有 {stray} 个需求点不在已存的网格中，请重新导入需求 / "
                               f"{stray} demand points of area {area.name!r} lie in no stored cell: import the "
                               f"demand again")
        notes.append(f"{stray} 个需求点不在已存的网格中，按网格中心计算 / {stray} demand points lie in no stored "
                     f"cell: measured on the cell centres")
        pts = None
    if measure == "points" and (pts is None or not len(pts)):
        raise InvalidInput(f"区域 {area.name!r} 没有存储的需求点，无法按点计算 / area {area.name!r} has no stored "
                           f"demand points to measure (a grid was imported); use measure cells")
    if pts is not None and len(pts) and measure != "cells":
        return Demand("points", np.column_stack([pts.x, pts.y]), np.column_stack([pts.lon, pts.lat]),
                      cell_of.astype(np.int64), pts.weight, cell_lonlat, np.arange(len(pts), dtype=np.int64),
                      pts.hour.astype(np.int16), pts.weight, pts.first_time, pts.last_time, notes,
                      point_id=pts.ids)
    if pts is not None and len(pts):  # cells measured, the points' times kept
        return Demand("cells", cells_xy, cell_lonlat, np.arange(n_cells, dtype=np.int64), weights, cell_lonlat,
                      cell_of.astype(np.int64), pts.hour.astype(np.int16), pts.weight, pts.first_time,
                      pts.last_time, notes)
    return Demand("cells", cells_xy, cell_lonlat, np.arange(n_cells, dtype=np.int64), weights, cell_lonlat,
                  np.arange(n_cells, dtype=np.int64), np.full(n_cells, -1, np.int16), weights, notes=notes)


def per_cell(demand: Demand, covered: np.ndarray, n_cells: int) -> np.ndarray:
    """Covered orders per cell from a covered flag per location."""
    return np.bincount(demand.cell, weights=demand.weight * covered, minlength=n_cells)
