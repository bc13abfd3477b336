"""A registry sheet as a union clerk keeps it: Chinese headers, GBK CSV or an Excel workbook with a title row,
GCJ-02 coordinates picked from a map app, and the values clerks write (大站, 急救药箱, 正常运营, 五星, ★★★, 0 for
unrated, an organisation's name in 承办单位). Imported into the Wudaokou test area and checked field by field in
the database; and a sheet of bad values, whose refusal lists each distinct bad value once, in Chinese and English,
on the command line and over HTTP. Real PostGIS, real files, real HTTP."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
from api_data import STAFF
from cli_runner import run_cli
from conftest import WUDAOKOU_BOUNDS
from pyproj import Geod
from shapely.geometry import box
from sqlalchemy import Engine, text

from yizhan.areas import ensure_area
from yizhan.errors import GROUPS_SHOWN, ImportRejected, InvalidInput, RowProblem, split_languages
from yizhan.geo.coords import from_wgs84
from yizhan.stations.columns import read_registry
from yizhan.stations.importer import records_from_frame
from yizhan.stations.service import export_stations, import_stations

GEOD = Geod(ellps="WGS84")
HEADERS = ["序号", "编号", "驿站名称", "类型", "经度", "纬度", "承办单位", "地址", "街道", "服务设施", "开放时间",
           "座位数", "星级", "状态", "联系电话"]
TITLE = "海淀区五道口地区户外劳动者服务站点登记表（2026年11月）"

# id, name, kind, WGS 84 lon, lat, 承办单位, 地址, 街道, 服务设施, 开放时间, 座位数, 星级, 状态, 联系电话 — as written
ROWS: list[tuple[Any, ...]] = [
    ("WDK-001", "五道口加油站驿站", "大站", 116.3301, 40.0050, "中国石化五道口加油站", "成府路1号", "学院路街道",
     "饮水、充电桩、急救药箱、厕所", "全天", 20, "五星", "正常运营", "010-62345678"),
    ("WDK-002", "华清嘉园驿站", "小站", 116.3288, 39.9952, "加油站", "华清嘉园东门", "东升镇",
     "热水，充电宝，爱心冰箱", "周一至周五 09:00-18:00", "6个", "★★★", "运营", "(010)62345678"),
    ("WDK-003", "农商行驿站", "流动站", 116.3220, 40.0010, "北京农商银行五道口支行", "", "学院路街道",
     "饮用水;WiFi;雨伞", "", 0, 0, "开放", "138 0013 8000"),
    ("WDK-004", "成府路党群驿站", "大型", 116.3180, 39.9990, "成府路社区党群服务中心", "成府路35号", "燕园街道",
     "空调 暖气 微波炉", "每天 8:00-20:00", 12, "3星", "启用", "400-123-4567"),
    ("WDK-005", "工会驿站", "小型", 116.3150, 40.0080, "海淀区总工会", "", "清华园街道", "冷气/取暖/加热",
     "工作日 9:00-17:00，周末 10:00-16:00", 4, "一星", "在用", "010-62345678 转 123"),
    ("WDK-006", "物美便利店驿站", "流动", 116.3120, 40.0100, "物美便利店", "", "", "无线网、打气筒、座椅、休息区",
     "08:00-12:00、14:30-18:00", "", "", "暂停", "010-62345678-123"),
    ("WDK-007", "清华东门驿站", "固定站", 116.3250, 40.0040, "清华大学", "清华东门", "清华园街道", "", "24/7",
     8, "★★★☆☆", "停用", "95588"),
    ("WDK-008", "银行驿站", "大型驿站", 116.3270, 40.0000, "银行", "", "", "Wi-Fi、医药箱", "", 10, 3, "撤销",
     "（010）6234 5678"),
    ("WDK-009", "工会小站", "小站", 116.3200, 39.9960, "", "", "", "卫生间", "", "", 4, "关闭", ""),
    ("WDK-010", "工会大站", "大站", 116.3160, 39.9970, "工会", "", "", "", "", 30, "", "", "13800138000"),
]
# the stored fields of each row: kind, host, amenities, opening_hours, seats, stars, status
STORED: dict[str, tuple[Any, ...]] = {
    "WDK-001": ("large", "petrol_station", ["drinking_water", "charging", "first_aid", "toilet"], "24/7", 20, 5,
                "active"),
    "WDK-002": ("small", "petrol_station", ["drinking_water", "charging", "love_fridge"], "Mo-Fr 09:00-18:00", 6, 3,
                "active"),
    "WDK-003": ("mobile", "bank", ["drinking_water", "wifi", "umbrella"], None, 0, None, "active"),
    "WDK-004": ("large", "party_service_centre", ["air_conditioning", "heating", "microwave"], "Mo-Su 08:00-20:00",
                12, 3, "active"),
    "WDK-005": ("small", "union_office", ["air_conditioning", "heating", "microwave"],
                "Mo-Fr 09:00-17:00; Sa,Su 10:00-16:00", 4, 1, "active"),
    "WDK-006": ("mobile", "shop", ["wifi", "repair_kit", "rest_seats"], "Mo-Su 08:00-12:00,14:30-18:00", None, None,
                "closed"),
    "WDK-007": ("small", "other", [], "24/7", 8, 3, "closed"),
    "WDK-008": ("large", "bank", ["wifi", "first_aid"], None, 10, 3, "closed"),
    "WDK-009": ("small", None, ["toilet"], None, None, 4, "closed"),
    "WDK-010": ("large", "union_office", [], None, 30, None, "active"),
}
HOST_NAMES = {"WDK-001": "中国石化五道口加油站", "WDK-003": "北京农商银行五道口支行",
              "WDK-004": "成府路社区党群服务中心", "WDK-005": "海淀区总工会", "WDK-006": "物美便利店",
              "WDK-007": "清华大学"}
"""承办单位 written as a name (kept as written); the other rows give a host type or nothing."""
HOURS_TEXT = {"WDK-001": "全天", "WDK-002": "周一至周五 09:00-18:00", "WDK-004": "每天 8:00-20:00",
              "WDK-005": "工作日 9:00-17:00，周末 10:00-16:00", "WDK-006": "08:00-12:00、14:30-18:00"}
"""The hours written in Chinese, kept beside their OSM rule; WDK-007's 24/7 is the rule itself."""
PHONES = {"WDK-001": "010-62345678", "WDK-002": "(010)62345678", "WDK-003": "138 0013 8000",
          "WDK-004": "400-123-4567", "WDK-005": "010-62345678 转 123", "WDK-006": "010-62345678-123",
          "WDK-007": "95588", "WDK-008": "(010)6234 5678", "WDK-010": "13800138000"}
