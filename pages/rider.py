"""The rider's pages: ``/`` finds the nearest open stations from the phone's position, ``/s/{id}`` is one station's
own page with a QR code of its address; ``/rider-assets/{name}`` serves their script and style; ``/places``
(``pages.places``) the places a rider can type.

``/`` is a server-rendered shell: its script (``static/rider/rider.js``) asks the browser for the position (WGS 84
lon/lat degrees), or takes a place typed (``GET /places``) or a point tapped on the map, and asks
``GET /stations/nearest`` itself, so the list is exactly the API's answer. Before a position is known the map
shows the area of ``?area=``, else the one holding most stations (``stations.area_view``): its streets and
stations. ``/s/{id}`` is rendered here from the registry, with the same feature the API gives.
Every text from data goes through the template's escaping (or ``textContent`` in the script).
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from yizhan.areas import get_area
from yizhan.coverage.streets import streets_near
from yizhan.errors import DATABASE_DOWN_ERRORS, DatabaseUnavailable, NotFound, YizhanError, http_status
from yizhan.pages import places
from yizhan.pages.qr import qr_svg
from yizhan.pages.station_view import station_view
from yizhan.routes.deps import DatabaseDep, EngineDep, RiderLimit, SettingsDep
from yizhan.routes.planners import ASSET_PREFIX
from yizhan.stations import vocab
from yizhan.stations.area_view import AreaView, area_view
from yizhan.stations.places import MAX_QUERY_CHARS
from yizhan.stations.registry import get_station
from yizhan.stations.schema import rider_nav, station_feature
from yizhan.stations.search import hours_said

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static" / "rider"
"""The rider's page's own script and style."""
STATIC_PREFIX = "/rider-assets"
LEAFLET = f"{ASSET_PREFIX}/leaflet-1.9.3"
"""The vendored Leaflet the planners' maps ship (maps/static), served by the app."""
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".svg": "image/svg+xml"}
FILTERS: tuple[tuple[str, str, str], ...] = (
    ("open_now", "现在开放", "open now"), ("24h", "24小时", "24 h"), ("charging", "充电", "charging"),
    ("drinking_water", "饮水", "water"), ("toilet", "卫生间", "toilet"), ("microwave", "微波炉", "microwave"),
    ("warmth", "取暖/空调", "heating / AC"), ("love_fridge", "爱心冰箱", "love fridge"))
"""The filter chips of ``/``: key, Chinese and English label. The script maps each to the API's parameters."""

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
"""The pages' Content-Security-Policy: the browser loads nothing from another host and runs no inline script
(navigation links to the map apps are navigations, which it does not restrict)."""

TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                        trim_blocks=True, lstrip_blocks=True)

router = APIRouter(tags=["pages"])
router.include_router(places.router)


def _html(request: Request, template: str, status_code: int = 200, **context: object) -> HTMLResponse:
    # behind a proxy with a path prefix (``--root-path``) every URL the page uses carries the prefix
    root = request.scope.get("root_path", "").rstrip("/")
    page = TEMPLATES.get_template(template).render(root=root, leaflet=root + LEAFLET, assets=root + STATIC_PREFIX,
                                                   **context)
    return HTMLResponse(page, status_code=status_code,
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP})


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def rider_page(_: RiderLimit, request: Request, db: DatabaseDep,
               area: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    """The nearest open stations from the rider's position (the page's script asks the API); the map shows the
    area ``area`` (else the one with most stations) before the position is known, or nothing while the database
    cannot be reached (the page still loads, and says so when it asks)."""
    view: AreaView | None = None
    try:
        with db.engine().connect() as conn:
            view = area_view(conn, area)
    except DatabaseUnavailable:
        pass
    except DATABASE_DOWN_ERRORS:
        pass
    except NotFound as exc:
        return _html(request, "missing.html", status_code=http_status(exc), zh=f"没有区域 {area}",
                     en=f"no area named {area!r}")
    amenities = {a: (vocab.label("amenity", a), vocab.label_en("amenity", a)) for a in vocab.AMENITIES}
    return _html(request, "rider.html", filters=FILTERS, amenities=amenities, view=view,
                 max_query=MAX_QUERY_CHARS)


@router.get("/s/{station_id}", response_class=HTMLResponse, include_in_schema=False)
def station_page(_: RiderLimit, request: Request, eng: EngineDep, settings: SettingsDep, station_id: str,
                 area: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    """A station's own page: hours in Chinese, amenities, phone, navigation, its link and a QR code of it; the
    station as ``GET /stations/{id}`` gives it (hours now, navigation links)."""
    try:
        with eng.connect() as conn:
            st = get_station(conn, station_id, area=area)
    except YizhanError as exc:
        zh = "没有这个驿站" if isinstance(exc, NotFound) else "无法显示这个驿站"
        return _html(request, "missing.html", status_code=http_status(exc), zh=zh, en=str(exc))
    at = datetime.now(UTC)
    said = hours_said(st["opening_hours"], at, tz=settings.timezone, text=st["opening_hours_text"])
    feature = station_feature(st, "wgs84", said, rider_nav([st])[0])  # as GET /stations/{id} gives it
    view = station_view(feature, at=at, tz=settings.timezone)
    own = request.url.replace_query_params(area=feature["properties"]["area"])
    return _html(request, "station.html", s=view, url=str(own), qr=qr_svg(str(own)))


STREETS_RADIUS_M = 1500.0
"""How far around the rider the map's streets are drawn, metres."""
STREETS_MAX_EDGES = 8000
"""At most this many street edges go to a phone (the nearest ends first)."""


@router.get("/rider-streets", include_in_schema=False)
def rider_streets(_: RiderLimit, eng: EngineDep, settings: SettingsDep, area: Annotated[str, Query(max_length=200)],
                  lon: Annotated[float, Query(ge=-180, le=180)],
                  lat: Annotated[float, Query(ge=-90, le=90)]) -> JSONResponse:
    """The area's streets around (lon, lat) (WGS 84 degrees) as a GeoJSON MultiLineString, for the rider's map
    without tiles; 404 when the area has no street graph."""
    with eng.connect() as conn:
        info = get_area(conn, area)
    lines = streets_near(info, lon, lat, settings=settings, radius_m=STREETS_RADIUS_M, max_edges=STREETS_MAX_EDGES)
    if lines is None:
        raise NotFound(f"区域 {area!r} 没有街道数据 / area {area!r} has no street network")
    return JSONResponse(lines, headers={"Cache-Control": "max-age=3600"})


@router.get(STATIC_PREFIX + "/{name}", include_in_schema=False)
def rider_asset(name: str) -> FileResponse:
    """The page's own script and style files (only the files of ``static/rider``)."""
    path = STATIC_DIR / name
    if "/" in name or name.startswith(".") or path.suffix not in MEDIA_TYPES or not path.is_file():
        raise HTTPException(404, f"没有这个文件 / no such file: {name}")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})
