"""Crash safety: every write that was acknowledged survives SIGKILL.

A writer process streams allocations, unit events and scan batches, printing one line
per acknowledged write; it is killed with SIGKILL mid-stream. On every backend the
acknowledged writes are all there afterwards and nothing is torn (a unit's record always
matches its events). For Redis the *server* is killed too: with ``appendonly yes`` and
``appendfsync always`` it fsyncs the AOF before it replies, so a restart on the same
directory finds every acknowledged write. A server with a weaker policy is refused for
range allocation unless the caller opts into ``durability=relaxed``.

Run directly, this file is the writer: ``python test_twin_crash.py <store-url>``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from twin.errors import UnsafeDurability
from twin.events import Actor, make_event
from twin.scans import ScanEvent
from twin.store import open_store
from twin.unit import replay

GTIN = "09506000134352"
LINE = Actor("line", "crash-writer")
SCANS_PER_ROUND = 100


async def _write_forever(url: str) -> None:
    async with await open_store(url) as store:
        i = 0
        while True:
            batch = await store.allocate_range(GTIN, "crash", 7, f"req-{i}", "digest", actor=LINE)
            print(f"A {i} {batch.id}", flush=True)
            await store.append_event(GTIN, f"U{i}", make_event("commission", LINE, "packed", lot="L1"))
            print(f"E {i}", flush=True)
            scans = [ScanEvent(1_700_000_000_000 + i, GTIN, f"U{i}", None, "consumer", None, "commissioned", None)] * SCANS_PER_ROUND
            await store.append_scans(scans)
            print(f"S {i}", flush=True)
            i += 1


def _start_writer(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )


def _acks_until(proc: subprocess.Popen[str], rounds: int, timeout: float = 30.0) -> list[str]:
    """Read acknowledgements until ``rounds`` full rounds are in; the writer keeps going."""
    assert proc.stdout is not None
    acks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"writer died: {proc.stderr.read() if proc.stderr else ''}")
        acks.append(line.split())
        if acks[-1][0] == "S" and int(acks[-1][1]) + 1 >= rounds:
            return acks
    raise AssertionError("writer too slow")


def _drain(proc: subprocess.Popen[str], acks: list[list[str]]) -> None:
    """Lines the writer printed before it died are acknowledgements too."""
    assert proc.stdout is not None
    acks.extend(line.split() for line in proc.stdout.read().splitlines() if line.strip())
    proc.stdout.close()
    if proc.stderr is not None:
        proc.stderr.close()


async def _check_acknowledged(url: str, acks: list[list[str]]) -> None:
    async with await open_store(url) as store:
        rounds = {int(a[1]) for a in acks}
        for kind, i, *rest in acks:
            if kind == "A":
                batch = await store.get_batch(rest[0])
                assert batch is not None and batch.request_id == f"req-{i}", f"acknowledged allocation {i} lost"
            elif kind == "E":
                assert (await store.get_unit(GTIN, f"U{i}")) is not None, f"acknowledged event {i} lost"
            else:
                assert len(await store.scan_history(GTIN, f"U{i}", limit=1000)) == SCANS_PER_ROUND, f"scans {i} lost"
        # Nothing torn: every unit record is the fold of its events, also the one in flight.
        for i in range(max(rounds) + 2):
            unit = await store.get_unit(GTIN, f"U{i}")
            if unit is not None:
                assert replay(GTIN, f"U{i}", await store.get_events(GTIN, f"U{i}")) == unit
        # The round in flight, retried, gets its range back or a fresh one: never an overlap.
        retry = max(rounds) + 1
        await store.allocate_range(GTIN, "crash", 7, f"req-{retry}", "digest", actor=LINE)
        ranges = await store.batch_ranges(GTIN, "crash")
        assert [r.start for r in ranges] == [7 * k for k in range(len(ranges))]


@pytest.mark.anyio
async def test_a_killed_writer_loses_no_acknowledged_write(store_url: str) -> None:
    proc = _start_writer(store_url)
    try:
        acks = _acks_until(proc, rounds=40)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    _drain(proc, acks)
    await _check_acknowledged(store_url, acks)


@pytest.mark.anyio
async def test_a_killed_redis_server_loses_no_acknowledged_write(redis_factory: Any) -> None:
    server = redis_factory(appendfsync="always")
    url = f"{server.url}?prefix=crash"
    proc = _start_writer(url)
    try:
        acks = _acks_until(proc, rounds=40)
        server.kill()  # SIGKILL mid-stream: no shutdown, no final fsync
        proc.wait(20)  # the writer fails on the lost connection
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
    _drain(proc, acks)
    server.start()  # same directory: replays the AOF
    await _check_acknowledged(url, acks)


@pytest.mark.anyio
async def test_range_allocation_refuses_a_server_that_may_lose_acknowledged_writes(redis_factory: Any) -> None:
    server = redis_factory(appendfsync="everysec")
    async with await open_store(f"{server.url}?prefix=dur") as store:
        assert store.durability == "everysec"
        with pytest.raises(UnsafeDurability, match="appendfsync always"):
            await store.allocate_range(GTIN, "eu", 10, "r1", "d", actor=LINE)
        await store.append_event(GTIN, "S1", make_event("commission", LINE, "x"))  # other writes still work
    async with await open_store(f"{server.url}?prefix=dur&durability=relaxed") as store:
        assert (await store.allocate_range(GTIN, "eu", 10, "r1", "d", actor=LINE)).count == 10


@pytest.mark.anyio
async def test_the_test_servers_fsync_before_they_acknowledge(store: Any) -> None:
    assert store.durability == "always"


if __name__ == "__main__":
    asyncio.run(_write_forever(sys.argv[1]))
