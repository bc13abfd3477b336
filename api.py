"""The HTTP API (FastAPI): nearest station for riders, registry and gap reports for staff, the planner's map.

This module only assembles the app: the routers of ``yizhan.routes`` (one per user: riders, staff, planners),
CORS, the map's asset files, the database's life cycle and the error answers of ``errors.add_exception_handlers``
(domain errors become HTTP codes in ``errors.ERROR_STATUS`` only). Routes read the app's settings, database and
rate limiter from ``app.state``. Coordinates are lon/lat degrees; ``coord`` selects WGS 84, GCJ-02 or BD-09 for
input and output (stored data is always WGS 84). Distances are geodesic metres.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from yizhan import __version__
from yizhan.db.lifecycle import Database
from yizhan.errors import add_exception_handlers
from yizhan.pages import rider as rider_pages
from yizhan.ratelimit import shared_rate_limiter
from yizhan.routes import planners, riders, staff
from yizhan.routes.map_cache import MapCache
from yizhan.routes.upload_guard import UploadGuard
from yizhan.settings import Settings, get_settings
from yizhan.stations.search import station_index_factory

RATE_LIMIT_FILE = "rate-limit.buckets"
"""The riders' rate limit buckets in the data directory, shared by the worker processes of a server."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app with ``settings`` (default: the process's, from the environment). Nothing connects to the
    database until the first request that needs it."""
    cfg = settings or get_settings()
    db = Database(cfg, index_factory=station_index_factory(cfg))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await db.aclose()
        app.state.rate_limiter.close()

    app = FastAPI(title="yizhan 驿站", version=__version__, lifespan=lifespan,
                  description="Nearest rest station for outdoor workers, coverage gaps and maps. "
                              "Coordinates are lon/lat degrees; distances are geodesic metres.")
    app.state.settings = cfg
    app.state.db = db
    app.state.map_cache = MapCache()
    app.state.rate_limiter = shared_rate_limiter(cfg.rate_limit_per_minute, cfg.data_dir / RATE_LIMIT_FILE)
    app.mount(planners.ASSET_PREFIX, planners.map_assets(), name="assets")
    app.add_middleware(UploadGuard, settings=cfg, database=db)  # inside CORS: its refusals carry CORS headers
    if cfg.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cfg.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Content-Type"])
    add_exception_handlers(app)
    app.include_router(riders.router)
    app.include_router(staff.router)
    app.include_router(planners.router)
    app.include_router(rider_pages.router)
    riders.configure(app, cfg)
    return app


app = create_app()
