"""Rate limits on the public write endpoints (registration, confirmation, transfer claims).

Fixed windows counted in the store, so every worker and host shares one count per
client address (and per unit where it matters): a burst spread over workers gets no
more tries than one worker would. A per-worker count sits in front of it: once this
worker alone has seen the limit, it refuses without a store round trip, so a flood
costs nothing but the refusal.

Limits are per (action, key): e.g. ``register`` per client address. They can be tuned
with ``SERIALINK_RATE_LIMITS="register=10/600,claim=5/600"`` (count/seconds).

>>> parse_limits("register=3/60, claim=5/600")["register"]
Limit(count=3, seconds=60)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from resolver.errors import TooMany

if TYPE_CHECKING:
    from twin.store import UnitStore


class Limit(NamedTuple):
    count: int  # type: ignore[assignment]  # a field may shadow tuple.count
    seconds: int


DEFAULT_LIMITS: dict[str, Limit] = {
    # start a registration: per client address, and per unit (a unit is registered once)
    "register": Limit(10, 600),
    "register-unit": Limit(5, 3600),
    # type a code: per client address; every pending registration also allows only a few wrong codes
    "confirm": Limit(20, 600),
    "claim": Limit(10, 600),
    "claim-unit": Limit(10, 3600),
    # a technician pasting a token into the service page
    "login": Limit(20, 600),
    # opening sign-in links (technicians, installers): per client address
    "signin": Limit(30, 600),
    # an owner asking for a sign-in code: per client address, and per unit (no flood of
    # messages to an owner); typing the code: per client address (each code also locks)
    "owner-signin": Limit(10, 600),
    "owner-signin-unit": Limit(5, 3600),
    "owner-code": Limit(20, 600),
}

_ITEM = re.compile(r"\s*([a-z-]+)\s*=\s*(\d+)\s*/\s*(\d+)\s*")


class RateLimited(TooMany):
    """Over the limit of ``action`` for this key; ``retry_after`` says when a try counts again."""

    def __init__(self, action: str, retry_after: int) -> None:
        super().__init__(f"too many {action} attempts; try again in {retry_after} s", retry_after)
        self.action = action


def parse_limits(text: str) -> dict[str, Limit]:
    """``name=count/seconds, …`` over the defaults; unknown names or malformed items raise."""
    limits = dict(DEFAULT_LIMITS)
    for item in filter(None, (p.strip() for p in text.split(","))):
        m = _ITEM.fullmatch(item)
        if m is None or m.group(1) not in DEFAULT_LIMITS or int(m.group(2)) < 1 or int(m.group(3)) < 1:
            raise ValueError(f"SERIALINK_RATE_LIMITS: bad item {item!r}; expected one of "
                             f"{', '.join(DEFAULT_LIMITS)} as name=count/seconds")
        limits[m.group(1)] = Limit(int(m.group(2)), int(m.group(3)))
    return limits


class RateLimiter:
    """``await limiter.check("register", client_address)`` raises RateLimited when over."""

    def __init__(self, store: UnitStore, limits: Mapping[str, Limit] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.limits = dict(limits or DEFAULT_LIMITS)
        self._clock = clock
        self._local: dict[str, int] = {}
        self._local_window: dict[str, int] = {}

    async def check(self, action: str, key: str) -> None:
        limit = self.limits[action]
        now = self._clock()
        window = int(now // limit.seconds)
        retry_after = max(1, int((window + 1) * limit.seconds - now))
        bucket = f"{action}:{_safe(key)}:{window}"
        if self._local_window.get(action) != window:  # a new window: forget the old counts
            self._local = {k: v for k, v in self._local.items() if not k.startswith(action + ":")}
            self._local_window[action] = window
        seen = self._local.get(bucket, 0)
        if seen >= limit.count:
            raise RateLimited(action, retry_after)
        self._local[bucket] = seen + 1
        if await self.store.count_hit(bucket, limit.seconds) > limit.count:
            raise RateLimited(action, retry_after)


def _safe(key: str) -> str:
    """Bucket keys are store keys: keep them short and plain whatever the client sent."""
    cleaned = re.sub(r"[^A-Za-z0-9_.:/-]", "_", key)
    return cleaned[:120]
