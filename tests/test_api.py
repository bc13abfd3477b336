"""The HTTP API over real HTTP: uvicorn in a background thread, httpx as the client, a fresh PostGIS database.

Data is seeded through the domain functions (stations, demand, coverage runs) or the API's own import endpoint.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from live_server import live_server
from pyproj import Geod
from sqlalchemy import Engine

from yizhan.api import create_app
from yizhan.areas import AreaInfo
from yizhan.coverage.analysis import run_coverage
from yizhan.data.demand import import_demand
from yizhan.db.cluster import Cluster
from yizhan.geo.coords import from_wgs84
from yizhan.maps.assets import asset_urls
from yizhan.settings import Settings
from yizhan.stations.schema import NearestAnswer, StationFeature, StationPage, StationPublic
from yizhan.stations.service import import_stations

KEY = "test-key"
STAFF = {"X-API-Key": KEY}
GEOD = Geod(ellps="WGS84")
SAMPLE_CSV = Path(__file__).resolve().parents[1] / "data" / "samples" / "stations_sample.csv"
HEADER = "id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status"

Q = (116.3200, 40.0000)  # the rider's position (WGS 84) in the nearest-station tests
# id -> (lon, lat, amenities, opening_hours, status); every point is inside the Wudaokou fixture's bounds
STATIONS = {
    "N-WEEK": (116.3185, 39.9990, "charging;toilet", "Mo-Fr 08:00-20:00", "active"),
    "N-247": (116.3230, 40.0010, "charging;toilet", "24/7", "active"),
    "N-WEEK2": (116.3210, 40.0030, "charging", "Mo-Fr 08:00-20:00", "active"),
    "N-NOHOURS": (116.3150, 40.0050, "drinking_water", "", "active"),
    "N-FAR": (116.3300, 40.0100, "toilet", "24/7", "active"),
    "N-CLOSED": (116.3201, 40.0001, "charging;toilet", "24/7", "closed"),  # the nearest of all, but closed
}
ACTIVE = [s for s, v in STATIONS.items() if v[4] == "active"]
SATURDAY_22H = "2025-06-07T22:00:00"  # a Saturday, local time (Asia/Shanghai)
WEDNESDAY_NOON = "2025-06-04T12:00:00"  # a Wednesday, local time


def _stations_csv(stations: dict[str, tuple[float, float, str, str, str]]) -> bytes:
    lines = [HEADER]
    for sid, (lon, lat, amen, hours, status) in stations.items():
        lines.append(f'{sid},驿站 {sid},small,{lon},{lat},shop,,,{amen},"{hours}",4,3,{status}')
    return ("\n".join(lines) + "\n").encode()


def _geodesic(lon: float, lat: float, sid: str) -> float:
    _, _, dist = GEOD.inv(lon, lat, STATIONS[sid][0], STATIONS[sid][1])
    return float(dist)


def _gcj(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 coordinates of a WGS 84 point."""
    x, y = from_wgs84(lon, lat, "gcj02")
    return float(x), float(y)


