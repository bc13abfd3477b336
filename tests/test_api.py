"""The HTTP API for riders over real HTTP (uvicorn in a background thread, httpx, a fresh PostGIS database):
health, OpenAPI, the nearest station, the station list, odd inputs and the declared answer shapes."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import httpx
import openpyxl
import pytest
from api_data import (
    ACTIVE,
    KEY,
    SATURDAY_22H,
    STAFF,
    STATIONS,
    WEDNESDAY_NOON,
    Q,
    expected_order,
    feature_ids,
    geodesic_m,
    nearest_features,
    stations_csv,
    to_gcj02,
)

from yizhan.areas import AreaInfo
from yizhan.settings import Settings
from yizhan.stations.schema import NearestAnswer, StationFeature, StationPage, StationPublic

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
    r = api.get("/openapi.json", headers=STAFF)
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
    feats = nearest_features(api, *Q, k=50)
    assert feature_ids(feats) == expected_order(*Q, ACTIVE)
    assert "N-CLOSED" not in feature_ids(feats)
    dists = [f["properties"]["distance_m"] for f in feats]
    assert dists == sorted(dists)
    for f in feats:
        p = f["properties"]
        assert {"id", "name", "kind", "amenities", "opening_hours", "distance_m"} <= set(p), p
        assert f["geometry"]["type"] == "Point"
        lon, lat, amen, hours, _ = STATIONS[p["id"]]
        assert f["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-7)
        assert p["distance_m"] == pytest.approx(geodesic_m(*Q, p["id"]), abs=0.05)
        assert p["amenities"] == (amen.split(";") if amen else [])
        assert p["opening_hours"] == (hours or None)
        assert p["name"] == f"驿站 {p['id']}"
        assert p["kind"] == "small"


def test_nearest_k_limits_and_default(api: httpx.Client, seeded: AreaInfo) -> None:
    order = expected_order(*Q, ACTIVE)
    assert feature_ids(nearest_features(api, *Q, k=1)) == order[:1]
    assert feature_ids(nearest_features(api, *Q, k=3)) == order[:3]
    assert feature_ids(nearest_features(api, *Q)) == order[:5]  # default k=5; only 5 active stations exist


def test_nearest_from_another_point(api: httpx.Client, seeded: AreaInfo) -> None:
    lon, lat = 116.3290, 40.0090  # next to N-FAR
    feats = nearest_features(api, lon, lat, k=2)
    assert feature_ids(feats) == expected_order(lon, lat, ACTIVE)[:2]
    assert feature_ids(feats)[0] == "N-FAR"
    for f in feats:
        assert f["properties"]["distance_m"] == pytest.approx(geodesic_m(lon, lat, f["properties"]["id"]), abs=0.05)


def test_nearest_amenities_are_all_required(api: httpx.Client, seeded: AreaInfo) -> None:
    r = api.get("/stations/nearest", params=[("lon", Q[0]), ("lat", Q[1]), ("k", 50),
                                             ("amenity", "charging"), ("amenity", "toilet")])
    assert r.status_code == 200, r.text
    both = [s for s in ACTIVE if {"charging", "toilet"} <= set(STATIONS[s][2].split(";"))]
    assert feature_ids(r.json()["features"]) == expected_order(*Q, both) == ["N-WEEK", "N-247"]
    assert r.json()["query"]["amenity"] == ["charging", "toilet"]
    charging = [s for s in ACTIVE if "charging" in STATIONS[s][2].split(";")]
    assert feature_ids(nearest_features(api, *Q, k=50, amenity="charging")) == expected_order(*Q, charging)


def test_nearest_amenities_and_kind_in_the_words_riders_use(api: httpx.Client, seeded: AreaInfo) -> None:
    coded = api.get("/stations/nearest", params=[("lon", Q[0]), ("lat", Q[1]), ("k", 50),
                                                 ("amenity", "charging"), ("amenity", "toilet")])
    chinese = api.get("/stations/nearest", params=[("lon", Q[0]), ("lat", Q[1]), ("k", 50),
                                                   ("amenity", "充电桩"), ("amenity", "厕所")])
    assert chinese.status_code == 200, chinese.text
    assert feature_ids(chinese.json()["features"]) == feature_ids(coded.json()["features"]) == ["N-WEEK", "N-247"]
    assert chinese.json()["query"]["amenity"] == ["charging", "toilet"]
    small = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "k": 50, "kind": "小站"})
    assert small.status_code == 200, small.text
    assert small.json()["query"]["kind"] == "small"
    bad = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "amenity": "饮水机"})
    assert bad.status_code == 422
    assert "amenity" in bad.text and "饮水机" in bad.text and "饮水" in bad.text  # names the nearest word


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
    assert feature_ids(nearest_features(api, *Q, k=50, open_at=open_at)) == expected
    assert feature_ids(nearest_features(api, *Q, k=1, open_at=open_at)) == expected[:1]


def test_nearest_open_at_with_amenities(api: httpx.Client, seeded: AreaInfo) -> None:
    r = api.get("/stations/nearest", params=[("lon", Q[0]), ("lat", Q[1]), ("k", 1), ("open_at", SATURDAY_22H),
                                             ("amenity", "charging"), ("amenity", "toilet")])
    assert r.status_code == 200, r.text
    assert feature_ids(r.json()["features"]) == ["N-247"]  # N-WEEK is nearer but closed on Saturday night


def test_nearest_in_gcj02_matches_wgs84(api: httpx.Client, seeded: AreaInfo) -> None:
    glon, glat = to_gcj02(*Q)
    assert abs(glon - Q[0]) > 1e-3 or abs(glat - Q[1]) > 1e-3  # the offset is hundreds of metres here
    wgs = nearest_features(api, *Q, k=50)
    gcj = nearest_features(api, glon, glat, k=50, coord="gcj02")
    assert feature_ids(gcj) == feature_ids(wgs)
    for fw, fg in zip(wgs, gcj, strict=True):
        assert fg["properties"]["distance_m"] == pytest.approx(fw["properties"]["distance_m"], abs=0.02)
        lon, lat = STATIONS[fg["properties"]["id"]][:2]
        assert fg["geometry"]["coordinates"] == pytest.approx(list(to_gcj02(lon, lat)), abs=2e-7)
        assert fw["geometry"]["coordinates"] != pytest.approx(fg["geometry"]["coordinates"], abs=1e-4)
    # the same numbers read as WGS 84 are somewhere else: different distances
    as_wgs = nearest_features(api, glon, glat, k=50)
    assert [f["properties"]["distance_m"] for f in as_wgs] != [f["properties"]["distance_m"] for f in gcj]


def test_nearest_with_no_stations_is_empty(api: httpx.Client, wudaokou: AreaInfo) -> None:
    assert nearest_features(api, *Q, k=3) == []
    assert nearest_features(api, *Q, k=3, open_at=SATURDAY_22H) == []


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
    assert r.status_code == 422 and r.json()["detail"] == "lon (query): Field required", r.text
    assert r.json()["errors"][0]["loc"] == ["query", "lon"]
    r = api.get("/stations/nearest", params=[("lon", Q[0]), ("lat", Q[1]), ("k", 2), ("k", 3), ("color", "red")])
    assert r.status_code == 200, r.text
    assert len(r.json()["features"]) == 3  # a repeated single parameter: the last value; unknown ones ignored
    echo = r.json()["query"]
    assert echo.pop("at").startswith("20")  # the instant the hours are said for: now
    assert echo == {"lon": Q[0], "lat": Q[1], "coord": "wgs84", "k": 3, "amenity": [], "open_at": None,
                    "by": "straight", "open_now": False, "open_24h": False,
                    "max_distance_m": 3000.0}
    r = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "area": "no\x00where"})
    assert r.status_code == 422, r.text  # PostgreSQL text cannot hold NUL: a 422, not a 500


def test_bad_parameters_elsewhere_are_422(api: httpx.Client, seeded: AreaInfo) -> None:
    for path, params, name in [("/stations", {"limit": 0}, "limit"), ("/stations", {"offset": -1}, "offset"),
                               ("/stations", {"status": "gone"}, "status"), ("/stations", {"coord": "utm"}, "coord"),
                               ("/runs/abc", {}, "run_id"), ("/map", {"run": "x"}, "run")]:
        r = api.get(path, params=params, headers=STAFF)
        assert r.status_code == 422, (path, params, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str) and name in r.json()["detail"], r.text


def test_unknown_area_is_404_naming_the_areas(api: httpx.Client, seeded: AreaInfo) -> None:
    """``area=`` naming no area is a mistake to tell, not an empty answer."""
    for path, params in [("/stations", {"area": "atlantis"}),
                         ("/stations/nearest", {"lon": Q[0], "lat": Q[1], "area": "atlantis"}),
                         ("/stations/nearest", {"lon": Q[0], "lat": Q[1], "area": "atlantis", "by": "network"}),
                         ("/stations/N-247", {"area": "atlantis"})]:
        r = api.get(path, params=params)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert r.json()["detail"] == "no area named 'atlantis'; areas: wudaokou", r.text
    # the area that exists still answers, also where it has no station of the kind asked
    assert api.get("/stations", params={"area": "wudaokou"}).json()["total"] == len(STATIONS)
    assert nearest_features(api, *Q, area="wudaokou", kind="mobile") == []


@pytest.mark.parametrize(("path", "params", "starts"), [
    ("/stations/nearest", {"lon": 181, "lat": 40}, "lon (query): "),
    ("/stations/nearest", {"lat": 40}, "lon (query): "),
    ("/stations", {"limit": 0}, "limit (query): "),
    ("/runs/abc", {}, "run_id (path): "),
    ("/map", {"run": "x"}, "run (query): "),
])
def test_422_detail_starts_with_the_parameter_and_where(api: httpx.Client, path: str, params: dict,
                                                        starts: str) -> None:
    r = api.get(path, params=params, headers=STAFF)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(starts), r.json()["detail"]


def test_422_of_a_body_names_the_field(api: httpx.Client) -> None:
    r = api.post("/recommendations", headers=STAFF, json={"k": 0})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("k (body): "), r.json()["detail"]
    r = api.post("/stations/import", headers=STAFF, files={"file": ("s.csv", b"id\n", "text/csv")},
                 data={"coord": "mars"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("coord (body): "), r.json()["detail"]


# --- registry reads -----------------------------------------------------------------------------------------------


def test_list_stations(api: httpx.Client, seeded: AreaInfo) -> None:
    r = api.get("/stations")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert body["total"] == len(STATIONS)
    assert feature_ids(body["features"]) == sorted(STATIONS)
    page = api.get("/stations", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == len(STATIONS) and feature_ids(page["features"]) == sorted(STATIONS)[1:3]
    closed = api.get("/stations", params={"status": "closed"}).json()
    assert closed["total"] == 1 and feature_ids(closed["features"]) == ["N-CLOSED"]


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
    assert gcj["geometry"]["coordinates"] == pytest.approx(list(to_gcj02(*STATIONS["N-247"][:2])), abs=2e-7)

    r = api.get("/stations/NO-SUCH")
    assert r.status_code == 404
    assert "NO-SUCH" in r.json()["detail"] and "no station" in r.json()["detail"]


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
    ("/stations/N-WEEK", {"open_at": "9999-12-31T23:59:59-12:00"}),
    ("/stations/N-WEEK", {"open_at": "0001-01-01T00:00:00"}),
    ("/stations/nearest", {"lon": "116.32", "lat": "40", "open_at": "9999-12-31T23:00:00", "max_distance_m": "1"}),
    ("/stations/nearest", {"lon": "116.32", "lat": "40", "open_now": "maybe"}),
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
    paths = api.get("/openapi.json", headers=STAFF).json()["paths"]
    for path, method, schema in [("/stations/nearest", "get", "NearestAnswer"), ("/stations", "get", "StationPage"),
                                 ("/stations/{station_id}", "get", "StationFeature"),
                                 ("/runs/{run_id}", "get", "RunSummary"),
                                 ("/recommendations", "post", "RecommendationSummary"),
                                 ("/stations/import", "post", "ImportReport")]:
        ok = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema in str(ok), (path, ok)


@pytest.mark.parametrize("offset", ["08:00", "0800"])
def test_nearest_open_at_unencoded_plus(api: httpx.Client, seeded: AreaInfo, offset: str) -> None:
    """``open_at=...T12:00:00+08:00`` typed into a URL: the ``+`` arrives as a space, read as the offset's ``+``."""
    r = api.get(f"/stations/nearest?lon={Q[0]}&lat={Q[1]}&k=50&open_at=2025-06-04T12:00:00+{offset}")
    assert r.status_code == 200, r.text
    assert r.json()["query"]["open_at"] == "2025-06-04T12:00:00+08:00"
    assert feature_ids(r.json()["features"]) == ["N-WEEK", "N-247", "N-WEEK2", "N-FAR"]  # Wednesday noon, Beijing


