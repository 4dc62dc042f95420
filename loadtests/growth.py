"""Cost as the work grows: does a worker stay fast and small as the installed base,
the batches and the product catalogue grow? (Issue 17, "Cost as the work grows".)

  (1) start-up against registered units (units with a record of their own, which feed the
      presence filter a worker builds at start): process start → /readyz answering,
      → first scan answered, → presence filter built; the worker's RSS after the build
      and at its peak; and scans answered *while* the filter builds, each checked
      (a registered unit must route as registered, not as its batch's state);
  (2) scan throughput on distinct serials with 10, 10k and 100k batches per GTIN (the
      verifier's range lookup), as a ratio to the 10-batch case;
  (3) scan throughput with 1k and 100k products in the rules, distinct serials of one
      product and GTIN-only scans spread over 1,000 products, as a ratio to 1k products.

SQLite store throughout (the measurements are of the worker, not of the store). Every
throughput is the best of alternating rounds, server on one core and wrk on the other,
so a busy machine slows every case of a round alike and the ratios stay fair.

    python loadtests/growth.py                               # 0/1M/3M units, 10/10k/100k batches, 1k/10k products
    python loadtests/growth.py --registered 0,1M,10M --only startup   # the full start-up run (~10 min)
    python loadtests/growth.py --only batches,products --products 1k,100k      # the full throughput run

Registered units are written by loadtests/bulkload.py (the store's own codec, bulk
transactions; what it bypasses is said there). Levels are cumulative: 3M adds 2M to 1M.
Results: stdout and loadtests/results/growth-*.json. Needs wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bulkload import load_registered  # noqa: E402  (loadtests/ is the script's own directory)
from throughput import GTIN, PYTHON, free_port, mint_serials, pinned, start, stop, wrk  # noqa: E402

SECTIONS = ("startup", "batches", "products")
PIP = "https://www.example.com/boilers/x100"  # where the example rules send a registered unit
REGISTER = "https://www.example.com/register/"  # … and a commissioned one (its batch's state)


def count_arg(text: str) -> int:
    """``0``, ``250000``, ``250k``, ``1M``, ``2.5M``."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"expected a count like 1000, 10k or 1M, got {text!r}")
    return int(float(m[1]) * {"": 1, "k": 1_000, "m": 1_000_000}[m[2].lower()])


def counts_arg(text: str) -> list[int]:
    return sorted({count_arg(part) for part in text.split(",") if part.strip()})


def sections_arg(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    for s in chosen:
        if s not in SECTIONS:
            raise argparse.ArgumentTypeError(f"unknown section {s!r}: choose from {', '.join(SECTIONS)}")
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", type=sections_arg, default=list(SECTIONS), metavar="SECTIONS",
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--registered", type=counts_arg, default=[0, 1_000_000, 3_000_000], metavar="COUNTS",
                        help="registered-unit levels for the start-up section (default 0,1M,3M; the full run: 0,1M,10M)")
    parser.add_argument("--batches", type=counts_arg, default=[10, 10_000, 100_000], metavar="COUNTS",
                        help="batches per GTIN (default 10,10k,100k; the first is the reference)")
    parser.add_argument("--counters", type=count_arg, default=1_000_000,
                        help="counters minted per GTIN, split evenly over the batches (default 1M)")
    parser.add_argument("--products", type=counts_arg, default=[1_000, 10_000], metavar="COUNTS",
                        help="products in the rules (default 1k,10k; the first is the reference; the full run: "
                             "1k,100k, whose server takes minutes to start: the rules compile at ~1.5 ms a product, twice)")
    parser.add_argument("--serials", type=count_arg, default=200_000, help="distinct serials scanned (default 200k)")
    parser.add_argument("--duration", type=int, default=8, help="seconds per throughput measurement (default 8)")
    parser.add_argument("--warmup", type=int, default=8, help="seconds of warm-up per server, at least; longer until every path was asked once (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, best reported (default 3)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-core", default="1")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (its path is printed)")
    return parser.parse_args(argv)


# -- processes -------------------------------------------------------------------------------


def serve_cmd(store_url: str, data_dir: Path, port: int, core: str | None, rules: Path | None = None) -> list[str]:
    cmd = [PYTHON, "-m", "serialink", "serve", "--port", str(port), "--data-dir", str(data_dir), "--store", store_url]
    return pinned(core, cmd + (["--rules", str(rules)] if rules else []))


