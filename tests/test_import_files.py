"""What gets into the registry: numbers typed in full-width forms, non-finite coordinates (refused by the importer
and impossible to store), ragged CSV rows, column lengths, workbooks with several sheets or formulas, decompression
bombs, other separators, title rows, GeoJSON geometries and CRSs, neutralised spreadsheet cells. Real PostGIS."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cli_runner import run_cli
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from workbooks import workbook_bytes

from yizhan.errors import ImportRejected, InvalidInput
from yizhan.stations.service import import_stations

HEADER = "id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status\n"


def _write(tmp_path: Path, body: str, name: str = "s.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_text(body, encoding=encoding)
    return p


def _stations(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text("SELECT external_id, name, address, township, seats, stars, opening_hours, "
                                "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM stations ORDER BY external_id"), conn)


# --- item 2: full-width digits, non-finite coordinates ---------------------------------------------------------

def test_full_width_numbers_are_read_as_the_digits_they_are(engine, wudaokou, tmp_path):
    body = HEADER + "F1,全角,small,１１６.３２０１,４０．００２３,,,,,,１２,３,\n"
    s = import_stations(engine, _write(tmp_path, body))
    assert s.inserted == 1
    row = _stations(engine).iloc[0]
    assert row["lon"] == pytest.approx(116.3201, abs=1e-9)
    assert row["lat"] == pytest.approx(40.0023, abs=1e-9)
    assert (row["seats"], row["stars"]) == (12, 3)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1_16.32", "116,32", "٣٩.٩"])
def test_non_finite_or_unusual_coordinates_are_refused_by_name(engine, wudaokou, tmp_path, value):
    body = HEADER + f'N1,x,small,116.32,"{value}",,,,,,,,\n'
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, _write(tmp_path, body))
    [problem] = info.value.problems
    assert (problem.row, problem.field) == (2, "lat")
    assert "decimal degrees" in problem.expected
    assert _stations(engine).empty


@pytest.mark.parametrize("table", ["stations", "candidate_sites"])
@pytest.mark.parametrize("point", ["ST_MakePoint('NaN', 40)", "ST_MakePoint(116.3, 'Infinity')",
                                   "ST_MakePoint(200, 40)", "'POINT EMPTY'::geometry"])
def test_a_non_finite_point_cannot_be_stored(engine, wudaokou, table, point):
    extra = ("kind", "'small'") if table == "stations" else ("host_type", "'other'")
    source = ", source" if table == "candidate_sites" else ""
    source_value = ", 'test'" if table == "candidate_sites" else ""
    with pytest.raises(IntegrityError, match="finite"), engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {table} (area_id, external_id, name, {extra[0]}{source}, geom) "
                          f"VALUES (:a, 'X', 'x', {extra[1]}{source_value}, ST_SetSRID({point}, 4326))"),
                     {"a": wudaokou.id})


COLS = ["id", "name", "kind", "lon", "lat"]


# --- item 7: ragged CSV rows ---------------------------------------------------------------------------------

def test_a_row_with_one_field_too_many_is_named_not_shifted(engine, wudaokou, tmp_path):
    body = HEADER + "R1,ok,small,116.32,40.0,,,,,,,,\n" + "R2,成府路,1号,small,116.32,40.0,,,,,,,,\n"
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, _write(tmp_path, body))
    [problem] = info.value.problems
    assert (problem.row, problem.field, problem.value) == (3, "fields", 14)
    assert "13 fields like the header row (row 1)" in problem.expected and "double quotes" in problem.expected
    assert _stations(engine).empty


def test_trailing_commas_and_missing_fields_are_named(engine, wudaokou, tmp_path):
    body = (HEADER + "T1,ok,small,116.32,40.0,,,,,,,,\n" + "T2,trailing,small,116.32,40.0,,,,,,,,,\n"
            + "T3,short,small,116.32,40.0\n" + "\n" + "T4,ok,small,116.32,40.0,,,,,,,,\n")
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, _write(tmp_path, body))
    assert [(p.row, p.field, p.value) for p in info.value.problems] == [(3, "fields", 14), (4, "fields", 5)]
    assert "kind=" not in str(info.value)


def test_a_blank_line_keeps_the_row_numbers_of_a_spreadsheet(engine, wudaokou, tmp_path):
    body = HEADER + "B1,ok,small,116.32,40.0,,,,,,,,\n\nB2,bad,huge,116.32,40.0,,,,,,,,\n"
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, _write(tmp_path, body))
    assert [(p.row, p.field) for p in info.value.problems] == [(4, "kind")]


def test_row_numbers_hold_across_the_chunks_a_csv_is_read_in(engine, wudaokou, tmp_path, monkeypatch):
    monkeypatch.setattr("yizhan.stations.tables.CHUNK_ROWS", 2)
    good = "".join(f"K{i},ok,small,116.32,40.0,,,,,,,,\n" for i in range(5))
    body = HEADER + good + "\n" + "K9,ok,huge,116.32,40.0,,,,,,,,\n"
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, _write(tmp_path, body))
    assert [(p.row, p.field) for p in info.value.problems] == [(8, "kind")]
    body = HEADER + good + "K8,a,b,small,116.32,40.0,,,,,,,,\n" + good.replace("K", "L")
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, _write(tmp_path, body))
    assert [(p.row, p.value) for p in info.value.problems] == [(7, 14)]
    assert import_stations(engine, _write(tmp_path, HEADER + good)).inserted == 5


# --- item 12: every length limit of a stored column -----------------------------------------------------------

def test_the_limits_are_those_of_the_stations_table():
    from yizhan.db.models import Station
    from yizhan.stations.importer import LIMITS
    assert LIMITS["opening_hours"] == Station.__table__.c["opening_hours"].type.length == 300
    assert {"external_id", "name", "address", "township", "opening_hours", "kind", "host", "status", "host_name",
            "phone", "opening_hours_text"} == set(LIMITS)


def test_valid_opening_hours_longer_than_the_column_are_named(engine, wudaokou, tmp_path):
    hours = "; ".join(["Mo-Fr 08:00-12:00,13:00-18:00"] * 12)  # valid, 370 characters
    assert len(hours) > 300
    body = (HEADER + f'L1,ok,small,116.32,40.0,,,,,"{hours}",,,\n'
            + f"L2,{'长' * 201},small,116.32,40.0,,{'址' * 301},{'街' * 101},,,,,\n"
            + f"{'x' * 101},ok,small,116.32,40.0,,,,,,,,\n")
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, _write(tmp_path, body))
    found = {(p.row, p.field): p.expected for p in info.value.problems}
    assert set(found) == {(2, "opening_hours"), (3, "name"), (3, "address"), (3, "township"), (4, "id")}
    assert "at most 300 characters" in found[(2, "opening_hours")]
    assert "at most 200 characters (this one has 201)" in found[(3, "name")]
    assert _stations(engine).empty


# --- item 8: workbooks with several sheets --------------------------------------------------------------------

def test_every_sheet_with_the_registry_headers_is_read(engine, wudaokou, tmp_path):
    from yizhan.stations.columns import read_registry, sheets_read
    data = workbook_bytes({"北区": [COLS, ["S1", "一", "small", 116.32, 40.0]],
                  "南区": [["编号", "名称", "类型", "经度", "纬度"], ["S2", "二", "大型", 116.325, 40.001]],
                  "空": []})
    df, _ = read_registry("s.xlsx", data=data, filename="s.xlsx")
    assert sheets_read(df) == ["北区", "南区"]
    s = import_stations(engine, "s.xlsx", data=data, filename="s.xlsx")
    assert s.inserted == 2
    assert list(_stations(engine)["external_id"]) == ["S1", "S2"]


def test_a_workbook_of_empty_sheets_is_named_as_such(engine, wudaokou):
    with pytest.raises(InvalidInput, match="every sheet of the workbook is empty"):
        import_stations(engine, "e.xlsx", data=workbook_bytes({"a": [], "b": [[None, ""]]}), filename="e.xlsx")


def test_a_sheet_with_data_but_no_headers_is_named_and_nothing_imported(engine, wudaokou):
    data = workbook_bytes({"stations": [COLS, ["S1", "一", "small", 116.32, 40.0]],
                  "more": [["S2", "二", "small", 116.325, 40.001]]})
    with pytest.raises(InvalidInput, match=r"sheet\(s\) 'more' hold data but not the registry's column headers"):
        import_stations(engine, "s.xlsx", data=data, filename="s.xlsx")
    assert _stations(engine).empty


def test_problems_of_several_sheets_name_the_sheet(engine, wudaokou):
    data = workbook_bytes({"a": [COLS, ["S1", "一", "huge", 116.32, 40.0]],
                           "b": [COLS, ["S2", "二", "small", "x", 40.0]]})
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, "s.xlsx", data=data, filename="s.xlsx")
    assert [(p.row, p.field) for p in info.value.problems] == [(2, "kind (sheet a)"), (2, "lon (sheet b)")]


# --- item 9: decompression bombs --------------------------------------------------------------------------------

def _bomb(rows: int, filler_mb: int = 0) -> bytes:
    """A workbook whose one sheet declares and holds ``rows`` rows, plus ``filler_mb`` MB of zeros in an extra
    archive member: a few hundred kB compressed."""
    head = "".join(f'<c t="inlineStr" r="{c}1"><is><t>{n}</t></is></c>'
                   for c, n in zip("ABCDE", COLS, strict=True))
    body = "".join(f'<row r="{i}"><c r="A{i}"><v>{i}</v></c></row>' for i in range(2, rows + 1))
    sheet = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
             f'spreadsheetml/2006/main"><dimension ref="A1:E{rows}"/><sheetData><row r="1">{head}</row>{body}'
             '</sheetData></worksheet>')
    src = zipfile.ZipFile(io.BytesIO(workbook_bytes({"s": [COLS]})))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            z.writestr(item, sheet if item.filename == "xl/worksheets/sheet1.xml" else src.read(item))
        if filler_mb:
            z.writestr("xl/media/filler.bin", b"\0" * (filler_mb * 1024 * 1024))
    return out.getvalue()


def test_a_workbook_that_unpacks_beyond_the_limit_is_refused_before_parsing(engine, wudaokou):
    from yizhan.stations.columns import read_registry
    from yizhan.stations.tables import ImportLimits
    data = _bomb(3, filler_mb=40)
    assert len(data) < 200_000
    with pytest.raises(InvalidInput, match=r"unpacks to 40 MB, more than the limit of 30 MB "
                                           r"\(YIZHAN_MAX_UNCOMPRESSED_MB\)"):
        read_registry("b.xlsx", data=data, filename="b.xlsx", limits=ImportLimits(max_uncompressed_mb=30))


def test_a_sheet_with_more_rows_than_the_limit_is_refused(engine, wudaokou):
    from yizhan.stations.columns import read_registry
    from yizhan.stations.tables import ImportLimits
    with pytest.raises(InvalidInput, match=r"sheet 's' has 5,000 rows, more than the limit of 1,000 "
                                           r"\(YIZHAN_MAX_IMPORT_ROWS\)"):
        read_registry("b.xlsx", data=_bomb(5000), filename="b.xlsx", limits=ImportLimits(max_rows=1000))
    csv_body = (HEADER + "R,ok,small,116.32,40.0,,,,,,,,\n" * 20).encode()
    with pytest.raises(InvalidInput, match=r"more than 10 rows, the limit of one import"):
        read_registry("b.csv", data=csv_body, filename="b.csv", limits=ImportLimits(max_rows=10))


def test_the_default_limits_are_the_settings():
    from yizhan.settings import Settings
    from yizhan.stations.tables import ImportLimits
    assert ImportLimits.from_settings(Settings()) == ImportLimits()
    assert ImportLimits.from_settings(Settings(max_import_rows=5, max_uncompressed_mb=2)) == ImportLimits(5, 2)
    assert ImportLimits().max_rows >= 1_000_000


def test_the_command_says_which_sheets_were_read_and_honours_the_limits(cli_env, wudaokou, tmp_path):
    book = tmp_path / "two.xlsx"
    book.write_bytes(workbook_bytes({"北区": [COLS, ["S1", "一", "small", 116.32, 40.0]],
                            "南区": [COLS, ["S2", "二", "small", 116.325, 40.001]]}))
    ok = run_cli("stations", "import", str(book), "--area", "wudaokou", env=cli_env)
    assert "2 rows: 2 new" in ok.stdout and "read sheet(s): 北区, 南区" in ok.stdout
    bomb = tmp_path / "bomb.xlsx"
    bomb.write_bytes(_bomb(3, filler_mb=40))
    no = run_cli("stations", "import", str(bomb), "--area", "wudaokou", check=False,
                 env={**cli_env, "YIZHAN_MAX_UNCOMPRESSED_MB": "30"})
    assert no.returncode == 2 and "Traceback" not in no.stderr
    assert "more than the limit of 30 MB (YIZHAN_MAX_UNCOMPRESSED_MB)" in " ".join(no.stderr.split())


# --- confusing answers: separators, encodings, title rows, formulas, GeoJSON -------------------------------------

@pytest.mark.parametrize("sep", ["\t", ";"])
def test_tab_and_semicolon_separated_files_are_read(engine, wudaokou, tmp_path, sep):
    body = sep.join(COLS) + "\n" + sep.join(["D1", "分隔", "small", "116.32", "40.0"]) + "\n"
    assert import_stations(engine, _write(tmp_path, body)).inserted == 1


def test_a_separator_hint_when_the_headers_are_unknown(engine, wudaokou, tmp_path):
    body = "code\tlabel\tx1\ty1\nD1\t分隔\t116.32\t40.0\n"
    with pytest.raises(InvalidInput, match="this file looks tab-separated"):
        import_stations(engine, _write(tmp_path, body))


def test_big5_and_garbled_headers(engine, wudaokou, tmp_path):
    body = "編號,名稱,類型,經度,緯度\nT1,五道口驛站,小型,116.32,40.0\n"
    assert import_stations(engine, _write(tmp_path, body, encoding="big5")).inserted == 1
    p = tmp_path / "g.csv"  # UTF-8 read as Latin-1 and saved as UTF-8 again
    p.write_text("编号,名称,类型,经度,纬度\n".encode().decode("latin-1") + "G1,x,small,116.32,40.0\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"the column names look garbled.*save it as CSV UTF-8"):
        import_stations(engine, p)


def test_title_rows_above_the_header_are_skipped(engine, wudaokou, tmp_path):
    body = ("2026年五道口驿站名录,,,,\n填报单位：工会,,,,\n" + ",".join(COLS)
            + "\nH1,标题,small,116.32,40.0\nH2,标题,huge,116.32,40.0\n")
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, _write(tmp_path, body))
    assert [(p.row, p.field) for p in info.value.problems] == [(5, "kind")]
    sheet = workbook_bytes({"名录": [["2026年五道口驿站名录"], [], COLS, ["H1", "标题", "small", 116.32, 40.0]]})
    assert import_stations(engine, "t.xlsx", data=sheet, filename="t.xlsx").inserted == 1


def test_formulas_without_stored_values_are_named(engine, wudaokou):
    data = workbook_bytes({"s": [COLS, ["F1", '=CONCAT("成府","路")', "small", 116.32, 40.0]]})
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, "f.xlsx", data=data, filename="f.xlsx")
    [problem] = info.value.problems
    assert (problem.row, problem.field, problem.value) == (2, "name", '=CONCAT("成府","路")')
    assert "open the file in Excel" in problem.expected and "save it" in problem.expected


def test_a_sheet_is_read_in_chunks_with_its_rows_and_columns_kept(engine, wudaokou, monkeypatch):
    monkeypatch.setattr("yizhan.stations.tables.CHUNK_ROWS", 2)
    rows: list[list[object]] = [COLS, *([f"W{i}", "n", "small", 116.32, 40.0] for i in range(4))]
    formula = workbook_bytes({"s": [*rows, ["W9", "=A2", "small", 116.32, 40.0]]})
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, "w.xlsx", data=formula, filename="w.xlsx")
    assert [(p.row, p.field) for p in info.value.problems] == [(6, "name")]
    beyond = workbook_bytes({"s": [*rows, ["W9", "n", "small", 116.32, 40.0, "备注"]]})
    with pytest.raises(InvalidInput, match=r"unknown column\(s\) '\(no header, column 6\)'"):
        import_stations(engine, "w.xlsx", data=beyond, filename="w.xlsx")
    assert import_stations(engine, "w.xlsx", data=workbook_bytes({"s": rows}), filename="w.xlsx").inserted == 4


def _geojson(features: list[dict[str, object]], **extra: object) -> bytes:
    return json.dumps({"type": "FeatureCollection", **extra, "features": features}).encode()


def test_geojson_with_polygons_says_point_geometry_expected(engine, wudaokou):
    square = {"type": "Polygon", "coordinates": [[[116.32, 40.0], [116.33, 40.0], [116.33, 40.01], [116.32, 40.0]]]}
    data = _geojson([{"type": "Feature", "properties": {"id": "P1", "name": "x", "kind": "small"},
                      "geometry": {"type": "Point", "coordinates": [116.32, 40.0]}},
                     {"type": "Feature", "properties": {"id": "P2", "name": "y", "kind": "small"},
                      "geometry": square}])
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, "p.geojson", data=data, filename="p.geojson")
    assert [(p.row, p.field, p.value) for p in info.value.problems] == [(2, "geometry", "Polygon")]
    assert "Point geometry" in str(info.value)


def test_geojson_crs_is_reprojected_or_refused_by_name(engine, wudaokou):
    from pyproj import Transformer
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(116.3201, 40.0023)
    feature = {"type": "Feature", "properties": {"id": "M1", "name": "x", "kind": "small"},
               "geometry": {"type": "Point", "coordinates": [x, y]}}
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    import_stations(engine, "m.geojson", data=_geojson([feature], crs=crs), filename="m.geojson")
    row = _stations(engine).iloc[0]
    assert (row["lon"], row["lat"]) == (pytest.approx(116.3201, abs=1e-7), pytest.approx(40.0023, abs=1e-7))
    bad = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::999999"}}
    with pytest.raises(InvalidInput, match=r"crs 'urn:ogc:def:crs:EPSG::999999' is not a coordinate system"):
        import_stations(engine, "m.geojson", data=_geojson([feature], crs=bad), filename="m.geojson")


# --- round trip of neutralised CSV cells -----------------------------------------------------------------------

def test_an_exported_apostrophe_comes_off_once(engine, wudaokou, tmp_path):
    body = (",".join([*COLS, "address"]) + "\n" + "Q1,'=SUM(A1),small,116.32,40.0,'-3号\n"
            + "Q2,''+1,small,116.32,40.0,'plain\n")
    import_stations(engine, _write(tmp_path, body))
    stored = _stations(engine).set_index("external_id")
    assert stored.loc["Q1", "name"] == "=SUM(A1)" and stored.loc["Q1", "address"] == "-3号"
    assert stored.loc["Q2", "name"] == "'+1" and stored.loc["Q2", "address"] == "'plain"


def test_a_chart_sheet_beside_the_stations_is_no_obstacle(engine, wudaokou):
    wb = Workbook()
    ws = wb.active
    ws.title = "stations"
    ws.append(COLS)
    ws.append(["C1", "图表旁", "small", 116.32, 40.0])
    chart = BarChart()
    chart.add_data(Reference(ws, min_col=4, min_row=1, max_row=2), titles_from_data=True)
    wb.create_chartsheet("chart").add_chart(chart)
    buf = io.BytesIO()
    wb.save(buf)
    s = import_stations(engine, "c.xlsx", data=buf.getvalue(), filename="c.xlsx")
    assert (s.inserted, s.sheets) == (1, ["stations"])


# --- the same answers over HTTP ----------------------------------------------------------------------------------

def test_http_answers_name_the_row_the_sheets_and_the_limit(api, engine, wudaokou):
    key = {"X-API-Key": "test-key"}

    def post(name: str, content: bytes) -> Any:
        r = api.post("/stations/import", files={"file": (name, content, "application/octet-stream")}, headers=key)
        assert r.status_code in (200, 422), r.text
        return r.json()

    problems = post("r.csv", (HEADER + "R1,成府路,1号,small,116.32,40.0,,,,,,,,\n").encode())["problems"]
    assert [(p["row"], p["field"], p["value"]) for p in problems] == [(2, "fields", "14")]
    assert "13 fields like the header row (row 1)" in problems[0]["expected"]
    two = post("two.xlsx", workbook_bytes({"北区": [COLS, ["S1", "一", "small", 116.32, 40.0]],
                                  "南区": [COLS, ["S2", "二", "small", 116.325, 40.001]]}))
    assert (two["inserted"], two["sheets"]) == (2, ["北区", "南区"])
    fullwidth = post("f.csv", (HEADER + "F1,全角,small,１１６.３２,４０.００,,,,,,,,\n").encode())
    assert fullwidth["inserted"] == 1
    assert _stations(engine).set_index("external_id").loc["F1", "lon"] == pytest.approx(116.32)
