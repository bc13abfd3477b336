"""``/console/compare?before=&after=``: two stored runs of one area side by side (this month against last, straight
line against along the streets, before against after new stations): the covered share per township in each with
the change in percentage points, the notes on what differs besides the stations, and a map (Leaflet, no tiles;
the area's streets on request) of the demand newly covered (green) and no longer covered (red).

The map's data comes from two small JSON routes of the signed-in session: ``/console/compare/changes.geojson``
(the changed cells and the area's boundary, WGS 84 lon/lat) and ``/console/compare/streets.geojson`` (the area's
streets, drawn from its street graph).
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
import json
import math
from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from yizhan.areas import get_area
from yizhan.console.auth import SignedInUser, console_engine, console_settings
from yizhan.console.layout import render
from yizhan.console.progress import SCRIPT_CSP
from yizhan.console.runs import area_labels, area_text, run_row, share_text
from yizhan.coverage.compare import RunComparison, changed_cells, compare_runs, runs_of_one_area
from yizhan.coverage.runs import list_runs, summary_of
from yizhan.coverage.streets import street_lines
from yizhan.errors import InvalidInput, NotFound, YizhanError, http_status

COMPARE_PATH = "/console/compare"
RUNS_OFFERED = 200
"""The most runs offered in the two lists (the newest)."""

router = APIRouter(tags=["console"], include_in_schema=False)
RunParam = Annotated[str | None, Query(max_length=20)]


def run_number(value: str | None, field: str, field_zh: str) -> int | None:
    """A run id from the query (None when empty); InvalidInput naming the field and the value otherwise."""
    if value is None or not value.strip():
        return None
    try:
        number = int(value.strip().lstrip("#"))
    except ValueError:
        raise InvalidInput(f"{field_zh} {field}: {value!r}; 应为分析编号（整数）/ expected a run number") from None
    if number < 1:
        raise InvalidInput(f"{field_zh} {field}: {value!r}; 应为分析编号（整数）/ expected a run number")
    return number


def pp_text(value: float) -> str:
    """A change in percentage points with its sign: ``+3.2 pp``, ``−1.0 pp``, ``0.0 pp``; ``—`` when unknown."""
    if value is None or not math.isfinite(value):
        return "—"
    shown = round(float(value), 1)
    if shown == 0:
        return "0.0 个百分点 pp"
    return f"{'+' if shown > 0 else '−'}{abs(shown):.1f} 个百分点 pp"


def _number(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def unit_rows(cmp: RunComparison) -> list[dict[str, Any]]:
    """The per-township figures of a comparison for the page: raw values (0–1, pp, orders) and their texts."""
    rows = []
    for u in cmp.units.itertuples(index=False):
        before, after, change = _number(u.share_before), _number(u.share_after), _number(u.change_pp)
        rows.append({"name": u.name, "share_before": before, "share_after": after, "change_pp": change,
                     "before": share_text(before), "after": share_text(after),
                     "change": pp_text(change if change is not None else math.nan),
                     "trend": "up" if change and change > 0.05 else "down" if change and change < -0.05 else "",
                     "demand_before": _number(u.demand_before), "demand_after": _number(u.demand_after)})
    return rows


@router.get(COMPARE_PATH, response_class=HTMLResponse)
def compare_page(request: Request, user: SignedInUser, before: RunParam = None,
                 after: RunParam = None) -> HTMLResponse:
    """The two lists of runs to choose from and, once both are chosen, the comparison."""
    settings = console_settings(request)
    areas = area_labels(request)
    runs = [run_row(s, areas, settings.timezone) for s in list_runs(console_engine(request), limit=RUNS_OFFERED)]
    context: dict[str, Any] = {"runs": runs, "cmp": None, "error": None}
    status = 200
    try:
        b, a = run_number(before, "before", "较早的分析"), run_number(after, "after", "较晚的分析")
        if a is None and b is None and runs:  # the newest run against the one before it of the same area
            a = runs[0]["id"]
            b = next((r["id"] for r in runs[1:] if r["area"] == runs[0]["area"]), None)
        elif b is None and a is not None:
            with console_engine(request).connect() as conn:
                area = summary_of(conn, a)["area"]
            b = next((r["id"] for r in runs if r["area"] == area and r["id"] < a), None)
        context.update(before=b, after=a)
        if a is not None and b is not None:
            cmp = compare_runs(console_engine(request), b, a)
            context.update(
                cmp=cmp, units=unit_rows(cmp), area_text=area_text(areas, cmp.after["area"]),
                run_before=run_row(cmp.before, areas, settings.timezone),
                run_after=run_row(cmp.after, areas, settings.timezone), change=pp_text(cmp.change_pp),
                trend="up" if cmp.change_pp > 0.05 else "down" if cmp.change_pp < -0.05 else "",
                gained=(len(cmp.newly_covered), float(cmp.newly_covered["weight"].sum())),
                lost=(len(cmp.no_longer_covered), float(cmp.no_longer_covered["weight"].sum())))
    except YizhanError as exc:
        status, context["error"] = http_status(exc), str(exc)
    return render(request, "compare.html", status_code=status, user=user, **context,
                  headers={"Content-Security-Policy": SCRIPT_CSP})


def _features(frame: Any, status: str) -> list[dict[str, Any]]:
    geoms = shapely.to_geojson(frame.geometry.to_numpy()) if len(frame) else []
    return [{"type": "Feature", "geometry": json.loads(g),
             "properties": {"status": status, "cell": key, "weight": round(float(w), 3)}}
            for g, key, w in zip(geoms, frame["cell_key"], frame["weight"], strict=True)]


@router.get(COMPARE_PATH + "/changes.geojson")
def compare_changes(request: Request, user: SignedInUser, before: RunParam = None,
                    after: RunParam = None) -> JSONResponse:
    """The cells of two runs whose coverage changed as a GeoJSON FeatureCollection (RFC 7946, WGS 84 lon/lat):
    ``status`` "gained" (covered in ``after`` only) or "lost" (covered in ``before`` only) with the cell's
    ``weight`` (orders); and the area's boundary (``status`` "boundary"). 404/422 as JSON with one line."""
    try:
        b, a = run_number(before, "before", "较早的分析"), run_number(after, "after", "较晚的分析")
        if a is None or b is None:
            raise InvalidInput("需要两次分析 before 和 after / expected two runs: before and after")
        with console_engine(request).connect() as conn:  # the cells only, not the townships the page shows
            area = runs_of_one_area(conn, b, a)[1]["area"]
            newly, lost = changed_cells(conn, b, a)
            boundary = get_area(conn, area).boundary
    except YizhanError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=http_status(exc))
    features: list[dict[str, Any]] = []
    if boundary is not None:
        features.append({"type": "Feature", "geometry": shapely.geometry.mapping(boundary),
                         "properties": {"status": "boundary"}})
    features += _features(newly, "gained") + _features(lost, "lost")
    return JSONResponse({"type": "FeatureCollection", "features": features}, headers={"Cache-Control": "no-store"})


@router.get(COMPARE_PATH + "/streets.geojson")
def compare_streets(request: Request, user: SignedInUser,
                    area: Annotated[str, Query(max_length=200)]) -> JSONResponse:
    """The area's streets (as the maps draw them without tiles) as a GeoJSON MultiLineString, WGS 84 lon/lat;
    404 when the area or its street graph does not exist."""
    try:
        with console_engine(request).connect() as conn:
            info = get_area(conn, area)
        lines = street_lines(info, console_settings(request))
        if lines is None:
            raise NotFound(f"区域 {area!r} 没有街道数据 / area {area!r} has no street network")
    except YizhanError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=http_status(exc))
    return JSONResponse(shapely.geometry.mapping(lines), headers={"Cache-Control": "private, max-age=600"})
