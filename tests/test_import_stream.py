"""The registry file read path: a file read a chunk at a time in two passes (row numbers, repeats across chunks
and sheets, a file that changes between the passes), the encoding of short GBK text that is also valid UTF-8,
the layout columns of a clerk's sheet (序号, 备注) left out with a note, the new columns (phone, host_name, hours),
the language of the headers, and the sheets named by ``--sheet`` / ``sheet``. Real files, real PostGIS, real HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_runner import run_cli
from sqlalchemy import Engine, text
from workbooks import workbook_bytes

from yizhan.areas import AreaInfo
from yizhan.errors import ImportRejected, InvalidInput
from yizhan.stations.columns import read_registry, registry_chunks
from yizhan.stations.registry import registry_lang
from yizhan.stations.service import compact_ids, duplicates_across_chunks, exact_chunks, id_text, import_stations
from yizhan.stations.tables import implausible_characters

COLS = ["id", "name", "kind", "lon", "lat"]
ZH = ["编号", "名称", "类型", "经度", "纬度"]


def _stored(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT external_id, name FROM stations ORDER BY external_id")).all())


# --- two passes, a chunk at a time ------------------------------------------------------------------------------

def test_exact_chunks_cut_and_join_frames_in_order():
    frames = [pd.DataFrame({"a": range(s, e)}) for s, e in ((0, 3), (3, 4), (4, 11))]
    out = list(exact_chunks(frames, 4))
    assert [len(f) for f in out] == [4, 4, 3]
    assert pd.concat(out)["a"].tolist() == list(range(11))


def test_repeats_across_chunks_of_compact_ids():
    """Ids kept as one array of bytes: a repeat in a later chunk is named once per chunk with its first row; an id
    that differs by a trailing NUL or an empty id is no repeat."""
    ids = compact_ids(pd.Series(["A", "B", "A", "A", "A\x00", "", "", "B"]))
    assert ids.dtype.kind == "S" and [id_text(v) for v in ids[3:5]] == ["A", "A\x00"]
    rows = np.arange(2, 10)
    found = [(p.row, p.value, p.expected) for p in duplicates_across_chunks(ids, rows, 2)]
    assert found == [(4, "A", "a unique id (also used in row 2)"), (9, "B", "a unique id (also used in row 3)")]


def test_chunks_of_a_file_are_the_whole_file(tmp_path, monkeypatch):
    """Read in chunks of 3 rows, a CSV gives the frames of the whole file, again on each iteration."""
    monkeypatch.setattr("yizhan.stations.tables.CHUNK_ROWS", 3)
    rows = [f"S{i},站{i},small,116.32,40.0" for i in range(8)]
    path = tmp_path / "s.csv"
    path.write_text(",".join(COLS) + "\n" + "\n".join(rows[:4]) + "\n\n" + "\n".join(rows[4:]) + "\n",
                    encoding="utf-8")
    stream = registry_chunks(path)
    first = list(stream)
    assert [len(f) for f in first] == [3, 2, 3]  # the blank line 6 is left out of the second chunk
    again = pd.concat(list(stream), ignore_index=True)
    whole, _ = read_registry(path)
    assert again.equals(whole) and whole["id"].tolist() == [f"S{i}" for i in range(8)]
    assert whole["_row"].tolist() == [2, 3, 4, 5, 7, 8, 9, 10]


def test_repeats_across_chunks_and_sheets_are_named(engine, wudaokou, monkeypatch):
    """Sheets read in chunks of 2 rows, checked 3 at a time: an id of sheet a used again on sheet b, and a bad
    row in the last chunk, are all named with their sheet's row numbers; nothing is stored."""
    monkeypatch.setattr("yizhan.stations.tables.CHUNK_ROWS", 2)
    a = [COLS, *([f"A{i}", "甲", "small", 116.32, 40.0] for i in range(4))]
    b = [COLS, ["B0", "乙", "small", 116.32, 40.0], ["A1", "重复", "small", 116.32, 40.0],
         ["B2", "乙", "huge", 116.32, 40.0]]
    data = workbook_bytes({"a": a, "b": b})
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, "s.xlsx", data=data, filename="s.xlsx", area=wudaokou.name, chunk_rows=3)
    found = [(p.row, p.field) for p in info.value.problems]
    assert found == [(3, "id"), (4, "kind (sheet b)")]
    assert "also used in row 3" in info.value.problems[0].expected
    assert _stored(engine) == {}
    good = workbook_bytes({"a": a, "b": [COLS, *([f"B{i}", "乙", "small", 116.32, 40.0] for i in range(5))]})
    s = import_stations(engine, "s.xlsx", data=good, filename="s.xlsx", area=wudaokou.name, chunk_rows=3)
    assert (s.rows, s.inserted, s.sheets) == (9, 9, ["a", "b"])


