"""Resolver throughput on loopback: Serialink against its ceiling, in one run.

Server pinned to one core, wrk pinned to the other (Redis, when used, shares wrk's core):

  (a) ceiling: a bare Granian + Starlette app answering a constant 307;
  (b) Serialink resolving distinct serials (every request another unit, minted in a real
      batch so role and state routing run) on SQLite and on Redis;
  (c) Serialink on GTIN-only URIs;
  plus, with --scaling, Serialink on distinct serials with 1 and 2 workers unpinned.

Targets (issue 4): (b) ≥ 60 % of (a) on both stores, (c) ≥ 75 % of (a), p99 ≤ 10 ms at
64 connections, zero responses other than 307.

    python loadtests/throughput.py                 # 3 alternating rounds of 10 s each, best round reported
    python loadtests/throughput.py --duration 30 --scaling
    python loadtests/throughput.py --against main   # also another revision's server, same data, same run
    python loadtests/throughput.py --cluster        # also a Redis Cluster store beside the single Redis

Needs wrk and redis-server (Debian packages). Results: stdout and loadtests/results/*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GTIN = "09506000134352"
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def pinned(core: str | None, cmd: list[str]) -> list[str]:
    return (["taskset", "-c", core] + cmd) if core is not None and shutil.which("taskset") else cmd


def start(cmd: list[str], env: dict | None = None, log: Path | None = None, cwd: Path | None = None) -> subprocess.Popen:
    out = log.open("w") if log else subprocess.DEVNULL
    return subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=cwd)


def checkout(rev: str, into: Path) -> Path:
    """A built source tree of another revision (a detached git worktree), to serve beside this one."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(into), rev], check=True,
                   capture_output=True)
    subprocess.run([PYTHON, "setup.py", "-q", "build_ext", "--inplace"], cwd=into, check=True, capture_output=True)
    return into


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wrk(base: str, paths: Path, duration: int, connections: int, core: str | None, expected: int = 307) -> dict:
    """One wrk run over the paths in ``paths``; counts answers other than ``expected``."""
    cmd = pinned(core, ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
                        "-s", str(HERE / "distinct.lua"), base, "--", str(paths), str(expected)])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    fields = dict(kv.split("=") for kv in line.split()[1:])
    result = {k: int(v) for k, v in fields.items()}
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def mint_serials(store_url: str, data_dir: Path, count: int, tree: Path | None = None) -> list[str]:
    """Serials of a real batch, so the resolver routes on batch state (commissioned).
    ``tree``: minted by that source tree (--against), so its server can open the store
    (a newer schema is refused by older code); the same keys give the same serials."""
    out = data_dir / "mint"
    cmd = [PYTHON, "-m", "serialink", "mint", "--gtin", GTIN, "--count", str(count), "--profile", "default",
           "--format", "jsonl", "--out", str(out), "--request-id", f"load-{count}", "--store", store_url]
    env = {"SERIALINK_DATA_DIR": str(data_dir), "SERIALINK_KEY_DIR": str(data_dir / "keys")}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, cwd=tree)
    if proc.returncode != 0:
        raise RuntimeError(f"minting failed: {proc.stderr[-2000:]}")
    serials = []
    for path in out.glob("*.jsonl"):
        with path.open() as fh:
            for line in fh:
                serials.append(json.loads(line)["serial"])
    if not serials:
        raise RuntimeError("minting produced no serials")
    return serials


