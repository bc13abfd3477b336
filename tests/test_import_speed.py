"""The demand import's cells in a table per layer (migration 0015): the stored cells are those the lattice defines
(keys, weights, counts, polygons and centres, in the order of their ids) whichever way they are encoded; an import
that fails after its cells were written leaves the area's layer, cells and points as they were; the migration moves
the cells into their layers' tables and back. Real files, a real PostGIS area."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from alembic import command
from point_rows import point_frame
from pyproj import Transformer
from shapely import wkb
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo
from yizhan.data import demand, demand_fast
from yizhan.data.demand import import_demand
from yizhan.db.engine import alembic_config, make_engine

WEST, SOUTH, EAST, NORTH = 116.3084, 39.9905, 116.3320, 40.0123  # the Wudaokou test area (conftest)


def _orders(path: Path, n: int, seed: int) -> pd.DataFrame:
    """``n`` orders at random positions in the area written as a CSV at ``path`` (lon, lat, weight, time)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"lon": rng.uniform(WEST, EAST, n).round(7), "lat": rng.uniform(SOUTH, NORTH, n).round(7),
                          "weight": rng.integers(1, 6, n).astype(float),
                          "time": (pd.Timestamp("2026-11-23 00:00") + pd.to_timedelta(rng.integers(0, 10_080, n),
                                                                                     unit="min")).astype(str)})
    frame.to_csv(path, index=False)
    return frame


def _cells(engine: Engine) -> pd.DataFrame:
    """The area's current cells in the order of their ids, polygons and centres as WKB."""
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(
            "SELECT id, layer_id, cell_key, cell_size_m, weight, points, ST_AsBinary(geom) AS geom, "
            "ST_AsBinary(centroid) AS c, x, y FROM area_cells ORDER BY id")).mappings().all())


def _points(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return point_frame(conn)[["id", "lon", "lat", "x", "y", "weight", "observed_at"]]


def _tables(engine: Engine) -> list[str]:
    """The tables of cells per layer, attached or not."""
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT relname FROM pg_class WHERE relname ~ '^demand_cells_l[0-9]+$' "
                                        "AND relkind = 'r'")).scalars())


def _partitions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT inhrelid::regclass::text FROM pg_inherits "
                                        "WHERE inhparent = 'demand_cells'::regclass")).scalars())


def _expected(orders: pd.DataFrame, area: AreaInfo, size: float) -> pd.DataFrame:
    """The cells the lattice defines for ``orders``, computed here point by point: per square of ``size`` metres in
    the area's CRS (``floor(x / size)``), its key, summed weight, count, and its corners and centre in WGS 84, in
    the order of the squares (ix, then iy)."""
    x, y = Transformer.from_crs(4326, area.crs_epsg, always_xy=True).transform(orders["lon"].to_numpy(),
                                                                                orders["lat"].to_numpy())
    grid = pd.DataFrame({"ix": np.floor(np.asarray(x) / size).astype(int),
                         "iy": np.floor(np.asarray(y) / size).astype(int), "w": orders["weight"]})
    sums = grid.groupby(["ix", "iy"]).agg(weight=("w", "sum"), points=("w", "size")).reset_index()
    back = Transformer.from_crs(area.crs_epsg, 4326, always_xy=True)
    rows = []
    for ix, iy, w, n in sums.itertuples(index=False):
        corners = [(ix, iy), (ix, iy + 1), (ix + 1, iy + 1), (ix + 1, iy), (ix, iy)]
        ring = [back.transform(a * size, b * size) for a, b in corners]
        rows.append({"cell_key": f"{size:g}m:{ix}:{iy}", "weight": w, "points": n, "ring": ring,
                     "centre": back.transform((ix + 0.5) * size, (iy + 0.5) * size),
                     "x": (ix + 0.5) * size, "y": (iy + 0.5) * size})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("part", [7, demand_fast.CELL_ROWS])
