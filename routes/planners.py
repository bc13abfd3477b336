"""Planners' routes: the map of a coverage run or of a recommendation, and the map's own assets (scripts, styles,
served under ``ASSET_PREFIX`` so the page needs no third-party host)."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from yizhan.routes.deps import EngineDep, SettingsDep, run_or_latest

ASSET_PREFIX = "/yizhan-assets"

router = APIRouter(tags=["planners"])


def map_assets() -> StaticFiles:
    """The map's assets, to mount at ``ASSET_PREFIX``."""
    from yizhan.maps.folium_map import STATIC_DIR

    return StaticFiles(directory=STATIC_DIR)


@router.get("/map", response_class=HTMLResponse)
def map_page(eng: EngineDep, settings: SettingsDep, run: int | None = None, area: str | None = None,
             recommendation: int | None = None) -> HTMLResponse:
    """The planner's map of a run (default: the latest), or of a recommendation run."""
    if recommendation is not None:
        from yizhan.maps.recommend_map import map_for_recommendation
        from yizhan.siting.runs import load_recommendation

        m = map_for_recommendation(load_recommendation(eng, recommendation), settings=settings,
                                   asset_prefix=ASSET_PREFIX)
    else:
        from yizhan.coverage.runs import load_run
        from yizhan.maps.run_map import map_for_run

        m = map_for_run(load_run(eng, run_or_latest(eng, run, area)), settings=settings, asset_prefix=ASSET_PREFIX)
    return HTMLResponse(m.get_root().render())
