"""Demand imported into H3 hexagons (``yizhan demand import FILE --h3 9``): the cells and their sums are those h3
itself gives point by point, their polygons valid WGS 84 hexagons, the layer no lattice and its params recording
the resolution; a straight-line run on the layer measures the points in their own hexagons and its share is the
one computed here from the points and the stations; a resolution out of range is refused in one line. Real files,
a real PostGIS area, the command as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import pytest
from cli_runner import run_cli
from pyproj import Geod, Transformer
from shapely import wkb
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo
from yizhan.coverage.analysis import run_coverage
from yizhan.data.demand import import_demand
from yizhan.data.h3_cells import H3Cells, H3Sums, cell_rings, cell_rows, cell_size_m, check_resolution
from yizhan.errors import InvalidInput
from yizhan.stations.service import import_stations

WEST, SOUTH, EAST, NORTH = 116.3084, 39.9905, 116.3320, 40.0123  # the Wudaokou test area (conftest)
BBOX = f"{WEST},{SOUTH},{EAST},{NORTH}"


def _orders(path: Path, n: int, seed: int) -> pd.DataFrame:
    """``n`` orders at random positions in the area written as a CSV at ``path`` (lon, lat, weight)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"lon": rng.uniform(WEST, EAST, n).round(7), "lat": rng.uniform(SOUTH, NORTH, n).round(7),
                          "weight": rng.integers(1, 6, n).astype(float)})
    frame.to_csv(path, index=False)
    return frame


def _expected(orders: pd.DataFrame, res: int) -> pd.DataFrame:
    """The orders summed per H3 cell, each point's cell found by h3's own ``latlng_to_cell``: key, weight, count."""
    cells = [h3.latlng_to_cell(lat, lon, res) for lon, lat in zip(orders["lon"], orders["lat"], strict=True)]
    frame = pd.DataFrame({"cell": cells, "w": orders["weight"]})
    sums = frame.groupby("cell").agg(weight=("w", "sum"), points=("w", "size")).reset_index()
    sums["cell_key"] = [f"h3:{res}:{c}" for c in sums["cell"]]
    return sums.sort_values("cell_key").reset_index(drop=True)


def _cells(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(
            "SELECT layer_id, cell_key, cell_size_m, weight, points, ST_AsBinary(geom) AS geom, "
            "ST_AsBinary(centroid) AS c, ST_IsValid(geom) AS valid, ST_SRID(geom) AS srid, x, y "
            "FROM area_cells ORDER BY cell_key")).mappings().all())


def _layer(engine: Engine, layer_id: int) -> tuple[bool, dict[str, object], float]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT lattice, params, cell_size_m FROM demand_layers WHERE id = :l"),
                           {"l": layer_id}).one()
    return bool(row.lattice), dict(row.params), float(row.cell_size_m)


