"""``/console/registry``: an area's station registry in the console.

- ``GET /console/registry?area=&q=&sort=&order=&page=``: the area's stations as a table, searched (name, address,
  host, township, id) and sorted on the server, ``PAGE_SIZE`` a page, for a province's thousands; for staff and
  admins the upload form and the download links. Planners see the table only.
- ``POST /console/registry`` (staff, admin; multipart: ``file`` CSV/XLSX/GeoJSON, ``area``, ``coord``,
  ``ignore_unknown_columns``, ``trust_coords``, the CSRF token): the import service of ``POST /stations/import``
  with the API's limits (upload size before the body is read: ``console.uploads``; rows, unpacked size). The
  answer is the result page itself: stations added, updated and unchanged with the import's warnings and notes,
  or (422) the table of bad rows grouped by distinct bad value as the API groups them, nothing stored (the import
  is one transaction). A reload sends the same file again, which changes nothing more.
- ``GET /console/registry/stations.{csv,xlsx,geojson,gpkg}?area=&lang=`` (staff, admin): the export files of
  ``yizhan stations export`` through the session, since a link cannot carry the API's key header.

Coordinates are WGS 84 lon/lat degrees unless the form's ``coord`` says GCJ-02 or BD-09.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection, text

from yizhan.accounts.sessions import SignedIn
from yizhan.areas import AreaInfo, list_areas, resolve_area
from yizhan.console.auth import SignedInUser, console_engine, console_settings, require_role
from yizhan.console.layout import render
from yizhan.console.uploads import read_upload
from yizhan.coverage.placement import placement_check
from yizhan.errors import (
    GROUPS_SHOWN,
    ROWS_SHOWN,
    ImportRejected,
    InvalidInput,
    NotFound,
    ProblemGroup,
    YizhanError,
    http_status,
)
from yizhan.stations import vocab
from yizhan.stations.export import MEDIA_TYPES
from yizhan.stations.service import import_stations, stations_download
from yizhan.stations.tables import ImportLimits

REGISTRY_PATH = "/console/registry"
PAGE_SIZE = 50
"""Stations on one page of the table."""
SORTS: dict[str, tuple[str, str, str]] = {
    "id": ("s.external_id", "编号", "ID"),
    "name": ("s.name", "名称", "Name"),
    "kind": ("s.kind", "类型", "Kind"),
    "host": ("s.host_name", "承办单位", "Host"),
    "address": ("s.address", "地址", "Address"),
    "township": ("s.township", "街道", "Township"),
    "status": ("s.status", "状态", "Status"),
    "updated": ("s.updated_at", "更新时间", "Updated"),
}
"""The table's columns that sort it: the query's ``sort`` value, its SQL expression, Chinese and English header."""
SEARCHED = ("s.name", "s.address", "s.host_name", "s.township", "s.external_id")
"""The columns a search looks in (a case-insensitive substring)."""
COORDS = {"wgs84": ("WGS 84（GPS、天地图）", "WGS 84 (GPS, Tianditu)"),
          "gcj02": ("GCJ-02（高德、腾讯）", "GCJ-02 (Amap, Tencent)"),
          "bd09": ("BD-09（百度）", "BD-09 (Baidu)")}
"""The coordinate systems a file may be in: Chinese and English names."""
FORMATS = {"xlsx": "Excel (XLSX)", "csv": "CSV", "geojson": "GeoJSON", "gpkg": "GeoPackage"}
"""The download formats and their names."""
UPLOADERS = ("admin", "staff")
"""The roles that upload and download the registry."""

StaffUser = Annotated[SignedIn, Depends(require_role(*UPLOADERS))]

router = APIRouter(tags=["console"], include_in_schema=False)


@dataclass
class StationRow:
    """One station as the table shows it (labels in Chinese)."""

    id: str
    name: str
    kind: str
    host: str
    address: str
    township: str
    status: str
    hours: str


@dataclass
class StationPage:
    """One page of an area's stations: the rows, how many match in all, the page number (from 1) and count."""

    rows: list[StationRow]
    total: int
    page: int
    pages: int


