"""Numbers that size a Redis deployment, measured on a real redis-server: memory per unit
with a record, per minted-but-untouched unit, per scan event, and one shard's ops/s.

  python loadtests/sizing.py                   # 20k registered units, 1M scans, 1M minted
  python loadtests/sizing.py --units 50000 --scans 2000000

Units without events cost nothing of their own (their batch describes them); a unit that
was sold and registered has a record, three events, audit and feed entries. Scans are
stored in chunks of 5,000 per GTIN. Ops/s: redis-benchmark against the same server
(GET unpipelined and pipelined 16, MGET of 64 keys as the resolver's coalesced reads send).
Results: stdout and loadtests/results/sizing-*.json. Needs redis-server and redis-benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=20_000, help="registered units to write")
    parser.add_argument("--scans", type=int, default=1_000_000)
    parser.add_argument("--minted", type=int, default=1_000_000, help="units minted in one batch (no records)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serialink-sizing-"))
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
                              "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                             stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        url = f"redis://127.0.0.1:{port}/0"
        results: dict[str, float | dict] = {}
        base = used_memory(port)
        asyncio.run(minted(url, args.minted))
        after_mint = used_memory(port)
        results["bytes per minted unit without a record"] = (after_mint - base) / args.minted
        results["appends/s (3 events per unit, 64 concurrent)"] = asyncio.run(registered_units(url, args.units))
        after_units = used_memory(port)
        results["bytes per registered unit (record, 3 events, audit, feed)"] = (after_units - after_mint) / args.units
        results["scan events appended/s"] = asyncio.run(scan_events(url, args.scans))
        after_scans = used_memory(port)
        results["bytes per scan event"] = (after_scans - after_units) / args.scans
        results["redis-benchmark ops/s (one shard, 50 clients)"] = benchmark(port)
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    m = 1_000_000
    print(json.dumps(results, indent=2))
    print(f"\nper million registered units: {results['bytes per registered unit (record, 3 events, audit, feed)'] * m / 2**20:,.0f} MiB"
          f"\nper million scan events: {results['bytes per scan event'] * m / 2**20:,.0f} MiB"
          f"\nper million minted units without records: {results['bytes per minted unit without a record'] * m:,.2f} bytes")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"sizing-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
