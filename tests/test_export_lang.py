"""Exports in the registry's language: Chinese headers and labels (zh) or English headers and codes (en), the same
columns and values in CSV, XLSX, GeoJSON and GeoPackage, and every export imports again unchanged (export → import
into a fresh area → export again gives the same file)."""

from __future__ import annotations

import csv
import errno
import io
import json
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
from conftest import WUDAOKOU_BOUNDS
from disks import fill, tiny_disk
from shapely.geometry import box
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo, ensure_area
from yizhan.errors import InvalidInput
from yizhan.stations.export import HEADERS, MEDIA_TYPES, SHEET_NAMES, render_stations, stations_table, write_stations
from yizhan.stations.importer import StationRecord
from yizhan.stations.registry import export_frame, registry_lang, upsert_stations
from yizhan.stations.service import import_stations

# every kind, host, status; several amenities, none; hours; seats and stars missing; a formula-like name
RECORDS = [
    StationRecord("A1", "成府路驿站", "large", 116.3184201234, 39.9926512345, host="petrol_station",
                  address="成府路1号", township="东升镇", amenities=["drinking_water", "charging"],
                  opening_hours="Mo-Fr 09:00-18:00", seats=12, stars=5),
    StationRecord("A2", "=1+1 驿站", "small", 116.32615, 39.99487, host="bank", amenities=["first_aid"],
                  opening_hours="24/7", seats=4, stars=None, status="closed"),
    StationRecord("A3", "流动服务点", "mobile", 116.3225, 40.0041, host="party_service_centre",
                  township="清华园街道"),
    StationRecord("B1", "工会之家", "small", 116.3106, 40.0008, host="union_office",
                  amenities=["microwave", "toilet", "wifi", "love_fridge"], opening_hours="Mo-Su 08:00-22:00",
                  stars=3),
    StationRecord("B2", "便利店驿站", "small", 116.3258, 40.0102, host="shop", address="@紫荆公寓"),
    StationRecord("B3", "邮政驿站", "small", 116.3129, 39.9964, host="other", seats=0),
]
# the fields of a clerk's sheet: the host's name as written, a phone, hours as written beside their rule
CLERK = [
    StationRecord("C1", "石化驿站", "small", 116.3261, 39.9948, host="petrol_station", host_name="中国石化五道口加油站",
                  phone="010-62345678", opening_hours="Mo-Fr 09:00-18:00", opening_hours_text="周一至周五 09:00-18:00"),
    StationRecord("C2", "银行驿站", "small", 116.3287, 39.9923, host="bank", phone="+86 138 0013 8000"),
]
EN_HEADER = ["id", "name", "kind", "lon", "lat", "host", "host_name", "address", "township", "amenities",
             "opening_hours", "opening_hours_text", "seats", "stars", "status", "phone"]
FORMATS = ("csv", "xlsx", "geojson", "gpkg")
ZH_ALL = ["编号", "名称", "类型", "经度", "纬度", "承办单位", "承办单位名称", "地址", "街道", "设施", "开放时间",
          "开放时间说明", "座位数", "星级", "状态", "联系电话"]


def _area(engine: Engine, name: str) -> AreaInfo:
    with engine.begin() as conn:
        return ensure_area(conn, name, boundary=box(*WUDAOKOU_BOUNDS), source="test")


def _store(engine: Engine, area: AreaInfo, records: list[StationRecord], lang: str | None = None) -> None:
    with engine.begin() as conn:
        upsert_stations(conn, area.id, area.name, records, lang=lang)


def _export(engine: Engine, area: AreaInfo, path: Path, lang: str) -> Path:
    with engine.connect() as conn:
        return write_stations(export_frame(conn, area.id), path, lang=lang)