"""联系电话 as stored: as written, full-width brackets and spaces made plain."""


def _gcj(lon: float, lat: float) -> tuple[str, str]:
    """A WGS 84 point as a map app (Amap) shows it: GCJ-02, 6 decimals."""
    x, y = from_wgs84(np.array([lon]), np.array([lat]), "gcj02")
    return f"{x[0]:.6f}", f"{y[0]:.6f}"


def _sheet_rows(rows: list[tuple[Any, ...]] = ROWS) -> list[list[Any]]:
    out = []
    for i, r in enumerate(rows):
        lon, lat = _gcj(r[3], r[4])
        out.append([i + 1, r[0], r[1], r[2], float(lon), float(lat), *r[5:]])
    return out


def _gbk_csv(rows: list[list[Any]], headers: list[str] = HEADERS) -> bytes:
    frame = pd.DataFrame([[("" if v is None else str(v)) for v in r] for r in rows], columns=headers)
    return frame.to_csv(index=False).encode("gbk")


def _xlsx(rows: list[list[Any]], headers: list[str] = HEADERS) -> bytes:
    """A workbook as a clerk saves it: a merged title row above the header, numbers as numbers."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "驿站登记"
    ws.append([TITLE])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headers))
    ws.append(headers)
    for r in rows:  # a mobile number typed in is a number to Excel
        ws.append([None if v == "" else int(v) if j == len(headers) - 1 and str(v).isdigit() else v
                   for j, v in enumerate(r)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _stored(engine: Engine, area_id: int | None = None) -> dict[str, dict[str, Any]]:
    """The stored stations (of one area, or all) by external id: every field the registry keeps."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT external_id, name, kind, host, host_name, address, township, amenities, opening_hours, "
            "opening_hours_text, seats, stars, status, phone, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM stations "
            "WHERE CAST(:area AS int) IS NULL OR area_id = :area ORDER BY external_id"), {"area": area_id}).mappings()
        return {r["external_id"]: dict(r) for r in rows}


