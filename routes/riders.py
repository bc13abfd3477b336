"""Riders' routes: health, the nearest stations, the registry's pages.

A station in the nearest search and in ``GET /stations/{id}`` carries its hours now (or at ``open_at``: open,
the next change, in Chinese and English), its navigation links, and in a search the minutes to it; an empty
search says why (``reason``) and names the station that would help.

Coordinates are lon/lat degrees; ``coord`` selects WGS 84, GCJ-02 or BD-09 for input and output (stored data is
always WGS 84). Distances are geodesic metres (``distance_m``) or metres along the streets
(``network_distance_m``).
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
import functools
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from yizhan import __version__
from yizhan.coverage.routing import nearest_along_streets, nearest_from_table
from yizhan.geo.coords import to_wgs84
from yizhan.routes.deps import EngineDep, RiderLimit, limit_rider, require_area
from yizhan.routes.query import parse_query, query_openapi
from yizhan.settings import MAX_RADIUS_M, Settings
from yizhan.stations import vocab
from yizhan.stations.registry import StationFilter, get_station, list_stations
from yizhan.stations.schema import (
    Coord,
    NearestAnswer,
    StationFeature,
    StationPage,
    rider_nav,
    station_collection,
    station_feature,
)
from yizhan.stations.search import NearestSearch, hours_said, rider_answer

NEAREST_PATH = "/stations/nearest"
AMENITY_HELP = (f"Required amenities (repeatable): the codes {', '.join(vocab.AMENITIES)}, or their Chinese names "
                f"and the synonyms clerks write ({vocab.choices('amenity')}; 充电桩, 厕所, 热水 ...)")
SPACED_OFFSET = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}):?(\d{2})")
"""A date-time whose UTC offset begins with a space: the ``+`` of ``+08:00`` as a query string decodes it when
it was not written ``%2B``."""

router = APIRouter()


class Health(BaseModel):
    """The process is up."""

    status: Literal["ok"]
    version: str


class Ready(BaseModel):
    """The database and PostGIS answer."""

    status: Literal["ready"]
    postgis: str = Field(description="PostGIS library version")


@router.get("/healthz", tags=["health"], response_model=Health)
def healthz() -> dict[str, str]:
    """The process is up (does not touch the database)."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz", tags=["health"], response_model=Ready)
def readyz(eng: EngineDep) -> dict[str, str]:
    """The database and PostGIS answer."""
    with eng.connect() as conn:
        version = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    return {"status": "ready", "postgis": str(version)}


class NearestQuery(BaseModel):
    """The query parameters of ``GET /stations/nearest``, validated in one pydantic call (FastAPI's
    per-parameter parsing costs more CPU than the search itself); documented from this model. ``k`` is at most
    the settings' ``max_k`` in the model each app uses (``nearest_query``)."""

    model_config = ConfigDict(extra="ignore")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude, degrees")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude, degrees")
    k: int = Field(5, ge=1, description="How many stations")
    amenity: list[str] | None = Field(None, description=AMENITY_HELP)
    open_at: datetime | None = Field(None, description="Open at this ISO time (naive: local); an offset's + is "
                                     "written %2B in a URL (a bare +, which arrives as a space, is read as one)")
    kind: str | None = Field(None, description=f"Kind of station: {', '.join(vocab.KINDS)} or the Chinese words "
                             f"({vocab.choices('kind')}, 大站 ...)")
    area: str | None = Field(None, max_length=200)
    coord: Coord = Field("wgs84", description="Coordinate system of lon/lat in and out")
    by: Literal["straight", "network"] = Field("straight", description="Rank by straight-line distance or "
                                               "along the streets (adds network_distance_m and a route)")
    profile: Literal["walk", "bike"] = Field("walk", description="Streets for by=network")
    max_distance_m: float | None = Field(None, gt=0, le=MAX_RADIUS_M, allow_inf_nan=False,
                                         description="Farthest station listed, metres (along the streets with "
                                                     "by=network); default the server's setting; nothing within "
                                                     "it: reason none_within and nearest_beyond")
    open_now: bool = Field(False, description="Only stations open at the request time (open_at is then ignored); "
                                              "none open: reason none_open and next_open")
    open_24h: bool = Field(False, description="Only stations open round the clock (24 小时: open without a break "
                                              "for the week from open_at, or from now); none within the limit: "
                                              "reason none_all_day")

    @field_validator("amenity")
    @classmethod
    def amenity_codes(cls, values: list[str] | None) -> list[str] | None:
        """Each amenity as its stored code (充电 and 充电桩 are ``charging``); an unknown word named with the
        nearest known one."""
        return None if values is None else [_vocabulary_code("amenity", v) for v in values]

    @field_validator("kind")
    @classmethod
    def kind_code(cls, value: str | None) -> str | None:
        """The kind as its stored code (大型, 大站 are ``large``)."""
        return None if value is None else _vocabulary_code("kind", value)

    @field_validator("open_at", mode="before")
    @classmethod
    def plus_as_space(cls, value: object) -> object:
        """``2025-06-04T12:00:00 08:00`` (an unencoded ``+`` decoded as a space) read as ``+08:00`` when the rest
        is a valid offset (hours 00-23, minutes 00-59); otherwise the error says how to write the ``+``."""
        if not isinstance(value, str) or not (m := SPACED_OFFSET.fullmatch(value.strip())):
            return value
        when, hours, minutes = m.groups()
        if int(hours) > 23 or int(minutes) > 59:
            raise ValueError(f"a space where a UTC offset's '+' should be, and "
                             f"'{hours}:{minutes}' is no offset; use %2B for + in a URL "
                             f"(open_at=2025-06-04T12:00:00%2B08:00), or give local time without an offset")
        return f"{when}+{hours}:{minutes}"