def _like(q: str) -> str:
    """``q`` as an ILIKE pattern for a substring, its own ``%``, ``_`` and ``\\`` taken literally."""
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def station_page(conn: Connection, area_id: int, *, q: str = "", sort: str = "id", descending: bool = False,
                 page: int = 1, page_size: int = PAGE_SIZE) -> StationPage:
    """The stations of area ``area_id`` whose name, address, host, township or id holds ``q`` (any case), sorted
    by ``sort`` (a key of ``SORTS``; ties by id), page ``page`` of ``page_size``; a page past the end is the
    last."""
    where = "s.area_id = :a"
    params: dict[str, Any] = {"a": area_id}
    if q:
        where += " AND (" + " OR ".join(f"{c} ILIKE :q" for c in SEARCHED) + ")"
        params["q"] = _like(q)
    total = int(conn.execute(text(f"SELECT count(*) FROM stations s WHERE {where}"), params).scalar_one())
    pages = max(1, math.ceil(total / page_size))
    page = min(max(1, page), pages)
    direction = "DESC" if descending else "ASC"
    order = f"{SORTS.get(sort, SORTS['id'])[0]} {direction} NULLS LAST, s.external_id {direction}"
    found = conn.execute(text(
        f"SELECT s.external_id, s.name, s.kind, s.host, s.host_name, s.address, s.township, s.status, "
        f"s.opening_hours, s.opening_hours_text FROM stations s WHERE {where} ORDER BY {order} "
        f"LIMIT :limit OFFSET :offset"), {**params, "limit": page_size, "offset": (page - 1) * page_size})
    rows = [StationRow(id=r.external_id, name=r.name, kind=vocab.label("kind", r.kind) if r.kind else "",
                       host=r.host_name or (vocab.label("host", r.host) if r.host else ""),
                       address=r.address or "", township=r.township or "",
                       status=vocab.label("status", r.status) if r.status else "",
                       hours=r.opening_hours_text or r.opening_hours or "") for r in found]
    return StationPage(rows, total, page, pages)


def _how_to_fix(group: ProblemGroup) -> str:
    """What the clerk does about a group of bad cells, Chinese first."""
    if group.closest:
        return f"改为「{group.closest}」/ change it to {group.closest}"
    return "按“应为”一栏改正这些单元格后重新上传 / correct these cells as expected, then upload the file again"


def _rows_text(group: ProblemGroup) -> str:
    """The rows of a group: all of them up to ``ROWS_SHOWN``, then the count."""
    shown = ", ".join(str(r) for r in group.rows[:ROWS_SHOWN])
    rest = len(group.rows) - ROWS_SHOWN
    return shown + (f" … 共 {len(group.rows)} 行 / {len(group.rows)} rows in all" if rest > 0 else "")


def _areas(conn: Connection, name: str | None) -> tuple[list[AreaInfo], AreaInfo | None]:
    """Every area, and the one the page shows: ``name``, or the only area there is (None when there are none
    or several and none was chosen)."""
    areas = list_areas(conn)
    if name:
        return areas, resolve_area(conn, name)
    return areas, areas[0] if len(areas) == 1 else None