def _check_stored(engine: Engine) -> None:
    """Every row of ``ROWS`` stored field by field as ``STORED`` says, within a metre of its WGS 84 point."""
    got = _stored(engine)
    assert sorted(got) == sorted(STORED)
    for r in ROWS:
        sid = r[0]
        have = got[sid]
        kind, host, amenities, hours, seats, stars, status = STORED[sid]
        assert (have["name"], have["kind"], have["host"]) == (r[1], kind, host), sid
        assert have["host_name"] == HOST_NAMES.get(sid), sid
        assert have["opening_hours_text"] == HOURS_TEXT.get(sid), sid
        assert have["phone"] == PHONES.get(sid), sid
        assert (have["address"], have["township"]) == (r[6] or None, r[7] or None), sid
        assert list(have["amenities"]) == amenities, sid
        assert (have["opening_hours"], have["seats"], have["stars"], have["status"]) == (hours, seats, stars,
                                                                                         status), sid
        _, _, error = GEOD.inv(r[3], r[4], have["lon"], have["lat"])
        assert error < 1.0, (sid, error)


def test_a_gbk_csv_as_clerks_write_it(engine, wudaokou):
    data = _gbk_csv(_sheet_rows())
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # really GBK
    s = import_stations(engine, "登记表.csv", data=data, filename="登记表.csv", coord="gcj02")
    assert (s.inserted, s.updated) == (len(ROWS), 0)
    assert len(s.notes) == 1 and "序号" in s.notes[0]  # the layout column, left out with a note
    _check_stored(engine)


def test_an_xlsx_with_a_title_row_as_clerks_keep_it(engine, wudaokou):
    s = import_stations(engine, "登记表.xlsx", data=_xlsx(_sheet_rows()), filename="登记表.xlsx", coord="gcj02")
    assert (s.inserted, s.updated) == (len(ROWS), 0)
    assert len(s.notes) == 1 and "序号" in s.notes[0]
    _check_stored(engine)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_the_host_name_is_kept_as_written(tmp_path, suffix):
    """承办单位 holding an organisation's name: the name as written, its type read from it; a type stays a type."""
    path = tmp_path / f"登记表{suffix}"
    path.write_bytes(_gbk_csv(_sheet_rows()) if suffix == ".csv" else _xlsx(_sheet_rows()))
    df, _ = read_registry(path)
    records = {r.external_id: r for r in records_from_frame(df, source=path.name, coord="gcj02")}
    assert {sid: r.host_name for sid, r in records.items() if r.host_name} == HOST_NAMES
    assert {sid: r.host for sid, r in records.items()} == {sid: v[1] for sid, v in STORED.items()}
    assert {sid: r.opening_hours_text for sid, r in records.items() if r.opening_hours_text} == HOURS_TEXT
    assert {sid: r.phone for sid, r in records.items() if r.phone} == PHONES


def _frame(rows: list[dict[str, str]], **extra: list[str]) -> pd.DataFrame:
    """Rows of a read registry (field -> text), numbered from 2 as a sheet shows them."""
    fields = ["id", "name", "kind", "lon", "lat", "host", "address", "township", "amenities", "opening_hours",
              "seats", "stars", "status"]
    df = pd.DataFrame([{f: r.get(f, "") for f in fields} for r in rows])
    for name, values in extra.items():
        df[name] = values
    df["_row"] = range(2, len(df) + 2)
    df["_sheet"] = ""
    return df


def _row(i: int, **cells: str) -> dict[str, str]:
    return {"id": f"R{i}", "name": f"站{i}", "kind": "small", "lon": "116.32", "lat": "40.0", **cells}


def test_a_host_name_column_is_used_as_given():
    """承办单位名称 (``host_name``, mapped by the column reader) beside 承办单位: the name as given, the type from
    承办单位, or read from the name when 承办单位 is blank."""
    df = _frame([_row(1, host="加油站"), _row(2), _row(3, host="银行"), _row(4)],
                host_name=["中国石化五道口加油站", "北京农商银行五道口支行", "", ""])
    got = [(r.host, r.host_name) for r in records_from_frame(df, source="s.csv")]
    assert got == [("petrol_station", "中国石化五道口加油站"), ("bank", "北京农商银行五道口支行"), ("bank", None),
                   (None, None)]


