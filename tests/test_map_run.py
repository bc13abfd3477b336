"""Planner map additions: the GCJ-02 (Amap) basemap with shifted overlays, nearest-station distances in popups,
the township choropleth, the station search box, the compact national-scale station layer, and the map of a
stored run with its townships."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from api_data import STAFF
from browser import dump_dom, needs_chromium, screenshot
from pyproj import Geod
from shapely.geometry import Point, box
from test_map import LAT0, LON0, _layers, _lonlat, _shown, _stations

from yizhan.geo.coords import from_wgs84
from yizhan.maps.assets import asset_urls, external_urls
from yizhan.maps.basemaps import AMAP_TILES, BASE_AMAP, BASE_OSM
from yizhan.maps.folium_map import map_from_layers, write_map
from yizhan.maps.formatting import distance_text
from yizhan.maps.layers import COMPACT_THRESHOLD, LAYER_UNITS
from yizhan.maps.popup import nearest_station_m

GEOD = Geod(ellps="WGS84")
SCREENSHOTS = Path("/tmp")


def _units() -> gpd.GeoDataFrame:
    """Two townships: west half mostly uncovered, east half well covered."""
    return gpd.GeoDataFrame(
        {"name": ["清华园街道", "学院路街道<i>"], "covered_share": [0.12, 0.93], "demand": [1500.0, 820.5],
         "stations": [1, 4]},
        geometry=[box(*_lonlat(-3500, -3500), *_lonlat(0, 3500)), box(*_lonlat(0, -3500), *_lonlat(3500, 3500))],
        crs=4326)


@pytest.fixture(scope="module")
def layers() -> dict:
    return dict(_layers(), units=_units())


@pytest.fixture(scope="module")
def written(layers: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_map(map_from_layers(**layers), tmp_path_factory.mktemp("gcj") / "map.html")


@pytest.fixture(scope="module")
def page(written: Path) -> str:
    return written.read_text(encoding="utf-8")


def _marker_coords(page: str) -> list[tuple[float, float]]:
    """(lat, lon) of every folium L.circleMarker in page order."""
    return [(float(a), float(b)) for a, b in
            re.findall(r"L\.circleMarker\(\s*\[(-?[\d.]+),\s*(-?[\d.]+)\]", page)]


# --- GCJ-02 ---------------------------------------------------------------------------------------------------------


def test_both_basemaps_and_two_overlay_sets(page: str, layers: dict, written: Path) -> None:
    assert "webrd0{s}.is.autonavi.com/appmaptile" in page and "tile.openstreetmap.org" in page
    assert AMAP_TILES.replace("&", "\\u0026") in page or AMAP_TILES in page
    for name in (BASE_OSM, BASE_AMAP):
        assert name in page or json.dumps(name)[1:-1] in page
    coords = _marker_coords(page)
    n = len(layers["stations"])
    assert len(coords) == 2 * n
    wgs, gcj = np.array(coords[:n]), np.array(coords[n:])
    st = layers["stations"]
    np.testing.assert_allclose(wgs, np.column_stack([st.geometry.y, st.geometry.x]), atol=1e-12)
    glon, glat = from_wgs84(st.geometry.x, st.geometry.y, "gcj02")
    np.testing.assert_allclose(gcj, np.column_stack([glat, glon]), atol=1e-12)
    # the shift is the GCJ-02 one: a few hundred metres around Beijing
    _, _, d = GEOD.inv(wgs[:, 1], wgs[:, 0], gcj[:, 1], gcj[:, 0])
    assert ((d > 100) & (d < 1000)).all()
    # rings, gaps, area, units and heat exist in both systems too
    rings = re.findall(r"L\.circle\(\s*\[(-?[\d.]+),\s*(-?[\d.]+)\]", page)
    assert len(rings) == 2 * int((st["status"] == "active").sum())
    assert page.count('"className": "yz-unit"') == 2 * 2  # two townships in two systems
    assert page.count("L.heatLayer(") == 2
    # the switch: the GCJ child groups are created but not added; the linked page script swaps them on
    # baselayerchange
    glue = [u for u in asset_urls(page) if u.endswith("/map.js")]
    assert len(glue) == 1 and "yizhanGlue({" in page
    assert 'map.on("baselayerchange"' in (written.parent / glue[0]).read_text(encoding="utf-8")
    assert "坐标系" in page and "WGS 84" in page


def test_gcj_geojson_is_shifted_copy(page: str, layers: dict) -> None:
    boundary = layers["boundary"]
    ring = np.array(boundary.exterior.coords)
    glon, glat = from_wgs84(ring[:, 0], ring[:, 1], "gcj02")
    # folium embeds GeoJSON data; both the WGS and the shifted corner appear
    assert f"{ring[0, 0]}" in page.replace(" ", "")
    assert f"{float(glon[0])!r}" in page and f"{float(glat[0])!r}" in page


@needs_chromium
def test_browser_switches_overlays_with_basemap(written: Path, layers: dict) -> None:
    n = len(layers["stations"])
    wgs_dom = dump_dom(written)
    gcj_dom = dump_dom(written.as_uri() + "#gcj02")
    assert 'data-yz-crs="wgs84"' in wgs_dom and 'data-yz-crs="gcj02"' in gcj_dom
    assert "GCJ-02 火星坐标" in gcj_dom and "GCJ-02 火星坐标" not in wgs_dom.split('id="yz-crs"')[1][:80]
    amap_tile = r'<img[^>]*src="https://webrd0\d\.is\.autonavi\.com/'
    osm_tile = r'<img[^>]*src="https://tile\.openstreetmap\.org/'
    assert re.search(amap_tile, gcj_dom) and not re.search(osm_tile, gcj_dom)
    assert re.search(osm_tile, wgs_dom) and not re.search(amap_tile, wgs_dom)
    for dom in (wgs_dom, gcj_dom):  # one set at a time
        assert len(re.findall(r'class="[^"]*\byz-station\b', dom)) == n
        assert len(re.findall(r'class="[^"]*\byz-unit\b', dom)) == 2
        assert len(re.findall(r'class="[^"]*\bleaflet-heatmap-layer\b', dom)) == 1

    def paths(dom: str) -> list[tuple[float, float]]:
        tags = re.findall(r"<path[^>]*\byz-station\b[^>]*>", dom)
        return [tuple(map(float, re.search(r'd="M(-?[\d.]+),(-?[\d.]+)', t).groups())) for t in tags]

    a, b = np.array(paths(wgs_dom)), np.array(paths(gcj_dom))
    assert a.shape == b.shape == (n, 2)
    shift = b - a  # pixels; GCJ-02 moves points east (+x) and north (−y) around Beijing, all by about the same
    assert (shift[:, 0] > 2).all() and (shift[:, 1] < -2).all()
    assert np.ptp(shift, axis=0).max() < 2


# --- popups ---------------------------------------------------------------------------------------------------------


def test_nearest_station_distance() -> None:
    st = _stations()
    d = nearest_station_m(st)
    lon, lat = st.geometry.x.to_numpy(), st.geometry.y.to_numpy()
    active = (st["status"] == "active").to_numpy()
    for i in range(len(st)):
        others = [j for j in range(len(st)) if j != i and active[j]]
        _, _, geod = GEOD.inv(np.full(len(others), lon[i]), np.full(len(others), lat[i]), lon[others], lat[others])
        assert d[i] == pytest.approx(geod.min(), rel=2e-3)
    only = st.iloc[[0]]
    assert np.isnan(nearest_station_m(only)).all()


def test_popups_show_nearest_distance(page: str, layers: dict) -> None:
    d = nearest_station_m(layers["stations"])
    assert "距最近驿站" in page
    for v in d:
        assert _shown(distance_text(v) + "（直线 straight）", page)
    for text in ("名称", "类型", "承办单位", "地址", "开放时间", "设施", "座位", "星级"):
        assert text in page


# --- units ----------------------------------------------------------------------------------------------------------


def test_units_choropleth(page: str) -> None:
    assert LAYER_UNITS in page or json.dumps(LAYER_UNITS)[1:-1] in page
    assert "12.0%" in page and "93.0%" in page and _shown("学院路街道&lt;i&gt;", page)
    assert "街道覆盖率" in page and "#d7191c" in page


def test_units_are_checked(layers: dict) -> None:
    with pytest.raises(ValueError, match="covered_share"):
        map_from_layers(**dict(layers, units=_units().drop(columns="covered_share")))
    with pytest.raises(ValueError, match="EPSG:4326"):
        map_from_layers(**dict(layers, units=_units().to_crs(32650)))


# --- search ---------------------------------------------------------------------------------------------------------


@needs_chromium
def test_browser_search_opens_station_popup(written: Path) -> None:
    dom = dump_dom(written.as_uri() + "#search=" + "成府路")
    assert 'data-yz-found="1"' in dom
    popup = dom.split("leaflet-popup-content", 1)[1][:3000]
    assert "成府路加油站驿站" in popup and "距最近驿站" in popup
    assert re.search(r'<input[^>]*placeholder="搜索驿站', dom)
    gcj = dump_dom(written.as_uri() + "#gcj02&search=" + "工会")
    assert 'data-yz-found="4"' in gcj and 'data-yz-crs="gcj02"' in gcj
    popup = gcj.split("leaflet-popup-content", 1)[1][:3000]
    assert "学院路工会驿站&lt;b&gt;" in popup and "<b>" not in popup  # the name stays text, not markup


@needs_chromium
def test_screenshots(written: Path) -> None:
    for suffix, url in (("osm", written.as_uri()), ("gcj", written.as_uri() + "#gcj02&search=五道口")):
        png = screenshot(url, SCREENSHOTS / f"yizhan_map_{suffix}.png")
        assert png.stat().st_size > 20_000


# --- national scale -------------------------------------------------------------------------------------------------


def national_stations(n: int, seed: int = 1) -> gpd.GeoDataFrame:
    """``n`` synthetic stations spread over eastern China (national registry scale)."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(100.0, 122.0, n)
    lat = rng.uniform(22.0, 41.0, n)
    kinds = np.array(["large", "small", "mobile"])[rng.integers(0, 3, n)]
    status = np.where(rng.random(n) < 0.05, "closed", "active")
    return gpd.GeoDataFrame({
        "external_id": [f"N-{i:06d}" for i in range(n)], "name": [f"全国驿站{i}号" for i in range(n)],
        "kind": kinds, "host": "shop", "address": [f"测试路{i % 999}号" for i in range(n)], "township": "某街道",
        "amenities": [["drinking_water", "charging"]] * n, "opening_hours": "Mo-Su 08:00-20:00",
        "seats": rng.integers(1, 30, n), "stars": rng.integers(1, 6, n), "status": status,
    }, geometry=gpd.points_from_xy(lon, lat), crs=4326)


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, gpd.GeoDataFrame]:
    base = _layers()
    st = national_stations(COMPACT_THRESHOLD + 1000)
    st.loc[0, "name"] = "五道口全国测试驿站"
    st.loc[0, "geometry"] = Point(LON0, LAT0)
    path = write_map(map_from_layers(**dict(base, stations=st, summary=dict(base["summary"], stations=len(st)))),
                     tmp_path_factory.mktemp("national") / "national.html")
    return path, st


