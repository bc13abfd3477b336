"""The HTTP API (FastAPI): nearest station for riders, registry and gap reports for staff, the planner's map.

Routes parse parameters, call a domain function and serialise; domain errors become HTTP codes in
``ERROR_STATUS`` only. Coordinates are lon/lat degrees; ``coord`` selects WGS 84, GCJ-02 or BD-09 for input
and output (stored data is always WGS 84). Distances are geodesic metres.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route signatures at run time, and some
# of them use values (``cfg.max_k``) local to ``create_app``.
import asyncio
import functools
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal, get_args, get_origin

import numpy as np
import orjson
import psycopg
from fastapi import Depends, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool

from yizhan import __version__
from yizhan.coverage.routing import nearest_along_streets
from yizhan.coverage.runs import latest_run_id, load_run, summary_of
from yizhan.db.engine import AsyncPool, database_url, make_engine, migrate
from yizhan.errors import (
    DatabaseUnavailable,
    ImportRejected,
    InvalidInput,
    NotFound,
    SetupError,
    TooManyRequests,
    Unauthorized,
    YizhanError,
)
from yizhan.geo.coords import from_wgs84, to_wgs84
from yizhan.keys import key_is_valid
from yizhan.ratelimit import RateLimiter
from yizhan.settings import Settings, get_settings
from yizhan.stations import vocab
from yizhan.stations.memindex import IndexKeeper
from yizhan.stations.nearest import nearest_stations_async
from yizhan.stations.registry import StationFilter, get_station, list_stations, nearest_stations
from yizhan.stations.service import import_stations

Coord = Literal["wgs84", "gcj02", "bd09"]
ERROR_STATUS: dict[type[Exception], int] = {
    ImportRejected: 422,
    NotFound: 404,
    InvalidInput: 422,
    DatabaseUnavailable: 503,
    SetupError: 503,
    Unauthorized: 401,
    TooManyRequests: 429,
}
AMENITY_HELP = f"Required amenities (repeatable): {', '.join(vocab.AMENITIES)}"
DB_DOWN = (OperationalError, InterfaceError, PoolTimeout, psycopg.OperationalError)


class Database:
    """The app's engine, created (and the schema migrated) on first use, retried after a failure; and the
    async pool of the nearest-station hot path, made after the engine (so the schema is migrated first); and,
    with the pool, the in-process station index of that path (``YIZHAN_NEAREST_INDEX_TTL_S`` > 0)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._pool: AsyncPool | None = None
        self._pool_lock = asyncio.Lock()
        self._index: IndexKeeper | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    # a fixed pool, no overflow: overflow connections are closed on return and re-opened (a fork
                    # and a login in PostgreSQL each) under load; requests wait for a pooled one instead
                    eng = make_engine(database_url(self.settings),
                                      statement_timeout_ms=self.settings.statement_timeout_ms, pool_size=20,
                                      max_overflow=0)
                    try:
                        migrate(eng)
                    except BaseException:
                        eng.dispose()
                        raise
                    self._engine = eng
        return self._engine

    async def pool(self) -> AsyncPool:
        """The async pool (in the running event loop); DatabaseUnavailable while the database is down."""
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                try:
                    eng = await run_in_threadpool(self.engine)
                except DB_DOWN as exc:
                    raise DatabaseUnavailable("the database is unavailable right now; try again shortly") from exc
                url = eng.url.render_as_string(hide_password=False)
                self._pool = AsyncPool(url, max_size=self.settings.db_pool_size,
                                       timeout=self.settings.db_pool_timeout_s,
                                       statement_timeout_ms=self.settings.statement_timeout_ms)
                if self._index is None and self.settings.nearest_index_ttl_s > 0:
                    self._index = IndexKeeper(url, self.settings.nearest_index_ttl_s)
                    self._index.start()  # loads in the background; the pool answers until then
        return self._pool

    @property
    def station_index(self) -> IndexKeeper | None:
        """The keeper of the in-process station index (None before the first nearest-station search)."""
        return self._index

    async def aclose(self) -> None:
        """Close the async pool (at shutdown, in its event loop)."""
        pool, self._pool = self._pool, None
        self._stop_index()
        if pool is not None:
            await pool.close()

    def _stop_index(self) -> None:
        keeper, self._index = self._index, None
        if keeper is not None:
            keeper.stop()

    def dispose(self) -> None:
        self._pool = None  # its connections close with it (the loop that made them may be gone)
        self._stop_index()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _feature(st: dict[str, Any], coord: str) -> dict[str, Any]:
    lon, lat = float(st.pop("lon")), float(st.pop("lat"))
    if coord == "wgs84":
        x, y = [lon], [lat]
    else:
        x, y = from_wgs84(np.array([lon]), np.array([lat]), coord)
    st["kind_label"] = vocab.label("kind", st["kind"])
    if "route" in st:
        path = np.asarray(st["route"], dtype=float).reshape(-1, 2)
        rx, ry = from_wgs84(path[:, 0], path[:, 1], coord)
        st["route"] = {"type": "LineString",
                       "coordinates": [[round(float(a), 7), round(float(b), 7)] for a, b in zip(rx, ry, strict=True)]}
    return {"type": "Feature", "id": st["id"],
            "geometry": {"type": "Point", "coordinates": [round(float(x[0]), 7), round(float(y[0]), 7)]},
            "properties": st}


