"""The planners' map of a run by hour of the week: the hour selector (bands of ``weekly.week.BANDS`` and the whole
week), the cells that are gaps of the chosen band, the band's covered share, the night gaps and the crowded
stations; in a real browser (the system Chromium driven by Playwright, offline) at 390 x 844 (a phone) and
1366 x 768 (a desktop), screenshots saved under /tmp. A run without hours gets none of it.

The run is a real straight-line run of the demo area loaded with ``load_run``; its figures by hour, its stations'
loads and its cells' hour columns are made here by plain loops (a few opening patterns by cell), so that what the
page draws is checked against figures computed independently of the map's code.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from browser import open_map_file
from sqlalchemy import Engine

from yizhan.areas import AreaInfo
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.runs import RunData, RunHours, load_run
from yizhan.maps.folium_map import write_map
from yizhan.maps.layers import LAYER_BAND_GAPS, LAYER_CROWDED, LAYER_NIGHT_GAPS
from yizhan.maps.run_map import map_from_run
from yizhan.weekly.week import BANDS

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
SHOTS = Path("/tmp")
PATTERNS = (
    [(d, h) for d in range(7) for h in range(24)],  # always
    [(d, h) for d in range(7) for h in range(8, 21)],  # every day 08–21
    [(d, h) for d in range(5) for h in range(9, 18)],  # workdays 09–18
    [(d, h) for d in range(7) for h in [*range(11, 14), *range(17, 20)]],  # meals only
)
"""Hours (weekday, hour) at which a covered cell counts as covered, by ``cell index % 4``."""
PROFILE = [1.0 + 3.0 * (h % 24 in (11, 12, 18, 19)) + 0.5 * (h % 24 >= 8) for h in range(168)]
"""A cell's demand by hour of the week, relative to its weight: meal peaks."""


def plain_hours(run: RunData) -> list[list[bool]]:
    """Covered at each hour of the week, per cell: the run's covered cells by :data:`PATTERNS`, the others never."""
    out = []
    for i, covered in enumerate(run.cells["covered"]):
        row = [False] * 168
        if covered:
            for d, h in PATTERNS[i % len(PATTERNS)]:
                row[d * 24 + h] = True
        out.append(row)
    return out


