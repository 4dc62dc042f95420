"""Run the Locust day (loadtests/locustfile.py) headless against a resolver it starts, bounded in time.

Starts redis-server (AOF always) and `serialink serve` on loopback, mints real serials,
runs Locust for ``--time`` with CSV stats under loadtests/results/, prints the totals and
stops everything.

    python loadtests/run_day.py --users 100 --time 60s           # a day's mix
    python loadtests/run_day.py --users 50 --spike                # 1 min normal, 1 min 10x, 1 min normal

Needs the ``load`` extras (``pip install -e '.[load]'``) and redis-server.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import free_port, mint_serials, start, stop, wait_http  # noqa: E402

SECRET = "load-day-" + "s" * 40


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--time", default="60s", help="Locust --run-time (ignored with --spike: 3 minutes)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--serials", type=int, default=100_000)
    parser.add_argument("--spike", action="store_true", help="launch spike: 10x users for one minute")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serialink-day-"))
    rport, port = free_port(), free_port()
    redis = start(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--dir", str(work),
                   "--appendonly", "yes", "--appendfsync", "always", "--save", ""])
    serve = None
    try:
        time.sleep(0.5)
        store = f"redis://127.0.0.1:{rport}/0"
        serials = mint_serials(store, work, args.serials)
        (work / "serials.txt").write_text("\n".join(serials))
        env = {"SERIALINK_TOKEN_SECRET": SECRET, "SERIALINK_KEY_DIR": str(work / "keys"),
               "SERIALINK_LOG_LEVEL": "warning"}
        serve = start([sys.executable, "-m", "serialink", "serve", "--port", str(port), "--data-dir", str(work),
                       "--store", store, "--workers", str(args.workers)], env, work / "serve.log")
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz")
        out = HERE / "results"
        out.mkdir(exist_ok=True)
        prefix = out / f"day{'-spike' if args.spike else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
        cmd = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless", "--host", base,
               "--csv", str(prefix), "--only-summary"]
        cmd += [] if args.spike else ["-u", str(args.users), "-r", str(max(1, args.users // 5)), "-t", args.time]
        lenv = {**os.environ, "SERIALINK_TOKEN_SECRET": SECRET, "SERIALINK_LOAD_SERIALS": str(work / "serials.txt"),
                "SERIALINK_LOAD_USERS": str(args.users), "PYTHONPATH": str(HERE.parent)}
        if args.spike:
            lenv["SERIALINK_LOAD_SPIKE"] = "1"
        subprocess.run(cmd, env=lenv, timeout=600)
        with open(f"{prefix}_stats.csv") as fh:
            rows = list(csv.DictReader(fh))
        print(f"\n{'name':<24}{'requests':>10}{'failures':>10}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}")
        for row in rows:
            print(f"{row['Name']:<24}{row['Request Count']:>10}{row['Failure Count']:>10}"
                  f"{float(row['Requests/s']):>9.0f}{row['50%']:>8}{row['99%']:>8}")
        print(f"\nCSV: {prefix}_stats.csv, {prefix}_stats_history.csv, {prefix}_failures.csv")
    finally:
        if serve is not None:
            stop(serve)
        stop(redis)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
