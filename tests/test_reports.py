"""Gap reports of stored runs in every format (CSV, XLSX, GeoJSON, GeoPackage, HTML, PDF), read back and compared
with the run; the ``yizhan report`` command; the staff endpoints over real HTTP."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from cli_runner import run_cli
from pyproj import Transformer
from shapely.geometry import box
from sqlalchemy import Engine

from yizhan.areas import ensure_area, import_units
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.runs import UNASSIGNED, units_table
from yizhan.data.demand import import_demand
from yizhan.db.engine import make_engine
from yizhan.errors import InvalidInput
from yizhan.reports import drawing as report_map
from yizhan.reports.run_report import (
    DEFAULT_FORMATS,
    FORMATS,
    GAP_COLUMNS,
    GPKG_LAYERS,
    SHEETS,
    UNIT_COLUMNS,
    RunReport,
    gaps_table,
    load_report,
)
from yizhan.reports.summary import pct, summary_page
from yizhan.reports.workbook import TOTAL_LABEL
from yizhan.reports.writer import parse_formats, render, write_report
from yizhan.settings import Settings
from yizhan.stations.service import import_stations

UTM50 = 32650
TO_LL = Transformer.from_crs(UTM50, 4326, always_xy=True)
ORIGIN = (440_000.0, 4_427_000.0)  # metres in UTM 50N, near Wudaokou
KEY = "report-key"
STAFF = {"X-API-Key": KEY}
HEADER = "id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status"


def _ll(x, y):  # type: ignore[no-untyped-def]
    return TO_LL.transform(ORIGIN[0] + np.asarray(x, float), ORIGIN[1] + np.asarray(y, float))


def _grid_run(engine: Engine, tmp_path: Path, *, radius: float = 1450.0, units: bool = True) -> int:
    """A 6 x 3 km area in UTM 50N (5 gaps at the default radius): a large station at x=1000, a small one at
    x=5000 and a closed one at x=3000 (y=1500); demand 1 (x < 3000) or 2 at every 200 m cell; units 西街道
    (x < 2800) and 东街道 (2800–5600), the strip beyond unassigned. Returns the run id."""
    lo, la = _ll([0, 6000], [0, 3000])
    with engine.begin() as conn:
        area = ensure_area(conn, "grid", boundary=box(lo[0], la[0], lo[1], la[1]), crs_epsg=UTM50)
        if units:
            (w0, w1), (s0, s1) = _ll([0, 2800], [0, 3000])
            (e0, e1), _ = _ll([2800, 5600], [0, 3000])
            import_units(conn, area, gpd.GeoDataFrame({"name": ["西街道", "东街道"]},
                                                      geometry=[box(w0, s0, w1, s1), box(e0, s0, e1, s1)], crs=4326))
    lon, lat = _ll([1000, 5000, 3000], [1500, 1500, 1500])
    rows = [f"G0,成府路驿站,large,{lon[0]:.9f},{lat[0]:.9f},party_service_centre,成府路28号,西街道,,,10,,active",
            f"G1,清华东路驿站,small,{lon[1]:.9f},{lat[1]:.9f},shop,清华东路5号,东街道,,,4,,active",
            f"G2,关闭的站,mobile,{lon[2]:.9f},{lat[2]:.9f},,,,,,,,closed"]
    st = tmp_path / "st.csv"
    st.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    import_stations(engine, st, area="grid")
    xs, ys = np.meshgrid(np.arange(100, 6000, 200), np.arange(100, 3000, 200))
    xs, ys = xs.ravel(), ys.ravel()
    dlon, dlat = _ll(xs, ys)
    demand = tmp_path / "demand.csv"
    pd.DataFrame({"lon": dlon, "lat": dlat, "weight": np.where(xs < 3000, 1.0, 2.0)}).to_csv(
        demand, index=False, float_format="%.10f")
    import_demand(engine, demand, area="grid", cell_size_m=200)
    return int(run_coverage(engine, area="grid", radius_m=radius)["run_id"])


@pytest.fixture(scope="module")
def grid(fresh_database, tmp_path_factory) -> Iterator[tuple[Engine, int]]:  # type: ignore[no-untyped-def]
    """The grid run of ``_grid_run`` in a database of the module's own, built once: the tests that take it only
    read it. Yields its engine and the run id."""
    with fresh_database() as url:
        engine = make_engine(url)
        try:
            yield engine, _grid_run(engine, tmp_path_factory.mktemp("grid"))
        finally:
            engine.dispose()


@pytest.fixture
def grid_report(grid) -> RunReport:  # type: ignore[no-untyped-def]
    """The grid run's report, loaded for the test."""
    engine, run_id = grid
    return load_report(engine, run_id)