@pytest.mark.parametrize("value", ["2025-06-04T12:00:00+99:00", "2025-06-04T12:00:00+08:61"])
def test_nearest_open_at_space_not_an_offset(api: httpx.Client, seeded: AreaInfo, value: str) -> None:
    """A space (an unencoded ``+``) before something that is no offset: a 422 naming open_at and saying how to
    write the ``+``."""
    r = api.get(f"/stations/nearest?lon={Q[0]}&lat={Q[1]}&open_at={value}")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("open_at (query): ") and "\n" not in detail, detail
    assert "%2B" in detail and "without an offset" in detail, detail
    assert [e["loc"] for e in r.json()["errors"]] == [["query", "open_at"]]


def test_import_uses_the_apps_own_read_limits(live_api: Callable[..., httpx.Client], db_url: str, tmp_path: Path,
                                              wudaokou: AreaInfo) -> None:
    """An app made with lower import limits than the process's environment applies them to uploads: rows read
    (``max_import_rows``) and the unpacked size of a workbook (``max_uncompressed_mb``)."""
    api = live_api(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data", max_import_rows=5,
                            max_uncompressed_mb=0.001))
    six = {f"L{i}": (116.32 + i / 1000, 40.0, "", "24/7", "active") for i in range(6)}
    r = api.post("/stations/import", headers=STAFF, data={"area": wudaokou.name},
                 files={"file": ("six.csv", stations_csv(six), "text/csv")})
    assert r.status_code == 422, r.text
    assert "more than 5 rows" in r.json()["detail"], r.text
    wb = openpyxl.Workbook()
    wb.active.append(["id", "name", "kind", "lon", "lat"])
    wb.active.append(["L0", "a", "small", 116.32, 40.0])
    out = io.BytesIO()
    wb.save(out)
    r = api.post("/stations/import", headers=STAFF, data={"area": wudaokou.name},
                 files={"file": ("one.xlsx", out.getvalue(), "application/octet-stream")})
    assert r.status_code == 422, r.text
    assert "limit of 0.001 MB" in r.json()["detail"], r.text
    assert api.get("/stations", params={"area": wudaokou.name}).json()["total"] == 0


