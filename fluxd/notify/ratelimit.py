"""A token bucket per webhook path, so one noisy sender cannot flood the API server.

Every accepted webhook request patches objects on the API server; a sender that
retries in a loop (or an attacker who learnt a path) would otherwise turn each request
into writes. Each Receiver's path gets a bucket of :data:`BURST` requests that refills
at :data:`REFILL_PER_SECOND`; a request that finds it empty is answered 429 before its
body is read or anything is looked up. Buckets are kept only for the paths of existing
Receivers, and those that have refilled completely are forgotten, so memory stays
bounded by the Receivers that were called recently.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["BURST", "REFILL_PER_SECOND", "PathRateLimiter"]

#: Requests a path accepts at once (a push to many branches, a CI fan-out).
BURST = 20
#: Requests a path accepts per second, sustained, once its burst is spent.
REFILL_PER_SECOND = 1.0
#: Past this many buckets, full ones are dropped before adding another.
_PRUNE_AT = 256


class PathRateLimiter:
    """Decides, per path, whether a request may go on now."""

    def __init__(
        self,
        *,
        burst: int = BURST,
        refill_per_second: float = REFILL_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._rate = refill_per_second
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def _tokens(self, path: str, now: float) -> float:
        tokens, stamp = self._buckets.get(path, (float(self._burst), now))
        return min(float(self._burst), tokens + (now - stamp) * self._rate)

    def allow(self, path: str) -> bool:
        """Take a token for ``path``; false when its bucket is empty."""
        now = self._clock()
        if path not in self._buckets and len(self._buckets) >= _PRUNE_AT:
            self._buckets = {
                key: (tokens, stamp)
                for key, (tokens, stamp) in self._buckets.items()
                if self._tokens(key, now) < self._burst
            }
        tokens = self._tokens(path, now)
        if tokens < 1.0:
            self._buckets[path] = (tokens, now)
            return False
        self._buckets[path] = (tokens - 1.0, now)
        return True

    def retry_after(self, path: str) -> int:
        """Whole seconds until ``path`` has a token again (at least one)."""
        missing = 1.0 - self._tokens(path, self._clock())
        return max(1, math.ceil(missing / self._rate))