def _pdf_text(data: bytes, tmp_path: Path) -> str:
    """The PDF's text (poppler's pdftotext), after checking it is a one-page PDF."""
    assert data.startswith(b"%PDF-") and len(data) > 10_000
    path = tmp_path / "check.pdf"
    path.write_bytes(data)
    if shutil.which("pdfinfo") is None or shutil.which("pdftotext") is None:
        if os.environ.get("CI"):
            pytest.fail("poppler-utils (pdfinfo, pdftotext) missing in CI")
        assert len(re.findall(rb"/Type\s*/Page[^s]", data)) == 1
        pytest.skip("poppler-utils not installed: the PDF's text is not checked")
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M), info
    assert re.search(r"Page size:\s+595\.\d* x 841\.\d* pts \(A4\)", info), info
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def _check_against_run(report: RunReport, paths: dict[str, Path], tmp_path: Path) -> None:
    """Every written format agrees with the stored run."""
    s = report.run.summary
    unmet_all = s["demand_total"] - s["demand_covered"]
    # the gaps hold the orders left out in the cells drawn uncovered (all of them when measured on cell centres;
    # measured on points, the few left out in mostly covered cells are not in a gap)
    cells = report.run.cells
    left = cells["weight"] - cells["covered_weight"].fillna(0.0)
    unmet = float(left[~cells["covered"].astype(bool)].sum())
    if s.get("measured", "cells") == "cells":
        assert unmet == pytest.approx(unmet_all)
    units = units_table_of(report)
    n = s["gaps"]

    csv = pd.read_csv(paths["csv"], encoding="utf-8-sig")
    assert paths["csv"].read_bytes().startswith(b"\xef\xbb\xbf")
    assert len(csv) == n and list(csv[GAP_COLUMNS["rank"]]) == list(range(1, n + 1))
    assert csv[GAP_COLUMNS["demand"]].sum() == pytest.approx(unmet, abs=1e-3 * max(n, 1))

    book = openpyxl.load_workbook(paths["xlsx"])
    assert book.sheetnames == list(SHEETS.values())
    gaps_ws, units_ws, st_ws = book[SHEETS["gaps"]], book[SHEETS["units"]], book[SHEETS["stations"]]
    for ws in (gaps_ws, units_ws, st_ws):
        assert ws.freeze_panes == "A2"
        assert all(re.search(r"[\u4e00-\u9fff]", c.value) for c in ws[1]), [c.value for c in ws[1]]
    head = {c.value: c.column_letter for c in gaps_ws[1]}
    if n:
        assert gaps_ws[f"{head[GAP_COLUMNS['demand']]}2"].number_format == "#,##0.0"
        assert gaps_ws[f"{head[GAP_COLUMNS['straight_distance_m']]}2"].number_format == "#,##0"
        assert gaps_ws[f"{head[GAP_COLUMNS['lon']]}2"].number_format == "0.000000"
    assert gaps_ws.column_dimensions[head[GAP_COLUMNS["nearest_station"]]].width >= 12
    uhead = {c.value: c.column_letter for c in units_ws[1]}
    assert units_ws[f"{uhead[UNIT_COLUMNS['covered_share']]}2"].number_format == "0.0%"
    sheets = pd.read_excel(paths["xlsx"], sheet_name=None)
    totals = {name: _totals_row(sheets[name]) for name in (SHEETS["gaps"], SHEETS["units"], SHEETS["stations"])}
    sheets = {name: df.iloc[:-1] if name in totals else df for name, df in sheets.items()}
    for name, total in totals.items():  # each table ends in its totals row: the sums of its rows
        for col in total.index[1:]:
            if col in (GAP_COLUMNS["demand"], UNIT_COLUMNS["demand"], UNIT_COLUMNS["demand_covered"],
                       "服务需求 demand_served"):
                assert total[col] == pytest.approx(sheets[name][col].sum(), abs=1e-3), (name, col)
    assert totals[SHEETS["units"]][UNIT_COLUMNS["covered_share"]] == pytest.approx(s["covered_share"], abs=1e-6)
    gx = sheets[SHEETS["gaps"]]
    assert len(gx) == n and gx[GAP_COLUMNS["demand"]].sum() == pytest.approx(unmet, abs=1e-3 * max(n, 1))
    ux = sheets[SHEETS["units"]]
    assert list(ux[UNIT_COLUMNS["name"]]) == list(units["name"])
    assert ux[UNIT_COLUMNS["demand"]].sum() == pytest.approx(s["demand_total"])
    assert ux[UNIT_COLUMNS["demand_covered"]].sum() == pytest.approx(s["demand_covered"])
    assert list(ux[UNIT_COLUMNS["covered_share"]]) == pytest.approx(list(units["covered_share"]), abs=1e-6)
    sx = sheets[SHEETS["stations"]]
    assert len(sx) == len(report.run.stations)
    assert sx["服务需求 demand_served"].sum() == pytest.approx(s["demand_covered"])
    summary = dict(zip(sheets[SHEETS["summary"]].iloc[:, 0], sheets[SHEETS["summary"]].iloc[:, 1], strict=True))
    assert float(summary["覆盖率 covered share"]) == pytest.approx(s["covered_share"])
    assert int(summary["覆盖缺口 gaps"]) == n and int(summary["运营驿站 active stations"]) == s["stations"]
    assert float(summary["未覆盖需求 unmet demand"]) == pytest.approx(unmet_all)

    gj = gpd.read_file(paths["geojson"])
    doc = json.loads(paths["geojson"].read_text(encoding="utf-8"))
    assert "crs" not in doc and doc["run"]["run_id"] == s["run_id"]
    assert gj.crs.to_epsg() == 4326 and len(gj) == n
    if n:
        assert gj["demand"].sum() == pytest.approx(unmet, abs=1e-3 * n)
        first = shapely.geometry.shape(doc["features"][0]["geometry"])
        assert all(p.exterior.is_ccw for p in shapely.get_parts(first))  # RFC 7946 right-hand rule

    layers = dict(pyogrio.list_layers(paths["gpkg"]))
    assert set(GPKG_LAYERS) <= set(layers)
    for name in GPKG_LAYERS:
        assert pyogrio.read_info(paths["gpkg"], layer=name)["crs"] == "EPSG:4326"
    gg = gpd.read_file(paths["gpkg"], layer="gaps")
    assert gg.crs.to_epsg() == 4326 and len(gg) == n
    assert gg["demand"].sum() == pytest.approx(unmet, abs=1e-3 * max(n, 1))
    gu = gpd.read_file(paths["gpkg"], layer="units")
    assert list(gu["name"]) == list(units["name"]) and gu["demand"].sum() == pytest.approx(s["demand_total"])
    assert len(gpd.read_file(paths["gpkg"], layer="stations")) == len(report.run.stations)

    page = summary_page(report)
    html = paths["html"].read_text(encoding="utf-8")
    text = _pdf_text(paths["pdf"].read_bytes(), tmp_path)
    assert "data:image/png;base64," in html
    for shown in (pct(s["covered_share"]), f"{s['demand_total']:,.1f}", f"{unmet_all:,.1f}", report.run.area.name,
                  f"#{s['run_id']}"):
        assert shown in html and shown in text, shown
    flat = re.sub(r"\s+", " ", text)
    for row in page.gap_rows[:3] + page.unit_rows:
        for cell in (row[0], row[1], row[-1]):
            assert cell in html and cell in flat, (cell, row)