def test_compact_page(national: tuple[Path, gpd.GeoDataFrame]) -> None:
    path, st = national
    page = path.read_text(encoding="utf-8")
    assert external_urls(page) == []
    assert not re.search(r"L\.circleMarker\(\s*\[-?\d", page)  # no per-station folium markers
    assert not re.search(r"L\.circle\(\s*\[-?\d", page)  # no rings at this scale
    assert "未绘制服务半径" in page
    data = json.loads(re.search(r"var data = (\{.*?\});\n", page).group(1))
    lat, lon = np.array(data["wgs84"][0::2]), np.array(data["wgs84"][1::2])
    np.testing.assert_allclose(lon, st.geometry.x, atol=1e-6)
    np.testing.assert_allclose(lat, st.geometry.y, atol=1e-6)
    glon, glat = from_wgs84(st.geometry.x, st.geometry.y, "gcj02")
    np.testing.assert_allclose(np.array(data["gcj02"][1::2]), glon, atol=1e-6)
    np.testing.assert_allclose(np.array(data["gcj02"][0::2]), glat, atol=1e-6)
    assert len(data["nearest"]) == len(st)


@needs_chromium
def test_browser_compact_clusters_and_search(national: tuple[Path, gpd.GeoDataFrame]) -> None:
    path, st = national
    dom = dump_dom(path)
    counts = [int(n) for n in re.findall(r'class="[^"]*\bmarker-cluster\b[^"]*"[^>]*><div><span>(\d+)</span>', dom)]
    shown = len(re.findall(r'class="[^"]*\byz-station\b', dom))
    assert counts and sum(counts) + shown <= len(st) and sum(counts) > 0
    found = dump_dom(path.as_uri() + "#gcj02&search=五道口全国")
    assert 'data-yz-found="0"' in found
    popup = found.split("leaflet-popup-content", 1)[1][:3000]
    assert "五道口全国测试驿站" in popup and "距最近驿站" in popup and "N-000000" in popup
    shutil.copyfile(screenshot(path.as_uri() + "#gcj02", SCREENSHOTS / "yizhan_map_national.png"),
                    SCREENSHOTS / "yizhan_map_national_copy.png")


