"""Eight processes allocate counter ranges for the same GTIN at once: no range overlaps
another, together they tile the counter space without a gap, the audit lists each exactly
once, and a retried request id gets its own range back.

Run directly, this file is one allocating process:
``python test_twin_concurrency.py <store-url> <worker-no> <start-at>``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time

import pytest

from twin.events import Actor
from twin.store import open_store

GTIN = "09506000134352"
WORKERS = 8
ALLOCATIONS = 40


async def _allocate(url: str, worker: int, start_at: float) -> list[list[int | str]]:
    rng = random.Random(worker)
    actor = Actor("line", f"line-{worker}")
    async with await open_store(url) as store:
        await asyncio.sleep(max(0.0, start_at - time.time()))  # all start together
        got = []
        for i in range(ALLOCATIONS):
            count = rng.randint(1, 1000)
            batch = await store.allocate_range(GTIN, "eu", count, f"w{worker}-r{i}", f"n={count}", actor=actor)
            got.append([batch.request_id, batch.start, batch.count])
            if i % 10 == 9:  # a line retrying after a timeout
                rid, start, n = got[rng.randrange(len(got))]
                again = await store.allocate_range(GTIN, "eu", n, rid, f"n={n}", actor=actor)
                assert (again.start, again.count) == (start, n), "a retry got a different range"
        return got


@pytest.mark.anyio
async def test_eight_processes_allocating_at_once_never_overlap(store_url: str) -> None:
    async with await open_store(store_url):
        pass  # create the SQLite file before the workers race to
    start_at = time.time() + 1.0
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    procs = [
        subprocess.Popen([sys.executable, __file__, store_url, str(w), str(start_at)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=root)
        for w in range(WORKERS)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.extend(json.loads(out))
    assert len(results) == WORKERS * ALLOCATIONS
    spans = sorted((start, start + n) for _, start, n in results)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start == end, f"gap or overlap at counter {end}"
    assert spans[0][0] == 0
    async with await open_store(store_url) as store:
        audit = [e for e in await store.audit(GTIN, limit=10_000) if e.action == "allocate"]
        assert sorted((e.detail["start"], e.detail["start"] + e.detail["count"]) for e in audit) == spans
        assert sorted(e.detail["request_id"] for e in audit) == sorted(r for r, _, _ in results)
        assert [(r.start, r.start + r.count) for r in await store.batch_ranges(GTIN, "eu")] == spans


if __name__ == "__main__":
    url, worker, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(_allocate(url, worker, start_at))))