def test_phone_numbers_and_hours_as_written_on_the_record():
    phones = ["010-62345678", "（010）6234 5678", "138 0013 8000", "400-123-4567", "95588", "010-62345678 转 123"]
    df = _frame([_row(i, opening_hours=" 24/7 ") for i in range(len(phones))], phone=phones)
    got = [r.phone for r in records_from_frame(df, source="s.csv")]
    assert got == ["010-62345678", "(010)6234 5678", "138 0013 8000", "400-123-4567", "95588",
                   "010-62345678 转 123"]
    assert {r.opening_hours for r in records_from_frame(df, source="s.csv")} == {"24/7"}
    bad = _frame([_row(1), _row(2), _row(3)], phone=["无", "1234", "010-62345678"])
    with pytest.raises(ImportRejected) as info:
        records_from_frame(bad, source="s.csv")
    assert [(p.row, p.field, p.value) for p in info.value.problems] == [(2, "phone", "无"), (3, "phone", "1234")]
    assert "5 到 20 位数字" in str(info.value) and "5 to 20 digits" in str(info.value)
    assert "联系电话 '无' (第 2 行)" in str(info.value)


def test_a_host_written_like_a_mistyped_code_is_refused_with_the_nearest_type():
    df = _frame([_row(1, host="petrol_statoin"), _row(2, host="Petrol Station")])
    with pytest.raises(ImportRejected) as info:
        records_from_frame(df, source="s.csv")
    [p] = info.value.problems
    assert (p.row, p.field, p.value, p.closest) == (2, "host", "petrol_statoin", "加油站")


# --- messages grouped by distinct bad value --------------------------------------------------------------------------

def _bad_sheet(n: int = 300) -> list[list[Any]]:
    """``n`` rows in the Wudaokou area; every second row has kind 大站点, every third amenity 饮水机 beside the
    accepted 急救药箱, every tenth stars 六星, rows 7, 77 and 177 status 停业整顿, row 100 a mistyped host code."""
    rows = []
    for i in range(n):
        row = i + 2
        lon, lat = _gcj(116.312 + 0.00005 * (i % 300), 40.0 + 0.00003 * (i % 300))
        rows.append([i + 1, f"B{i:03d}", f"驿站{i}", "大站点" if row % 2 == 0 else "小站", lon, lat,
                     "petrol_statoin" if row == 100 else "中国石化加油站", "", "",
                     "饮水机、急救药箱" if row % 3 == 0 else "饮水", "全天", "", "六星" if row % 10 == 0 else "三星",
                     "停业整顿" if row in (7, 77, 177) else "正常运营", "138 0013 8000"])
    return rows


KIND_ROWS = list(range(2, 302, 2))
AMENITY_ROWS = list(range(3, 302, 3))
STAR_ROWS = list(range(10, 302, 10))


def _joined(message: str) -> str:
    return " ".join(message.split())


def test_each_bad_value_is_listed_once_with_its_rows_and_the_nearest_word(engine, wudaokou):
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, "bad.csv", data=_gbk_csv(_bad_sheet()), filename="bad.csv", coord="gcj02")
    exc = info.value
    # the problems stay complete, one per row and field
    n = len(KIND_ROWS) + len(AMENITY_ROWS) + len(STAR_ROWS) + 3 + 1
    assert len(exc.problems) == n
    lines = str(exc).split("\n")
    assert lines[0] == (f"bad.csv: {n} 处问题（5 个不同的错误值），未导入任何数据 / "
                        f"{n} problem(s) with 5 distinct bad value(s), nothing was imported")
    assert len(lines) == 6
    kind = next(x for x in lines if "'大站点'" in x)
    shown = ", ".join(map(str, KIND_ROWS[:10]))
    assert kind == (f"  - 类型 '大站点' ({len(KIND_ROWS)} 行: {shown}, …): 可用 大型/小型/流动 — 最接近: 大型 / "
                    f"kind '大站点' ({len(KIND_ROWS)} rows: {shown}, …): expected large/small/mobile — closest: 大型")
    amenity = next(x for x in lines if "'饮水机'" in x)
    assert amenity.startswith(f"  - 服务设施 '饮水机' ({len(AMENITY_ROWS)} 行: 3, 6, 9,")
    assert "可用 饮水/充电/" in amenity and "医药箱" in amenity and "— 最接近: 饮水 /" in amenity
    assert "amenities '饮水机' (100 rows: 3, 6, 9," in amenity and amenity.endswith("— closest: 饮水")
    assert "急救药箱" not in str(exc)  # accepted: 医药箱
    status = next(x for x in lines if "'停业整顿'" in x)
    assert "状态 '停业整顿' (3 行: 7, 77, 177): 可用 运营/关闭 — 最接近: 关闭" in status
    assert "status '停业整顿' (3 rows: 7, 77, 177): expected active/closed" in status
    stars = next(x for x in lines if "'六星'" in x)
    assert "星级 '六星' (30 行: 10, 20," in stars and "一星至五星" in stars and "1 to 5 stars" in stars
    host = next(x for x in lines if "petrol_statoin" in x)
    assert "承办单位 'petrol_statoin' (第 100 行)" in host and "row 100, host='petrol_statoin'" in host
    assert "最接近: 加油站" in host
    groups = {(g.field, str(g.value)): g for g in exc.groups}
    assert groups[("kind", "大站点")].rows == KIND_ROWS
    assert groups[("amenities", "饮水机")].rows == AMENITY_ROWS
    assert _stored(engine) == {}


