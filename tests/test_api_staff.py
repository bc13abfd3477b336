"""The HTTP API for staff over real HTTP: station import, gap reports and runs, the map page, recommendations."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pandas as pd
import pytest
from api_data import (
    GEOD,
    HEADER,
    KEY,
    SAMPLE_CSV,
    STAFF,
    STATIONS,
    feature_ids,
    nearest_features,
    stations_csv,
    to_gcj02,
)
from live_server import live_server
from sqlalchemy import Engine

from yizhan.api import create_app
from yizhan.areas import AreaInfo
from yizhan.coverage.analysis import run_coverage
from yizhan.data.demand import import_demand
from yizhan.maps.assets import asset_urls
from yizhan.settings import Settings
from yizhan.stations.service import import_stations

# --- staff: import ------------------------------------------------------------------------------------------------
ZH_CSV = SAMPLE_CSV.with_name("stations_registry_zh.csv")


def upload(api: httpx.Client, content: bytes, filename: str = "stations.csv", headers: dict | None = None,
            **form: str) -> httpx.Response:
    return api.post("/stations/import", files={"file": (filename, content, "text/csv")}, data=form,
                    headers=headers or {})


def test_import_requires_the_staff_key(api: httpx.Client, wudaokou: AreaInfo) -> None:
    data = SAMPLE_CSV.read_bytes()
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}, {"X-API-Key": KEY + "x"}, {"Authorization": KEY}):
        r = upload(api, data, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert "X-API-Key" in r.json()["detail"]
    assert api.get("/stations").json()["total"] == 0


def test_import_with_key(api: httpx.Client, wudaokou: AreaInfo) -> None:
    r = upload(api, SAMPLE_CSV.read_bytes(), headers=STAFF)
    assert r.status_code == 200, r.text
    assert r.json() == {"area": "wudaokou", "rows": 8, "inserted": 8, "updated": 0, "unchanged": 0,
                        "ignored_columns": [],
                        "sheets": [], "warnings": [], "notes": [], "lang": "en"}
    r = upload(api, SAMPLE_CSV.read_bytes(), headers=STAFF, area="wudaokou")
    assert r.status_code == 200, r.text
    assert r.json() == {"area": "wudaokou", "rows": 8, "inserted": 0, "updated": 8, "unchanged": 8,
                        "ignored_columns": [],
                        "sheets": [], "warnings": [], "notes": [], "lang": "en"}
    body = api.get("/stations", params={"limit": 100}).json()
    assert body["total"] == 8
    s1 = api.get("/stations/SAMPLE-001").json()
    assert s1["properties"]["name"] == "成府路党群服务中心户外劳动者驿站"
    assert s1["geometry"]["coordinates"] == pytest.approx([116.318420, 39.992650], abs=1e-7)
    # the sample's closed station is listed but never offered as nearest
    feats = nearest_features(api, 116.312900, 39.996400, k=100)
    assert "SAMPLE-008" not in feature_ids(feats) and len(feats) == 7


def test_import_bad_rows_rejects_everything(api: httpx.Client, wudaokou: AreaInfo) -> None:
    assert upload(api, SAMPLE_CSV.read_bytes(), headers=STAFF).status_code == 200
    bad = "\n".join([
        HEADER,
        "SAMPLE-001,改名的驿站,large,116.318420,39.992650,,,,,,,,active",  # row 2: fine, would rename
        "NEW-1,新驿站,small,116.3200,100,,,,,,,,active",  # row 3: lat out of range
        "NEW-2,新驿站2,huge,116.3200,40.0000,,,,teleporter,,,,active",  # row 4: kind and amenity
        "NEW-3,新驿站3,small,116.3200,40.0000,,,,,not hours,,9,active",  # row 5: hours and stars
        "NEW-4,北京外,small,121.47,31.23,,,,,,,,active",  # row 6: outside the area
    ]).encode()
    r = upload(api, bad, headers=STAFF)
    assert r.status_code == 422, r.text
    body = r.json()
    assert "nothing was imported" in body["detail"]
    found = {(p["row"], p["field"]) for p in body["problems"]}
    assert {(3, "lat"), (4, "kind"), (4, "amenities"), (5, "opening_hours"), (5, "stars"), (6, "lon/lat")} <= found
    assert not any(p["row"] == 2 for p in body["problems"])
    for p in body["problems"]:
        assert set(p) >= {"row", "field", "value", "expected"} and p["expected"]
    # nothing changed
    after = api.get("/stations").json()
    assert after["total"] == 8
    assert api.get("/stations/SAMPLE-001").json()["properties"]["name"] == "成府路党群服务中心户外劳动者驿站"
    assert api.get("/stations/NEW-2").status_code == 404


def test_import_unusable_files_are_422(api: httpx.Client, wudaokou: AreaInfo) -> None:
    cases = [(b"", "stations.csv", "empty"), (b"a,b\n1,2\n", "stations.csv", "missing required column"),
             (SAMPLE_CSV.read_bytes(), "stations.pdf", "unsupported file type"),
             (b"\xff\xfe\x00garbage\x81\x00", "stations.csv", "stations.csv")]
    for content, filename, needle in cases:
        r = upload(api, content, filename=filename, headers=STAFF)
        assert r.status_code == 422, (filename, r.status_code, r.text)
        assert needle in r.json()["detail"], r.text
    r = upload(api, SAMPLE_CSV.read_bytes(), headers=STAFF, coord="mars")
    assert r.status_code == 422 and "coord" in r.json()["detail"], r.text
    r = upload(api, SAMPLE_CSV.read_bytes(), headers=STAFF, area="atlantis")
    assert r.status_code == 404 and "atlantis" in r.json()["detail"], r.text
    assert api.get("/stations").json()["total"] == 0


def test_import_gbk_csv_with_chinese_headers(api: httpx.Client, wudaokou: AreaInfo) -> None:
    text_ = ("编号,名称,类型,经度,纬度,承办单位,地址,设施,开放时间,座位数,星级,状态\n"
             "GBK-1,五道口加油站驿站,大型,116.3260,39.9950,加油站,海淀区成府路,充电；厕所,24/7,6,4,运营\n"
             "GBK-2,双清路流动驿站,流动,116.3300,40.0000,其他,双清路,饮水,Mo-Fr 09:00-18:00,,,关闭\n")
    data = text_.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    r = upload(api, data, filename="驿站名单.csv", headers=STAFF)
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 2
    s = api.get("/stations/GBK-1").json()["properties"]
    assert s["name"] == "五道口加油站驿站"
    assert s["kind"] == "large" and s["kind_label"] == "大型驿站"
    assert s["host"] == "petrol_station"
    assert s["amenities"] == ["charging", "toilet"]
    assert s["status"] == "active"
    assert api.get("/stations/GBK-2").json()["properties"]["status"] == "closed"
    r = api.get("/stations/nearest", params=[("lon", 116.33), ("lat", 40.0), ("amenity", "toilet")])
    assert feature_ids(r.json()["features"]) == ["GBK-1"]


def test_import_gcj02_coordinates(api: httpx.Client, wudaokou: AreaInfo) -> None:
    lon, lat = 116.3200, 40.0000
    glon, glat = to_gcj02(lon, lat)
    data = f"{HEADER}\nG-1,火星驿站,small,{glon!r},{glat!r},,,,,24/7,,,active\n".encode()
    r = upload(api, data, headers=STAFF, coord="gcj02")
    assert r.status_code == 200, r.text
    f = api.get("/stations/G-1").json()
    assert f["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=2e-7)
    near = nearest_features(api, lon, lat, k=1)
    assert feature_ids(near) == ["G-1"] and near[0]["properties"]["distance_m"] < 0.05


# --- staff: gap reports and the planner's map ---------------------------------------------------------------------


CORNERS = {"SW": (116.3110, 39.9925), "NW": (116.3105, 40.0105), "NE": (116.3300, 40.0105), "SE": (116.3300, 39.9925)}


@pytest.fixture
def coverage_run(engine: Engine, wudaokou: AreaInfo, tmp_path: Path) -> dict:
    """A run of radius 500 m: stations at the centre and the SW corner; demand in the four corners -> 3 gaps."""
    stations = {"C-1": (116.3200, 40.0015, "toilet", "24/7", "active"),
                "C-SW": (116.3112, 39.9927, "charging", "Mo-Fr 08:00-20:00", "active"),
                "C-X": (116.3300, 40.0105, "", "", "closed")}
    import_stations(engine, "s.csv", area=wudaokou.name, data=stations_csv(stations), filename="s.csv")
    lines = ["lon,lat,weight"]
    for i, (lon, lat) in enumerate(CORNERS.values()):
        for dx in (-0.0003, 0.0, 0.0003):
            for dy in (-0.0003, 0.0, 0.0003):
                lines.append(f"{lon + dx:.6f},{lat + dy:.6f},{i + 1}")
    path = tmp_path / "demand.csv"
    path.write_text("\n".join(lines) + "\n")
    import_demand(engine, path, area=wudaokou.name, cell_size_m=200)
    summary = run_coverage(engine, area=wudaokou.name, radius_m=500)
    assert summary["gaps"] >= 2
    return summary


def test_gap_reports_need_the_key(api: httpx.Client, coverage_run: dict) -> None:
    for path in ("/gaps.csv", "/gaps.geojson"):
        assert api.get(path).status_code == 401
        assert api.get(path, headers={"X-API-Key": "nope"}).status_code == 401


def test_gaps_csv_and_geojson(api: httpx.Client, coverage_run: dict) -> None:
    n = coverage_run["gaps"]
    r = api.get("/gaps.csv", headers=STAFF)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert f'gaps_run{coverage_run["run_id"]}.csv' in r.headers["content-disposition"]
    assert r.content.startswith("\ufeff".encode())
    table = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig")
    assert len(table) == n
    assert table.columns[0] == "排名 rank"
    assert list(table["排名 rank"]) == list(range(1, n + 1))
    assert table["最近驿站编号 nearest_station_id"].notna().all()
    assert set(table["最近驿站编号 nearest_station_id"]) <= {"C-1", "C-SW"}  # never the closed station

    explicit = api.get("/gaps.csv", headers=STAFF, params={"run": coverage_run["run_id"]})
    assert explicit.status_code == 200 and explicit.content == r.content

    g = api.get("/gaps.geojson", headers=STAFF)
    assert g.status_code == 200, g.text
    assert g.headers["content-type"].startswith("application/geo+json")
    doc = g.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["run"]["run_id"] == coverage_run["run_id"] and doc["run"]["gaps"] == n
    assert len(doc["features"]) == n
    for row, feat in zip(table.itertuples(index=False), doc["features"], strict=True):
        props = feat["properties"]
        assert props["rank"] == row[0]
        assert props["lon"] == pytest.approx(row[4]) and props["lat"] == pytest.approx(row[5])
        assert props["nearest_station_id"] == row[6]
        assert feat["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    # every uncovered corner (all but SW) lies in some gap: check by the gap's interior point
    centres = [(f["properties"]["lon"], f["properties"]["lat"]) for f in doc["features"]]
    for corner in ("NW", "NE", "SE"):
        lon, lat = CORNERS[corner]
        assert min(GEOD.inv(lon, lat, x, y)[2] for x, y in centres) < 400, (corner, centres)

    assert api.get("/gaps.csv", headers=STAFF, params={"run": 999}).status_code == 404
    assert api.get("/gaps.geojson", headers=STAFF, params={"run": 999}).status_code == 404


def test_runs_endpoints(api: httpx.Client, coverage_run: dict) -> None:
    assert api.get("/runs").status_code == 401  # runs are staff data
    assert api.get(f"/runs/{coverage_run['run_id']}").status_code == 401
    r = api.get("/runs", headers=STAFF)
    assert r.status_code == 200, r.text
    assert [x["run_id"] for x in r.json()] == [coverage_run["run_id"]]
    one = api.get(f"/runs/{coverage_run['run_id']}", headers=STAFF).json()
    assert one["gaps"] == coverage_run["gaps"] and one["radius_m"] == 500
    r = api.get("/runs/999", headers=STAFF)
    assert r.status_code == 404 and "999" in r.json()["detail"]


def test_gap_reports_without_runs_are_404(api: httpx.Client, wudaokou: AreaInfo) -> None:
    for path in ("/gaps.csv", "/gaps.geojson", "/map"):
        r = api.get(path, headers=STAFF)
        assert r.status_code == 404, (path, r.text)
        assert "no coverage run" in r.json()["detail"]


def test_map_page_and_its_assets(api: httpx.Client, coverage_run: dict) -> None:
    r = api.get("/map", headers=STAFF)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    urls = asset_urls(r.text)
    assert any(u.endswith(".js") for u in urls) and any(u.endswith(".css") for u in urls), urls
    for url in urls:
        assert url.startswith("/yizhan-assets/"), url
        a = api.get(url)
        assert a.status_code == 200, url
        assert a.content
    assert "C-1" in r.text or "驿站 C-1" in r.text
    assert api.get("/map", params={"run": coverage_run["run_id"]}, headers=STAFF).status_code == 200
    missing = api.get("/map", params={"run": 999}, headers=STAFF)
    assert missing.status_code == 404
    assert "999" in missing.json()["detail"]
    assert api.get("/yizhan-assets/no/such/file.js").status_code == 404
    assert api.get("/yizhan-assets/../api.py").status_code == 404


def test_map_is_rendered_once_per_run_and_stations(engine: Engine, coverage_run: dict, wudaokou: AreaInfo,
                                                   db_url: str, tmp_path: Path) -> None:
    """The map of a run is rendered once and served from the cache until the area's stations change; the route is
    rate limited like the riders' routes."""
    app = create_app(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data",
                              rate_limit_per_minute=6))
    renders = app.state.map_cache.stats
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=60) as client:
            run = {"run": coverage_run["run_id"]}
            # the latest run is the same map
            first, second = client.get("/map", params=run, headers=STAFF), client.get("/map", headers=STAFF)
            assert first.status_code == second.status_code == 200, (first.text, second.text)
            assert first.text == second.text and renders.renders == 1
            assert first.headers["X-Map-Cache"] == "miss" and second.headers["X-Map-Cache"] == "hit"
            assert "改名的驿站" not in first.text
            csv = f"{HEADER}\nC-1,改名的驿站,small,116.3200,40.0015,,,,,,,,active\n".encode()
            import_stations(engine, "s.csv", area=wudaokou.name, data=csv, filename="s.csv")
            third = client.get("/map", params=run, headers=STAFF)
            assert third.status_code == 200 and renders.renders == 2 and "改名的驿站" in third.text
            assert client.get("/map", params={"run": 999}, headers=STAFF).status_code == 404  # fifth, not cached
            codes = [client.get("/map", params=run, headers=STAFF).status_code for _ in range(3)]
            assert codes == [200, 200, 429], codes
            limited = client.get("/map", params=run, headers=STAFF)
            assert "at most 6 a minute" in limited.json()["detail"] and int(limited.headers["Retry-After"]) >= 1
    finally:
        app.state.db.dispose()