@pytest.mark.parametrize("fast", [True, False])
def test_h3_cells_are_those_of_h3_point_by_point(engine, wudaokou, tmp_path, fast):
    """Fast and general paths alike: one stored cell per H3 cell of the points, with their summed weight and count;
    each polygon a valid WGS 84 polygon that is the cell's boundary as h3 draws it, its centre h3's centre and
    ``x``, ``y`` that centre in metres of the area's CRS; the layer no lattice, its params the resolution."""
    orders = _orders(tmp_path / "orders.csv", 3000, seed=11)
    summary = import_demand(engine, tmp_path / "orders.csv", area="wudaokou", h3_res=9, fast=fast)
    want = _expected(orders, 9)
    got = _cells(engine)
    assert summary.cells == len(got) == len(want) > 20
    assert summary.points == 3000 and summary.weight_total == orders["weight"].sum()
    assert got["cell_key"].tolist() == want["cell_key"].tolist()
    assert got["weight"].tolist() == want["weight"].tolist()
    assert got["points"].tolist() == want["points"].tolist()
    assert got["valid"].all() and (got["srid"] == 4326).all()
    to_m = Transformer.from_crs(4326, wudaokou.crs_epsg, always_xy=True)
    for cell, geom, centre, x, y in zip(want["cell"], got["geom"], got["c"], got["x"], got["y"], strict=True):
        ring = np.asarray(wkb.loads(bytes(geom)).exterior.coords)
        boundary = np.asarray(h3.cell_to_boundary(cell))[:, ::-1]  # (lat, lng) pairs as lon, lat
        assert np.allclose(ring[:-1], boundary, rtol=0, atol=1e-12) and np.array_equal(ring[0], ring[-1])
        lat, lon = h3.cell_to_latlng(cell)
        assert np.allclose(wkb.loads(bytes(centre)).coords[0], (lon, lat), rtol=0, atol=1e-12)
        assert np.allclose((x, y), to_m.transform(lon, lat), rtol=0, atol=1e-6)
    lattice, params, size = _layer(engine, int(got["layer_id"].iloc[0]))
    assert not lattice and params == {"h3": True, "h3_res": 9}
    assert size == summary.cell_size_m == pytest.approx(np.sqrt(h3.average_hexagon_area(9, unit="m^2")))
    assert (got["cell_size_m"] == size).all()


def test_h3_append_sums_all_the_points(engine, wudaokou, tmp_path):
    """``append`` adds a file's points to the area's and sums them all again into their hexagons."""
    first = _orders(tmp_path / "a.csv", 500, seed=1)
    second = _orders(tmp_path / "b.csv", 700, seed=2)
    import_demand(engine, tmp_path / "a.csv", area="wudaokou", h3_res=8)
    summary = import_demand(engine, tmp_path / "b.csv", area="wudaokou", h3_res=8, append=True)
    want = _expected(pd.concat([first, second], ignore_index=True), 8)
    got = _cells(engine)
    assert summary.cells == len(want) and summary.points == 700
    assert got["cell_key"].tolist() == want["cell_key"].tolist()
    assert got["points"].tolist() == want["points"].tolist()
    assert got["weight"].tolist() == want["weight"].tolist()


def test_sums_by_batch_are_those_summed_at_once():
    """Points added batch by batch, new cells arriving in each, give the sums of one pass over all the points."""
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(WEST, EAST, 5000), rng.uniform(SOUTH, NORTH, 5000)
    weight = rng.random(5000) * 7
    once = H3Sums(10)
    once.add_points(lon, lat, weight)
    batched = H3Sums(10)
    for part in np.array_split(np.arange(5000), 7):
        batched.add_points(lon[part], lat[part], weight[part])
    a, b = once.cells(), batched.cells()
    assert np.array_equal(a.cells, b.cells) and np.array_equal(a.points, b.points)
    assert np.array_equal(a.weight, b.weight)  # the same additions in the same order
    assert a.points.sum() == 5000 and np.all(np.diff(a.cells.astype(np.int64)) > 0)


@pytest.mark.parametrize("res", [6, 11, 0, -1])
def test_a_resolution_out_of_range_is_refused(engine, wudaokou, tmp_path, res):
    _orders(tmp_path / "orders.csv", 10, seed=4)
    with pytest.raises(InvalidInput, match=f"H3 分辨率 {res} .* / H3 resolution {res}: expected 7 to 10"):
        import_demand(engine, tmp_path / "orders.csv", area="wudaokou", h3_res=res)
    with pytest.raises(InvalidInput):
        check_resolution(res)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM demand_layers")).scalar_one() == 0


