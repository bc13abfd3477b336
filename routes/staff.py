"""Staff routes (every one needs a staff key, ``X-API-Key``): the registry import, coverage runs and their gap
reports, site recommendations.

Lon/lat are degrees in ``coord`` (WGS 84, GCJ-02 or BD-09) where a body or form says so, WGS 84 otherwise;
radii and distances are metres.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
import json
import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from yizhan.coverage.placement import placement_check
from yizhan.coverage.runs import RunSummary, hours_document, list_runs, loads_document, summary_of
from yizhan.routes.deps import EngineDep, SettingsDep, StaffKey, run_or_latest
from yizhan.routes.upload_guard import too_large
from yizhan.settings import Settings
from yizhan.siting.runs import RecommendationSummary, recommendation_geojson, recommendation_ids, recommendation_of
from yizhan.stations.schema import Coord
from yizhan.stations.service import ImportReport, import_stations
from yizhan.stations.tables import ImportLimits

router = APIRouter(tags=["staff"])


T = TypeVar("T")

DISCONNECT_POLL_S = 0.2
"""How often a running import asks whether its client is still there, seconds."""


async def run_while_connected(request: Request, job: Callable[[threading.Event], T]) -> T:
    """Run ``job(stop)`` in a worker thread; ``stop`` is set when the client disconnects (polled every
    ``DISCONNECT_POLL_S`` seconds) or when this request is cancelled (a stopping server cancels the requests still
    running after its grace), so that a job that asks ``stop`` between its steps ends soon and rolls back."""
    stop = threading.Event()

    async def watch() -> None:
        while not stop.is_set():
            if await request.is_disconnected():
                stop.set()
                return
            await anyio.sleep(DISCONNECT_POLL_S)

    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            try:  # abandoned on cancel: the thread goes on until it next asks ``stop``, set just below
                result = await anyio.to_thread.run_sync(job, stop, abandon_on_cancel=True)
            except Exception as exc:  # raised below as it is, not wrapped in the task group's ExceptionGroup
                failure = exc
            finally:
                tg.cancel_scope.cancel()
    finally:
        stop.set()
    if failure is not None:
        raise failure
    return result


@router.post("/stations/import", response_model=ImportReport)
async def import_file(request: Request, _: StaffKey, eng: EngineDep, settings: SettingsDep,
                file: Annotated[UploadFile, File(description="CSV, XLSX or GeoJSON")],
                area: Annotated[str | None, Form(max_length=200)] = None,
                coord: Annotated[Coord, Form()] = "wgs84",
                ignore_unknown_columns: Annotated[bool, Form(
                    description="Import a file with unknown columns, leaving them out (listed in "
                                "ignored_columns); by default such a file is rejected")] = False,
                trust_coords: Annotated[bool, Form(
                    description="Skip the check that stations already stored did not move by exactly the "
                                "offset between WGS 84 and GCJ-02/BD-09")] = False,
                sheet: Annotated[str | None, Form(
                    max_length=2000, description="Sheets of a workbook to read, comma-separated (default: every "
                                                 "sheet with the registry's headers); other sheets are then left "
                                                 "alone")] = None) -> ImportReport:
    """Import a registry file: all rows or none; bad rows are listed in ``problems``. The key and the size
    (``YIZHAN_MAX_UPLOAD_MB``, else 413) are checked before the body is read (``upload_guard``). The import
    runs in a worker thread and is cancelled (rolled back, nothing stored) when the client goes away or the
    server stops (``run_while_connected``)."""
    limit = int(settings.max_upload_mb * 1024 * 1024)  # the body was cut at this plus the multipart envelope
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise too_large(settings)
    name = file.filename or "upload.csv"
    sheets = [s.strip() for s in sheet.split(",") if s.strip()] if sheet else None

    def job(stop: threading.Event) -> ImportReport:
        return import_stations(eng, name, area=area, coord=coord, data=data, filename=name,
                               ignore_unknown_columns=ignore_unknown_columns, trust_coords=trust_coords,
                               max_rows=settings.max_api_import_rows, limits=ImportLimits.from_settings(settings),
                               placement_check=placement_check(settings, eng), cancelled=stop.is_set,
                               sheets=sheets)

    return await run_while_connected(request, job)


@router.get("/stations.{fmt}", response_class=Response)
def stations_export(_: StaffKey, eng: EngineDep, fmt: Literal["csv", "xlsx", "geojson", "gpkg"],
                    area: str | None = None, lang: Literal["zh", "en"] | None = None) -> Response:
    """An area's registry as an import file (CSV, XLSX, GeoJSON or GeoPackage) in ``lang`` (zh: Chinese headers
    and labels; en: English headers and codes; default: the language of the area's last import)."""
    from yizhan.stations.export import MEDIA_TYPES
    from yizhan.stations.service import stations_download

    return Response(stations_download(eng, fmt, area=area, lang=lang), media_type=MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="stations.{fmt}"'})


@router.get("/runs", response_model=list[RunSummary])
def runs(_: StaffKey, eng: EngineDep, area: Annotated[str | None, Query(max_length=200)] = None,
         limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[RunSummary]:
    """Stored coverage runs, newest first."""
    return list_runs(eng, area=area, limit=limit)


@router.get("/runs/{run_id}", response_model=RunSummary)
def run(_: StaffKey, eng: EngineDep, run_id: int) -> RunSummary:
    """Summary of one run."""
    with eng.connect() as conn:
        return summary_of(conn, run_id)


@router.get("/runs/{run_id}/hours")
def run_hours_document(_: StaffKey, eng: EngineDep, run_id: int) -> dict[str, Any]:
    """A run's coverage by hour of the week (``yizhan coverage --by-hour``): its figures, the 168 hours (Monday
    00:00 first, local time) with demand, covered demand, share and stations open, and each township's 168 figures;
    404 for a run made without hours."""
    with eng.connect() as conn:
        return hours_document(conn, run_id)


@router.get("/runs/{run_id}/loads")
def run_loads_document(_: StaffKey, eng: EngineDep, run_id: int) -> dict[str, Any]:
    """A run's stations' loads (``--capacity``): the capacity summary and per station its seats, peak hour, orders
    within reach then and per seat (per hour of a typical week), crowded or not; 404 for a run without capacity."""
    with eng.connect() as conn:
        return loads_document(conn, run_id)


def _download(eng: Engine, settings: Settings, run_id: int, fmt: str) -> Response:
    """One report format of a run as a download; times in the app's time zone."""
    from yizhan.reports.run_report import MEDIA_TYPES, load_report
    from yizhan.reports.writer import file_name, render

    data = load_report(eng, run_id, timezone=settings.timezone)
    disposition = "inline" if fmt in ("html", "pdf") else "attachment"
    return Response(render(data, fmt), media_type=MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f'{disposition}; filename="{file_name(data.run_id, fmt)}"'})


@router.get("/gaps.csv", response_class=PlainTextResponse)
def gaps_as_csv(_: StaffKey, eng: EngineDep, settings: SettingsDep, run: int | None = None,
                area: str | None = None) -> Response:
    """Gap report of a run (default: the latest) as CSV."""
    return _download(eng, settings, run_or_latest(eng, run, area), "csv")


@router.get("/gaps.geojson")
def gaps_as_geojson(_: StaffKey, eng: EngineDep, settings: SettingsDep, run: int | None = None,
                    area: str | None = None) -> Response:
    """Gap polygons of a run (default: the latest) as GeoJSON (WGS 84)."""
    return _download(eng, settings, run_or_latest(eng, run, area), "geojson")


@router.get("/runs/{run_id}/gaps.csv", response_class=PlainTextResponse)
def run_gaps_csv(_: StaffKey, eng: EngineDep, settings: SettingsDep, run_id: int) -> Response:
    """The run's gaps as CSV (UTF-8 with BOM, Chinese and English headers)."""
    return _download(eng, settings, run_id, "csv")


@router.get("/runs/{run_id}/gaps.xlsx")
def run_gaps_xlsx(_: StaffKey, eng: EngineDep, settings: SettingsDep, run_id: int) -> Response:
    """The run's report as an Excel workbook: summary, gaps, units and stations sheets."""
    return _download(eng, settings, run_id, "xlsx")


@router.get("/runs/{run_id}/gaps.geojson")
def run_gaps_geojson(_: StaffKey, eng: EngineDep, settings: SettingsDep, run_id: int) -> Response:
    """The run's gap polygons as GeoJSON (RFC 7946, WGS 84)."""
    return _download(eng, settings, run_id, "geojson")


@router.get("/runs/{run_id}/gaps.gpkg")
def run_gaps_gpkg(_: StaffKey, eng: EngineDep, settings: SettingsDep, run_id: int) -> Response:
    """The run's layers as a GeoPackage (EPSG:4326): gaps, units, stations, study area, service area."""
    return _download(eng, settings, run_id, "gpkg")


@router.get("/runs/{run_id}/report.pdf")
def run_report_pdf(_: StaffKey, eng: EngineDep, settings: SettingsDep, run_id: int) -> Response:
    """The run's printable one-page summary (A4 PDF): map, headline figures, top gaps, units."""
    return _download(eng, settings, run_id, "pdf")


@router.get("/runs/{run_id}/report.html", response_class=HTMLResponse)
def run_report_html(_: StaffKey, eng: EngineDep, settings: SettingsDep, run_id: int) -> Response:
    """The run's one-page summary as a self-contained HTML page (same content as the PDF)."""
    return _download(eng, settings, run_id, "html")


class RecommendationRequest(BaseModel):
    """Body of ``POST /recommendations``: exactly one of ``k``, ``target``, ``sites`` or ``hours`` (with its caps).
    Lon/lat in ``coord``."""

    model_config = ConfigDict(extra="forbid")

    k: int | None = Field(None, ge=1, le=1000, description="How many new sites to choose (maximal covering)")
    target: float | None = Field(None, gt=0, le=1, description="Covered share (0-1) to reach with the fewest sites")
    sites: list[dict[str, Any]] | None = Field(None, max_length=5000, description="Proposed sites to evaluate: "
                                               "GeoJSON Point features with properties id, name[, host_type]")
    area: str | None = Field(None, max_length=200)
    mode: Literal["straight", "network"] = "straight"
    profile: Literal["walk", "bike"] = "walk"
    radius_m: float | None = Field(None, gt=0, le=50_000, allow_inf_nan=False,
                                   description="Service radius, metres (default: the settings' YIZHAN_RADIUS_M)")
    exclude_host_types: list[str] = Field(default_factory=list, max_length=20)
    no_go: dict[str, Any] | None = Field(None, description="GeoJSON polygon(s) where no station may go")
    candidates: list[dict[str, Any]] | None = Field(None, max_length=100_000, description="GeoJSON Point features "
                                                    "to choose from instead of the area's stored candidates")
    coord: Coord = "wgs84"
    time_limit_s: float = Field(30.0, gt=0, le=300, allow_inf_nan=False, description="Seconds for the exact solver")
    hours: bool = Field(False, description="Longer hours versus new sites (instead of k, target or sites): rank "
                        "station extensions, round-the-clock stations and new sites by uncovered demand-hours removed")
    extend_to: str = Field("22:00", max_length=10, description="hours: extend a station, on each day it opens, from "
                           "its opening to this local time")
    max_extend: int = Field(0, ge=0, le=1000, description="hours: at most this many stations extended")
    max_24h: int = Field(0, ge=0, le=1000, description="hours: at most this many stations opened round the clock")
    max_sites: int = Field(0, ge=0, le=1000, description="hours: at most this many new stations at candidate sites")
    site_hours: str = Field("24/7", max_length=200, description="hours: the hours a new station keeps (OSM or "
                            "Chinese rule; default round the clock)")


@router.post("/recommendations", response_model=RecommendationSummary)
def recommendations_create(_: StaffKey, eng: EngineDep, settings: SettingsDep,
                           body: RecommendationRequest) -> RecommendationSummary:
    """Where to open the next stations: the best ``k`` sites, the fewest for a ``target`` share, or an
    evaluation of proposed ``sites``; with ``hours``, longer hours of existing stations ranked beside new sites
    (the answer's ``actions``); stored as a recommendation run (see ``yizhan recommend``)."""
    from yizhan.errors import InvalidInput
    from yizhan.siting.candidates import no_go_from_geojson
    from yizhan.siting.recommend import recommend, recommend_hours, sites_to_frame

    if body.hours:
        if body.k is not None or body.target is not None or body.sites is not None:
            raise InvalidInput("hours 自有上限，不与 k/target/sites 同用 / hours takes its own caps (max_extend, "
                               "max_24h, max_sites): leave out k, target and sites")
        return recommend_hours(eng, area=body.area, extend_to=body.extend_to, max_extend=body.max_extend,
                               max_24h=body.max_24h, max_sites=body.max_sites, site_hours=body.site_hours,
                               mode=body.mode, profile=body.profile,
                               candidates=sites_to_frame(body.candidates, coord=body.coord, field="candidates"),
                               radius_m=body.radius_m if body.radius_m is not None else settings.radius_m,
                               exclude_host_types=body.exclude_host_types,
                               no_go=no_go_from_geojson(body.no_go, coord=body.coord),
                               time_limit_s=body.time_limit_s, settings=settings)
    return recommend(eng, area=body.area, k=body.k, target=body.target, mode=body.mode, profile=body.profile,
                     sites=sites_to_frame(body.sites, coord=body.coord),
                     candidates=sites_to_frame(body.candidates, coord=body.coord, field="candidates"),
                     radius_m=body.radius_m if body.radius_m is not None else settings.radius_m,
                     exclude_host_types=body.exclude_host_types,
                     no_go=no_go_from_geojson(body.no_go, coord=body.coord), time_limit_s=body.time_limit_s,
                     settings=settings)


@router.get("/recommendations", response_model=list[RecommendationSummary])
def recommendations_list(_: StaffKey, eng: EngineDep, area: Annotated[str | None, Query(max_length=200)] = None,
                         limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[RecommendationSummary]:
    """Stored recommendation runs, newest first."""
    with eng.connect() as conn:
        return [recommendation_of(conn, i) for i in recommendation_ids(conn, area=area, limit=limit)]


@router.get("/recommendations/{run_id}.geojson")
def recommendations_geojson(_: StaffKey, eng: EngineDep, run_id: int) -> Response:
    """A recommendation's sites and remaining gaps as one GeoJSON FeatureCollection (RFC 7946, WGS 84)."""
    with eng.connect() as conn:
        doc = recommendation_geojson(conn, run_id)
    return Response(json.dumps(doc, ensure_ascii=False), media_type="application/geo+json", headers={
        "Content-Disposition": f'attachment; filename="recommendation_{run_id}.geojson"'})


@router.get("/recommendations/{run_id}", response_model=RecommendationSummary)
def recommendations_get(_: StaffKey, eng: EngineDep, run_id: int) -> RecommendationSummary:
    """One stored recommendation run with its ranked sites."""
    with eng.connect() as conn:
        return recommendation_of(conn, run_id)
