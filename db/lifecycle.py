"""The database of a running app: the engine made (and the schema migrated) on first use, the async pool of the
hot path, and a background index kept alongside the pool.

Nothing connects when ``Database`` is made; the first request that needs the database does, and a failure is
retried by the next request (the app starts, and recovers, while the database is down).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import anyio
from sqlalchemy import Engine

from yizhan.db.engine import AsyncPool, database_url, make_engine, migrate
from yizhan.errors import DATABASE_DOWN_ERRORS, DatabaseUnavailable
from yizhan.settings import Settings


class BackgroundIndex(Protocol):
    """Something kept fresh from the database by its own thread (the stations' in-process index)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


IndexT = TypeVar("IndexT", bound=BackgroundIndex)


class Database(Generic[IndexT]):
    """The app's engine, created (and the schema migrated) on first use, retried after a failure; the async pool
    of the nearest-station hot path, made after the engine (so the schema is migrated first); and, with the pool,
    the background index ``index_factory(url)`` makes (none without a factory)."""

    def __init__(self, settings: Settings, *, index_factory: Callable[[str], IndexT] | None = None) -> None:
        self.settings = settings
        self.index_factory = index_factory
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._pool: AsyncPool | None = None
        self._pool_lock = asyncio.Lock()
        self._index: IndexT | None = None

    def engine(self) -> Engine:
        """The engine; DatabaseUnavailable while the database cannot be reached (or migrated)."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    try:
                        self._engine = self._connect()
                    except DATABASE_DOWN_ERRORS as exc:
                        raise DatabaseUnavailable() from exc
        return self._engine

    @property
    def made_engine(self) -> Engine | None:
        """The engine if ``engine()`` has made it, else None (never connects: for callers on an event loop)."""
        return self._engine

    def _connect(self) -> Engine:
        # a fixed pool, no overflow: overflow connections are closed on return and re-opened (a fork and a login
        # in PostgreSQL each) under load; requests wait for a pooled one instead
        eng = make_engine(database_url(self.settings), statement_timeout_ms=self.settings.statement_timeout_ms,
                          pool_size=20, max_overflow=0)
        try:
            migrate(eng)
        except BaseException:
            eng.dispose()
            raise
        return eng

    async def pool(self) -> AsyncPool:
        """The async pool (in the running event loop); DatabaseUnavailable while the database is down."""
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                eng = await anyio.to_thread.run_sync(self.engine)
                url = eng.url.render_as_string(hide_password=False)
                self._pool = AsyncPool(url, max_size=self.settings.db_pool_size,
                                       timeout=self.settings.db_pool_timeout_s,
                                       statement_timeout_ms=self.settings.statement_timeout_ms)
                if self._index is None and self.index_factory is not None:
                    self._index = self.index_factory(url)
                    self._index.start()  # loads in the background; the pool answers until then
        return self._pool

    @property
    def station_index(self) -> IndexT | None:
        """The background index (None before the pool is made, or without an ``index_factory``)."""
        return self._index

    async def aclose(self) -> None:
        """Close the async pool (at shutdown, in its event loop) and stop the index."""
        pool, self._pool = self._pool, None
        self._stop_index()
        if pool is not None:
            await pool.close()

    def _stop_index(self) -> None:
        index, self._index = self._index, None
        if index is not None:
            index.stop()

    def dispose(self) -> None:
        """Forget the pool (its connections close with it: the loop that made them may be gone), stop the index,
        close the engine's connections."""
        self._pool = None
        self._stop_index()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
