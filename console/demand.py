"""``/console/demand``: an area's delivery demand in the console.

- ``GET /console/demand?area=``: the area's demand cells as stored (how many, the total demand, the area they
  cover in km², the cell edge in metres); for staff and admins the upload form.
- ``POST /console/demand`` (staff, admin; multipart: ``file``, ``area``, ``coord``, ``cell_size`` metres,
  ``append``, ``clip``, the optional ``lon_col``, ``lat_col``, ``weight_col``, ``time_col``, ``encoding`` and the
  CSRF token): the files and options of ``yizhan demand import`` (CSV or XLSX of order points with lon/lat or the
  documented alternative columns, GeoJSON, GeoPackage, GeoParquet, a shapefile as a .zip) through
  ``data.demand.import_demand``, after the API's upload size limit (``console.uploads``) and with its row limit.
  The answer is the result page: points, cells, total demand, km² covered, the columns used; a bad file gets one
  line naming the row, field and value (and how many more problems there are), nothing stored.
- ``POST /console/demand/profile`` (every role; multipart ``file``, ``area`` or ``clear``): the area's week profile
  (``yizhan demand profile``): how runs by hour of the week spread the orders that carry no time.

Positions are WGS 84 lon/lat degrees unless ``coord`` says GCJ-02 or BD-09; cell edges and areas are metres and
square kilometres in the area's metric CRS.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection, text

from yizhan.accounts.sessions import SignedIn
from yizhan.areas import AreaInfo, list_areas, resolve_area
from yizhan.console.auth import SignedInUser, console_engine, console_settings, require_role
from yizhan.console.layout import render
from yizhan.console.uploads import Upload, read_upload
from yizhan.data.demand import DemandSummary, import_demand
from yizhan.data.demand_columns import DemandColumns
from yizhan.data.demand_files import GEOMETRY_SUFFIXES, TABLE_SUFFIXES
from yizhan.data.demand_profile import drop_profile, store_profile, stored_profile
from yizhan.errors import ImportRejected, InvalidInput, NotFound, YizhanError, http_status
from yizhan.settings import Settings
from yizhan.stations.tables import ImportLimits
from yizhan.weekly.profile import read_profile

DEMAND_PATH = "/console/demand"
PROFILE_PATH = DEMAND_PATH + "/profile"
SUFFIXES = (*TABLE_SUFFIXES, *GEOMETRY_SUFFIXES, ".zip")
"""The files a browser may upload: tables, point layers and a shapefile zipped with its .dbf, .shx and .prj (a
lone .shp cannot carry them)."""
COORDS = {"wgs84": "WGS 84（GPS、天地图） WGS 84 (GPS, Tianditu)",
          "gcj02": "GCJ-02（高德、腾讯） GCJ-02 (Amap, Tencent)",
          "bd09": "BD-09（百度） BD-09 (Baidu)"}
"""The coordinate systems of a file's lon/lat columns."""
ENCODINGS = {"": "自动 automatic", "gbk": "GBK", "utf-8": "UTF-8"}
"""A shapefile's text encoding when it has no .cpg: found from the .dbf by default."""
UPLOADERS = ("admin", "staff")
"""The roles that upload demand."""

StaffUser = Annotated[SignedIn, Depends(require_role(*UPLOADERS))]

router = APIRouter(tags=["console"], include_in_schema=False)


@dataclass
class DemandState:
    """An area's stored demand: cells, their summed demand (orders), the km² they cover, the cell edge (metres;
    None for a grid imported as polygons of several sizes or when there is no cell)."""

    cells: int
    total: float
    km2: float
    cell_size_m: float | None