def test_at_most_fifty_values_are_listed_then_the_rest_counted():
    kinds = [f"站型{i}" for i in range(GROUPS_SHOWN + 12)]
    df = _frame([_row(i, kind=k) for i, k in enumerate(kinds)] + [_row(99, kind=kinds[0])])
    with pytest.raises(ImportRejected) as info:
        records_from_frame(df, source="s.csv")
    lines = str(info.value).split("\n")
    assert len(lines) == 1 + GROUPS_SHOWN + 1
    assert lines[-1] == "  ... 另有 12 组 / and 12 more"
    assert lines[1].startswith("  - 类型 '站型0' (2 行: 2, 64):")
    assert len(info.value.groups) == GROUPS_SHOWN + 12 and len(info.value.problems) == GROUPS_SHOWN + 13


def test_the_groups_of_several_sheets_name_the_sheet():
    df = _frame([_row(1, kind="大站点"), _row(2, kind="大站点")])
    df["_sheet"] = ["北区", "南区"]
    with pytest.raises(ImportRejected) as info:
        records_from_frame(df, source="s.xlsx")
    lines = str(info.value).split("\n")[1:]
    assert lines == ["  - 类型 (工作表 北区) '大站点' (第 2 行): 可用 大型/小型/流动 — 最接近: 大型 / "
                     "row 2, kind (sheet 北区)='大站点': expected large/small/mobile — closest: 大型",
                     "  - 类型 (工作表 南区) '大站点' (第 3 行): 可用 大型/小型/流动 — 最接近: 大型 / "
                     "row 3, kind (sheet 南区)='大站点': expected large/small/mobile — closest: 大型"]


