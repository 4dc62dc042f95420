"""Finding packs and unpacks again (``store.aggregation_events_of``), and what unpacks pay
for it, on each store: 100,000 units in 1,000 cases of 100, then 100 cases unpacked
(everything out, 10,000 children: each leaves one history row, packs leave none).

Timed: the unpack write (history included), one unit's events (the lookup a
``MATCH_epc`` query makes; median of 500 units, half of them unpacked), 100 units at once,
and the batch's events (1,100 events). Bounded: about 20 s per store on 2 vCPUs.

    python -m pytest benchmarks/bench_aggregation_query.py -s -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

import pytest

from benchmarks.bench_aggregation import sscc
from twin.aggregation import AggregationOp, Child, op_digest, unit_key
from twin.events import Actor
from twin.store import open_store

GTIN = "09506000134352"
UNITS, PER_CASE, UNPACKED = 100_000, 100, 100
BATCH = f"{GTIN}.default.0"
LINE = Actor("line", "bench")


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_find_the_events_of_units_and_a_batch(backend: str, tmp_path: Path, redis_url: str) -> None:
    url = (f"sqlite:///{tmp_path / 'q.db'}" if backend == "sqlite"
           else f"{redis_url}?prefix=bq{os.getpid()}{backend}&timeout=60")

    async def run() -> dict[str, float]:
        store = await open_store(url)
        # minted units come with their counter, as the journey packs them
        units = [Child(unit_key(GTIN, f"S{i:07d}"), BATCH, i) for i in range(UNITS)]
        ops = []
        for n in range(UNITS // PER_CASE):
            children = tuple(units[n * PER_CASE:(n + 1) * PER_CASE])
            ops.append(AggregationOp(f"p{n}", "ADD", sscc(n), children, 1_767_225_600_000 + n, ("l1", "s1"), False,
                                     op_digest("ADD", sscc(n), children, False)))
        for i in range(0, len(ops), 100):
            await store.apply_aggregations(ops[i:i + 100], LINE)
        out = [AggregationOp(f"u{n}", "DELETE", sscc(n), (), 1_767_300_000_000 + n, None, False,
                             op_digest("DELETE", sscc(n), (), False)) for n in range(UNPACKED)]
        t0 = time.perf_counter()
        await store.apply_aggregations(out, LINE)
        unpack = time.perf_counter() - t0
        one = []
        for i in range(0, UNITS, UNITS // 500):
            t0 = time.perf_counter()
            found = await store.aggregation_events_of([units[i]])
            one.append(time.perf_counter() - t0)
            assert len(found) == (2 if i < UNPACKED * PER_CASE else 1)
        t0 = time.perf_counter()
        assert len(await store.aggregation_events_of(units[::UNITS // 100])) > 0
        hundred = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert len(await store.aggregation_events_of(batches=[BATCH])) == UNITS // PER_CASE + UNPACKED
        batch = time.perf_counter() - t0
        await store.close()
        return {"unpack": unpack, "one": statistics.median(one), "hundred": hundred, "batch": batch}

    t = asyncio.run(run())
    print(f"\n{backend}: unpack {UNPACKED} cases ({UNPACKED * PER_CASE:,} children) {t['unpack'] * 1000:.0f} ms; "
          f"one unit's events {t['one'] * 1000:.2f} ms (median of 500); 100 units {t['hundred'] * 1000:.1f} ms; "
          f"the batch's {UNITS // PER_CASE + UNPACKED:,} events {t['batch'] * 1000:.0f} ms")
