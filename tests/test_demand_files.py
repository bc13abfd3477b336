"""Demand files as clerks and delivery platforms hand them over: Chinese and platform headers, columns named by
option, GCJ-02/BD-09 orders, local times in Chinese forms, XLSX exports, shapefiles with and without a .cpg and
in a projected CRS. Every file is written for real and imported into a real PostGIS area."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
from cli_runner import run_cli
from point_rows import point_frame
from pyproj import Geod, Transformer

from yizhan.data.demand import import_demand
from yizhan.data.demand_columns import DemandColumns, choose_columns
from yizhan.data.demand_times import times_from_text
from yizhan.data.shapefiles import dbf_encoding, read_point_shapefile
from yizhan.errors import ImportRejected, InvalidInput
from yizhan.geo.coords import from_wgs84

GEOD = Geod(ellps="WGS84")
# delivery stops inside the Wudaokou test area (WGS 84 lon, lat) and merchants far outside it
STOPS = [(116.3150, 39.9950), (116.3200, 40.0000), (116.3250, 40.0050), (116.3300, 40.0100)]
MERCHANTS = [(116.4000, 39.9000)] * 4


def _points(engine) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The stored demand points: lon, lat (WGS 84), weight, observed_at (UTC), in insertion order."""
    with engine.connect() as conn:
        return point_frame(conn)[["lon", "lat", "weight", "observed_at"]]


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_platform_export_uses_the_delivery_pair_and_says_so(engine, wudaokou, tmp_path):
    """A platform export in GBK with the merchant's and the customer's positions: the customer's (收货) pair is
    used, the merchant's named as left out; 下单时间 without an offset is Beijing time; 订单量（单） is the weight."""
    path = tmp_path / "外卖订单.csv"
    rows = ["订单编号,商家名称,商家经度,商家纬度,收货经度,收货纬度,下单时间,订单量（单）"]
    for i, ((x, y), (mx, my)) in enumerate(zip(STOPS, MERCHANTS, strict=True)):
        rows.append(f"D{i},老北京炸酱面,{mx},{my},{x},{y},2026-11-25 12:3{i},{i + 1}")
    path.write_bytes("\r\n".join(rows).encode("gbk"))
    s = import_demand(engine, path, area="wudaokou")
    assert (s.points, s.weight_total) == (4, 10.0)
    assert "收货经度" in s.columns and "收货纬度" in s.columns and "订单量（单）" in s.columns
    assert "下单时间" in s.columns
    assert any("商家经度/商家纬度" in n and "not used" in n for n in s.notes)
    assert any("Asia/Shanghai" in n for n in s.notes)
    pts = _points(engine)
    assert pts[["lon", "lat"]].to_numpy() == pytest.approx(np.array(STOPS), abs=1e-9)
    assert list(pts["weight"]) == [1.0, 2.0, 3.0, 4.0]
    assert list(pts["observed_at"]) == [_utc(2026, 11, 25, 4, 30 + i) for i in range(4)]


def test_headers_without_a_role_and_merchant_only(engine, wudaokou, tmp_path):
    """经度/纬度 with 时间 and 件数; a file holding only the merchant's position uses it and says so."""
    plain = tmp_path / "plain.csv"
    plain.write_text("经度,纬度,件数,时间\n" + "".join(f"{x},{y},2,2026/11/25 18:05\n" for x, y in STOPS),
                     encoding="utf-8")
    s = import_demand(engine, plain, area="wudaokou")
    assert s.weight_total == 8.0 and s.columns.startswith("经度 longitude=经度, 纬度 latitude=纬度")
    assert set(_points(engine)["observed_at"]) == {_utc(2026, 11, 25, 10, 5)}
    choice = choose_columns(["商家经度", "商家纬度", "单量"], source="m.csv")
    assert (choice.lon, choice.lat, choice.weight) == ("商家经度", "商家纬度", "单量")
    assert "merchant position" in choice.notes[0]