def demand_state(conn: Connection, area: AreaInfo) -> DemandState:
    """The demand cells stored for ``area``: their count, total, covered km² (measured in the area's metric CRS)
    and cell edge."""
    row = conn.execute(text(
        "SELECT count(*) AS cells, coalesce(sum(weight), 0) AS total, "
        "coalesce(sum(ST_Area(ST_Transform(geom, :crs))), 0) / 1e6 AS km2, "
        "CASE WHEN min(cell_size_m) = max(cell_size_m) THEN min(cell_size_m) END AS size "
        "FROM area_cells WHERE area_id = :a"), {"a": area.id, "crs": area.crs_epsg}).one()
    return DemandState(int(row.cells), float(row.total), float(row.km2),
                       float(row.size) if row.size is not None else None)


def _one_line(exc: ImportRejected) -> str:
    """A rejected file in one line: its first bad value (row, field, value, what is expected) and how many more."""
    groups = exc.groups
    if not groups:
        return str(exc)
    more = len(exc.problems) - len(groups[0].rows)
    rest = f"（另有 {more} 处问题 / and {more} more problem(s)）" if more > 0 else ""
    return f"{exc.source}: {groups[0]}{rest}；未导入任何数据 / nothing was imported"


def _number(fields: dict[str, str], name: str, default: float) -> float:
    """The form's number ``name`` (``default`` when empty); InvalidInput naming the field and the value."""
    raw = fields.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name}: {raw!r} 不是数字 / is not a number; expected metres, e.g. 200") from None
    if not math.isfinite(value):
        raise InvalidInput(f"{name}: {raw!r} 不是有限数 / is not a finite number; expected metres, e.g. 200")
    return value


def _file_name(upload: Upload) -> str:
    """The uploaded file's own name (no folder; the suffix says the format); InvalidInput for a suffix no reader
    takes."""
    name = Path(upload.name.replace("\\", "/").replace("\x00", "")).name or "upload"
    suffix = Path(name).suffix.lower()
    if suffix == ".shp":
        raise InvalidInput(f"{name}: 请把 .shp 与 .dbf、.shx、.prj 一起压缩成 .zip 上传 / upload a shapefile as a .zip "
                           f"holding its .shp, .dbf, .shx and .prj")
    if suffix not in SUFFIXES:
        raise InvalidInput(f"{name}: 不支持的文件类型 / unsupported file type {suffix or '(none)'}; expected "
                           f"{', '.join(SUFFIXES)}")
    if len(name.encode()) > 200:
        name = "upload" + suffix
    return name


def import_upload(request: Request, upload: Upload, settings: Settings) -> DemandSummary:
    """Import the uploaded demand file as ``yizhan demand import`` does, from a temporary copy (the readers take
    a path), removed afterwards."""
    f = upload.fields
    coord = f.get("coord") or "wgs84"
    if coord not in COORDS:
        raise InvalidInput(f"coord: 坐标系 {coord!r} 无效 / unknown coordinate system {coord!r}; expected one of "
                           f"{', '.join(COORDS)}")
    encoding = f.get("encoding") or None
    if encoding is not None and encoding not in ENCODINGS:
        raise InvalidInput(f"encoding: {encoding!r} 无效 / unknown encoding; expected gbk or utf-8")
    size = _number(f, "cell_size", settings.cell_size_m)
    columns = DemandColumns(lon=f.get("lon_col", "").strip() or None, lat=f.get("lat_col", "").strip() or None,
                            weight=f.get("weight_col", "").strip() or None,
                            time=f.get("time_col", "").strip() or None)
    name = _file_name(upload)
    with tempfile.TemporaryDirectory(prefix="yizhan-demand-") as folder:
        path = Path(folder) / name
        path.write_bytes(upload.data)
        return import_demand(console_engine(request), path, area=f.get("area") or None, coord=coord,
                             cell_size_m=size, append=f.get("append") == "true", clip=f.get("clip") == "true",
                             timezone=settings.timezone, columns=columns, encoding=encoding,
                             limits=ImportLimits.from_settings(settings))


