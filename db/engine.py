"""Engine and schema: where the database is, and bringing its schema to the current revision."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from yizhan.db.cluster import Cluster
from yizhan.errors import DatabaseUnavailable
from yizhan.settings import Settings, get_settings

MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for ``postgres://`` and ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def embedded_cluster(settings: Settings | None = None) -> Cluster:
    """The embedded cluster of the settings' data folder (not started)."""
    s = settings or get_settings()
    return Cluster(s.data_dir, port=s.pg_port)


def database_url(settings: Settings | None = None) -> str:
    """``DATABASE_URL`` when set; otherwise start (if needed) the embedded cluster and return its URL."""
    s = settings or get_settings()
    if s.database_url:
        return normalise_url(s.database_url)
    return embedded_cluster(s).up()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Create the PostGIS extension if missing and upgrade the schema to the newest revision."""
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))  # one migrator at a time
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def make_engine(url: str, *, statement_timeout_ms: int | None = None, pool_size: int = 5,
                max_overflow: int = 10) -> Engine:
    """A pooled engine that checks connections before use, so it recovers after a database restart."""
    connect_args: dict[str, object] = {"connect_timeout": 5}
    if statement_timeout_ms:
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
    return create_engine(normalise_url(url), pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow,
                         pool_timeout=10, connect_args=connect_args)


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine, schema migrated. Raises DatabaseUnavailable when it cannot connect."""
    s = get_settings()
    engine = make_engine(database_url(s), statement_timeout_ms=s.statement_timeout_ms)
    try:
        migrate(engine)
    except OperationalError as exc:
        get_engine.cache_clear()
        raise DatabaseUnavailable(f"cannot reach the database: {exc.orig}") from exc
    return engine