# --- the rider's answer: hours, minutes, limits and reasons ---------------------------------------------------------


def test_nearest_says_the_hours_at_the_instant_asked(api: httpx.Client, seeded: AreaInfo) -> None:
    feats = {f["id"]: f["properties"] for f in nearest_features(api, *Q, k=50, open_at=WEDNESDAY_NOON)}
    week, always = feats["N-WEEK"], feats["N-247"]
    assert (week["open_now"], week["closes_at"], week["opens_at"]) == (True, "2025-06-04T20:00:00+08:00", None)
    assert (week["hours_zh"], week["status_zh"], week["status_en"]) == (
        "周一至周五 08:00–20:00", "营业至 20:00", "open until 20:00")
    assert (always["open_now"], always["closes_at"], always["hours_zh"], always["status_zh"]) == (
        True, None, "24小时开放", "24小时营业")
    closed = api.get("/stations/N-WEEK", params={"open_at": SATURDAY_22H}).json()["properties"]
    assert (closed["open_now"], closed["opens_at"], closed["closes_at"]) == (False, "2025-06-09T08:00:00+08:00", None)
    assert (closed["status_zh"], closed["status_en"]) == ("已关闭 · 后天 08:00 开放", "closed · opens Mon 08:00")
    unknown = api.get("/stations/N-NOHOURS", params={"open_at": SATURDAY_22H}).json()["properties"]
    assert (unknown["open_now"], unknown["opens_at"], unknown["hours_zh"]) == (False, None, None)
    assert unknown["status_zh"].startswith("开放时间未知")


