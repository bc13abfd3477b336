"""Console sessions for tests over real HTTP: a movable clock for the app, users made in the database, and a
browser-like sign-in through the sign-in form (its CSRF cookie and hidden field, then the session cookie).

    app = create_app(settings); app.state.console_clock = clock   # sessions judged at clock()
    signed_in(client, "wangfang", PASSWORD)                       # the client's cookie jar now holds the session
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from api_data import KEY
from live_server import live_server
from sqlalchemy import Engine

from yizhan.accounts.users import create_user
from yizhan.api import create_app
from yizhan.settings import Settings

PASSWORD = "correct horse battery"
HTML = {"Accept": "text/html,application/xhtml+xml"}
"""What a browser navigating sends."""
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """The console's clock: starts at ``start`` (aware UTC), moved forward by :meth:`advance`."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_user(engine: Engine, name: str, role: str, password: str = PASSWORD) -> None:
    """A console user in the database."""
    with engine.begin() as conn:
        create_user(conn, name, role, password)


def form_token(page: httpx.Response) -> str:
    """The CSRF token of the first form of a page."""
    found = TOKEN.search(page.text)
    assert found, page.text[:2000]
    return found.group(1)


def signed_in(client: httpx.Client, name: str, password: str = PASSWORD, *, next_path: str = "",
              headers: dict[str, str] | None = None) -> httpx.Response:
    """Sign in through the form, as a browser does: the answer to the form's post (303 and the session cookie in
    the client's jar when it worked)."""
    page = client.get("/console/signin", headers=HTML)
    assert page.status_code == 200, page.text
    return client.post("/console/signin", headers={**HTML, **(headers or {})},
                       data={"name": name, "password": password, "csrf_token": form_token(page), "next": next_path})


def served(db_url: str, tmp_path: Path, clock: Clock | None = None, *, timeout: float = 30,
           **settings: object) -> Iterator[httpx.Client]:
    """The app over real HTTP against ``db_url`` (the staff key ``KEY``, data under ``tmp_path``, the console's
    sessions judged at ``clock`` when given, other ``settings`` as named); a client of it (one browser's cookie
    jar). A generator: ``yield from`` it in a fixture, or ``for client in served(...)`` in a test."""
    app = create_app(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data", **settings))
    if clock is not None:
        app.state.console_clock = clock
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=timeout) as client:
            yield client
    finally:
        app.state.db.dispose()