def test_a_file_that_changes_between_the_passes_stores_nothing(engine, wudaokou, tmp_path):
    """The second pass reads the file again: one that now holds other rows is refused, nothing stored."""
    path = tmp_path / "s.csv"
    path.write_text(",".join(COLS) + "\nX1,一,small,116.32,40.0\nX2,二,small,116.32,40.0\n", encoding="utf-8")

    def rewrite(area: AreaInfo, lon: Any, lat: Any) -> list[str]:  # runs between the two passes
        path.write_text(",".join(COLS) + "\nY1,一,small,116.32,40.0\n", encoding="utf-8")
        return []

    with pytest.raises(InvalidInput, match="the file changed while it was imported; nothing was stored"):
        import_stations(engine, path, area=wudaokou.name, placement_check=rewrite)
    assert _stored(engine) == {}


# --- encodings -----------------------------------------------------------------------------------------------------

def test_short_gbk_text_that_is_also_valid_utf8_is_read_as_gbk(engine, wudaokou, tmp_path):
    """Every GBK character below is also a valid two-byte UTF-8 sequence (Latin, Greek, Cyrillic... when read so):
    the header (English) is found either way; the more plausible text, GBK, is chosen."""
    names = ["通途一站", "学院路", "医院站"]
    body = ",".join([*COLS, "address"]) + "\n" + "".join(
        f"G{i},{n},small,116.32,40.0,学院路\n" for i, n in enumerate(names))
    raw = body.encode("gbk")
    assert raw.decode("utf-8") != body  # valid UTF-8, and garbage as such
    assert implausible_characters(raw.decode("utf-8")) > implausible_characters(raw.decode("gb18030")) == 0
    path = tmp_path / "g.csv"
    path.write_bytes(raw)
    assert import_stations(engine, path, area=wudaokou.name).inserted == 3
    assert _stored(engine) == {f"G{i}": n for i, n in enumerate(names)}


def test_plain_utf8_text_stays_utf8_when_it_also_decodes_as_gb18030(engine, wudaokou, tmp_path):
    body = ",".join(COLS) + "\nU1,中文驿站,small,116.32,40.0\n"
    raw = body.encode("utf-8")
    raw.decode("gb18030")  # valid there too
    (tmp_path / "u.csv").write_bytes(raw)
    import_stations(engine, tmp_path / "u.csv", area=wudaokou.name)
    assert _stored(engine) == {"U1": "中文驿站"}


# --- layout columns, new columns, language of the headers ---------------------------------------------------------

CLERK = ("序号,编号,驿站名称,类型,经度,纬度,承办单位名称,联系电话,营业时间,备注\n"
         "1,K1,成府路驿站,小型,116.32,40.0,中国石化五道口加油站,010-62345678,Mo-Fr 09:00-18:00,新建\n"
         "2,K2,学院路驿站,小型,116.321,40.001,,13800000000,,\n")
NOTES = ["已忽略列 序号（序号列）/ left out column 序号 (row numbers)",
         "已忽略列 备注（备注列）/ left out column 备注 (remarks)"]


