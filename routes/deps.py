"""What the routes share: the app's settings and database, the staff-key check and the riders' rate limit, as
FastAPI dependencies with typed ``Annotated`` aliases. ``api.create_app`` puts the objects they read on
``app.state``: ``settings``, ``db`` (a ``Database``) and ``rate_limiter``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Engine

from yizhan.areas import get_area
from yizhan.coverage.runs import latest_run_id
from yizhan.db.lifecycle import Database
from yizhan.errors import Unauthorized
from yizhan.keys import key_is_valid
from yizhan.settings import Settings
from yizhan.stations.memindex import IndexKeeper


def app_settings(request: Request) -> Settings:
    """The settings the app was made with."""
    settings: Settings = request.app.state.settings
    return settings


def app_database(request: Request) -> Database[IndexKeeper]:
    """The app's database (engine, async pool, station index)."""
    db: Database[IndexKeeper] = request.app.state.db
    return db


SettingsDep = Annotated[Settings, Depends(app_settings)]
DatabaseDep = Annotated[Database[IndexKeeper], Depends(app_database)]


def engine(db: DatabaseDep) -> Engine:
    """The app's engine, made (and the schema migrated) on first use; DatabaseUnavailable (503) while the database
    cannot be reached."""
    return db.engine()


EngineDep = Annotated[Engine, Depends(engine)]


def require_staff_key(eng: EngineDep, settings: SettingsDep,
                      x_api_key: Annotated[str | None, Header(description="Staff API key")] = None) -> None:
    """Unauthorized (401) unless ``X-API-Key`` is an active stored key or the settings' ``YIZHAN_STAFF_KEY``."""
    check_staff_key(eng, settings, x_api_key)


def check_staff_key(eng: Engine, settings: Settings, x_api_key: str | None) -> None:
    """Unauthorized (401) unless ``x_api_key`` is an active stored key or the settings' ``YIZHAN_STAFF_KEY``
    (the check of ``require_staff_key``, for callers outside FastAPI's dependencies)."""
    if not x_api_key:
        raise Unauthorized("a valid X-API-Key header is required for this staff endpoint "
                           "(keys are made with `yizhan keys create NAME`)")
    settings_key = settings.staff_key.get_secret_value() if settings.staff_key is not None else None
    with eng.connect() as conn:
        if not key_is_valid(conn, x_api_key, extra=settings_key):
            raise Unauthorized("the X-API-Key is not a valid staff key")


async def limit_rider(request: Request) -> None:
    """TooManyRequests (429) when the client's address asked more often than ``YIZHAN_RATE_LIMIT_PER_MINUTE``."""
    request.app.state.rate_limiter.check(request.client.host if request.client else "unknown")


StaffKey = Annotated[None, Depends(require_staff_key)]
"""A staff route's parameter: the request carries a valid staff key."""
RiderLimit = Annotated[None, Depends(limit_rider)]
"""A rider route's parameter: the client is within its rate limit."""


def require_area(eng: Engine, name: str | None) -> None:
    """NotFound (404) naming the areas that exist when ``name`` is given and is no area's name: an ``area=`` that
    names nothing is a mistake to tell, not a filter that matches nothing."""
    if name is not None:
        with eng.connect() as conn:
            get_area(conn, name)


def run_or_latest(eng: Engine, run: int | None, area: str | None) -> int:
    """``run`` when given, else the newest coverage run (of ``area`` when given); NotFound (404) without one."""
    if run is not None:
        return run
    with eng.connect() as conn:
        return latest_run_id(conn, area=area)