def test_columns_named_by_option(engine, wudaokou, tmp_path):
    """Headers no table knows, named by the options; a name not in the file is one line listing its columns."""
    path = tmp_path / "odd.csv"
    path.write_text("坐标一,坐标二,份数,发生于\n" + "".join(f"{x},{y},3,2026年11月25日 08:00\n" for x, y in STOPS),
                    encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"no longitude and latitude columns.*坐标一, 坐标二, 份数, 发生于"):
        import_demand(engine, path, area="wudaokou")
    named = DemandColumns(lon="坐标一", lat="坐标二", weight="份数", time="发生于")
    s = import_demand(engine, path, area="wudaokou", columns=named)
    assert s.weight_total == 12.0
    assert s.columns == "经度 longitude=坐标一, 纬度 latitude=坐标二, 订单量 weight=份数, 时间 time=发生于"
    assert set(_points(engine)["observed_at"]) == {_utc(2026, 11, 25, 0, 0)}
    with pytest.raises(InvalidInput) as info:
        import_demand(engine, path, area="wudaokou", columns=DemandColumns(lon="坐标一", lat="纬度"))
    message = str(info.value)
    assert "\n" not in message and "'纬度'" in message and "--lat-col" in message
    assert "坐标一, 坐标二, 份数, 发生于" in message and message.startswith("odd.csv: ")
    with pytest.raises(InvalidInput, match="--lon-col and --lat-col go together"):
        import_demand(engine, path, area="wudaokou", columns=DemandColumns(lon="坐标一"))


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_shifted_orders_land_on_their_wgs84_positions(engine, wudaokou, tmp_path, system):
    """Orders picked from Amap (GCJ-02) or Baidu (BD-09) maps: with --coord they are stored within a metre of
    the WGS 84 positions they stand for; read as WGS 84 they would be hundreds of metres off."""
    lon, lat = np.array(STOPS).T
    slon, slat = from_wgs84(lon, lat, system)
    path = tmp_path / "shifted.csv"
    path.write_text("收货经度,收货纬度\n" + "".join(f"{x:.8f},{y:.8f}\n" for x, y in zip(slon, slat, strict=True)))
    import_demand(engine, path, area="wudaokou", coord=system)
    pts = _points(engine)
    _, _, err = GEOD.inv(pts["lon"].to_numpy(), pts["lat"].to_numpy(), lon, lat)
    assert np.max(err) < 1.0
    _, _, off = GEOD.inv(slon, slat, lon, lat)
    assert np.min(off) > 100  # the shift the option takes away


@pytest.mark.parametrize(("cell", "expected"), [
    ("2026-11-25 12:30", _utc(2026, 11, 25, 4, 30)),
    ("2026-11-25T12:30:00+08:00", _utc(2026, 11, 25, 4, 30)),
    ("2026-11-25T12:30:00Z", _utc(2026, 11, 25, 12, 30)),
    ("2026-11-25 12:30 +09:00", _utc(2026, 11, 25, 3, 30)),
    ("2026年11月25日 12:30", _utc(2026, 11, 25, 4, 30)),
    ("2026年11月25日12时30分05秒", _utc(2026, 11, 25, 4, 30, 5)),
    ("2026年11月25日 下午2:30", _utc(2026, 11, 25, 6, 30)),
    ("2026/11/25 12:30", _utc(2026, 11, 25, 4, 30)),
    ("2026.11.25 12:30:05", _utc(2026, 11, 25, 4, 30, 5)),
    ("２０２６－１１－２５ １２：３０", _utc(2026, 11, 25, 4, 30)),
    ("2026-11-25", _utc(2026, 11, 24, 16, 0)),
    ("20261125", _utc(2026, 11, 24, 16, 0)),
    ("20261125123000", _utc(2026, 11, 25, 4, 30)),
    ("46351.5208333333", _utc(2026, 11, 25, 4, 30)),  # Excel serial days, local time
    ("1764045000", _utc(2025, 11, 25, 4, 30)),  # Unix seconds
    ("1764045000000", _utc(2025, 11, 25, 4, 30)),  # Unix milliseconds
])
def test_time_forms(cell, expected):
    times, bad = times_from_text(pd.Series([cell, ""]), "Asia/Shanghai")
    assert times.iloc[0].to_pydatetime() == expected and not bad.any()
    assert pd.isna(times.iloc[1])  # a blank cell: no time, not an error


