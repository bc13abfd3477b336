"""``yizhan db``: the database, embedded cluster unless DATABASE_URL is set."""

from __future__ import annotations

from typing import Annotated

import typer

from yizhan.cli import common
from yizhan.cli.common import (
    db_app,
    engine,
    show,
    status,
)
from yizhan.settings import get_settings


# -- db ------------------------------------------------------------------------------------------------------
@db_app.command("up")
def db_up() -> None:
    """Start the embedded cluster (created on first use) and bring the schema up to date."""
    s = get_settings()
    if s.database_url:
        common.err.print("DATABASE_URL is set: yizhan uses that server and starts none of its own.")
    with status("starting the database"):
        engine()
    db_url()


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster."""
    from yizhan.db.engine import embedded_cluster

    if get_settings().database_url:
        common.err.print("DATABASE_URL is set: there is no embedded cluster to stop.")
        return
    common.out.print("stopped" if embedded_cluster(get_settings()).down() else "not running")


@db_app.command("status")
def db_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where the database is and whether it runs."""
    from yizhan.db.engine import embedded_cluster

    s = get_settings()
    if s.database_url:
        show({"mode": "DATABASE_URL", "url": _redact(s.database_url)}, as_json)
        return
    show({"mode": "embedded", **embedded_cluster(s).status()}, as_json)


@db_app.command("url")
def db_url(
    sqlalchemy: Annotated[bool, typer.Option("--sqlalchemy", help="The SQLAlchemy form postgresql+psycopg://... "
                                             "instead of the one psql and libpq accept")] = False,
) -> None:
    """Print the database URL for psql: `psql "$(yizhan db url)"` (starts the embedded cluster if needed).

    数据库连接地址，可直接用于 psql。The password is never printed: psql then asks for it or reads PGPASSWORD or
    ~/.pgpass (the embedded cluster needs none)."""
    from sqlalchemy.engine import URL, make_url

    from yizhan.db.engine import database_url, libpq_url

    url = database_url(get_settings())
    u = make_url(url if sqlalchemy else libpq_url(url))
    print(URL.create(u.drivername, username=u.username, host=u.host, port=u.port, database=u.database,
                     query=u.query).render_as_string(hide_password=False))


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
