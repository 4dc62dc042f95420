"""Writes wait for a store that keeps them: no API write while acknowledged writes could be lost.

A Redis without ``appendfsync always`` acknowledges a write before it is on disk; a crash
can take back a counter range and serials would be issued twice, or an owner's registration
would vanish after the API said it was done. So while the store reports that (see
``twin.durability``), every write to the API answers 503 problem+json naming the setting,
reads and scans go on, and ``/readyz`` says writes are degraded. The store re-reads its
setting now and then, so ``CONFIG SET appendfsync always`` heals it without a restart.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from resolver import problems
from twin.errors import UnsafeDurability

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Where writes live (the pages under /u/ post through the same journeys but answer with pages:
#: the store refuses their unsafe writes itself once a journey allocates or records).
WRITE_PREFIXES = ("/v1/",)


class DurableWrites:
    """ASGI middleware: a write request to the API is refused while the store is unsafe."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in READ_METHODS and scope["path"].startswith(WRITE_PREFIXES):
            services = getattr(scope["app"].state, "services", None)
            if services is not None:
                try:
                    await services.store.check_durable()
                except UnsafeDurability as exc:
                    problem = problems.classify(exc)
                    problems.log_problem(problem, exc)
                    await problems.response(problem)(scope, receive, send)
                    return
        await self.app(scope, receive, send)
