"""Unit read API throughput beside the resolver's distinct-serial scans, in one run.

Same set-up as throughput.py: the server (`serialink serve`, one worker) pinned to one
core, wrk pinned to the other (Redis, when used, shares wrk's core), the same minted
serials for both measurements, on the same store:

  (a) scans of distinct serials: ``GET /01/{gtin}/21/{serial}`` → 307;
  (b) the unit read API, anonymous (the consumer view: product, warranty, service
      summary, manuals and parts links): ``GET /v1/units/01/{gtin}/21/{serial}`` → 200;
  (c) the same API for units that have a record (registered, with events), a tenth of them.

Target (issue 17): (b) ≥ 80 % of (a) on the same store (issue 6 asked for 50 %).

    python loadtests/unit_api.py                   # SQLite and Redis, 10 s per measurement
    python loadtests/unit_api.py --skip-redis --duration 5
    python loadtests/unit_api.py --skip-redis --duration 4 --rounds 3   # best of 3 alternating rounds

Needs wrk (and redis-server). Results: stdout and loadtests/results/unit-api-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from throughput import GTIN, free_port, mint_serials, pinned, serialink, start, stop, wrk  # noqa: E402


def give_records(store_url: str, serials: list[str]) -> None:
    """Registered units with a short history, written straight to the store."""
    from twin.events import Actor, make_event
    from twin.ownership import PersonalData, new_owner_id
    from twin.store import open_store

    async def go() -> None:
        store = await open_store(store_url)
        try:
            actor = Actor("manufacturer", "loadtest")
            for serial in serials:
                owner = new_owner_id()
                for event in (make_event("commission", actor, "load test"),
                              make_event("sell", actor, "load test", purchase_date="2025-03-01"),
                              make_event("register", Actor("owner", owner), "load test", owner=owner)):
                    await store.append_event(GTIN, serial, event,
                                             personal=PersonalData("Load Test", "load@example.com")
                                             if event.type == "register" else None)
        finally:
            await store.close()

    asyncio.run(go())


def measure(label: str, store_url: str, data_dir: Path, args, serials: list[str], results: dict) -> None:
    rng = random.Random(7)
    rng.shuffle(serials)
    with_records = [f"R{i:07d}" for i in range(max(1, len(serials) // 10))]
    give_records(store_url, with_records)
    scans, api, api_records = data_dir / "scans.txt", data_dir / "api.txt", data_dir / "api-records.txt"
    scans.write_text("".join(f"/01/{GTIN}/21/{s}\n" for s in serials))
    api.write_text("".join(f"/v1/units/01/{GTIN}/21/{s}\n" for s in serials))
    api_records.write_text("".join(f"/v1/units/01/{GTIN}/21/{s}\n" for s in with_records))
    proc, base = serialink(store_url, data_dir, args.server_core)
    try:
        for paths, expected in ((scans, 307), (api, 200)):  # warm up both paths
            wrk(base, paths, 2, args.connections, args.load_core, expected)
        targets = {f"scans, distinct serials, {label}": (scans, 307),
                   f"unit API, distinct serials, {label}": (api, 200),
                   f"unit API, units with records, {label}": (api_records, 200)}
        rounds: dict[str, list[dict]] = {name: [] for name in targets}
        for _ in range(args.rounds):  # alternating, so a busy moment of the machine hits all three alike
            for name, (paths, expected) in targets.items():
                rounds[name].append(wrk(base, paths, args.duration, args.connections, args.load_core, expected))
        for name, runs in rounds.items():
            results[name] = max(runs, key=lambda r: r["rps"])
            results[name]["all_rounds_rps"] = [round(r["rps"]) for r in runs]
    finally:
        stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds; the best of each is reported")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--serials", type=int, default=200_000)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-core", default="1")
    parser.add_argument("--skip-redis", action="store_true")
    args = parser.parse_args()
    for tool in ("wrk",) + (() if args.skip_redis else ("redis-server",)):
        if not shutil.which(tool):
            print(f"{tool} is needed: apt-get install {'wrk' if tool == 'wrk' else 'redis-server'}", file=sys.stderr)
            return 2
    results: dict[str, dict] = {}
    work = Path(tempfile.mkdtemp(prefix="serialink-unit-api-"))
    try:
        sqlite_dir = work / "sqlite"
        sqlite_dir.mkdir()
        sqlite_url = f"sqlite:///{sqlite_dir / 'serialink.db'}"
        measure("SQLite", sqlite_url, sqlite_dir, args, mint_serials(sqlite_url, sqlite_dir, args.serials), results)
        if not args.skip_redis:
            redis_dir = work / "redis"
            redis_dir.mkdir()
            rport = free_port()
            redis = start(pinned(args.load_core, ["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                                  "--dir", str(redis_dir), "--appendonly", "yes",
                                                  "--appendfsync", "always", "--save", ""]))
            try:
                time.sleep(0.5)
                redis_url = f"redis://127.0.0.1:{rport}/0"
                measure("Redis", redis_url, redis_dir, args, mint_serials(redis_url, redis_dir, args.serials), results)
            finally:
                stop(redis)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'measurement':<46}{'req/s':>10}{'of scans':>10}{'p50 ms':>9}{'p99 ms':>9}{'unexpected':>11}")
    for name, r in results.items():
        label = name.rsplit(", ", 1)[1]
        scans = results[f"scans, distinct serials, {label}"]["rps"]
        print(f"{name:<46}{r['rps']:>10,.0f}{r['rps'] / scans:>10.0%}{r['p50_us'] / 1000:>9.2f}"
              f"{r['p99_us'] / 1000:>9.2f}{r['unexpected'] + r['errors']:>11}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"unit-api-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
