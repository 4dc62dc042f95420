"""Packing at the line: 1,000,000 commissioned units into 10,000 cases of 100, on each store.

The line's packing stations report case by case; a line PC that buffered a shift sends
them in bulk. Timed here: the store's bulk path, ``store.apply_aggregations`` with 100
packs (10,000 units) per call — one SQLite transaction, or one Redis pipeline of reads
plus one checked Lua write — including the twin's checks (a child packed elsewhere, a
case into itself, one origin per parent, event-id idempotency). Units come with their
counter, as the journey passes them (SQLite keys them by batch and counter; see
docs/line.md, "Keeping up with the line"). Target: ≤ 10 s per store.
Also reported (not the target): the whole journey (`resolver.journeys.aggregation.apply`:
serial → batch through the permutation, line state, unit records) on 20,000 units.

    python -m pytest benchmarks/bench_aggregation.py --benchmark-only -s
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ext import compute_check_digit
from resolver.journeys.aggregation import apply
from serializer.keys import KeyStore
from serializer.line_reports import submit
from serializer.minting import BatchRequest, mint
from serializer.profiles import load_profiles
from serializer.verify import SerialVerifier
from twin.aggregation import AggregationOp, Child, op_digest, unit_key
from twin.events import Actor
from twin.store import open_store

GTIN = "09506000134352"
UNITS, PER_CASE, CASES_PER_CALL = 1_000_000, 100, 100
JOURNEY_UNITS = 20_000
LINE = Actor("line", "bench")
_ids = itertools.count()


def sscc(n: int) -> str:
    body = f"09506000{n:09d}"
    return body + compute_check_digit(body)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _url(backend: str, tmp: Path, redis_url: str) -> str:
    # bulk calls of 10,000 units: a longer bound than the default 2 s for one call
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'agg.db'}"
    return f"{redis_url}?prefix=bagg{os.getpid()}x{next(_ids)}&timeout=60"


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_aggregate_a_million_units_into_ten_thousand_cases(benchmark: Any, loop: asyncio.AbstractEventLoop,
                                                           backend: str, tmp_path: Path, redis_url: str) -> None:
    store = loop.run_until_complete(open_store(_url(backend, tmp_path, redis_url)))
    keys, profiles = KeyStore(tmp_path / "keys"), load_profiles()
    minted = loop.run_until_complete(mint(store, keys, profiles, BatchRequest.parse(
        {"gtin": GTIN, "count": UNITS, "profile": "default", "request_id": "agg"}), LINE))
    serials = minted.serials()
    loop.run_until_complete(submit(store, keys, profiles, minted.batch.id, {
        "report_id": "cam-1", "step": "verified", "result": "pass", "ranges": [{"start": 0, "count": UNITS}]}, LINE,
        minted.batch))
    batch = minted.batch.id
    cases = []
    for n in range(UNITS // PER_CASE):
        children = tuple(Child(unit_key(GTIN, s), batch, minted.batch.start + n * PER_CASE + i)
                         for i, s in enumerate(serials[n * PER_CASE:(n + 1) * PER_CASE]))
        parent = sscc(n)
        cases.append(AggregationOp(f"pack-{n}", "ADD", parent, children, 1_767_225_600_000, ("l1", "s1"), False,
                                   op_digest("ADD", parent, children, False)))

    def aggregate() -> None:
        async def run() -> None:
            for i in range(0, len(cases), CASES_PER_CALL):
                done = await store.apply_aggregations(cases[i:i + CASES_PER_CALL], LINE)
                assert len(done) == CASES_PER_CALL and not done[0].replayed
        loop.run_until_complete(run())

    benchmark.pedantic(aggregate, rounds=1, iterations=1)
    seconds = benchmark.stats.stats.min
    last = loop.run_until_complete(store.get_aggregation(sscc(UNITS // PER_CASE - 1)))
    assert last is not None and len(last.children) == PER_CASE

    # the whole journey on a sample (parse, permutation, line state, unit records, store)
    verifier = SerialVerifier(store, keys, profiles)
    base = UNITS // PER_CASE + 1

    async def journey() -> float:
        free = BatchRequest.parse({"gtin": GTIN, "count": JOURNEY_UNITS, "profile": "default", "request_id": "j"})
        more = await mint(store, keys, profiles, free, LINE)
        await submit(store, keys, profiles, more.batch.id, {"report_id": "cam-2", "step": "commissioned",
                                                            "ranges": [{"start": 0, "count": JOURNEY_UNITS}]}, LINE,
                     more.batch)
        units = more.serials()
        t0 = time.perf_counter()
        for n in range(0, JOURNEY_UNITS, PER_CASE * CASES_PER_CALL):
            bodies = [({"action": "pack", "parent": sscc(base + n // PER_CASE + k), "eventID": f"j-{n}-{k}",
                        "children": [{"gtin": GTIN, "serial": s}
                                     for s in units[n + k * PER_CASE:n + (k + 1) * PER_CASE]]}, "", ("parent", "children"))
                      for k in range(CASES_PER_CALL)]
            await apply(store, verifier, bodies, LINE)
        return JOURNEY_UNITS / (time.perf_counter() - t0)

    per_second = loop.run_until_complete(journey())
    loop.run_until_complete(store.close())
    benchmark.extra_info.update(units=UNITS, cases=UNITS // PER_CASE, seconds=round(seconds, 2),
                                journey_units_per_s=round(per_second))
    print(f"\n{backend}: {UNITS:,} units into {UNITS // PER_CASE:,} cases in {seconds:.2f} s "
          f"({UNITS / seconds:,.0f} units/s, target ≤ 10 s); whole journey {per_second:,.0f} units/s")
    assert seconds <= 10.0, f"{backend}: {seconds:.2f} s for {UNITS:,} units (target ≤ 10 s)"