def _vocabulary_code(field: str, value: str) -> str:
    """The stored code of a word of the registry's vocabulary; ValueError (a 422 naming the parameter) naming the
    word, the nearest known one and what is accepted."""
    code = vocab.canonical(field, value)
    if code is not None:
        return code
    near = vocab.closest(field, value)
    hint = f"; 最接近 / closest: {vocab.short(field, near)} ({near})" if near else ""
    raise ValueError(f"未知的词 / unknown word {value!r}: 可用 / expected {vocab.choices(field)} "
                     f"({', '.join(vocab.KINDS if field == 'kind' else vocab.AMENITIES)}){hint}")


@functools.cache
def nearest_query(max_k: int, max_distance_m: float | None = None) -> type[NearestQuery]:
    """``NearestQuery`` with ``k`` at most ``max_k`` and ``max_distance_m`` (metres) as the default limit."""
    limit = NearestQuery.model_fields["max_distance_m"]
    return create_model("NearestQuery", __base__=NearestQuery, __doc__=NearestQuery.__doc__,
                        k=(int, Field(5, ge=1, le=max_k, description="How many stations")),
                        max_distance_m=(float | None, Field(max_distance_m, gt=0, le=MAX_RADIUS_M, allow_inf_nan=False,
                                                            description=limit.description)))


def configure(app: FastAPI, settings: Settings) -> None:
    """The riders' routes' parts that follow the settings: the nearest search's largest ``k`` (``max_k``), in
    the model validating its query (``app.state.nearest_query``) and in the app's OpenAPI document (the route
    itself is shared by every app made in the process, so its declared parameters cannot carry one app's limit)."""
    model = nearest_query(settings.max_k, settings.max_distance_m)
    app.state.nearest_query = model
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        doc = generate()  # made once, then cached in app.openapi_schema
        if fresh:
            doc["paths"][NEAREST_PATH]["get"]["parameters"] = query_openapi(model)["parameters"]
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    # The riders' hot path: the same handler also as a plain Starlette route placed first in the app's routes, so a
    # search is matched at once and skips FastAPI's per-request dependency solving (about 30 us of CPU, as much as
    # the search's own answer costs); the route declared below stays for the OpenAPI document.
    app.router.routes.insert(0, Route(NEAREST_PATH, nearest, methods=["GET"], include_in_schema=False))


@router.get(NEAREST_PATH, tags=["riders"], response_class=JSONResponse,
            responses={200: {"model": NearestAnswer, "description": "The nearest stations, nearest first"}},
            openapi_extra=query_openapi(NearestQuery))
