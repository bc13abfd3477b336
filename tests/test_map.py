"""Planner map: offline assets, layers and popups in the HTML, and the page as a real (headless, offline) browser
renders it."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from browser import chromium, dump_dom, needs_chromium, read_png, screenshot
from folium.plugins import HeatMap
from shapely.geometry import Point, box

from yizhan.maps.assets import ASSET_DIR_NAME, GLUE_DIR, STATIC_DIR, asset_urls, external_urls
from yizhan.maps.folium_map import MapInputError, map_from_layers, write_map
from yizhan.maps.formatting import is_missing, optional_int
from yizhan.maps.layers import LAYER_AREA, LAYER_GAPS, LAYER_HEAT, LAYER_STATIONS
from yizhan.maps.style import KIND_COLOURS

LON0, LAT0 = 116.32, 40.00
M_PER_DEG_LAT = 111_320.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT0))
RADIUS_M = 1000.0
RING_LAYER = "1 公里 服务半径（直线 straight）Rings"
CDN_MARKERS = ("https://cdn", "jsdelivr", "unpkg", "cdnjs", "code.jquery", "netdna", "bootstrapcdn")
SCREENSHOT_COPY = Path("/tmp/yizhan_map.png")

# (external_id, name, kind, host, amenities, opening_hours, seats, stars, status, east_m, north_m)
_STATIONS = [
    ("HD-001", "五道口党群服务中心驿站", "large", "party_service_centre", ["drinking_water", "charging", "toilet"],
     "Mo-Su 08:00-20:00", 20, 5, "active", 0, 0),
    ("HD-002", "成府路加油站驿站", "small", "petrol_station", ["drinking_water", "microwave"], None, 6, 3, "active",
     1800, 600),
    ("HD-003", "清华东路流动驿站", "mobile", "other", ["drinking_water"], "Mo-Fr 10:00-16:00", None, None, "active",
     -1500, 1300),
    ("HD-004", "双清路银行驿站", "small", "bank", ["wifi", "air_conditioning"], None, 4, 2, "closed", -900, -1600),
    ("HD-005", "学院路工会驿站<b>", "large", "union_office", [], "24/7", 12, 4, "active", 2600, -1900),
]


def _lonlat(east_m: float, north_m: float) -> tuple[float, float]:
    """(lon, lat) in degrees of a point ``east_m``/``north_m`` metres from the test centre (equirectangular)."""
    return LON0 + east_m / M_PER_DEG_LON, LAT0 + north_m / M_PER_DEG_LAT


def _stations(n_extra: int = 0) -> gpd.GeoDataFrame:
    rows = [
        {"external_id": s[0], "name": s[1], "kind": s[2], "host": s[3], "address": f"海淀区测试路{i + 1}号",
         "township": "学院路街道", "amenities": s[4], "opening_hours": s[5], "seats": s[6], "stars": s[7],
         "status": s[8], "geometry": Point(_lonlat(s[9], s[10]))}
        for i, s in enumerate(_STATIONS)
    ]
    rng = np.random.default_rng(7)
    for i in range(n_extra):
        rows.append({"external_id": f"X-{i}", "name": f"驿站{i}", "kind": "small", "host": "shop", "address": "",
                     "township": "", "amenities": [], "opening_hours": None, "seats": None, "stars": None,
                     "status": "active", "geometry": Point(_lonlat(*rng.uniform(-4000, 4000, 2)))})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def _cells(stations: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """250 m demand cells over ±3.5 km, demand peaking at two hot spots (one of them uncovered)."""
    active = [(g.x, g.y) for g, s in zip(stations.geometry, stations.status, strict=True) if s == "active"]
    size = 250.0
    rows = []
    for east in np.arange(-3500, 3500, size):
        for north in np.arange(-3500, 3500, size):
            cx, cy = east + size / 2, north + size / 2
            weight = 40 * math.exp(-((cx - 300) ** 2 + (cy - 200) ** 2) / 1.5e6) + 60 * math.exp(
                -((cx + 2400) ** 2 + (cy + 2600) ** 2) / 6e5) + 0.5
            lon, lat = _lonlat(cx, cy)
            dist = min(math.hypot((lon - x) * M_PER_DEG_LON, (lat - y) * M_PER_DEG_LAT) for x, y in active)
            (w, s), (e, n) = _lonlat(east, north), _lonlat(east + size, north + size)
            rows.append({"weight": weight, "covered": dist <= RADIUS_M, "distance_m": dist,
                         "geometry": box(w, s, e, n)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def _gaps() -> gpd.GeoDataFrame:
    rows = [
        {"rank": 1, "demand": 812.5, "area_m2": 1_750_000.0, "cells": 28, "nearest_station": "双清路银行驿站",
         "nearest_distance_m": 1420.0, "geometry": box(*_lonlat(-3250, -3500), *_lonlat(-1500, -1750))},
        {"rank": 2, "demand": 96.0, "area_m2": 500_000.0, "cells": 8, "nearest_station": "学院路工会驿站<b>",
         "nearest_distance_m": 1180.0, "geometry": box(*_lonlat(2250, 1750), *_lonlat(3250, 2250))},
    ]
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def _summary(stations: gpd.GeoDataFrame, cells: gpd.GeoDataFrame, gaps: gpd.GeoDataFrame) -> dict:
    total = float(cells["weight"].sum())
    covered = float(cells.loc[cells["covered"], "weight"].sum())
    return {"run_id": "run-20250101-test", "area": "wudaokou", "mode": "straight", "radius_m": RADIUS_M,
            "stations": len(stations), "demand_total": total, "demand_covered": covered,
            "covered_share": covered / total, "gaps": len(gaps), "created_at": "2025-01-01T08:00:00+08:00"}


def _layers(n_extra: int = 0) -> dict:
    stations = _stations(n_extra)
    cells = _cells(stations)
    gaps = _gaps()
    return {"stations": stations, "cells": cells, "gaps": gaps, "summary": _summary(stations, cells, gaps),
            "radius_m": RADIUS_M, "boundary": box(*_lonlat(-3500, -3500), *_lonlat(3500, 3500))}


def _shown(text: str, page: str) -> bool:
    """Whether ``text`` appears in a page, verbatim or inside a JSON string (``\\uXXXX``/``\\"`` escapes undone)."""
    plain = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    return text in plain or json.dumps(text, ensure_ascii=False)[1:-1] in plain


@pytest.fixture(scope="module")
def layers() -> dict:
    return _layers()


@pytest.fixture(scope="module")
def written(layers: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_map(map_from_layers(**layers), tmp_path_factory.mktemp("map") / "out" / "map.html")


@pytest.fixture(scope="module")
def page(written: Path) -> str:
    return written.read_text(encoding="utf-8")


# --- inputs ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["stations", "cells", "gaps"])
def test_rejects_projected_layers(layers: dict, which: str) -> None:
    bad = dict(layers, **{which: layers[which].to_crs(32650)})
    with pytest.raises(ValueError, match=r"EPSG:4326.*to_crs"):
        map_from_layers(**bad)


def test_rejects_missing_columns_and_inconsistent_summary(layers: dict) -> None:
    with pytest.raises(MapInputError, match="amenities"):
        map_from_layers(**dict(layers, stations=layers["stations"].drop(columns="amenities")))
    with pytest.raises(ValueError, match="radius_m"):
        map_from_layers(**dict(layers, radius_m=500.0))
    with pytest.raises(ValueError, match="lon/lat"):
        map_from_layers(**dict(layers, boundary=box(440_000, 4_420_000, 450_000, 4_430_000)))


# --- HTML -----------------------------------------------------------------------------------------------------------


def test_external_urls_finds_script_and_link_urls() -> None:
    page = ('<link rel="stylesheet" href="https://cdn.example/a.css"/><script src="//unpkg.com/x.js"></script>'
            '<script src="yizhan-assets/l.js"></script><script>var t = "https://tile.openstreetmap.org/{z}";</script>')
    assert external_urls(page) == ["https://cdn.example/a.css", "//unpkg.com/x.js"]
    assert asset_urls(page)[-1] == "yizhan-assets/l.js"


def test_page_uses_only_local_assets(written: Path, page: str) -> None:
    assert external_urls(page) == []
    for marker in CDN_MARKERS:
        assert marker not in page, marker
    urls = asset_urls(page)
    assert {u.rsplit("/", 1)[-1] for u in urls} >= {
        "leaflet.js", "leaflet.css", "jquery.min.js", "bootstrap.bundle.min.js", "bootstrap.min.css",
        "leaflet.awesome-markers.js", "leaflet.awesome-markers.css", "all.min.css",
        "leaflet.awesome.rotate.min.css", "leaflet-heat.js",
    }
    for url in urls:
        assert url.startswith(f"{ASSET_DIR_NAME}/"), url
        assert (written.parent / url).is_file(), url
    for font in ("fa-solid-900.woff2", "fa-regular-400.woff2", "fa-brands-400.woff2"):
        assert (written.parent / ASSET_DIR_NAME / "fontawesome-free-6.2.0" / "webfonts" / font).is_file()
    assert "tile.openstreetmap.org/{z}/{x}/{y}.png" in page
    assert _shown("© <a href=\"https://www.openstreetmap.org/copyright\">OpenStreetMap</a> contributors", page)


def test_every_vendored_file_has_its_licence_and_readme_entry() -> None:
    readme = (STATIC_DIR / "README.md").read_text(encoding="utf-8")
    for package in (p for p in STATIC_DIR.iterdir() if p.is_dir()):
        assert package.name in readme, package.name
        if package.name == GLUE_DIR:  # the project's own page script and stylesheet, not vendored
            continue
        licences = [f for f in package.iterdir() if re.match(r"(MIT-)?LICEN[CS]E", f.name)]
        assert licences, f"no licence file in {package.name}"


def test_page_has_layers_popups_legend_and_summary(page: str, layers: dict) -> None:
    for name in (LAYER_STATIONS, RING_LAYER, LAYER_HEAT, LAYER_GAPS, LAYER_AREA):
        assert _shown(name, page), name
    for text in ("名称", "类型", "大型驿站", "承办单位", "党群服务中心", "地址", "开放时间", "Mo-Su 08:00-20:00",
                 "设施", "饮水、充电、卫生间", "座位", "20 个", "星级", "★★★★★", "状态", "运营", "关闭", "未填报"):
        assert text in page, text
    assert "学院路工会驿站&lt;b&gt;" in page and "学院路工会驿站<b>" not in page  # names are escaped
    # every overlay is built twice: WGS 84 (OSM basemap) and GCJ-02 (Amap basemap)
    assert len(re.findall(r"L\.circleMarker\(\s*\[-?\d", page)) == 2 * len(layers["stations"])
    assert len(re.findall(r"L\.circle\(\s*\[-?\d", page)) == 2 * int((layers["stations"]["status"] == "active").sum())
    assert "L.heatLayer(" in page and "markerClusterGroup" not in page
    covered = layers["summary"]["covered_share"] * 100
    for text in ("图例 Legend", "覆盖率 Covered", f"{covered:.1f}%", "run-20250101-test", "1 公里（直线 straight）",
                 "未覆盖订单"):
        assert text in page, text


@pytest.fixture(scope="module")
def many_written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A map of 605 stations (more than CLUSTER_THRESHOLD)."""
    return write_map(map_from_layers(**_layers(n_extra=600)), tmp_path_factory.mktemp("many") / "many.html")


def test_many_stations_are_clustered_with_local_assets(many_written: Path) -> None:
    out = many_written
    page = out.read_text(encoding="utf-8")
    assert "markerClusterGroup" in page
    assert external_urls(page) == []
    names = {u.rsplit("/", 1)[-1] for u in asset_urls(page)}
    assert {"leaflet.markercluster.js", "MarkerCluster.css", "MarkerCluster.Default.css"} <= names
    assert all((out.parent / u).is_file() for u in asset_urls(page))


def test_write_map_refuses_cdn_pages(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="external"):
        write_map(folium.Map(location=(LAT0, LON0)), tmp_path / "cdn.html")
    assert not (tmp_path / "cdn.html").exists()


def test_class_level_folium_defaults_untouched(page: str) -> None:
    """The local links are set per instance; folium's own class defaults still point at its CDNs."""
    assert folium.Map.default_js[0][1].startswith("https://")
    assert HeatMap.default_js[0][1].startswith("https://")


# --- browser --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dom(written: Path) -> str:
    if chromium() is None:
        pytest.skip("chromium is not installed")
    return dump_dom(written)


def _elements_with_class(dom: str, cls: str) -> list[str]:
    """Opening tags in a serialised DOM whose class list contains ``cls``."""
    pattern = re.compile(rf'\bclass="(?:[^"]*\s)?{re.escape(cls)}(?:\s[^"]*)?"')
    return [tag for tag in re.findall(r"<[a-z]+\b[^>]*>", dom) if pattern.search(tag)]


@needs_chromium
def test_browser_renders_all_layers(dom: str, layers: dict) -> None:
    stations = layers["stations"]
    assert _elements_with_class(dom, "leaflet-container"), "no Leaflet map container"
    markers = _elements_with_class(dom, "yz-station")
    assert len(markers) == len(stations)
    assert all("leaflet-interactive" in m for m in markers)
    assert len(_elements_with_class(dom, "yz-station-closed")) == int((stations["status"] == "closed").sum())
    rings = _elements_with_class(dom, "yz-ring")
    assert len(rings) == int((stations["status"] == "active").sum())
    assert not any("leaflet-interactive" in r for r in rings)
    assert len(_elements_with_class(dom, "yz-gap")) == len(layers["gaps"])
    assert len(_elements_with_class(dom, "yz-gap-rank")) == len(layers["gaps"])
    assert len(_elements_with_class(dom, "yz-area")) == 1
    heat = _elements_with_class(dom, "leaflet-heatmap-layer")
    assert len(heat) == 1 and re.search(r'width="[1-9]\d*"', heat[0])
    assert _elements_with_class(dom, "leaflet-tile"), "tile layer was not created"
    for name in (LAYER_STATIONS, RING_LAYER, LAYER_HEAT, LAYER_GAPS, LAYER_AREA):
        assert re.search(rf"<span>\s*{re.escape(name)}\s*</span>", dom), f"layer control lacks {name}"
    covered = layers["summary"]["covered_share"] * 100
    for text in ("图例 Legend", "大型驿站", "服务半径", "未覆盖订单", "覆盖率 Covered", f"{covered:.1f}%",
                 "run-20250101-test", "OpenStreetMap</a> contributors"):
        assert text in dom, text


@needs_chromium
def test_browser_click_opens_station_popup(written: Path, tmp_path: Path) -> None:
    """Clicking a station marker opens the popup the page script binds to it; the name stays text, not markup."""
    click = '<script>addEventListener("load", function () { yizhanMap.markers.wgs84[4].fire("click"); });</script>'
    page = tmp_path / "click.html"
    page.write_text(written.read_text(encoding="utf-8").replace("</body>", click + "</body>"), encoding="utf-8")
    shutil.copytree(written.parent / ASSET_DIR_NAME, tmp_path / ASSET_DIR_NAME)
    popup = dump_dom(page).split("leaflet-popup-content", 1)[1][:3000]
    assert "学院路工会驿站&lt;b&gt;" in popup and "<b>" not in popup
    for text in ("大型驿站", "工会", "24/7", "12 个", "★★★★ (4)", "运营", "（直线 straight）", "HD-005"):
        assert text in popup, text


@needs_chromium
def test_browser_screenshot_shows_the_map(written: Path, tmp_path: Path) -> None:
    png = screenshot(written, tmp_path / "map.png", window_size=(1280, 900))
    assert png.stat().st_size > 20_000
    image = read_png(png)
    assert image.shape[:2] == (900, 1280)
    rgb = image[..., :3].reshape(-1, 3)
    colours = np.unique(rgb[:: 7], axis=0)
    assert len(colours) > 200, "screenshot is (nearly) one flat colour"
    for kind, hex_colour in KIND_COLOURS.items():  # station markers are drawn fully opaque in their kind colour
        target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)
        assert (rgb == target).all(axis=1).sum() >= 20, f"no {kind} marker pixels"
    SCREENSHOT_COPY.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, SCREENSHOT_COPY)