def _totals_row(df: pd.DataFrame) -> pd.Series:
    """The last row of a sheet read with pandas, checked to be its totals row."""
    last = df.iloc[-1]
    assert str(last.iloc[0]).startswith(TOTAL_LABEL), list(last)
    return last


def units_table_of(report: RunReport) -> pd.DataFrame:
    """The stored units table, as ``units_table`` returns it."""
    return pd.DataFrame(report.units.drop(columns="geometry"))


def test_every_format_agrees_with_the_run(grid, grid_report, tmp_path):
    engine, _ = grid
    report = grid_report
    s = report.run.summary
    assert s["stations"] == 2 and s["gaps"] == 5
    with engine.connect() as conn:
        stored = units_table(conn, s["run_id"])
    assert list(stored["name"]) == list(report.units["name"])
    assert UNASSIGNED in set(stored["name"])  # the strip east of 5600 m is in no unit
    paths = write_report(report, tmp_path / "out", FORMATS)
    assert {p.name for p in paths.values()} == {f"gaps_run{s['run_id']}.{f}" for f in ("csv", "xlsx", "geojson", "gpkg")
                                                } | {f"report_run{s['run_id']}.{f}" for f in ("html", "pdf")}
    _check_against_run(report, paths, tmp_path)
    # the top gap is the middle strip between the two stations; it has no street names: lon, lat instead
    table = gaps_table(report)
    top = table.iloc[0]
    assert top["location"] == f"{top['lon']:.6f}, {top['lat']:.6f}"
    assert top["nearest_station_address"] in {"成府路28号", "清华东路5号"}
    # no OSM data in this run: no attribution
    assert "OpenStreetMap" not in paths["html"].read_text(encoding="utf-8")


