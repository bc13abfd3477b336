"""A run's figures by hour of the week and its crowded stations as the reports' tables: the 24 x 7 table of covered
share (hours of the day down, 周一…周日 across; a sheet of the workbook), the figures by hour for the summaries and
the crowded stations. The picture of the table is ``hour_chart``.

Hour of the week ``h = weekday * 24 + hour`` (Monday 0, 0–167) in the area's local wall-clock time; shares are
0–1 (NaN where an hour has no demand); demand is in orders. Runs without hours (``RunData.hours`` None) or without
capacity (``RunData.loads`` None) get none of this: each function says what it returns then.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from yizhan.coverage.runs import RunData
from yizhan.maps.hours import band_share, hour_label, share_grid
from yizhan.maps.style import SHARE_SCALE
from yizhan.reports.workbook import HEADER_FILL, plain
from yizhan.weekly.week import DAYS_EN, DAYS_ZH

HOUR_SHEET = "分时覆盖率 by hour"
CROWDED_SHEET = "拥挤驿站 crowded"
WORST_SHOWN = 5
"""Worst hours listed in the printed summary."""
CROWDED_SHOWN = 12
"""Crowded stations listed in the printed summary (all of them in the workbook and the GeoPackage)."""
CROWDED_COLUMNS = {
    "station_id": "驿站编号 id",
    "name": "名称 name",
    "seats": "座位 seats",
    "peak_hour": "高峰时段 peak hour",
    "peak_demand": "高峰需求(单/时) demand at peak",
    "per_seat": "每座每小时订单 orders per seat per hour",
    "lon": "经度 lon",
    "lat": "纬度 lat",
}
CROWDED_FORMATS = {"seats": "0", "peak_demand": "#,##0.0", "per_seat": "0.00", "lon": "0.000000",
                   "lat": "0.000000"}


def share_table(run: RunData) -> pd.DataFrame | None:
    """The 24 x 7 covered share (rows: hour of the day 0–23; columns ``周一``…``周日``), NaN where an hour has no
    demand; None for a run without hours."""
    hours = run.hours
    if hours is None:
        return None
    return pd.DataFrame(share_grid(hours.share), index=pd.RangeIndex(24, name="hour"), columns=list(DAYS_ZH))


def week_share(run: RunData) -> float | None:
    """The covered share of the week's demand-hours (0–1; NaN without demand); None for a run without hours."""
    hours = run.hours
    return None if hours is None else band_share(np.asarray(hours.demand), np.asarray(hours.covered))


def worst_hours(run: RunData, n: int = WORST_SHOWN) -> list[dict[str, Any]]:
    """The run's worst hours (``hour``, ``label`` Chinese first, ``demand``, ``covered``, ``share``), as stored in
    its figures, else the ``n`` hours with demand of lowest covered share; [] without hours."""
    hours = run.hours
    if hours is None:
        return []
    stored = hours.figures.get("worst_hours")
    if stored is not None:
        return [{"hour": int(w["hour"]), "label": hour_label(int(w["hour"])), "demand": float(w["demand"]),
                 "covered": float(w["covered"]), "share": float(w["share"])} for w in stored[:n]]
    share = hours.share
    order = [int(h) for h in np.argsort(np.where(np.isfinite(share), share, np.inf), kind="stable")
             if np.isfinite(share[h])][:n]
    return [{"hour": h, "label": hour_label(h), "demand": float(hours.demand[h]), "covered": float(hours.covered[h]),
             "share": float(share[h])} for h in order]