def test_naive_times_follow_the_time_zone_passed_in():
    times, _ = times_from_text(pd.Series(["2026-11-25 12:30", "2026-07-01 12:00"]), "Europe/Berlin")
    assert [t.to_pydatetime() for t in times] == [_utc(2026, 11, 25, 11, 30), _utc(2026, 7, 1, 10, 0)]
    with pytest.raises(InvalidInput, match="time zone 'Mars/Base'"):
        times_from_text(pd.Series(["2026-11-25 12:30"]), "Mars/Base")


def test_bad_values_named_by_row_column_and_example(engine, wudaokou, tmp_path):
    path = tmp_path / "bad.csv"
    (x, y) = STOPS[0]
    path.write_text(f"收货经度,收货纬度,订单量,下单时间\n{x},{y},1,2026-11-25 12:30\n{x},{y},1,昨天中午\n"
                    f"{x},四十,1,\n{x},{y},-3,2026-02-30 10:00\n１１６．３２,{y},１,2026-11-25 12:30\n",
                    encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_demand(engine, path, area="wudaokou")
    found = {(p.row, p.field, p.value) for p in info.value.problems}
    assert found == {(3, "下单时间", "昨天中午"), (4, "收货纬度", "四十"), (5, "订单量", "-3"),
                     (5, "下单时间", "2026-02-30 10:00")}
    time_problem = next(p for p in info.value.problems if p.row == 3)
    assert "2026年11月25日 12:30" in time_problem.expected and "Asia/Shanghai" in time_problem.expected
    far = tmp_path / "far.csv"
    far.write_text(f"收货经度,收货纬度\n{x},{y}\n121.47,31.23\n", encoding="utf-8")
    with pytest.raises(ImportRejected, match=r"row 3, 收货经度/收货纬度=.*inside area 'wudaokou'"):
        import_demand(engine, far, area="wudaokou")


def test_xlsx_export_with_title_row_date_cells_and_serials(engine, wudaokou, tmp_path):
    """A workbook as a platform or a clerk saves it: a merged title row, date cells (local time), a serial number
    where the date format was lost, text dates, an unused 备注 column and a second sheet with the same header."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "十一月"
    ws.append(["2026年11月 外卖订单（海淀区五道口）"])
    ws.merge_cells("A1:F1")
    ws.append(["序号", "收货经度", "收货纬度", "下单时间", "单量", "备注"])
    ws.append([1, *STOPS[0], datetime(2026, 11, 25, 12, 30), 2, "午高峰"])
    ws.append([2, *STOPS[1], 46351.5208333333, 1, None])
    ws.append([3, *STOPS[2], "2026年11月25日 12:30", None, "无"])
    second = book.create_sheet("十二月")
    second.append(["序号", "收货经度", "收货纬度", "下单时间", "单量", "备注"])
    second.append([1, *STOPS[3], datetime(2026, 12, 1, 8, 0), 4, ""])
    path = tmp_path / "orders.xlsx"
    book.save(path)
    s = import_demand(engine, path, area="wudaokou")
    assert (s.points, s.weight_total) == (4, 8.0)
    assert any("十一月" in n and "十二月" in n for n in s.notes)
    pts = _points(engine)
    assert list(pts["observed_at"]) == [_utc(2026, 11, 25, 4, 30)] * 3 + [_utc(2026, 12, 1, 0, 0)]
    ws.append([4, *STOPS[0], "next tuesday", 1, ""])
    book.save(path)
    with pytest.raises(ImportRejected) as info:
        import_demand(engine, path, area="wudaokou")
    [problem] = info.value.problems
    assert (problem.row, problem.field, problem.value) == (6, "十一月!下单时间", "next tuesday")


def _gbk_shapefile(folder, *, keep_cpg: bool = False):  # type: ignore[no-untyped-def]
    """A point shapefile with Chinese field names and values written in GBK, its .cpg deleted."""
    lon, lat = np.array(STOPS).T
    gdf = gpd.GeoDataFrame({"收货经度": lon, "收货纬度": lat, "订单量": [1, 2, 3, 4],
                            "下单时间": ["2026-11-25 12:30"] * 4, "商家名称": ["老北京炸酱面"] * 4},
                           geometry=gpd.points_from_xy(lon, lat), crs=4326)
    path = folder / "订单点.shp"
    gdf.to_file(path, encoding="gbk", engine="pyogrio")
    if not keep_cpg:
        path.with_suffix(".cpg").unlink()
    return path


def test_gbk_shapefile_without_cpg(engine, wudaokou, tmp_path):
    """Field names in GBK without a .cpg: read as GBK (found from the .dbf), so 订单量 and 下单时间 map; the same
    shapefile zipped; --encoding wins over detection and a wrong one is refused by name."""
    path = _gbk_shapefile(tmp_path)
    assert not path.with_suffix(".cpg").exists()
    assert dbf_encoding(path.with_suffix(".dbf").read_bytes()) == "gb18030"
    read = read_point_shapefile(path)
    assert read.encoding_from == "detected"
    assert list(read.frame.columns[:5]) == ["收货经度", "收货纬度", "订单量", "下单时间", "商家名称"]
    assert read.frame["商家名称"].iloc[0] == "老北京炸酱面"
    s = import_demand(engine, path, area="wudaokou")
    assert s.weight_total == 10.0 and "订单量" in s.columns and "下单时间" in s.columns
    assert any("GB18030" in n and "detected" in n for n in s.notes)
    assert set(_points(engine)["observed_at"]) == {_utc(2026, 11, 25, 4, 30)}
    s = import_demand(engine, path, area="wudaokou", columns=DemandColumns(lon="收货经度", lat="收货纬度"))
    assert s.columns.startswith("经度 longitude=收货经度")
    archive = tmp_path / "订单点.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in tmp_path.glob("订单点.*"):
            if part.suffix != ".zip":
                z.write(part, f"导出/{part.name}")
    assert import_demand(engine, archive, area="wudaokou").weight_total == 10.0
    assert import_demand(engine, path, area="wudaokou", encoding="GBK").weight_total == 10.0
    with pytest.raises(InvalidInput, match="--encoding 'latin-9'"):
        import_demand(engine, path, area="wudaokou", encoding="latin-9")
    with pytest.raises(InvalidInput, match="--encoding is for shapefiles"):
        import_demand(engine, tmp_path / "订单点.dbf", area="wudaokou", encoding="gbk")


def test_shapefile_cpg_is_honoured(tmp_path):
    """A .cpg names the encoding: GBK as written; a UTF-8 shapefile reads as UTF-8 without one."""
    path = _gbk_shapefile(tmp_path, keep_cpg=True)
    read = read_point_shapefile(path)
    assert (read.encoding, read.encoding_from) == ("gbk", ".cpg") and "订单量" in read.frame.columns
    utf = tmp_path / "utf8"
    utf.mkdir()
    gpd.GeoDataFrame({"订单量": [1]}, geometry=gpd.points_from_xy([116.32], [40.0]), crs=4326).to_file(
        utf / "u.shp", encoding="utf-8", engine="pyogrio")
    (utf / "u.cpg").unlink()
    read = read_point_shapefile(utf / "u.shp")
    assert (read.encoding, read.encoding_from) == ("utf-8", "detected") and "订单量" in read.frame.columns


def test_projected_shapefile_is_transformed_to_wgs84(engine, wudaokou, tmp_path):
    """Points in UTM 50N metres (.prj), with X/Y attributes in metres too: the geometry gives the position,
    transformed to WGS 84; --coord gcj02 is refused for metres."""
    to_utm = Transformer.from_crs(4326, 32650, always_xy=True)
    lon, lat = np.array(STOPS).T
    x, y = to_utm.transform(lon, lat)
    gdf = gpd.GeoDataFrame({"X": x, "Y": y, "件数": [1, 1, 1, 1]}, geometry=gpd.points_from_xy(x, y), crs=32650)
    path = tmp_path / "utm.shp"
    gdf.to_file(path, engine="pyogrio")
    s = import_demand(engine, path, area="wudaokou")
    assert s.weight_total == 4.0 and "EPSG:32650" in s.columns
    pts = _points(engine)
    _, _, err = GEOD.inv(pts["lon"].to_numpy(), pts["lat"].to_numpy(), lon, lat)
    assert np.max(err) < 0.01
    with pytest.raises(InvalidInput, match="projected CRS"):
        import_demand(engine, path, area="wudaokou", coord="gcj02")
    gdf.to_file(tmp_path / "utm.gpkg", engine="pyogrio")  # the same points in a GeoPackage
    assert import_demand(engine, tmp_path / "utm.gpkg", area="wudaokou").weight_total == 4.0
    pts = _points(engine)
    _, _, err = GEOD.inv(pts["lon"].to_numpy(), pts["lat"].to_numpy(), lon, lat)
    assert np.max(err) < 0.01


def test_cli_names_the_columns_used(engine, cli_env, tmp_path):
    """``yizhan demand import`` with the column options: the summary line in Chinese and English and the columns
    used; times in the zone of YIZHAN_TIMEZONE; a column not in the file fails in one line, exit code 2, no
    traceback."""
    run_cli("area", "create", "wudaokou", "--bbox", "116.3084,39.9905,116.3320,40.0123", env=cli_env)
    path = tmp_path / "orders.csv"
    path.write_text("位置X,位置Y,份\n" + "".join(f"{x},{y},2\n" for x, y in STOPS), encoding="utf-8")
    out = run_cli("demand", "import", str(path), "--lon-col", "位置X", "--lat-col", "位置Y", "--weight-col", "份",
                  env=cli_env).stdout
    assert "4 个需求点" in out and "4 points ->" in out and "total weight 8" in out
    assert "columns used: 经度 longitude=位置X, 纬度 latitude=位置Y, 订单量 weight=份" in out
    timed = tmp_path / "timed.csv"
    timed.write_text("lng,lat,下单时间\n" + "".join(f"{x},{y},2026-11-25 12:30\n" for x, y in STOPS), encoding="utf-8")
    out = run_cli("demand", "import", str(timed), env={**cli_env, "YIZHAN_TIMEZONE": "Asia/Tokyo"}).stdout
    assert "local time in Asia/Tokyo" in out
    assert set(_points(engine)["observed_at"]) == {_utc(2026, 11, 25, 3, 30)}  # 12:30 in Tokyo (UTC+9)
    failed = run_cli("demand", "import", str(path), "--lon-col", "lng", "--lat-col", "位置Y", env=cli_env,
                     check=False)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "no column 'lng' (--lon-col)" in failed.stderr and "位置X, 位置Y, 份" in failed.stderr


def test_date_and_time_of_day_in_two_columns(engine, wudaokou, tmp_path):
    """日期 and 时间 in two columns (as many exports split them) make one local time; a workbook's date cells
    and time cells too; a 时间 that holds the whole time is taken alone."""
    path = tmp_path / "split.csv"
    path.write_text("经度,纬度,日期,时间\n" + "".join(f"{x},{y},2026/11/25,{h}:15\n" for (x, y), h in
                                                zip(STOPS, (7, 8, 9, 10), strict=True)), encoding="utf-8")
    s = import_demand(engine, path, area="wudaokou")
    assert "时间 time=日期 + 时间" in s.columns
    assert list(_points(engine)["observed_at"]) == [_utc(2026, 11, 24, 23, 15), _utc(2026, 11, 25, 0, 15),
                                                    _utc(2026, 11, 25, 1, 15), _utc(2026, 11, 25, 2, 15)]
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["经度", "纬度", "日期", "时间"])
    ws.append([*STOPS[0], datetime(2026, 11, 25), datetime(2026, 11, 25, 12, 30).time()])
    ws.append([*STOPS[1], datetime(2026, 11, 25), "2026-11-26 12:30"])
    ws.append([*STOPS[2], datetime(2026, 11, 25), None])
    book.save(tmp_path / "split.xlsx")
    import_demand(engine, tmp_path / "split.xlsx", area="wudaokou")
    assert list(_points(engine)["observed_at"]) == [_utc(2026, 11, 25, 4, 30), _utc(2026, 11, 26, 4, 30),
                                                    _utc(2026, 11, 24, 16, 0)]
