"""Demand layers (migration 0012): an import's cells are stored once, a run stores numbers only and stays readable
after the demand is imported again; the binary COPY encoder; the migration keeps the runs stored before it.
Real PostGIS, real files."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from alembic import command
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.gaps import gaps_from_cells, gaps_from_grid
from yizhan.coverage.runs import layer_cells, load_run
from yizhan.data.demand import import_demand
from yizhan.db.binary_copy import Column, encode_rows
from yizhan.db.engine import alembic_config, make_engine
from yizhan.errors import Conflict

WEST, SOUTH, EAST, NORTH = 116.3084, 39.9905, 116.3320, 40.0123  # the Wudaokou test area (conftest)


def _csv(tmp_path: Path, name: str, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path = tmp_path / name
    pd.DataFrame({"lon": rng.uniform(WEST, EAST, n).round(7), "lat": rng.uniform(SOUTH, NORTH, n).round(7),
                  "weight": rng.integers(1, 4, n)}).to_csv(path, index=False)
    return path


def _layers(engine: Engine) -> list[tuple[int, bool, int]]:
    """(id, current, cells) of every stored layer, by id."""
    with engine.connect() as conn:
        return [(int(r.id), r.retired_at is None, int(r.cells)) for r in conn.execute(text(
            "SELECT id, retired_at, cells FROM demand_layers ORDER BY id"))]


def test_reimport_keeps_a_run_and_drops_unused_layers(engine: Engine, seeded: AreaInfo, tmp_path: Path) -> None:
    import_demand(engine, _csv(tmp_path, "a.csv", 300, 1), area=seeded.name, cell_size_m=200)
    first = run_coverage(engine, area=seeded.name, radius_m=500)
    before = load_run(engine, first["run_id"])
    import_demand(engine, _csv(tmp_path, "b.csv", 500, 2), area=seeded.name, cell_size_m=400)
    import_demand(engine, _csv(tmp_path, "c.csv", 200, 3), area=seeded.name, cell_size_m=300)
    layers = _layers(engine)
    # the run's layer stays (retired), the unused middle one is gone, the newest is current
    assert [current for _, current, _ in layers] == [False, True]
    assert layers[0][2] == first["cells"]
    again = load_run(engine, first["run_id"])
    pd.testing.assert_frame_equal(before.cells.drop(columns="geometry"), again.cells.drop(columns="geometry"))
    assert before.cells.geometry.geom_equals_exact(again.cells.geometry, 1e-9).all()
    assert set(again.cells["cell_key"].str.split(":").str[0]) == {"200m"}
    with engine.connect() as conn:
        sizes = conn.execute(text("SELECT DISTINCT cell_size_m FROM area_cells")).scalars().all()
        assert sizes == [300.0]
        conn.execute(text("DELETE FROM coverage_runs WHERE id = :r"), {"r": first["run_id"]})
        conn.commit()
        assert conn.execute(text("SELECT count(*) FROM run_cells")).scalar_one() == 0  # went with the run
    import_demand(engine, _csv(tmp_path, "d.csv", 100, 4), area=seeded.name, cell_size_m=300)
    assert [current for _, current, _ in _layers(engine)] == [True]
    second = run_coverage(engine, area=seeded.name, radius_m=500)
    with engine.begin() as conn:  # an area's removal takes its runs, and their cells with them
        conn.execute(text("DELETE FROM areas WHERE id = :a"), {"a": seeded.id})
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM run_cells")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM demand_layers")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM demand_cells")).scalar_one() == 0
        assert conn.execute(text("SELECT to_regclass(:t)"), {"t": f"demand_point_blocks_a{seeded.id}"}).scalar() is None
    assert second["cells"] > 0


def test_run_stores_numbers_only(engine: Engine, seeded: AreaInfo, tmp_path: Path) -> None:
    import_demand(engine, _csv(tmp_path, "a.csv", 400, 5), area=seeded.name, cell_size_m=200)
    summary = run_coverage(engine, area=seeded.name, radius_m=300)
    with engine.connect() as conn:
        columns = conn.execute(text("SELECT column_name FROM information_schema.columns "
                                    "WHERE table_name = 'run_cells'")).scalars().all()
        rows = pd.read_sql(text("SELECT cell_key, weight, covered, covered_weight, nearest_station_id, distance_m, "
                                "x, y, "
                                "ST_X(ST_Transform(ST_Centroid(geom), 32650)) AS cx, "
                                "ST_Y(ST_Transform(ST_Centroid(geom), 32650)) AS cy "
                                "FROM run_cells_in_layer WHERE run_id = :r ORDER BY cell_key"), conn,
                           params={"r": summary["run_id"]})
        known = set(conn.execute(text("SELECT id FROM stations")).scalars().all())
    assert "geom" not in columns and "cell_key" not in columns and "weight" not in columns
    assert len(rows) == summary["cells"] and rows["weight"].sum() == pytest.approx(summary["demand_total"])
    # the stored centre is the polygon's centre (metres, UTM 50N)
    assert np.abs(rows["x"] - rows["cx"]).max() < 1e-3 and np.abs(rows["y"] - rows["cy"]).max() < 1e-3
    found = rows["nearest_station_id"].notna()
    assert found.any() and set(rows.loc[found, "nearest_station_id"].astype(int)) <= known
    assert rows.loc[~found, "distance_m"].isna().all()
    # measured on the points: a cell's covered orders are its points', and it is drawn covered at half or more
    assert summary["measured"] == "points"
    assert rows["covered_weight"].sum() == pytest.approx(summary["demand_covered"])
    assert (rows["covered"] == (rows["covered_weight"] >= 0.5 * rows["weight"])).all()


def test_binary_rows_round_trip(engine: Engine) -> None:
    rng = np.random.default_rng(11)
    n = 1000
    ints = rng.integers(-2**31, 2**31 - 1, n)
    small = rng.integers(-2**15, 2**15 - 1, n)
    floats = rng.normal(size=n) * 1e6
    flags = rng.random(n) < 0.5
    blobs = rng.integers(0, 256, (n, 21)).astype(np.uint8)
    nulls = [rng.random(n) < p for p in (0.0, 0.3, 0.5, 0.1, 0.9)]
    stream = encode_rows([Column(np.arange(n), "int4"), Column(ints, "int4", nulls[1]),
                          Column(small, "int2", nulls[2]), Column(floats, "float8", nulls[3]),
                          Column(flags, "bool", nulls[4]), Column(blobs, "bytea", nulls[2])])
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute("CREATE TEMP TABLE t (i int, a int, b smallint, f float8, g bool, h bytea)")
            with cur.copy("COPY t FROM STDIN (FORMAT BINARY)") as cp:
                cp.write(stream)
            cur.execute("SELECT i, a, b, f, g, h FROM t ORDER BY i")
            got = cur.fetchall()
    assert [r[0] for r in got] == list(range(n))
    for i, (_, a, b, f, g, h) in enumerate(got):
        assert a == (None if nulls[1][i] else int(ints[i]))
        assert b == (None if nulls[2][i] else int(small[i]))
        assert f == (None if nulls[3][i] else float(floats[i]))
        assert g == (None if nulls[4][i] else bool(flags[i]))
        assert h == (None if nulls[2][i] else bytes(blobs[i]))


def test_migration_keeps_runs_stored_before_it(db_url: str) -> None:
    """A database at 0011 with a run whose cells differ from the area's current ones: after 0012 both read back
    as they were, and a downgrade gives the run its copied cells back."""
    engine = make_engine(db_url)
    try:
        cfg = alembic_config(db_url)
        command.downgrade(cfg, "0011")
        square = "ST_MakeEnvelope({0}, {1}, {0} + 0.002, {1} + 0.002, 4326)"
        with engine.begin() as conn:
            area = conn.execute(text("INSERT INTO areas (name, crs_epsg, source) VALUES ('old', 32650, 'test') "
                                     "RETURNING id")).scalar_one()
            for key, lon, w in (("200m:1:1", 116.30, 2.0), ("200m:1:2", 116.31, 3.0)):
                conn.execute(text(f"INSERT INTO demand_cells (area_id, cell_key, cell_size_m, weight, points, geom, "
                                  f"centroid) VALUES (:a, :k, 200, :w, 1, {square.format(lon, 40.0)}, "
                                  f"ST_Centroid({square.format(lon, 40.0)}))"), {"a": area, "k": key, "w": w})
            run = conn.execute(text(
                "INSERT INTO coverage_runs (area_id, mode, radius_m, params, stations, cells, demand_total, "
                "demand_covered, covered_share, covered_area_m2, gaps) VALUES (:a, 'straight', 500, "
                "'{\"cell_size_m\": 200}', 0, 1, 7, 7, 1, 0, 0) RETURNING id"), {"a": area}).scalar_one()
            conn.execute(text(f"INSERT INTO run_cells (run_id, cell_key, weight, covered, distance_m, "
                              f"straight_distance_m, geom) VALUES (:r, '200m:9:9', 7, true, 120.5, 120.5, "
                              f"{square.format(116.32, 40.0)})"), {"r": run})
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            current = conn.execute(text("SELECT cell_key, weight FROM area_cells WHERE area_id = :a ORDER BY "
                                        "cell_key"), {"a": area}).all()
            kept = conn.execute(text("SELECT cell_key, weight, covered, distance_m, "
                                     "ST_XMin(geom) AS west FROM run_cells_in_layer WHERE run_id = :r"),
                                {"r": run}).all()
        assert [tuple(r) for r in current] == [("200m:1:1", 2.0), ("200m:1:2", 3.0)]
        assert [tuple(r) for r in kept] == [("200m:9:9", 7.0, True, 120.5, pytest.approx(116.32))]
        assert load_run(engine, run).cells["cell_key"].tolist() == ["200m:9:9"]
        command.downgrade(cfg, "0011")
        with engine.connect() as conn:
            back = conn.execute(text("SELECT cell_key, weight, distance_m FROM run_cells WHERE run_id = :r"),
                                {"r": run}).all()
            cells = conn.execute(text("SELECT count(*) FROM demand_cells WHERE area_id = :a"), {"a": area}).scalar()
        assert [tuple(r) for r in back] == [("200m:9:9", 7.0, 120.5)] and cells == 2
        command.upgrade(cfg, "head")
    finally:
        engine.dispose()


def test_gaps_on_the_lattice_equal_the_general_union() -> None:
    rng = np.random.default_rng(3)
    ix, iy = np.meshgrid(np.arange(-20, 25), np.arange(10, 50))
    ix, iy = ix.ravel(), iy.ravel()
    uncovered = rng.random(len(ix)) < 0.45
    weights = rng.gamma(2.0, 1.0, len(ix))
    size = 200.0
    cells = gpd.GeoDataFrame(geometry=shapely.box(ix * size, iy * size, (ix + 1) * size, (iy + 1) * size),
                             crs=32650)
    general = gaps_from_cells(cells, uncovered=uncovered, weights=weights)
    lattice = gaps_from_grid(ix, iy, size, 32650, uncovered=uncovered, weights=weights)
    assert len(lattice) == len(general) > 10
    assert lattice["demand"].tolist() == pytest.approx(general["demand"].tolist())
    assert lattice["cells"].tolist() == general["cells"].tolist()
    assert [sorted(m) for m in lattice["members"]] == [sorted(m) for m in general["members"]]
    assert lattice.geometry.symmetric_difference(general.geometry).area.max() < 1.0
    assert lattice.geometry.area.to_numpy() == pytest.approx(lattice["area_m2"].to_numpy())


def test_a_grid_import_is_no_lattice_and_its_gaps_come_from_its_polygons(engine: Engine, seeded: AreaInfo,
                                                                         tmp_path: Path) -> None:
    import_demand(engine, _csv(tmp_path, "a.csv", 300, 8), area=seeded.name, cell_size_m=250)
    with engine.connect() as conn:
        cells = layer_cells(conn, seeded.id)
    assert cells is not None and cells.lattice and cells.lattice_index() is not None
    lattice_run = run_coverage(engine, area=seeded.name, radius_m=400, measure="cells")
    # the same squares as an imported grid (keys of its own): no lattice, the gaps from the stored polygons
    run = load_run(engine, lattice_run["run_id"])
    grid = run.cells[["cell_key", "weight", "geometry"]].assign(cell_id=[f"g{i}" for i in range(len(run.cells))])
    path = tmp_path / "grid.geojson"
    grid.drop(columns="cell_key").to_file(path, driver="GeoJSON")
    import_demand(engine, path, area=seeded.name)
    with engine.connect() as conn:
        again = layer_cells(conn, seeded.id)
    assert again is not None and not again.lattice and again.lattice_index() is None
    grid_run = run_coverage(engine, area=seeded.name, radius_m=400, measure="cells")
    assert grid_run["gaps"] == lattice_run["gaps"] > 0
    assert grid_run["covered_share"] == pytest.approx(lattice_run["covered_share"], abs=1e-12)
    a, b = load_run(engine, lattice_run["run_id"]).gaps, load_run(engine, grid_run["run_id"]).gaps
    assert a["demand"].tolist() == pytest.approx(b["demand"].tolist())
    assert a["area_m2"].tolist() == pytest.approx(b["area_m2"].tolist(), rel=1e-6)


def test_a_run_whose_demand_was_imported_again_meanwhile_is_refused(engine: Engine, seeded: AreaInfo,
                                                                     tmp_path: Path) -> None:
    """An import that replaces (and deletes) the layer a run is computing on, committed before the run stores:
    the run is refused in one line (no run half stored, none deleted later), and runs again fine."""
    import_demand(engine, _csv(tmp_path, "a.csv", 300, 12), area=seeded.name, cell_size_m=200)
    second = _csv(tmp_path, "b.csv", 300, 13)

    def meanwhile(msg: str) -> None:
        if msg.startswith("merging"):
            import_demand(engine, second, area=seeded.name, cell_size_m=200)

    with pytest.raises(Conflict, match="run it again"):
        run_coverage(engine, area=seeded.name, radius_m=500, measure="cells", progress=meanwhile)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM coverage_runs")).scalar_one() == 0
    assert run_coverage(engine, area=seeded.name, radius_m=500, measure="cells")["cells"] > 0
