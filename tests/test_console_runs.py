"""The console's runs, comparison and recommendation pages over real HTTP (uvicorn, real PostGIS, the demo sample
area of the real extract) and in Chromium: a planner starts a coverage run and waits for it on its progress page,
opens its map, downloads its report as XLSX and PDF and reads them back; compares two runs (the per-township
figures on the page against ``compare_runs`` and the stored runs; the map's changed cells); starts a
recommendation and sees its sites. Screenshots at 390 x 844 and 1366 x 768."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest
from browser import needs_chromium, page_width
from console_session import HTML, PASSWORD, form_token, make_user, served, signed_in
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo, remember_extract
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.compare import compare_runs
from yizhan.coverage.runs import summary_of, units_table
from yizhan.settings import Settings
from yizhan.siting.candidates import (
    candidate_counts,
    candidates_from_extract,
    filter_candidates,
    store_candidates,
)
from yizhan.siting.recommend import recommend_hours
from yizhan.siting.runs import recommendation_of


@pytest.fixture
def site(db_url: str, sample_area: AreaInfo, tmp_path: Path) -> Iterator[httpx.Client]:
    """The app over HTTP on the sample area (its streets in the test's data folder); a client (one browser)."""
    yield from served(db_url, tmp_path, timeout=60)


def planner(site: httpx.Client, engine: Engine, name: str = "李规划") -> None:
    make_user(engine, name, "planner")
    assert signed_in(site, name).status_code == 303


def wait_for(site: httpx.Client, job_path: str, timeout: float = 180.0) -> dict[str, object]:
    """The job's state once it has finished (polled as the progress page's script does)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        state = site.get(f"{job_path}/state").json()
        if state["finished"]:
            return dict(state)
        time.sleep(0.3)
    raise AssertionError(f"{job_path} did not finish in {timeout} s")


def pdf_text(data: bytes, tmp_path: Path) -> str:
    """A PDF's text (poppler's pdftotext)."""
    assert data.startswith(b"%PDF-")
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils not installed: the PDF's text is not checked")
    path = tmp_path / "read.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def start_run(site: httpx.Client, **form: str) -> httpx.Response:
    token = form_token(site.get("/console/runs", headers=HTML))
    return site.post("/console/runs", headers=HTML, data={**form, "csrf_token": token})


def test_a_planner_starts_a_run_follows_it_and_downloads_its_report(site: httpx.Client, engine: Engine,
                                                                     sample_area: AreaInfo, tmp_path: Path) -> None:
    planner(site, engine)
    page = site.get("/console/runs", headers=HTML)
    assert page.status_code == 200 and "还没有分析结果" in page.text and 'name="radius_m"' in page.text
    # a bad radius: one line naming the field, the value and what is accepted; nothing started
    r = start_run(site, area=sample_area.name, mode="network", profile="walk", radius_m="一公里")
    assert r.status_code == 422 and "服务半径 radius_m: &#39;一公里&#39;; 应为米数" in r.text, r.text
    r = start_run(site, area=sample_area.name, mode="network", profile="walk", radius_m="-5")
    assert r.status_code == 422 and "radius" in r.text and 'value="-5"' in r.text
    r = start_run(site, area=sample_area.name, mode="bus", profile="walk", radius_m="800")
    assert r.status_code == 422 and "mode: &#39;bus&#39;" in r.text
    # a good one: 303 to its progress page, which polls the job's state
    r = start_run(site, area=sample_area.name, mode="network", profile="walk", radius_m="800")
    assert r.status_code == 303 and re.fullmatch(r"/console/jobs/\d+", r.headers["location"]), r.headers
    job = r.headers["location"]
    progress = site.get(job, headers=HTML)
    assert progress.status_code == 200 and 'data-state-url="' + job + '/state"' in progress.text
    assert "script-src 'self'" in progress.headers["content-security-policy"]
    state = wait_for(site, job)
    assert state["state"] == "done" and state["error"] is None, state
    assert re.fullmatch(r"/console/runs/\d+", str(state["result_url"])), state
    run_id = int(str(state["result_url"]).rsplit("/", 1)[1])
    with engine.connect() as conn:
        summary = summary_of(conn, run_id)
    assert (summary["mode"], summary["profile"], summary["radius_m"]) == ("network", "walk", 800.0)
    done = site.get(job, headers=HTML)  # the progress page once done links to the run
    assert f'href="/console/runs/{run_id}"' in done.text and "完成 done" in done.text
    # the run in the list: area, method, profile, radius, local time, share
    listed = site.get("/console/runs", headers=HTML).text
    row = re.search(rf'<tr data-run="{run_id}">(.*?)</tr>', listed, re.S)
    assert row is not None, listed
    cells = [unescape(re.sub(r"<[^>]+>", "", c)).split() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1),
                                                                               re.S)]
    assert cells[2] == ["沿街道", "along", "the", "streets"] and cells[3] == ["步行", "walking"]
    local = datetime.fromisoformat(summary["created_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert cells[4] == ["800", "米", "m"] and " ".join(cells[5]) == f"{local:%Y-%m-%d %H:%M}（UTC+8）", cells[5]
    assert cells[6] == [f"{summary['covered_share'] * 100:.1f}%"]
    # its page: the map and every format
    page = site.get(f"/console/runs/{run_id}", headers=HTML)
    assert page.status_code == 200 and f'href="/map?run={run_id}"' in page.text
    for fmt in ("csv", "xlsx", "geojson", "gpkg", "html", "pdf"):
        assert f'href="/console/runs/{run_id}/files/{fmt}"' in page.text
    assert site.get(f"/map?run={run_id}", headers=HTML).status_code == 200
    xlsx = site.get(f"/console/runs/{run_id}/files/xlsx")
    assert xlsx.status_code == 200 and f'filename="gaps_run{run_id}.xlsx"' in xlsx.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["概况 summary", "缺口 gaps", "乡镇街道 units", "驿站 stations"]
    values = [c for row in book["概况 summary"].iter_rows(values_only=True) for c in row]
    assert any(isinstance(v, float) and abs(v - summary["covered_share"]) < 1e-6 for v in values) or \
        any(isinstance(v, float) and abs(v - summary["covered_share"] * 100) < 0.06 for v in values), values
    pdf = site.get(f"/console/runs/{run_id}/files/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    printed = pdf_text(pdf.content, tmp_path)
    assert f"{summary['covered_share'] * 100:.1f}%" in printed, printed
    html = site.get(f"/console/runs/{run_id}/files/html")
    assert html.status_code == 200 and "sandbox" in html.headers["content-security-policy"]
    # a format that does not exist, a run that does not exist: a page saying so, no traceback
    r = site.get(f"/console/runs/{run_id}/files/docx", headers=HTML)
    assert r.status_code == 422 and "没有这种格式" in r.text
    r = site.get("/console/runs/99999", headers=HTML)
    assert r.status_code == 404 and "没有这次分析" in r.text
    assert site.get("/console/jobs/99999", headers=HTML).status_code == 404


def township_rows(page: str) -> dict[str, tuple[float | None, float | None, float | None]]:
    """The comparison table's rows: township -> (share before, share after, change pp), from the data attributes."""
    def num(v: str) -> float | None:
        return float(v) if v else None

    return {unescape(m.group(1)): (num(m.group(2)), num(m.group(3)), num(m.group(4))) for m in re.finditer(
        r'<tr data-name="([^"]*)" data-before="([^"]*)"\s+data-after="([^"]*)"\s+data-change="([^"]*)">', page)}