def _expected_order(lon: float, lat: float, ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda s: _geodesic(lon, lat, s))


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """A client of the app served over HTTP against the test's fresh database."""
    app = create_app(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data"))
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            yield client
    finally:
        app.state.db.dispose()


@pytest.fixture
def seeded(engine: Engine, wudaokou: AreaInfo) -> AreaInfo:
    """The Wudaokou area holding ``STATIONS``."""
    summary = import_stations(engine, "stations.csv", area=wudaokou.name, data=_stations_csv(STATIONS),
                              filename="stations.csv")
    assert summary.inserted == len(STATIONS)
    return wudaokou


def _nearest(api: httpx.Client, lon: float, lat: float, **params: object) -> list[dict]:
    r = api.get("/stations/nearest", params={"lon": lon, "lat": lat, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "FeatureCollection"
    return body["features"]


def _ids(features: list[dict]) -> list[str]:
    return [f["properties"]["id"] for f in features]


# --- health and OpenAPI -------------------------------------------------------------------------------------------


def test_healthz(api: httpx.Client) -> None:
    r = api.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["version"]


def test_readyz_reports_postgis_version(api: httpx.Client) -> None:
    r = api.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["postgis"].split(".")[0] == "3", body


def test_openapi_lists_the_routes(api: httpx.Client) -> None:
    r = api.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path, method in [("/healthz", "get"), ("/readyz", "get"), ("/stations/nearest", "get"), ("/stations", "get"),
                         ("/stations/{station_id}", "get"), ("/stations/import", "post"), ("/runs", "get"),
                         ("/runs/{run_id}", "get"), ("/gaps.csv", "get"), ("/gaps.geojson", "get"),
                         ("/map", "get")]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing from {sorted(paths)}"
    nearest_params = {p["name"] for p in paths["/stations/nearest"]["get"]["parameters"]}
    assert {"lon", "lat", "k", "amenity", "open_at", "coord"} <= nearest_params


# --- nearest station ----------------------------------------------------------------------------------------------


def test_nearest_is_ordered_geodesic_and_skips_closed(api: httpx.Client, seeded: AreaInfo) -> None:
    feats = _nearest(api, *Q, k=50)
    assert _ids(feats) == _expected_order(*Q, ACTIVE)
    assert "N-CLOSED" not in _ids(feats)
    dists = [f["properties"]["distance_m"] for f in feats]
    assert dists == sorted(dists)
    for f in feats:
        p = f["properties"]
        assert {"id", "name", "kind", "amenities", "opening_hours", "distance_m"} <= set(p), p
        assert f["geometry"]["type"] == "Point"
        lon, lat, amen, hours, _ = STATIONS[p["id"]]
        assert f["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-7)
        assert p["distance_m"] == pytest.approx(_geodesic(*Q, p["id"]), abs=0.05)
        assert p["amenities"] == (amen.split(";") if amen else [])
        assert p["opening_hours"] == (hours or None)
        assert p["name"] == f"驿站 {p['id']}"
        assert p["kind"] == "small"


def test_nearest_k_limits_and_default(api: httpx.Client, seeded: AreaInfo) -> None:
    order = _expected_order(*Q, ACTIVE)
    assert _ids(_nearest(api, *Q, k=1)) == order[:1]
    assert _ids(_nearest(api, *Q, k=3)) == order[:3]
    assert _ids(_nearest(api, *Q)) == order[:5]  # default k=5; only 5 active stations exist


def test_nearest_from_another_point(api: httpx.Client, seeded: AreaInfo) -> None:
    lon, lat = 116.3290, 40.0090  # next to N-FAR
    feats = _nearest(api, lon, lat, k=2)
    assert _ids(feats) == _expected_order(lon, lat, ACTIVE)[:2]
    assert _ids(feats)[0] == "N-FAR"
    for f in feats:
        assert f["properties"]["distance_m"] == pytest.approx(_geodesic(lon, lat, f["properties"]["id"]), abs=0.05)


def test_nearest_amenities_are_all_required(api: httpx.Client, seeded: AreaInfo) -> None:
    r = api.get("/stations/nearest", params=[("lon", Q[0]), ("lat", Q[1]), ("k", 50),
                                             ("amenity", "charging"), ("amenity", "toilet")])
    assert r.status_code == 200, r.text
    both = [s for s in ACTIVE if {"charging", "toilet"} <= set(STATIONS[s][2].split(";"))]
    assert _ids(r.json()["features"]) == _expected_order(*Q, both) == ["N-WEEK", "N-247"]
    assert r.json()["query"]["amenity"] == ["charging", "toilet"]
    charging = [s for s in ACTIVE if "charging" in STATIONS[s][2].split(";")]
    assert _ids(_nearest(api, *Q, k=50, amenity="charging")) == _expected_order(*Q, charging)


@pytest.mark.parametrize(("open_at", "expected"), [
    (SATURDAY_22H, ["N-247", "N-FAR"]),  # naive = local time
    (WEDNESDAY_NOON, ["N-WEEK", "N-247", "N-WEEK2", "N-FAR"]),  # missing hours never count as open
    (SATURDAY_22H + "+08:00", ["N-247", "N-FAR"]),
    (WEDNESDAY_NOON + "+08:00", ["N-WEEK", "N-247", "N-WEEK2", "N-FAR"]),
    ("2025-06-04T04:00:00Z", ["N-WEEK", "N-247", "N-WEEK2", "N-FAR"]),  # = Wednesday 12:00 in Beijing
    ("2025-06-04T12:00:00-08:00", ["N-247", "N-FAR"]),  # = Thursday 04:00 in Beijing
    ("2025-06-07T09:00:00+00:00", ["N-247", "N-FAR"]),  # = Saturday 17:00 in Beijing
    ("2025-06-06T09:00:00+00:00", ["N-WEEK", "N-247", "N-WEEK2", "N-FAR"]),  # = Friday 17:00 in Beijing
])
def test_nearest_open_at(api: httpx.Client, seeded: AreaInfo, open_at: str, expected: list[str]) -> None:
    assert _ids(_nearest(api, *Q, k=50, open_at=open_at)) == expected
    assert _ids(_nearest(api, *Q, k=1, open_at=open_at)) == expected[:1]


def test_nearest_open_at_with_amenities(api: httpx.Client, seeded: AreaInfo) -> None:
    r = api.get("/stations/nearest", params=[("lon", Q[0]), ("lat", Q[1]), ("k", 1), ("open_at", SATURDAY_22H),
                                             ("amenity", "charging"), ("amenity", "toilet")])
    assert r.status_code == 200, r.text
    assert _ids(r.json()["features"]) == ["N-247"]  # N-WEEK is nearer but closed on Saturday night


def test_nearest_in_gcj02_matches_wgs84(api: httpx.Client, seeded: AreaInfo) -> None:
    glon, glat = _gcj(*Q)
    assert abs(glon - Q[0]) > 1e-3 or abs(glat - Q[1]) > 1e-3  # the offset is hundreds of metres here
    wgs = _nearest(api, *Q, k=50)
    gcj = _nearest(api, glon, glat, k=50, coord="gcj02")
    assert _ids(gcj) == _ids(wgs)
    for fw, fg in zip(wgs, gcj, strict=True):
        assert fg["properties"]["distance_m"] == pytest.approx(fw["properties"]["distance_m"], abs=0.02)
        lon, lat = STATIONS[fg["properties"]["id"]][:2]
        assert fg["geometry"]["coordinates"] == pytest.approx(list(_gcj(lon, lat)), abs=2e-7)
        assert fw["geometry"]["coordinates"] != pytest.approx(fg["geometry"]["coordinates"], abs=1e-4)
    # the same numbers read as WGS 84 are somewhere else: different distances
    as_wgs = _nearest(api, glon, glat, k=50)
    assert [f["properties"]["distance_m"] for f in as_wgs] != [f["properties"]["distance_m"] for f in gcj]


def test_nearest_with_no_stations_is_empty(api: httpx.Client, wudaokou: AreaInfo) -> None:
    assert _nearest(api, *Q, k=3) == []
    assert _nearest(api, *Q, k=3, open_at=SATURDAY_22H) == []


# --- bad parameters -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "name"), [
    ({"lon": 116.32, "lat": 100}, "lat"),
    ({"lon": 116.32, "lat": -90.5}, "lat"),
    ({"lon": 181, "lat": 40}, "lon"),
    ({"lon": "abc", "lat": 40}, "lon"),
    ({"lon": 116.32, "lat": "nan"}, "lat"),
    ({"lon": "inf", "lat": 40}, "lon"),
    ({"lon": "1e400", "lat": 40}, "lon"),
    ({"lon": 116.32, "lat": ""}, "lat"),
    ({"lon": 116.32, "lat": 40, "k": 0}, "k"),
    ({"lon": 116.32, "lat": 40, "k": -3}, "k"),
    ({"lon": 116.32, "lat": 40, "k": 10**6}, "k"),
    ({"lon": 116.32, "lat": 40, "k": 10**30}, "k"),
    ({"lon": 116.32, "lat": 40, "k": 2.5}, "k"),
    ({"lon": 116.32, "lat": 40, "coord": "xyz"}, "coord"),
    ({"lon": 116.32, "lat": 40, "amenity": "teleporter"}, "amenity"),
    ({"lon": 116.32, "lat": 40, "open_at": "notadate"}, "open_at"),
    ({"lon": 116.32, "lat": 40, "open_at": "2025-13-40T25:00"}, "open_at"),
    ({"lon": 116.32, "lat": 40, "kind": "huge"}, "kind"),
    ({"lat": 40}, "lon"),
    ({"lon": 116.32}, "lat"),
])
def test_nearest_bad_parameters_are_422(api: httpx.Client, seeded: AreaInfo, params: dict, name: str) -> None:
    r = api.get("/stations/nearest", params=params)
    assert r.status_code == 422, (r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, str)
    assert name in detail, detail


def test_nearest_query_string_reads_as_fastapi_params(api: httpx.Client, seeded: AreaInfo) -> None:
    """The route validates its query string in one model: same answers as FastAPI's per-parameter parsing."""
    r = api.get("/stations/nearest", params={"lat": 40})
    assert r.status_code == 422 and r.json()["detail"] == "lon: Field required", r.text
    assert r.json()["errors"][0]["loc"] == ["query", "lon"]
    r = api.get("/stations/nearest", params=[("lon", Q[0]), ("lat", Q[1]), ("k", 2), ("k", 3), ("color", "red")])
    assert r.status_code == 200, r.text
    assert len(r.json()["features"]) == 3  # a repeated single parameter: the last value; unknown ones ignored
    assert r.json()["query"] == {"lon": Q[0], "lat": Q[1], "coord": "wgs84", "k": 3, "amenity": [], "open_at": None,
                                 "by": "straight"}
    r = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "area": "no\x00where"})
    assert r.status_code == 422, r.text  # PostgreSQL text cannot hold NUL: a 422, not a 500


