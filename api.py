"""The HTTP API (FastAPI): nearest station for riders, registry and gap reports for staff, the planner's map.

This module only assembles the app: the routers of ``yizhan.routes`` (one per user: riders, staff, planners),
CORS, the map's asset files, the API docs (``/docs``, ``/redoc``, ``/openapi.json``; for console users and staff
keys) served from local files, the database's life cycle and the error answers of
``errors.add_exception_handlers`` (domain errors become HTTP codes in ``errors.ERROR_STATUS`` only). Routes
read the app's settings, database and rate limiter from ``app.state``.
Coordinates are lon/lat degrees; ``coord`` selects WGS 84, GCJ-02 or BD-09 for input and output (stored data
is always WGS 84). Distances are geodesic metres.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from yizhan import __version__
from yizhan.console.auth import UserOrKey
from yizhan.console.progress import close_job_runner
from yizhan.console.site import install as install_console
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

OPENAPI_PATH = "/openapi.json"
"""The OpenAPI document, for the docs pages and for scripts with a staff key (``add_offline_docs``)."""
DOCS_ASSET_PREFIX = "/yizhan-docs-assets"
"""Where the Swagger UI and ReDoc files are served (swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js,
favicon.png), so that ``/docs`` and ``/redoc`` load nothing from a third-party host and work offline."""
DOCS_PAGE_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")
"""The docs pages' Content-Security-Policy: the browser fetches nothing from another host (ReDoc's footer asks
for its maker's logo on a CDN; this keeps it from asking). Inline scripts and styles are the pages' own start-up
code; ReDoc runs its search in a ``blob:`` worker."""
DOCS_ASSET_DIR = Path(fastapi_offline.__file__).parent / "static"
"""The installed copies of those files (the fastapi-offline package ships them)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app with ``settings`` (default: the process's, from the environment). Nothing connects to the
    database until the first request that needs it."""
    cfg = settings or get_settings()
    db = Database(cfg, index_factory=station_index_factory(cfg))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        close_job_runner(app)  # the console's background jobs: no new one starts
        await db.aclose()
        app.state.rate_limiter.close()

    app = FastAPI(title="yizhan 驿站", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None,  # served by add_offline_docs, to signed-in staff only
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
    install_console(app)
    riders.configure(app, cfg)
    add_offline_docs(app)
    return app


def add_offline_docs(app: FastAPI) -> None:
    """Serve the interactive API docs at ``/docs`` (Swagger UI, with its OAuth2 redirect page) and ``/redoc``
    (ReDoc) from ``DOCS_ASSET_DIR`` under ``DOCS_ASSET_PREFIX``, in place of FastAPI's pages, which load their
    scripts from a CDN (blank without internet) and ReDoc's fonts from Google. The pages are FastAPI's own with
    the asset URLs changed and ``DOCS_PAGE_POLICY`` as their Content-Security-Policy; they stay out of the OpenAPI
    document, as FastAPI's are.

    The pages and the OpenAPI document (``OPENAPI_PATH``; the app is made without FastAPI's public one) are for
    staff: a console session or a staff ``X-API-Key`` (``console.auth.UserOrKey``); a browser without either is
    sent to sign in and back, another client gets 401. Their asset files stay public (they are the packaged Swagger
    UI and ReDoc, nothing of this service)."""
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    app.mount(DOCS_ASSET_PREFIX, StaticFiles(directory=DOCS_ASSET_DIR), name="docs-assets")

    def root_of(request: Request) -> str:
        # behind a proxy with a path prefix (``--root-path``) every URL the page loads carries the prefix
        return request.scope.get("root_path", "").rstrip("/")

    def local_only(page: HTMLResponse) -> HTMLResponse:
        page.headers["Content-Security-Policy"] = DOCS_PAGE_POLICY
        return page

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi_document(request: Request, _: UserOrKey) -> JSONResponse:
        # as FastAPI's own: behind a path prefix the document names it as its first server
        doc = app.openapi()
        root = root_of(request)
        if root and app.root_path_in_servers and root not in {s.get("url") for s in doc.get("servers", [])}:
            doc = {**doc, "servers": [{"url": root}, *doc.get("servers", [])]}
        return JSONResponse(doc)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request, _: UserOrKey) -> HTMLResponse:
        root = root_of(request)
        return local_only(get_swagger_ui_html(
            openapi_url=root + OPENAPI_PATH, title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + redirect_url,
            swagger_js_url=f"{root}{DOCS_ASSET_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSET_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSET_PREFIX}/favicon.png",
            init_oauth=app.swagger_ui_init_oauth, swagger_ui_parameters=app.swagger_ui_parameters))

    @app.get(redirect_url, include_in_schema=False)
    def swagger_ui_redirect(_: UserOrKey) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request, _: UserOrKey) -> HTMLResponse:
        root = root_of(request)
        return local_only(get_redoc_html(
            openapi_url=root + OPENAPI_PATH, title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSET_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSET_PREFIX}/favicon.png", with_google_fonts=False))


app = create_app()
