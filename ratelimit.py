"""Per-client rate limiting of the rider endpoints: a token bucket per client address.

The client is the address the server reports as the peer (``request.client``). ``yizhan serve`` believes
``X-Forwarded-For`` only from the settings' ``trusted_proxies`` (none by default), so a client cannot choose its
own bucket by sending the header.

The buckets of ``yizhan serve --workers N`` are shared by its worker processes through ``SharedBuckets``, a
memory-mapped file under the data directory: every worker of one server runs on one host, so a file mapped by
each of them is shared memory taken and released in microseconds (one ``flock`` a request). The database was the
other choice and is not used: the nearest-station search answers from an in-process index without a database
round trip, which a counter there would add to every rider request, along with a table to migrate and vacuum.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from yizhan.errors import TooManyRequests

log = logging.getLogger(__name__)

SLOT = struct.Struct("<Qdd")
"""A shared bucket: the client's 64-bit key hash (0: empty), its tokens, when they were counted (seconds of the
host's monotonic clock, the same in every process)."""
PROBES = 16
"""Slots looked at for a client (open addressing); when all are taken, the longest quiet bucket gives way."""
SHARED_SLOTS = 1 << 16
"""Buckets of the shared file (1.5 MB): more clients active within a minute than this share slots."""

Bucket = tuple[float, float]
"""(tokens, monotonic time in seconds they were counted)."""


class BucketStore(Protocol):
    """Where the buckets live: ``get``/``put`` are called only inside ``locked()``."""

    def locked(self) -> contextlib.AbstractContextManager[None]: ...

    def get(self, client: str) -> Bucket | None: ...

    def put(self, client: str, bucket: Bucket, *, full_after_s: float) -> None: ...


class MemoryBuckets:
    """Buckets in this process's memory; quiet clients (full again) are dropped when there are over
    ``max_clients``."""

    def __init__(self, max_clients: int = 100_000) -> None:
        self.max_clients = max_clients
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def get(self, client: str) -> Bucket | None:
        return self._buckets.get(client)

    def put(self, client: str, bucket: Bucket, *, full_after_s: float) -> None:
        self._buckets[client] = bucket
        if len(self._buckets) > self.max_clients:
            now = bucket[1]
            for key, (_, last) in list(self._buckets.items()):
                if now - last >= full_after_s:
                    del self._buckets[key]


class SharedBuckets:
    """Buckets in a memory-mapped file shared by every process that opens the same ``path`` (the workers of one
    server): ``SHARED_SLOTS`` slots of ``SLOT``, locked with ``flock`` across processes and a lock across the
    threads of one."""

    def __init__(self, path: Path, slots: int = SHARED_SLOTS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b")  # closed when collected
        try:
            size = max(os.fstat(self._file.fileno()).st_size, slots * SLOT.size)
            size -= size % SLOT.size
            if os.fstat(self._file.fileno()).st_size < size:
                os.ftruncate(self._file.fileno(), size)  # new slots are zeros: empty
            self._map = mmap.mmap(self._file.fileno(), size)
        except BaseException:
            self._file.close()
            raise
        self.slots = size // SLOT.size
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)

    def get(self, client: str) -> Bucket | None:
        key = _key(client)
        for slot in self._probe(key):
            found, tokens, last = SLOT.unpack_from(self._map, slot * SLOT.size)
            if found == key:
                return tokens, last
            if found == 0:
                return None
        return None

    def put(self, client: str, bucket: Bucket, *, full_after_s: float) -> None:
        key = _key(client)
        quietest, quiet_since = -1, float("inf")
        for slot in self._probe(key):
            found, _, last = SLOT.unpack_from(self._map, slot * SLOT.size)
            if found in (key, 0):
                quietest = slot
                break
            if last < quiet_since:
                quietest, quiet_since = slot, last
        SLOT.pack_into(self._map, quietest * SLOT.size, key, *bucket)

    def close(self) -> None:
        """Unmap the file and close it."""
        self._map.close()
        self._file.close()

    def _probe(self, key: int) -> Iterator[int]:
        return ((key + i) % self.slots for i in range(PROBES))


def _key(client: str) -> int:
    """The client's 64-bit bucket key (never 0, which marks an empty slot)."""
    return int.from_bytes(hashlib.blake2b(client.encode(), digest_size=8).digest(), "little") or 1


class RateLimiter:
    """Allow ``per_minute`` requests per client on average, with bursts up to the same number.

    ``per_minute`` 0 disables the limit. The buckets are in ``store``, or in the store ``open_store`` makes on
    the first request (this process's memory, with a warning, when that fails); default: this process's memory.
    """

    def __init__(self, per_minute: int, *, store: BucketStore | None = None,
                 open_store: Callable[[], BucketStore] | None = None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._store = store
        self._open_store = open_store
        self._opening = threading.Lock()

    @property
    def store(self) -> BucketStore:
        """The buckets (opened on first use)."""
        if self._store is None:
            with self._opening:
                if self._store is None:
                    self._store = self._opened()
        return self._store

    def _opened(self) -> BucketStore:
        if self._open_store is None:
            return MemoryBuckets()
        try:
            return self._open_store()
        except OSError as exc:
            log.warning("rate limit buckets kept per process, not shared by the workers: %s", exc)
            return MemoryBuckets()

    def check(self, client: str) -> None:
        """Take one token for ``client`` or raise TooManyRequests saying when to retry."""
        if self.capacity <= 0:
            return
        store = self.store
        with store.locked():
            # read the clock under the lock: a time taken before it can be older than what another process
            # stored while this one waited, which would look like a restarted clock and refill the bucket
            now = time.monotonic()
            tokens, last = store.get(client) or (self.capacity, now)
            if last > now:  # counted before the host's clock restarted (a reboot): a fresh bucket
                tokens, last = self.capacity, now
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            store.put(client, (tokens - 1.0 if allowed else tokens, now), full_after_s=self.capacity / self.rate)
        if not allowed:
            raise TooManyRequests(f"too many requests from {client}: at most {self.capacity:g} a minute",
                                  retry_after=max(1, round((1.0 - tokens) / self.rate)))

    def close(self) -> None:
        """Release a shared store's file (the limiter opens it again if asked)."""
        store, self._store = self._store, None
        if isinstance(store, SharedBuckets):
            store.close()


def shared_rate_limiter(per_minute: int, path: Path) -> RateLimiter:
    """A limiter whose buckets every process using ``path`` shares (``SharedBuckets``, opened on the first
    request)."""
    return RateLimiter(per_minute, open_store=lambda: SharedBuckets(path))
