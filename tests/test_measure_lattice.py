"""A run measured on points finds each point's cell on the lattice by its column and row (``measured_demand``'s
``lattice``), as by the cells' keys: the same cells, and a point in no stored cell is told apart the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from point_rows import rewrite_points
from pyproj import Transformer
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.engine import Engine

from yizhan.areas import ensure_area, get_area
from yizhan.coverage.measure import Demand, measured_demand
from yizhan.coverage.runs import layer_cells
from yizhan.data.demand import import_demand
from yizhan.errors import InvalidInput

UTM50 = 32650
TO_LL = Transformer.from_crs(UTM50, 4326, always_xy=True)
ORIGIN = (440_000.0, 4_427_000.0)  # metres in UTM 50N


def _demand(engine: Engine, tmp_path: Path) -> None:
    lo, la = TO_LL.transform([ORIGIN[0] - 100, ORIGIN[0] + 4100], [ORIGIN[1] - 100, ORIGIN[1] + 3100])
    with engine.begin() as conn:
        ensure_area(conn, "lattice", boundary=box(lo[0], la[0], lo[1], la[1]), crs_epsg=UTM50)
    rng = np.random.default_rng(17)
    x = ORIGIN[0] + rng.uniform(0, 4000, 3000)
    y = ORIGIN[1] + rng.uniform(0, 3000, 3000)
    x[:40] = ORIGIN[0] + 200.0 * rng.integers(1, 19, 40)  # on the cells' edges
    lon, lat = TO_LL.transform(x, y)
    path = tmp_path / "demand.csv"
    pd.DataFrame({"lon": lon, "lat": lat, "weight": rng.gamma(2.0, 1.0, len(x)).round(3)}).to_csv(
        path, index=False, float_format="%.10f")
    import_demand(engine, path, area="lattice", cell_size_m=150.0)


def _measured(engine: Engine, measure: str, *, lattice: bool) -> Demand:
    with engine.connect() as conn:
        info = get_area(conn, "lattice")
        cells = layer_cells(conn, info.id)
        assert cells is not None and cells.lattice_index() is not None
        return measured_demand(conn, info, cells.frame(), cells.xy, cells.cell_size_m, measure=measure,
                               timezone="Asia/Shanghai", lattice=cells.lattice_index() if lattice else None)


def _both(engine: Engine, measure: str) -> tuple[Demand, Demand]:
    return _measured(engine, measure, lattice=False), _measured(engine, measure, lattice=True)


def test_points_find_the_same_cells_by_column_and_row_as_by_key(engine: Engine, tmp_path: Path) -> None:
    _demand(engine, tmp_path)
    by_key, by_lattice = _both(engine, "points")
    assert by_key.measured == by_lattice.measured == "points"
    assert len(np.unique(by_key.cell)) > 500
    assert (by_key.cell == by_lattice.cell).all()
    assert (by_key.xy == by_lattice.xy).all()


def test_a_point_in_no_stored_cell_is_found_either_way(engine: Engine, tmp_path: Path) -> None:
    _demand(engine, tmp_path)
    with engine.begin() as conn:  # a stored point moved to a square the layer has no cell for
        area_id = conn.execute(text("SELECT DISTINCT area_id FROM demand_point_blocks")).scalar_one()
        rewrite_points(conn, area_id, lambda f: f.assign(x=f["x"] + np.r_[50000.0, np.zeros(len(f) - 1)],
                                                        y=f["y"] + np.r_[50000.0, np.zeros(len(f) - 1)]))
    for lattice in (False, True):
        with pytest.raises(InvalidInput, match="1 demand points"):
            _measured(engine, "points", lattice=lattice)
    by_key, by_lattice = _both(engine, "auto")
    assert by_key.measured == by_lattice.measured == "cells"
    assert by_key.notes == by_lattice.notes and by_key.notes


def test_lattice_numbers_round_trip() -> None:
    """A square's column and row made one number (``arrays.lattice_code``) come back (``lattice_squares``), negative
    and at the ends of 32 bits."""
    from yizhan.arrays import lattice_code, lattice_squares

    ix = np.array([-5, 0, 3, -2**31, 2**31 - 1, 3])
    iy = np.array([7, -1, 0, 2**31 - 1, -2**31, -4])
    col, row = lattice_squares(lattice_code(ix, iy))
    assert col.tolist() == ix.tolist() and row.tolist() == iy.tolist()
    assert len(set(lattice_code(ix, iy).tolist())) == len(set(zip(ix.tolist(), iy.tolist(), strict=True)))