def test_nearest_minutes_state_their_speeds(api: httpx.Client, seeded: AreaInfo) -> None:
    body = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "k": 50}).json()
    assert body["speeds"] == {"walk_kmh": 4.5, "ride_kmh": 15.0, "along": "straight"}
    for f in body["features"]:
        p = f["properties"]
        assert p["straight_walk_min"] == math.ceil(p["distance_m"] / 75 - 1e-9)  # 4.5 km/h = 75 m a minute
        assert p["straight_ride_min"] == math.ceil(p["distance_m"] / 250 - 1e-9)
        assert "walk_min" not in p and "ride_min" not in p  # along the streets only
        assert set(p["nav"]) == {"amap_walk", "amap_ride", "baidu_walk", "baidu_ride", "baidu_web", "geo"}


def test_nearest_lists_only_stations_within_the_limit(api: httpx.Client, seeded: AreaInfo) -> None:
    near = nearest_features(api, *Q, k=50, max_distance_m=500)
    assert near and all(f["properties"]["distance_m"] <= 500 for f in near)
    assert feature_ids(near) == [s for s in expected_order(*Q, ACTIVE) if geodesic_m(*Q, s) <= 500]
    body = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "max_distance_m": 50}).json()
    assert body["features"] == []
    assert body["reason"] == {"code": "none_within", "zh": "附近 50 米内没有驿站", "en": "no station within 50 m"}
    first = expected_order(*Q, ACTIVE)[0]
    assert body["nearest_beyond"]["id"] == first
    assert body["nearest_beyond"]["properties"]["distance_m"] == pytest.approx(geodesic_m(*Q, first), abs=0.05)
    assert NearestAnswer.model_validate(body).nearest_beyond is not None