def hour_figures(run: RunData) -> list[tuple[str, str, Any, str]]:
    """The figures by hour for a summary, as ``(Chinese label, English label, value, unit)``: the share of the
    week's demand-hours covered, the uncovered demand-hours, the night gaps (cells, demand), what was measured
    (order points or cell centres) and, with capacity, how many stations are crowded; [] without hours or loads."""
    out: list[tuple[str, str, Any, str]] = []
    hours = run.hours
    if hours is not None:
        f = hours.figures
        out.append(("全周分时覆盖率", "covered share of the week's demand-hours", week_share(run), "%"))
        uncovered = f.get("uncovered_demand_hours")
        if uncovered is None:
            uncovered = float(np.sum(hours.demand) - np.sum(hours.covered))
        out.append(("未覆盖需求小时", "uncovered demand-hours", float(uncovered), "单 orders"))
        if f.get("night_gap_cells") is not None:
            out.append(("夜间缺口网格", "night-gap cells", int(f["night_gap_cells"]), "个"))
        if f.get("night_gap_demand") is not None:
            out.append(("夜间缺口需求", "night-gap demand", float(f["night_gap_demand"]), "单 orders"))
        measured = f.get("measured")
        if measured:
            out.append(("计算依据", "measured on", "订单点 order points" if measured == "points"
                        else "网格中心 cell centres", ""))
    loads = run.loads
    if loads is not None and "crowded" in loads:
        out.append(("拥挤驿站", "crowded stations", int(loads["crowded"].fillna(False).astype(bool).sum()), "个"))
    return out


def crowded_table(run: RunData) -> pd.DataFrame | None:
    """The crowded stations (most orders per seat first): ``station_id, name, seats, peak_hour`` (its label,
    Chinese first), ``peak_demand`` (orders per hour within reach at the peak), ``per_seat``, ``lon, lat``
    (WGS 84); None for a run without capacity."""
    loads = run.loads
    if loads is None:
        return None
    rows = loads[loads["crowded"].fillna(False).astype(bool).to_numpy()] if len(loads) else loads
    rows = rows.sort_values("per_seat", ascending=False, na_position="last")
    return pd.DataFrame({
        "station_id": rows["station_id"].astype(str).to_numpy(),
        "name": rows["name"].to_numpy(),
        "seats": pd.to_numeric(rows["seats"], errors="coerce").astype(float).to_numpy(),
        "peak_hour": [hour_label(int(h)) if not pd.isna(h) else None for h in rows["peak_hour"]],
        "peak_demand": rows["peak_demand"].astype(float).round(3).to_numpy(),
        "per_seat": rows["per_seat"].astype(float).round(4).to_numpy(),
        "lon": rows["lon"].astype(float).round(6).to_numpy(),
        "lat": rows["lat"].astype(float).round(6).to_numpy(),
    })


def write_hour_sheet(ws: Any, table: pd.DataFrame) -> None:
    """The 24 x 7 covered share on the openpyxl sheet ``ws``: a header row (``时 hour``, ``周一 Mon`` …), one row per
    hour of the day (its label ``00:00–01:00`` as text), the shares as numbers in percent format (empty where an
    hour has no demand), a fixed red–yellow–green colour scale from 0 % through 50 % to 100 %, and a note row."""
    from openpyxl.formatting.rule import ColorScaleRule
    from openpyxl.styles import Alignment, Font, PatternFill

    ws.append(["时 hour", *[f"{d} {e}" for d, e in zip(DAYS_ZH, DAYS_EN, strict=True)]])
    for h, row in zip(range(24), table.to_numpy(dtype=float), strict=True):
        ws.append([f"{h:02d}:00–{h + 1:02d}:00", *[plain(v) for v in row]])
        for j in range(2, 9):
            ws.cell(ws.max_row, j).number_format = "0.0%"
    bold, fill = Font(bold=True), PatternFill("solid", fgColor=HEADER_FILL)
    for cell in ws[1]:
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(horizontal="center")
    ws.conditional_formatting.add("B2:H25", ColorScaleRule(  # type: ignore[no-untyped-call]
        start_type="num", start_value=0, start_color=SHARE_SCALE[0].lstrip("#").upper(),
        mid_type="num", mid_value=0.5, mid_color=SHARE_SCALE[2].lstrip("#").upper(),
        end_type="num", end_value=1, end_color=SHARE_SCALE[-1].lstrip("#").upper()))
    ws.append([])
    ws.append(["覆盖率：该小时需求中位于开放驿站服务半径内的比例（当地时间）；空白：该小时无需求。"
               "Covered share of each hour's demand within reach of a station open then (local time); "
               "empty: no demand in that hour."])
    ws.column_dimensions["A"].width = 14
    for letter in "BCDEFGH":
        ws.column_dimensions[letter].width = 11
    ws.freeze_panes = "B2"