# --- odd uploads, the size limit and the recommendation radius -----------------------------------------------------


def test_import_size_limit(db_url: str, wudaokou: AreaInfo, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data", max_upload_mb=0.001))
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            big = SAMPLE_CSV.read_bytes()
            assert len(big) > 1100
            r = upload(client, big, headers=STAFF)
            assert r.status_code == 413, r.text
            assert "file" in r.json()["detail"] and "0.001 MB limit" in r.json()["detail"]
            small = f"{HEADER}\nS-1,小驿站,small,116.32,40.0,,,,,,,,active\n".encode()
            assert upload(client, small, headers=STAFF).status_code == 200
    finally:
        app.state.db.dispose()


def test_recommendation_radius_defaults_to_the_settings(engine: Engine, coverage_run: dict, db_url: str,
                                                        tmp_path: Path) -> None:
    """``POST /recommendations`` without ``radius_m`` uses ``YIZHAN_RADIUS_M``; a radius in the body wins."""
    candidates = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": list(CORNERS[c])},
                   "properties": {"id": f"CAND-{c}", "name": f"候选 {c}"}} for c in ("NW", "NE", "SE")]
    app = create_app(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data", radius_m=800.0))
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=120) as client:
            r = client.post("/recommendations", headers=STAFF, json={"k": 1, "candidates": candidates})
            assert r.status_code == 200, r.text
            assert r.json()["radius_m"] == 800.0
            stored = client.get(f"/recommendations/{r.json()['run_id']}", headers=STAFF).json()
            assert stored["radius_m"] == 800.0
            given = client.post("/recommendations", headers=STAFF,
                                json={"k": 1, "candidates": candidates, "radius_m": 500})
            assert given.status_code == 200, given.text
            assert given.json()["radius_m"] == 500.0
    finally:
        app.state.db.dispose()


