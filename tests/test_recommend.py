"""Recommendation runs on a real PostGIS with the real Wudaokou extract: candidates, K = 1..5, set covering,
what-if lists, host-type and no-go filters, network mode, the CLI and the map."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pytest
import shapely.geometry
from browser import dump_dom, needs_chromium
from cli_runner import run_cli
from shapely.geometry import box
from sqlalchemy import text

from yizhan.areas import AreaInfo
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.runs import load_run
from yizhan.data.demand_points import drop_points
from yizhan.errors import ImportRejected, InvalidInput
from yizhan.geo.coords import from_wgs84
from yizhan.maps.folium_map import write_map
from yizhan.maps.layers import LAYER_HOURS, LAYER_SITES
from yizhan.maps.recommend_map import map_for_recommendation
from yizhan.settings import Settings
from yizhan.siting.candidates import (
    candidates_from_extract,
    candidates_from_file,
    filter_candidates,
    load_candidates,
    store_candidates,
)
from yizhan.siting.recommend import recommend, recommend_hours, street_reach
from yizhan.siting.runs import load_recommendation


@pytest.fixture(scope="module")
def extract_candidates(osm_path) -> gpd.GeoDataFrame:  # type: ignore[no-untyped-def]
    """The extract's host premises (read once for the module)."""
    return candidates_from_extract(osm_path)


@pytest.fixture
def area(engine, extract_candidates, sample_area) -> AreaInfo:  # type: ignore[no-untyped-def]
    """The demo sample area (stations, demand, street graphs) with the extract's host premises as candidates."""
    with engine.begin() as conn:
        cands, _ = filter_candidates(extract_candidates.copy(), sample_area)
        store_candidates(conn, sample_area, cands, source="osm")
    return sample_area


def test_candidates_from_the_extract_are_real_host_premises(extract_candidates):
    cands = extract_candidates
    assert len(cands) > 20 and cands.crs.to_epsg() == 4326
    assert {"bank", "convenience", "fuel"} <= set(cands["host_type"])
    assert cands["external_id"].str.match(r"^osm:[nw]\d+$").all() and cands["external_id"].is_unique


@pytest.mark.parametrize("radius", [1000.0, 400.0])
def test_k_one_to_five_is_monotone_and_consistent(engine, area, settings, radius):
    straight = run_coverage(engine, radius_m=radius)
    shares, n_sites = [], 0
    for k in range(1, 6):
        r = recommend(engine, k=k, radius_m=radius, settings=settings)
        assert r["covered_share_before"] == pytest.approx(straight["covered_share"], abs=1e-6)
        assert r["covered_share_after"] >= r["covered_share_before"]
        assert r["gap"] <= 1e-6 and r["optimal"] and r["bound"] >= r["objective"]
        assert len(r["sites"]) <= k
        gains = [s["gain"] for s in r["sites"]]
        assert sum(gains) == pytest.approx(r["objective"], abs=1e-3)
        assert gains == sorted(gains, reverse=True)
        assert r["demand_covered_after"] - r["demand_covered_before"] == pytest.approx(r["objective"], abs=1e-3)
        assert r["sites"][-1]["covered_share_after"] == pytest.approx(r["covered_share_after"], abs=1e-6)
        shares.append(r["covered_share_after"])
        n_sites += len(r["sites"])
    assert shares == sorted(shares) and shares[0] > straight["covered_share"]
    if radius < 1000:
        assert len(set(shares)) == 5  # at 400 m every further site adds demand
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT count(*) FROM recommendation_runs")).scalar_one()
        stored = conn.execute(text("SELECT count(*) FROM recommended_sites")).scalar_one()
    assert runs == 5 and stored == n_sites


def test_network_mode_uses_the_coverage_engine(engine, area, settings):
    net = run_coverage(engine, radius_m=1000, mode="network", profile="walk", settings=settings)
    r = recommend(engine, k=2, mode="network", settings=settings)
    assert r["mode"] == "network" and r["profile"] == "walk"
    assert r["covered_share_before"] == pytest.approx(net["covered_share"], abs=1e-6)
    straight = recommend(engine, k=2, settings=settings)
    assert r["covered_share_after"] <= straight["covered_share_after"] + 1e-9
    assert r["params"]["distance"].startswith("along the walk street network")
    # the map draws what the stations and the new sites reach along the streets
    rec = load_recommendation(engine, r["run_id"])
    reach = street_reach(rec, settings)
    assert reach is not None and area.boundary.covers(reach)
    before = street_reach(load_recommendation(engine, recommend(engine, k=1, mode="network", settings=settings)
                                              ["run_id"]), settings)
    assert reach.area > before.area  # two new sites reach more than one
    assert street_reach(load_recommendation(engine, straight["run_id"]), settings) is None
    html = map_for_recommendation(rec, settings=settings).get_root().render()
    assert "yz-service-area" in html