def test_cells_are_the_lattice_in_the_order_of_their_ids(engine, wudaokou, tmp_path, monkeypatch, part):
    """A fast import's cells, written in parts of ``part`` cells into the layer's own table: each cell's key,
    weight, count, polygon (its corners from west-south round to west-south) and centre are those computed point
    by point, in the order of their ids; the layer is marked a lattice; its table is a partition of
    ``demand_cells`` and the retired layer's table is gone."""
    monkeypatch.setattr(demand_fast, "CELL_ROWS", part)
    orders = _orders(tmp_path / "orders.csv", 2000, seed=5)
    first = import_demand(engine, tmp_path / "orders.csv", area="wudaokou", cell_size_m=150.0)
    summary = import_demand(engine, tmp_path / "orders.csv", area="wudaokou", cell_size_m=150.0)
    assert first == summary
    got = _cells(engine)
    want = _expected(orders, wudaokou, 150.0)
    assert len(got) == summary.cells == len(want) > 7  # more than one part of 7
    assert got["cell_key"].tolist() == want["cell_key"].tolist()
    assert got["id"].is_monotonic_increasing
    assert got["points"].tolist() == want["points"].tolist()
    assert got["weight"].tolist() == want["weight"].tolist()
    assert got["x"].tolist() == want["x"].tolist() and got["y"].tolist() == want["y"].tolist()
    rings = np.array([wkb.loads(bytes(g)).exterior.coords for g in got["geom"]])
    assert np.array_equal(rings, np.array(want["ring"].tolist()))
    centres = np.array([wkb.loads(bytes(g)).coords[0] for g in got["c"]])
    assert np.array_equal(centres, np.array(want["centre"].tolist()))
    layer = int(got["layer_id"].iloc[0])
    with engine.connect() as conn:  # and PostGIS's own envelope of each key's square and its centre, to 1e-9 degrees
        square = "ST_Transform(ST_MakeEnvelope(ix * s, iy * s, (ix + 1) * s, (iy + 1) * s, 32650), 4326)"
        centre = "ST_Transform(ST_SetSRID(ST_MakePoint((ix + 0.5) * s, (iy + 0.5) * s), 32650), 4326)"
        off = conn.execute(text(f"""
            SELECT max(ST_HausdorffDistance(geom, {square})), max(ST_Distance(centroid, {centre}))
            FROM (SELECT geom, centroid, cell_size_m AS s, split_part(cell_key, ':', 2)::bigint AS ix,
                         split_part(cell_key, ':', 3)::bigint AS iy FROM area_cells) c""")).one()
        assert off[0] < 1e-9 and off[1] < 1e-9
        assert conn.execute(text("SELECT lattice FROM demand_layers WHERE id = :l"), {"l": layer}).scalar_one()
        assert conn.execute(text("SELECT count(*) FROM demand_layers")).scalar_one() == 1
    assert _partitions(engine) == _tables(engine) == [f"demand_cells_l{layer}"]


def test_a_failed_import_keeps_the_layer_its_cells_and_points(engine, wudaokou, tmp_path, monkeypatch):
    """An import that fails after its points and cells were written (at the swap of the points) leaves the area's
    layer, cells and points as they were, and no table of cells behind; the next import goes through."""
    _orders(tmp_path / "first.csv", 1500, seed=11)
    import_demand(engine, tmp_path / "first.csv", area="wudaokou")
    cells, points, tables = _cells(engine), _points(engine), _tables(engine)
    _orders(tmp_path / "second.csv", 1800, seed=12)
    written: list[int] = []

    def fail(raw: object, loaded: object) -> None:
        with engine.connect() as other:  # another connection sees nothing of the import yet
            written.append(other.execute(text("SELECT count(*) FROM pg_class WHERE relname ~ "
                                              "'^demand_cells_l[0-9]+$'")).scalar_one())
        raise RuntimeError("the swap failed")

    monkeypatch.setattr(demand, "swap_points", fail)
    with pytest.raises(RuntimeError, match="the swap failed"):
        import_demand(engine, tmp_path / "second.csv", area="wudaokou")
    assert written == [len(tables)]
    pd.testing.assert_frame_equal(_cells(engine), cells)
    pd.testing.assert_frame_equal(_points(engine), points)
    assert _tables(engine) == _partitions(engine) == tables
    monkeypatch.undo()
    again = import_demand(engine, tmp_path / "second.csv", area="wudaokou")
    assert again.points == 1800 and len(_points(engine)) == 1800