def test_a_point_far_from_every_station_gets_a_reason(api: httpx.Client, seeded: AreaInfo) -> None:
    far = (116.6, 40.3)  # about 40 km from Wudaokou
    body = api.get("/stations/nearest", params={"lon": far[0], "lat": far[1]}).json()
    assert body["features"] == [] and body["query"]["max_distance_m"] == 3000
    assert body["reason"] == {"code": "none_within", "zh": "附近 3 公里内没有驿站", "en": "no station within 3 km"}
    beyond = body["nearest_beyond"]
    assert beyond["id"] == expected_order(*far, ACTIVE)[0] and beyond["properties"]["distance_m"] > 30_000
    assert body["next_open"] is None


def test_nothing_open_names_the_station_opening_soonest(api: httpx.Client, seeded: AreaInfo) -> None:
    body = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "open_at": SATURDAY_22H,
                                                "max_distance_m": 200}).json()
    assert body["features"] == []
    assert body["reason"] == {"code": "none_open", "zh": "6月7日 22:00 没有开放的驿站 · 最近的 后天 08:00 开放",
                              "en": "no station open at 07 Jun 22:00 · the nearest opens Mon 08:00"}
    soonest = body["next_open"]
    assert soonest["id"] == "N-WEEK" and soonest["properties"]["opens_at"] == "2025-06-09T08:00:00+08:00"
    assert NearestAnswer.model_validate(body).next_open is not None
    # wider, the 24/7 station is open and listed: no reason
    body = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "open_at": SATURDAY_22H}).json()
    assert feature_ids(body["features"]) == ["N-247", "N-FAR"] and "reason" not in body


def test_open_now_filters_at_the_request_time(api: httpx.Client, seeded: AreaInfo) -> None:
    body = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "k": 50, "open_now": "true",
                                                "open_at": WEDNESDAY_NOON}).json()
    assert body["query"]["open_now"] is True
    ids = feature_ids(body["features"])
    assert {"N-247", "N-FAR"} <= set(ids) and "N-NOHOURS" not in ids  # 24/7 always; unknown hours never
    assert all(f["properties"]["open_now"] for f in body["features"])
    assert not body["query"]["at"].startswith("2025-06-04")  # now, not the open_at given beside it


def test_open_24h_keeps_only_round_the_clock_stations(api: httpx.Client, seeded: AreaInfo) -> None:
    body = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "k": 50, "open_24h": "true",
                                                "open_at": WEDNESDAY_NOON}).json()
    assert body["query"]["open_24h"] is True
    assert feature_ids(body["features"]) == ["N-247", "N-FAR"]  # N-WEEK is open at noon, but not all night
    assert all(f["properties"]["hours_zh"] == "24小时开放" for f in body["features"])
    near = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "open_24h": "true", "max_distance_m": 200,
                                                "open_at": WEDNESDAY_NOON}).json()
    assert near["features"] == [] and near["next_open"] is None
    assert near["reason"] == {"code": "none_all_day", "zh": "附近 200 米内没有24小时开放的驿站",
                              "en": "no station open 24 hours within 200 m"}
    assert NearestAnswer.model_validate(near).reason is not None


def test_openapi_lists_the_riders_parameters(api: httpx.Client) -> None:
    paths = api.get("/openapi.json", headers=STAFF).json()["paths"]
    nearest = {p["name"]: p for p in paths["/stations/nearest"]["get"]["parameters"]}
    assert {"max_distance_m", "open_now", "open_24h"} <= set(nearest)
    assert nearest["max_distance_m"]["schema"]["default"] == 3000, nearest["max_distance_m"]  # the setting's
    assert "open_at" in {p["name"] for p in paths["/stations/{station_id}"]["get"]["parameters"]}


@pytest.mark.parametrize("value", ["0", "-5", "nan", "100000", "far"])
def test_bad_max_distance_is_422(api: httpx.Client, seeded: AreaInfo, value: str) -> None:
    r = api.get("/stations/nearest", params={"lon": Q[0], "lat": Q[1], "max_distance_m": value})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("max_distance_m"), r.text