def test_two_runs_compared_per_township_as_stored(site: httpx.Client, engine: Engine, sample_area: AreaInfo,
                                                  tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    straight = run_coverage(engine, area=sample_area.name, radius_m=1000, mode="straight")["run_id"]
    network = run_coverage(engine, area=sample_area.name, radius_m=800, mode="network", profile="walk",
                           settings=settings)["run_id"]
    planner(site, engine)
    page = site.get("/console/compare", headers=HTML, params={"before": straight, "after": network})
    assert page.status_code == 200, page.text
    cmp = compare_runs(engine, straight, network)
    rows = township_rows(page.text)
    assert len(rows) == len(cmp.units) >= 2
    with engine.connect() as conn:
        stored = {rid: units_table(conn, rid).set_index("name")["covered_share"] for rid in (straight, network)}
    for u in cmp.units.itertuples(index=False):
        before, after, change = rows[u.name]
        assert before == pytest.approx(stored[straight][u.name]) == pytest.approx(u.share_before)
        assert after == pytest.approx(stored[network][u.name]) == pytest.approx(u.share_after)
        assert change == pytest.approx((after - before) * 100, abs=1e-3)
        shown = f"{before * 100:.1f}%", f"{after * 100:.1f}%"
        assert re.search(rf'data-name="{re.escape(u.name)}".*?{re.escape(shown[0])}.*?{re.escape(shown[1])}',
                         page.text, re.S), u.name
    said = unescape(page.text)
    assert "方法不同：直线 → 沿街道步行" in said and "服务半径不同：1000 米 → 800 米" in said  # the notes
    assert f"{cmp.before['covered_share'] * 100:.1f}% → {cmp.after['covered_share'] * 100:.1f}%" in said
    # the map's data: the changed cells, as compare_runs has them, and the area's boundary
    url = re.search(r'data-changes="([^"]+)"', page.text)
    assert url is not None
    changes = site.get(unescape(url.group(1))).json()
    status = [f["properties"]["status"] for f in changes["features"]]
    assert status.count("gained") == len(cmp.newly_covered) and status.count("lost") == len(cmp.no_longer_covered)
    assert status.count("boundary") == 1 and len(cmp.newly_covered) + len(cmp.no_longer_covered) > 0
    streets = site.get("/console/compare/streets.geojson", params={"area": sample_area.name})
    assert streets.status_code == 200 and streets.json()["type"] == "MultiLineString"
    # runs that cannot be compared, and values that are no run: one line, no traceback
    r = site.get("/console/compare", headers=HTML, params={"before": straight, "after": straight})
    assert r.status_code == 422 and "对比需要两次不同的分析" in r.text
    r = site.get("/console/compare", headers=HTML, params={"before": "abc", "after": network})
    assert r.status_code == 422 and "较早的分析 before: &#39;abc&#39;" in r.text
    r = site.get("/console/compare", headers=HTML, params={"before": 99999, "after": network})
    assert r.status_code == 404 and "no coverage run with id 99999" in r.text
    assert site.get("/console/compare/changes.geojson", params={"before": 1}).status_code == 422


def candidates_csv(area: AreaInfo, osm_path: Path, n: int = 12) -> bytes:
    """``n`` premises of the extract inside ``area`` as a candidates sheet with Chinese headers and addresses."""
    cands, _ = filter_candidates(candidates_from_extract(osm_path), area)
    lines = ["编号,名称,经度,纬度,类型,地址"]
    for i, c in enumerate(cands.head(n).itertuples()):
        lines.append(f"c{i},{str(c.name).replace(',', ' ')},{c.geometry.x:.7f},{c.geometry.y:.7f},{c.host_type},"
                     f"海淀区成府路{i + 1}号")
    return ("\n".join(lines) + "\n").encode("utf-8")


def start_recommendation(site: httpx.Client, files: dict[str, tuple[str, bytes, str]] | None = None,
                         **form: str) -> httpx.Response:
    token = form_token(site.get("/console/recommendations", headers=HTML))
    return site.post("/console/recommendations", headers=HTML, data={**form, "csrf_token": token}, files=files)


def test_a_recommendation_from_an_uploaded_candidates_file(site: httpx.Client, engine: Engine,
                                                           sample_area: AreaInfo, osm_path: Path) -> None:
    planner(site, engine)
    page = site.get("/console/recommendations", headers=HTML)
    assert page.status_code == 200 and "还没有选址建议" in page.text and 'enctype="multipart/form-data"' in page.text
    good = candidates_csv(sample_area, osm_path)
    bad = good.replace(b",116.", b",216.", 1)  # one longitude off the globe
    r = start_recommendation(site, files={"candidates_file": ("候选.csv", bad, "text/csv")}, area=sample_area.name,
                             by="k", k="2", mode="straight", source="file")
    assert r.status_code == 422 and "未导入任何数据" in r.text, r.text
    assert re.search(r'<td data-label="行 Row">2</td><td data-label="字段 Field">\s*lon</td>', r.text), r.text
    with engine.connect() as conn:
        assert candidate_counts(conn, sample_area.id) == {}  # nothing stored
    r = start_recommendation(site, area=sample_area.name, by="k", k="two", source="stored")
    assert r.status_code == 422 and "站点数 k: &#39;two&#39;" in r.text
    r = start_recommendation(site, area=sample_area.name, by="target", target="120", source="stored")
    assert r.status_code == 422 and "目标覆盖率 target: &#39;120&#39;" in r.text
    r = start_recommendation(site, files={"candidates_file": ("候选.csv", good, "text/csv")}, area=sample_area.name,
                             by="k", k="2", mode="straight", radius_m="1000", source="file")
    assert r.status_code == 303, r.text
    state = wait_for(site, r.headers["location"])
    assert state["state"] == "done", state
    page = site.get(str(state["result_url"]), headers=HTML)
    assert page.status_code == 200
    rec_id = int(str(state["result_url"]).rsplit("/", 1)[1])
    with engine.connect() as conn:
        stored = recommendation_of(conn, rec_id)
    sites = re.findall(r'<li data-rank="(\d+)" data-id="([^"]+)">(.*?)</li>', page.text, re.S)
    assert [(int(rank), sid) for rank, sid, _ in sites] == [(s["rank"], s["id"]) for s in stored["sites"]]
    assert len(sites) == 2
    for (_, sid, body), s in zip(sites, stored["sites"], strict=True):
        assert f"海淀区成府路{int(sid[1:]) + 1}号" in body  # the address of the uploaded row
        assert f"+{s['gain']:,.0f}" in body and f"{s['covered_share_after'] * 100:.1f}%" in body
    # the headline is the share before and after; the proof is folded away beneath
    before, after = stored["covered_share_before"], stored["covered_share_after"]
    assert f"{before * 100:.1f}% → {after * 100:.1f}%" in page.text
    assert page.text.index('<details class="proof">') > page.text.index('id="sites"')
    assert f'src="/map?recommendation={rec_id}"' in page.text
    assert site.get(f"/map?recommendation={rec_id}", headers=HTML).status_code == 200
    listed = site.get("/console/recommendations", headers=HTML).text
    assert f'<tr data-recommendation="{rec_id}">' in listed


def test_candidates_from_the_areas_extract(site: httpx.Client, engine: Engine, sample_area: AreaInfo,
                                           osm_path: Path) -> None:
    planner(site, engine)
    r = start_recommendation(site, area=sample_area.name, by="k", k="2", source="extract")
    assert r.status_code == 422 and "没有可用的地图数据文件" in r.text  # nothing remembered yet
    with engine.begin() as conn:
        remember_extract(conn, sample_area.id, osm_path)
    r = start_recommendation(site, area=sample_area.name, by="target", target="95%", mode="straight",
                             source="extract")
    assert r.status_code == 303, r.text
    with engine.connect() as conn:
        assert sum(candidate_counts(conn, sample_area.id).values()) > 10
    assert wait_for(site, r.headers["location"])["state"] == "done"


def test_an_hours_recommendation_from_the_console(site: httpx.Client, engine: Engine, sample_area: AreaInfo,
                                                  osm_path: Path, settings: Settings) -> None:
    planner(site, engine)
    with engine.begin() as conn:
        cands, _ = filter_candidates(candidates_from_extract(osm_path), sample_area)
        store_candidates(conn, sample_area, cands, source="osm")
    page = site.get("/console/recommendations", headers=HTML).text
    assert "延长营业时间与新站点" in page and "longer hours and new sites" in page
    for field in ("max_extend", "max_24h", "max_sites", "extend_to"):
        assert f'name="{field}"' in page
    hours = {"area": sample_area.name, "by": "hours", "source": "stored", "mode": "straight", "radius_m": "500"}
    for bad, said in [({"max_extend": "2", "extend_to": "25:00"}, "延长至 &#39;25:00&#39;"),
                      ({"max_extend": "0", "max_24h": "0", "max_sites": "0"}, "至少允许一类措施"),
                      ({"max_sites": "many"}, "新站点数 max_sites: &#39;many&#39;"),
                      ({"max_extend": "2", "extend_to": ""}, "延长至 extend_to"),
                      ({"max_24h": "9999"}, "max_24h: 9999")]:
        r = start_recommendation(site, **hours, **bad)
        assert r.status_code == 422 and said in r.text, (bad, r.text[-2000:])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0  # nothing started
    caps = {"max_extend": "2", "extend_to": "22:00", "max_24h": "1", "max_sites": "2"}
    r = start_recommendation(site, **hours, **caps)
    assert r.status_code == 303, r.text
    state = wait_for(site, r.headers["location"])
    assert state["state"] == "done", state
    page = site.get(str(state["result_url"]), headers=HTML)
    rec_id = int(str(state["result_url"]).rsplit("/", 1)[1])
    with engine.connect() as conn:
        stored = recommendation_of(conn, rec_id)
    acts = stored.get("actions") or []
    assert stored["problem"] == "hours" and {a["kind"] for a in acts} == {"extend", "24h", "site"}
    # the actions in their one ranked order: kind, name, hours added, demand-hours removed, share after
    items = re.findall(r'<li data-rank="(\d+)" data-kind="([^"]+)" data-id="([^"]+)">(.*?)</li>', page.text, re.S)
    assert [(int(n), k, i) for n, k, i, _ in items] == [(a["rank"], a["kind"], a["id"]) for a in acts]
    for (_, _, _, body), a in zip(items, acts, strict=True):
        body = unescape(re.sub(r"<[^>]+>", "", body))
        assert a["kind_zh"] in body and a["name"] in body and f"+{a['hours_added']} 小时/周" in body
        assert f"{a['gain']:,.0f} 需求小时" in body and f"{a['covered_share_after'] * 100:.1f}%" in body
        if a["kind"] == "extend":
            assert f"延长至 22:00 extended to 22:00 · {a['hours_rule']}" in body
    assert page.text.index('<details class="proof">') > page.text.index('id="actions"')
    assert "Bound (demand-hours)" in page.text
    before, after = stored["covered_share_before"], stored["covered_share_after"]
    assert f"{before * 100:.1f}% → {after * 100:.1f}%" in page.text
    # the same as asked through the service
    same = recommend_hours(engine, extend_to="22:00", max_extend=2, max_24h=1, max_sites=2, radius_m=500,
                           settings=settings)
    assert same["objective"] == pytest.approx(stored["objective"], rel=1e-9)
    # the list says "hours" where a k would be
    listed = site.get("/console/recommendations", headers=HTML).text
    row = re.search(rf'<tr data-recommendation="{rec_id}">(.*?)</tr>', listed, re.S)
    assert row is not None and "按小时 hours" in row[1] and "k =" not in row[1]


# --- in Chromium -------------------------------------------------------------------------------------------------
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}