def serve_env(data_dir: Path) -> dict[str, str]:
    return {"SERIALINK_KEY_DIR": str(data_dir / "keys"), "SERIALINK_LOG_LEVEL": "warning"}


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Granian's worker runs in a child of the serve process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB: resident now, and its peak."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def worker_pid(serve_pid: int) -> int:
    """The Granian worker: the descendant with the most resident memory (it holds the app)."""
    pids = [p for p in descendants(serve_pid) if Path(f"/proc/{p}/cmdline").exists()]
    if not pids:
        raise RuntimeError("no worker process found under the server")
    return max(pids, key=lambda p: memory_kib(p)[0])


def metric(base: str, name: str) -> float | None:
    text = httpx.get(base + "/metrics", timeout=5).text
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m[1]) if m else None


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{base} did not come up in {timeout} s")


# -- (1) start-up against registered units ----------------------------------------------------


def register_probes(store_url: str, serials: list[str]) -> None:
    """Give the probe units a record of their own through the public store API."""
    from twin.events import Actor, make_event
    from twin.store import open_store

    async def run() -> None:
        async with await open_store(store_url) as store:
            actor = Actor("manufacturer", "growth")
            for i, serial in enumerate(serials):
                for kind, data in (("commission", {}), ("sell", {"purchase_date": "2026-01-02"}),
                                   ("register", {"owner": f"probe-{i:08d}"})):
                    await store.append_event(GTIN, serial, make_event(kind, actor, "growth probe", **data))

    asyncio.run(run())


def startup_once(store_url: str, data_dir: Path, core: str | None, registered: list[str],
                 commissioned: list[str]) -> dict:
    """Start a worker, time it to ready / first scan / filter built, and check every scan
    answered meanwhile. Registered probes must go to the product page (their own record);
    commissioned ones to registration (their batch's state)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    proc = start(serve_cmd(store_url, data_dir, port, core), serve_env(data_dir), data_dir / f"serve-{port}.log")
    try:
        wait_ready(base, proc)
        t_ready = time.monotonic() - t0
        probes = [(s, PIP) for s in registered] + [(s, REGISTER) for s in commissioned]
        wrong: list[str] = []
        latencies: list[float] = []
        during = 0
        t_first = t_filter = None
        with httpx.Client(base_url=base, timeout=30) as client:
            i = 0
            while True:
                built = metric(base, "serialink_presence_builds_total") or 0
                if built >= 1 and t_first is not None:
                    t_filter = time.monotonic() - t0
                    break
                for serial, expected in probes[i % len(probes):] + probes[: i % len(probes)]:
                    s0 = time.monotonic()
                    r = client.get(f"/01/{GTIN}/21/{serial}")
                    latencies.append(time.monotonic() - s0)
                    if r.status_code != 307 or not r.headers.get("location", "").startswith(expected):
                        wrong.append(f"{serial}: {r.status_code} {r.headers.get('location')} (expected {expected})")
                    if t_first is None:
                        t_first = time.monotonic() - t0
                    during += built < 1
                i += 1
                if time.monotonic() - t0 > 600:
                    raise RuntimeError("the presence filter was not built within 10 minutes")
            # after the build: the same probes, now through the filter
            for serial, expected in probes:
                r = client.get(f"/01/{GTIN}/21/{serial}")
                if r.status_code != 307 or not r.headers.get("location", "").startswith(expected):
                    wrong.append(f"after build {serial}: {r.status_code} {r.headers.get('location')}")
            time.sleep(1.0)  # let the allocator settle after the build's temporaries are freed
            rss, peak = memory_kib(worker_pid(proc.pid))
    finally:
        stop(proc)
    return {"ready_s": round(t_ready, 2), "first_scan_s": round(t_first or 0, 2), "filter_built_s": round(t_filter or 0, 2),
            "rss_mib": round(rss / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
            "scans_during_build": during, "wrong_answers": wrong,
            "max_scan_ms": round(max(latencies) * 1000, 1) if latencies else None}


def startup_section(args: argparse.Namespace, work: Path) -> dict:
    data_dir = work / "startup"
    data_dir.mkdir()
    db = data_dir / "serialink.db"
    store_url = f"sqlite:///{db}"
    minted = mint_serials(store_url, data_dir, 1000)
    registered, commissioned = minted[:4], minted[4:8]
    register_probes(store_url, registered)
    results: dict[str, dict] = {}
    loaded = 0
    for level in args.registered:
        if level > loaded:
            t = time.perf_counter()
            load_registered(str(db), level - loaded, first=loaded)
            print(f"  loaded {level - loaded:,} registered units in {time.perf_counter() - t:.0f} s "
                  f"({db.stat().st_size / 2**20:,.0f} MiB store)", flush=True)
            loaded = level
        runs = [startup_once(store_url, data_dir, args.server_core, registered, commissioned) for _ in range(2)]
        best = min(runs, key=lambda r: r["filter_built_s"])
        best["all_runs_filter_built_s"] = [r["filter_built_s"] for r in runs]
        best["wrong_answers"] = [w for r in runs for w in r["wrong_answers"]]
        best["store_mib"] = round(db.stat().st_size / 2**20)
        results[f"{level:,}"] = best
        print(f"  {level:>12,} registered: {best}", flush=True)
    return results


# -- (2) batches per GTIN -------------------------------------------------------------------------


def allocate_more(store_url: str, count: int, size: int) -> None:
    """``count`` more batches of ``size`` counters through the store's public allocate_range."""
    from twin.events import Actor
    from twin.store import open_store

    async def run() -> None:
        async with await open_store(store_url + "?durability=relaxed") as store:
            actor = Actor("line", "growth")
            for i in range(count):
                await store.allocate_range(GTIN, "default", size, f"growth-{i}", "d" * 64, actor=actor)

    asyncio.run(run())