# --- a stored run -----------------------------------------------------------------------------------------------------


def test_map_of_stored_run_with_townships(engine, osm_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from yizhan.areas import ensure_area, sector_units, units_frame
    from yizhan.coverage.analysis import run_coverage
    from yizhan.coverage.runs import load_run, units_table
    from yizhan.data.demand import import_demand
    from yizhan.data.sample import sample_from_extract
    from yizhan.maps.run_map import map_from_run, units_choropleth
    from yizhan.stations.service import import_stations

    sample = sample_from_extract(osm_path, seed=7)
    files = sample.write(tmp_path / "sample")
    with engine.begin() as conn:
        ensure_area(conn, sample.name, boundary=sample.boundary, crs_epsg=sample.crs_epsg)
    import_stations(engine, files["stations"])
    import_demand(engine, files["demand"])
    summary = run_coverage(engine, radius_m=1000)
    run = load_run(engine, summary["run_id"])
    with engine.connect() as conn:
        polys = units_frame(conn, run.area.id)
        table = units_table(conn, summary["run_id"])
    if not len(polys):  # the run used the four sectors
        polys = sector_units(run.area.boundary)
    units = units_choropleth(polys, table)
    assert set(units["name"]) <= set(table["name"]) and len(units) == len(polys)
    page = write_map(map_from_run(run, units=units), tmp_path / "run.html").read_text(encoding="utf-8")
    assert external_urls(page) == []
    for share in units["covered_share"]:
        assert f"{share * 100:.1f}%" in page
    assert _shown(LAYER_UNITS, page)


# --- stations without the optional seats and stars ------------------------------------------------------------------


def test_map_of_stations_without_seats_or_stars(cli_env, api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Seats and stars are optional: stations without them (read as pandas NA) are mapped with "—" in their
    popups, by ``yizhan map`` and by ``GET /map``, and exported and reported like the others."""
    from cli_runner import run_cli

    stations = tmp_path / "stations.csv"
    stations.write_text("id,name,kind,lon,lat,seats,stars\n"
                        "NA-1,无座位驿站,small,116.3200,40.0000,,\n"
                        "NA-2,无星级驿站,large,116.3150,39.9950,12,\n"
                        "NA-3,齐全驿站,small,116.3250,40.0050,6,4\n", encoding="utf-8")
    demand = tmp_path / "demand.csv"
    demand.write_text("lon,lat,weight\n116.31,39.995,3\n116.33,40.01,2\n", encoding="utf-8")
    run_cli("area", "create", "wudaokou", "--bbox", "116.3084,39.9905,116.3320,40.0123", "--display-name",
            "海淀区五道口街道", env=cli_env)
    run_cli("stations", "import", str(stations), env=cli_env)
    run_cli("demand", "import", str(demand), env=cli_env)
    run_id = json.loads(run_cli("coverage", "--radius", "1000", "--json", env=cli_env).stdout)["run_id"]
    html = tmp_path / "map.html"
    proc = run_cli("map", "--out", str(html), env=cli_env, check=False)
    assert proc.returncode == 0, proc.stderr
    page = html.read_text(encoding="utf-8")
    assert "无座位驿站" in page and "12 个" in page and "★★★★ (4)" in page
    assert "海淀区五道口街道 (wudaokou)" in page  # the area by the name people use
    answer = api.get("/map", params={"run": run_id}, headers=STAFF)  # a script's staff key (or a session)
    assert answer.status_code == 200 and "无座位驿站" in answer.text
    for fmt in ("csv", "xlsx", "geojson", "gpkg", "html", "pdf"):
        proc = run_cli("report", "--format", fmt, "--out", str(tmp_path / "rep"), env=cli_env, check=False)
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("stations", "export", str(tmp_path / "export.xlsx"), env=cli_env, check=False)
    assert proc.returncode == 0, proc.stderr