@needs_chromium
def test_a_planner_in_the_browser(site: httpx.Client, engine: Engine, sample_area: AreaInfo, osm_path: Path,
                                  tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    make_user(engine, "李规划", "planner")
    with engine.begin() as conn:
        remember_extract(conn, sample_area.id, osm_path)
    base = str(site.base_url).rstrip("/")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            asked: list[str] = []
            problems: list[str] = []
            context = browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
            context.route("**/*", only_this_host(asked))
            page = context.new_page()
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" and urlsplit(
                m.location.get("url", "")).hostname in (None, "127.0.0.1") else None)  # not the map's tiles
            sign_in(page, base)

            def run_from_the_form(mode: str, radius: str) -> int:
                page.goto(f"{base}/console/runs")
                if page.locator("details.start[open]").count() == 0:
                    page.click("details.start > summary")
                page.select_option("#run-area", sample_area.name)
                page.check(f"input[name=mode][value={mode}]")
                page.check("input[name=profile][value=walk]")
                page.fill("#run-radius", radius)
                page.click("#start-run button.primary")
                page.wait_for_url("**/console/jobs/*")
                assert re.fullmatch(r"/console/jobs/\d+", urlsplit(page.url).path), page.url
                page.wait_for_selector("#job-result:not([hidden])", timeout=180_000)  # the page polled till done
                assert "完成" in page.inner_text("#job-state-text")
                page.click("#job-result-link")
                page.wait_for_url("**/console/runs/*")
                return int(urlsplit(page.url).path.rsplit("/", 1)[1])

            straight = run_from_the_form("straight", "1000")
            network = run_from_the_form("network", "800")
            with engine.connect() as conn:
                summary = summary_of(conn, network)
            assert page.inner_text("#run-share") == f"{summary['covered_share'] * 100:.1f}%"
            # the report through the session: XLSX downloaded, PDF read back
            with page.expect_download() as got:
                page.click("a[data-format=xlsx]")
            assert got.value.suggested_filename == f"gaps_run{network}.xlsx"
            book = openpyxl.load_workbook(io.BytesIO(got.value.path().read_bytes()))
            assert "缺口 gaps" in book.sheetnames and book["缺口 gaps"].max_row >= 2
            pdf = context.request.get(f"{base}/console/runs/{network}/files/pdf")
            assert pdf.ok and f"{summary['covered_share'] * 100:.1f}%" in pdf_text(pdf.body(), tmp_path)
            page.click("#run-map")  # its map
            page.wait_for_url("**/map?run=*")
            page.wait_for_selector(".leaflet-container")
            assert urlsplit(page.url).path == "/map" and f"run={network}" in page.url
            # compare the two runs
            page.goto(f"{base}/console/compare")
            page.select_option("#before", str(straight))
            page.select_option("#after", str(network))
            page.click("#pick button.primary")
            page.wait_for_selector("#compare-map[data-drawn]")
            cmp = compare_runs(engine, straight, network)
            shown = {page.locator("#townships tbody tr").nth(i).get_attribute("data-name"):
                     page.locator("#townships tbody tr").nth(i).locator("td").nth(2).inner_text()
                     for i in range(page.locator("#townships tbody tr").count())}
            assert shown == {u.name: f"{u.share_after * 100:.1f}%" for u in cmp.units.itertuples()}
            drawn = int(page.get_attribute("#compare-map", "data-drawn") or 0)
            assert drawn == 1 + len(cmp.newly_covered) + len(cmp.no_longer_covered)
            page.check(".leaflet-control-layers-overlays label:has-text('道路') input")  # the streets, on request
            page.wait_for_selector("#compare-map[data-streets-drawn]")
            assert int(page.get_attribute("#compare-map", "data-streets-drawn") or 0) > 100
            # a recommendation of two sites from the premises of the area's extract
            page.goto(f"{base}/console/recommendations")
            page.select_option("#rec-area", sample_area.name)
            page.check("input[name=by][value=k]")
            page.fill("#rec-k", "2")
            page.check("input[name=mode][value=straight]")
            page.check("input[name=source][value=extract]")
            page.click("#start-recommendation button.primary")
            page.wait_for_url("**/console/jobs/*")
            page.wait_for_selector("#job-result:not([hidden])", timeout=180_000)
            page.click("#job-result-link")
            page.wait_for_url("**/console/recommendations/*")
            assert page.locator("#sites > li").count() == 2
            assert page.locator("details.proof").get_attribute("open") is None  # folded
            rec_path = urlsplit(page.url).path
            pages = {"runs": "/console/runs", "compare": f"/console/compare?before={straight}&after={network}",
                     "recommendation": rec_path, "recommendations": "/console/recommendations"}
            for label, viewport in (("1366x768", DESKTOP), ("390x844", PHONE)):
                page.set_viewport_size(viewport)
                for name, path in pages.items():
                    page.goto(base + path)
                    if name == "compare":
                        page.wait_for_selector("#compare-map[data-drawn]")
                        if viewport is DESKTOP:
                            page.check(".leaflet-control-layers-overlays label:has-text('道路') input")
                            page.wait_for_selector("#compare-map[data-streets-drawn]")
                    if name in ("runs", "recommendations"):
                        page.click("details.start > summary")  # the form, opened
                    page.wait_for_timeout(300)
                    width = page_width(page)
                    assert width <= viewport["width"], (name, label, width)  # no sideways scrolling
                    page.screenshot(path=str(shots / f"{name}-{label}.png"), full_page=True)
            outside = [u for u in asked if urlsplit(u).hostname != "127.0.0.1"]
            assert outside == [] and problems == [], (outside, problems)
            context.close()
        finally:
            browser.close()
    assert len(list(shots.iterdir())) == 8