def with_hours(run: RunData) -> RunData:
    """``run`` given ``hours``, ``loads`` and the cells' ``covered_hours``, ``hours_covered``, ``night_gap``
    (covered at a day hour 06–22 and not at a night hour 22–06), all computed by plain loops."""
    masks = plain_hours(run)
    weights = [float(w) for w in run.cells["weight"]]
    demand, covered = [0.0] * 168, [0.0] * 168
    for w, row in zip(weights, masks, strict=True):
        for h in range(168):
            demand[h] += w * PROFILE[h] / sum(PROFILE)
            covered[h] += w * PROFILE[h] / sum(PROFILE) if row[h] else 0.0
    night = [h % 24 >= 22 or h % 24 < 6 for h in range(168)]
    packed, night_gap = [], []
    for row in masks:
        b = bytearray(21)
        for h in range(168):
            if row[h]:
                b[h // 8] |= 1 << (h % 8)
        packed.append(bytes(b))
        night_gap.append(any(row[h] for h in range(168) if not night[h]) and
                         any(not row[h] for h in range(168) if night[h]))
    cells = run.cells.copy()
    cells["covered_hours"] = packed
    cells["hours_covered"] = [sum(r) for r in masks]
    cells["night_gap"] = night_gap
    worst = sorted(range(168), key=lambda h: covered[h] / demand[h] if demand[h] else 1.0)[:5]
    figures = {"uncovered_demand_hours": sum(demand) - sum(covered),
               "worst_hours": [{"hour": h, "label_zh": f"h{h}", "label_en": f"h{h}", "demand": demand[h],
                                "covered": covered[h], "share": covered[h] / demand[h]} for h in worst],
               "night_gap_cells": sum(night_gap),
               "night_gap_demand": sum(w for w, g in zip(weights, night_gap, strict=True) if g) / 4,
               "measured": "cells", "week_start": "2026-11-30", "holidays": False, "unknown_hours_stations": 1,
               "profile": "default"}
    hours = RunHours(np.array(demand), np.array(covered), np.full(168, len(run.stations)),
                     pd.DataFrame({"name": [], "hour": [], "demand": [], "covered": []}), figures)
    st = run.stations
    rows = []
    for i, (sid, name, seats, geom) in enumerate(zip(st["external_id"], st["name"], st["seats"], st.geometry,
                                                     strict=True)):
        seat = int(seats) if seats is not None and not pd.isna(seats) else 4
        peak = 24 * (i % 7) + 12
        per_seat = (i % 5) * 1.3
        rows.append({"station_id": sid, "name": name, "seats": seat, "peak_hour": peak,
                     "peak_demand": per_seat * seat, "per_seat": per_seat, "crowded": per_seat > 3.0,
                     "lon": geom.x, "lat": geom.y})
    return RunData(run.summary, run.area, run.stations, cells, run.gaps, run.params, run.covered_geom,
                   run.unit_polygons, run.unit_table, hours, pd.DataFrame(rows))


def band_gap_cells(run: RunData, masks: list[list[bool]], hours: list[int]) -> list[int]:
    """Cells with demand covered in fewer than half of ``hours``, by plain loops."""
    out = []
    for i, (w, row) in enumerate(zip(run.cells["weight"], masks, strict=True)):
        if w > 0 and 2 * sum(1 for h in hours if row[h]) < len(hours):
            out.append(i)
    return out


@pytest.fixture
def runs(engine: Engine, sample_area: AreaInfo, tmp_path: Path) -> tuple[RunData, RunData, Path]:
    """A straight-line run of the demo area as stored (no hours) and with hours; the map of the latter written."""
    summary = run_coverage(engine, radius_m=600)
    plain = load_run(engine, summary["run_id"])
    hourly = with_hours(plain)
    path = write_map(map_from_run(hourly), tmp_path / "out" / "map_hours.html")
    return plain, hourly, path


def test_a_run_without_hours_has_no_selector(runs: tuple[RunData, RunData, Path]) -> None:
    plain, hourly, path = runs
    page = map_from_run(plain).get_root().render()
    for word in (LAYER_BAND_GAPS, LAYER_NIGHT_GAPS, LAYER_CROWDED, "yz-band", "时段缺口", "夜间缺口", "拥挤驿站"):
        assert word not in page, word
    assert "week: null" in page
    assert "分时覆盖率" not in page and "夜间缺口" not in page
    written = path.read_text(encoding="utf-8")
    assert "week: {group:" in written and "时段缺口" in written and "拥挤驿站" in written
    # the summary panel: the share of the week's demand-hours covered, the uncovered demand-hours, the night gaps
    assert hourly.hours is not None
    f = hourly.hours.figures
    week = sum(hourly.hours.covered) / sum(hourly.hours.demand)
    assert f"<tr><th>分时覆盖率 Covered, by hour</th><td>{week * 100:.1f}%</td></tr>" in written
    assert f"<tr><th>夜间缺口 Night gaps</th><td>{f['night_gap_cells']:,} 网格 cells</td></tr>" in written
    assert "<tr><th>计算依据 Measured on</th><td>网格中心 cell centres</td></tr>" in written
    # the page is light: one integer of band bits per gap cell, not a layer per hour
    bits = re.search(r'"bits":\[([\d,]*)\]', written)
    assert bits is not None
    values = [int(v) for v in bits[1].split(",") if v]
    assert values and all(0 < v < 2 ** 13 for v in values)
    assert len(values) <= len(hourly.cells)


def _inside(box: dict[str, float], size: dict[str, int]) -> bool:
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size["width"] \
        and box["y"] + box["height"] <= size["height"]


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_choosing_a_band_draws_its_gap_cells(runs: tuple[RunData, RunData, Path], browser: Any,
                                             viewport: dict[str, int]) -> None:
    _, run, path = runs
    assert run.hours is not None and run.loads is not None
    masks = plain_hours(run)
    context, page, errors = open_map_file(browser, path, viewport)
    try:
        select = page.locator("#yz-band")
        assert select.is_visible() and _inside(page.locator(".yz-week").bounding_box(), viewport)
        options = select.locator("option").all_inner_texts()
        assert len(options) == len(BANDS) + 1 and options[-1] == "全周 all week"
        assert select.locator("optgroup").evaluate_all("gs => gs.map(g => g.label)") == [
            "工作日 workdays", "周末 weekend"]
        # the whole week at first: cells covered in fewer than 84 of the 168 hours
        week = band_gap_cells(run, masks, list(range(168)))
        assert sorted(page.evaluate("yizhanMap.band.drawn()")) == week
        assert page.locator("path.yz-band-gap").count() == len(week)
        chosen = {"phone": "workday_night", "desktop": "weekend_lunch"}["phone" if viewport == PHONE else "desktop"]
        band = BANDS[chosen]
        assert select.locator(f"option[value='{list(BANDS).index(chosen)}']").inner_text() == \
            {"workday_night": "夜 21–24时 night", "weekend_lunch": "午 10–14时 lunch"}[chosen]
        select.select_option(value=str(list(BANDS).index(chosen)))
        hours = [int(h) for h in band.hours]
        expected = band_gap_cells(run, masks, hours)
        assert expected != week and len(expected) > 0
        page.wait_for_function(f"document.querySelector('.folium-map').dataset.yzBand === '{chosen}'")
        assert sorted(page.evaluate("yizhanMap.band.drawn()")) == expected
        assert page.locator("path.yz-band-gap").count() == len(expected)  # drawn in the page, one path a cell
        share = sum(run.hours.covered[h] for h in hours) / sum(run.hours.demand[h] for h in hours)
        assert page.locator(".yz-week-band").inner_text() == f"{band.zh} {band.en}"  # which days, once chosen
        assert page.locator(".yz-week-share").inner_text() == \
            f"覆盖率 covered {share * 100:.1f}% · 缺口网格 gap cells {len(expected)}"
        # on Amap (GCJ-02) the same cells, shifted
        first = page.locator("path.yz-band-gap").first.get_attribute("d")
        page.evaluate("yizhanMap.use('gcj02')")
        assert page.locator("path.yz-band-gap").count() == len(expected)
        assert page.locator("path.yz-band-gap").first.get_attribute("d") != first
        page.evaluate("yizhanMap.use('wgs84')")
        # night gaps and crowded stations as layers of their own
        assert page.locator("path.yz-night-gap").count() >= 1
        crowded = run.loads[run.loads["crowded"]]
        assert page.locator("path.yz-crowded").count() == len(crowded) > 0
        if viewport == PHONE:
            page.screenshot(path=str(SHOTS / "yizhan_map_hours_390.png"))
            # the drawer still opens over the map, the selector stays reachable below it
            page.locator("#yz-drawer-toggle").tap()
            assert page.locator("#yz-legend").is_visible()
            assert "时段缺口" in page.locator("#yz-legend").inner_text()
            page.screenshot(path=str(SHOTS / "yizhan_map_hours_390_panels.png"))
            page.locator("#yz-drawer-toggle").tap()
        else:
            assert "少于一半" not in page.locator("#yz-legend").inner_text()  # the rule is said as "不足一半"
            assert "不足一半" in page.locator("#yz-legend").inner_text()
            page.screenshot(path=str(SHOTS / "yizhan_map_hours_1366.png"))
        # a crowded station's popup: orders per seat at its peak hour, Chinese first
        ring = page.locator("path.yz-crowded").first
        box = ring.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 1)  # the ring's top edge, not the station
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(state="visible")
        text = popup.inner_text()
        page.wait_for_timeout(400)  # the pan that clears the panels
        page.screenshot(path=str(SHOTS / f"yizhan_map_hours_{viewport['width']}_crowded.png"))
        assert "拥挤驿站 Crowded station" in text and "每座每小时订单 Orders per seat per hour" in text
        assert text.index("每座每小时订单") < text.index("Orders per seat")
        assert any(f"{float(v):.1f}" in text and str(n) in text
                   for v, n in zip(crowded["per_seat"], crowded["name"], strict=True))
        # a band given in the link is chosen on opening
        page.goto("about:blank")
        page.goto(path.as_uri() + "#band=weekend_early")
        page.wait_for_function("window.yizhanMap !== undefined && yizhanMap.band.chosen() === 'weekend_early'")
        early = band_gap_cells(run, masks, [int(h) for h in BANDS["weekend_early"].hours])
        assert sorted(page.evaluate("yizhanMap.band.drawn()")) == early
        assert not errors, errors
    finally:
        context.close()


