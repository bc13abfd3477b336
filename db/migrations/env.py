"""Alembic environment: runs migrations on the connection or URL given in the config."""

from __future__ import annotations

from typing import Any

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import Connection, create_engine

from yizhan.db.models import Base

config = context.config
target_metadata = Base.metadata


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table" and name in {"spatial_ref_sys"}:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )


connection = config.attributes.get("connection")
if connection is not None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic: give a connection or sqlalchemy.url")
    engine = create_engine(url)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