def sign_in(page: Any, base: str) -> None:
    """Sign in as the planner through the form, in the browser."""
    page.goto(f"{base}/console/runs")
    assert urlsplit(page.url).path == "/console/signin"
    page.fill("#name", "李规划")
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/console/runs", page.url


def only_this_host(asked: list[str]) -> Callable[[Any], None]:
    """A route handler that records every URL a console page asked for and lets only the test server's through."""

    def route(r: Any) -> None:
        if urlsplit(r.request.frame.url).path != "/map":  # the map page's own tiles are its business
            asked.append(r.request.url)
        if urlsplit(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            r.abort()

    return route


def test_the_pages_need_a_session_and_their_forms_the_csrf_token(site: httpx.Client, engine: Engine,
                                                                 sample_area: AreaInfo) -> None:
    for path in ("/console/runs", "/console/runs/1", "/console/runs/1/files/pdf", "/console/compare?before=1&after=2",
                 "/console/recommendations", "/console/recommendations/1", "/console/jobs/1"):
        r = site.get(path, headers=HTML)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/signin?next="), path
    for path in ("/console/jobs/1/state", "/console/compare/changes.geojson?before=1&after=2"):
        assert site.get(path).status_code in (303, 401), path  # a script without a session gets nothing
    planner(site, engine)
    for path in ("/console/runs", "/console/recommendations"):
        r = site.post(path, headers=HTML, data={"area": sample_area.name, "k": "2"})
        assert r.status_code == 403 and "表单无效" in r.text, path
        r = site.post(path, headers=HTML, data={"area": sample_area.name, "k": "2", "csrf_token": "forged"})
        assert r.status_code == 403, path
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0


def test_text_from_data_is_escaped(site: httpx.Client, engine: Engine, sample_area: AreaInfo) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE areas SET display_name = '<script>alert(1)</script>五道口' WHERE id = :a"),
                     {"a": sample_area.id})
    run_id = run_coverage(engine, area=sample_area.name, radius_m=1000, mode="straight")["run_id"]
    planner(site, engine)
    for path in ("/console/runs", f"/console/runs/{run_id}", "/console/compare", "/console/recommendations"):
        page = site.get(path, headers=HTML).text
        assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;五道口" in page, path


