"""Engine and schema: where the database is, and bringing its schema to the current revision."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from yizhan.db.cluster import Cluster
from yizhan.errors import DATABASE_BUSY, DATABASE_DOWN, DatabaseUnavailable
from yizhan.settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for ``postgres://`` and ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def libpq_url(url: str) -> str:
    """The libpq form (``postgresql://...``) of a SQLAlchemy or libpq URL, for psycopg's own connections."""
    return normalise_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


def embedded_cluster(settings: Settings) -> Cluster:
    """The embedded cluster of the settings' data folder (not started)."""
    return Cluster(settings.data_dir, port=settings.pg_port)


def database_url(settings: Settings) -> str:
    """``DATABASE_URL`` when set; otherwise start (if needed) the embedded cluster and return its URL."""
    if settings.database_url:
        return normalise_url(settings.database_url)
    return embedded_cluster(settings).up()


def alembic_config(url: str) -> Config:
    """Alembic's configuration for the database at ``url`` (alembic imported here: a command whose schema is at
    head does not load it)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


_REVISION = re.compile(r'^revision: str = "([^"]+)"$', re.M)
_DOWN_REVISION = re.compile(r'^down_revision: [^=]+= (?:"([^"]+)"|None)$', re.M)


def head_revision() -> str | None:
    """The newest revision of the migration scripts, read from their text (``revision``, ``down_revision``): the
    one no other revises; None unless exactly one is."""
    revisions, revised = set(), set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        if found is None:
            continue
        revisions.add(found[1])
        down = _DOWN_REVISION.search(source)
        if down is None:
            return None
        if down[1]:
            revised.add(down[1])
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def at_head(conn: Connection) -> bool:
    """Whether the database's schema is at the scripts' newest revision (``head_revision``): one row in
    ``alembic_version``, naming it."""
    head = head_revision()
    if head is None or not conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar_one():
        return False
    return conn.execute(text("SELECT array_agg(version_num) FROM alembic_version")).scalar_one() == [head]


def migrate(engine: Engine) -> None:
    """Create the PostGIS extension if missing and upgrade the schema to the newest revision. A schema already at
    it is left without loading the migrations (a command's start: 0.3 s of loading them)."""
    with engine.connect() as conn:
        if at_head(conn):
            return
    from alembic import command

    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))  # one migrator at a time
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def make_engine(url: str, *, statement_timeout_ms: int | None = None, pool_size: int = 5,
                max_overflow: int = 10) -> Engine:
    """A pooled engine that checks connections before use, so it recovers after a database restart.

    ``statement_timeout_ms`` cuts each statement after that many milliseconds (0: never, whatever the server's
    default); None leaves the server's default."""
    connect_args: dict[str, object] = {"connect_timeout": 5}
    if statement_timeout_ms is not None:
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
    return create_engine(normalise_url(url), pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow,
                         pool_timeout=10, connect_args=connect_args)


_engines: dict[tuple[str, int], Engine] = {}
_engines_lock = threading.Lock()


def get_engine(settings: Settings, *, statement_timeout: bool = True) -> Engine:
    """The process-wide engine of the settings' database, schema migrated on first use (one per URL and
    statement timeout). Its statements are cut after ``settings.statement_timeout_ms`` milliseconds (the API's
    limit) unless ``statement_timeout`` is False: the command line's own jobs (a 1 M-row import) run as long as
    they need. Raises DatabaseUnavailable when it cannot connect."""
    url = database_url(settings)
    timeout_ms = settings.statement_timeout_ms if statement_timeout else 0
    key = (url, timeout_ms)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = make_engine(url, statement_timeout_ms=timeout_ms)
            try:
                migrate(engine)
            except OperationalError as exc:
                engine.dispose()
                raise DatabaseUnavailable(f"cannot reach the database: {exc.orig}") from exc
            _engines[key] = engine
    return engine


