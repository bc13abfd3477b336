"""``/console/runs``: the coverage runs of every area (area, method, profile, radius, local time, covered share),
a form that starts a run in the background (straight line or along the streets, walking or cycling, a radius in
metres; its progress on ``/console/jobs/{id}``), and each run's page (``/console/runs/{id}``): its figures, its
map (``/map?run=``) and every report format as a download through the session
(``/console/runs/{id}/files/{format}``).

The helpers that say a run's method, profile, share and time in Chinese and English are shared with the
comparison and recommendation pages.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from yizhan.accounts.sessions import SignedIn
from yizhan.areas import AreaInfo, list_areas
from yizhan.capacity.fca import LUO_QI_WEIGHTS
from yizhan.console.auth import CsrfChecked, SignedInUser, console_engine, console_settings
from yizhan.console.jobs import list_jobs
from yizhan.console.layout import render
from yizhan.console.progress import STATE_TEXT, Runner, refusal, to_job_page
from yizhan.coverage.runs import list_runs, station_loads_frame, summary_of
from yizhan.errors import InvalidInput, YizhanError, http_status
from yizhan.maps.formatting import local_time_text
from yizhan.maps.hours import share_grid
from yizhan.reports.hour_chart import SHARE_CLASS_BREAKS
from yizhan.reports.run_report import FORMATS, MEDIA_TYPES, load_report
from yizhan.reports.writer import file_name
from yizhan.reports.writer import render as render_report
from yizhan.weekly.week import LABELS_EN, LABELS_ZH

RUNS_PATH = "/console/runs"
RUNS_SHOWN = 100
"""The most runs the list shows (the newest)."""
MODE_TEXT = {"straight": ("直线", "straight line"), "network": ("沿街道", "along the streets")}
PROFILE_TEXT = {"walk": ("步行", "walking"), "bike": ("骑行", "cycling")}
_STEPS = " / ".join(f"{w:g}" for w in LUO_QI_WEIGHTS)
DECAY_TEXT = {"none": ("不衰减（2SFCA）", "no decay (2SFCA)"),
              "stepwise": (f"分段衰减（E2SFCA，{_STEPS}）", f"stepwise decay (E2SFCA, {_STEPS})"),
              "gaussian": ("高斯衰减（E2SFCA）", "gaussian decay (E2SFCA)")}
"""The capacity's distance decays, said in Chinese and English."""
MEASURED_TEXT = {"points": ("按订单点", "on the order points"), "cells": ("按网格中心", "on the cell centres")}
FORMAT_TEXT = {
    "csv": ("缺口表 CSV（Excel 可打开）", "gaps as CSV (opens in Excel)"),
    "xlsx": ("Excel 工作簿（概况、缺口、乡镇街道、驿站）", "Excel workbook (summary, gaps, townships, stations)"),
    "geojson": ("缺口 GeoJSON（QGIS）", "gaps as GeoJSON (QGIS)"),
    "gpkg": ("GeoPackage 图层（QGIS）", "GeoPackage layers (QGIS)"),
    "html": ("一页摘要（网页）", "one-page summary (HTML)"),
    "pdf": ("一页摘要（PDF，A4）", "one-page summary (PDF, A4)"),
}
"""Each report format of a run, said in Chinese and English."""
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; sandbox"
"""The policy of a report opened in the browser (the HTML summary): its own inline styles and images only."""

router = APIRouter(tags=["console"], include_in_schema=False)


def method_text(mode: str) -> str:
    """A run's method: ``直线 straight line`` or ``沿街道 along the streets``."""
    zh, en = MODE_TEXT.get(mode, (mode, mode))
    return f"{zh} {en}"


def profile_text(mode: str, profile: str | None) -> str:
    """How the riders move along the streets (``步行 walking``, ``骑行 cycling``); ``—`` for a straight-line run."""
    if mode != "network" or not profile:
        return "—"
    zh, en = PROFILE_TEXT.get(profile, (profile, profile))
    return f"{zh} {en}"


def share_text(share: float | None) -> str:
    """A covered share (0–1) as a percentage with one decimal: ``62.4%``."""
    return "—" if share is None else f"{float(share) * 100:.1f}%"


