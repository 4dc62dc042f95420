"""Is the store answering? Fail fast for a moment after it stopped, instead of waiting on it.

A Redis that was killed refuses connections at once, but one that hangs (paused, swapping,
a partition that drops packets) lets every call wait for its timeout. With hundreds of
scans a second each waiting that long, the resolver would stall behind a dead store. So
the first call that fails with a connection error or a timeout opens the breaker: for
``cooldown`` seconds every call fails at once with StoreError (the resolver answers scans
from its caches, APIs answer 503 + Retry-After), then calls are let through again and the
first success closes it. Failures that say nothing about reachability (a refused write, a
script error) never open it.

>>> health = StoreHealth(cooldown=60.0, trips=(ConnectionError,))
>>> health.available()
True
>>> health.failed(ValueError("bad input")), health.available()
(False, True)
>>> health.failed(ConnectionError("refused")), health.available(), health.outages
(True, False, 1)
>>> health.ok(); health.available()
True
"""

from __future__ import annotations

import time


class StoreHealth:
    """Circuit breaker of one store client. ``trips``: exception types that open it."""

    __slots__ = ("cooldown", "trips", "down_until", "down_since", "outages", "fast_failures", "last_error")

    def __init__(self, cooldown: float = 1.0, trips: tuple[type[BaseException], ...] = (OSError, TimeoutError)) -> None:
        self.cooldown = cooldown
        self.trips = trips
        self.down_until = 0.0  # monotonic; 0.0 = closed (the hot path tests only this)
        self.down_since = 0.0
        self.outages = 0  # closed → open transitions
        self.fast_failures = 0  # calls refused without trying while open
        self.last_error: str | None = None

    def available(self) -> bool:
        """``False`` while open: the caller should fail at once (and count it)."""
        if not self.down_until or time.monotonic() >= self.down_until:
            return True
        self.fast_failures += 1
        return False

    def failed(self, exc: BaseException) -> bool:
        """Record a failed call; ``True`` if it was about reachability (the breaker opened)."""
        if not isinstance(exc, self.trips):
            return False
        now = time.monotonic()
        if not self.down_until:
            self.outages += 1
            self.down_since = now
        self.down_until = now + self.cooldown
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        return True

    def ok(self) -> None:
        """A call succeeded: close the breaker."""
        self.down_until = 0.0

    @property
    def down(self) -> bool:
        """Open now, or failed since the last success (a probe may be in flight)."""
        return bool(self.down_until)

    def refusal(self, url: str) -> str:
        return f"{url}: unavailable ({self.last_error}); not retried for up to {self.cooldown:g}s"
