"""Analytics figures on synthetic scan events (a script, not a timed test: pytest collects
nothing here). Targets from issue 16: export ≥ 1M events/s, each report ≤ 5 s, clone
detection ≥ 50k scans/s.

    python benchmarks/bench_analytics.py --events 10000000            # ~3 min on 2 cores
    python benchmarks/bench_analytics.py --events 100000000 --dir /big  # the issue's size
    python benchmarks/bench_analytics.py --events 100000000 --dir /big --load-only   # load now …
    python benchmarks/bench_analytics.py --events 100000000 --dir /big --reuse       # … measure later

What runs: N scans (20 GTINs, 10 lots each, 2M serials, 30 days, roles, states, link
types, countries) are appended to a fresh SQLite store through ``store.append_scans`` in
buffer-sized batches, with batches, recalls and 20k registered units beside them; then
``serialink analytics export`` (the library call) writes Parquet; every report runs on
DuckDB over the whole period; the shipped clone rules judge the same scan stream in
batches of 5,000. Prints a table and writes it as JSON next to the store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resolver.analytics.clones import CloneDetector, load_rules  # noqa: E402
from resolver.analytics.export import export  # noqa: E402
from resolver.analytics.reports import DIMENSIONS, REPORTS, Analytics  # noqa: E402
from twin.events import Actor, make_event  # noqa: E402
from twin.overlays import LotScope, SerialRange  # noqa: E402
from twin.scans import ScanEvent  # noqa: E402
from twin.store import open_store  # noqa: E402
from twin.unit import unit_from_batch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400_000
QA = Actor("manufacturer", "bench")


def _gtin(body13: str) -> str:
    digits = [int(c) for c in body13]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return body13 + str((10 - total % 10) % 10)


GTINS = [_gtin(f"0950600{i:06d}") for i in range(20)]


def scan_stream(n: int, start_ms: int, batch: int = 5000, seed: int = 16) -> Iterator[list[ScanEvent]]:
    """N scans in time order, in batches (what a worker's buffer flushes)."""
    rnd = random.Random(seed)
    roles = ("consumer",) * 7 + ("owner", "technician", "installer")
    states = ("sold",) * 5 + ("registered",) * 3 + ("commissioned", "unknown")
    links = ("gs1:pip", "gs1:pip", "gs1:registerProduct", "gs1:serviceInfo", None)
    countries = ("DE", "DE", "FR", "GB", "US", "BR", "JP", None)
    step = 30 * DAY / n
    out: list[ScanEvent] = []
    choice, rand = rnd.choice, rnd.randrange
    for i in range(n):
        g = rand(20)
        lot = rand(10)
        out.append(ScanEvent(start_ms + int(i * step), GTINS[g], f"L{lot}-{rand(10_000)}", f"L{lot}", choice(roles),
                             choice(links), choice(states), None, choice(countries)))
        if len(out) == batch:
            yield out
            out = []
    if out:
        yield out


async def load(store_url: str, n: int, start_ms: int) -> dict[str, float]:
    async with await open_store(store_url) as store:
        started = time.perf_counter()
        for b in scan_stream(n, start_ms, batch=50_000):
            await store.append_scans(b)
        scans_s = time.perf_counter() - started
        started = time.perf_counter()
        rnd = random.Random(1)
        for g in GTINS:
            for lot in range(10):
                batch = await store.allocate_range(g, "default", 10_000, f"{g}-{lot}", "d", actor=QA, lot=f"L{lot}")
                if lot % 2 == 0:
                    await store.set_batch_status(batch.id, "committed", QA, "printed")
                for k in range(100):  # 20k registered units, a few serviced
                    serial = f"L{lot}-{k * 97}"
                    at = datetime.fromtimestamp(start_ms / 1000, UTC) + timedelta(days=rnd.randrange(30))
                    ev = make_event("register", Actor("owner", f"o_bench{k:05d}"), "r", owner=f"o_bench{k:05d}",
                                    purchase_date=at.date().isoformat(), at=at)
                    await store.append_event(g, serial, ev, origin=unit_from_batch(g, serial, batch))
                    if k % 5 == 0:
                        await store.append_event(g, serial, make_event(
                            "service", Actor("technician", "t"), "s", summary="x",
                            fault_codes=[rnd.choice(("F1", "F2", "E7"))], at=at + timedelta(days=2)))
            await store.put_overlay(g, "recalled", LotScope("L3"), QA, "bench recall")
            await store.put_overlay(g, "recalled", SerialRange("L5-1", "L5-999"), QA, "bench range")
        return {"load_scans_s": scans_s, "load_twin_s": time.perf_counter() - started}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "bench-analytics")
    parser.add_argument("--reuse", action="store_true",
                        help="keep a store loaded by an earlier run with the same --events (export and queries only)")
    parser.add_argument("--load-only", action="store_true", help="load the store, then stop (for a later --reuse)")
    args = parser.parse_args()
    loaded = args.dir / f"loaded-{args.events}"
    if not (args.reuse and loaded.exists()):
        shutil.rmtree(args.dir, ignore_errors=True)
        args.dir.mkdir(parents=True)
    shutil.rmtree(args.dir / "export", ignore_errors=True)
    store_url = f"sqlite:///{args.dir / 'twin.db'}?durability=relaxed"
    start_ms = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    n = args.events
    figures: dict[str, float] = {"events": n}
    if loaded.exists():
        print(f"reusing the {n:,} scans loaded in {args.dir}")
    else:
        figures.update(asyncio.run(load(store_url, n, start_ms)))
        loaded.touch()
        print(f"loaded {n:,} scans in {figures['load_scans_s']:.1f} s, twin data in {figures['load_twin_s']:.1f} s")
    if args.load_only:
        return 0

    async def run_export():
        async with await open_store(store_url) as store:
            return await export(store, args.dir / "export", start_ms, start_ms + 31 * DAY)

    cpu_before = _cpu_seconds()
    report = asyncio.run(run_export())
    export_cpu = _cpu_seconds() - cpu_before
    assert report.scans == n, (report.scans, n)
    figures["export_s"] = report.seconds
    figures["export_scans_per_s"] = report.scans / report.scan_seconds
    figures["export_twin_events_per_s"] = report.events / report.event_seconds
    print(f"export: {report.files} files in {report.seconds:.1f} s; {report.scans:,} scan events in "
          f"{report.scan_seconds:.1f} s = {figures['export_scans_per_s']:,.0f} events/s (target 1,000,000); "
          f"{report.events:,} twin events in {report.event_seconds:.1f} s = "
          f"{figures['export_twin_events_per_s']:,.0f} events/s")
    # CPU time of every thread of the process: what the export costs, whatever else the
    # shared machine runs (wall time counts the other jobs' share of the 2 cores too)
    figures["export_cpu_s"] = export_cpu
    figures["export_events_per_cpu_s"] = report.scans / export_cpu
    figures["load_average"] = os.getloadavg()[0]
    print(f"export CPU: {export_cpu:.1f} s over its threads = {report.scans / export_cpu:,.0f} scan events per CPU-second "
          f"(load average {figures['load_average']:.1f} on {os.cpu_count()} cores)")

    analytics = Analytics(args.dir / "export")
    since, until = datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    for name in REPORTS:
        for by in DIMENSIONS if name == "scans-per-day" else ("role",):
            started = time.perf_counter()
            rows = len(analytics.run(name, since=since, until=until, by=by).rows)
            took = time.perf_counter() - started
            key = f"{name}{'/' + by if name == 'scans-per-day' else ''}"
            figures[f"query_s:{key}"] = took
            print(f"query {key:28s} {took:6.2f} s  ({rows} rows; target ≤ 5 s)")
        started = time.perf_counter()
        analytics.run(name, since=since, until=until, gtin=GTINS[3])
        figures[f"query_s:{name}@gtin"] = time.perf_counter() - started

    detector = CloneDetector(load_rules(ROOT / "config" / "clone-rules.yaml"))
    flagged = 0
    busy = 0.0
    for batch in scan_stream(n, start_ms):
        started = time.perf_counter()
        flagged += len(detector.feed(batch))
        busy += time.perf_counter() - started
    figures["clone_scans_per_s"] = n / busy
    figures["clone_flagged"] = flagged
    print(f"clone detection: {n / busy:,.0f} scans/s judged ({flagged} units flagged; target 50,000)")
    (args.dir / "figures.json").write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