def test_a_run_that_fails_says_why_in_one_line(site: httpx.Client, engine: Engine, wudaokou: AreaInfo) -> None:
    planner(site, engine)
    r = start_run(site, area=wudaokou.name, mode="straight", radius_m="1000")  # an area without demand
    assert r.status_code == 303, r.text
    state = wait_for(site, r.headers["location"])
    assert state["state"] == "failed" and state["result_url"] is None
    assert "has no demand cells" in str(state["error"]) and "\n" not in str(state["error"])
    page = site.get(r.headers["location"], headers=HTML)
    assert "失败 failed" in page.text and "has no demand cells" in page.text and "Traceback" not in page.text
    listed = site.get("/console/runs", headers=HTML).text  # among the unfinished jobs, with its error
    assert "失败 <span class=\"en\">failed</span>" in listed and "has no demand cells" in listed


def test_a_run_by_hour_with_capacity_from_the_form(site: httpx.Client, engine: Engine,
                                                   sample_area: AreaInfo) -> None:
    planner(site, engine)
    with engine.begin() as conn:  # two seats where recorded; some stations' seats not recorded
        conn.execute(text("UPDATE stations SET seats = CASE WHEN id % 3 = 0 THEN NULL ELSE 2 END"))
    r = start_run(site, area=sample_area.name, mode="straight", radius_m="800", by_hour="1", capacity="1",
                  decay="cubic")
    assert r.status_code == 422 and "decay" in r.text and "cubic" in r.text, r.text
    r = start_run(site, area=sample_area.name, mode="straight", radius_m="800", by_hour="1", capacity="1",
                  decay="stepwise")
    assert r.status_code == 303, r.text
    state = wait_for(site, r.headers["location"])
    assert state["state"] == "done", state
    run_id = int(str(state["result_url"]).rsplit("/", 1)[1])
    with engine.connect() as conn:
        summary = summary_of(conn, run_id)
    page = unescape(site.get(f"/console/runs/{run_id}", headers=HTML).text)
    assert "按订单点" in page and "一周每小时" in page and "容量" in page
    shares = summary["by_hour"]["covered_share_by_hour"]
    table = re.search(r'<table class="week" id="week-table">(.*?)</table>', page, re.S)
    assert table is not None
    cells = re.findall(r'<td class="(s\d|na)">([^<]*)</td>', table.group(1))
    assert len(cells) == 168
    for hour in range(24):  # the page's rows are hours, its columns Monday to Sunday
        for day in range(7):
            cls, shown = cells[hour * 7 + day]
            share = shares[day * 24 + hour]
            assert (shown == "–") if share is None else (shown == f"{share * 100:.0f}")
            assert cls == ("na" if share is None else f"s{sum(share >= e for e in (0.5, 0.7, 0.85, 0.95))}")
    worst = summary["by_hour"]["worst_hours"][0]
    assert worst["label_zh"] in page
    crowded = summary["capacity"]["crowded"]
    assert f"<strong>{crowded}</strong>" in page
    assert summary["capacity"]["stations_without_seats"] > 0 and "未登记 not recorded" in page
    for unit in summary["by_hour"]["units"]:  # each township's own figures
        assert unit["name"] in page
