"""How long a scan flush holds the event loop: 4,000 scans (0.2 s of scans at 20k/s)
written to SQLite, checked and packed at once (as the flusher did) or a slice at a time
(``twin.scans.pack_gently``, as it does now). A ticker task notes the longest gap between
its turns: what every scan in flight waited for.

    python benchmarks/bench_flush_hold.py
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time

from twin.scans import ScanEvent, pack_gently
from twin.store import UnitStore, open_store


async def longest_hold_ms(store: UnitStore, gently: bool, n: int = 4000) -> float:
    rng = random.Random(1)
    scans = [ScanEvent(1_765_000_000_000 + i, "09506000134352", f"{rng.getrandbits(48):012X}", None, "consumer",
                       "gs1:pip", "commissioned", None, None) for i in range(n)]
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    await store.append_scans(await pack_gently(scans) if gently else scans)
    done = True
    await task
    return max(gaps) * 1e3


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with await open_store(f"sqlite:///{tmp}/scans.db") as store:
            best: dict[bool, list[float]] = {False: [], True: []}
            for gently in (False, True) * 5:
                best[gently].append(await longest_hold_ms(store, gently))
    for gently, holds in best.items():
        print(f"{'a slice at a time' if gently else 'at once':18s} longest hold, median of 5: "
              f"{sorted(holds)[2]:.2f} ms  (all: {', '.join(f'{h:.2f}' for h in holds)})")


if __name__ == "__main__":
    asyncio.run(main())
