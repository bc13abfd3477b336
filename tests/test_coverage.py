"""Demand aggregation, straight-line coverage, gaps and gap reports on hand-made and real OSM-derived data."""

from __future__ import annotations

import io
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer
from shapely.geometry import box
from sqlalchemy import text

from yizhan.areas import ensure_area
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.euclidean import nearest_from_arrays
from yizhan.coverage.gaps import gaps_from_cells
from yizhan.coverage.runs import load_run
from yizhan.data.demand import import_demand
from yizhan.errors import ImportRejected, InvalidInput
from yizhan.reports.run_report import gaps_csv, gaps_geojson
from yizhan.reports.writer import write_gap_report
from yizhan.stations.service import import_stations

UTM50 = 32650
TO_LL = Transformer.from_crs(UTM50, 4326, always_xy=True)
ORIGIN = (440_000.0, 4_427_000.0)  # metres in UTM 50N, near Wudaokou


def _ll(x, y):  # type: ignore[no-untyped-def]
    return TO_LL.transform(ORIGIN[0] + np.asarray(x, float), ORIGIN[1] + np.asarray(y, float))


@pytest.fixture
def grid_area(engine):
    """A 6 x 3 km area in UTM 50N; stations at x=1000 and x=5000 (y=1500); demand at every 200 m cell centre."""
    lo, la = _ll([0, 6000], [0, 3000])
    with engine.begin() as conn:
        return ensure_area(conn, "grid", boundary=box(lo[0], la[0], lo[1], la[1]), crs_epsg=UTM50)


def _write_stations(tmp_path, xs, ys, status=None):  # type: ignore[no-untyped-def]
    lon, lat = _ll(xs, ys)
    rows = "".join(f"G{i},站{i},small,{a:.9f},{b:.9f},,,,,,,,{(status or {}).get(i, '')}\n"
                   for i, (a, b) in enumerate(zip(lon, lat, strict=True)))
    p = tmp_path / "st.csv"
    p.write_text("id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status\n" + rows)
    return p


def _write_demand(tmp_path, weight=lambda x, y: 1.0):  # type: ignore[no-untyped-def]
    xs, ys = np.meshgrid(np.arange(100, 6000, 200), np.arange(100, 3000, 200))
    xs, ys = xs.ravel(), ys.ravel()
    lon, lat = _ll(xs, ys)
    p = tmp_path / "demand.csv"
    pd.DataFrame({"lon": lon, "lat": lat, "weight": [weight(x, y) for x, y in zip(xs, ys, strict=True)]}
                 ).to_csv(p, index=False, float_format="%.10f")
    return p, xs, ys


def test_nearest_from_arrays_core():
    res = nearest_from_arrays(np.array([[0, 0], [900, 0], [1001, 0]]), np.array([[0, 0]]), 1000)
    assert res.covered.tolist() == [True, True, False]
    assert res.distance_m.tolist() == [0, 900, 1001]
    empty = nearest_from_arrays(np.array([[0.0, 0.0]]), np.empty((0, 2)), 1000)
    assert empty.station.tolist() == [-1] and not empty.covered.any()


def test_gaps_merge_adjacent_cells_and_rank_by_demand():
    cells = gpd.GeoDataFrame(geometry=[box(x, y, x + 100, y + 100) for x, y in
                                       [(0, 0), (100, 0), (400, 0), (500, 0), (600, 0), (900, 900)]], crs=UTM50)
    uncovered = np.array([True, True, True, True, True, True])
    weights = np.array([5.0, 5.0, 1.0, 1.0, 1.0, 20.0])
    gaps = gaps_from_cells(cells, uncovered=uncovered, weights=weights)
    assert gaps["rank"].tolist() == [1, 2, 3]
    assert gaps["demand"].tolist() == [20.0, 10.0, 3.0]
    assert gaps["cells"].tolist() == [1, 2, 3]
    assert gaps["area_m2"].tolist() == pytest.approx([1e4, 2e4, 3e4])
    assert sorted(gaps["members"][1]) == [0, 1]


