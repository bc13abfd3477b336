"""The fast path of a demand import (pyarrow, numpy, binary COPY) against the general path: the same files give the
same stored points and cells, the same rejected rows; files the fast path does not take go the general way.
Every file is written for real and imported into a real PostGIS area, once by each path."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from point_rows import point_frame
from shapely import wkb
from sqlalchemy import Engine, text

from yizhan.data.demand import import_demand
from yizhan.data.demand_fast import fast_points
from yizhan.errors import ImportRejected
from yizhan.geo.coords import from_wgs84

WEST, SOUTH, EAST, NORTH = 116.3084, 39.9905, 116.3320, 40.0123  # the Wudaokou test area (conftest)


def _orders(n: int, *, seed: int = 7, margin: float = 0.0) -> pd.DataFrame:
    """``n`` orders at random WGS 84 positions in the area (``margin`` degrees beyond it on each side), weights
    1 to 5, Beijing times over a week in minutes."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(WEST - margin, EAST + margin, n).round(7)
    lat = rng.uniform(SOUTH - margin, NORTH + margin, n).round(7)
    times = pd.Timestamp("2026-11-23 00:00") + pd.to_timedelta(rng.integers(0, 7 * 24 * 60, n), unit="min")
    return pd.DataFrame({"lon": lon, "lat": lat, "weight": rng.integers(1, 6, n).astype(float), "time": times})