@pytest.mark.parametrize(("mode", "radius"), [("straight", 600.0), ("network", 800.0)])
def test_before_and_after_are_runs_before_and_with_the_sites(engine, area, settings, mode, radius):
    """The demo area stores its order points: a recommendation measures them as a run does, so its covered
    demand before is a run's and after is a run's with the chosen sites added as active stations, gaps too."""
    before = run_coverage(engine, radius_m=radius, mode=mode, settings=settings)
    r = recommend(engine, k=3, radius_m=radius, mode=mode, settings=settings)
    assert before["params"]["measured"] == r["params"]["measured"] == "points"
    assert r["params"]["points"] == before["params"]["points"] > len(load_run(engine, before["run_id"]).cells)
    assert r["demand_total"] == pytest.approx(before["demand_total"], rel=1e-12)
    assert r["demand_covered_before"] == pytest.approx(before["demand_covered"], rel=1e-9)
    assert r["covered_share_before"] == pytest.approx(before["covered_share"], abs=1e-9)
    assert len(r["sites"]) == 3 and r["objective"] > 0
    with engine.begin() as conn:
        for s in r["sites"]:
            conn.execute(text("INSERT INTO stations (external_id, name, kind, area_id, geom, status) VALUES "
                              "(:id, :name, 'small', :a, ST_SetSRID(ST_MakePoint(:x, :y), 4326), 'active')"),
                         {"id": f"NEW-{s['id']}", "name": s["name"], "a": area.id, "x": s["lon"], "y": s["lat"]})
    after = run_coverage(engine, radius_m=radius, mode=mode, settings=settings)
    assert r["demand_covered_after"] == pytest.approx(after["demand_covered"], rel=1e-9)
    assert r["covered_share_after"] == pytest.approx(after["covered_share"], abs=1e-9)
    assert r["sites"][-1]["covered_share_after"] == pytest.approx(after["covered_share"], abs=1e-9)
    run_gaps = load_run(engine, after["run_id"]).gaps
    rec_gaps = load_recommendation(engine, r["run_id"]).gaps
    assert r["remaining_gaps"] == len(run_gaps) > 0
    assert sorted(rec_gaps["demand"]) == pytest.approx(sorted(run_gaps["demand"]), rel=1e-9)
    assert sorted(rec_gaps["cells"]) == sorted(run_gaps["cells"])


def test_without_stored_points_the_cell_centres_are_measured_as_runs_do(engine, area, settings):
    """An area holding only its cells (a grid was imported): the recommendation measures the cell centres, with
    the same ellipsoid re-check as a run, and the sites it picks cover in a run what it says."""
    with engine.begin() as conn:
        drop_points(conn.connection.driver_connection, area.id)
    before = run_coverage(engine, radius_m=450)
    r = recommend(engine, k=2, radius_m=450, settings=settings)
    assert before["params"]["measured"] == r["params"]["measured"] == "cells" and "points" not in r["params"]
    assert r["demand_covered_before"] == pytest.approx(before["demand_covered"], rel=1e-9)
    with engine.begin() as conn:
        for s in r["sites"]:
            conn.execute(text("INSERT INTO stations (external_id, name, kind, area_id, geom, status) VALUES "
                              "(:id, :name, 'small', :a, ST_SetSRID(ST_MakePoint(:x, :y), 4326), 'active')"),
                         {"id": f"NEW-{s['id']}", "name": s["name"], "a": area.id, "x": s["lon"], "y": s["lat"]})
    after = run_coverage(engine, radius_m=450)
    assert r["demand_covered_after"] == pytest.approx(after["demand_covered"], rel=1e-9)
    assert r["remaining_gaps"] == after["gaps"]


def test_target_needs_the_fewest_sites(engine, area, settings):
    r = recommend(engine, target=0.95, settings=settings)
    n = len(r["sites"])
    assert r["problem"] == "lscp" and r["covered_share_after"] >= 0.95 and r["objective"] == n
    if n > 1:
        fewer = recommend(engine, k=n - 1, settings=settings)
        assert fewer["optimal"] and fewer["covered_share_after"] < 0.95
    with pytest.raises(InvalidInput, match="cannot be reached"):
        recommend(engine, target=1.0, radius_m=50, settings=settings)