async def nearest(request: Request) -> Response:
    """The k nearest active stations: by exact geodesic distance (``distance_m``, metres), or along the
    streets of the point's area (``by=network``: ``network_distance_m`` and a ``route`` LineString)."""
    await limit_rider(request)  # called here, not as a dependency: FastAPI's dependency machinery costs CPU
    state = request.app.state
    q = parse_query(state.nearest_query, request)
    if q.coord == "wgs84":
        x, y = q.lon, q.lat
    else:
        wlon, wlat = to_wgs84(np.array([q.lon]), np.array([q.lat]), q.coord)
        x, y = float(wlon[0]), float(wlat[0])
    settings: Settings = state.settings
    limit = q.max_distance_m if q.max_distance_m is not None else settings.max_distance_m
    found = await rider_answer(state.db, NearestSearch(x, y, k=q.k, amenities=q.amenity, open_at=q.open_at,
                                                       kind=q.kind, area=q.area, by=q.by, profile=q.profile,
                                                       max_distance_m=limit, all_day=q.open_24h),
                               settings=settings, along_streets=nearest_along_streets, from_table=nearest_from_table,
                               open_now=q.open_now)
    if not found.stations and q.area is not None:  # nothing found: say so if the area itself does not exist
        await run_in_threadpool(lambda: require_area(state.db.engine(), q.area))
    body = station_collection(found.stations, q.coord, found.extras, nav=True, query={
        "lon": q.lon, "lat": q.lat, "coord": q.coord, "k": q.k, "amenity": q.amenity or [],
        "open_at": q.open_at.isoformat() if q.open_at else None, "by": q.by,
        **({"kind": q.kind} if q.kind else {}), **({"profile": q.profile} if q.by == "network" else {}),
        "open_now": q.open_now, "open_24h": q.open_24h, "max_distance_m": limit,
        "at": found.at.isoformat(timespec="seconds")},
        speeds=found.speeds)
    if found.reason is not None:
        body["reason"] = found.reason
        for key, pair in (("nearest_beyond", found.nearest_beyond), ("next_open", found.next_open)):
            body[key] = None if pair is None else station_collection([pair[0]], q.coord, [pair[1]],
                                                                     nav=True)["features"][0]
    return Response(orjson.dumps(body), media_type="application/json", headers={"X-Nearest-Source": found.source})


@router.get("/stations", tags=["riders"], response_model=StationPage, response_model_exclude_unset=True)
def stations(_: RiderLimit, eng: EngineDep, area: Annotated[str | None, Query(max_length=200)] = None,
             kind: Annotated[Literal["large", "small", "mobile"] | None, Query()] = None,
             status: Annotated[Literal["active", "closed"] | None, Query()] = None,
             limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0)] = 0,
             coord: Coord = "wgs84") -> dict[str, object]:
    """A page of the registry as GeoJSON, with ``total``."""
    require_area(eng, area)
    with eng.connect() as conn:
        total, items = list_stations(conn, area=area, kind=kind, status=status, limit=limit, offset=offset)
    return station_collection(items, coord, total=total, limit=limit, offset=offset)


@router.get("/stations/{station_id}", tags=["riders"], response_model=StationFeature,
            response_model_exclude_unset=True)
def station(request: Request, _: RiderLimit, eng: EngineDep, station_id: str,
            area: Annotated[str | None, Query(max_length=200)] = None, coord: Coord = "wgs84",
            open_at: Annotated[datetime | None, Query(description="Say the hours at this ISO time (naive: local; "
                                                                  "an offset's + written %2B); default now")] = None,
            ) -> dict[str, object]:
    """One station by its registry id, with its hours now (or at ``open_at``) and its navigation links."""
    require_area(eng, area)
    StationFilter(open_at=open_at)  # the nearest search's check of open_at: a 422 for a year out of range
    settings: Settings = request.app.state.settings
    tz = settings.timezone
    at = open_at if open_at is not None else datetime.now(ZoneInfo(tz))
    with eng.connect() as conn:
        st = get_station(conn, station_id, area=area)
    extra = hours_said(st["opening_hours"], at, tz=tz, text=st["opening_hours_text"])
    return station_feature(st, coord, extra, rider_nav([st])[0])