def _stored(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored points (lon, lat, weight, observed_at in order of storage) and cells (by key)."""
    with engine.connect() as conn:
        pts = point_frame(conn)[["lon", "lat", "weight", "observed_at"]]
        cells = pd.DataFrame(conn.execute(text(
            "SELECT cell_key, cell_size_m, weight, points, ST_AsBinary(geom) AS geom, ST_AsBinary(centroid) AS c, "
            "ST_SRID(geom) AS srid FROM area_cells ORDER BY cell_key")).mappings().all())
    return pts, cells


def _same(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Points equal to 1e-9 degrees in the same order, same weights and times; cells with the same keys, weights,
    counts and polygons and centres (vertices in the same order to 1e-9 degrees)."""
    (pa_, ca), (pb, cb) = a, b
    assert len(pa_) == len(pb) and len(pa_) > 0
    assert np.abs(pa_[["lon", "lat"]].to_numpy() - pb[["lon", "lat"]].to_numpy()).max() <= 1e-9
    assert pa_["weight"].tolist() == pb["weight"].tolist()
    assert pa_["observed_at"].tolist() == pb["observed_at"].tolist()
    assert ca["cell_key"].tolist() == cb["cell_key"].tolist() and len(ca) > 0
    assert ca["points"].tolist() == cb["points"].tolist()
    assert ca["cell_size_m"].tolist() == cb["cell_size_m"].tolist()
    assert ca["srid"].tolist() == cb["srid"].tolist() == [4326] * len(ca)
    assert ca["weight"].to_numpy() == pytest.approx(cb["weight"].to_numpy(), rel=1e-12)
    for col in ("geom", "c"):
        ga = np.concatenate([np.asarray(wkb.loads(bytes(g)).exterior.coords if col == "geom" else
                                        wkb.loads(bytes(g)).coords) for g in ca[col]])
        gb = np.concatenate([np.asarray(wkb.loads(bytes(g)).exterior.coords if col == "geom" else
                                        wkb.loads(bytes(g)).coords) for g in cb[col]])
        assert ga.shape == gb.shape and np.abs(ga - gb).max() <= 1e-9


def _both(engine: Engine, path: Path, **kw: object) -> tuple[object, object]:
    """Import ``path`` by the general path, then by the fast one (which must take it), each replacing the area's
    demand; the stored points and cells are the same and so are the summaries."""
    assert fast_points(path, source=path.name, timezone="Asia/Shanghai", coord=str(kw.get("coord", "wgs84")),
                       check=lambda frame, names: None) is not None, "the fast path takes this file"
    slow = import_demand(engine, path, area="wudaokou", fast=False, **kw)  # type: ignore[arg-type]
    before = _stored(engine)
    quick = import_demand(engine, path, area="wudaokou", **kw)  # type: ignore[arg-type]
    _same(before, _stored(engine))
    assert quick == slow
    return slow, quick


def test_csv_with_times_and_weights(engine, wudaokou, tmp_path):
    """Chinese platform headers, Beijing times without an offset, an order count per row."""
    o = _orders(3000)
    path = tmp_path / "订单.csv"
    pd.DataFrame({"订单编号": range(len(o)), "收货经度": o["lon"], "收货纬度": o["lat"],
                  "下单时间": o["time"].dt.strftime("%Y-%m-%d %H:%M:%S"), "订单量": o["weight"]}
                 ).to_csv(path, index=False)
    slow, _ = _both(engine, path)
    assert slow.points == 3000 and slow.weight_total == o["weight"].sum()  # type: ignore[attr-defined]


def test_csv_without_times_or_weights_and_blank_weights(engine, wudaokou, tmp_path):
    """Only positions: every order counts once; a blank weight cell is one order too; a BOM is read past."""
    o = _orders(2000, seed=3)
    path = tmp_path / "points.csv"
    o[["lon", "lat"]].to_csv(path, index=False, encoding="utf-8-sig")
    _both(engine, path)
    w = o["weight"].astype(object)
    w[::3] = ""
    path2 = tmp_path / "weights.csv"
    pd.DataFrame({"lng": o["lon"], "lat": o["lat"], "count": w}).to_csv(path2, index=False)
    slow, _ = _both(engine, path2, cell_size_m=100.0)
    assert slow.cells > 0  # type: ignore[attr-defined]


def test_csv_times_with_offsets_and_in_chinese_forms(engine, wudaokou, tmp_path):
    """Times with an offset (read by pyarrow) and in Chinese forms and Unix seconds (the general time rules), and
    blank times among them."""
    o = _orders(500, seed=5)
    aware = o["time"].dt.tz_localize("Asia/Shanghai").dt.strftime("%Y-%m-%dT%H:%M:%S%z").str.replace(
        r"(\d\d)$", r":\1", regex=True)
    chinese = o["time"].dt.strftime("%Y年%m月%d日 %H:%M").astype(object)
    chinese[1::4] = (o["time"][1::4].dt.tz_localize("Asia/Shanghai").astype("int64") // 10**9).astype(str)
    chinese[2::4] = ""
    for name, times in (("aware.csv", aware), ("chinese.csv", chinese)):
        path = tmp_path / name
        pd.DataFrame({"lon": o["lon"], "lat": o["lat"], "time": times}).to_csv(path, index=False)
        _both(engine, path)


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_shifted_coordinates(engine, wudaokou, tmp_path, system):
    """GCJ-02 and BD-09 orders are converted to WGS 84 as the general path converts them."""
    o = _orders(1500, seed=11, margin=-0.003)
    x, y = from_wgs84(o["lon"].to_numpy(), o["lat"].to_numpy(), system)
    path = tmp_path / f"{system}.csv"
    pd.DataFrame({"经度": x, "纬度": y, "单量": o["weight"]}).to_csv(path, index=False)
    _both(engine, path, coord=system)


def test_clip_and_append(engine, wudaokou, tmp_path):
    """--clip drops the points outside the area (counted alike); --append adds to the stored points and sums all
    of them into cells again."""
    o = _orders(2000, seed=13, margin=0.005)
    path = tmp_path / "wide.csv"
    o[["lon", "lat", "weight"]].to_csv(path, index=False)
    slow, _ = _both(engine, path, clip=True)
    assert 0 < slow.dropped_outside < 2000  # type: ignore[attr-defined]
    more = tmp_path / "more.csv"
    _orders(800, seed=17)[["lon", "lat", "weight"]].to_csv(more, index=False)
    import_demand(engine, path, area="wudaokou", clip=True, fast=False)
    slow_append = import_demand(engine, more, area="wudaokou", append=True, fast=False)
    general = _stored(engine)
    import_demand(engine, path, area="wudaokou", clip=True)
    fast_append = import_demand(engine, more, area="wudaokou", append=True)
    _same(general, _stored(engine))
    assert fast_append == slow_append


def test_geoparquet_and_parquet(engine, wudaokou, tmp_path):
    """A GeoParquet of points with a count and aware times, and a plain Parquet of lon/lat columns with naive
    times (local) and null weights."""
    o = _orders(2500, seed=19)
    gdf = gpd.GeoDataFrame({"weight": o["weight"], "time": o["time"].dt.tz_localize("Asia/Shanghai")},
                           geometry=gpd.points_from_xy(o["lon"], o["lat"]), crs="EPSG:4326")
    path = tmp_path / "orders.parquet"
    gdf.to_parquet(path)
    _both(engine, path)
    plain = tmp_path / "plain.parquet"
    weights = o["weight"].where(np.arange(len(o)) % 4 != 0)
    pd.DataFrame({"longitude": o["lon"], "latitude": o["lat"], "orders": weights, "created_at": o["time"]}
                 ).to_parquet(plain)
    s = import_demand(engine, plain, area="wudaokou")
    pts, _ = _stored(engine)
    assert s.points == len(pts) == 2500
    assert pts["weight"].sum() == weights.fillna(1).sum()
    first = o["time"].iloc[0].tz_localize("Asia/Shanghai").tz_convert("UTC")
    assert pts["observed_at"].iloc[0] == first.to_pydatetime()


def test_bad_rows_give_the_same_problems(engine, wudaokou, tmp_path):
    """A CSV with a bad longitude, weight and time and points outside the area: the fast path leaves it to the
    general one, and the same rows are named; nothing is stored. A plain Parquet's bad values are named by the
    general check by feature number."""
    o = _orders(50, seed=23).astype({"lon": object, "weight": object})
    o["time"] = o["time"].dt.strftime("%Y-%m-%d %H:%M")
    o.loc[4, "lon"] = "116.3x"
    o.loc[9, "weight"] = "-2"
    o.loc[12, "time"] = "next tuesday"
    path = tmp_path / "bad.csv"
    o.to_csv(path, index=False)
    problems = []
    for fast in (False, True):
        with pytest.raises(ImportRejected) as err:
            import_demand(engine, path, area="wudaokou", fast=fast)
        problems.append(err.value.problems)
    assert problems[0] == problems[1] and [p.row for p in problems[0]] == [6, 11, 14]
    far = tmp_path / "far.csv"
    _orders(30, seed=29, margin=0.05)[["lon", "lat"]].to_csv(far, index=False)
    outside = []
    for fast in (False, True):
        with pytest.raises(ImportRejected) as err:
            import_demand(engine, far, area="wudaokou", fast=fast)
        outside.append(err.value.problems)
    assert outside[0] == outside[1] and outside[0]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM demand_point_blocks")).scalar_one() == 0
    plain = tmp_path / "bad.parquet"
    good = _orders(20, seed=31)
    frame = pd.DataFrame({"lon": good["lon"], "lat": good["lat"], "weight": good["weight"]})
    frame.loc[7, "lat"] = 95.0
    frame.to_parquet(plain)
    with pytest.raises(ImportRejected) as err:
        import_demand(engine, plain, area="wudaokou")
    assert [(p.row, p.field, str(p.value)) for p in err.value.problems] == [(8, "lat", "95.0")]


def test_fallback_for_xlsx_gbk_and_title_rows(engine, wudaokou, tmp_path):
    """An XLSX export, a GBK CSV and a CSV with a title row above its header are read by the general path (the fast
    one declines them) and imported as before."""
    o = _orders(40, seed=37)
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["收货经度", "收货纬度", "单量"])
    for r in o.itertuples():
        ws.append([r.lon, r.lat, r.weight])
    xlsx = tmp_path / "orders.xlsx"
    book.save(xlsx)
    gbk = tmp_path / "gbk.csv"
    o.rename(columns={"lon": "收货经度", "lat": "收货纬度", "weight": "单量"})[["收货经度", "收货纬度", "单量"]].to_csv(
        gbk, index=False, encoding="gbk")
    titled = tmp_path / "titled.csv"
    titled.write_text("2026年11月 外卖订单\n" + o[["lon", "lat"]].to_csv(index=False), encoding="utf-8")
    for path in (xlsx, gbk, titled):
        assert fast_points(path, source=path.name, timezone="Asia/Shanghai", check=lambda f, n: None) is None
        s = import_demand(engine, path, area="wudaokou")
        assert s.points == 40


def test_quoted_csv_as_written_by_pyarrow(engine, wudaokou, tmp_path):
    """A CSV whose header and text cells are all in double quotes (as pyarrow and some exports write them)."""
    o = _orders(1000, seed=41)
    path = tmp_path / "quoted.csv"
    pacsv.write_csv(pa.table({"lon": o["lon"], "lat": o["lat"], "weight": o["weight"],
                              "下单时间": o["time"].dt.strftime("%Y-%m-%dT%H:%M:%S")}), path)
    assert path.read_text(encoding="utf-8").startswith('"lon","lat"')
    _both(engine, path)


def test_files_read_in_many_batches_while_stored(engine, wudaokou, tmp_path, monkeypatch):
    """Files read in many small batches, each stored while the next is read: the same points and cells as the
    general path; points outside the area in several batches named together (features of a GeoParquet) or left to the
    general path (a CSV), a bad value in a late batch of a CSV left to the general path; a refused file leaves the
    stored points as they were."""
    from yizhan.data import demand_fast

    monkeypatch.setattr(demand_fast, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(demand_fast, "PARQUET_BATCH_ROWS", 300)
    o = _orders(3000, seed=43)
    path = tmp_path / "batches.csv"
    pd.DataFrame({"lon": o["lon"], "lat": o["lat"], "weight": o["weight"],
                  "time": o["time"].dt.strftime("%Y-%m-%d %H:%M:%S")}).to_csv(path, index=False)
    opened = demand_fast.fast_file(path, source=path.name, timezone="Asia/Shanghai", check=lambda f, n: None)
    assert opened is not None and len(list(opened.batches)) > 10
    _both(engine, path)
    before = _stored(engine)
    wide = o.copy()
    wide.loc[[400, 2900], "lon"] = EAST + 0.01  # in the second and the tenth batch of 300
    parquet = tmp_path / "wide.parquet"
    gpd.GeoDataFrame({"weight": wide["weight"]}, geometry=gpd.points_from_xy(wide["lon"], wide["lat"]),
                     crs="EPSG:4326").to_parquet(parquet)
    late = o.astype({"weight": object})
    late.loc[2800, "weight"] = "多"
    late_csv, wide_csv = tmp_path / "late.csv", tmp_path / "wide.csv"
    late[["lon", "lat", "weight"]].to_csv(late_csv, index=False)
    wide[["lon", "lat", "weight"]].to_csv(wide_csv, index=False)
    named = {}
    for file, rows in ((parquet, [401, 2901]), (wide_csv, [402, 2902]), (late_csv, [2802])):
        for fast in (True, False):
            with pytest.raises(ImportRejected) as err:
                import_demand(engine, file, area="wudaokou", fast=fast)
            named[fast] = err.value.problems
            assert [p.row for p in err.value.problems] == rows
        assert named[True] == named[False]
        _same(before, _stored(engine))
    clipped = import_demand(engine, parquet, area="wudaokou", clip=True)
    assert clipped.points == 2998 and clipped.dropped_outside == 2


@pytest.mark.parametrize("n", [0, 1, 1000, 300_001])
def test_metres_on_two_threads_are_one_calls(n: int) -> None:
    """Above ``SPLIT_POINTS`` the metres are transformed in two halves on two threads: the same numbers, to the
    bit, as one PROJ call over all the points (NaN and points off the zone included); the inputs are left as
    they were."""
    from pyproj import Transformer

    from yizhan.data.demand_fast import SPLIT_POINTS, metres

    rng = np.random.default_rng(n)
    lon, lat = rng.uniform(100.0, 125.0, n), rng.uniform(20.0, 50.0, n)
    if n > 10:
        lon[3], lat[7] = np.nan, np.nan
    before = lon.copy(), lat.copy()
    x, y = metres(lon, lat, 32650)
    rx, ry = Transformer.from_crs(4326, 32650, always_xy=True).transform(lon, lat)
    assert np.array_equal(x, np.asarray(rx), equal_nan=True) and np.array_equal(y, np.asarray(ry), equal_nan=True)
    assert np.array_equal(lon, before[0], equal_nan=True) and np.array_equal(lat, before[1], equal_nan=True)
    assert (n >= SPLIT_POINTS) == (n == 300_001)