def test_host_type_and_no_go_filters(engine, area, settings):
    best = recommend(engine, k=2, settings=settings)
    banned = {s["host_type"] for s in best["sites"]}
    r = recommend(engine, k=2, exclude_host_types=sorted(banned), settings=settings)
    assert not banned & {s["host_type"] for s in r["sites"]}
    assert r["params"]["candidates_removed"]["excluded_host_type"] > 0
    top = best["sites"][0]
    zone = box(top["lon"] - 0.002, top["lat"] - 0.002, top["lon"] + 0.002, top["lat"] + 0.002)
    r = recommend(engine, k=2, no_go=zone, settings=settings)
    assert all(not zone.covers(gpd.points_from_xy([s["lon"]], [s["lat"]])[0]) for s in r["sites"])
    assert r["params"]["candidates_removed"]["in_no_go_area"] >= 1
    with pytest.raises(InvalidInput, match="host type: unknown 'castle'"):
        recommend(engine, k=2, exclude_host_types=["castle"], settings=settings)


def test_a_planners_own_sites_are_evaluated_against_the_best(engine, area, settings):
    with engine.connect() as conn:
        pool = load_candidates(conn, area.id)
    mine = pool.iloc[[0, 5]][["external_id", "name", "host_type", "geometry"]].copy()
    mine["external_id"] = ["P1", "P2"]
    ev = recommend(engine, sites=mine, settings=settings)
    best = recommend(engine, k=2, settings=settings)
    assert ev["problem"] == "evaluate" and {s["id"] for s in ev["sites"]} == {"P1", "P2"}
    assert ev["objective"] <= best["objective"] <= ev["bound"] + 1e-6
    assert not ev["optimal"] or ev["objective"] == pytest.approx(best["objective"])
    # the planner's own sites are taken as given; the pool they are compared with keeps the filters
    ev2 = recommend(engine, sites=mine.assign(host_type="bank"), exclude_host_types=["bank"], settings=settings)
    assert {s["id"] for s in ev2["sites"]} == {"P1", "P2"}
    assert ev2["params"]["exclude_host_types"] == ["bank"] and ev2["params"]["candidates_removed"]["excluded_host_type"]
    assert "candidate sites" in ev2["params"]["compared_with"]


def test_bad_requests_are_named(engine, area, settings):
    for kwargs, message in [({}, "exactly one of"), ({"k": 2, "target": 0.9}, "exactly one of"),
                            ({"k": 0}, "k=0"), ({"target": 1.5}, "target=1.5"), ({"k": 2, "mode": "fly"}, "mode"),
                            ({"k": 2, "radius_m": -1}, "radius")]:
        with pytest.raises(InvalidInput, match=message):
            recommend(engine, settings=settings, **kwargs)


def test_candidate_files_are_checked_and_stored_all_or_nothing(engine, area, tmp_path):
    good = tmp_path / "sites.csv"
    good.write_bytes("编号,名称,类型,经度,纬度\nA1,中石化加油站,加油站,116.3150,40.0000\nA2,社区服务站,社区,116.3200,"
                     "40.0050\n".encode("gb18030"))
    cands = candidates_from_file(good)
    assert list(cands["host_type"]) == ["fuel", "community_centre"]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,host_type,lon,lat\nB1,x,castle,116.31,40.0\nB1,y,bank,116.31,95\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as err:
        candidates_from_file(bad)
    text_ = str(err.value)
    assert "row 2, host_type='castle'" in text_ and "row 3, id='B1'" in text_ and "row 3, lat=" in text_
    far = candidates_from_file(good).assign(geometry=gpd.points_from_xy([116.0, 116.32], [39.0, 40.005]))
    with engine.begin() as conn:
        before = len(load_candidates(conn, area.id))
    with pytest.raises(ImportRejected, match="outside area"), engine.begin() as conn:
        store_candidates(conn, area, gpd.GeoDataFrame(far, crs=4326), source="far.csv")
    with engine.begin() as conn:
        assert len(load_candidates(conn, area.id)) == before
        store_candidates(conn, area, cands, source="sites.csv")
        assert len(load_candidates(conn, area.id)) == before + 2