def _page(request: Request, user: SignedIn, *, area: str | None, q: str = "", sort: str = "id",
          order: str = "asc", page: int = 1, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The registry page of ``area`` (its table, and for staff the upload form) with ``context`` (a result, bad
    rows or an error line)."""
    settings = console_settings(request)
    with console_engine(request).connect() as conn:
        try:
            areas, chosen = _areas(conn, area)
        except NotFound as exc:
            areas, chosen = list_areas(conn), None
            context.setdefault("error", f"没有这个区域 / {exc}")
            status_code = 404 if status_code == 200 else status_code
        table = station_page(conn, chosen.id, q=q, sort=sort, descending=order == "desc",
                             page=page) if chosen else None

    def link(**changes: Any) -> str:
        query = {"area": chosen.name if chosen else "", "q": q, "sort": sort, "order": order, "page": 1, **changes}
        return f"{REGISTRY_PATH}?{urlencode({k: v for k, v in query.items() if v not in ('', None)})}"

    return render(request, "registry.html", status_code=status_code, user=user, areas=areas, area=chosen,
                  table=table, q=q, sort=sort, order=order, sorts=SORTS, link=link, coords=COORDS,
                  formats=FORMATS, can_upload=user.role in UPLOADERS, max_upload_mb=settings.max_upload_mb,
                  **context)


@router.get(REGISTRY_PATH, response_class=HTMLResponse)
def registry_page(request: Request, user: SignedInUser,
                  area: Annotated[str | None, Query(max_length=200)] = None,
                  q: Annotated[str, Query(max_length=200)] = "",
                  sort: Annotated[str, Query(max_length=20)] = "id",
                  order: Annotated[Literal["asc", "desc"], Query()] = "asc",
                  page: Annotated[int, Query(ge=1, le=1_000_000)] = 1) -> HTMLResponse:
    """The area's stations (searched, sorted, paged) and, for staff and admins, the upload form and downloads."""
    return _page(request, user, area=area, q=q.strip(), sort=sort if sort in SORTS else "id", order=order,
                 page=page)


@router.post(REGISTRY_PATH, response_class=HTMLResponse)
async def registry_upload(request: Request, user: StaffUser) -> Response:
    """Import the posted file into the chosen area; the result page, or the bad rows with nothing stored."""
    settings = console_settings(request)
    area: str | None = None
    try:
        upload = await read_upload(request, user, settings)
        area = upload.fields.get("area") or None
        coord = upload.fields.get("coord") or "wgs84"
        if coord not in COORDS:
            raise InvalidInput(f"coord: 坐标系 {coord!r} 无效 / unknown coordinate system {coord!r}; expected one "
                               f"of {', '.join(COORDS)}")
        eng = console_engine(request)

        def job() -> Any:
            return import_stations(
                eng, upload.name, area=area, coord=coord, data=upload.data, filename=upload.name,
                ignore_unknown_columns=upload.fields.get("ignore_unknown_columns") == "true",
                trust_coords=upload.fields.get("trust_coords") == "true", max_rows=settings.max_api_import_rows,
                limits=ImportLimits.from_settings(settings), placement_check=placement_check(settings, eng))

        report = await anyio.to_thread.run_sync(job)
    except ImportRejected as exc:
        groups = exc.groups
        bad = [(g, _rows_text(g), _how_to_fix(g)) for g in groups[:GROUPS_SHOWN]]
        return _page(request, user, area=area, status_code=422, source=exc.source, bad=bad,
                     problems=len(exc.problems), more_groups=max(0, len(groups) - GROUPS_SHOWN))
    except YizhanError as exc:
        status = http_status(exc)
        return _page(request, user, area=area, status_code=status, error=str(exc),
                     headers={"Connection": "close"} if status == 413 else None)
    return _page(request, user, area=report.area, report=report, source=upload.name)


@router.get(REGISTRY_PATH + "/stations.{fmt}", response_class=Response)
def registry_download(request: Request, user: StaffUser, fmt: Literal["csv", "xlsx", "geojson", "gpkg"],
                      area: Annotated[str | None, Query(max_length=200)] = None,
                      lang: Literal["zh", "en"] | None = None) -> Response:
    """The area's registry as an import file in ``lang`` (default: the language of its last import)."""
    try:
        data = stations_download(console_engine(request), fmt, area=area, lang=lang)
    except YizhanError as exc:
        return _page(request, user, area=None, status_code=http_status(exc), error=str(exc))
    return Response(data, media_type=MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="stations.{fmt}"', "Cache-Control": "no-store"})
