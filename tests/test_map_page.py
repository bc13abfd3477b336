"""The planners' map page on real runs of the demo area (its stations, demand, walking network, the sample
townships and the extract's candidate premises): what ``yizhan map`` writes for a run and a recommendation, the
rendered-page cache of ``GET /map``, and the page in a real browser (the system Chromium driven by Playwright,
offline) at 390 x 844 (a phone) and 1366 x 768 (a desktop), with screenshots saved under /tmp.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import httpx
import pytest
from api_data import STAFF
from browser import open_map_file
from cli_runner import run_cli
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo, ensure_area, import_units
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.runs import load_run
from yizhan.maps.folium_map import write_map
from yizhan.maps.layers import LAYER_STREETS, LAYER_UNITS
from yizhan.maps.recommend_map import map_for_recommendation
from yizhan.maps.run_map import map_for_run
from yizhan.maps.style import gap_colour
from yizhan.routes.map_cache import MapCache
from yizhan.settings import Settings
from yizhan.siting.candidates import HOST_TYPES, candidates_from_extract, filter_candidates, store_candidates
from yizhan.siting.recommend import recommend
from yizhan.siting.runs import load_recommendation
from yizhan.stations.service import import_stations

TOWNSHIPS = Path(__file__).resolve().parents[1] / "data" / "samples" / "townships_sample.geojson"
DISPLAY_NAME = "海淀区五道口（示例）"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
SHOTS = Path("/tmp")
ADDRESS = "成府路 1 号（测试地址）"
GAP_FEATURE = r'"id": "gap-\d+", "properties": \{[^{}]*?"colour": "(#[0-9a-f]{6})"[^{}]*?"rank": (\d+)\}'
"""A gap's fill colour and rank in the page's GeoJSON (folium writes the properties with sorted keys)."""


@dataclass
class DemoRuns:
    """A network run and a network recommendation of the demo area, and where their maps were written."""

    area: AreaInfo
    run_id: int
    rec_id: int
    run_html: Path
    rec_html: Path


@pytest.fixture
def demo(engine: Engine, sample_area: AreaInfo, settings: Settings, osm_path: Path, cli_env: dict[str, str],
         tmp_path: Path) -> DemoRuns:
    """The demo area with a display name and the sample townships; a walking-network run and a three-site
    recommendation; their maps written by ``yizhan map`` (the run) and by the map functions (the recommendation)."""
    with engine.begin() as conn:
        area = ensure_area(conn, sample_area.name, display_name=DISPLAY_NAME)
        import_units(conn, area, gpd.read_file(TOWNSHIPS), level="township", source=TOWNSHIPS.name)
        cands, _ = filter_candidates(candidates_from_extract(osm_path), area)
        store_candidates(conn, area, cands, source="extract")
    run = run_coverage(engine, radius_m=1000, mode="network", settings=settings)
    rec = recommend(engine, k=3, mode="network", settings=settings)
    first = rec["sites"][0]["id"]
    with engine.begin() as conn:  # the first site has an address on the candidate list
        conn.execute(text("UPDATE candidate_sites SET address = :a, updated_at = now() WHERE external_id = :e"),
                     {"a": ADDRESS, "e": first})
    run_html = tmp_path / "out" / "map_run.html"
    proc = run_cli("map", "--run", str(run["run_id"]), "--out", str(run_html), env=cli_env, check=False)
    assert proc.returncode == 0, proc.stderr
    rec_html = write_map(map_for_recommendation(load_recommendation(engine, rec["run_id"]), settings=settings),
                         tmp_path / "out" / "map_rec.html")
    return DemoRuns(area, run["run_id"], rec["run_id"], run_html, rec_html)


def _text(page: str) -> str:
    """The page with its JSON ``\\uXXXX`` escapes undone (layer names and tooltips are embedded as JSON)."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)


def _drawer(page: str) -> str:
    """The panels' HTML (the drawer) of a page."""
    return page.split('<div id="yz-drawer"', 1)[1].split('<div class="folium-map"', 1)[0]


# --- the written pages ------------------------------------------------------------------------------------------------