def radius_text(radius_m: float) -> str:
    """A radius in metres as people say it: ``800 米 m``, ``1.5 公里 km``."""
    r = float(radius_m)
    return f"{r:,.0f} 米 m" if r < 1000 else f"{r / 1000:g} 公里 km"


def area_labels(request: Request) -> dict[str, AreaInfo]:
    """The areas by code name."""
    with console_engine(request).connect() as conn:
        return {a.name: a for a in list_areas(conn)}


def area_text(areas: Mapping[str, AreaInfo], name: str) -> str:
    """An area's display name (its code name when it has none)."""
    info = areas.get(name)
    return info.display_name or name if info is not None else name


def run_row(summary: Mapping[str, Any], areas: Mapping[str, AreaInfo], timezone: str) -> dict[str, Any]:
    """A stored run as a row of the console's tables: its figures said in Chinese and English."""
    return {"id": summary["run_id"], "area": summary["area"], "area_text": area_text(areas, summary["area"]),
            "method": method_text(summary["mode"]), "profile": profile_text(summary["mode"], summary.get("profile")),
            "radius": radius_text(summary["radius_m"]), "when": local_time_text(summary["created_at"], timezone),
            "share": share_text(summary["covered_share"]), "covered_share": summary["covered_share"],
            "stations": summary["stations"], "demand": summary["demand_total"], "gaps": summary["gaps"]}


def _runs_page(request: Request, user: SignedIn, *, status_code: int = 200, error: str | None = None,
               form: Mapping[str, str] | None = None) -> HTMLResponse:
    settings = console_settings(request)
    areas = area_labels(request)
    rows = [run_row(s, areas, settings.timezone) for s in list_runs(console_engine(request), limit=RUNS_SHOWN)]
    with console_engine(request).connect() as conn:
        jobs = [j for j in list_jobs(conn, kind="coverage", limit=10) if j.state != "done"]
    values = {"area": next(iter(areas), ""), "mode": "network", "profile": "walk",
              "radius_m": f"{settings.radius_m:g}", "by_hour": "", "capacity": "", "decay": "none", **(form or {})}
    return render(request, "runs.html", status_code=status_code, user=user, runs=rows, areas=areas.values(),
                  jobs=jobs, error=error, form=values, modes=MODE_TEXT, decays=DECAY_TEXT,
                  profiles=PROFILE_TEXT, when=lambda t: local_time_text(t, settings.timezone), states=STATE_TEXT)


@router.get(RUNS_PATH, response_class=HTMLResponse)
def runs_page(request: Request, user: SignedInUser) -> HTMLResponse:
    """The stored runs, newest first, and the form that starts one."""
    return _runs_page(request, user)


def number_field(value: str, field: str, field_zh: str, expected: str, expected_zh: str) -> float:
    """A number typed into a form; InvalidInput naming the field, the value and what is accepted."""
    try:
        return float(value.strip().replace(",", ""))
    except ValueError:
        raise InvalidInput(f"{field_zh} {field}: {value!r}; 应为{expected_zh} / expected {expected}") from None


@router.post(RUNS_PATH, response_class=HTMLResponse)
def runs_start(request: Request, user: SignedInUser, _: CsrfChecked, runner: Runner,
               area: Annotated[str, Form(max_length=200)] = "",
               mode: Annotated[str, Form(max_length=20)] = "straight",
               profile: Annotated[str, Form(max_length=20)] = "walk",
               radius_m: Annotated[str, Form(max_length=30)] = "",
               by_hour: Annotated[str, Form(max_length=5)] = "",
               capacity: Annotated[str, Form(max_length=5)] = "",
               decay: Annotated[str, Form(max_length=20)] = "none") -> Response:
    """Start a coverage run of ``area`` in the background; a 303 to its progress page. A bad value shows the list
    again with one line naming the field, the value and what is accepted."""
    form = {"area": area, "mode": mode, "profile": profile, "radius_m": radius_m, "by_hour": by_hour,
            "capacity": capacity, "decay": decay}
    try:
        params: dict[str, Any] = {"mode": mode, "profile": profile, "by_hour": bool(by_hour),
                                  "capacity": bool(capacity), "decay": decay}
        if radius_m.strip():
            params["radius_m"] = number_field(radius_m, "radius_m", "服务半径", "metres, e.g. 1000",
                                              "米数，如 1000")
        job_id = runner.submit("coverage", area, params, user=user.name)
    except YizhanError as exc:
        return _runs_page(request, user, status_code=http_status(exc), error=str(exc), form=form)
    return to_job_page(request, job_id)