def _stations(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Three stations in the area, written as a stations CSV at ``path``; their lon, lat degrees."""
    lon = np.array([116.3120, 116.3260, 116.3300])
    lat = np.array([39.9950, 40.0050, 40.0110])
    rows = "".join(f"H{i},站{i},small,{a:.7f},{b:.7f},,,,,,,,\n" for i, (a, b) in enumerate(zip(lon, lat, strict=True)))
    path.write_text("id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status\n" + rows)
    return lon, lat


def test_straight_run_on_h3_cells_measures_the_points(engine, wudaokou: AreaInfo, tmp_path):
    """A straight-line run of 600 m on an H3 layer: its share is the weight of the points within 600 m (on the
    ellipsoid) of a station over all the weight; its cells are the hexagons, each drawn covered when at least half
    of its orders are; its gaps are found on the hexagons' polygons."""
    orders = _orders(tmp_path / "orders.csv", 2000, seed=7)
    st_lon, st_lat = _stations(tmp_path / "st.csv")
    import_stations(engine, tmp_path / "st.csv", area="wudaokou")
    import_demand(engine, tmp_path / "orders.csv", area="wudaokou", h3_res=9)
    run = run_coverage(engine, area="wudaokou", radius_m=600.0)
    geod = Geod(ellps="WGS84")
    lon, lat, w = orders["lon"].to_numpy(), orders["lat"].to_numpy(), orders["weight"].to_numpy()
    dist = np.min([geod.inv(lon, lat, np.full(len(lon), a), np.full(len(lon), b))[2]
                   for a, b in zip(st_lon, st_lat, strict=True)], axis=0)
    covered = dist <= 600.0
    assert 0.05 < covered.mean() < 0.95  # some in reach, some not
    assert run["demand_total"] == w.sum()
    assert run["demand_covered"] == pytest.approx(w[covered].sum(), rel=1e-12)  # whole orders: a miss is >= 1
    assert run["covered_share"] == pytest.approx(w[covered].sum() / w.sum(), abs=1e-6)  # the summary's 6 digits
    cells = _expected(orders, 9)
    cell_of = pd.Index(cells["cell"]).get_indexer([h3.latlng_to_cell(b, a, 9) for a, b in zip(lon, lat,
                                                                                              strict=True)])
    covered_w = np.bincount(cell_of, weights=w * covered, minlength=len(cells))
    drawn = covered_w >= 0.5 * cells["weight"].to_numpy()
    with engine.connect() as conn:
        stored = pd.DataFrame(conn.execute(text(
            "SELECT cell_key, covered FROM run_cells_in_layer WHERE run_id = :r ORDER BY cell_key"),
            {"r": run["run_id"]}).mappings().all())
    assert stored["cell_key"].tolist() == cells["cell_key"].tolist()
    assert stored["covered"].to_numpy(bool).tolist() == drawn.tolist()
    assert run["gaps"] >= 1


def test_the_command_imports_hexagons_and_runs_map_and_report(cli_env, tmp_path):
    """``yizhan demand import FILE --h3 9``, then a run, its map and its report; ``--h3 12`` refused in one line."""
    run_cli("area", "create", "wudaokou", "--bbox", BBOX, env=cli_env)
    _stations(tmp_path / "st.csv")
    run_cli("stations", "import", str(tmp_path / "st.csv"), env=cli_env)
    orders = _orders(tmp_path / "orders.csv", 800, seed=9)
    out = run_cli("demand", "import", str(tmp_path / "orders.csv"), "--h3", "9", env=cli_env).stdout
    cells = len(_expected(orders, 9))
    assert f"800 个需求点 → {cells} 个 H3 9 级六边形" in out and f"800 points -> {cells} H3 res 9 hexagons" in out
    bad = run_cli("demand", "import", str(tmp_path / "orders.csv"), "--h3", "12", env=cli_env, check=False)
    assert bad.returncode != 0
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "H3 resolution 12: expected 7 to 10" in lines[0], bad.stderr
    summary = json.loads(run_cli("coverage", "--radius", "600", "--json", env=cli_env).stdout)
    assert summary["demand_total"] == orders["weight"].sum() and 0 < summary["covered_share"] < 1
    assert summary["gaps"] >= 1
    run_cli("map", "--out", str(tmp_path / "m.html"), env=cli_env)
    assert (tmp_path / "m.html").stat().st_size > 0
    run_cli("report", "--out-dir", str(tmp_path / "rep"), env=cli_env)
    gaps = pd.read_csv(tmp_path / "rep" / f"gaps_run{summary['run_id']}.csv")
    assert len(gaps) == summary["gaps"]


def test_cell_size_is_the_side_of_the_average_hexagon():
    assert cell_size_m(9) == pytest.approx(np.sqrt(h3.average_hexagon_area(9, unit="m^2")))
    assert 300 < cell_size_m(9) < 350 and cell_size_m(7) > cell_size_m(8) > cell_size_m(9) > cell_size_m(10)


def test_cells_of_other_shapes_keep_their_place_in_the_rows(wudaokou: AreaInfo):
    """A pentagon and cells cut by an icosahedron's edge (7 or more vertices) among hexagons: each ring is the
    boundary h3 draws, and the rows of all the cells are those of each cell alone, in the cells' order."""
    pentagon = h3.str_to_int(sorted(h3.get_pentagons(9))[0])
    near = [h3.str_to_int(c) for c in h3.grid_disk(h3.int_to_str(pentagon), 3)]
    hexagon = h3.str_to_int(h3.latlng_to_cell(40.0, 116.32, 9))
    cells = np.array(sorted({*near, hexagon}), np.uint64)
    where, rings = cell_rings(cells)
    sizes = {ring.shape[1] - 1 for ring in rings}
    assert 6 in sizes and len(sizes) >= 3, sizes  # at resolution 9 the pentagon draws 10 vertices
    for at, ring in zip(where, rings, strict=True):
        for i, r in zip(at, ring, strict=True):
            assert np.array_equal(r[:-1], np.asarray(h3.cell_to_boundary(h3.int_to_str(int(cells[i]))))[:, ::-1])
            assert np.array_equal(r[0], r[-1])
    weight = np.arange(len(cells), dtype=float)
    whole = cell_rows(wudaokou, H3Cells(cells, weight, np.arange(len(cells)), 9), 5)
    alone = b"".join(cell_rows(wudaokou, H3Cells(cells[i:i + 1], weight[i:i + 1], np.array([i]), 9), 5)
                     for i in range(len(cells)))
    assert whole == alone


@pytest.mark.parametrize("res", [9, 7])
def test_a_run_in_parts_on_h3_cells_equals_the_run_in_one(engine, wudaokou, tmp_path, settings, db_url, client, res):
    """A straight-line run in two parts on Dask measures each hexagon's points as the run in one process does (the
    points keyed by their own H3 cells, read within the hexagons' farthest vertex of a part): the same covered
    weight cell by cell and the same share (at resolution 7 a hexagon is wider than a part)."""
    _orders(tmp_path / "orders.csv", 2000, seed=7)
    _stations(tmp_path / "st.csv")
    import_stations(engine, tmp_path / "st.csv", area="wudaokou")
    import_demand(engine, tmp_path / "orders.csv", area="wudaokou", h3_res=res)
    one = run_coverage(engine, area="wudaokou", radius_m=600.0)
    two = run_coverage(engine, area="wudaokou", radius_m=600.0, parts=2, scheduler=client,
                       settings=settings.model_copy(update={"database_url": db_url}))
    assert 0 < one["demand_covered"] < one["demand_total"]
    assert two["demand_covered"] == one["demand_covered"] and two["covered_share"] == one["covered_share"]
    with engine.connect() as conn:
        cells = pd.DataFrame(conn.execute(text(
            "SELECT run_id, cell_key, covered, covered_weight FROM run_cells_in_layer ORDER BY run_id, cell_key")
        ).mappings().all())
    a, b = (cells[cells["run_id"] == r["run_id"]].reset_index(drop=True) for r in (one, two))
    assert len(a) == len(b) > 0 and a["covered_weight"].notna().all()
    assert a[["cell_key", "covered", "covered_weight"]].equals(b[["cell_key", "covered", "covered_weight"]])