def test_migration_moves_the_cells_to_their_layers_and_back(db_url, wudaokou, tmp_path):
    """Cells of a current layer and of a retired one a run still refers to: down to 0014 they are in one table, as
    they were, with their ids; up again each layer's cells are in its own partition, the same; deleting the run's
    layer drops its table."""
    engine = make_engine(db_url)
    try:
        _orders(tmp_path / "a.csv", 800, seed=21)
        _orders(tmp_path / "b.csv", 900, seed=22)
        import_demand(engine, tmp_path / "a.csv", area="wudaokou")
        with engine.begin() as conn:
            old = conn.execute(text("SELECT id FROM demand_layers WHERE retired_at IS NULL")).scalar_one()
            run = conn.execute(text(
                "INSERT INTO coverage_runs (area_id, mode, radius_m, params, stations, cells, demand_total, "
                "demand_covered, covered_share, covered_area_m2, gaps, layer_id) VALUES (:a, 'straight', 500, '{}', "
                "0, 1, 1, 1, 1, 0, 0, :l) RETURNING id"), {"a": wudaokou.id, "l": old}).scalar_one()
        import_demand(engine, tmp_path / "b.csv", area="wudaokou")

        def every_cell() -> pd.DataFrame:
            with engine.connect() as conn:
                return pd.DataFrame(conn.execute(text(
                    "SELECT id, area_id, layer_id, cell_key, cell_size_m, weight, points, ST_AsBinary(geom) AS g, "
                    "ST_AsBinary(centroid) AS c, x, y FROM demand_cells ORDER BY id")).mappings().all())

        before = every_cell()
        assert before["layer_id"].nunique() == 2
        layers = sorted(int(v) for v in before["layer_id"].unique())
        assert _partitions(engine) == [f"demand_cells_l{v}" for v in layers]
        cfg = alembic_config(db_url)
        command.downgrade(cfg, "0014")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'demand_cells'")).scalar() == "r"
        assert _tables(engine) == []
        pd.testing.assert_frame_equal(every_cell(), before)
        command.upgrade(cfg, "head")
        pd.testing.assert_frame_equal(every_cell(), before)
        assert _partitions(engine) == [f"demand_cells_l{v}" for v in layers]
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM coverage_runs WHERE id = :r"), {"r": run})
            conn.execute(text("DELETE FROM demand_layers WHERE id = :l"), {"l": old})
        assert _tables(engine) == [f"demand_cells_l{max(layers)}"]
        _orders(tmp_path / "c.csv", 700, seed=23)
        assert import_demand(engine, tmp_path / "c.csv", area="wudaokou").points == 700
        assert len(_partitions(engine)) == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("dense", [demand_fast.DENSE_CELLS, 10])
def test_cells_summed_by_batch_are_those_summed_at_once(wudaokou, monkeypatch, dense):
    """Points summed into their squares batch by batch (``CellSums``: the area's box in one array, squares beyond it
    kept apart; or, with a box of more than ``dense`` squares, all kept) give the cells ``cells_at`` gives for all
    the points at once: the same squares in the same order, the same counts and, to the last bit, the same sums of
    fractional weights."""
    monkeypatch.setattr(demand_fast, "DENSE_CELLS", dense)
    rng = np.random.default_rng(31)
    n = 50_000
    lon = rng.uniform(WEST - 0.05, EAST + 0.05, n)  # a fifth or so beyond the area's box
    lat = rng.uniform(SOUTH - 0.05, NORTH + 0.05, n)
    weight = rng.uniform(0, 7, n) / 3
    x, y = demand_fast.metres(lon, lat, wudaokou.crs_epsg)
    ix, iy = demand_fast.grid_indices(x, y, 120.0)
    sums = demand_fast.CellSums(wudaokou, 120.0)
    assert (sums.sums is None) == (dense == 10)
    for start in range(0, n, 7_000):
        part = slice(start, start + 7_000)
        sums.add(ix[part], iy[part], weight[part])
    assert sums.ixs and 0 < sum(len(a) for a in sums.ixs) < (n if dense > 10 else n + 1)
    got, want = sums.cells(), demand_fast.cells_at(ix, iy, weight, cell_size_m=120.0)
    assert len(got) == len(want) > 1000
    for field in ("ix", "iy", "points", "weight"):
        assert np.array_equal(getattr(got, field), getattr(want, field)), field