@router.get(RUNS_PATH + "/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, user: SignedInUser, run_id: int) -> HTMLResponse:
    """One run: its figures, its map and its report in every format."""
    settings = console_settings(request)
    try:
        with console_engine(request).connect() as conn:
            summary = summary_of(conn, run_id)
            loads = station_loads_frame(conn, run_id) if "capacity" in summary else None
    except YizhanError as exc:
        return refusal(request, exc, title_zh="没有这次分析", title_en="No such run")
    areas = area_labels(request)
    files = [(fmt, file_name(run_id, fmt), *FORMAT_TEXT[fmt]) for fmt in FORMATS]
    straight = summary.get("covered_share_straight")
    return render(request, "run.html", user=user, run=run_row(summary, areas, settings.timezone), files=files,
                  straight=share_text(straight) if straight is not None else None,
                  measured=MEASURED_TEXT[summary.get("measured", "cells")],
                  week=week_table(summary["by_hour"]) if "by_hour" in summary else None,
                  by_hour=summary.get("by_hour"), capacity=summary.get("capacity"),
                  crowded=crowded_rows(loads) if loads is not None else [], decays=DECAY_TEXT)


def week_table(by_hour: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The 24 x 7 covered shares of a run by hour as rows of the page's table: per hour of the day its label and,
    Monday first, each weekday's share text and colour class ``s0`` … ``s4`` on the reports' fixed classes
    (``SHARE_CLASS_BREAKS``: under 50 %, 50–70 %, 70–85 %, 85–95 %, from 95 %; ``na`` without demand)."""
    shares = np.array([np.nan if v is None else v for v in by_hour.get("covered_share_by_hour") or [None] * 168])
    grid = share_grid(shares)
    breaks = np.array(SHARE_CLASS_BREAKS)
    return [{"hour": f"{hour:02d}",
             "cells": [{"text": "–", "cls": "na"} if not np.isfinite(v) else
                       {"text": f"{v * 100:.0f}", "cls": f"s{int(np.searchsorted(breaks, v, side='right'))}"}
                       for v in grid[hour]]} for hour in range(24)]


def crowded_rows(loads: Any, limit: int = 20) -> list[dict[str, Any]]:
    """The most loaded stations (crowded first, then by orders per seat), for the run's page."""
    rows = []
    for r in loads.head(limit).itertuples(index=False):
        peak = None if pd.isna(r.peak_hour) else int(r.peak_hour)
        rows.append({"id": r.station_id, "name": r.name,
                     "seats": "未登记 not recorded" if pd.isna(r.seats) else int(r.seats),
                     "peak": f"{LABELS_ZH[peak]} / {LABELS_EN[peak]}" if peak is not None else "–",
                     "per_seat": "–" if pd.isna(r.per_seat) else f"{r.per_seat:,.1f}", "crowded": bool(r.crowded)})
    return rows


@router.get(RUNS_PATH + "/{run_id}/files/{fmt}")
def run_file(request: Request, user: SignedInUser, run_id: int, fmt: str) -> Response:
    """One report format of a run (``FORMATS``), for the signed-in user; times in the settings' time zone. The
    summary (HTML, PDF) opens in the browser, the data formats download."""
    if fmt not in FORMATS:
        unknown = InvalidInput(f"没有这种格式 {fmt!r} / no format {fmt!r}: expected one of {', '.join(FORMATS)}")
        return refusal(request, unknown, title_zh="没有这种格式", title_en="No such format")
    settings = console_settings(request)
    try:
        report = load_report(console_engine(request), run_id, timezone=settings.timezone)
    except YizhanError as exc:
        return refusal(request, exc, title_zh="没有这次分析", title_en="No such run")
    disposition = "inline" if fmt in ("html", "pdf") else "attachment"
    headers = {"Content-Disposition": f'{disposition}; filename="{file_name(report.run_id, fmt)}"',
               "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if fmt == "html":
        headers["Content-Security-Policy"] = REPORT_CSP
    return Response(render_report(report, fmt), media_type=MEDIA_TYPES[fmt], headers=headers)