@pytest.mark.parametrize(("content", "filename", "form"), [
    (HEADER.encode() + b"\nA,n,small,1e999,40.0,,,,,,,,\n", "s.csv", {}),
    (b"id,name\n\"unterminated\n", "s.csv", {}),
    (b"not a workbook", "s.xlsx", {}),
    (b"{bad json", "s.geojson", {}),
    (b"[1, 2]", "s.geojson", {}),
    (b'{"type": "FeatureCollection", "features": [1, "x"]}', "s.geojson", {}),
    (b'{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": "x"}]}', "s.geojson", {}),
    (b'{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": [1, 2]}]}',
                 "s.geojson", {}),
    (b"id,name,kind,lon,lat\nA\x00,n,small,116.32,40.0\n", "s.csv", {}),
    (b"id,name,kind,lon,lat\nA,n\x00x,small,116.32,40.0\n", "s.csv", {}),
    (b"id,name,kind,lon,lat\nA,n,small,116.32,40.0\n", "s.csv", {"area": "\x00"}),
])
def test_import_never_500(api: httpx.Client, seeded: AreaInfo, content: bytes, filename: str, form: dict) -> None:
    r = upload(api, content, filename=filename, headers=STAFF, **form)
    assert r.status_code in (404, 422), (r.status_code, r.text)
    assert isinstance(r.json()["detail"], str)
    assert api.get("/stations").json()["total"] == len(STATIONS)


