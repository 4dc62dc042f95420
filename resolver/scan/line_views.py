"""Per-batch line state for the scan path: which units the line commissioned, cached per worker.

A unit without a record of its own takes its state from its batch; when the batch is
line-tracked (``twin.line_state``), from the batch's bitmaps: ``commissioned``,
``decommissioned`` or ``not_commissioned``. The bitmaps are loaded once per batch and
worker (like the verifier's batch facts), so a scan reads no store for them; the change
feed's ``line`` entries (subject: the batch id) drop a batch's view, and the next scan of
that batch loads it again. A batch that is not tracked is cached as such (``None``).

If the store cannot be read, the batch is answered as untracked (its units resolve as the
batch says, as before line tracking) and retried on the next scan a second later: a scan
is never answered ``not_commissioned`` because a database was down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from twin.line_state import LineView

if TYPE_CHECKING:
    from twin.store import UnitStore

log = logging.getLogger("serialink.resolver.units")

#: How long a failed load is remembered before the next scan tries the store again.
RETRY_SECONDS = 1.0
#: Batches whose view (or "untracked") a worker keeps: as many as the serial verifier
#: caches (100k). At 10k, a GTIN with 100k batches scanned at random read the store on
#: nine scans in ten (a SQLite query on the loop, ~20 µs a scan: docs/performance.md).
MAX_BATCHES = 100_000


class LineViews:
    """``view = await views.get(batch_id)`` → LineView, or None for an untracked batch."""

    def __init__(self, store: UnitStore, *, max_batches: int = MAX_BATCHES) -> None:
        self.store = store
        self._views: dict[str, LineView | None] = {}
        self._failed: dict[str, float] = {}
        self._loading: dict[str, asyncio.Future[LineView | None]] = {}
        self._max = max_batches
        # bumped by every invalidation: a load that raced one is not cached, and what a caller
        # derived from a view (the lookup's per-batch facts) is checked again
        self.epoch = 0
        self.loads = 0

    def cached(self, batch_id: str) -> tuple[bool, LineView | None]:
        """(known, view) without a coroutine: the scan path's fast path."""
        views = self._views
        if batch_id in views:
            return True, views[batch_id]
        return False, None

    async def get(self, batch_id: str) -> LineView | None:
        known, view = self.cached(batch_id)
        if known:
            return view
        failed = self._failed.get(batch_id)
        if failed is not None and time.monotonic() - failed < RETRY_SECONDS:
            return None
        pending = self._loading.get(batch_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[LineView | None] = asyncio.get_running_loop().create_future()
        self._loading[batch_id] = future
        epoch = self.epoch
        try:
            state = await self.store.get_line_state(batch_id)
        except Exception as exc:  # store down: untracked for now, retried soon
            self._failed[batch_id] = time.monotonic()
            log.warning("line state of batch %s unavailable: %s", batch_id, exc)
            future.set_result(None)
            return None
        finally:
            self._loading.pop(batch_id, None)
        self.loads += 1
        view = None if state is None else state.view()
        self._failed.pop(batch_id, None)
        if epoch == self.epoch:
            if len(self._views) >= self._max:
                self._views.pop(next(iter(self._views)))
            self._views[batch_id] = view
        future.set_result(view)
        return view

    def invalidate_gtin(self, gtin: str) -> None:
        """Every batch of a GTIN (batch ids start with the GTIN)."""
        self.epoch += 1
        prefix = gtin + "."
        for batch_id in [b for b in self._views if b.startswith(prefix)]:
            del self._views[batch_id]

    def invalidate(self, batch_id: str | None = None) -> None:
        """The batch's line state changed (every batch: None)."""
        self.epoch += 1
        if batch_id is None:
            self._views.clear()
            self._failed.clear()
        else:
            self._views.pop(batch_id, None)
            self._failed.pop(batch_id, None)