def serialink(store_url: str, data_dir: Path, core: str | None, workers: int = 1,
              tree: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``serialink serve`` of this checkout, or of the source tree ``tree`` (see --against)."""
    port = free_port()
    cmd = pinned(core, [PYTHON, "-m", "serialink", "serve", "--port", str(port), "--data-dir", str(data_dir),
                        "--store", store_url, "--workers", str(workers)])
    env = {"SERIALINK_KEY_DIR": str(data_dir / "keys"), "SERIALINK_LOG_LEVEL": "warning"}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    proc = start(cmd, env, data_dir / f"serve-{port}.log", cwd=tree)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz")
    return proc, base


def register_share(store_url: str, serials: list[str], share: float) -> int:
    """Give a share of the minted units a record of their own (sold and registered), so
    those scans read the store instead of being answered from the batch."""
    import asyncio

    from twin.events import Actor, make_event
    from twin.store import open_store

    chosen = serials[: int(len(serials) * share)]

    async def run() -> None:
        async with await open_store(store_url) as store:
            actor = Actor("manufacturer", "loadtest")
            for i, serial in enumerate(chosen):
                for kind, data in (("commission", {}), ("sell", {"purchase_date": "2026-01-02"}),
                                   ("register", {"owner": f"owner-{i:08d}"})):
                    await store.append_event(GTIN, serial, make_event(kind, actor, "load test", **data))

    asyncio.run(run())
    return len(chosen)


def start_cluster(directory: Path, core: str | None, procs: list[subprocess.Popen], masters: int = 3) -> str:
    """A Redis Cluster of ``masters`` nodes (AOF, fsync always, no replicas) on loopback,
    pinned like the single Redis; its store URL once every slot is served."""
    ports: list[int] = []
    while len(ports) < masters:  # the cluster bus listens on port + 10000: stay below 55536
        port = random.randrange(20000, 30000)
        with socket.socket() as probe:
            if port not in ports and probe.connect_ex(("127.0.0.1", port)) != 0 \
                    and probe.connect_ex(("127.0.0.1", port + 10000)) != 0:
                ports.append(port)
    for port in ports:
        node = directory / str(port)
        node.mkdir(parents=True)
        procs.append(start(pinned(core, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node),
                                         "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                         "--appendonly", "yes", "--appendfsync", "always", "--save", ""])))
    for port in ports:
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True).stdout.strip() \
                != "PONG" and time.monotonic() < deadline:
            time.sleep(0.1)
    made = subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                           "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True, timeout=60)
    if made.returncode != 0:
        raise RuntimeError(f"redis-cli --cluster create failed: {made.stdout[-1000:]} {made.stderr[-1000:]}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = [subprocess.run(["redis-cli", "-p", str(p), "CLUSTER", "INFO"], capture_output=True, text=True).stdout
                  for p in ports]
        if all("cluster_state:ok" in st for st in states):
            return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
        time.sleep(0.2)
    raise RuntimeError("the Redis Cluster did not come up")


def register_in_tree(tree: Path, store_url: str, serials: list[str], share: float, data_dir: Path) -> None:
    """register_share run by another source tree's code (its store, its schema)."""
    listed = data_dir / "registered.json"
    listed.write_text(json.dumps(serials))
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); from throughput import register_share; "
            f"register_share({store_url!r}, json.load(open({str(listed)!r})), {share!r})")
    proc = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, cwd=tree,
                          env={**os.environ, "PYTHONPATH": str(tree)})
    if proc.returncode != 0:
        raise RuntimeError(f"registering units with {tree} failed: {proc.stderr[-2000:]}")


