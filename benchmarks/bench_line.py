"""Commissioning at the line: one verification report of 1M serials, end to end.

The report arrives as a JSON body listing 1,000,000 serials (what a camera station that
buffered a shift sends): parse it (orjson), invert the serial permutation for every
serial (serial → batch index), build the Roaring bitmap, check it against the batch's
line state, and write state + report id + audit + change feed atomically. Target: at least
500k serials/s on SQLite and on Redis. Peer, in the same run: the per-serial way, one
``commission`` event per unit via ``store.append_event`` (timed on 2,000 units and
reported per second).

    python -m pytest benchmarks/bench_line.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from serializer.keys import KeyStore
from serializer.line_reports import submit
from serializer.minting import BatchRequest, mint
from serializer.profiles import load_profiles
from twin.events import Actor, make_event
from twin.store import open_store

GTIN = "09506000134352"
UNITS = 1_000_000
LINE = Actor("line", "bench")
_ids = itertools.count()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _url(backend: str, tmp: Path, redis_url: str) -> str:
    return f"sqlite:///{tmp / 'line.db'}" if backend == "sqlite" else f"{redis_url}?prefix=bline{os.getpid()}x{next(_ids)}"


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_commission_a_million_serials_from_one_verification_report(benchmark: Any, loop: asyncio.AbstractEventLoop,
                                                                   backend: str, tmp_path: Path, redis_url: str) -> None:
    store = loop.run_until_complete(open_store(_url(backend, tmp_path, redis_url)))
    keys, profiles = KeyStore(tmp_path / "keys"), load_profiles()
    rounds = itertools.count()

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        n = next(rounds)
        minted = loop.run_until_complete(mint(store, keys, profiles, BatchRequest.parse(
            {"gtin": GTIN, "count": UNITS, "profile": "default", "request_id": f"b{n}"}), LINE))
        body = orjson.dumps({"report_id": "cam-1", "step": "verified", "result": "pass", "grade": "A",
                             "serials": minted.serials()})
        return (minted, body), {}

    def commission(minted: Any, body: bytes) -> None:
        summary = loop.run_until_complete(
            submit(store, keys, profiles, minted.batch.id, orjson.loads(body), LINE, minted.batch))
        assert summary.commissioned == UNITS

    benchmark.pedantic(commission, setup=setup, rounds=3, iterations=1)
    ours = UNITS / benchmark.stats.stats.min

    async def per_unit(n: int) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            await store.append_event(GTIN, f"PEER{next(_ids)}x{i}", make_event("commission", LINE, "camera pass"))
        return n / (time.perf_counter() - t0)

    peer = loop.run_until_complete(per_unit(2_000))
    benchmark.extra_info.update(serials_per_second=round(ours), peer_serials_per_second=round(peer))
    print(f"\n{backend}: {ours:,.0f} serials/s commissioned from one report; per-unit events {peer:,.0f}/s")
    loop.run_until_complete(store.close())
    assert ours >= 500_000, f"{ours:,.0f} serials/s is under the 500k/s target"
