"""``/console/recommendations``: where to open the next stations. A form starts a recommendation in the background
(k new sites, the fewest sites reaching a target covered share, or longer hours versus new sites: at most so many
stations extended to a local time, opened round the clock and new sites, ranked in one list by the uncovered
demand-hours each removes; straight line or along the streets, walking or cycling, a radius in metres) over the
area's candidate sites: those stored, plus an uploaded candidates file (CSV, XLSX or GeoJSON: id, name, lon, lat,
optional host_type and address; stored first, every bad row listed and nothing stored), or the premises of the
OpenStreetMap extract the area's streets were built from. Its progress is shown as a run's is
(``/console/jobs/{id}``).

Each recommendation's page (``/console/recommendations/{id}``) lists its sites in the order to open them, with
address and host in Chinese, the orders each adds and the covered share after it (an hours recommendation: its
actions in their one ranked order with kind, name, the hours added, the demand-hours removed and the share after),
and shows its map (``/map?recommendation=``); the solver's proof (bound, gap, method) is folded away beneath.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
from collections.abc import Mapping
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from yizhan.accounts.sessions import SignedIn
from yizhan.areas import get_area, remembered_extract
from yizhan.console.auth import SignedInUser, console_engine, console_settings
from yizhan.console.jobs import HOUR_CAPS, checked_params, list_jobs
from yizhan.console.layout import render
from yizhan.console.progress import STATE_TEXT, Runner, refusal, to_job_page
from yizhan.console.runs import (
    MODE_TEXT,
    PROFILE_TEXT,
    area_labels,
    area_text,
    method_text,
    number_field,
    profile_text,
    radius_text,
    share_text,
)
from yizhan.console.uploads import Upload, read_upload
from yizhan.errors import ImportRejected, InvalidInput, RowProblem, YizhanError, http_status
from yizhan.maps.formatting import local_time_text
from yizhan.maps.layers import host_text, hour_action_title
from yizhan.siting.candidates import (
    candidate_counts,
    candidates_from_extract,
    candidates_from_file,
    filter_candidates,
    store_candidates,
)
from yizhan.siting.extensions import EXTEND_EXAMPLE
from yizhan.siting.runs import RecommendationSummary, load_recommendation, recommendation_ids, recommendation_of

RECOMMENDATIONS_PATH = "/console/recommendations"
LISTED = 30
"""The most recommendations the list shows (the newest)."""
SOURCES = {"stored": ("已存的候选场所", "the stored candidate sites"),
           "file": ("上传候选场所文件（加入本区域的候选场所）",
                    "an uploaded candidates file (added to the area's candidates)"),
           "extract": ("区域地图数据中的场所（加油站、银行、便利店……，加入本区域的候选场所）",
                       "the premises of the area's map extract (fuel stations, banks, shops..., added to the area's "
                       "candidates)")}
"""Where the candidate sites come from: an uploaded file's or the extract's are stored with the area's candidates, as
``yizhan candidates import`` stores them, and the recommendation chooses among all of them."""
COORDS = {"wgs84": "WGS 84（GPS） WGS 84 (GPS)", "gcj02": "GCJ-02（高德、腾讯） GCJ-02 (Amap, Tencent)",
          "bd09": "BD-09（百度） BD-09 (Baidu)"}
"""The coordinate systems an uploaded file's lon/lat may be in."""
BY = {"k": ("固定站点数", "a number of new sites"),
      "target": ("达到目标覆盖率所需最少站点", "the fewest sites reaching a covered share"),
      "hours": ("延长营业时间与新站点", "longer hours and new sites")}
"""What a recommendation asks for."""
PROBLEMS_SHOWN = 50
"""The most bad rows of an uploaded file listed on the page."""

router = APIRouter(tags=["console"], include_in_schema=False)


def _candidates(request: Request) -> list[dict[str, Any]]:
    """Per area: its stored candidate sites and whether its map extract is at hand."""
    out = []
    with console_engine(request).connect() as conn:
        for info in area_labels(request).values():
            extract = remembered_extract(conn, info.id)
            out.append({"name": info.name, "label": info.display_name or info.name,
                        "stored": sum(candidate_counts(conn, info.id).values()),
                        "extract": extract.name if extract is not None and extract.is_file() else None})
    return out