def paths_file(data_dir: Path, serials: list[str]) -> Path:
    distinct = data_dir / "distinct.txt"
    rng = random.Random(7)
    rng.shuffle(serials)
    distinct.write_text("".join(f"/01/{GTIN}/21/{s}\n" for s in serials))
    return distinct


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is reported")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--serials", type=int, default=200_000)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-core", default="1")
    parser.add_argument("--scaling", action="store_true", help="also measure 1 vs 2 workers (unpinned)")
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--cluster", action="store_true",
                        help="also a 3-master Redis Cluster store, as a ratio to the single Redis (needs Redis)")
    parser.add_argument("--against", metavar="REV", default=None,
                        help="also serve git revision REV (built in a temporary worktree) on a copy of the same "
                             "SQLite data, measured in the same alternating rounds")
    parser.add_argument("--registered", type=float, default=0.0, metavar="SHARE",
                        help="share of scanned units that have their own record (default 0: all answered from the batch)")
    args = parser.parse_args()
    for tool in ("wrk",) + (() if args.skip_redis else ("redis-server",)):
        if not shutil.which(tool):
            print(f"{tool} is needed: apt-get install {'wrk' if tool == 'wrk' else 'redis-server'}", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="serialink-load-"))
    procs: list[subprocess.Popen] = []
    targets: dict[str, tuple[str, Path]] = {}
    try:
        # (a) the ceiling
        port = free_port()
        procs.append(start(pinned(args.server_core, [PYTHON, "-m", "granian", "--interface", "asgi", "--port",
                                                     str(port), "--log-level", "warning", "--working-dir", str(HERE),
                                                     "ceiling_app:app"])))
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/x")
        ceiling_paths = work / "ceiling.txt"
        ceiling_paths.write_text(f"/01/{GTIN}/21/ABC\n" * 10)
        targets[CEILING] = (base, ceiling_paths)
        # (b), (c) on SQLite: serials of a real minted batch
        sqlite_dir = work / "sqlite"
        sqlite_dir.mkdir()
        sqlite_url = f"sqlite:///{sqlite_dir / 'serialink.db'}"
        serials = mint_serials(sqlite_url, sqlite_dir, args.serials)
        minted = list(serials)  # in minting order: the units register_share gives a record
        if args.registered:
            register_share(sqlite_url, serials, args.registered)
        distinct = paths_file(sqlite_dir, serials)
        proc, base = serialink(sqlite_url, sqlite_dir, args.server_core)
        procs.append(proc)
        gtin_only = work / "gtin.txt"
        gtin_only.write_text(f"/01/{GTIN}\n" * 100)
        label = f", {args.registered:.0%} registered" if args.registered else ""
        targets[f"distinct serials{label}, SQLite"] = (base, distinct)
        targets["GTIN only, SQLite"] = (base, gtin_only)
        if args.against:
            tree = checkout(args.against, work / "against")
            other_dir = work / "sqlite-against"
            other_dir.mkdir()
            shutil.copytree(sqlite_dir / "keys", other_dir / "keys")
            other_url = f"sqlite:///{other_dir / 'serialink.db'}"
            if sorted(mint_serials(other_url, other_dir, args.serials, tree)) != sorted(serials):
                raise RuntimeError(f"{args.against} minted other serials from the same keys")
            if args.registered:
                register_in_tree(tree, other_url, minted, args.registered, other_dir)
            proc, other = serialink(f"sqlite:///{other_dir / 'serialink.db'}", other_dir, args.server_core, tree=tree)
            procs.append(proc)
            targets[f"distinct serials{label}, SQLite, at {args.against}"] = (other, distinct)
            targets[f"GTIN only, SQLite, at {args.against}"] = (other, gtin_only)
        # (b) on Redis (AOF, fsync always), Redis itself on the load core
        if not args.skip_redis:
            redis_dir = work / "redis"
            redis_dir.mkdir()
            rport = free_port()
            procs.append(start(pinned(args.load_core, ["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                                       "--dir", str(redis_dir), "--appendonly", "yes",
                                                       "--appendfsync", "always", "--save", ""])))
            time.sleep(0.5)
            redis_url = f"redis://127.0.0.1:{rport}/0"
            serials = mint_serials(redis_url, redis_dir, args.serials)
            if args.registered:
                register_share(redis_url, serials, args.registered)
            distinct_redis = paths_file(redis_dir, serials)
            proc, base = serialink(redis_url, redis_dir, args.server_core)
            procs.append(proc)
            targets[f"distinct serials{label}, Redis"] = (base, distinct_redis)
            if args.cluster:
                cluster_url = start_cluster(work / "cluster", args.load_core, procs)
                serials = mint_serials(cluster_url, work / "cluster", args.serials)
                if args.registered:
                    register_share(cluster_url, serials, args.registered)
                distinct_cluster = paths_file(work / "cluster", serials)
                proc, base = serialink(cluster_url, work / "cluster", args.server_core)
                procs.append(proc)
                targets[f"distinct serials{label}, Redis Cluster (3 masters)"] = (base, distinct_cluster)
        for base, paths in targets.values():
            wrk(base, paths, 2, args.connections, args.load_core)  # warm up
        rounds: dict[str, list[dict]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (base, paths) in targets.items():
                rounds[name].append(wrk(base, paths, args.duration, args.connections, args.load_core))
        results = {name: max(runs, key=lambda r: r["rps"]) for name, runs in rounds.items()}
        for name, runs in rounds.items():
            results[name]["all_rounds_rps"] = [round(r["rps"]) for r in runs]
        if args.scaling and not args.skip_redis:
            for p in procs[-1:]:
                stop(p)
            for workers in (1, 2):
                proc, base = serialink(redis_url, redis_dir, None, workers)
                try:
                    wrk(base, distinct_redis, 2, args.connections, None)
                    results[f"scaling: distinct serials, Redis, {workers} worker(s), unpinned"] = max(
                        (wrk(base, distinct_redis, args.duration, args.connections, None) for _ in range(args.rounds)),
                        key=lambda r: r["rps"])
                finally:
                    stop(proc)
    finally:
        for p in reversed(procs):
            stop(p)
        if args.against:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(work / "against")],
                           capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    ceiling_rps = results[CEILING]["rps"]
    print(f"\n{'measurement (best of ' + str(args.rounds) + ' alternating rounds)':<62}{'req/s':>10}{'of ceiling':>12}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'non-307':>9}")
    for name, r in results.items():
        print(f"{name:<62}{r['rps']:>10,.0f}{r['rps'] / ceiling_rps:>12.0%}{r['p50_us'] / 1000:>9.2f}"
              f"{r['p99_us'] / 1000:>9.2f}{r['unexpected'] + r['errors']:>9}")
    cluster = next((n for n in results if n.endswith("Redis Cluster (3 masters)")), None)
    if cluster:
        single = cluster.removesuffix(" Cluster (3 masters)")
        print(f"{cluster}: {results[cluster]['rps'] / results[single]['rps']:.1%} of single Redis")
    if args.against:
        for name in [n for n in results if n.endswith(f", at {args.against}")]:
            ours = name.removesuffix(f", at {args.against}")
            print(f"{ours}: this tree {results[ours]['rps'] / results[name]['rps']:.1%} of {args.against}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"throughput-{stamp}.json").write_text(json.dumps(results, indent=2))
    return 0


CEILING = "ceiling: Granian + Starlette constant 307"


if __name__ == "__main__":
    raise SystemExit(main())