def dispose_engines() -> None:
    """Close every engine ``get_engine`` made and forget them (a long-lived process that runs many commands)."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


class AsyncPool:
    """A bounded pool of psycopg ``AsyncConnection`` s (autocommit) for the API's read-only hot path.

    At most ``max_size`` connections exist; a request waits at most ``timeout`` seconds (s) for one, then gets
    DatabaseUnavailable ("busy"). Connections open on demand and are reused newest first, each with one cursor
    (a new cursor per query costs a copy of the type adapters); one that broke or was left inside a transaction
    is closed, not reused. When the database is down every request fails at once (connection refused:
    DatabaseUnavailable) instead of queueing, and it recovers as soon as a connection can be opened again: after a
    broken connection all idle ones (opened before the failure) are dropped, and a query that failed on a reused
    connection is retried once on a new one (reads only).
    """

    def __init__(self, url: str, *, max_size: int = 10, timeout: float = 10.0, connect_timeout: int = 5,
                 statement_timeout_ms: int | None = None) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.url = libpq_url(url)
        self.max_size = max_size
        self.timeout = timeout
        self.connect_kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": connect_timeout}
        if statement_timeout_ms:
            self.connect_kwargs["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[tuple[int, psycopg.AsyncCursor[Any]]] = []  # (generation, cursor), newest last
        self._generation = 0  # bumped when a connection breaks: idle ones of older generations are dropped
        self._closed = False

    async def fetch(self, query: str, params: dict[str, Any] | Sequence[Any], *,
                    prepare: bool | None = None) -> list[tuple[Any, ...]]:
        """All rows of one statement (tuples). Raises DatabaseUnavailable when no connection can be had, and
        psycopg's errors of the statement itself (``psycopg.OperationalError`` for a lost connection or a
        statement timeout, ``psycopg.DataError`` for a value PostgreSQL refuses)."""
        if self._closed:
            raise DatabaseUnavailable("the database pool is closed")
        try:
            async with asyncio.timeout(self.timeout):  # no timer task when a slot is free
                await self._slots.acquire()
        except TimeoutError:
            raise DatabaseUnavailable(DATABASE_BUSY) from None
        try:
            for attempt in (0, 1):
                cur, reused = await self._take()
                try:
                    await cur.execute(query, params, prepare=prepare)
                    rows = await cur.fetchall()
                except psycopg.OperationalError:
                    broken = cur.connection.broken or cur.connection.closed
                    await self._give_back(cur)
                    if broken:
                        self._generation += 1
                        if reused and attempt == 0:
                            continue
                    raise
                except BaseException:
                    await self._give_back(cur)
                    raise
                await self._give_back(cur)
                return rows
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            self._slots.release()

    async def _take(self) -> tuple[psycopg.AsyncCursor[Any], bool]:
        while self._idle:
            gen, cur = self._idle.pop()
            if gen == self._generation and not cur.connection.closed:
                return cur, True
            await self._close(cur.connection)
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, **self.connect_kwargs)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(DATABASE_DOWN) from exc
        return conn.cursor(), False

    async def _give_back(self, cur: psycopg.AsyncCursor[Any]) -> None:
        conn = cur.connection
        if (self._closed or conn.closed or conn.broken
                or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE):
            await self._close(conn)
        else:
            self._idle.append((self._generation, cur))

    @staticmethod
    async def _close(conn: psycopg.AsyncConnection[Any]) -> None:
        with contextlib.suppress(Exception):
            await conn.close()

    @property
    def idle(self) -> int:
        """Connections open and waiting in the pool."""
        return len(self._idle)

    async def close(self) -> None:
        """Close the idle connections; connections in use are closed when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for _, cur in idle:
            await self._close(cur.connection)


def driver_of(conn: Connection) -> Any:
    """The psycopg connection under an open SQLAlchemy connection (for COPY), in the same transaction."""
    raw = conn.connection.driver_connection
    assert raw is not None, "an open connection has its psycopg connection"
    return raw


def driver_rows(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (SQLAlchemy text with ``:name`` parameters) as psycopg's plain tuples, fetched in the
    connection's transaction: no ``Row`` per row (about 2 µs each through SQLAlchemy), for reads of a million rows of
    numbers or keys."""
    compiled = text(sql).compile(dialect=conn.dialect)
    with driver_of(conn).cursor() as cur:
        cur.execute(str(compiled), compiled.construct_params(params or {}))
        return list(cur.fetchall())