def test_run_map_says_what_a_planner_reads(demo: DemoRuns, engine: Engine, settings: Settings) -> None:
    page = _text(demo.run_html.read_text(encoding="utf-8"))
    panels = _drawer(page)
    run = load_run(engine, demo.run_id)
    # the area by its display name, local time, distances in 米/公里 said as measured, the words of the issue
    assert f'<div class="yz-title">{DISPLAY_NAME}<br>' in panels
    local = datetime.fromisoformat(run.summary["created_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"<th>生成 Created</th><td>{local:%Y-%m-%d %H:%M}（UTC+8）</td>" in panels
    assert run.summary["created_at"] not in panels
    assert "1 公里（沿街道 along the streets）" in panels
    assert not re.search(r"\d km|\d m\b|\d\.\d{3,} ?k?m", page)  # no "1.00116 km", no "850 m"
    assert LAYER_STREETS in page and "道路" in LAYER_STREETS and LAYER_UNITS in page and "乡镇街道" in LAYER_UNITS
    assert "街道线" not in page and '"街道 Township"' not in page
    # gaps: the fixed classes in the legend; gaps below the minimum neither drawn nor counted
    small = run.gaps[run.gaps["demand"] < settings.min_gap_demand]
    big = run.gaps[run.gaps["demand"] >= settings.min_gap_demand]
    assert len(big) >= 1
    drawn = {(int(rank), colour) for colour, rank in re.findall(GAP_FEATURE, page)}  # both coordinate systems
    assert drawn == {(int(r), gap_colour(float(d))) for r, d in zip(big["rank"], big["demand"], strict=True)}
    for lo_hi in ("5–50", "50–200", "200–500", "500–1,000", "≥ 1,000"):
        assert lo_hi in panels, lo_hi
    if len(small):
        assert f"另有 {len(small)} 处缺口未满 5 单" in panels
    else:
        assert "未绘出" not in panels
    assert f"<th>缺口 Gaps</th><td>{len(big)}" in panels
    # the township table: every sample township, lowest covered share first
    table = panels.split('id="yz-townships"', 1)[1]
    names = re.findall(r'<tr><td data-v="([^"]+)">', table)
    assert sorted(names) == sorted(gpd.read_file(TOWNSHIPS)["name"])
    shares = [float(v) for v in re.findall(r'</td><td data-v="(-?[\d.]+)">[\d.]+%', table)]
    assert shares == sorted(shares) and len(shares) == len(names)
    # the scale is metric only; no solver words on a run's map
    assert "control_scale" not in page and "L.control.scale(" not in page  # added by the page script, metric only
    script = (demo.run_html.parent / "yizhan-assets" / "yizhan" / "map.js").read_text(encoding="utf-8")
    assert "L.control.scale({imperial: false, metric: true})" in script
    assert "greedy" not in page and "Gap to bound" not in page


def test_recommendation_map_lists_the_sites_and_folds_the_proof(demo: DemoRuns, engine: Engine) -> None:
    page = _text(demo.rec_html.read_text(encoding="utf-8"))
    panels = _drawer(page)
    rec = load_recommendation(engine, demo.rec_id)
    summary = panels.split('id="yz-summary"', 1)[1].split('id="yz-legend"', 1)[0]
    headline, proof = summary.split('<details class="yz-proof">', 1)
    before, after = rec.summary["covered_share_before"] * 100, rec.summary["covered_share_after"] * 100
    assert f"{before:.1f}% → <b>{after:.1f}%</b>" in headline
    sites = re.findall(r"<li><b>([^<]+)</b><div>地址 Address：([^<]+)</div><div>承办 Host：([^<]+)</div>"
                       r"<div>新增覆盖 Adds <b>\+([\d,.]+)</b> 单 orders，之后覆盖率 share after <b>([\d.]+)%</b>",
                       headline)
    assert len(sites) == len(rec.sites) == 3
    for (name, address, host, gain, share), row in zip(sites, rec.sites.itertuples(), strict=True):
        assert name == row.name and host == HOST_TYPES[row.host_type]
        assert float(gain.replace(",", "")) == pytest.approx(row.gain, abs=0.5 if row.gain >= 100 else 0.05)
        assert float(share) == pytest.approx(row.covered_share_after * 100, abs=0.05)
        assert address == (ADDRESS if row.rank == 1 else "未登记 not recorded")
    # the solver's words only inside the fold
    assert rec.summary["method"] in proof and "与上界差距 Gap to bound" in proof
    assert rec.summary["method"] not in headline and "Gap to bound" not in headline and "上界" not in headline


# --- the cache of GET /map ------------------------------------------------------------------------------------------


def test_cached_map_follows_its_area(demo: DemoRuns, engine: Engine, settings: Settings, tmp_path: Path) -> None:
    """A kept page is served until the area changes in a way the page shows: a station (added, changed), the
    display name, the townships, the candidates and the demand of a recommendation; an import that changes
    nothing keeps it."""
    cache = MapCache()
    renders: list[str] = []

    def run_page() -> str:
        renders.append("run")
        return str(map_for_run(load_run(engine, demo.run_id), settings=settings).get_root().render())

    def rec_page() -> str:
        renders.append("rec")
        return str(map_for_recommendation(load_recommendation(engine, demo.rec_id), settings=settings)
                   .get_root().render())

    def both() -> tuple[bool, bool]:
        return (cache.page(engine, "run", demo.run_id, "/a", run_page)[1],
                cache.page(engine, "recommendation", demo.rec_id, "/a", rec_page)[1])

    assert both() == (False, False) and both() == (True, True)
    # a station renamed through an import: both pages again, with the new name
    stations = tmp_path / "one.csv"
    stations.write_text("id,name,kind,lon,lat\nMAP-1,缓存测试驿站,small,116.3200,40.0000\n", encoding="utf-8")
    import_stations(engine, stations, area=demo.area.name)
    assert both() == (False, False)
    page, kept = cache.page(engine, "run", demo.run_id, "/a", run_page)
    assert kept and "缓存测试驿站" in page
    import_stations(engine, stations, area=demo.area.name)  # the same row again: nothing changes
    assert both() == (True, True)
    stations.write_text("id,name,kind,lon,lat\nMAP-1,缓存测试驿站（改名）,small,116.3200,40.0000\n", encoding="utf-8")
    import_stations(engine, stations, area=demo.area.name)
    assert both() == (False, False)
    assert "缓存测试驿站（改名）" in cache.page(engine, "run", demo.run_id, "/a", run_page)[0]
    # a new display name (the title), re-imported townships (the table)
    with engine.begin() as conn:
        ensure_area(conn, demo.area.name, display_name="五道口新名称")
    assert both() == (False, False)
    assert "五道口新名称<br>" in cache.page(engine, "run", demo.run_id, "/a", run_page)[0]
    with engine.begin() as conn:
        import_units(conn, demo.area, gpd.read_file(TOWNSHIPS), level="township", source="again")
    assert both() == (False, False) and both() == (True, True)
    # the candidates (addresses) and the demand a recommendation's page draws from: only that page again
    with engine.begin() as conn:
        conn.execute(text("UPDATE candidate_sites SET address = '新地址', updated_at = now() "
                          "WHERE id = (SELECT min(id) FROM candidate_sites)"))
    assert both() == (True, False)
    with engine.begin() as conn:
        conn.execute(text("UPDATE demand_cells SET weight = weight + 1 "
                          "WHERE id = (SELECT id FROM area_cells ORDER BY cell_key LIMIT 1)"))
    assert both() == (True, False) and both() == (True, True)
    assert cache.stats.renders == len(renders)


def test_map_route_serves_the_kept_page_until_the_registry_changes(demo: DemoRuns, engine: Engine,
                                                                      api: httpx.Client, tmp_path: Path) -> None:
    def get() -> tuple[str, str]:
        answer = api.get("/map", params={"run": demo.run_id}, headers=STAFF)
        assert answer.status_code == 200, answer.text[:300]
        return answer.headers["X-Map-Cache"], answer.text

    assert get()[0] == "miss" and get()[0] == "hit"
    stations = tmp_path / "one.csv"
    stations.write_text("id,name,kind,lon,lat\nMAP-2,路由缓存驿站,large,116.3150,39.9950\n", encoding="utf-8")
    import_stations(engine, stations, area=demo.area.name)
    state, page = get()
    assert state == "miss" and "路由缓存驿站" in _text(page)
    assert get()[0] == "hit"


# --- in a browser ---------------------------------------------------------------------------------------------------


VISIBLE_BOXES = """() => Array.from(document.querySelectorAll(
    '#yz-drawer-toggle, .yz-panel, .leaflet-control-container .leaflet-control')).map(el => {
      const r = el.getBoundingClientRect();
      return {id: el.id || el.className, x: r.left, y: r.top, right: r.right, bottom: r.bottom,
              w: r.width, h: r.height};
    }).filter(b => b.w > 0 && b.h > 0)"""


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["x"] < b["right"] and b["x"] < a["right"] and a["y"] < b["bottom"] and b["y"] < a["bottom"]


def _popup_clear(page: Any, marker_js: str) -> dict[str, float]:
    """Open a popup with ``marker_js`` (fires a marker's click), let the map pan, and check its box is inside the
    viewport and overlaps no visible panel or control; returns the box."""
    page.evaluate(marker_js)
    page.wait_for_selector(".leaflet-popup-content-wrapper", state="visible")
    page.wait_for_timeout(600)  # the pan that clears the panels is animated
    box = page.evaluate("""() => { const r = document.querySelector('.leaflet-popup-content-wrapper')
        .getBoundingClientRect(); return {x: r.left, y: r.top, right: r.right, bottom: r.bottom}; }""")
    size = page.viewport_size
    assert box["x"] >= 0 and box["right"] <= size["width"] and box["y"] >= 0 and box["bottom"] <= size["height"]
    hidden_by = [b["id"] for b in page.evaluate(VISIBLE_BOXES) if _overlap(box, b)]
    assert not hidden_by, f"popup {box} under {hidden_by}"
    return box


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
@pytest.mark.parametrize("which", ["run", "rec"])
def test_map_on_a_phone_and_a_desktop(demo: DemoRuns, browser: Any, which: str) -> None:
    path = demo.run_html if which == "run" else demo.rec_html
    # a phone: the panels folded behind one button, the layer list closed, the map visible
    context, page, errors = open_map_file(browser, path, PHONE)
    try:
        assert page.locator("#yz-drawer-toggle").is_visible()
        assert page.locator("#yz-drawer-toggle").get_attribute("aria-expanded") == "false"
        assert not page.locator("#yz-drawer").is_visible() and not page.locator("#yz-summary").is_visible()
        assert not page.locator("#yz-legend").is_visible() and not page.locator("#yz-townships").is_visible()
        assert page.locator(".leaflet-control-layers").count() == 1
        assert not page.locator(".leaflet-control-layers-expanded").count()
        assert not page.locator(".leaflet-control-layers-list").is_visible()
        covered = sum(b["w"] * b["h"] for b in page.evaluate(VISIBLE_BOXES))
        assert covered < 0.1 * PHONE["width"] * PHONE["height"], "controls cover the map"
        assert page.locator("path.yz-station").count() > 0
        scale = page.locator(".leaflet-control-scale-line")
        assert scale.count() == 1 and re.fullmatch(r"\d+ k?m", scale.inner_text().strip())
        page.screenshot(path=str(SHOTS / f"yizhan_map_page_{which}_390.png"))
        # the drawer opens on its button and folds again when a popup opens; the popup is clear of every control
        page.locator("#yz-drawer-toggle").tap()
        assert page.locator("#yz-summary").is_visible() and page.locator("#yz-legend").is_visible()
        page.screenshot(path=str(SHOTS / f"yizhan_map_page_{which}_390_panels.png"))
        _popup_clear(page, "yizhanMap.markers.wgs84.filter(Boolean)[0].fire('click')")
        assert not page.locator("#yz-summary").is_visible()
        page.screenshot(path=str(SHOTS / f"yizhan_map_page_{which}_390_popup.png"))
        # the layer list opens with one tap on its button
        page.locator(".leaflet-control-layers-toggle").tap()
        assert page.locator(".leaflet-control-layers-list").is_visible()
        assert not errors, errors
    finally:
        context.close()
    # a desktop: panels in place, the township table beside the map (not over it), sortable
    context, page, errors = open_map_file(browser, path, DESKTOP)
    try:
        assert not page.locator("#yz-drawer-toggle").is_visible()
        assert page.locator("#yz-summary").is_visible() and page.locator("#yz-legend").is_visible()
        assert page.locator(".leaflet-control-layers-list").is_visible()
        if which == "run":
            table = page.locator("#yz-townships")
            assert table.is_visible()
            t, m = table.bounding_box(), page.locator(".folium-map").bounding_box()
            assert t["x"] >= m["x"] + m["width"] - 1 and t["width"] >= 250
            names = table.locator("tbody tr td:first-child")
            listed = names.all_inner_texts()
            table.locator("th button", has_text="乡镇街道").click()
            assert sorted(names.all_inner_texts()) == sorted(listed)
            assert table.locator("th[aria-sort=ascending]").inner_text().startswith("乡镇街道")
            table.locator("th button", has_text="覆盖率").click()
            shares = [float(s.rstrip("%")) for s in table.locator("tbody tr td:nth-child(2)").all_inner_texts()]
            assert shares == sorted(shares)
            table.locator("th button", has_text="覆盖率").click()
            shares = [float(s.rstrip("%")) for s in table.locator("tbody tr td:nth-child(2)").all_inner_texts()]
            assert shares == sorted(shares, reverse=True)
            _popup_clear(page, "yizhanMap.markers.wgs84.filter(Boolean)[0].fire('click')")
        else:
            assert page.locator("#yz-townships").count() == 0  # a recommendation has no township table
            page.locator(".yz-site").first.click()
            _popup_clear(page, "void 0")
            page.locator("details.yz-proof summary").click()
            assert page.locator("details.yz-proof table").is_visible()
        page.keyboard.press("Escape")
        page.screenshot(path=str(SHOTS / f"yizhan_map_page_{which}_1366.png"))
        # printed: A4 landscape, controls hidden, the panels kept
        page.emulate_media(media="print")
        for control in (".leaflet-control-zoom", ".leaflet-control-layers", ".yz-search"):
            assert not page.locator(control).is_visible(), control
        assert page.locator("#yz-summary").is_visible()
        pdf = page.pdf(prefer_css_page_size=True)
        box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
        assert box and float(box[1]) == pytest.approx(841.9, abs=2) and float(box[2]) == pytest.approx(595.3, abs=2)
        assert not errors, errors
    finally:
        context.close()
