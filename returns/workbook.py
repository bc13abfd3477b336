"""The return as an Excel workbook a union office prints and files.

Sheets: 封面 cover (union, area, period, preparer, reviewer, date, the run used, headline figures), 站点变化 changes
(one row per changed field), 街道覆盖 township shares (now, last month, change, with a totals row), 缺口 top gaps
(with street names), 站点 stations (the registry as recorded: amenities as Chinese labels, hours). Each prints on
A4 fit to the page width with its header row on every page (``reports.workbook``); dates are Excel dates in local
time; every text is a text cell.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, cast

import pandas as pd

from yizhan.reports.workbook import (
    DATE_FORMAT,
    MONTH_FORMAT,
    TOTAL_LABEL,
    local_naive,
    plain,
    workbook_bytes,
    write_table,
)
from yizhan.returns.snapshot import KIND_LABELS, hours_of, shown
from yizhan.returns.store import PENDING, MonthReturn

SHEETS = {"cover": "封面 cover", "changes": "站点变化 changes", "townships": "街道覆盖 townships",
          "gaps": "缺口 gaps", "stations": "站点 stations"}
CHANGE_COLUMNS = {"change": "类别 change", "id": "编号 id", "name": "名称 name", "field": "项目 field",
                  "old": "原值 old", "new": "新值 new", "note": "说明 note"}
TOWNSHIP_COLUMNS = {"name": "街道 township", "stations": "驿站数 stations", "demand": "需求 demand",
                    "demand_covered": "已覆盖需求 covered demand", "share_now": "本月覆盖率 covered share now",
                    "share_last": "上月覆盖率 last month", "change": "变化 change"}
GAP_COLUMNS = {"rank": "排名 rank", "demand": "未覆盖需求 unmet demand", "area_km2": "面积(平方公里) area km²",
               "street": "附近道路 street", "location": "位置 location", "nearest_station": "最近驿站 nearest station",
               "nearest_distance_m": "最近距离(米) distance m", "lon": "经度 lon", "lat": "纬度 lat"}
STATION_COLUMNS = {"id": "编号 id", "name": "名称 name", "kind": "类型 kind", "status": "状态 status",
                   "host": "承办类型 host type", "host_name": "承办单位 host", "phone": "联系电话 phone",
                   "address": "地址 address", "township": "街道 township", "amenities": "服务设施 amenities",
                   "hours": "开放时间 hours", "seats": "座位数 seats", "stars": "星级 stars", "lon": "经度 lon",
                   "lat": "纬度 lat"}
FORMATS = {"demand": "#,##0.0", "demand_covered": "#,##0.0", "share_now": "0.0%", "share_last": "0.0%",
           "change": '+0.0%;-0.0%;0.0%', "stations": "0", "rank": "0", "area_km2": "0.000",
           "nearest_distance_m": "#,##0", "lon": "0.000000", "lat": "0.000000", "seats": "0", "stars": "0"}
SHARE_CHANGE_FORMAT = FORMATS["change"]


def changes_table(ret: MonthReturn) -> pd.DataFrame:
    """One row per changed field of each station opened, closed or changed (a station with no other field
    changed gets one row without a field)."""
    rows = []
    for c in ret.changes.all:
        base = {"change": KIND_LABELS[c.kind], "id": c.id, "name": c.name, "note": c.note}
        if not c.fields:
            rows.append({**base, "field": None, "old": None, "new": None})
        for f in c.fields:
            rows.append({**base, "field": f.label, "old": f.old, "new": f.new})
    return pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))


def gaps_frame(ret: MonthReturn) -> pd.DataFrame:
    """The return's top gaps (as recorded) in the sheet's columns."""
    g = pd.DataFrame(ret.record.gaps)
    for k in GAP_COLUMNS:
        if k not in g:
            g[k] = None
    return g[list(GAP_COLUMNS)]


def stations_frame(ret: MonthReturn) -> pd.DataFrame:
    """The registry as the return recorded it, with Chinese labels for codes and the hours as written."""
    st = ret.record.stations
    return pd.DataFrame({
        "id": [s["id"] for s in st], "name": [s["name"] for s in st],
        "kind": [shown("kind", s) for s in st], "status": [shown("status", s) for s in st],
        "host": [s["host"] and shown("host", s) for s in st], "host_name": [s.get("host_name") for s in st],
        "phone": [s.get("phone") for s in st], "address": [s.get("address") for s in st],
        "township": [s.get("township") for s in st],
        "amenities": [shown("amenities", s) if s.get("amenities") else None for s in st],
        "hours": [hours_of(s) for s in st], "seats": [s.get("seats") for s in st],
        "stars": [s.get("stars") for s in st], "lon": [s["lon"] for s in st], "lat": [s["lat"] for s in st],
    }, columns=list(STATION_COLUMNS))


def _share(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def cover_rows(ret: MonthReturn) -> list[tuple[str, Any, str | None]]:
    """The cover sheet: (label, value, Excel number format or None)."""
    r, p, tz = ret.record, ret.previous, ret.timezone
    f = r.figures
    now_share = _share(f.get("covered_share"))
    last_share = _share(p.figures.get("covered_share")) if p else None
    mode = "沿路网 along the streets" if f.get("mode") == "network" else "直线距离 straight line"
    run = (f"#{f.get('run_id')} · {mode} · 半径 radius {f.get('radius_m', 0):,.0f} 米 m"
           if f.get("run_id") is not None else "—")
    rows: list[tuple[str, Any, str | None]] = [
        ("工会 union", r.union_name, None),
        ("区域 area", r.area.display_name or r.area.name, None),
        ("区域代码 area code name", r.area.name, None),
        ("报告期 period", datetime(r.period.year, r.period.month, 1), MONTH_FORMAT),
        ("填报人 preparer", r.preparer, None),
        ("审核人 reviewer", r.reviewer, None),
        ("制表日期 made at", local_naive(r.made_at, tz), DATE_FORMAT),
        ("所用分析 coverage run", run, None),
        ("分析时间 run made at", local_naive(f.get("created_at"), tz), DATE_FORMAT),
        ("本月覆盖率 covered share now", now_share, "0.0%"),
        ("上月覆盖率 covered share last month", last_share, "0.0%"),
        ("变化 change", now_share - last_share if now_share is not None and last_share is not None else None,
         SHARE_CHANGE_FORMAT),
        ("运营驿站 active stations", r.active_stations, "0"),
        ("上月运营驿站 active stations last month", p.active_stations if p else None, "0"),
    ]
    if p is None:
        rows.append(("与上期比较 compared with", "首份月报，无上期可比 first return: no earlier return to compare with",
                     None))
    else:
        rows += [("与上期比较 compared with", f"{p.period.label_zh} 月报 return of {p.period.label}", None),
                 ("开通 opened", len(ret.changes.opened), "0"), ("关闭 closed", len(ret.changes.closed), "0"),
                 ("变更 changed", len(ret.changes.changed), "0")]
        rows += [("注意 note", " / ".join(note), None) for note in ret.notes()]
    rows.append(("拥挤、夜间关闭驿站 crowded, night-closed", PENDING, None))
    if not f.get("streets_source"):
        rows.append(("道路名称 street names", "无：区域未记录路网数据 none: the area has no remembered extract "
                                              "(yizhan network build --osm FILE)", None))
    return rows


def return_xlsx(ret: MonthReturn) -> bytes:
    """The return as XLSX bytes (sheets ``SHEETS``)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.worksheet import Worksheet

    title = f"{ret.record.union_name} · {ret.area.display_name or ret.area.name} · {ret.period.label_zh} 驿站月报"
    wb = Workbook()
    ws = cast(Worksheet, wb.active)
    ws.title = SHEETS["cover"]
    ws.append(["项目 item", "内容 value"])
    for label, value, fmt in cover_rows(ret):
        ws.append([label, plain(value)])
        if fmt:
            ws.cell(ws.max_row, 2).number_format = fmt
    for cell in ws[1]:
        cell.font, cell.fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 36, 70
    ws.freeze_panes = "A2"

    changes = changes_table(ret)
    c = ret.changes
    write_table(wb.create_sheet(SHEETS["changes"]), changes, CHANGE_COLUMNS, FORMATS, totals={
        "name": (f"开通 opened {len(c.opened)} · 关闭 closed {len(c.closed)} · 变更 changed {len(c.changed)}"
                 if ret.previous else "首份月报，无上期可比 first return: nothing to compare with")})
    towns = ret.townships()
    demand = float(towns["demand"].sum())
    covered = float(towns["demand_covered"].sum())
    now_share = _share(ret.record.figures.get("covered_share"))
    last_share = _share(ret.previous.figures.get("covered_share")) if ret.previous else None
    write_table(wb.create_sheet(SHEETS["townships"]), towns, TOWNSHIP_COLUMNS, FORMATS, totals={
        "stations": int(pd.to_numeric(towns["stations"], errors="coerce").fillna(0).sum()), "demand": demand,
        "demand_covered": covered, "share_now": now_share, "share_last": last_share,
        "change": now_share - last_share if now_share is not None and last_share is not None else None})
    gaps = gaps_frame(ret)
    write_table(wb.create_sheet(SHEETS["gaps"]), gaps, GAP_COLUMNS, FORMATS, totals={
        "rank": f"{TOTAL_LABEL} ({len(gaps)})", "demand": float(pd.to_numeric(gaps["demand"]).sum()),
        "area_km2": float(pd.to_numeric(gaps["area_km2"]).sum())})
    stations = stations_frame(ret)
    write_table(wb.create_sheet(SHEETS["stations"]), stations, STATION_COLUMNS, FORMATS, totals={
        "name": f"{len(stations)} 个驿站 stations, 运营 {ret.record.active_stations} active",
        "seats": int(pd.to_numeric(stations["seats"], errors="coerce").fillna(0).sum())})
    return workbook_bytes(wb, title=title, portrait=SHEETS["cover"])
