"""The reports of a run by hour of the week and with capacity: the 24 x 7 covered share as a sheet of the workbook
(read back equal to ``RunHours.share``) and as a picture on a second page of the PDF summary (and in the HTML),
the figures by hour and the worst hours in the summaries, the crowded stations as a sheet, a PDF block and a
GeoPackage layer, no cell text made a formula; a run without hours reports exactly as before.

The run is a real straight-line run of the demo area; its hours, loads and cell columns are made by plain loops
(``test_map_hours.with_hours``).
"""

from __future__ import annotations

import base64
import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
from sqlalchemy import Engine
from test_map_hours import with_hours

from yizhan.areas import AreaInfo
from yizhan.coverage.analysis import run_coverage
from yizhan.reports.by_hour import CROWDED_COLUMNS, CROWDED_SHEET, HOUR_SHEET
from yizhan.reports.drawing import cjk_font
from yizhan.reports.run_report import FORMATS, GPKG_LAYERS, SHEETS, RunReport, load_report
from yizhan.reports.writer import render, write_report

SHOTS = Path("/tmp")
FORMULA_NAME = "=HYPERLINK(\"http://x\",\"驿站\")"
"""A station name that a spreadsheet would run as a formula if written as one."""


@pytest.fixture
def reports(engine: Engine, sample_area: AreaInfo) -> tuple[RunReport, RunReport]:
    """The report of a straight-line run of the demo area as stored (no hours), and the same with hours and
    loads; the first crowded station is named like a formula."""
    run_id = run_coverage(engine, radius_m=600)["run_id"]
    plain = load_report(engine, run_id)
    hourly = with_hours(plain.run)
    assert hourly.loads is not None
    first = hourly.loads.index[hourly.loads["crowded"]][0]
    hourly.loads.loc[first, "name"] = FORMULA_NAME
    return plain, dataclasses.replace(plain, run=hourly)


def _pdf(data: bytes, path: Path) -> tuple[int, str]:
    """The PDF's page count and its text (poppler)."""
    path.write_bytes(data)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)$", info, re.M)[1])  # type: ignore[index]
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    return pages, text


def test_workbook_has_the_hour_sheet_and_the_crowded_stations(reports: tuple[RunReport, RunReport],
                                                              tmp_path: Path) -> None:
    plain, report = reports
    hours, loads = report.run.hours, report.run.loads
    assert hours is not None and loads is not None
    path = tmp_path / "r.xlsx"
    path.write_bytes(render(report, "xlsx"))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [*SHEETS.values(), HOUR_SHEET, CROWDED_SHEET]
    ws = book[HOUR_SHEET]
    assert [c.value for c in ws[1]] == ["时 hour", "周一 Mon", "周二 Tue", "周三 Wed", "周四 Thu", "周五 Fri",
                                        "周六 Sat", "周日 Sun"]
    assert [ws.cell(r, 1).value for r in (2, 25)] == ["00:00–01:00", "23:00–24:00"]
    share = hours.share
    for day in range(7):
        for hour in range(24):
            cell = ws.cell(2 + hour, 2 + day)
            expected = share[day * 24 + hour]
            if np.isfinite(expected):
                assert isinstance(cell.value, float) and cell.value == pytest.approx(expected, abs=1e-12)
                assert cell.number_format == "0.0%"
            else:
                assert cell.value is None
    rules = [r for cf in ws.conditional_formatting for r in cf.rules]
    assert len(rules) == 1 and rules[0].type == "colorScale"
    assert int(ws.page_setup.paperSize) == 9 and ws.print_title_rows == "$1:$1"  # A4
    # pandas reads the same 24 x 7 back
    grid = pd.read_excel(path, sheet_name=HOUR_SHEET, nrows=24).iloc[:, 1:].to_numpy(dtype=float)
    np.testing.assert_allclose(grid, share.reshape(7, 24).T, equal_nan=True)
    # the crowded stations, most orders per seat first; a name never becomes a formula
    cs = book[CROWDED_SHEET]
    assert [c.value for c in cs[1]] == list(CROWDED_COLUMNS.values())
    crowded = loads[loads["crowded"]].sort_values("per_seat", ascending=False)
    got = pd.read_excel(path, sheet_name=CROWDED_SHEET)
    assert list(got[CROWDED_COLUMNS["station_id"]].astype(str)) == list(crowded["station_id"].astype(str))
    assert list(got[CROWDED_COLUMNS["per_seat"]]) == pytest.approx(list(crowded["per_seat"]), abs=1e-4)
    names = [cs.cell(r, 2) for r in range(2, cs.max_row + 1)]
    risky = [c for c in names if c.value == FORMULA_NAME]
    assert len(risky) == 1 and risky[0].data_type == "s"
    assert all(c.data_type != "f" for row in book[HOUR_SHEET].iter_rows() for c in row)
    # the summary sheet: the figures by hour
    summary = dict(zip(*(pd.read_excel(path, sheet_name=SHEETS["summary"]).iloc[:, i] for i in (0, 1)),
                       strict=True))
    assert float(summary["未覆盖需求小时 uncovered demand-hours"]) == pytest.approx(
        hours.figures["uncovered_demand_hours"])
    assert int(summary["夜间缺口网格 night-gap cells"]) == hours.figures["night_gap_cells"]
    assert int(summary["拥挤驿站 crowded stations"]) == len(crowded)
    assert str(summary["最差时段 worst hours"]).startswith("周")
    # a run without hours: the four sheets as before
    plain_path = tmp_path / "plain.xlsx"
    plain_path.write_bytes(render(plain, "xlsx"))
    assert openpyxl.load_workbook(plain_path).sheetnames == list(SHEETS.values())
    assert "未覆盖需求小时 uncovered demand-hours" not in set(pd.read_excel(plain_path).iloc[:, 0])


@pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdfimages") is None,
                    reason="poppler-utils not installed")
def test_pdf_has_the_hour_picture_and_the_crowded_block(reports: tuple[RunReport, RunReport],
                                                         tmp_path: Path) -> None:
    plain, report = reports
    pages, text = _pdf(render(report, "pdf"), tmp_path / "hours.pdf")
    assert pages == 2
    page2 = text.split("\f")[1]
    flat = re.sub(r"\s+", " ", page2)
    if cjk_font() is not None:
        for words in ("分时段覆盖与驿站负荷", "周一", "周日", "最差时段", "未覆盖需求小时", "夜间缺口网格", "拥挤驿站",
                      "每座每小时订单", "< 50%", "≥ 95%", "无需求"):
            assert words in flat, words
    hours = report.run.hours
    assert hours is not None
    share = hours.share
    worst = int(np.nanargmin(share))
    assert f"{share[worst]:.1%}" in flat  # the worst hour's share, in the worst hours' table
    assert f"{share[worst] * 100:.0f}" in flat  # and in its square of the picture
    # the 24 x 7 squares are one picture on page 2
    images = subprocess.run(["pdfimages", "-list", str(tmp_path / "hours.pdf")], capture_output=True, text=True,
                            check=True).stdout.splitlines()[2:]
    assert [int(line.split()[0]) for line in images] == [2]
    width, height = (int(v) for v in images[0].split()[3:5])
    assert height > width > 0  # 24 hours down, 7 days across
    # the page rendered for a look
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "2", "-l", "2", str(tmp_path / "hours.pdf"),
                    str(SHOTS / "yizhan_report_hours_page2")], check=True)
    # in Chinese only
    pages, text = _pdf(render(report, "pdf", lang="zh"), tmp_path / "zh.pdf")
    page2 = text.split("\f")[1]
    assert pages == 2 and "Worst hours" not in page2 and "crowded" not in page2 and "Mon" not in page2
    if cjk_font() is not None:
        assert "最差时段" in page2 and "周一" in page2
    # a run without hours: one page, nothing of the hours
    pages, text = _pdf(render(plain, "pdf"), tmp_path / "plain.pdf")
    assert pages == 1 and "分时段" not in text and "拥挤驿站" not in text


def test_html_and_geopackage(reports: tuple[RunReport, RunReport], tmp_path: Path) -> None:
    plain, report = reports
    page = render(report, "html").decode("utf-8")
    pictures = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pictures) == 2 and base64.b64decode(pictures[1]).startswith(b"\x89PNG")
    (SHOTS / "yizhan_report_hours_grid.png").write_bytes(base64.b64decode(pictures[1]))
    assert "分时段覆盖率" in page and "拥挤驿站" in page and "最差时段" in page
    plain_page = render(plain, "html").decode("utf-8")
    assert len(re.findall(r"data:image/png;base64,", plain_page)) == 1 and "分时段" not in plain_page
    path = tmp_path / "r.gpkg"
    path.write_bytes(render(report, "gpkg"))
    layers = dict(pyogrio.list_layers(path))
    assert set(layers) == {*GPKG_LAYERS, "crowded_stations", "night_gaps"}
    loads = report.run.loads
    assert loads is not None
    crowded = gpd.read_file(path, layer="crowded_stations")
    assert crowded.crs.to_epsg() == 4326 and len(crowded) == int(loads["crowded"].sum())
    assert sorted(crowded["station_id"]) == sorted(loads.loc[loads["crowded"], "station_id"].astype(str))
    night = gpd.read_file(path, layer="night_gaps")
    assert len(night) == int(report.run.cells["night_gap"].sum())
    plain_path = tmp_path / "plain.gpkg"
    plain_path.write_bytes(render(plain, "gpkg"))
    assert set(dict(pyogrio.list_layers(plain_path))) == set(GPKG_LAYERS)


def test_a_stored_run_by_hour_with_capacity(engine: Engine, sample_area: AreaInfo, tmp_path: Path) -> None:
    """A run stored by the analysis itself (by hour, with capacity) in every format; a crowded station's seats
    unknown as loaded (pd.NA)."""
    run_id = run_coverage(engine, radius_m=600, by_hour=True, capacity=True)["run_id"]
    report = load_report(engine, run_id)
    hours, loads = report.run.hours, report.run.loads
    assert hours is not None and loads is not None and loads["crowded"].any()
    loads.loc[loads.index[loads["crowded"]][0], "seats"] = pd.NA
    paths = write_report(report, tmp_path / "out", FORMATS)
    grid = pd.read_excel(paths["xlsx"], sheet_name=HOUR_SHEET, nrows=24).iloc[:, 1:].to_numpy(dtype=float)
    np.testing.assert_allclose(grid, hours.share.reshape(7, 24).T, equal_nan=True)
    pages, text_ = _pdf(paths["pdf"].read_bytes(), tmp_path / "stored.pdf")
    assert pages == 2 and f"{hours.figures['uncovered_demand_hours']:,.1f}" in text_
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "2", "-l", "2", str(tmp_path / "stored.pdf"),
                    str(SHOTS / "yizhan_report_hours_stored")], check=True)
    crowded = gpd.read_file(paths["gpkg"], layer="crowded_stations")
    assert len(crowded) == int(loads["crowded"].sum()) and crowded["seats"].isna().sum() == 1