def test_the_command_line_prints_one_line_per_bad_value(cli_env, engine, wudaokou, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(_gbk_csv(_bad_sheet()))
    proc = run_cli("stations", "import", str(path), "--area", "wudaokou", "--coord", "gcj02", env=cli_env,
                   check=False)
    assert proc.returncode == 2
    err = _joined(proc.stderr)
    assert "未导入任何数据" in err and "nothing was imported" in err
    assert err.count("'大站点'") == 2  # once in Chinese, once in English
    assert "类型 '大站点' (150 行: 2, 4, 6," in err and "— 最接近: 大型" in err
    assert "Traceback" not in proc.stderr
    assert _stored(engine) == {}


def test_the_api_answers_every_problem_and_the_groups(api, engine, wudaokou):
    r = api.post("/stations/import", files={"file": ("bad.csv", io.BytesIO(_gbk_csv(_bad_sheet())), "text/csv")},
                 data={"area": "wudaokou", "coord": "gcj02"}, headers=STAFF)
    assert r.status_code == 422, r.text
    body = r.json()
    assert re.fullmatch(r"bad\.csv: \d+ 处问题（5 个不同的错误值），未导入任何数据 / .*nothing was imported",
                        body["detail"])
    assert len(body["problems"]) == len(KIND_ROWS) + len(AMENITY_ROWS) + len(STAR_ROWS) + 4
    assert {p["row"] for p in body["problems"] if p["field"] == "kind"} == set(KIND_ROWS)
    kind = next(g for g in body["groups"] if g["field"] == "kind")
    assert kind == {"field": "kind", "field_zh": "类型", "value": "大站点", "rows": KIND_ROWS,
                    "count": len(KIND_ROWS), "expected": "expected large/small/mobile",
                    "expected_zh": "可用 大型/小型/流动", "closest": "大型"}
    amenity = next(g for g in body["groups"] if g["field"] == "amenities")
    assert (amenity["value"], amenity["rows"], amenity["closest"]) == ("饮水机", AMENITY_ROWS, "饮水")
    assert [g["rows"][0] for g in body["groups"]] == sorted(g["rows"][0] for g in body["groups"])
    assert api.get("/stations").json()["total"] == 0


def test_the_sample_registry_still_imports_unchanged(engine, wudaokou):
    """The Chinese sample of data/samples (大型/小型/流动, 加油站, 饮水、充电, 运营/关闭) reads as before."""
    sample = Path(__file__).resolve().parents[1] / "data" / "samples" / "stations_registry_zh.csv"
    s = import_stations(engine, sample)
    assert s.inserted == len(pd.read_csv(sample))
    got = _stored(engine)
    assert {v["kind"] for v in got.values()} <= {"large", "small", "mobile"}
    assert {v["status"] for v in got.values()} <= {"active", "closed"}


def test_hours_not_understood_are_grouped_with_the_readers_words_in_both_languages():
    df = _frame([_row(1, opening_hours="25点"), _row(2, opening_hours="25点"), _row(3, opening_hours="全天")])
    with pytest.raises(ImportRejected) as info:
        records_from_frame(df, source="s.csv")
    [line] = str(info.value).split("\n")[1:]
    assert line.startswith("  - 开放时间 '25点' (2 行: 2, 3): 时间 '25点' 不是 0:00 至 24:00 之间的时刻")
    assert "开放时间 '25点'：" not in line  # the reader's head is not repeated
    assert "opening_hours '25点' (2 rows: 2, 3): '25点' is no time of day" in line
    assert all(p.expected_zh and "可写作" in p.expected_zh for p in info.value.problems)


def test_a_bilingual_expectation_of_another_importer_is_split_into_the_two_languages():
    """Importers that write their expectation as one text, Chinese / English (demand files), group the same way."""
    rejected = ImportRejected("orders.csv", [
        RowProblem(3, "weight", "-2", "大于等于 0 的数 / a number >= 0"),
        RowProblem(4, "weight", "-2", "大于等于 0 的数 / a number >= 0"),
        RowProblem(5, "lon/lat", "1.0, 2.0", "区域 'grid' 内的点（或加 --clip）/ a point inside area 'grid'"),
        RowProblem(6, "lat", "abc", "a number")])
    assert str(rejected).split("\n")[1:] == [
        "  - 订单量 '-2' (2 行: 3, 4): 大于等于 0 的数 / weight '-2' (2 rows: 3, 4): a number >= 0",
        "  - 经纬度 '1.0, 2.0' (第 5 行): 区域 'grid' 内的点（或加 --clip） / "
        "row 5, lon/lat='1.0, 2.0': a point inside area 'grid'",
        "  - 纬度 'abc' (第 6 行) / row 6, lat='abc': a number"]
    assert split_languages("lon/lat in degrees") == (None, "lon/lat in degrees")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".geojson"])
def test_the_clerks_registry_exported_imports_again_unchanged(engine, wudaokou, tmp_path, suffix):
    """Exported and imported into another area of the same bounds, every field is stored as it was (host names,
    phones and the hours as written included)."""
    import_stations(engine, "登记表.csv", data=_gbk_csv(_sheet_rows()), filename="登记表.csv", coord="gcj02")
    before = _stored(engine)
    path, n = export_stations(engine, tmp_path / f"导出{suffix}", area="wudaokou")
    assert n == len(ROWS)
    with engine.begin() as conn:
        ensure_area(conn, "copy", boundary=box(*WUDAOKOU_BOUNDS), source="test")
    s = import_stations(engine, path, area="copy")
    assert (s.inserted, s.updated) == (len(ROWS), 0)
    with engine.connect() as conn:
        area_ids = dict(conn.execute(text("SELECT name, id FROM areas")).all())
    again = _stored(engine, area_ids["copy"])
    for sid, row in before.items():
        for field, value in row.items():
            if field in ("lon", "lat"):
                assert again[sid][field] == pytest.approx(value, abs=1e-7), (sid, field)
            else:
                assert again[sid][field] == value, (sid, field)


def test_an_unknown_coordinate_system_is_named_in_both_languages():
    expected = "^坐标系 coord='amap'：可用 wgs84, gcj02, bd09 / coord='amap': expected one of wgs84, gcj02, bd09$"
    with pytest.raises(InvalidInput, match=expected):
        records_from_frame(_frame([_row(1)]), source="s.csv", coord="amap")
