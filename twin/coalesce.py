"""Coalesce concurrent single-key reads into one multi-key round trip.

redis-py spends ~36 µs of CPU per command; a resolver under load has dozens of requests
waiting on one GET each. Every ``get`` issued in the same event-loop turn joins one
batch, and while a batch is in flight the next one fills up, so the per-command cost is
paid once per batch, not once per read. An idle process pays one loop turn of latency.

Every round trip is bounded by ``timeout`` and reported to a
:class:`~twin.health.StoreHealth`: while that says the store is down, ``get`` fails at once
instead of queueing behind a server that does not answer. ``stats`` counts round trips,
keys and batch sizes (powers of two) for the resolver's /metrics.

>>> import asyncio
>>> from twin.coalesce import Coalescer
>>> calls = []
>>> async def fetch(keys):
...     calls.append(list(keys))
...     return [k.upper() for k in keys]
>>> async def demo():
...     reader = Coalescer(fetch)
...     return await asyncio.gather(reader.get("a"), reader.get("b"), reader.get("c"))
>>> asyncio.run(demo()), calls
(['A', 'B', 'C'], [['a', 'b', 'c']])
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from twin.errors import StoreError
from twin.health import StoreHealth

K = TypeVar("K")
V = TypeVar("V")

#: Upper bounds of the batch-size buckets: 1, 2, 4, … 512, then everything larger.
SIZE_BUCKETS = tuple(1 << i for i in range(10))


class CoalescerStats:
    """Plain counters, read when /metrics is scraped (never locked: one event loop)."""

    __slots__ = ("round_trips", "keys", "failures", "seconds", "sizes")

    def __init__(self) -> None:
        self.round_trips = self.keys = self.failures = 0
        self.seconds = 0.0
        self.sizes = [0] * (len(SIZE_BUCKETS) + 1)  # by bucket index; last = larger than 512



class Coalescer(Generic[K, V]):
    """Batch ``get(key)`` calls into ``fetch(keys) -> values`` (same order, same length).

    ``max_batch`` bounds one round trip; ``max_inflight`` bounds concurrent round trips
    (and so the connections used): when all are busy, reads queue for the next batch.
    A failed fetch fails every read of its batch with StoreError; a reader cancelled
    while waiting does not disturb the others. ``timeout`` (seconds) bounds one round
    trip; ``health`` is told about every outcome and, while down, refuses reads at once.
    """

    def __init__(
        self,
        fetch: Callable[[list[K]], Awaitable[Sequence[V]]],
        *,
        max_batch: int = 512,
        max_inflight: int = 4,
        timeout: float | None = None,
        health: StoreHealth | None = None,
    ) -> None:
        self._fetch = fetch
        self._timeout = timeout
        self._health = health
        self.stats = CoalescerStats()
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._keys: list[K] = []
        self._futures: list[asyncio.Future[V]] = []
        self._inflight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self, key: K) -> asyncio.Future[V]:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        health = self._health
        if health is not None and health.down_until and not health.available():
            future.set_exception(StoreError(health.refusal("store")))
            return future
        self._keys.append(key)
        self._futures.append(future)
        if not self._scheduled and self._inflight < self._max_inflight:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        loop = self._loop
        assert loop is not None
        while self._keys and self._inflight < self._max_inflight:
            n = self._max_batch
            keys, futures = self._keys[:n], self._futures[:n]
            del self._keys[:n], self._futures[:n]
            self._inflight += 1
            task = loop.create_task(self._run(keys, futures))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, keys: list[K], futures: list[asyncio.Future[V]]) -> None:
        stats = self.stats
        stats.round_trips += 1
        stats.keys += len(keys)
        stats.sizes[min((len(keys) - 1).bit_length(), len(SIZE_BUCKETS))] += 1  # bucket: smallest 2**i >= n
        health = self._health
        started = time.perf_counter()
        try:
            if self._timeout is None:
                values = await self._fetch(keys)
            else:
                async with asyncio.timeout(self._timeout):
                    values = await self._fetch(keys)
        except asyncio.CancelledError:
            for f in futures:
                f.cancel()
            raise
        except Exception as exc:
            stats.failures += 1
            if isinstance(exc, TimeoutError):
                exc = TimeoutError(f"no answer within {self._timeout:g}s")
            if health is not None:
                health.failed(exc)
            error = exc if isinstance(exc, StoreError) else StoreError(f"round trip failed: {type(exc).__name__}: {exc}")
            for f in futures:
                if not f.done():
                    f.set_exception(error)
        else:
            if health is not None and health.down_until:
                health.ok()
            for f, v in zip(futures, values):
                if not f.done():
                    f.set_result(v)
        finally:
            stats.seconds += time.perf_counter() - started
            self._inflight -= 1
            if self._keys and not self._scheduled:
                self._scheduled = True
                assert self._loop is not None
                self._loop.call_soon(self._flush)

    async def aclose(self) -> None:
        """Cancel round trips in flight (their readers see CancelledError)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for f in self._futures:
            f.cancel()
        self._keys.clear()
        self._futures.clear()
