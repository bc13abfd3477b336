"""Station registry: import formats, validation of every row, one transaction, upsert, export round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Geod
from sqlalchemy import text

from yizhan.errors import ImportRejected, InvalidInput
from yizhan.geo.coords import from_wgs84
from yizhan.stations.importer import StationRecord
from yizhan.stations.registry import get_station, list_stations, nearest_stations, stations_frame, upsert_stations
from yizhan.stations.schema import StationPublic, station_feature
from yizhan.stations.service import export_stations, import_stations

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "stations_sample.csv"
HEADER = "id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status\n"


def _write(tmp_path: Path, body: str, name: str = "s.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_text(body, encoding=encoding)
    return p


def _stations(engine) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return pd.read_sql(text("SELECT external_id, name, kind, amenities, status, ST_X(geom) AS lon, "
                                "ST_Y(geom) AS lat FROM stations ORDER BY external_id"), conn)


def test_sample_file_imports(engine, wudaokou):
    s = import_stations(engine, SAMPLE)
    df = pd.read_csv(SAMPLE)
    assert (s.rows, s.inserted, s.updated) == (len(df), len(df), 0)
    stored = _stations(engine)
    assert sorted(stored.external_id) == sorted(df["id"].astype(str))
    row = stored.set_index("external_id").loc[str(df["id"][0])]
    assert row["lon"] == pytest.approx(df["lon"][0], abs=1e-9)
    assert row["lat"] == pytest.approx(df["lat"][0], abs=1e-9)


def test_gbk_chinese_headers_and_vocabulary(engine, wudaokou, tmp_path):
    body = ("编号,名称,类型,经度,纬度,地址,街道,设施,开放时间,座位数,星级,状态\n"
            "GB1,成府路驿站,大型,116.3200,40.0000,成府路1号,五道口街道,饮水;充电；卫生间、爱心冰箱,24/7,12,5,运营\n"
            "GB2,华清嘉园流动驿站,流动,116.3250,39.9950,,,微波炉,Mo-Fr 08:00-20:00,,,关闭\n")
    s = import_stations(engine, _write(tmp_path, body, encoding="gbk"))
    assert s.inserted == 2
    stored = _stations(engine).set_index("external_id")
    assert stored.loc["GB1", "name"] == "成府路驿站"
    assert stored.loc["GB1", "kind"] == "large"
    assert list(stored.loc["GB1", "amenities"]) == ["drinking_water", "charging", "toilet", "love_fridge"]
    assert stored.loc["GB2", "kind"] == "mobile"
    assert stored.loc["GB2", "status"] == "closed"


def test_every_bad_row_is_reported_and_nothing_changes(engine, wudaokou, tmp_path):
    import_stations(engine, SAMPLE)
    before = _stations(engine)
    body = HEADER + (
        "B1,ok,small,116.32,40.0,,,,,,,,\n"                      # row 2: fine
        "B2,swapped,small,40.0,116.32,,,,,,,,\n"                 # row 3: lat out of range, swapped
        "B3,bad kind,huge,116.32,40.0,,,,,,,,\n"                 # row 4
        "B4,bad amenity,small,116.32,40.0,,,,teleporter,,,,\n"   # row 5
        "B5,bad hours,small,116.32,40.0,,,,,Mo-Fx 25:00,,,\n"    # row 6
        "B1,dup id,small,116.32,40.0,,,,,,,,\n"                  # row 7
        "B7,far away,small,121.47,31.23,,,,,,,,\n"               # row 8: Shanghai, outside the area
        "B8,no name,small,116.32,nan,,,,,,,,\n"                  # row 9: NaN
        "B9,,small,116.32,40.0,,,,,,,9,\n"                       # row 10: name missing, stars 9
    )
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, _write(tmp_path, body))
    found = {(p.row, p.field) for p in info.value.problems}
    assert {(3, "lat"), (4, "kind"), (5, "amenities"), (6, "opening_hours"), (7, "id"), (8, "lon/lat"),
            (9, "lat"), (10, "name"), (10, "stars")} <= found
    assert not any(p.row == 2 for p in info.value.problems)
    swapped = next(p for p in info.value.problems if p.row == 3)
    assert "swapped" in swapped.expected
    message = str(info.value)
    assert "nothing was imported" in message and "row 4, kind='huge'" in message
    pd.testing.assert_frame_equal(_stations(engine), before)


def test_reimport_upserts_by_id_and_keeps_others(engine, wudaokou, tmp_path):
    import_stations(engine, _write(tmp_path, HEADER + "U1,one,small,116.32,40.0,,,,,,,,\n"
                                                      "U2,two,small,116.31,40.0,,,,,,,,\n"))
    s = import_stations(engine, _write(tmp_path, HEADER + "U2,two renamed,large,116.315,40.001,,,,,,,,\n"
                                                          "U3,three,small,116.33,40.01,,,,,,,,\n", "b.csv"))
    assert (s.inserted, s.updated) == (1, 1)
    stored = _stations(engine).set_index("external_id")
    assert list(stored.index) == ["U1", "U2", "U3"]
    assert stored.loc["U2", "name"] == "two renamed" and stored.loc["U2", "kind"] == "large"


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_chinese_coordinates_are_stored_as_wgs84(engine, wudaokou, tmp_path, system):
    wlon, wlat = 116.3201, 40.0023
    x, y = from_wgs84(np.array([wlon]), np.array([wlat]), system)
    body = HEADER + f"C1,gcj,small,{x[0]:.9f},{y[0]:.9f},,,,,,,,\n"
    import_stations(engine, _write(tmp_path, body), coord=system)
    row = _stations(engine).iloc[0]
    _, _, err = Geod(ellps="WGS84").inv(wlon, wlat, row["lon"], row["lat"])
    assert err < 0.5
    _, _, offset = Geod(ellps="WGS84").inv(wlon, wlat, float(x[0]), float(y[0]))
    assert offset > 100  # the input really was shifted


def test_file_level_errors(engine, wudaokou, tmp_path):
    with pytest.raises(InvalidInput, match="empty"):
        import_stations(engine, _write(tmp_path, ""))
    with pytest.raises(InvalidInput, match=r"missing required column.*lat"):
        import_stations(engine, _write(tmp_path, "id,name,kind,lon\nA,b,small,116\n"))
    with pytest.raises(InvalidInput, match=r"unsupported file type \.txt2"):
        import_stations(engine, _write(tmp_path, "x", name="s.txt2"))
    with pytest.raises(InvalidInput, match="neither UTF-8 nor GBK"):
        p = tmp_path / "bin.csv"
        p.write_bytes(b"id,name\n\xff\xfe\xfa\xfb\x81\x30\n")
        import_stations(engine, p)
    with pytest.raises(InvalidInput, match="coord='wgs'"):
        import_stations(engine, SAMPLE, coord="wgs")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".geojson"])
def test_export_round_trip(engine, wudaokou, tmp_path, suffix):
    import_stations(engine, SAMPLE)
    before = _stations(engine)
    path, n = export_stations(engine, tmp_path / f"out{suffix}")
    assert n == len(before)
    if suffix == ".geojson":
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["type"] == "FeatureCollection" and len(doc["features"]) == n
        assert all(f["geometry"]["type"] == "Point" for f in doc["features"])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM stations"))
    s = import_stations(engine, path)
    assert s.inserted == n
    after = _stations(engine)
    pd.testing.assert_frame_equal(after.drop(columns=["lon", "lat"]), before.drop(columns=["lon", "lat"]))
    np.testing.assert_allclose(after[["lon", "lat"]], before[["lon", "lat"]], atol=1e-7)


# -- the fields of a clerk's sheet: host name, phone, hours as written -------------------------------------------
def _records() -> list[StationRecord]:
    return [
        StationRecord("P1", "五道口加油站驿站", "small", 116.3261, 39.9948, host="petrol_station",
                      host_name="中国石化五道口加油站", phone="010-62345678", opening_hours="Mo-Fr 09:00-18:00",
                      opening_hours_text="周一至周五 09:00-18:00"),
        StationRecord("P2", "银行驿站", "small", 116.3287, 39.9923, host="bank", phone="138 0013 8000"),
        StationRecord("P3", "流动驿站", "mobile", 116.3225, 40.0041),
    ]


def _updated_at(engine) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT external_id, updated_at FROM stations")).all())


def test_host_name_phone_and_hours_as_written_are_stored_and_returned(engine, wudaokou):
    with engine.begin() as conn:
        s = upsert_stations(conn, wudaokou.id, wudaokou.name, _records(), lang="zh")
    assert (s.rows, s.inserted, s.updated) == (3, 3, 0)
    with engine.connect() as conn:
        p1 = get_station(conn, "P1")
        assert (p1["host"], p1["host_name"], p1["phone"]) == ("petrol_station", "中国石化五道口加油站", "010-62345678")
        assert (p1["opening_hours"], p1["opening_hours_text"]) == ("Mo-Fr 09:00-18:00", "周一至周五 09:00-18:00")
        p3 = get_station(conn, "P3")
        assert (p3["host_name"], p3["phone"], p3["opening_hours_text"]) == (None, None, None)
        _, page = list_stations(conn, area=wudaokou.name)
        assert [st["phone"] for st in page] == ["010-62345678", "138 0013 8000", None]
        near = nearest_stations(conn, 116.3262, 39.9949, k=1)
        assert near[0]["id"] == "P1" and near[0]["host_name"] == "中国石化五道口加油站"
        frame = stations_frame(conn, wudaokou.id).set_index("external_id")
        assert frame.loc["P2", "phone"] == "138 0013 8000" and frame.loc["P1", "opening_hours_text"].startswith("周一")
        assert conn.execute(text("SELECT registry_lang FROM areas WHERE id = :a"), {"a": wudaokou.id}).scalar() == "zh"
    feature = station_feature(p1)
    assert {"host_name", "phone", "opening_hours_text"} <= set(feature["properties"])
    StationPublic.model_validate(feature["properties"])


def test_a_change_of_phone_or_host_name_alone_is_written_and_unchanged_rows_stay(engine, wudaokou):
    with engine.begin() as conn:
        upsert_stations(conn, wudaokou.id, wudaokou.name, _records())
    before = _updated_at(engine)
    changed = _records()
    changed[0].phone = "010-62340000"
    changed[1].host_name = "工商银行五道口支行"
    with engine.begin() as conn:
        s = upsert_stations(conn, wudaokou.id, wudaokou.name, changed)
    assert (s.rows, s.inserted, s.updated) == (3, 0, 3)
    after = _updated_at(engine)
    assert after["P1"] > before["P1"] and after["P2"] > before["P2"]
    assert after["P3"] == before["P3"]  # given again unchanged: its row is not rewritten
    with engine.connect() as conn:
        assert get_station(conn, "P1")["phone"] == "010-62340000"
        assert get_station(conn, "P2")["host_name"] == "工商银行五道口支行"
    changed[0].phone = None  # a value taken away is a change too
    with engine.begin() as conn:
        upsert_stations(conn, wudaokou.id, wudaokou.name, changed)
    with engine.connect() as conn:
        assert get_station(conn, "P1")["phone"] is None
    assert _updated_at(engine)["P3"] == before["P3"]