def _problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Nothing connects to the database until the first request that needs it."""
    cfg = settings or get_settings()
    db = Database(cfg)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await db.aclose()

    app = FastAPI(title="yizhan 驿站", version=__version__, lifespan=lifespan,
                  description="Nearest rest station for outdoor workers, coverage gaps and maps. "
                              "Coordinates are lon/lat degrees; distances are geodesic metres.")
    app.state.db = db
    from yizhan.maps.folium_map import STATIC_DIR

    app.mount("/yizhan-assets", StaticFiles(directory=STATIC_DIR), name="assets")
    if cfg.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cfg.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Content-Type"])

    @app.exception_handler(YizhanError)
    async def _domain_error(_: Request, exc: YizhanError) -> JSONResponse:
        status = next((code for cls, code in ERROR_STATUS.items() if isinstance(exc, cls)), 400)
        if isinstance(exc, ImportRejected):
            return _problem(status, str(exc).split("\n")[0], problems=[p.__dict__ | {"value": str(p.value)}
                                                                       for p in exc.problems])
        response = _problem(status, str(exc))
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if isinstance(exc, DataError):  # a value PostgreSQL cannot take, e.g. a NUL character in text
            return _problem(422, f"a parameter holds a value the database cannot store: {str(exc.orig).strip()}")
        if isinstance(exc, DB_DOWN) or exc.connection_invalidated:
            if "statement timeout" in str(exc.orig):
                return _problem(503, "the database took too long to answer; try again")
            return _problem(503, "the database is unavailable right now; try again shortly")
        raise exc

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(_: Request, exc: PoolTimeout) -> JSONResponse:
        return _problem(503, "the service is busy (no free database connection); try again")

    @app.exception_handler(psycopg.OperationalError)
    async def _pg_down(_: Request, exc: psycopg.OperationalError) -> JSONResponse:
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return _problem(503, "the database took too long to answer; try again")
        return _problem(503, "the database is unavailable right now; try again shortly")

    @app.exception_handler(psycopg.DataError)
    async def _pg_data(_: Request, exc: psycopg.DataError) -> JSONResponse:
        return _problem(422, f"a parameter holds a value the database cannot store: {str(exc).strip()}")

    @app.exception_handler(RequestValidationError)
    async def _bad_params(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e["loc"][1:]) or str(e["loc"][0])
            parts.append(f"{loc}: {e['msg']}" + (f" (got {e['input']!r})" if "input" in e and e["input"] is not None
                                                  else ""))
        return _problem(422, "; ".join(parts), errors=jsonable(exc.errors()))

    def engine() -> Engine:
        try:
            return db.engine()
        except DB_DOWN as exc:
            raise DatabaseUnavailable("the database is unavailable right now; try again shortly") from exc

    def staff(eng: Annotated[Engine, Depends(engine)],
              x_api_key: Annotated[str | None, Header(description="Staff API key")] = None) -> None:
        if not x_api_key:
            raise Unauthorized("a valid X-API-Key header is required for this staff endpoint "
                               "(keys are made with `yizhan keys create NAME`)")
        settings_key = cfg.staff_key.get_secret_value() if cfg.staff_key is not None else None
        with eng.connect() as conn:
            if not key_is_valid(conn, x_api_key, extra=settings_key):
                raise Unauthorized("the X-API-Key is not a valid staff key")

    limiter = RateLimiter(cfg.rate_limit_per_minute)

    async def rider(request: Request) -> None:
        limiter.check(request.client.host if request.client else "unknown")

    EngineDep = Annotated[Engine, Depends(engine)]

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up (does not touch the database)."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"])
    def readyz(eng: EngineDep) -> dict[str, str]:
        """The database and PostGIS answer."""
        with eng.connect() as conn:
            version = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
        return {"status": "ready", "postgis": str(version)}

    class NearestQuery(BaseModel):
        """The query parameters of ``GET /stations/nearest``, validated in one pydantic call (FastAPI's
        per-parameter parsing costs more CPU than the search itself); documented from this model."""

        model_config = ConfigDict(extra="ignore")
        lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude, degrees")
        lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude, degrees")
        k: int = Field(5, ge=1, le=cfg.max_k, description="How many stations")
        amenity: list[str] | None = Field(None, description=AMENITY_HELP)
        open_at: datetime | None = Field(None, description="Open at this ISO time (naive: local)")
        kind: Literal["large", "small", "mobile"] | None = None
        area: str | None = Field(None, max_length=200)
        coord: Coord = Field("wgs84", description="Coordinate system of lon/lat in and out")
        by: Literal["straight", "network"] = Field("straight", description="Rank by straight-line distance or "
                                                   "along the streets (adds network_distance_m and a route)")
        profile: Literal["walk", "bike"] = Field("walk", description="Streets for by=network")

    @app.get("/stations/nearest", tags=["riders"], response_class=JSONResponse,
             openapi_extra=query_openapi(NearestQuery))
    async def nearest(request: Request) -> Response:
        """The k nearest active stations: by exact geodesic distance (``distance_m``, metres), or along the
        streets of the point's area (``by=network``: ``network_distance_m`` and a ``route`` LineString)."""
        await rider(request)  # called here, not as a dependency: FastAPI's dependency machinery costs CPU
        q = parse_query(NearestQuery, request)
        if q.coord == "wgs84":
            x, y = q.lon, q.lat
        else:
            wlon, wlat = to_wgs84(np.array([q.lon]), np.array([q.lat]), q.coord)
            x, y = float(wlon[0]), float(wlat[0])
        source = "database"
        if q.by == "straight" and q.open_at is None:  # the hot path: the in-process index, else one statement
            keeper = db.station_index
            index = keeper.current() if keeper is not None else None
            found = (index.nearest(x, y, k=q.k, amenities=q.amenity, kind=q.kind, area=q.area)
                     if index is not None else None)
            if found is None:
                found = await nearest_stations_async(await db.pool(), x, y, k=q.k, amenities=q.amenity,
                                                     kind=q.kind, area=q.area)
            else:
                source = "index"
        else:  # opening hours are checked in Python, street routing is CPU work: in a worker thread
            found = await run_in_threadpool(_nearest_sync, x, y, q)
        body = {"type": "FeatureCollection", "features": [_feature(s, q.coord) for s in found],
                "query": {"lon": q.lon, "lat": q.lat, "coord": q.coord, "k": q.k, "amenity": q.amenity or [],
                          "open_at": q.open_at.isoformat() if q.open_at else None, "by": q.by,
                          **({"profile": q.profile} if q.by == "network" else {})}}
        return Response(orjson.dumps(body), media_type="application/json", headers={"X-Nearest-Source": source})

    def _nearest_sync(x: float, y: float, q: NearestQuery) -> list[dict[str, Any]]:
        with engine().connect() as conn:
            if q.by == "network":
                flt = StationFilter(q.amenity, q.open_at, q.kind, q.area, cfg.timezone)
                return nearest_along_streets(conn, x, y, k=q.k, flt=flt, profile=q.profile, settings=cfg)
            return nearest_stations(conn, x, y, k=q.k, amenities=q.amenity, open_at=q.open_at, kind=q.kind,
                                    area=q.area, tz=cfg.timezone)

    @app.get("/stations", tags=["riders"], dependencies=[Depends(rider)])
    def stations(eng: EngineDep, area: Annotated[str | None, Query(max_length=200)] = None,
                 kind: Annotated[Literal["large", "small", "mobile"] | None, Query()] = None,
                 status: Annotated[Literal["active", "closed"] | None, Query()] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0)] = 0,
                 coord: Coord = "wgs84") -> dict[str, Any]:
        """A page of the registry as GeoJSON, with ``total``."""
        with eng.connect() as conn:
            total, items = list_stations(conn, area=area, kind=kind, status=status, limit=limit, offset=offset)
        return {"type": "FeatureCollection", "total": total, "limit": limit, "offset": offset,
                "features": [_feature(s, coord) for s in items]}

    @app.get("/stations/{station_id}", tags=["riders"], dependencies=[Depends(rider)])
    def station(eng: EngineDep, station_id: str, area: Annotated[str | None, Query(max_length=200)] = None,
                coord: Coord = "wgs84") -> dict[str, Any]:
        """One station by its registry id."""
        with eng.connect() as conn:
            return _feature(get_station(conn, station_id, area=area), coord)

    @app.post("/stations/import", tags=["staff"], dependencies=[Depends(staff)])
    def import_file(eng: EngineDep, file: Annotated[UploadFile, File(description="CSV, XLSX or GeoJSON")],
                    area: Annotated[str | None, Form(max_length=200)] = None,
                    coord: Annotated[Coord, Form()] = "wgs84",
                    ignore_unknown_columns: Annotated[bool, Form(
                        description="Import a file with unknown columns, leaving them out (listed in "
                                    "ignored_columns); by default such a file is rejected")] = False,
                    trust_coords: Annotated[bool, Form(
                        description="Skip the check that stations already stored did not move by exactly the "
                                    "offset between WGS 84 and GCJ-02/BD-09")] = False) -> dict[str, Any]:
        """Import a registry file: all rows or none; bad rows are listed in ``problems``."""
        data = file.file.read(int(cfg.max_upload_mb * 1024 * 1024) + 1)
        if len(data) > cfg.max_upload_mb * 1024 * 1024:
            raise InvalidInput(f"file: larger than the {cfg.max_upload_mb:g} MB limit")
        summary = import_stations(eng, file.filename or "upload.csv", area=area, coord=coord, data=data,
                                  filename=file.filename or "upload.csv",
                                  ignore_unknown_columns=ignore_unknown_columns, trust_coords=trust_coords)
        return summary.__dict__

    @app.get("/runs", tags=["staff"], dependencies=[Depends(staff)])
    def runs(eng: EngineDep, area: Annotated[str | None, Query(max_length=200)] = None,
             limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
        """Stored coverage runs, newest first."""
        with eng.connect() as conn:
            ids = conn.execute(text("SELECT r.id FROM coverage_runs r JOIN areas a ON a.id = r.area_id WHERE "
                                    "CAST(:area AS text) IS NULL OR a.name = :area ORDER BY r.id DESC LIMIT :n"),
                               {"area": area, "n": limit}).scalars().all()
            return [summary_of(conn, i) for i in ids]

    @app.get("/runs/{run_id}", tags=["staff"], dependencies=[Depends(staff)])
    def run(eng: EngineDep, run_id: int) -> dict[str, Any]:
        """Summary of one run."""
        with eng.connect() as conn:
            return summary_of(conn, run_id)

    def _run_id(eng: Engine, run: int | None, area: str | None) -> int:
        if run is not None:
            return run
        with eng.connect() as conn:
            return latest_run_id(conn, area=area)

    def _download(eng: Engine, run_id: int, fmt: str) -> Response:
        from yizhan.reports.run_report import MEDIA_TYPES, load_report
        from yizhan.reports.writer import file_name, render

        data = load_report(eng, run_id)
        disposition = "inline" if fmt in ("html", "pdf") else "attachment"
        return Response(render(data, fmt), media_type=MEDIA_TYPES[fmt], headers={
            "Content-Disposition": f'{disposition}; filename="{file_name(data.run_id, fmt)}"'})

    @app.get("/gaps.csv", tags=["staff"], dependencies=[Depends(staff)], response_class=PlainTextResponse)
    def gaps_as_csv(eng: EngineDep, run: int | None = None, area: str | None = None) -> Response:
        """Gap report of a run (default: the latest) as CSV."""
        return _download(eng, _run_id(eng, run, area), "csv")

    @app.get("/gaps.geojson", tags=["staff"], dependencies=[Depends(staff)])
    def gaps_as_geojson(eng: EngineDep, run: int | None = None, area: str | None = None) -> Response:
        """Gap polygons of a run (default: the latest) as GeoJSON (WGS 84)."""
        return _download(eng, _run_id(eng, run, area), "geojson")

    @app.get("/runs/{run_id}/gaps.csv", tags=["staff"], dependencies=[Depends(staff)],
             response_class=PlainTextResponse)
    def run_gaps_csv(eng: EngineDep, run_id: int) -> Response:
        """The run's gaps as CSV (UTF-8 with BOM, Chinese and English headers)."""
        return _download(eng, run_id, "csv")

    @app.get("/runs/{run_id}/gaps.xlsx", tags=["staff"], dependencies=[Depends(staff)])
    def run_gaps_xlsx(eng: EngineDep, run_id: int) -> Response:
        """The run's report as an Excel workbook: summary, gaps, units and stations sheets."""
        return _download(eng, run_id, "xlsx")

    @app.get("/runs/{run_id}/gaps.geojson", tags=["staff"], dependencies=[Depends(staff)])
    def run_gaps_geojson(eng: EngineDep, run_id: int) -> Response:
        """The run's gap polygons as GeoJSON (RFC 7946, WGS 84)."""
        return _download(eng, run_id, "geojson")

    @app.get("/runs/{run_id}/gaps.gpkg", tags=["staff"], dependencies=[Depends(staff)])
    def run_gaps_gpkg(eng: EngineDep, run_id: int) -> Response:
        """The run's layers as a GeoPackage (EPSG:4326): gaps, units, stations, study area, service area."""
        return _download(eng, run_id, "gpkg")

    @app.get("/runs/{run_id}/report.pdf", tags=["staff"], dependencies=[Depends(staff)])
    def run_report_pdf(eng: EngineDep, run_id: int) -> Response:
        """The run's printable one-page summary (A4 PDF): map, headline figures, top gaps, units."""
        return _download(eng, run_id, "pdf")

    @app.get("/runs/{run_id}/report.html", tags=["staff"], dependencies=[Depends(staff)],
             response_class=HTMLResponse)
    def run_report_html(eng: EngineDep, run_id: int) -> Response:
        """The run's one-page summary as a self-contained HTML page (same content as the PDF)."""
        return _download(eng, run_id, "html")

    @app.get("/map", tags=["planners"], response_class=HTMLResponse)
    def map_page(eng: EngineDep, run: int | None = None, area: str | None = None,
                 recommendation: int | None = None) -> HTMLResponse:
        """The planner's map of a run (default: the latest), or of a recommendation run."""
        if recommendation is not None:
            from yizhan.maps.recommend_map import map_for_recommendation
            from yizhan.siting.recommend import load_recommendation

            m = map_for_recommendation(load_recommendation(eng, recommendation), settings=cfg,
                                       asset_prefix="/yizhan-assets")
        else:
            from yizhan.maps.run_map import map_for_run

            m = map_for_run(load_run(eng, _run_id(eng, run, area)), settings=cfg, asset_prefix="/yizhan-assets")
        return HTMLResponse(m.get_root().render())

    @app.post("/recommendations", tags=["staff"], dependencies=[Depends(staff)])
    def recommendations_create(eng: EngineDep, body: RecommendationRequest) -> dict[str, Any]:
        """Where to open the next stations: the best ``k`` sites, the fewest for a ``target`` share, or an
        evaluation of proposed ``sites``; stored as a recommendation run (see ``yizhan recommend``)."""
        from yizhan.siting.candidates import no_go_from_geojson
        from yizhan.siting.recommend import recommend, sites_to_frame

        return recommend(eng, area=body.area, k=body.k, target=body.target, mode=body.mode, profile=body.profile,
                         sites=sites_to_frame(body.sites, coord=body.coord),
                         candidates=sites_to_frame(body.candidates, coord=body.coord, field="candidates"),
                         radius_m=body.radius_m, exclude_host_types=body.exclude_host_types,
                         no_go=no_go_from_geojson(body.no_go, coord=body.coord), time_limit_s=body.time_limit_s,
                         settings=cfg)

    @app.get("/recommendations", tags=["staff"], dependencies=[Depends(staff)])
    def recommendations_list(eng: EngineDep, area: Annotated[str | None, Query(max_length=200)] = None,
                             limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
        """Stored recommendation runs, newest first."""
        from yizhan.siting.recommend import recommendation_ids, recommendation_of

        with eng.connect() as conn:
            return [recommendation_of(conn, i) for i in recommendation_ids(conn, area=area, limit=limit)]

    @app.get("/recommendations/{run_id}.geojson", tags=["staff"], dependencies=[Depends(staff)])
    def recommendations_geojson(eng: EngineDep, run_id: int) -> Response:
        """A recommendation's sites and remaining gaps as one GeoJSON FeatureCollection (RFC 7946, WGS 84)."""
        import json

        from yizhan.siting.recommend import recommendation_geojson

        with eng.connect() as conn:
            doc = recommendation_geojson(conn, run_id)
        return Response(json.dumps(doc, ensure_ascii=False), media_type="application/geo+json", headers={
            "Content-Disposition": f'attachment; filename="recommendation_{run_id}.geojson"'})

    @app.get("/recommendations/{run_id}", tags=["staff"], dependencies=[Depends(staff)])
    def recommendations_get(eng: EngineDep, run_id: int) -> dict[str, Any]:
        """One stored recommendation run with its ranked sites."""
        from yizhan.siting.recommend import recommendation_of

        with eng.connect() as conn:
            return recommendation_of(conn, run_id)

    return app


class RecommendationRequest(BaseModel):
    """Body of ``POST /recommendations``: exactly one of ``k``, ``target`` or ``sites``. Lon/lat in ``coord``."""

    model_config = ConfigDict(extra="forbid")

    k: int | None = Field(None, ge=1, le=1000, description="How many new sites to choose (maximal covering)")
    target: float | None = Field(None, gt=0, le=1, description="Covered share (0-1) to reach with the fewest sites")
    sites: list[dict[str, Any]] | None = Field(None, max_length=5000, description="Proposed sites to evaluate: "
                                               "GeoJSON Point features with properties id, name[, host_type]")
    area: str | None = Field(None, max_length=200)
    mode: Literal["straight", "network"] = "straight"
    profile: Literal["walk", "bike"] = "walk"
    radius_m: float = Field(1000.0, gt=0, le=50_000, allow_inf_nan=False, description="Service radius, metres")
    exclude_host_types: list[str] = Field(default_factory=list, max_length=20)
    no_go: dict[str, Any] | None = Field(None, description="GeoJSON polygon(s) where no station may go")
    candidates: list[dict[str, Any]] | None = Field(None, max_length=100_000, description="GeoJSON Point features "
                                                    "to choose from instead of the area's stored candidates")
    coord: Coord = "wgs84"
    time_limit_s: float = Field(30.0, gt=0, le=300, allow_inf_nan=False, description="Seconds for the exact solver")


def query_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``parameters`` (and the 422 answer) of a route whose query string is validated by ``model``,
    as FastAPI would write them for the same parameters declared one by one."""
    schema = model.model_json_schema()
    params = [{"name": name, "in": "query", "required": name in schema.get("required", []), "schema": prop,
               **({"description": prop["description"]} if "description" in prop else {})}
              for name, prop in schema["properties"].items()]
    return {"parameters": params, "responses": {"422": {"description": "Validation Error", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}}}


def parse_query(model: type[BaseModel], request: Request) -> Any:
    """``model`` from the request's query string: list fields take every value of their name, the others the
    last one; errors become FastAPI's RequestValidationError (``loc`` starting with ``query``)."""
    qp = request.query_params
    data: dict[str, Any] = {}
    for name, is_list in _query_fields(model):
        if name in qp:
            data[name] = qp.getlist(name) if is_list else qp[name]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = []
        for e in exc.errors(include_url=False):
            missing = e["type"] == "missing"  # as FastAPI reports it: no input, the parameter's name only
            errors.append({**e, "loc": ("query", *e["loc"][:1]) if missing else ("query", *e["loc"]),
                           "input": None if missing else e.get("input")})
        raise RequestValidationError(errors) from None


@functools.cache
def _query_fields(model: type[BaseModel]) -> tuple[tuple[str, bool], ...]:
    """(name, takes a list) of each field of ``model``."""
    def is_list(annotation: Any) -> bool:
        return get_origin(annotation) is list or any(get_origin(a) is list for a in get_args(annotation))

    return tuple((name, is_list(f.annotation)) for name, f in model.model_fields.items())


def jsonable(errors: Any) -> Any:
    """Validation errors made JSON-safe (exceptions in ``ctx`` become strings)."""
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(errors, custom_encoder={Exception: str})


app = create_app()
