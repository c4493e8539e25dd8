"""Token buckets: how many requests one session (or one client address) may make at once and per second.

Each key (a session id, a client address) has a bucket of ``burst`` tokens, refilled at ``rate``
tokens per second; a request takes one token, or is refused with the seconds until one is there
(the server answers 429 with ``Retry-After`` and changes nothing). Buckets live in memory only: a
restarted server starts with full buckets. The limits are far above what a person can do (a
participant answers a few trials a second at most), so only scripted floods meet them.

The endpoints run on the event loop's one thread, so the buckets need no lock.
"""

from __future__ import annotations

import math
import time
from typing import Callable

#: Most keys kept; beyond this, buckets that are full again are forgotten first, then the longest unused.
MAX_KEYS = 100_000


class RateLimiter:
    """Token buckets by key.

    Parameters
    ----------
    rate : float
        Tokens added per second (the sustained request rate allowed).
    burst : float
        Tokens a bucket holds (requests allowed at once); a new key starts full.
    max_keys : int
        Most buckets kept in memory.
    clock : callable
        Monotonic seconds (for tests).
    """

    def __init__(
        self, rate: float, burst: float, max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate, self.burst, self.max_keys, self.clock = float(rate), float(burst), int(max_keys), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key: (tokens, when counted); oldest use first

    def take(self, key: str) -> float:
        """Take a token of ``key``'s bucket: 0.0 when it had one, else the seconds until it will (nothing taken)."""
        now = self.clock()
        tokens, then = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)  # re-inserted: the dict stays in order of last use
        if len(self._buckets) > self.max_keys:
            self._forget(now)
        return wait

    def retry_after(self, key: str) -> int | None:
        """Take a token of ``key``'s bucket: ``None`` when it had one, else whole seconds to wait (``Retry-After``)."""
        wait = self.take(key)
        return None if wait == 0 else max(1, math.ceil(wait))

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget(self, now: float) -> None:
        """Drop the buckets that are full again (forgetting them changes nothing), then the longest unused.

        Down to nine tenths of :attr:`max_keys`, so that the next scan comes only after many new keys.
        """
        full = [key for key, (tokens, then) in self._buckets.items() if tokens + (now - then) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        keep = self.max_keys * 9 // 10
        while len(self._buckets) > keep:
            del self._buckets[next(iter(self._buckets))]