def serials_of(data_dir: Path, counters: list[int]) -> list[str]:
    """The serials of these counters under the GTIN's key and the default profile (what the
    verifier inverts on every scan)."""
    from serializer.keys import KeyStore
    from serializer.profiles import load_profiles

    record = KeyStore(data_dir / "keys").record(GTIN)
    assert record is not None
    permutation = load_profiles()["default"].permutation(record.key, GTIN)
    return [permutation.encode(c) for c in counters]


def batches_setup(args: argparse.Namespace, work: Path, batches: int) -> tuple[str, Path, Path]:
    data_dir = work / f"batches-{batches}"
    data_dir.mkdir()
    store_url = f"sqlite:///{data_dir / 'serialink.db'}"
    size = args.counters // batches
    mint_serials(store_url, data_dir, size)  # the first batch through `serialink mint` (binds the key)
    allocate_more(store_url, batches - 1, size)
    rng = random.Random(17)
    counters = rng.sample(range(size * batches), min(args.serials, size * batches))
    paths = data_dir / "distinct.txt"
    paths.write_text("".join(f"/01/{GTIN}/21/{s}\n" for s in serials_of(data_dir, counters)))
    return store_url, data_dir, paths


# -- (3) products in the rules --------------------------------------------------------------------


def with_check_digit(body: str) -> str:
    total = sum(int(d) * (3 if k % 2 == 0 else 1) for k, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def company_prefix(i: int) -> str:
    """Product ``i``'s company prefix when it is matched by prefix (every tenth): 7 to 11 digits."""
    length = 7 + (i // 10) % 5
    return "6" + f"{i:0{length - 1}d}"


def product_gtin(i: int) -> str:
    """A GTIN of product ``i``: its own (``04…``), or one under its company prefix."""
    if i % 10 == 0:
        prefix = company_prefix(i)
        return with_check_digit("0" + prefix + "7" * (12 - len(prefix)))
    return with_check_digit(f"04{i:011d}")


def rules_text(products: int) -> str:
    """The example rules (config/rules.yaml: its product keeps its links and routes) plus
    ``products - 1`` more, each with the example's link and route shapes and its own URLs;
    one in ten is matched by company prefix (lengths 7 to 11) rather than GTIN."""
    base = (HERE.parent / "config" / "rules.yaml").read_text()
    head, _, example = base.partition("\nproducts:\n")
    lines = [head, "\nproducts:\n", example.rstrip("\n") + "\n"]
    for i in range(1, products):
        gtin = product_gtin(i)
        key = f'company_prefix: "{company_prefix(i)}"' if i % 10 == 0 else f'gtin: "{gtin}"'
        lines.append(
            f"  - {key}\n"
            f"    name: Product {i}\n"
            f"    default: gs1:pip\n"
            f"    links:\n"
            f"      - {{type: gs1:pip, href: \"https://www.example.com/p/{i}\", title: Product {i}, lang: [en]}}\n"
            f"      - {{type: gs1:registerProduct, href: \"https://www.example.com/register/{{gtin}}/{{serial}}\", "
            f"title: Register product {i}}}\n"
            f"      - {{type: gs1:recallStatus, href: \"https://www.example.com/recalls/{{gtin}}\", title: Recall {i}}}\n"
            f"      - {{type: gs1:serviceInfo, href: \"https://service.example.com/{{gtin}}/{{serial}}\", "
            f"title: Service {i}, roles: [technician]}}\n"
            f"    routes:\n"
            f"      - {{name: recall wins, when: {{state: recalled, link_type: any}}, link: gs1:recallStatus}}\n"
            f"      - {{name: technicians, when: {{role: technician}}, link: gs1:serviceInfo}}\n"
            f"      - {{name: unregistered, when: {{role: [consumer, owner], state: [commissioned, sold]}}, "
            f"link: gs1:registerProduct}}\n")
    return "".join(lines)


# -- measuring -----------------------------------------------------------------------------------


def measure(targets: dict[str, tuple[str, Path]], args: argparse.Namespace) -> dict[str, dict]:
    for base, paths in targets.values():
        # warm until every path has been asked once: each batch's caches (its record, line
        # view, facts) are built by its first scan, and on a busy machine --warmup seconds
        # may not reach them all, which measured cold loads, not the steady state. wrk's
        # script starts at the same path every run, so the top-up is one longer run.
        warm = wrk(base, paths, args.warmup, args.connections, args.load_core)
        lines = paths.read_text().count("\n")
        if warm["requests"] < lines:
            wrk(base, paths, math.ceil(lines / max(warm["rps"], 1.0) * 1.2), args.connections, args.load_core)
    rounds: dict[str, list[dict]] = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (base, paths) in targets.items():
            rounds[name].append(wrk(base, paths, args.duration, args.connections, args.load_core))
    out = {}
    for name, runs in rounds.items():
        best = max(runs, key=lambda r: r["rps"])
        out[name] = {**best, "rps": round(best["rps"]), "all_rounds_rps": [round(r["rps"]) for r in runs]}
    return out


def serve(store_url: str, data_dir: Path, core: str | None, rules: Path | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = start(serve_cmd(store_url, data_dir, port, core, rules), serve_env(data_dir), data_dir / f"serve-{port}.log")
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, proc, timeout=600)
    return proc, base


def batches_section(args: argparse.Namespace, work: Path, procs: list[subprocess.Popen]) -> dict:
    targets = {}
    for n in args.batches:
        t = time.perf_counter()
        store_url, data_dir, paths = batches_setup(args, work, n)
        print(f"  {n:,} batches of {args.counters // n:,} set up in {time.perf_counter() - t:.0f} s", flush=True)
        proc, base = serve(store_url, data_dir, args.server_core)
        procs.append(proc)
        targets[f"{n:,} batches per GTIN"] = (base, paths)
    return measure(targets, args)


def products_section(args: argparse.Namespace, work: Path, procs: list[subprocess.Popen]) -> tuple[dict, dict]:
    data_dir = work / "products"
    data_dir.mkdir()
    store_url = f"sqlite:///{data_dir / 'serialink.db'}"
    serials = mint_serials(store_url, data_dir, args.serials)
    random.Random(7).shuffle(serials)
    distinct = data_dir / "distinct.txt"
    distinct.write_text("".join(f"/01/{GTIN}/21/{s}\n" for s in serials))
    spread = data_dir / "gtins.txt"  # the same 1,000 products in every case: GTIN-only scans
    spread.write_text("".join(f"/01/{product_gtin(i)}\n" for i in range(1, 1001)) * 10)
    targets, compile_s = {}, {}
    for n in args.products:
        rules = data_dir / f"rules-{n}.yaml"
        rules.write_text(rules_text(n))
        copy = work / f"products-{n}"
        shutil.copytree(data_dir, copy)
        t = time.monotonic()
        proc, base = serve(f"sqlite:///{copy / 'serialink.db'}", copy, args.server_core, rules)
        compile_s[f"{n:,} products: serve start to ready"] = round(time.monotonic() - t, 2)
        procs.append(proc)
        targets[f"{n:,} products, distinct serials"] = (base, distinct)
        targets[f"{n:,} products, GTIN only over 1,000 products"] = (base, spread)
    print(f"  seconds to ready (the rules compile twice: serve checks them, then the worker loads them): "
          f"{compile_s}", flush=True)
    return measure(targets, args), compile_s


# -- report --------------------------------------------------------------------------------------


def ratio_table(title: str, results: dict[str, dict], groups: list[list[str]]) -> None:
    print(f"\n{title:<58}{'req/s':>10}{'ratio':>8}{'p99 ms':>9}{'non-307':>9}  rounds")
    for group in groups:
        ref = results[group[0]]["rps"]
        for name in group:
            r = results[name]
            print(f"{name:<58}{r['rps']:>10,}{r['rps'] / ref:>8.1%}{r['p99_us'] / 1000:>9.2f}"
                  f"{r['unexpected'] + r['errors']:>9}  {r['all_rounds_rps']}")


def startup_table(results: dict[str, dict]) -> None:
    print(f"\n{'registered units':>16}{'ready s':>9}{'1st scan s':>11}{'filter s':>10}{'RSS MiB':>9}{'peak MiB':>10}"
          f"{'scans in build':>16}{'wrong':>7}{'max ms':>8}")
    for level, r in results.items():
        print(f"{level:>16}{r['ready_s']:>9.2f}{r['first_scan_s']:>11.2f}{r['filter_built_s']:>10.2f}{r['rss_mib']:>9.0f}"
              f"{r['peak_rss_mib']:>10.0f}{r['scans_during_build']:>16,}{len(r['wrong_answers']):>7}"
              f"{r['max_scan_ms'] or 0:>8.0f}")
    levels = [(int(k.replace(",", "")), r) for k, r in results.items()]
    zero = next((r for n, r in levels if n == 0), None)
    if zero is not None:
        for n, r in levels:
            if n:
                per_m = (r["filter_built_s"] - zero["filter_built_s"]) / (n / 1e6)
                mem_m = (r["rss_mib"] - zero["rss_mib"]) / (n / 1e6)
                print(f"{n:>16,}: {per_m:.2f} s and {mem_m:.1f} MiB RSS per million registered units over the empty store")


def report(results: dict, args: argparse.Namespace, section: str) -> None:
    """Print a finished section's table and save everything so far (a later failure loses nothing)."""
    if section == "startup":
        startup_table(results["startup"])
    elif section == "batches":
        ratio_table(f"distinct serials (best of {args.rounds} alternating rounds)", results["batches"],
                    [list(results["batches"])])
    elif section == "products":
        names = list(results["products"])
        ratio_table(f"products in the rules (best of {args.rounds})", results["products"], [names[0::2], names[1::2]])
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"growth-{results['started']}.json").write_text(json.dumps(results, indent=2))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk") and set(args.only) - {"startup"}:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="serialink-growth-"))
    procs: list[subprocess.Popen] = []
    results: dict = {"started": time.strftime("%Y%m%d-%H%M%S"),
                     "settings": {k: v for k, v in vars(args).items() if k != "keep"}}
    t_all = time.monotonic()
    try:
        if "startup" in args.only:
            print("(1) start-up against registered units", flush=True)
            results["startup"] = startup_section(args, work)
            report(results, args, "startup")
        if "batches" in args.only:
            print("(2) batches per GTIN", flush=True)
            results["batches"] = batches_section(args, work, procs)
            for p in procs:
                stop(p)
            procs.clear()
            report(results, args, "batches")
        if "products" in args.only:
            print("(3) products in the rules", flush=True)
            results["products"], results["rules_compile"] = products_section(args, work, procs)
            report(results, args, "products")
    finally:
        for p in reversed(procs):
            stop(p)
        if args.keep:
            print(f"working directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ntotal {time.monotonic() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