def summary_row(s: RecommendationSummary, areas: Mapping[str, Any], timezone: str) -> dict[str, Any]:
    """A stored recommendation as a row of the list."""
    if s["problem"] == "hours":
        asked = "按小时 hours"
    else:
        asked = f"k = {s['k']}" if s["target"] is None else f"目标 target {share_text(s['target'])}"
    return {"id": s["run_id"], "area_text": area_text(areas, s["area"]), "method": method_text(s["mode"]),
            "profile": profile_text(s["mode"], s["profile"]), "radius": radius_text(s["radius_m"]),
            "sites": len(s["sites"]), "asked": asked, "before": share_text(s["covered_share_before"]),
            "after": share_text(s["covered_share_after"]), "when": local_time_text(s["created_at"], timezone)}


def _page(request: Request, user: SignedIn, *, status_code: int = 200, error: str | None = None,
          problems: list[RowProblem] | None = None, form: Mapping[str, str] | None = None) -> HTMLResponse:
    settings = console_settings(request)
    areas = area_labels(request)
    with console_engine(request).connect() as conn:
        listed = [summary_row(recommendation_of(conn, i), areas, settings.timezone)
                  for i in recommendation_ids(conn, limit=LISTED)]
        jobs = [j for j in list_jobs(conn, kind="recommendation", limit=10) if j.state != "done"]
    values = {"area": next(iter(areas), ""), "by": "k", "k": "3", "target": "90", "mode": "network",
              "profile": "walk", "radius_m": f"{settings.radius_m:g}", "source": "stored", "coord": "wgs84",
              "max_extend": "3", "max_24h": "1", "max_sites": "2", "extend_to": EXTEND_EXAMPLE, **(form or {})}
    return render(request, "recommendations.html", status_code=status_code, user=user, listed=listed, jobs=jobs,
                  error=error, problems=(problems or [])[:PROBLEMS_SHOWN], problems_total=len(problems or []),
                  form=values, modes=MODE_TEXT, profiles=PROFILE_TEXT, by=BY,
                  sources=SOURCES, coords=COORDS, candidates=_candidates(request),
                  when=lambda t: local_time_text(t, settings.timezone), states=STATE_TEXT)


@router.get(RECOMMENDATIONS_PATH, response_class=HTMLResponse)
def recommendations_page(request: Request, user: SignedInUser) -> HTMLResponse:
    """The stored recommendations, newest first, and the form that starts one."""
    return _page(request, user)


def _target_share(value: str) -> float:
    """The target covered share typed as a percentage (90, 90%, 92.5) as a share, 0–1."""
    pct = number_field(value.rstrip("%％ "), "target", "目标覆盖率", "a percentage above 0 and at most 100, e.g. 90",
                       "0 到 100 之间的百分数，如 90")
    if not 0 < pct <= 100:
        raise InvalidInput(f"目标覆盖率 target: {value!r}; 应为 0 到 100 之间的百分数，如 90 / expected a percentage "
                           "above 0 and at most 100, e.g. 90")
    return pct / 100