def _page(request: Request, user: SignedIn, *, area: str | None, status_code: int = 200,
          **context: Any) -> HTMLResponse:
    """The demand page of ``area`` (its stored demand, for staff the upload form) with ``context``."""
    settings = console_settings(request)
    with console_engine(request).connect() as conn:
        areas = list_areas(conn)
        chosen: AreaInfo | None = None
        try:
            chosen = resolve_area(conn, area) if area else (areas[0] if len(areas) == 1 else None)
        except NotFound as exc:
            context.setdefault("error", f"没有这个区域 / {exc}")
            status_code = 404 if status_code == 200 else status_code
        state = demand_state(conn, chosen) if chosen else None
        profile = stored_profile(conn, chosen.id) if chosen else None
    return render(request, "demand.html", status_code=status_code, user=user, areas=areas, area=chosen,
                  state=state, profile_source=profile[1] if profile is not None else None, coords=COORDS,
                  encodings=ENCODINGS, can_upload=user.role in UPLOADERS,
                  cell_size_m=settings.cell_size_m, max_upload_mb=settings.max_upload_mb,
                  suffixes=",".join(SUFFIXES), **context)


@router.get(DEMAND_PATH, response_class=HTMLResponse)
def demand_page(request: Request, user: SignedInUser,
                area: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    """The area's stored demand and, for staff and admins, the upload form."""
    return _page(request, user, area=area)


@router.post(DEMAND_PATH, response_class=HTMLResponse)
async def demand_upload(request: Request, user: StaffUser) -> Response:
    """Import the posted demand file into the chosen area; the result, or one line naming what is wrong."""
    settings = console_settings(request)
    area: str | None = None
    try:
        upload = await read_upload(request, user, settings)
        area = upload.fields.get("area") or None
        summary = await anyio.to_thread.run_sync(lambda: import_upload(request, upload, settings))
    except ImportRejected as exc:
        return _page(request, user, area=area, status_code=422, error=_one_line(exc))
    except YizhanError as exc:
        status = http_status(exc)
        return _page(request, user, area=area, status_code=status, error=str(exc),
                     headers={"Connection": "close"} if status == 413 else None)
    return _page(request, user, area=summary.area, summary=summary, source=upload.name)


@router.post(PROFILE_PATH, response_class=HTMLResponse)
async def profile_upload(request: Request, user: SignedInUser) -> Response:
    """Store the posted week profile (CSV or XLSX: 168 rows of weekday, hour, weight or a 24 x 7 table) as the
    area's, or forget it (``clear``): how runs by hour spread the orders that carry no time. Every role may: it is a
    planning input. One line naming what is wrong, nothing stored."""
    settings = console_settings(request)
    area: str | None = None
    try:
        upload = await read_upload(request, user, settings, file_required=False)
        area = upload.fields.get("area") or None
        if upload.fields.get("clear"):
            note = await anyio.to_thread.run_sync(lambda: _clear_profile(request, area))
        else:
            note = await anyio.to_thread.run_sync(lambda: _store_profile(request, upload, area, settings))
    except ImportRejected as exc:
        return _page(request, user, area=area, status_code=422, error=_one_line(exc))
    except YizhanError as exc:
        return _page(request, user, area=area, status_code=http_status(exc), error=str(exc))
    return _page(request, user, area=area, profile_note=note)


def _store_profile(request: Request, upload: Upload, area: str | None, settings: Settings) -> str:
    if not upload.name:
        raise InvalidInput("请选择周需求曲线文件 / choose a week profile file (CSV or XLSX)")
    name = Path(upload.name.replace("\\", "/")).name or "profile.csv"
    week = read_profile(upload.data, name, limits=ImportLimits.from_settings(settings))
    with console_engine(request).begin() as conn:
        info = resolve_area(conn, area)
        store_profile(conn, info.id, week, source=name)
    return f"已采用 {name} 作为周需求曲线 / {name} is now the area's week profile"


def _clear_profile(request: Request, area: str | None) -> str:
    with console_engine(request).begin() as conn:
        drop_profile(conn, resolve_area(conn, area).id)
    return "已恢复内置周需求曲线 / the built-in week profile applies again"
