"""Revoked tokens: a list in the store that every worker and host sees, cached briefly here.

Tokens are stateless JWS, so revoking one means remembering its id (``jti``) until it
would have expired anyway. The list lives in the store (``revoke_token`` /
``revoked_tokens``); each worker keeps a copy no older than ``max_age`` seconds and hands
:class:`resolver.access.tokens.TokenVerifier` a plain callable, because a verifier is consulted
on every scan and may not wait on I/O. A stale copy schedules its own refresh; write
APIs call :meth:`RevocationList.fresh` first so a revoked token never writes once the
revocation is ``max_age`` old, on any host. A revocation made by this worker counts at once.

>>> rl = RevocationList(store=None)
>>> rl.add("jti-1", 4102444800.0)
>>> rl("jti-1"), rl("jti-2")
(True, False)
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

log = logging.getLogger("serialink.resolver.revocation")


class RevocationList:
    def __init__(self, store: Any, max_age: float = 1.0) -> None:
        self.store = store
        self.max_age = max_age
        self._ids: dict[str, float] = {}  # token id -> when the token expires (epoch seconds)
        self._loaded_at = float("-inf")
        self._task: asyncio.Task[None] | None = None

    def __call__(self, token_id: str) -> bool:
        """Is ``token_id`` revoked (as of this worker's copy)? Never blocks."""
        if self.store is not None and time.monotonic() - self._loaded_at > self.max_age:
            self._schedule()
        return token_id in self._ids

    def add(self, token_id: str, expires: float) -> None:
        self._ids[token_id] = expires

    def _schedule(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._refresh_quietly(), name="revocations")

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:  # store down: keep the copy we have
            log.warning("revocation list unavailable: %s", exc)
            self._loaded_at = time.monotonic()  # try again after max_age, not on every call

    async def refresh(self) -> None:
        revoked = await self.store.revoked_tokens()
        now = time.time()
        ids = {token_id: at.timestamp() for token_id, at in revoked.items()}
        # ids added here while the read was in flight: keep them until they expire
        ids.update({k: v for k, v in self._ids.items() if v > now and k not in ids})
        self._ids = ids
        self._loaded_at = time.monotonic()

    async def fresh(self) -> None:
        """Bring the copy up to date if it is older than ``max_age`` (write paths)."""
        if time.monotonic() - self._loaded_at > self.max_age:
            await self.refresh()
