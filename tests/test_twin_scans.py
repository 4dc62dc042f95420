"""The scan buffer: bounded, flushed in batches off the request path, failures reported."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from twin.errors import StoreError
from twin.scans import ScanBuffer, ScanEvent
from twin.store import open_store

pytestmark = pytest.mark.anyio
GTIN = "09506000134352"


def scan(i: int, serial: str = "S1") -> ScanEvent:
    return ScanEvent(1_700_000_000_000 + i, GTIN, serial, None, "consumer", "gs1:pip", "sold", None)


async def test_the_background_task_flushes_full_batches_and_on_interval(store: Any) -> None:
    buffer = ScanBuffer(store, batch_size=100, interval=0.05)
    task = asyncio.create_task(buffer.run())
    for i in range(250):
        assert buffer.add(scan(i))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if buffer.stats().flushed == 250:
            break
    assert buffer.stats() == (0, 250, 0, 0, None)
    buffer.add(scan(999))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert buffer.stats().flushed == 251  # the last scans are flushed on shutdown
    history = await store.scan_history(GTIN, "S1", limit=300)
    assert len(history) == 251 and history[0] == scan(999)


async def test_a_failed_flush_is_reported_and_keeps_its_scans(redis_factory: Any) -> None:
    server = redis_factory()
    store = await open_store(f"{server.url}?prefix=buf&cooldown=0.05")  # the breaker lets calls through again soon
    errors: list[tuple[str, int]] = []
    buffer = ScanBuffer(store, max_events=150, batch_size=100, on_error=lambda exc, n: errors.append((str(exc), n)))
    try:
        for i in range(120):
            buffer.add(scan(i))
        server.kill()
        with pytest.raises(StoreError):
            await buffer.flush()
        stats = buffer.stats()
        assert (stats.buffered, stats.failed_flushes, stats.flushed) == (120, 1, 0)
        assert errors and errors[0][1] == 120 and "Connection" in stats.last_error
        for i in range(120, 200):  # past the bound: new scans are dropped and counted
            buffer.add(scan(i))
        assert buffer.stats().buffered == 150 and buffer.stats().dropped == 50
        server.start()
        await asyncio.sleep(0.1)  # past the store's breaker cooldown (twin.health)
        assert await buffer.flush() == 150
        history = await store.scan_history(GTIN, "S1", limit=1000)
        assert sorted(s.at_ms for s in history) == [scan(i).at_ms for i in range(150)]
    finally:
        await store.close()


async def test_a_flush_packs_a_slice_at_a_time_into_the_same_chunks(store: Any) -> None:
    """The flusher checks and packs a few hundred scans between turns of the event loop
    (a scan in flight waits for one slice, not for the whole flush), into exactly the
    chunks ``pack_chunks`` makes: one GTIN or several, split at SCAN_CHUNK and by time."""
    from twin.errors import InvalidInput
    from twin.scans import SCAN_CHUNK, pack_chunks, pack_gently

    other = "09506000134369"
    scans = [scan(i, f"S{i}") for i in range(SCAN_CHUNK + 700)]
    scans += [ScanEvent(1_700_000_000_000 + i, other, f"T{i}", None, "consumer", None, None, None, "DE")
              for i in range(0, 2 * 3_600_000, 90_000)]  # spans two hours: cut by time
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    packed = await pack_gently(scans, step=500)
    counter.cancel()
    assert packed.chunks == list(pack_chunks(scans)) and list(packed) == scans
    assert len(packed.chunks) >= 4 and turns >= len(scans) // 500
    assert await store.append_scans(packed) == len(scans)
    assert [s.serial for s in await store.scan_history(GTIN, "S7")] == ["S7"]
    with pytest.raises(InvalidInput, match=r"scans\[0\]\.serial"):
        await pack_gently([scan(0, "X" * 21)])