def _sites_wanted(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidInput(f"站点数 k: {value!r}; 应为整数，如 3 / expected a whole number, e.g. 3") from None


def _cap(value: str, field: str) -> int:
    """A cap of an hours recommendation typed as a whole number (empty: 0)."""
    try:
        return int(value.strip() or "0")
    except ValueError:
        raise InvalidInput(f"{HOUR_CAPS[field]} {field}: {value!r}; 应为整数，如 2 / expected a whole number, e.g. "
                           "2") from None


def _file(upload: Upload) -> tuple[bytes, str]:
    """The uploaded candidates file's bytes and name; InvalidInput without one."""
    if not upload.name:
        raise InvalidInput("候选场所文件 candidates_file: 未选择文件 / no file chosen; expected a CSV, XLSX or GeoJSON "
                           "file with id, name, lon, lat")
    return upload.data, upload.name


FIELDS = {"area": ("", 200), "by": ("k", 10), "k": ("", 20), "target": ("", 20), "mode": ("straight", 20),
          "profile": ("walk", 20), "radius_m": ("", 30), "source": ("stored", 20), "coord": ("wgs84", 10),
          "max_extend": ("", 20), "max_24h": ("", 20), "max_sites": ("", 20), "extend_to": ("", 20)}
"""The start form's fields: (default, the most characters)."""


def _fields(upload: Upload) -> dict[str, str]:
    """The start form's values (defaults where not sent); InvalidInput naming a value longer than its field takes."""
    form = {}
    for key, (default, most) in FIELDS.items():
        value = upload.fields.get(key) or default
        if len(value) > most:
            raise InvalidInput(f"{key}: 超过 {most} 个字符 / longer than {most} characters")
        form[key] = value
    return form


def _take_candidates(request: Request, area: str, source: str, coord: str, file: tuple[bytes, str] | None) -> None:
    """Store the candidates the form names: an uploaded file's or the area's extract's (inside the area only)."""
    if source == "stored":
        return
    with console_engine(request).begin() as conn:
        info = get_area(conn, area)
        if source == "file" and file is not None:
            data, name = file
            if coord not in COORDS:
                raise InvalidInput(f"坐标系 coord: {coord!r}; 可用 expected {', '.join(COORDS)}")
            store_candidates(conn, info, candidates_from_file(data=data, filename=name, coord=coord), source=name)
        elif source == "extract":
            path = remembered_extract(conn, info.id)
            if path is None or not path.is_file():
                raise InvalidInput(f"区域 {area!r} 没有可用的地图数据文件 / area {area!r} has no map extract at hand: "
                                   "build its streets from an extract first, or upload a candidates file")
            cands, _ = filter_candidates(candidates_from_extract(path), info)
            store_candidates(conn, info, cands, source=f"{path.name} (© OpenStreetMap contributors)")


@router.post(RECOMMENDATIONS_PATH, response_class=HTMLResponse)
async def recommendations_start(request: Request, user: SignedInUser, runner: Runner) -> Response:
    """Start a recommendation for the form's area in the background (after storing the candidates of an uploaded
    file or of the area's extract); a 303 to its progress page. The form is read through the console's upload
    guard (``uploads.read_upload``: size and CSRF token checked before the file is kept). A bad value, or a
    candidates file with bad rows, shows the list again saying what is wrong (every bad row: row, field, value,
    what is expected); nothing is started."""
    form = {key: default for key, (default, _) in FIELDS.items()}
    settings = console_settings(request)
    try:
        upload = await read_upload(request, user, settings, file_field="candidates_file", file_required=False)
        form = _fields(upload)
        area, by, source, coord = form["area"], form["by"], form["source"], form["coord"]
        if source not in SOURCES:
            raise InvalidInput(f"候选场所 source: {source!r}; 可用 expected {', '.join(SOURCES)}")
        if by not in BY:
            raise InvalidInput(f"建议方式 by: {by!r}; 可用 expected {', '.join(BY)}")
        params: dict[str, Any] = {"mode": form["mode"], "profile": form["profile"]}
        if by == "hours":
            params.update({"hours": True, "extend_to": form["extend_to"].strip() or None,
                           **{f: _cap(form[f], f) for f in HOUR_CAPS}})
        elif by == "k":
            params["k"] = _sites_wanted(form["k"])
        else:
            params["target"] = _target_share(form["target"])
        if form["radius_m"].strip():
            params["radius_m"] = number_field(form["radius_m"], "radius_m", "服务半径", "metres, e.g. 1000",
                                              "米数，如 1000")
        checked_params("recommendation", params, settings)  # every value, before any is stored
        file = _file(upload) if source == "file" else None
        await anyio.to_thread.run_sync(lambda: _take_candidates(request, area, source, coord, file))
        job_id = await anyio.to_thread.run_sync(
            lambda: runner.submit("recommendation", area, params, user=user.name))
    except YizhanError as exc:
        problems = exc.problems if isinstance(exc, ImportRejected) else None
        error = str(exc).split("\n")[0]
        return _page(request, user, status_code=http_status(exc), error=error, problems=problems, form=form)
    return to_job_page(request, job_id)


@router.get(RECOMMENDATIONS_PATH + "/{run_id}", response_class=HTMLResponse)
def recommendation_page(request: Request, user: SignedInUser, run_id: int) -> HTMLResponse:
    """One recommendation: its sites in the order to open them (an hours recommendation: its actions in their one
    ranked order), its map, and the proof folded."""
    settings = console_settings(request)
    try:
        rec = load_recommendation(console_engine(request), run_id)
    except YizhanError as exc:
        return refusal(request, exc, title_zh="没有这个选址建议", title_en="No such recommendation")
    s = rec.summary
    sites = [{"rank": int(r.rank), "name": r.name or r.external_id, "id": r.external_id,
              "address": r.address if isinstance(r.address, str) and r.address.strip() else None,
              "host": host_text(r.host_type), "gain": float(r.gain), "share": share_text(r.covered_share_after)}
             for r in rec.sites.itertuples(index=False)]
    extend_to = ((s.get("params") or {}).get("hours") or {}).get("extend_to")
    actions = [{**a, "title": hour_action_title(a["kind"], a["hours_rule"], extend_to),
                "share": share_text(a["covered_share_after"])} for a in s.get("actions") or []]
    return render(request, "recommendation.html", user=user, s=s, sites=sites, actions=actions,
                  hours=s["problem"] == "hours",
                  row=summary_row(s, area_labels(request), settings.timezone), area_text=rec.area.display_name
                  or rec.area.name)