def _rows(path: Path) -> list[dict[str, object]]:
    """The rows of an export as {header: value}, every format read its own way (CSV text, XLSX cells, GeoJSON
    properties with the point's lon/lat, GeoPackage fields), values made comparable: text as text, numbers as
    numbers, empty as None, a GeoJSON list of amenities joined by ';'."""
    suffix = path.suffix
    if suffix == ".csv":
        data = path.read_bytes()
        assert data.startswith("\ufeff".encode())
        rows: list[dict[str, object]] = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
        return [{k: _value(v) for k, v in r.items()} for r in rows]
    if suffix == ".xlsx":
        ws = openpyxl.load_workbook(path).worksheets[0]
        head = [c.value for c in ws[1]]
        return [dict(zip(head, (_value(c) for c in r), strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    if suffix == ".geojson":
        doc = json.loads(path.read_text(encoding="utf-8"))
        out = []
        for f in doc["features"]:
            props = {k: ";".join(v) if isinstance(v, list) else v for k, v in f["properties"].items()}
            lon, lat = f["geometry"]["coordinates"]
            out.append({k: _value(v) for k, v in props.items()} | {"lon": lon, "lat": lat})
        return out
    gdf = gpd.read_file(path)
    assert gdf.crs.to_epsg() == 4326 and set(gdf.geom_type) == {"Point"}
    points = list(zip(gdf.geometry.x, gdf.geometry.y, strict=True))
    assert points == [tuple(p) for p in gdf.iloc[:, 3:5].to_numpy()]  # the point is the lon/lat fields
    return [{k: _value(v) for k, v in r.items()} for r in pd.DataFrame(gdf.drop(columns="geometry")).to_dict("records")]


def _value(v: object) -> object:
    if v is None or v == "" or (isinstance(v, float) and pd.isna(v)):
        return None
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v.removeprefix("'") if v[:2] in ("'=", "'@", "'+", "'-") else v
    return float(v)  # type: ignore[arg-type]


def _by_header(rows: list[dict[str, object]], lang: str) -> list[dict[str, object]]:
    """Rows keyed by the English column name (lon, lat under the language's headers or as the point's)."""
    back = {v: k for k, v in HEADERS[lang].items()}
    return [{back.get(k, k): v for k, v in r.items()} for r in rows]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_headers_and_labels_in_the_language(engine, wudaokou, tmp_path, lang):
    _store(engine, wudaokou, RECORDS)
    path = _export(engine, wudaokou, tmp_path / "st.csv", lang)
    with path.open(encoding="utf-8-sig", newline="") as f:
        header, *body = list(csv.reader(f))
    assert header == (ZH_ALL if lang == "zh" else EN_HEADER)  # every column, also where no station has a value
    rows = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    if lang == "zh":
        a1 = rows["A1"]
        assert (a1["类型"], a1["承办单位"], a1["设施"], a1["状态"]) == ("大型驿站", "加油站", "饮水;充电", "运营")
        assert (a1["开放时间"], a1["座位数"], a1["星级"], a1["经度"]) == ("Mo-Fr 09:00-18:00", "12", "5", "116.3184201")
        assert (rows["A2"]["状态"], rows["A2"]["星级"], rows["A2"]["名称"]) == ("关闭", "", "'=1+1 驿站")
        assert rows["A3"]["类型"] == "流动驿站" and rows["A3"]["设施"] == ""
        assert rows["B1"]["设施"] == "微波炉;卫生间;无线网络;爱心冰箱"
    else:
        a1 = rows["A1"]
        assert (a1["kind"], a1["host"], a1["amenities"], a1["status"]) == ("large", "petrol_station",
                                                                         "drinking_water;charging", "active")
        assert rows["A2"]["status"] == "closed" and rows["B3"]["seats"] == "0"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_host_name_phone_and_hours_as_written_have_columns_of_their_own(engine, wudaokou, tmp_path, lang):
    """承办单位名称, 开放时间说明 and 联系电话 (host_name, opening_hours_text, phone): the hours' OSM rule in
    开放时间, as the importer reads it back, and the words they were written in beside it."""
    _store(engine, wudaokou, RECORDS + CLERK)
    tables = {fmt: _rows(_export(engine, wudaokou, tmp_path / f"st.{fmt}", lang)) for fmt in FORMATS}
    head = HEADERS[lang]
    assert list(tables["csv"][0]) == (ZH_ALL if lang == "zh" else EN_HEADER)
    c1 = next(r for r in tables["csv"] if r[head["id"]] == "C1")
    assert (c1[head["host"]], c1[head["host_name"]]) == ("加油站" if lang == "zh" else "petrol_station",
                                                         "中国石化五道口加油站")
    hours = (c1[head["opening_hours"]], c1[head["opening_hours_text"]])
    assert hours == ("Mo-Fr 09:00-18:00", "周一至周五 09:00-18:00")
    assert c1[head["phone"]] == "010-62345678"
    c2 = next(r for r in tables["csv"] if r[head["id"]] == "C2")
    assert (c2[head["host_name"]], c2[head["opening_hours_text"]]) == (None, None)
    assert c2[head["phone"]] == "+86 138 0013 8000"
    csv_rows = _by_header(tables["csv"], lang)
    for fmt in ("xlsx", "geojson", "gpkg"):
        assert _by_header(tables[fmt], lang) == csv_rows, fmt
    assert b"'+86 138 0013 8000" in (tmp_path / "st.csv").read_bytes()  # kept text in a spreadsheet


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_format_has_the_same_columns_and_values(engine, wudaokou, tmp_path, lang):
    _store(engine, wudaokou, RECORDS)
    tables = {fmt: _rows(_export(engine, wudaokou, tmp_path / f"st.{fmt}", lang)) for fmt in FORMATS}
    csv_rows = _by_header(tables["csv"], lang)
    assert len(csv_rows) == len(RECORDS) and [r["id"] for r in csv_rows] == sorted(r.external_id for r in RECORDS)
    for fmt in ("xlsx", "geojson", "gpkg"):
        assert _by_header(tables[fmt], lang) == csv_rows, fmt
    assert [list(t[0]) for t in (tables["csv"], tables["xlsx"], tables["gpkg"])] == [list(tables["csv"][0])] * 3
    geojson = json.loads((tmp_path / "st.geojson").read_text(encoding="utf-8"))
    first = geojson["features"][0]
    assert first["properties"][HEADERS[lang]["amenities"]] == (["饮水", "充电"] if lang == "zh"
                                                             else ["drinking_water", "charging"])
    assert ("id" in first) == (lang == "en")  # a Chinese file's id is its 编号 property
    assert openpyxl.load_workbook(tmp_path / "st.xlsx").sheetnames == [SHEET_NAMES[lang]]
    assert gpd.list_layers(tmp_path / "st.gpkg")["name"].tolist() == [SHEET_NAMES[lang]]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "geojson"])
def test_an_export_imports_again_unchanged(engine, wudaokou, tmp_path, lang, fmt):
    """Export → import into a fresh area → export again: the same file (CSV and GeoJSON byte for byte, XLSX cell
    for cell), and the GeoPackages of both areas have the same features; host names, phones and the hours as
    written (承办单位名称, 联系电话, 开放时间说明) too."""
    records = [*RECORDS, *CLERK]
    _store(engine, wudaokou, records)
    first = _export(engine, wudaokou, tmp_path / f"first.{fmt}", lang)
    copy = _area(engine, "copy")
    summary = import_stations(engine, first, area="copy")
    assert (summary.inserted, summary.updated) == (len(records), 0)
    with engine.connect() as conn:
        assert registry_lang(conn, copy.id) == lang  # the import recorded its headers' language
    again = _export(engine, copy, tmp_path / f"again.{fmt}", lang)
    if fmt == "xlsx":
        assert _xlsx_cells(again) == _xlsx_cells(first)
    else:
        assert again.read_bytes() == first.read_bytes()
    gpkgs = [_export(engine, a, tmp_path / f"{a.name}.gpkg", lang) for a in (wudaokou, copy)]
    frames = [gpd.read_file(p) for p in gpkgs]
    pd.testing.assert_frame_equal(frames[1], frames[0])
    with engine.connect() as conn:
        stored = [conn.execute(text(
            "SELECT external_id, name, kind, host, host_name, address, township, amenities, opening_hours, "
            "opening_hours_text, seats, stars, status, phone, round(ST_X(geom)::numeric, 7), "
            "round(ST_Y(geom)::numeric, 7) FROM stations WHERE area_id = :a ORDER BY external_id"), {"a": a.id}).all()
            for a in (wudaokou, copy)]
    assert stored[1] == stored[0]
    assert ("C1", "中国石化五道口加油站", "周一至周五 09:00-18:00", "010-62345678") in [
        (r[0], r[4], r[9], r[13]) for r in stored[1]]


def _xlsx_cells(path: Path) -> list[tuple[str, list[tuple[object, str]]]]:
    book = openpyxl.load_workbook(path)
    return [(ws.title, [(c.value, c.data_type) for row in ws.iter_rows() for c in row]) for ws in book.worksheets]


def test_the_area_remembers_the_language_of_its_last_import(engine, wudaokou):
    with engine.connect() as conn:
        assert registry_lang(conn, wudaokou.id) == "en"  # nothing recorded: exports stay as they were
    _store(engine, wudaokou, RECORDS[:2], lang="zh")
    with engine.connect() as conn:
        assert registry_lang(conn, wudaokou.id) == "zh"
        table = stations_table(conn, wudaokou.id)
        assert list(table.columns)[:5] == ["编号", "名称", "类型", "经度", "纬度"]
        assert table["类型"].tolist() == ["大型驿站", "小型驿站"]
        assert stations_table(conn, wudaokou.id, lang="en")["kind"].tolist() == ["large", "small"]
    _store(engine, wudaokou, RECORDS[2:3], lang="en")
    _store(engine, wudaokou, RECORDS[3:4])  # no language given: the recorded one stays
    with engine.connect() as conn:
        assert registry_lang(conn, wudaokou.id) == "en"
        assert "host_name" in stations_table(conn, wudaokou.id).columns  # the table has every column


def test_a_language_or_a_format_not_offered_is_one_clear_line(engine, wudaokou, tmp_path):
    _store(engine, wudaokou, RECORDS)
    with engine.connect() as conn:
        df = export_frame(conn, wudaokou.id)
        with pytest.raises(InvalidInput, match=r"^lang: 语言 'fr' 不可用，可用 zh（中文）或 en（英文） / "
                                               r"lang 'fr' is not accepted; expected zh \(Chinese\) or en "
                                               r"\(English\)$"):
            stations_table(conn, wudaokou.id, lang="fr")
    with pytest.raises(InvalidInput, match="lang 'ZH' is not accepted"):
        write_stations(df, tmp_path / "st.csv", lang="ZH")
    with pytest.raises(InvalidInput, match=r"st\.shp: 不支持的导出格式.*unsupported export type; expected one of "
                                           r"\.csv, \.xlsx, \.geojson, \.gpkg"):
        write_stations(df, tmp_path / "st.shp", lang="zh")
    with engine.begin() as conn, pytest.raises(InvalidInput, match="lang 'de'"):
        upsert_stations(conn, wudaokou.id, wudaokou.name, RECORDS, lang="de")
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_a_download_is_the_file_an_export_writes(engine, wudaokou, tmp_path):
    _store(engine, wudaokou, RECORDS)
    with engine.connect() as conn:
        df = export_frame(conn, wudaokou.id)
    for fmt in FORMATS:
        written = tmp_path / f"st.{fmt}"
        written.write_bytes(render_stations(df, fmt, lang="zh"))
        assert _rows(written) == _rows(_export(engine, wudaokou, tmp_path / f"file.{fmt}", "zh")), fmt
        assert fmt in MEDIA_TYPES
    assert render_stations(df, "csv", lang="en") == _export(engine, wudaokou, tmp_path / "en.csv", "en").read_bytes()


def test_a_full_disk_fails_each_format_naming_the_file_and_keeps_the_earlier_one(engine, wudaokou, tmp_path):
    _store(engine, wudaokou, RECORDS + CLERK)
    with engine.connect() as conn:
        df = export_frame(conn, wudaokou.id)
    with tiny_disk(tmp_path / "disk") as disk:
        for fmt in FORMATS:
            (disk / f"st.{fmt}").write_bytes(b"earlier")
        fill(disk)
        for fmt in FORMATS:
            for lang in ("zh", "en"):
                with pytest.raises(OSError) as info:
                    write_stations(df, disk / f"st.{fmt}", lang=lang)
                assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(disk / f"st.{fmt}")), fmt
        assert sorted(p.name for p in disk.iterdir()) == ["filler", *sorted(f"st.{fmt}" for fmt in FORMATS)]
        assert all((disk / f"st.{fmt}").read_bytes() == b"earlier" for fmt in FORMATS)
