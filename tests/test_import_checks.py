"""Registry import checks: a file in another coordinate system than declared (GCJ-02 given as WGS 84), caught
against the stations already stored, and unknown columns. Real PostGIS; the API over real HTTP."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from cli_runner import run_cli
from pyproj import Geod
from shapely.geometry import box
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo, ensure_area
from yizhan.errors import ImportRejected, InvalidInput
from yizhan.geo.coords import from_wgs84
from yizhan.settings import Settings
from yizhan.stations.export import write_stations
from yizhan.stations.importer import OFFSET_TOLERANCE_M, CoordSystemMismatch
from yizhan.stations.service import export_stations, import_stations

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "stations_sample.csv"
GEOD = Geod(ellps="WGS84")
KEY = "test-key"
STAFF = {"X-API-Key": KEY}
HAIDIAN = (116.25, 39.95, 116.40, 40.06)  # west, south, east, north (WGS 84)


def _stations(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text("SELECT external_id, name, kind, status, ST_X(geom) AS lon, ST_Y(geom) AS lat, "
                                "updated_at FROM stations ORDER BY external_id"), conn)


def _exported(engine: Engine, tmp_path: Path) -> pd.DataFrame:
    path, _ = export_stations(engine, tmp_path / "export.csv")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _as_gcj(df: pd.DataFrame, rows: slice | list[int] | None = None) -> pd.DataFrame:
    """``df`` with the lon/lat of ``rows`` (all by default) as GCJ-02, 6 decimals as a map app shows them."""
    out = df.copy()
    idx = out.index if rows is None else out.index[rows]
    x, y = from_wgs84(out.loc[idx, "lon"].astype(float), out.loc[idx, "lat"].astype(float), "gcj02")
    out.loc[idx, "lon"] = [f"{v:.6f}" for v in x]
    out.loc[idx, "lat"] = [f"{v:.6f}" for v in y]
    return out


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def _moved(df: pd.DataFrame, rows: list[int], metres: float, rng: np.random.Generator) -> pd.DataFrame:
    """``df`` with ``rows`` moved ``metres`` each in a random direction (WGS 84)."""
    out = df.copy()
    for i in rows:
        lon, lat = float(out.loc[i, "lon"]), float(out.loc[i, "lat"])
        x, y, _ = GEOD.fwd(lon, lat, float(rng.uniform(0, 360)), metres)
        out.loc[i, "lon"], out.loc[i, "lat"] = f"{x:.7f}", f"{y:.7f}"
    return out


@pytest.fixture
def haidian(engine: Engine) -> AreaInfo:
    """An area around Wudaokou large enough that points moved (or shifted to GCJ-02) by 500 m stay inside."""
    with engine.begin() as conn:
        return ensure_area(conn, "haidian", boundary=box(*HAIDIAN), source="test")


@pytest.fixture
def stored(engine: Engine, haidian: AreaInfo) -> pd.DataFrame:
    """The sample registry imported into the area; returns the stored stations."""
    import_stations(engine, SAMPLE)
    return _stations(engine)


# --- a file in another coordinate system ---------------------------------------------------------------------------


def test_gcj02_reimport_given_as_wgs84_is_rejected_and_nothing_changes(engine, stored, tmp_path):
    gcj = _as_gcj(_exported(engine, tmp_path))
    with pytest.raises(CoordSystemMismatch) as info:
        import_stations(engine, "registry.csv", data=_csv(gcj), filename="registry.csv")
    exc = info.value
    assert isinstance(exc, ImportRejected)
    assert (exc.declared, exc.likely) == ("wgs84", "gcj02")
    message = str(exc)
    first = message.split("\n")[0]
    assert "look like GCJ-02" in first and "--coord gcj02" in first and "coord=gcj02" in first
    assert "--trust-coords" in first and "nothing was imported" in first
    assert sorted(p.row for p in exc.problems) == list(range(2, len(gcj) + 2))  # every row named
    assert all(p.field == "lon/lat" for p in exc.problems)
    assert "rows 2, 3, 4, 5, 6, ..." in first
    assert first.startswith("registry.csv: 坐标看起来是 GCJ-02（高德、腾讯），不是 WGS 84（GPS）")  # Chinese first
    assert "请用 --coord gcj02 重新导入" in first and first.index("未导入任何数据") < first.index(" / the coordinates")
    assert all(p.expected_zh and "按 GCJ-02（高德、腾讯） 读即已存储的站点" in p.expected_zh for p in exc.problems)
    pd.testing.assert_frame_equal(_stations(engine), stored)


def test_the_mismatch_is_named_even_where_the_shift_leaves_the_area(engine, wudaokou, tmp_path):
    """In a small area the shifted points fall outside it: the cause is named, not only "outside the area"."""
    import_stations(engine, SAMPLE)
    before = _stations(engine)
    gcj = _as_gcj(_exported(engine, tmp_path))
    with pytest.raises(CoordSystemMismatch, match="look like GCJ-02"):
        import_stations(engine, "registry.csv", data=_csv(gcj), filename="registry.csv")
    pd.testing.assert_frame_equal(_stations(engine), before)


def test_the_same_file_as_gcj02_is_accepted_within_a_metre(engine, stored, tmp_path):
    gcj = _as_gcj(_exported(engine, tmp_path))
    s = import_stations(engine, "registry.csv", data=_csv(gcj), filename="registry.csv", coord="gcj02")
    assert (s.inserted, s.updated, s.ignored_columns) == (0, len(stored), [])
    after = _stations(engine)
    _, _, err = GEOD.inv(stored["lon"], stored["lat"], after["lon"], after["lat"])
    assert np.max(err) < 1.0


def test_wgs84_given_as_gcj02_is_rejected(engine, stored, tmp_path):
    with pytest.raises(CoordSystemMismatch) as info:
        import_stations(engine, "export.csv", data=_csv(_exported(engine, tmp_path)), filename="export.csv",
                        coord="gcj02")
    assert info.value.likely == "wgs84" and "--coord wgs84" in str(info.value).split("\n")[0]
    pd.testing.assert_frame_equal(_stations(engine), stored)


def test_bd09_given_as_wgs84_is_rejected(engine, stored, tmp_path):
    df = _exported(engine, tmp_path)
    x, y = from_wgs84(df["lon"].astype(float), df["lat"].astype(float), "bd09")
    df["lon"], df["lat"] = [f"{v:.6f}" for v in x], [f"{v:.6f}" for v in y]
    with pytest.raises(CoordSystemMismatch) as info:
        import_stations(engine, "bd.csv", data=_csv(df), filename="bd.csv")
    assert info.value.likely == "bd09" and "--coord bd09" in str(info.value)


def test_genuine_moves_are_not_flagged(engine, stored, tmp_path):
    df = _exported(engine, tmp_path)
    rng = np.random.default_rng(20260101)
    moved = _moved(_moved(df, [0, 1], 50.0, rng), [2, 3, 4], 500.0, rng)
    # the 500 m moves are random, not onto the GCJ-02 point of their station: make sure of it
    gx, gy = from_wgs84(df.loc[[2, 3, 4], "lon"].astype(float), df.loc[[2, 3, 4], "lat"].astype(float), "gcj02")
    _, _, to_gcj = GEOD.inv(moved.loc[[2, 3, 4], "lon"].astype(float), moved.loc[[2, 3, 4], "lat"].astype(float),
                            gx, gy)
    assert np.min(to_gcj) > 5 * OFFSET_TOLERANCE_M
    s = import_stations(engine, "moved.csv", data=_csv(moved), filename="moved.csv")
    assert s.updated == len(df)
    after = _stations(engine).set_index("external_id")
    for i in (0, 1, 2, 3, 4):
        sid = df.loc[i, "id"]
        _, _, d = GEOD.inv(float(moved.loc[i, "lon"]), float(moved.loc[i, "lat"]), after.loc[sid, "lon"],
                           after.loc[sid, "lat"])
        assert d < 0.01


def test_every_station_moved_500_m_at_random_is_not_flagged(engine, stored, tmp_path):
    df = _exported(engine, tmp_path)
    moved = _moved(df, list(df.index), 500.0, np.random.default_rng(7))
    s = import_stations(engine, "moved.csv", data=_csv(moved), filename="moved.csv")
    assert s.updated == len(df)


def test_a_few_gcj02_rows_in_a_wgs84_file_are_named(engine, stored, tmp_path):
    df = _exported(engine, tmp_path)
    mixed = _as_gcj(df, [3])
    with pytest.raises(CoordSystemMismatch) as info:
        import_stations(engine, "mixed.csv", data=_csv(mixed), filename="mixed.csv")
    exc = info.value
    assert [(p.row, p.field) for p in exc.problems] == [(5, "lon/lat")]
    first = str(exc).split("\n")[0]
    assert "1 row(s) (5) look like GCJ-02" in first and "Convert these rows" in first
    assert "第 5 行（1 行）的坐标看起来是 WGS 84（GPS） 文件中的 GCJ-02（高德、腾讯） 坐标" in first
    assert df.loc[3, "id"] in str(exc)
    pd.testing.assert_frame_equal(_stations(engine), stored)


def test_trust_coords_imports_the_shifted_file(engine, stored, tmp_path):
    gcj = _as_gcj(_exported(engine, tmp_path))
    s = import_stations(engine, "registry.csv", data=_csv(gcj), filename="registry.csv", trust_coords=True)
    assert s.updated == len(stored)
    after = _stations(engine)
    np.testing.assert_allclose(after["lon"], gcj["lon"].astype(float), atol=1e-9)


def test_a_file_of_new_stations_is_not_checked(engine, haidian, tmp_path):
    """The documented limit: with no stored station of the same id there is no reference, so no rejection."""
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    gcj = _as_gcj(df)
    s = import_stations(engine, "new.csv", data=_csv(gcj), filename="new.csv")
    assert s.inserted == len(df)


def test_stations_of_another_area_are_no_reference(engine, haidian, tmp_path):
    with engine.begin() as conn:
        ensure_area(conn, "elsewhere", boundary=box(116.2, 39.9, 116.5, 40.1))
    import_stations(engine, SAMPLE, area="elsewhere")
    gcj = _as_gcj(pd.read_csv(SAMPLE, dtype=str, keep_default_na=False))
    s = import_stations(engine, "gcj.csv", data=_csv(gcj), filename="gcj.csv", area="haidian")
    assert s.inserted == len(gcj)


# --- unknown columns -----------------------------------------------------------------------------------------------


def test_unknown_columns_are_rejected_by_name(engine, wudaokou, tmp_path):
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    df["负责人"] = "note"
    df["wechat"] = "010-12345678"
    with pytest.raises(InvalidInput) as info:
        import_stations(engine, "extra.csv", data=_csv(df), filename="extra.csv")
    message = str(info.value)
    assert "unknown column(s) '负责人', 'wechat'" in message
    assert "id, name, kind, lon, lat, host" in message and "经度" in message  # the accepted columns
    assert "--ignore-unknown-columns" in message and "ignore_unknown_columns=true" in message
    assert _stations(engine).empty


def test_unknown_columns_are_left_out_when_allowed(engine, wudaokou, tmp_path):
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    df.insert(2, "负责人", "note")
    df["wechat"] = "010-12345678"
    s = import_stations(engine, "extra.csv", data=_csv(df), filename="extra.csv", ignore_unknown_columns=True)
    assert s.inserted == len(df) and s.ignored_columns == ["负责人", "wechat"]


def test_unknown_geojson_property_and_unheaded_column(engine, wudaokou, tmp_path):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [116.32, 40.0]},
         "properties": {"id": "G1", "name": "g", "kind": "small", "fid": 1}}]}
    with pytest.raises(InvalidInput, match=r"unknown column\(s\) 'fid'"):
        import_stations(engine, "s.geojson", data=json.dumps(doc).encode(), filename="s.geojson")
    body = "id,name,kind,lon,lat,\nA,a,small,116.32,40.0,stray\n"
    with pytest.raises(InvalidInput, match=r"'\(no header, column 6\)'"):
        import_stations(engine, "s.csv", data=body.encode(), filename="s.csv")


def test_empty_unheaded_columns_and_known_headers_pass(engine, wudaokou):
    # trailing commas (an empty column without header) as spreadsheets write them; aliases and Chinese headers
    body = "编号,名称,类型,lng,latitude,,\nA,a,small,116.32,40.0,,\nB,b,large,116.321,40.001,,\n"
    s = import_stations(engine, "s.csv", data=body.encode("utf-8"), filename="s.csv")
    assert s.inserted == 2 and s.ignored_columns == []


def test_a_repeated_header_is_named_as_such(engine, wudaokou):
    body = "id,name,kind,lon,lat,name\nA,a,small,116.32,40.0,b\n"
    with pytest.raises(InvalidInput, match="'name' appears more than once"):
        import_stations(engine, "s.csv", data=body.encode(), filename="s.csv")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".geojson"])
def test_exports_reimport_without_the_flag(engine, stored, tmp_path, suffix):
    path, n = export_stations(engine, tmp_path / f"out{suffix}")
    s = import_stations(engine, path)
    assert (s.updated, s.ignored_columns) == (n, [])
    frame = _stations(engine).drop(columns="updated_at")
    pd.testing.assert_frame_equal(frame, stored.drop(columns="updated_at"))


def test_bundled_sample_builders_write_known_columns(tmp_path):
    from yizhan.data.sample import STATION_COLUMNS
    from yizhan.stations.columns import read_registry

    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    write_stations(df[list(STATION_COLUMNS)], tmp_path / "s.csv")
    _, ignored = read_registry(tmp_path / "s.csv")
    assert ignored == []


# --- the command line ----------------------------------------------------------------------------------------------


def _cli(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIZHAN_")}
    env["DATABASE_URL"] = db_url
    return run_cli(*args, env=env, check=False)


def test_cli_options(db_url, engine, stored, tmp_path):
    gcj = tmp_path / "gcj.csv"
    gcj.write_bytes(_csv(_as_gcj(_exported(engine, tmp_path))))
    rejected = _cli("stations", "import", str(gcj), db_url=db_url)
    assert rejected.returncode == 2 and "--coord gcj02" in " ".join(rejected.stderr.split())
    ok = _cli("stations", "import", str(gcj), "--coord", "gcj02", db_url=db_url)
    assert ok.returncode == 0, ok.stderr
    extra = tmp_path / "extra.csv"
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    df["负责人"] = "x"
    extra.write_bytes(_csv(df))
    no = _cli("stations", "import", str(extra), db_url=db_url)
    assert no.returncode == 2 and "负责人" in no.stderr
    yes = _cli("stations", "import", str(extra), "--ignore-unknown-columns", db_url=db_url)
    assert yes.returncode == 0 and "left out unknown column(s): 负责人" in yes.stdout, yes.stderr
    trusted = _cli("stations", "import", str(gcj), "--trust-coords", db_url=db_url)  # now stored as given
    assert trusted.returncode == 0, trusted.stderr


# --- over HTTP -----------------------------------------------------------------------------------------------------


@pytest.fixture
def api(db_url: str, tmp_path: Path, live_api: Callable[..., httpx.Client]) -> httpx.Client:
    """A client of the app served over real HTTP against the test's fresh database."""
    return live_api(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data"))


def _upload(api: httpx.Client, content: bytes, filename: str = "registry.csv", **form: str) -> httpx.Response:
    return api.post("/stations/import", files={"file": (filename, io.BytesIO(content), "text/csv")},
                    data={"area": "haidian", **form}, headers=STAFF)


def _form_fields(api: httpx.Client) -> set[str]:
    schema = api.get("/openapi.json", headers=STAFF).json()
    ref = schema["paths"]["/stations/import"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    name = ref["$ref"].rsplit("/", 1)[-1]
    return set(schema["components"]["schemas"][name]["properties"])


def test_http_gcj02_file_rejected_then_accepted_with_coord(api, engine, stored, tmp_path):
    content = _csv(_as_gcj(_exported(engine, tmp_path)))
    r = _upload(api, content)
    assert r.status_code == 422, r.text
    body = r.json()
    assert "look like GCJ-02" in body["detail"] and "coord=gcj02" in body["detail"]
    assert len(body["problems"]) == len(stored) and body["problems"][0]["field"] == "lon/lat"
    pd.testing.assert_frame_equal(_stations(engine), stored)
    ok = _upload(api, content, coord="gcj02")
    assert ok.status_code == 200, ok.text
    assert ok.json()["updated"] == len(stored) and ok.json()["ignored_columns"] == []
    after = _stations(engine)
    _, _, err = GEOD.inv(stored["lon"], stored["lat"], after["lon"], after["lat"])
    assert np.max(err) < 1.0


def test_http_genuine_move_accepted(api, engine, stored, tmp_path):
    moved = _moved(_exported(engine, tmp_path), [0, 1, 2], 500.0, np.random.default_rng(11))
    r = _upload(api, _csv(moved))
    assert r.status_code == 200, r.text


def test_http_unknown_column(api, engine, haidian):
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    df["负责人"] = "note"
    r = _upload(api, _csv(df))
    assert r.status_code == 422 and "unknown column(s) '负责人'" in r.json()["detail"]
    assert "ignore_unknown_columns=true" in r.json()["detail"]
    assert _stations(engine).empty


def test_http_form_fields_allow_extra_columns_and_trust_coords(api, engine, stored, tmp_path):
    assert {"ignore_unknown_columns", "trust_coords"} <= _form_fields(api)
    df = _exported(engine, tmp_path)
    df["负责人"] = "note"
    r = _upload(api, _csv(df), ignore_unknown_columns="true")
    assert r.status_code == 200, r.text
    assert r.json()["ignored_columns"] == ["负责人"]
    r = _upload(api, _csv(_as_gcj(_exported(engine, tmp_path))), trust_coords="true")
    assert r.status_code == 200, r.text