def test_layout_columns_are_left_out_with_a_note_and_new_columns_mapped(engine, wudaokou, tmp_path):
    path = tmp_path / "clerk.csv"
    path.write_bytes(CLERK.encode("gbk"))
    df, unknown = read_registry(path)
    assert unknown == [] and df.attrs["notes"] == NOTES and df.attrs["lang"] == "zh"
    assert df["host_name"].tolist() == ["中国石化五道口加油站", ""]
    assert df["phone"].tolist() == ["010-62345678", "13800000000"]
    assert df["opening_hours"].tolist() == ["Mo-Fr 09:00-18:00", ""]
    s = import_stations(engine, path, area=wudaokou.name)
    assert (s.inserted, s.notes, s.lang, s.ignored_columns) == (2, NOTES, "zh", [])
    with engine.connect() as conn:  # the area's exports follow the language of its last import
        assert registry_lang(conn, wudaokou.id) == "zh"
    english, _ = read_registry(tmp_path / "clerk.csv", data=b"No.,id,name,kind,lon,lat,phone\n1,E1,x,small,1,2,3\n",
                               filename="e.csv")
    assert english.attrs["lang"] == "en" and english.attrs["notes"] == [
        "已忽略列 No.（序号列）/ left out column No. (row numbers)"]
    assert english["phone"].tolist() == ["3"]


def test_the_command_prints_the_notes(cli_env, wudaokou, tmp_path):
    path = tmp_path / "clerk.csv"
    path.write_bytes(CLERK.encode("gbk"))
    out = run_cli("stations", "import", str(path), "--area", "wudaokou", env=cli_env).stdout
    assert "2 rows: 2 new" in out
    for note in NOTES:
        assert note in out


# --- sheets ------------------------------------------------------------------------------------------------------

BOOK = {"北区": [ZH, ["N1", "一", "小型", 116.32, 40.0]],
        "南区": [ZH, ["S1", "二", "小型", 116.325, 40.001]],
        "汇总": [["合计", "2 个驿站", "见各区"]]}


def test_only_the_sheets_named_are_read(engine, wudaokou):
    data = workbook_bytes(BOOK)
    with pytest.raises(InvalidInput, match="'汇总' hold data but not the registry's column headers"):
        import_stations(engine, "b.xlsx", data=data, filename="b.xlsx", area=wudaokou.name)
    s = import_stations(engine, "b.xlsx", data=data, filename="b.xlsx", area=wudaokou.name, sheets=["南区"])
    assert (s.inserted, s.sheets) == (1, ["南区"]) and list(_stored(engine)) == ["S1"]
    with pytest.raises(InvalidInput) as info:
        import_stations(engine, "b.xlsx", data=data, filename="b.xlsx", area=wudaokou.name, sheets=["东区"])
    message = str(info.value)
    assert "\n" not in message and "no sheet named '东区'" in message and "'北区', '南区', '汇总'" in message
    assert message.index("没有工作表") < message.index("no sheet named")
    with pytest.raises(InvalidInput, match=r"\(sheet '汇总'\): missing required column"):
        import_stations(engine, "b.xlsx", data=data, filename="b.xlsx", area=wudaokou.name, sheets=["汇总"])


def test_a_sheet_asked_of_a_csv_or_geojson_is_refused_by_name(engine, wudaokou):
    for name, body in (("s.csv", b"id,name,kind,lon,lat\nC1,x,small,116.32,40.0\n"),
                       ("s.geojson", b'{"type": "FeatureCollection", "features": []}')):
        with pytest.raises(InvalidInput, match=r"sheet\(s\) '北区' asked for, but a \.(csv|geojson) file has no"):
            import_stations(engine, name, data=body, filename=name, area=wudaokou.name, sheets=["北区"])