def test_registry_download_in_the_language_of_the_import(api: httpx.Client, wudaokou: AreaInfo) -> None:
    assert api.get("/stations.csv").status_code == 401  # staff only
    assert upload(api, ZH_CSV.read_bytes(), filename="驿站.csv", headers=STAFF).json()["lang"] == "zh"
    r = api.get("/stations.csv", headers=STAFF)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    header = r.content.decode("utf-8-sig").splitlines()[0].split(",")
    assert header[:5] == ["编号", "名称", "类型", "经度", "纬度"]
    english = api.get("/stations.csv", params={"lang": "en"}, headers=STAFF).content.decode("utf-8-sig")
    assert english.splitlines()[0].startswith("id,name,kind,lon,lat")
    xlsx = api.get("/stations.xlsx", headers=STAFF)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    # the download imports again unchanged: same stations, nothing updated but counted
    again = upload(api, r.content, filename="again.csv", headers=STAFF)
    assert again.status_code == 200, again.text
    assert again.json()["inserted"] == 0 and again.json()["updated"] == again.json()["rows"]
    assert api.get("/stations.csv", headers=STAFF).content == r.content
    bad = api.get("/stations.csv", params={"lang": "fr"}, headers=STAFF)
    assert bad.status_code == 422 and "lang" in bad.text
