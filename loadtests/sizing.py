"""Numbers that size a deployment: memory per unit with a record, per minted-but-untouched
unit, per scan event and per batch, on a real redis-server (INFO memory deltas) and on a
SQLite file (file size deltas after a checkpoint); and one Redis shard's ops/s.

  python loadtests/sizing.py                   # 20k registered units, 1M scans, 1M minted, 10k batches
  python loadtests/sizing.py --units 50000 --scans 2000000 --batches 100000
  python loadtests/sizing.py --skip-sqlite     # Redis only

Units without events cost nothing of their own (their batch describes them); a unit that
was sold and registered has a record, three events, audit and feed entries. Scans are
stored in chunks of 5,000 per GTIN. Ops/s: redis-benchmark against the same server
(GET unpipelined and pipelined 16, MGET of 64 keys as the resolver's coalesced reads send).
A batch is one record per allocation (range, status, lot, expiry…) plus its idempotency
and audit rows, however many serials it covers. Everything is written through the
store's public API (SQLite with ``durability=relaxed``: same rows, no fsync per write).
Results: stdout and loadtests/results/sizing-*.json. Needs redis-server and redis-benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from throughput import GTIN, free_port  # noqa: E402  (loadtests/ is the script's own directory)

from twin.events import Actor, make_event  # noqa: E402
from twin.scans import ScanEvent  # noqa: E402
from twin.store import open_store  # noqa: E402


def used_memory(port: int) -> int:
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "memory"], capture_output=True, text=True).stdout
    return int(next(l for l in out.splitlines() if l.startswith("used_memory:")).split(":")[1])


async def registered_units(url: str, count: int) -> float:
    actor = Actor("manufacturer", "sizing")
    async with await open_store(url) as store:
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            serial = f"R{i:011d}"
            async with sem:
                for kind, data in (("commission", {}), ("sell", {"purchase_date": "2026-01-02"}),
                                   ("register", {"owner": f"owner-{i:012d}"})):
                    await store.append_event(GTIN, serial, make_event(kind, actor, "sizing", **data))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count * 3 / (time.perf_counter() - t0)


async def scan_events(url: str, count: int) -> float:
    rng = random.Random(1)
    now = int(time.time() * 1000)
    async with await open_store(url) as store:
        t0 = time.perf_counter()
        for start in range(0, count, 5000):
            batch = [ScanEvent(now + i, GTIN, f"S{rng.getrandbits(40):012x}", None, "consumer", "gs1:pip",
                               "commissioned", None) for i in range(start, min(count, start + 5000))]
            await store.append_scans(batch)
        return count / (time.perf_counter() - t0)


async def minted(url: str, count: int) -> None:
    async with await open_store(url) as store:
        await store.allocate_range(GTIN, "default", count, "sizing-1", "d" * 64, actor=Actor("line", "sizing"))


async def batches(url: str, count: int) -> float:
    """``count`` batches of 100 counters each (one line shift's allocation apiece), with a lot."""
    async with await open_store(url) as store:
        actor = Actor("line", "sizing")
        t0 = time.perf_counter()
        for i in range(count):
            await store.allocate_range(GTIN, "batches", 100, f"sizing-b{i}", "e" * 64, actor=actor, lot=f"L{i:07d}")
        return count / (time.perf_counter() - t0)


def sqlite_bytes(path: Path) -> int:
    """The SQLite file's size once the WAL is folded in (what the data really takes)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path.stat().st_size


def series(url: str, size: Callable[[], int], args: argparse.Namespace) -> dict[str, float]:
    """Minted units, registered units, scans, batches, in that order; bytes per item of each."""
    out: dict[str, float] = {}
    base = size()
    asyncio.run(minted(url, args.minted))
    after_mint = size()
    out["bytes per minted unit without a record"] = (after_mint - base) / args.minted
    out["appends/s (3 events per unit, 64 concurrent)"] = asyncio.run(registered_units(url, args.units))
    after_units = size()
    out["bytes per registered unit (record, 3 events, audit, feed)"] = (after_units - after_mint) / args.units
    out["scan events appended/s"] = asyncio.run(scan_events(url, args.scans))
    after_scans = size()
    out["bytes per scan event"] = (after_scans - after_units) / args.scans
    out["batches allocated/s"] = asyncio.run(batches(url, args.batches))
    out["bytes per batch (record, idempotency, audit, feed)"] = (size() - after_scans) / args.batches
    return out


def benchmark(port: int) -> dict[str, float]:
    if not shutil.which("redis-benchmark"):
        return {}
    out = {}
    for name, args in (("GET", ["-t", "get"]), ("GET pipelined 16", ["-t", "get", "-P", "16"]),
                       ("MGET 64 keys", ["mget"] + [f"k{i}" for i in range(64)])):
        cmd = ["redis-benchmark", "-p", str(port), "-q", "-n", "200000", "-c", "50", "--csv", *args]
        text = subprocess.run(cmd, capture_output=True, text=True).stdout
        for line in text.splitlines():
            parts = [p.strip('"') for p in line.split(",")]
            if len(parts) > 1 and parts[1].replace(".", "").isdigit():
                out[name] = float(parts[1])
    return out


def per_million(results: dict[str, float]) -> str:
    m = 1_000_000
    return (f"  per million registered units: {results['bytes per registered unit (record, 3 events, audit, feed)'] * m / 2**20:,.0f} MiB\n"
            f"  per million scan events: {results['bytes per scan event'] * m / 2**20:,.0f} MiB\n"
            f"  per million batches: {results['bytes per batch (record, idempotency, audit, feed)'] * m / 2**20:,.0f} MiB\n"
            f"  per million minted units without records: {results['bytes per minted unit without a record'] * m:,.2f} bytes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=20_000, help="registered units to write")
    parser.add_argument("--scans", type=int, default=1_000_000)
    parser.add_argument("--minted", type=int, default=1_000_000, help="units minted in one batch (no records)")
    parser.add_argument("--batches", type=int, default=10_000, help="batches of 100 counters to allocate")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serialink-sizing-"))
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
                              "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                             stdout=subprocess.DEVNULL)
    results: dict[str, Any] = {}
    try:
        time.sleep(0.5)
        redis_results: dict[str, Any] = series(f"redis://127.0.0.1:{port}/0", lambda: used_memory(port), args)
        redis_results["redis-benchmark ops/s (one shard, 50 clients)"] = benchmark(port)
        results["redis (used_memory)"] = redis_results
        if not args.skip_sqlite:
            db = work / "sizing.db"
            results["sqlite (file size)"] = series(f"sqlite:///{db}?durability=relaxed", lambda: sqlite_bytes(db), args)
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    for name, numbers in results.items():
        print(f"\n{name}:\n{per_million(numbers)}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"sizing-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