def test_sheet_option_and_form_field(cli_env, wudaokou, tmp_path, api, engine):
    book = tmp_path / "b.xlsx"
    book.write_bytes(workbook_bytes(BOOK))
    ok = run_cli("stations", "import", str(book), "--area", "wudaokou", "--sheet", "北区", "--sheet", "南区",
                 env=cli_env)
    assert "2 rows: 2 new" in ok.stdout and "read sheet(s): 北区, 南区" in ok.stdout
    no = run_cli("stations", "import", str(book), "--area", "wudaokou", "--sheet", "东区", env=cli_env, check=False)
    assert no.returncode == 2 and "Traceback" not in no.stderr and "'北区', '南区', '汇总'" in no.stderr

    def post(**form: str) -> Any:
        return api.post("/stations/import", headers={"X-API-Key": "test-key"}, data={"area": "wudaokou", **form},
                        files={"file": ("b.xlsx", book.read_bytes(), "application/octet-stream")})

    r = post(sheet="南区, 北区")
    assert r.status_code == 200, r.text
    assert (r.json()["updated"], r.json()["sheets"], r.json()["lang"]) == (2, ["北区", "南区"], "zh")
    r = post(sheet="东区")
    assert r.status_code == 422 and "no sheet named '东区'" in r.json()["detail"]
    clerk = api.post("/stations/import", headers={"X-API-Key": "test-key"}, data={"area": "wudaokou"},
                     files={"file": ("clerk.csv", CLERK.encode("gbk"), "text/csv")})
    assert clerk.status_code == 200, clerk.text
    assert clerk.json()["notes"] == NOTES


def test_reading_a_path_does_not_need_its_bytes_at_once(tmp_path: Path, monkeypatch):
    """A path is read from disk as its rows are asked for: the first chunk is there before the file's end is
    read (a file whose tail is bad gives its first chunk, then the problem)."""
    monkeypatch.setattr("yizhan.stations.tables.CHUNK_ROWS", 2)
    path = tmp_path / "p.csv"
    path.write_text(",".join(COLS) + "\n" + "".join(f"P{i},x,small,1,2\n" for i in range(4)) + "P9,a,b,small,1,2\n",
                    encoding="utf-8")
    chunks = iter(registry_chunks(path))
    assert next(chunks)["id"].tolist() == ["P0", "P1"]
    with pytest.raises(ImportRejected):
        list(chunks)


def test_a_geojson_file_of_polygons_only_says_point_geometry_expected(engine, wudaokou):
    square = {"type": "Polygon", "coordinates": [[[116.32, 40.0], [116.33, 40.0], [116.33, 40.01], [116.32, 40.0]]]}
    data = json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "P1", "name": "x", "kind": "small"}, "geometry": square}]}).encode()
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, "p.geojson", data=data, filename="p.geojson", area=wudaokou.name)
    assert [(p.row, p.field, p.value) for p in info.value.problems] == [(1, "geometry", "Polygon")]


def test_the_coordinate_system_check_reads_stored_positions_in_batches(engine, wudaokou, tmp_path):
    """Stations that did not move need no dictionary of every stored position: found in batches of 2 ids; one
    station moved 300 m (the GCJ-02 offset or a real move) is found in the last batch."""
    from yizhan.stations.service import any_stored_station_moved, first_pass
    lines = [f"M{i},m,small,{116.315 + i * 1e-4:.4f},40.0" for i in range(5)]
    path = tmp_path / "m.csv"
    path.write_text(",".join(COLS) + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    assert import_stations(engine, path, area=wudaokou.name).inserted == 5
    with engine.connect() as conn:
        same = first_pass(registry_chunks(path), coord="wgs84", positions=True)
        assert not any_stored_station_moved(conn, wudaokou.id, same, batch=2)
        path.write_text(",".join(COLS) + "\n" + "\n".join(lines[:4]) + "\nM4,m,small,116.3154,40.0027\n",
                        encoding="utf-8")
        moved = first_pass(registry_chunks(path), coord="wgs84", positions=True)
        assert any_stored_station_moved(conn, wudaokou.id, moved, batch=2)