def test_a_stored_run_by_hour_with_capacity(engine: Engine, sample_area: AreaInfo, tmp_path: Path) -> None:
    """A run stored by the analysis itself (by hour of the week, with capacity) reaches the map as stored: its
    cells' band bits are those of their stored hours, its crowded stations are ringed."""
    summary = run_coverage(engine, radius_m=600, by_hour=True, capacity=True)
    run = load_run(engine, summary["run_id"])
    assert run.hours is not None and run.loads is not None and run.loads["crowded"].any()
    run.loads.loc[run.loads.index[run.loads["crowded"]][0], "seats"] = pd.NA  # seats unknown
    page = map_from_run(run).get_root().render()
    assert "<tr><th>座位 Seats</th><td>未登记 not recorded</td></tr>" in page
    assert "week: {group:" in page
    bits = re.search(r'"bits":\[([\d,]*)\]', page)
    cells = re.search(r'"cells":\[([\d,]*)\]', page)
    assert bits is not None and cells is not None
    drawn = dict(zip((int(c) for c in cells[1].split(",") if c), (int(b) for b in bits[1].split(",") if b),
                     strict=True))
    for i, (packed, weight) in enumerate(zip(run.cells["covered_hours"], run.cells["weight"], strict=True)):
        hours = [h for h in range(168) if packed is not None and packed[h // 8] >> (h % 8) & 1]
        week_gap = weight > 0 and 2 * len(hours) < 168
        assert bool(drawn.get(i, 0) >> len(BANDS) & 1) == week_gap, i
    crowded = int(run.loads["crowded"].sum())
    assert page.count("拥挤驿站 Crowded station</div>") == 2 * crowded  # both coordinate systems