def test_pdf_page_renders_chinese(grid_report, tmp_path):
    if report_map.cjk_font() is None:
        pytest.skip("no CJK font installed (Debian: fonts-wqy-zenhei or fonts-noto-cjk)")
    text = _pdf_text(render(grid_report, "pdf"), tmp_path)
    for words in ("驿站覆盖缺口报告", "覆盖率", "西街道", "东街道", "合计", "前", "个缺口"):
        assert words in text, words
    if shutil.which("pdffonts"):
        fonts = subprocess.run(["pdffonts", str(tmp_path / "check.pdf")], capture_output=True, text=True).stdout
        assert " yes yes " in fonts  # embedded, subset


def test_pdf_without_a_cjk_font_still_renders(grid_report, tmp_path, monkeypatch):
    monkeypatch.setattr(report_map, "cjk_font", lambda: None)
    text = _pdf_text(render(grid_report, "pdf"), tmp_path)
    assert "No CJK font installed" in text and pct(grid_report.run.summary["covered_share"]) in text


def test_a_run_without_gaps_and_units(engine, tmp_path):
    rid = _grid_run(engine, tmp_path, radius=5000, units=False)
    report = load_report(engine, rid)
    assert report.run.summary["gaps"] == 0 and report.run.summary["covered_share"] == 1
    assert set(report.units["name"]) <= {"西南片区", "东南片区", "西北片区", "东北片区"}  # the area's sectors
    paths = write_report(report, tmp_path / "all", FORMATS)
    _check_against_run(report, paths, tmp_path)
    assert "没有覆盖缺口" in paths["html"].read_text(encoding="utf-8")
    assert gpd.read_file(paths["gpkg"], layer="units").geometry.notna().all()


def test_parse_formats_and_file_targets(grid_report, tmp_path):
    assert parse_formats(None) == DEFAULT_FORMATS == ("csv", "geojson")
    assert parse_formats(["all"]) == FORMATS
    assert parse_formats(["pdf,CSV", ".xlsx"]) == ("csv", "xlsx", "pdf")
    with pytest.raises(InvalidInput, match="docx"):
        parse_formats(["csv,docx"])
    one = write_report(grid_report, tmp_path / "my.gpkg", ["gpkg"])
    assert one == {"gpkg": tmp_path / "my.gpkg"} and pyogrio.list_layers(one["gpkg"]).shape[0] == len(GPKG_LAYERS)
    folder = write_report(grid_report, tmp_path / "dir.d", ["csv", "xlsx"])
    assert {p.parent for p in folder.values()} == {tmp_path / "dir.d"}
    assert not list((tmp_path / "dir.d").glob(".*partial"))