def test_demand_aggregates_in_postgis(engine, grid_area, tmp_path):
    path, xs, _ = _write_demand(tmp_path, weight=lambda x, y: 2.0 if x < 3000 else 1.0)
    s = import_demand(engine, path, area="grid", cell_size_m=200)
    assert s.points == len(xs) == s.cells == 450
    assert s.weight_total == pytest.approx(450 * 1.5)
    s400 = import_demand(engine, path, area="grid", cell_size_m=400)  # replaces, re-aggregates
    assert s400.points == 450 and s400.weight_total == pytest.approx(675)
    with engine.connect() as conn:
        n_points = conn.execute(text("SELECT coalesce(sum(n), 0) FROM demand_point_blocks")).scalar_one()
        sizes = conn.execute(text("SELECT DISTINCT cell_size_m FROM area_cells")).scalars().all()
        area = conn.execute(text("SELECT avg(ST_Area(ST_Transform(geom, 32650))) FROM area_cells")).scalar_one()
    assert n_points == 450 and sizes == [400.0] and area == pytest.approx(400 * 400, rel=1e-6)


def test_demand_bad_rows_and_outside_points(engine, grid_area, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("lon,lat,weight,timestamp\n116.3,40.0,1,\n116.3,abc,1,\n116.3,40.0,-2,\n116.3,40.0,1,yesterday\n")
    with pytest.raises(ImportRejected) as info:
        import_demand(engine, bad, area="grid")
    assert {(p.row, p.field) for p in info.value.problems} == {(3, "lat"), (4, "weight"), (5, "timestamp")}
    far = tmp_path / "far.csv"
    lon, lat = _ll([3000], [1500])
    far.write_text(f"lon,lat\n{lon[0]},{lat[0]}\n121.47,31.23\n")
    with pytest.raises(ImportRejected, match=r"row 3, lon/lat.*inside area 'grid'"):
        import_demand(engine, far, area="grid")
    s = import_demand(engine, far, area="grid", clip=True)
    assert (s.points, s.dropped_outside) == (1, 1)
    with pytest.raises(InvalidInput, match="cell size"):
        import_demand(engine, far, area="grid", cell_size_m=5)


def test_straight_line_coverage_known_answer(engine, grid_area, tmp_path):
    import_stations(engine, _write_stations(tmp_path, [1000, 5000, 3000], [1500, 1500, 1500], {2: "closed"}),
                    area="grid")
    path, xs, ys = _write_demand(tmp_path)
    import_demand(engine, path, area="grid", cell_size_m=200)
    summary = run_coverage(engine, area="grid", radius_m=1000)
    d = np.minimum(np.hypot(xs - 1000, ys - 1500), np.hypot(xs - 5000, ys - 1500))
    expected = float((d <= 1000).sum())
    assert summary["stations"] == 2  # the closed one does not count
    assert summary["demand_total"] == 450
    assert summary["demand_covered"] == pytest.approx(expected)
    assert summary["covered_share"] == pytest.approx(expected / 450, abs=1e-6)
    # covered area: two 1 km discs clipped by the 3 km-high box (the discs fit: 1000 < 1500), pi km² each
    assert summary["covered_area_km2"] == pytest.approx(2 * np.pi, rel=0.01)
    run = load_run(engine, summary["run_id"])
    assert len(run.gaps) == summary["gaps"] >= 1
    assert run.gaps["demand"].sum() == pytest.approx(450 - expected)
    assert run.gaps["rank"].tolist() == list(range(1, len(run.gaps) + 1))
    assert run.gaps["demand"].is_monotonic_decreasing
    # the middle strip (x 2000..4000) is the biggest gap; its nearest station is ~1 km+ away
    top = run.gaps.iloc[0]
    assert top["nearest_distance_m"] > 1000
    assert top["nearest_station_id"] in {"G0", "G1"}
    assert run.cells["covered"].sum() == expected


def test_gap_report_agrees_with_run(engine, grid_area, tmp_path):
    import_stations(engine, _write_stations(tmp_path, [1000], [1500]), area="grid")
    path, *_ = _write_demand(tmp_path)
    import_demand(engine, path, area="grid")
    run = load_run(engine, run_coverage(engine, area="grid")["run_id"])
    table = pd.read_csv(io.StringIO(gaps_csv(run)))
    assert len(table) == run.summary["gaps"]
    assert table.iloc[:, 1].sum() == pytest.approx(run.summary["demand_total"] - run.summary["demand_covered"])
    doc = gaps_geojson(run)
    assert len(doc["features"]) == len(table) and doc["run"]["run_id"] == run.summary["run_id"]
    paths = write_gap_report(run, tmp_path / "out")
    assert paths["csv"].read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the Chinese headers
    back = gpd.read_file(paths["geojson"])
    assert back.crs.to_epsg() == 4326 and len(back) == len(table)
    assert json.loads(paths["geojson"].read_text())["features"][0]["properties"]["rank"] == 1


def test_coverage_errors(engine, grid_area):
    with pytest.raises(InvalidInput, match="no demand"):
        run_coverage(engine, area="grid")
    with pytest.raises(InvalidInput, match="radius"):
        run_coverage(engine, area="grid", radius_m=-5)
    with pytest.raises(InvalidInput, match="mode"):
        run_coverage(engine, area="grid", mode="teleport")


def test_real_osm_sample_area(engine, sample_extract, tmp_path):
    sample = sample_extract
    files = sample.write(tmp_path)
    with engine.begin() as conn:
        ensure_area(conn, sample.name, boundary=sample.boundary, crs_epsg=sample.crs_epsg)
    import_stations(engine, files["stations"])
    import_demand(engine, files["demand"])
    s1000 = run_coverage(engine, radius_m=1000)
    s500 = run_coverage(engine, radius_m=500)
    assert 0 < s500["covered_share"] < s1000["covered_share"] < 1
    assert s1000["gaps"] >= 1
    assert s1000["demand_total"] == pytest.approx(sample.demand["weight"].sum(), rel=1e-9)


def test_ready_grid_import(engine, grid_area, tmp_path):
    import_stations(engine, _write_stations(tmp_path, [1000], [1500]), area="grid")
    squares = [box(ORIGIN[0] + x, ORIGIN[1] + 1000, ORIGIN[0] + x + 250, ORIGIN[1] + 1250) for x in (900, 3000)]
    grid = gpd.GeoDataFrame({"cell_id": ["a", "b"], "weight": [4.0, 6.0]}, geometry=squares, crs=UTM50)
    path = tmp_path / "grid.geojson"
    grid.to_crs(4326).to_file(path)
    s = import_demand(engine, path, area="grid")
    assert (s.cells, s.weight_total) == (2, 10.0)
    assert s.cell_size_m == pytest.approx(250, rel=1e-3)
    summary = run_coverage(engine, area="grid")
    assert summary["demand_covered"] == 4.0 and summary["gaps"] == 1
    grid.loc[1, "weight"] = -1
    grid.to_crs(4326).to_file(path)
    with pytest.raises(ImportRejected, match="row 2, weight"):
        import_demand(engine, path, area="grid")


def test_geoparquet_and_geojson_points(engine, grid_area, tmp_path):
    lon, lat = _ll([500, 700, 3000], [500, 500, 1500])
    pts = gpd.GeoDataFrame({"weight": [1.0, 2.0, 3.0]}, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    pts.to_parquet(tmp_path / "d.parquet")
    s = import_demand(engine, tmp_path / "d.parquet", area="grid")
    assert (s.points, s.weight_total) == (3, 6.0)
    pts.to_crs(UTM50).to_file(tmp_path / "d.geojson")  # written in WGS 84 by the GeoJSON driver
    assert import_demand(engine, tmp_path / "d.geojson", area="grid").weight_total == 6.0