@needs_chromium
def test_browser_clusters_many_stations(many_written: Path) -> None:
    dom = dump_dom(many_written)
    clusters = _elements_with_class(dom, "marker-cluster")
    assert clusters, "markercluster drew no clusters"
    shown = len(_elements_with_class(dom, "yz-station"))
    counts = [int(n) for n in re.findall(r'class="[^"]*\bmarker-cluster\b[^"]*"[^>]*><div><span>(\d+)</span>', dom)]
    assert shown + sum(counts) == 605


def test_missing_values_of_every_kind() -> None:
    for missing in (None, float("nan"), np.nan, pd.NA, pd.NaT, np.float64("nan")):
        assert is_missing(missing) and optional_int(missing) is None
    for present in (0, 3, np.int64(4), 2.0, "", "x", [1], np.array([1, 2])):
        assert not is_missing(present)
    assert [optional_int(v) for v in pd.array([3, None], dtype="Int64")] == [3, None]


def test_distances_are_written_in_chinese_units_and_say_how_they_were_measured() -> None:
    from yizhan.maps.formatting import distance_text, measured_distance_text

    cases = {0.4: "0 米", 849.6: "850 米", 999.4: "999 米", 999.6: "1 公里", 1001.16: "1 公里", 1249.0: "1.2 公里",
             1250.0: "1.2 公里", 1500.0: "1.5 公里", 12_345.0: "12.3 公里", 1_234_567.0: "1,234.6 公里"}
    for metres, expected in cases.items():
        assert distance_text(metres) == expected, metres
    assert distance_text(math.nan) == distance_text(math.inf) == "—"
    assert measured_distance_text(850, along_streets=True) == "850 米（沿街道 along the streets）"
    assert measured_distance_text(1200, along_streets=False) == "1.2 公里（直线 straight）"
    assert measured_distance_text(math.nan, along_streets=True) == "—"