def test_network_run_report_with_street_names(engine, osm_path, sample_extract, tmp_path):
    from yizhan.coverage.streets import build_area_graph
    from yizhan.geo.osm import named_streets_from_extract

    settings = Settings(data_dir=tmp_path / "data")
    sample = sample_extract
    files = sample.write(tmp_path / "sample")
    with engine.begin() as conn:
        area = ensure_area(conn, sample.name, boundary=sample.boundary, crs_epsg=sample.crs_epsg,
                           source=f"{osm_path.name} (© OpenStreetMap contributors)")
    import_stations(engine, files["stations"])
    import_demand(engine, files["demand"])
    build_area_graph(area, osm_path, profile="walk", settings=settings)
    summary = run_coverage(engine, radius_m=800, mode="network", profile="walk", settings=settings)
    report = load_report(engine, summary["run_id"], streets=named_streets_from_extract(osm_path),
                         streets_source=osm_path.name)
    assert report.network and report.uses_osm
    paths = write_report(report, tmp_path / "net", FORMATS)
    _check_against_run(report, paths, tmp_path)
    share_straight = summary["covered_share_straight"]
    book = pd.read_excel(paths["xlsx"], sheet_name=None)
    head = dict(zip(book[SHEETS["summary"]].iloc[:, 0], book[SHEETS["summary"]].iloc[:, 1], strict=True))
    assert float(head["直线覆盖率 straight-line covered share"]) == pytest.approx(share_straight)
    units = book[SHEETS["units"]]
    total = _totals_row(units)
    straight = units.iloc[:-1][UNIT_COLUMNS["demand_covered_straight"]].sum()
    assert straight == pytest.approx(share_straight * summary["demand_total"])
    assert total[UNIT_COLUMNS["demand_covered_straight"]] == pytest.approx(straight, abs=1e-3)
    assert total[UNIT_COLUMNS["covered_share_straight"]] == pytest.approx(share_straight, abs=1e-6)
    text = _pdf_text(paths["pdf"].read_bytes(), tmp_path)
    html = paths["html"].read_text(encoding="utf-8")
    for shown in (pct(share_straight), "© OpenStreetMap contributors", "沿路网"):
        assert shown in text and shown in html, shown
    # gaps are named by a street within 500 m of their point when there is one (real streets of Wudaokou)
    table = gaps_table(report)
    named = table["street"].notna()
    assert named.any()
    assert (table.loc[named, "street_distance_m"] <= 500).all()
    assert all(loc.startswith(name) for loc, name in zip(table.loc[named, "location"], table.loc[named, "street"],
                                                         strict=True))
    assert gpd.read_file(paths["gpkg"], layer="service_area").geometry.iloc[0].area > 0


def test_report_command(engine, db_url, tmp_path):
    rid = _grid_run(engine, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIZHAN_")}
    env.update(DATABASE_URL=db_url, YIZHAN_OUT_DIR=str(tmp_path / "default"), YIZHAN_DATA_DIR=str(tmp_path / "d"),
               COLUMNS="200")

    def yz(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("report", *args, env=env, check=False)

    assert "csv and geojson" in yz("--help").stdout
    proc = yz()
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in (tmp_path / "default").iterdir()} == {f"gaps_run{rid}.csv", f"gaps_run{rid}.geojson"}
    proc = yz("--run", str(rid), "--format", "xlsx,pdf", "-f", "html", "--out", str(tmp_path / "rep"))
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in (tmp_path / "rep").iterdir()} == {f"gaps_run{rid}.xlsx", f"report_run{rid}.pdf",
                                                             f"report_run{rid}.html"}
    proc = yz("--run", str(rid), "--format", "gpkg", "--out", str(tmp_path / "one.gpkg"))
    assert proc.returncode == 0 and (tmp_path / "one.gpkg").exists()
    proc = yz("--format", "docx")
    assert proc.returncode == 2 and "docx" in proc.stderr
    proc = yz("--run", "999", "--format", "csv")
    assert proc.returncode == 2 and "999" in proc.stderr