@needs_chromium
def test_recommendation_map_shows_the_sites(engine, area, settings, tmp_path):
    r = recommend(engine, k=3, radius_m=400, settings=settings)
    page = write_map(map_for_recommendation(load_recommendation(engine, r["run_id"]), settings=settings),
                     tmp_path / "rec.html")
    dom = dump_dom(page)
    assert LAYER_SITES in dom and "选址建议 Where to open next" in dom
    markers = re.findall(r'class="[^"]*yz-site[^"]*"[^>]*><div>(\d+)</div>', dom)
    assert sorted(map(int, markers)) == [s["rank"] for s in r["sites"]]  # one set drawn (WGS 84), numbered
    before, after = r["covered_share_before"] * 100, r["covered_share_after"] * 100
    assert f"{before:.1f}% → <b>{after:.1f}%</b>" in dom


@needs_chromium
def test_hours_recommendation_map_draws_the_longer_hours(engine, area, settings, tmp_path):
    r = recommend_hours(engine, extend_to="22:00", max_extend=2, max_24h=1, max_sites=2, radius_m=500,
                        time_limit_s=30, settings=settings)
    acts = r["actions"]
    kinds = [a["kind"] for a in acts]
    assert "site" in kinds and "extend" in kinds and "24h" in kinds  # the demo data asks for each kind
    page = write_map(map_for_recommendation(load_recommendation(engine, r["run_id"]), settings=settings),
                     tmp_path / "hours.html")
    dom = dump_dom(page)
    assert LAYER_HOURS in dom and LAYER_SITES in dom and "延长营业或全天24小时的驿站" in dom
    # the stations with longer hours and the new sites drawn with their rank in the one list, each kind its marker
    hours = re.findall(r'class="[^"]*yz-hours yz-hours-(extend|24h)[^"]*"[^>]*><div>(\d+)</div>', dom)
    assert sorted((int(n), k) for k, n in hours) == [(a["rank"], a["kind"]) for a in acts if a["kind"] != "site"]
    sites = re.findall(r'class="[^"]*yz-site[^"]*"[^>]*><div>(\d+)</div>', dom)
    assert sorted(map(int, sites)) == [a["rank"] for a in acts if a["kind"] == "site"]
    # the panel lists every action in its rank with its kind, the shares being of demand-hours
    panel = dom[dom.index('id="yz-summary"'):dom.index('id="yz-legend"')]
    listed = re.findall(r'<li><span class="yz-action-kind[^"]*">([^<]+)</span> <b>([^<]+)</b>', panel)
    assert [k for k, _ in listed] == [f"{a['kind_zh']} {a['kind_en']}" for a in acts]
    assert "分时覆盖率 Covered, by hour" in panel and "上界 Bound（需求小时 demand-hours）" in panel
    before, after = r["covered_share_before"] * 100, r["covered_share_after"] * 100
    assert f"{before:.1f}% → <b>{after:.1f}%</b>" in panel
    # each extended station's popup says the time, then the hours added as a rule, Chinese first
    html = page.read_text(encoding="utf-8")
    for a in acts:
        if a["kind"] == "extend":
            assert f"延长至 22:00 extended to 22:00 · {a['hours_rule']}" in html
            assert f"{a['hours_added']} 小时/周 h a week" in html
        elif a["kind"] == "24h":
            assert f"全天24小时 open 24 h · {a['hours_rule']}" in html
    # a new site's popup counts its gain in demand-hours too, not in orders
    assert "需求小时 demand-hours</td></tr><tr><th>累计分时覆盖率" in html and "新增覆盖订单" not in html