def test_times_are_local_to_the_minute_with_their_offset() -> None:
    from datetime import UTC, datetime

    from yizhan.maps.formatting import local_time_text

    assert local_time_text("2026-12-02T03:57:02.989603+00:00", "Asia/Shanghai") == "2026-12-02 11:57（UTC+8）"
    assert local_time_text("2026-12-31T20:30:00+00:00", "Asia/Shanghai") == "2027-01-01 04:30（UTC+8）"
    assert local_time_text(datetime(2026, 6, 1, 0, 0, tzinfo=UTC), "Asia/Kolkata") == \
        "2026-06-01 05:30（UTC+5:30）"
    assert local_time_text("2026-12-02T03:57:02", "Asia/Shanghai") == "2026-12-02 11:57（UTC+8）"  # naive: UTC
    assert local_time_text("not a time", "Asia/Shanghai") == "not a time"


def test_gap_classes_are_fixed_and_start_at_the_minimum() -> None:
    from yizhan.maps.style import GAP_SCALE, gap_class, gap_classes, gap_colour

    assert [gap_class(d) for d in (5.0, 49.9, 50.0, 199.9, 203.0, 499.0, 500.0, 999.0, 1000.0, 2313.5)] == \
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert gap_colour(203.0) == GAP_SCALE[2] and gap_colour(2313.5) == GAP_SCALE[4]  # not stretched per run
    assert gap_classes(5.0) == [(5.0, 50.0, GAP_SCALE[0]), (50.0, 200.0, GAP_SCALE[1]), (200.0, 500.0, GAP_SCALE[2]),
                                (500.0, 1000.0, GAP_SCALE[3]), (1000.0, math.inf, GAP_SCALE[4])]
    assert gap_classes(300.0)[0] == (300.0, 500.0, GAP_SCALE[2]) and len(gap_classes(300.0)) == 3


def test_gaps_below_the_minimum_are_left_out_and_counted(layers: dict) -> None:
    small = [{"rank": 3 + i, "demand": demand, "area_m2": 40_000.0, "cells": 1, "nearest_station": "",
              "nearest_distance_m": 1300.0, "geometry": box(*_lonlat(400 * i, 3000), *_lonlat(400 * i + 200, 3200))}
             for i, demand in enumerate((1.5, 2.0))]  # single cells of 1.5 and 2 orders
    gaps = pd.concat([layers["gaps"], gpd.GeoDataFrame(small, crs=4326)], ignore_index=True)
    page = map_from_layers(**dict(layers, gaps=gaps), min_gap_demand=5.0).get_root().render()
    assert page.count('"id": "gap-') == 2 * 2  # the two big gaps, in both coordinate systems
    assert "另有 2 处缺口未满 5 单，未绘出（共 3.5 单）" in page and "<th>缺口 Gaps</th><td>2（另 2 处" in page
    everything = map_from_layers(**dict(layers, gaps=gaps), min_gap_demand=0.0).get_root().render()
    assert everything.count('"id": "gap-') == 4 * 2 and "未绘出" not in everything