def test_report_endpoints_over_http(engine, db_url, tmp_path, live_api):
    rid = _grid_run(engine, tmp_path)
    report = load_report(engine, rid)
    expected = {"gaps.csv": ("text/csv", "attachment", f"gaps_run{rid}.csv"),
                "gaps.xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "attachment",
                              f"gaps_run{rid}.xlsx"),
                "gaps.geojson": ("application/geo+json", "attachment", f"gaps_run{rid}.geojson"),
                "gaps.gpkg": ("application/geopackage+sqlite3", "attachment", f"gaps_run{rid}.gpkg"),
                "report.pdf": ("application/pdf", "inline", f"report_run{rid}.pdf"),
                "report.html": ("text/html", "inline", f"report_run{rid}.html")}
    client = live_api(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data"), timeout=60)
    got: dict[str, bytes] = {}
    for name, (media, disposition, filename) in expected.items():
        url = f"/runs/{rid}/{name}"
        assert client.get(url).status_code == 401
        assert client.get(url, headers={"X-API-Key": "wrong"}).status_code == 401
        r = client.get(url, headers=STAFF)
        assert r.status_code == 200, (url, r.text[:500])
        assert r.headers["content-type"].startswith(media), (url, r.headers["content-type"])
        assert r.headers["content-disposition"] == f'{disposition}; filename="{filename}"'
        got[name] = r.content
        missing = client.get(f"/runs/{rid + 100}/{name}", headers=STAFF)
        assert missing.status_code == 404 and str(rid + 100) in missing.json()["detail"]
    out = tmp_path / "http"
    out.mkdir()
    paths = {}
    for name, data in got.items():
        fmt = name.split(".")[1]
        paths[fmt] = out / f"r.{fmt}"
        paths[fmt].write_bytes(data)
    _check_against_run(report, paths, tmp_path)
    # the latest-run routes give the same files
    legacy = client.get("/gaps.csv", headers=STAFF)
    assert legacy.status_code == 200 and legacy.content == got["gaps.csv"]
    assert f'filename="gaps_run{rid}.csv"' in legacy.headers["content-disposition"]
    legacy_gj = client.get("/gaps.geojson", headers=STAFF, params={"run": rid})
    assert legacy_gj.headers["content-type"].startswith("application/geo+json")
    assert legacy_gj.json() == json.loads(got["gaps.geojson"])
    assert client.get("/gaps.geojson").status_code == 401
    assert client.get("/runs/abc/gaps.csv", headers=STAFF).status_code == 422
    xlsx = openpyxl.load_workbook(io.BytesIO(got["gaps.xlsx"]))
    assert xlsx.sheetnames == list(SHEETS.values())


def test_report_over_http_shows_times_in_the_apps_time_zone(engine, db_url, tmp_path, live_api):
    """The one-page summary served by the API prints times in the app's ``timezone`` setting, as the CLI does."""
    rid = _grid_run(engine, tmp_path)
    client = live_api(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data", timezone="UTC"))
    page = client.get(f"/runs/{rid}/report.html", headers=STAFF)
    assert page.status_code == 200, page.text[:500]
    assert "UTC+00:00" in page.text and "UTC+08:00" not in page.text


def test_summary_in_chinese_only_with_lang_zh(grid_report, tmp_path):
    """``lang="zh"`` (``yizhan report --lang zh``): the printed summary without its English labels; the default
    keeps Chinese with English beside."""
    if report_map.cjk_font() is None:
        pytest.skip("no CJK font installed (Debian: fonts-wqy-zenhei or fonts-noto-cjk)")
    zh = _pdf_text(render(grid_report, "pdf", lang="zh"), tmp_path)
    page = render(grid_report, "html", lang="zh").decode("utf-8")
    for text in (zh, page):
        for words in ("驿站覆盖缺口报告", "覆盖率", "西街道", "合计", "个缺口", "分单元", "直线距离"):
            assert words in text, words
        for english in ("Top gaps", "covered share", "By township", "straight line", "合计 total", "unmet demand"):
            assert english not in text, english
    both = _pdf_text(render(grid_report, "pdf"), tmp_path)
    assert "Top gaps" in both and "covered share" in both
    with pytest.raises(InvalidInput, match="zh-en"):
        write_report(grid_report, tmp_path / "x", ["pdf"], lang="en")
