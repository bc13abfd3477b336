"""Per-client rate limiting of the rider endpoints: a token bucket per client address, in process memory."""

from __future__ import annotations

import threading
import time

from yizhan.errors import TooManyRequests


class RateLimiter:
    """Allow ``per_minute`` requests per client on average, with bursts up to the same number.

    ``per_minute`` 0 disables the limit. Buckets of clients that have been quiet long enough to be full again
    are dropped when the table grows, so memory stays bounded by the number of recently active clients.
    """

    def __init__(self, per_minute: int, *, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Take one token for ``client`` or raise TooManyRequests saying when to retry."""
        if self.capacity <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                raise TooManyRequests(f"too many requests from {client}: at most {self.capacity:g} a minute",
                                      retry_after=max(1, round((1.0 - tokens) / self.rate)))
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_clients:
                self._prune(now)

    def _prune(self, now: float) -> None:
        full_after = self.capacity / self.rate
        for key, (_, last) in list(self._buckets.items()):
            if now - last >= full_after:
                del self._buckets[key]