@pytest.mark.slow
def test_cli_recommend_json(cli_env, osm_path, sample_extract, tmp_path):
    run_cli("area", "create", "wudaokou", "--bbox", "116.3084,39.9905,116.3320,40.0123", env=cli_env)
    files = sample_extract.write(tmp_path / "s")
    run_cli("stations", "import", str(files["stations"]), env=cli_env)
    run_cli("demand", "import", str(files["demand"]), env=cli_env)
    out = run_cli("candidates", "import", "--osm", str(osm_path), env=cli_env).stdout
    assert "candidate sites stored" in out
    proc = run_cli("recommend", "--k", "3", "--json", env=cli_env)
    data = json.loads(proc.stdout)
    for key in ("k", "covered_share_before", "covered_share_after", "objective", "bound", "gap", "method", "sites"):
        assert key in data
    assert data["k"] == 3 and data["covered_share_after"] > data["covered_share_before"]
    assert {"id", "name", "lon", "lat", "gain"} <= set(data["sites"][0])
    out_geo = tmp_path / "rec.geojson"
    proc = run_cli("recommend", "--k", "2", "--radius", "400", "--geojson", str(out_geo), env=cli_env)
    doc = gpd.read_file(out_geo)
    sites, gaps = doc[doc["layer"] == "site"], doc[doc["layer"] == "remaining_gap"]
    assert len(sites) == 2 and len(gaps) >= 1 and doc.crs.to_epsg() == 4326
    assert set(sites.geom_type) == {"Point"} and set(gaps.geom_type) <= {"Polygon", "MultiPolygon"}
    assert "newly covered" in proc.stdout  # the table of sites
    proc = run_cli("recommend", "--target", "0.9", "--exclude-host", "bank", "--json", env=cli_env)
    assert all(s["host_type"] != "bank" for s in json.loads(proc.stdout)["sites"])
    bad = run_cli("recommend", "--k", "2", "--target", "0.9", env=cli_env, check=False)
    assert bad.returncode != 0 and "exactly one of" in bad.stderr
    parts = json.loads(run_cli("recommend", "--k", "3", "--partitions", "2", "--json",
                               env={**cli_env, "YIZHAN_PARTITION_WORKERS": "1"}).stdout)
    assert [s["id"] for s in parts["sites"]] == [s["id"] for s in data["sites"]]
    assert parts["covered_share_after"] == pytest.approx(data["covered_share_after"], abs=1e-12)
    bad = run_cli("recommend", "--hours", "--partitions", "2", env=cli_env, check=False)
    assert bad.returncode != 0 and "--partitions" in bad.stderr and "Traceback" not in bad.stderr
    page = tmp_path / "rec.html"
    run_cli("map", "--recommendation", str(data["run_id"]), "--out", str(page), env=cli_env)
    html = page.read_text(encoding="utf-8")
    assert "选址建议 Where to open next" in html and html.count('className": "yz-site",') >= len(data["sites"])
    assert np.isfinite(data["gap"])


