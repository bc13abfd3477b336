"""Planners' routes: the map of a coverage run or of a recommendation, and the map's own assets (scripts, styles,
served under ``ASSET_PREFIX`` so the page needs no third-party host)."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from yizhan.console.auth import UserOrKey
from yizhan.routes.deps import EngineDep, RiderLimit, SettingsDep, run_or_latest
from yizhan.routes.map_cache import MapCache
from yizhan.settings import Settings

ASSET_PREFIX = "/yizhan-assets"

router = APIRouter(tags=["planners"])


def map_assets() -> StaticFiles:
    """The map's assets, to mount at ``ASSET_PREFIX``."""
    from yizhan.maps.folium_map import STATIC_DIR

    return StaticFiles(directory=STATIC_DIR)


@router.get("/map", response_class=HTMLResponse)
def map_page(_: RiderLimit, __: UserOrKey, request: Request, eng: EngineDep, settings: SettingsDep,
             run: int | None = None, area: str | None = None, recommendation: int | None = None) -> HTMLResponse:
    """The planner's map of a run (default: the latest), or of a recommendation run, for a signed-in console user
    (any role) or a script with a staff ``X-API-Key`` (a browser without a session is sent to sign in, any other
    client gets 401). Rate limited like the riders' routes; a page is rendered once per run and state of its
    area's stations (``X-Map-Cache``: hit or miss)."""
    cache: MapCache = request.app.state.map_cache
    if recommendation is not None:
        page, kept = cache.page(eng, "recommendation", recommendation, ASSET_PREFIX,
                                lambda: _recommendation_map(eng, settings, recommendation))
    else:
        run_id = run_or_latest(eng, run, area)
        page, kept = cache.page(eng, "run", run_id, ASSET_PREFIX, lambda: _run_map(eng, settings, run_id))
    return HTMLResponse(page, headers={"X-Map-Cache": "hit" if kept else "miss"})


def _recommendation_map(eng: Engine, settings: Settings, recommendation: int) -> str:
    from yizhan.maps.recommend_map import map_for_recommendation
    from yizhan.siting.runs import load_recommendation

    m = map_for_recommendation(load_recommendation(eng, recommendation), settings=settings,
                               asset_prefix=ASSET_PREFIX)
    return str(m.get_root().render())


def _run_map(eng: Engine, settings: Settings, run_id: int) -> str:
    from yizhan.coverage.runs import load_run
    from yizhan.maps.run_map import map_for_run

    m = map_for_run(load_run(eng, run_id), settings=settings, asset_prefix=ASSET_PREFIX)
    return str(m.get_root().render())