def test_bad_parameters_elsewhere_are_422(api: httpx.Client, seeded: AreaInfo) -> None:
    for path, params, name in [("/stations", {"limit": 0}, "limit"), ("/stations", {"offset": -1}, "offset"),
                               ("/stations", {"status": "gone"}, "status"), ("/stations", {"coord": "utm"}, "coord"),
                               ("/runs/abc", {}, "run_id"), ("/map", {"run": "x"}, "run")]:
        r = api.get(path, params=params, headers=STAFF)
        assert r.status_code == 422, (path, params, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str) and name in r.json()["detail"], r.text


# --- registry reads -----------------------------------------------------------------------------------------------


def test_list_stations(api: httpx.Client, seeded: AreaInfo) -> None:
    r = api.get("/stations")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert body["total"] == len(STATIONS)
    assert _ids(body["features"]) == sorted(STATIONS)
    page = api.get("/stations", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == len(STATIONS) and _ids(page["features"]) == sorted(STATIONS)[1:3]
    closed = api.get("/stations", params={"status": "closed"}).json()
    assert closed["total"] == 1 and _ids(closed["features"]) == ["N-CLOSED"]


def test_get_station_and_unknown_id(api: httpx.Client, seeded: AreaInfo) -> None:
    r = api.get("/stations/N-247")
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["type"] == "Feature" and f["id"] == "N-247"
    assert f["properties"]["amenities"] == ["charging", "toilet"]
    assert f["properties"]["opening_hours"] == "24/7"
    assert f["properties"]["area"] == "wudaokou"
    assert f["geometry"]["coordinates"] == pytest.approx(list(STATIONS["N-247"][:2]), abs=1e-7)
    gcj = api.get("/stations/N-247", params={"coord": "gcj02"}).json()
    assert gcj["geometry"]["coordinates"] == pytest.approx(list(_gcj(*STATIONS["N-247"][:2])), abs=2e-7)

    r = api.get("/stations/NO-SUCH")
    assert r.status_code == 404
    assert "NO-SUCH" in r.json()["detail"] and "no station" in r.json()["detail"]


# --- staff: import ------------------------------------------------------------------------------------------------


def _upload(api: httpx.Client, content: bytes, filename: str = "stations.csv", headers: dict | None = None,
            **form: str) -> httpx.Response:
    return api.post("/stations/import", files={"file": (filename, content, "text/csv")}, data=form,
                    headers=headers or {})


def test_import_requires_the_staff_key(api: httpx.Client, wudaokou: AreaInfo) -> None:
    data = SAMPLE_CSV.read_bytes()
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}, {"X-API-Key": KEY + "x"}, {"Authorization": KEY}):
        r = _upload(api, data, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert "X-API-Key" in r.json()["detail"]
    assert api.get("/stations").json()["total"] == 0


def test_import_with_key(api: httpx.Client, wudaokou: AreaInfo) -> None:
    r = _upload(api, SAMPLE_CSV.read_bytes(), headers=STAFF)
    assert r.status_code == 200, r.text
    assert r.json() == {"area": "wudaokou", "rows": 8, "inserted": 8, "updated": 0, "ignored_columns": []}
    r = _upload(api, SAMPLE_CSV.read_bytes(), headers=STAFF, area="wudaokou")
    assert r.status_code == 200, r.text
    assert r.json() == {"area": "wudaokou", "rows": 8, "inserted": 0, "updated": 8, "ignored_columns": []}
    body = api.get("/stations", params={"limit": 100}).json()
    assert body["total"] == 8
    s1 = api.get("/stations/SAMPLE-001").json()
    assert s1["properties"]["name"] == "成府路党群服务中心户外劳动者驿站"
    assert s1["geometry"]["coordinates"] == pytest.approx([116.318420, 39.992650], abs=1e-7)
    # the sample's closed station is listed but never offered as nearest
    feats = _nearest(api, 116.312900, 39.996400, k=100)
    assert "SAMPLE-008" not in _ids(feats) and len(feats) == 7


def test_import_bad_rows_rejects_everything(api: httpx.Client, wudaokou: AreaInfo) -> None:
    assert _upload(api, SAMPLE_CSV.read_bytes(), headers=STAFF).status_code == 200
    bad = "\n".join([
        HEADER,
        "SAMPLE-001,改名的驿站,large,116.318420,39.992650,,,,,,,,active",  # row 2: fine, would rename
        "NEW-1,新驿站,small,116.3200,100,,,,,,,,active",  # row 3: lat out of range
        "NEW-2,新驿站2,huge,116.3200,40.0000,,,,teleporter,,,,active",  # row 4: kind and amenity
        "NEW-3,新驿站3,small,116.3200,40.0000,,,,,not hours,,9,active",  # row 5: hours and stars
        "NEW-4,北京外,small,121.47,31.23,,,,,,,,active",  # row 6: outside the area
    ]).encode()
    r = _upload(api, bad, headers=STAFF)
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
        r = _upload(api, content, filename=filename, headers=STAFF)
        assert r.status_code == 422, (filename, r.status_code, r.text)
        assert needle in r.json()["detail"], r.text
    r = _upload(api, SAMPLE_CSV.read_bytes(), headers=STAFF, coord="mars")
    assert r.status_code == 422 and "coord" in r.json()["detail"], r.text
    r = _upload(api, SAMPLE_CSV.read_bytes(), headers=STAFF, area="atlantis")
    assert r.status_code == 404 and "atlantis" in r.json()["detail"], r.text
    assert api.get("/stations").json()["total"] == 0


def test_import_gbk_csv_with_chinese_headers(api: httpx.Client, wudaokou: AreaInfo) -> None:
    text_ = ("编号,名称,类型,经度,纬度,承办单位,地址,设施,开放时间,座位数,星级,状态\n"
             "GBK-1,五道口加油站驿站,大型,116.3260,39.9950,加油站,海淀区成府路,充电；厕所,24/7,6,4,运营\n"
             "GBK-2,双清路流动驿站,流动,116.3300,40.0000,其他,双清路,饮水,Mo-Fr 09:00-18:00,,,关闭\n")
    data = text_.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    r = _upload(api, data, filename="驿站名单.csv", headers=STAFF)
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
    assert _ids(r.json()["features"]) == ["GBK-1"]


def test_import_gcj02_coordinates(api: httpx.Client, wudaokou: AreaInfo) -> None:
    lon, lat = 116.3200, 40.0000
    glon, glat = _gcj(lon, lat)
    data = f"{HEADER}\nG-1,火星驿站,small,{glon!r},{glat!r},,,,,24/7,,,active\n".encode()
    r = _upload(api, data, headers=STAFF, coord="gcj02")
    assert r.status_code == 200, r.text
    f = api.get("/stations/G-1").json()
    assert f["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=2e-7)
    near = _nearest(api, lon, lat, k=1)
    assert _ids(near) == ["G-1"] and near[0]["properties"]["distance_m"] < 0.05


# --- staff: gap reports and the planner's map ---------------------------------------------------------------------


CORNERS = {"SW": (116.3110, 39.9925), "NW": (116.3105, 40.0105), "NE": (116.3300, 40.0105), "SE": (116.3300, 39.9925)}


@pytest.fixture
def coverage_run(engine: Engine, wudaokou: AreaInfo, tmp_path: Path) -> dict:
    """A run of radius 500 m: stations at the centre and the SW corner; demand in the four corners -> 3 gaps."""
    stations = {"C-1": (116.3200, 40.0015, "toilet", "24/7", "active"),
                "C-SW": (116.3112, 39.9927, "charging", "Mo-Fr 08:00-20:00", "active"),
                "C-X": (116.3300, 40.0105, "", "", "closed")}
    import_stations(engine, "s.csv", area=wudaokou.name, data=_stations_csv(stations), filename="s.csv")
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
    r = api.get("/map")
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
    assert api.get("/map", params={"run": coverage_run["run_id"]}).status_code == 200
    missing = api.get("/map", params={"run": 999})
    assert missing.status_code == 404
    assert "999" in missing.json()["detail"]
    assert api.get("/yizhan-assets/no/such/file.js").status_code == 404
    assert api.get("/yizhan-assets/../api.py").status_code == 404


# --- database down and back ---------------------------------------------------------------------------------------


@pytest.mark.fault
def test_database_down_is_503_then_recovers(restartable_cluster: Cluster, tmp_path: Path) -> None:
    port = restartable_cluster.port
    app = create_app(Settings(database_url=restartable_cluster.url(), staff_key=KEY, data_dir=tmp_path / "data"))
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            r = client.get("/readyz")
            assert r.status_code == 200, r.text
            assert client.get("/stations").json()["total"] == 0  # the schema exists

            assert restartable_cluster.down()
            for path, kw in [("/readyz", {}), ("/stations", {}), ("/stations/nearest", {"params": {"lon": 116.3,
                                                                                                   "lat": 40}}),
                             ("/gaps.csv", {"headers": STAFF}), ("/map", {})]:
                r = client.get(path, **kw)
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert r.headers["content-type"].startswith("application/json")
                assert "database" in r.json()["detail"], r.text
            assert client.get("/healthz").status_code == 200  # does not touch the database

            restartable_cluster.up()
            assert restartable_cluster.port == port
            deadline = time.monotonic() + 10
            while True:  # the first request after the restart must already work; allow a short grace anyway
                r = client.get("/readyz")
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert r.status_code == 200, r.text
            assert client.get("/stations").status_code == 200
    finally:
        app.state.db.dispose()


@pytest.mark.fault
def test_database_down_before_first_use_is_503(tmp_path: Path) -> None:
    """An app whose database never answered: 503 (not 500), and it connects later without a restart."""
    base = Path(tempfile.mkdtemp(prefix="yizhan-api-late-"))
    os.chmod(base, 0o755)
    cluster = Cluster(base, durable=False)
    port = cluster.port  # chosen now, the server is started only later
    app = create_app(Settings(database_url=cluster.url(), staff_key=KEY, data_dir=tmp_path / "data"))
    try:
        with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            r = client.get("/readyz")
            assert r.status_code == 503, r.text
            assert "database" in r.json()["detail"]
            cluster.up()
            assert cluster.port == port
            r = client.get("/readyz")
            assert r.status_code == 200, r.text
    finally:
        app.state.db.dispose()
        cluster.down()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(("path", "params"), [
    ("/stations/nearest", {"lon": "116.32", "lat": "40", "area": "x" * 201}),
    ("/stations/nearest", {"lon": "116.32", "lat": "40", "area": "nowhere"}),
    ("/stations/nearest", {"lon": "-180", "lat": "-90"}),
    ("/stations/nearest", {"lon": "180", "lat": "90", "coord": "bd09"}),
    ("/stations/nearest", {"lon": "116.32", "lat": "40", "open_at": ""}),
    ("/stations/nearest", {"lon": "116.32", "lat": "40", "open_at": "2025-06-07T22:00:00+14:00"}),
    ("/stations/nearest", {"lon": "116.32", "lat": "40", "open_at": "0001-01-01T00:00:00+08:00"}),
    ("/stations/nearest", {"lon": "116.32", "lat": "40", "open_at": "9999-12-31T23:59:59-12:00"}),
    ("/stations/nearest", {"lon": "116.32", "lat": "40", "amenity": ""}),
    ("/stations/" + "x" * 500, {}),
    ("/stations", {"area": "'; DROP TABLE stations; --"}),
    ("/runs/99999999999999", {}),
    ("/map", {"run": -1}),
    ("/stations/%00", {}),
    ("/stations/nearest", {"lon": "116.32", "lat": "40", "area": "\x00"}),
    ("/stations", {"area": "a\x00"}),
    ("/runs", {"area": "a\x00"}),
    ("/map", {"area": "a\x00"}),
])
def test_never_500_on_odd_inputs(api: httpx.Client, seeded: AreaInfo, path: str, params: dict) -> None:
    r = api.get(path, params=params)
    assert r.status_code < 500, (path, params, r.status_code, r.text)
    if r.status_code >= 400:
        assert isinstance(r.json()["detail"], str), r.text
    assert api.get("/stations").json()["total"] == len(STATIONS)


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
    r = _upload(api, content, filename=filename, headers=STAFF, **form)
    assert r.status_code in (404, 422), (r.status_code, r.text)
    assert isinstance(r.json()["detail"], str)
    assert api.get("/stations").json()["total"] == len(STATIONS)


def test_import_size_limit(db_url: str, wudaokou: AreaInfo, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data", max_upload_mb=0.001))
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            big = SAMPLE_CSV.read_bytes()
            assert len(big) > 1100
            r = _upload(client, big, headers=STAFF)
            assert r.status_code == 422, r.text
            assert "file" in r.json()["detail"] and "limit" in r.json()["detail"]
            small = f"{HEADER}\nS-1,小驿站,small,116.32,40.0,,,,,,,,active\n".encode()
            assert _upload(client, small, headers=STAFF).status_code == 200
    finally:
        app.state.db.dispose()


# --- declared shapes and settings ------------------------------------------------------------------------------


def test_answers_have_the_declared_shapes(api: httpx.Client, seeded: AreaInfo) -> None:
    """Every key of a station answer is a field of the schema in ``stations/schema.py`` (the hot path builds plain
    dicts, so nothing else checks this), and OpenAPI shows the JSON routes' shapes."""
    r = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "k": 3, "coord": "gcj02"})
    answer = NearestAnswer.model_validate_json(r.content)
    assert len(answer.features) == 3 and answer.query.coord == "gcj02"
    page = StationPage.model_validate_json(api.get("/stations", params={"limit": 2}).content)
    one = StationFeature.model_validate_json(api.get("/stations/N-247").content)
    assert page.total == len(STATIONS) and one.properties.kind_label == "小型驿站"
    for feature in [*r.json()["features"], *api.get("/stations").json()["features"]]:
        assert set(feature) == set(StationFeature.model_fields)
        assert set(feature["properties"]) <= set(StationPublic.model_fields), feature["properties"]
    assert "distance_m" not in api.get("/stations/N-247").json()["properties"]  # only nearest answers have it
    paths = api.get("/openapi.json").json()["paths"]
    for path, method, schema in [("/stations/nearest", "get", "NearestAnswer"), ("/stations", "get", "StationPage"),
                                 ("/stations/{station_id}", "get", "StationFeature"),
                                 ("/runs/{run_id}", "get", "RunSummary"),
                                 ("/recommendations", "post", "RecommendationSummary"),
                                 ("/stations/import", "post", "ImportReport")]:
        ok = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema in str(ok), (path, ok)


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


def test_database_errors_are_one_unavailable_answer() -> None:
    """The database-down family maps to DatabaseUnavailable (503): too slow, too busy, or down."""
    import psycopg
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from yizhan.errors import (
        DATABASE_BUSY,
        DATABASE_DOWN,
        DATABASE_SLOW,
        DatabaseUnavailable,
        as_unavailable,
        http_status,
    )

    assert str(as_unavailable(PoolTimeout())) == DATABASE_BUSY
    assert str(as_unavailable(psycopg.errors.QueryCanceled("canceling statement due to statement timeout"))) \
        == DATABASE_SLOW
    slow = OperationalError("SELECT 1", {}, psycopg.errors.QueryCanceled("canceling statement due to statement "
                                                                        "timeout"))
    assert str(as_unavailable(slow)) == DATABASE_SLOW
    down = OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))
    assert str(as_unavailable(down)) == DATABASE_DOWN == str(DatabaseUnavailable())
    assert http_status(as_unavailable(down)) == 503