def test_http_recommendations(engine, area, settings, db_url, live_api):
    api = live_api(Settings(database_url=db_url, staff_key="staff-key", data_dir=settings.data_dir), timeout=120)
    body = {"k": 2, "radius_m": 500}
    assert api.post("/recommendations", json=body).status_code == 401
    assert api.post("/recommendations", json=body, headers={"X-API-Key": "nope"}).status_code == 401
    staff = {"X-API-Key": "staff-key"}
    r = api.post("/recommendations", json=body, headers=staff)
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["k"] == 2 and rec["covered_share_after"] > rec["covered_share_before"]
    same = recommend(engine, k=2, radius_m=500, settings=settings)
    assert rec["objective"] == pytest.approx(same["objective"])
    assert [s["id"] for s in rec["sites"]] == [s["id"] for s in same["sites"]]
    assert api.get(f"/recommendations/{rec['run_id']}").status_code == 401
    assert api.get(f"/recommendations/{rec['run_id']}", headers=staff).json()["sites"] == rec["sites"]
    assert rec["run_id"] in [x["run_id"] for x in api.get("/recommendations", headers=staff).json()]
    page = api.get("/map", params={"recommendation": rec["run_id"]}, headers=staff)
    assert page.status_code == 200 and "选址建议 Where to open next" in page.text
    assert api.get("/recommendations/999999", headers=staff).status_code == 404
    geo = api.get(f"/recommendations/{rec['run_id']}.geojson", headers=staff)
    assert geo.status_code == 200 and geo.headers["content-type"].startswith("application/geo+json")
    layers = [f["properties"]["layer"] for f in geo.json()["features"]]
    assert layers.count("site") == len(rec["sites"]) and layers.count("remaining_gap") == rec["remaining_gaps"]
    assert geo.json()["properties"]["covered_share_after"] == rec["covered_share_after"]
    # a proposed site given in GCJ-02 (as a map app shows it) and a no-go zone around the best site
    top = rec["sites"][0]
    gx, gy = from_wgs84(np.array([top["lon"]]), np.array([top["lat"]]), "gcj02")
    proposal = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [gx[0], gy[0]]},
                "properties": {"id": "P1", "name": "我的选址", "host_type": "加油站"}}
    ev = api.post("/recommendations", headers=staff,
                  json={"sites": [proposal], "coord": "gcj02", "radius_m": 500}).json()
    assert ev["problem"] == "evaluate" and ev["sites"][0]["id"] == "P1"
    assert ev["sites"][0]["lon"] == pytest.approx(top["lon"], abs=1e-5)
    assert ev["objective"] == pytest.approx(rec["sites"][0]["gain"], rel=1e-6)
    zone = box(top["lon"] - 0.001, top["lat"] - 0.001, top["lon"] + 0.001, top["lat"] + 0.001)
    avoid = api.post("/recommendations", headers=staff,
                     json={"k": 2, "radius_m": 500, "no_go": shapely.geometry.mapping(zone)}).json()
    assert top["id"] not in [s["id"] for s in avoid["sites"]]
    for bad, field in [({"k": 0}, "k"), ({"k": 2, "target": 0.9}, "exactly one of"),
                       ({"k": 2, "mode": "fly"}, "mode"), ({"k": 2, "radius_m": "inf"}, "radius_m"),
                       ({"k": 2, "colour": "red"}, "colour"), ({"k": 2, "exclude_host_types": ["castle"]},
                                                              "castle"),
                       ({"k": 2, "no_go": {"type": "Point", "coordinates": [116.3, 40.0]}}, "no_go"),
                       ({"sites": [{"geometry": {"type": "Point", "coordinates": [500, 1]}}]}, "sites[0]")]:
        r = api.post("/recommendations", headers=staff, json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert field in r.json()["detail"], (bad, r.json()["detail"])


@pytest.mark.parametrize(("mode", "radius"), [("straight", 600.0), ("network", 800.0)])
def test_reach_in_parts_chooses_the_same_sites(engine, area, settings, db_url, client, mode, radius):
    """The reach found in 1, 2 and 4 parts on Dask (each part its own demand points against the stations and
    candidates within its halo; along the real walk graph too) gives the model one process gives: the same sites,
    gains and covered demand before and after; the parts' files are removed once the run is stored."""
    run_settings = settings.model_copy(update={"database_url": db_url})
    whole = recommend(engine, k=4, mode=mode, radius_m=radius, settings=run_settings)
    assert whole["params"]["measured"] == "points" and len(whole["sites"]) == 4
    for parts in ((1, 2, 4) if mode == "straight" else (3,)):
        got = recommend(engine, k=4, mode=mode, radius_m=radius, settings=run_settings, parts=parts,
                        scheduler=client)
        assert got["params"]["partitions"]["parts"] == parts
        assert [s["id"] for s in got["sites"]] == [s["id"] for s in whole["sites"]]
        assert [s["gain"] for s in got["sites"]] == pytest.approx([s["gain"] for s in whole["sites"]], rel=1e-9)
        for key in ("demand_covered_before", "demand_covered_after", "objective", "bound"):
            assert got[key] == pytest.approx(whole[key], rel=1e-9, abs=1e-9), key
        assert got["covered_share_after"] == pytest.approx(whole["covered_share_after"], abs=1e-12)
        assert got["remaining_gaps"] == whole["remaining_gaps"]
    jobs = run_settings.data_dir / "partitioned"
    assert not jobs.exists() or not any(jobs.iterdir())
    with pytest.raises(InvalidInput, match="分区数 parts 0"):
        recommend(engine, k=2, settings=run_settings, parts=0)


def test_reach_in_street_parts_untold(engine, area, settings, db_url, client, extracts):
    """An area whose walk graphs per partition were built and whose whole graph is not there: a recommendation
    along the streets that does not say how many parts (as the console's) finds the reach in the tiles' parts and
    chooses the sites one process chose."""
    from yizhan.coverage.streets import build_street_parts, graph_file

    run_settings = settings.model_copy(update={"database_url": db_url})
    whole = recommend(engine, k=3, mode="network", radius_m=800, settings=run_settings)
    build_street_parts(area, extracts[1], profile="walk", tiles=(2, 2), halo_m=3000, settings=run_settings)
    graph_file(area, "walk", run_settings).unlink()
    on = run_settings.model_copy(update={"dask_scheduler": client.scheduler.address})
    got = recommend(engine, k=3, mode="network", radius_m=800, settings=on)
    assert got["params"]["partitions"]["parts"] == 4
    assert [s["id"] for s in got["sites"]] == [s["id"] for s in whole["sites"]]
    assert got["covered_share_after"] == pytest.approx(whole["covered_share_after"], abs=1e-12)
