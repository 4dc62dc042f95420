"""/metrics across Granian workers: each worker's numbers, summed, whichever worker is scraped.

Every Granian worker is its own process with its own counters, and a scrape reaches one
of them at random: alone, /metrics would show a different worker's numbers each time.
prometheus_client's multiprocess mode solves that with an mmap write per increment; the
scan path cannot afford that, so each worker instead writes a snapshot of its plain
counters (``Metrics.snapshot()``) to ``<dir>/<pid>.json`` once a second, and the worker
that is scraped writes its own fresh one, reads everybody's and sums them. Counters of a
worker that died stay in the sum (counters never go back); its gauges do not.
``serialink serve`` sets ``SERIALINK_METRICS_DIR`` to a fresh directory per run.

>>> a = {"pid": 1, "scans": [["gs1:pip", "consumer", "sold", 307, 2]], "counts": {"store_errors": 1},
...      "gauges": {"scan_buffer_depth": 3, "store_up": 1}, "rules_version": "v1", "rules_reloads": {"loaded": 1},
...      "counters": [], "sizes": {}, "latency": {"counts": [1, 1], "total": 0.1, "count": 2},
...      "flush_latency": {"counts": [0, 0], "total": 0.0, "count": 0}}
>>> b = {**a, "pid": 2, "gauges": {"scan_buffer_depth": 4, "store_up": 0}}
>>> m = merge([a, b], alive={1, 2})
>>> m["scans"], m["counts"]["store_errors"], m["gauges"], m["latency"]["count"]
([['gs1:pip', 'consumer', 'sold', 307, 4]], 2, {'scan_buffer_depth': 7, 'store_up': 0, 'rules_stale': 0, 'workers': 2}, 4)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

INTERVAL = 1.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _add_lists(a: list[float], b: list[float]) -> list[float]:
    if len(a) < len(b):
        a = a + [0] * (len(b) - len(a))
    return [x + (b[i] if i < len(b) else 0) for i, x in enumerate(a)]


def merge(snapshots: Iterable[dict[str, Any]], alive: set[int]) -> dict[str, Any]:
    """Sum counters and histograms of every snapshot; gauges of live workers only
    (buffer depth summed, store_up the minimum, rules_stale the maximum), plus how many workers are live."""
    scans: dict[tuple[object, ...], float] = defaultdict(int)
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(int)
    counts: dict[str, float] = defaultdict(int)
    reloads: dict[str, float] = defaultdict(int)
    sizes: dict[str, dict[str, Any]] = {}
    hist: dict[str, dict[str, Any]] = {k: {"counts": [], "total": 0.0, "count": 0}
                                       for k in ("latency", "flush_latency")}
    depth, up, stale, workers, versions = 0, 1, 0, 0, set()
    for snap in snapshots:
        for *key, n in snap["scans"]:
            scans[tuple(key)] += n
        for name, labels, n in snap["counters"]:
            counters[(name, tuple(tuple(kv) for kv in labels))] += n
        for k, n in snap["counts"].items():
            counts[k] += n
        for k, n in snap["rules_reloads"].items():
            reloads[k] += n
        for k in hist:
            h = snap[k]
            hist[k] = {"counts": _add_lists(hist[k]["counts"], h["counts"]), "total": hist[k]["total"] + h["total"],
                       "count": hist[k]["count"] + h["count"]}
        for op, st in snap["sizes"].items():
            acc = sizes.setdefault(op, {"round_trips": 0, "keys": 0, "failures": 0, "seconds": 0.0, "sizes": []})
            for k in ("round_trips", "keys", "failures", "seconds"):
                acc[k] += st[k]
            acc["sizes"] = _add_lists(acc["sizes"], st["sizes"])
        if snap["pid"] in alive:
            workers += 1
            depth += snap["gauges"].get("scan_buffer_depth", 0)
            up = min(up, snap["gauges"].get("store_up", 1))
            stale = max(stale, snap["gauges"].get("rules_stale", 0))
            if snap["rules_version"]:
                versions.add(snap["rules_version"])
    return {
        "pid": 0,
        "scans": [[*k, n] for k, n in scans.items()],
        "counters": [[name, [list(kv) for kv in labels], n] for (name, labels), n in counters.items()],
        "counts": dict(counts), "rules_reloads": dict(reloads), "sizes": sizes, **hist,
        "gauges": {"scan_buffer_depth": depth, "store_up": up, "rules_stale": stale, "workers": workers},
        "rules_version": ",".join(sorted(versions)),
    }


class SharedMetrics:
    """The snapshot directory of one `serialink serve` run."""

    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def write(self, snap: dict[str, Any]) -> None:
        path = self.dir / f"{snap['pid']}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(snap))
        os.replace(tmp, path)

    def read(self) -> list[dict[str, Any]]:
        out = []
        for path in self.dir.glob("*.json"):
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                out.append(orjson.loads(path.read_bytes()))
        return out

    def merged(self, own: dict[str, Any]) -> dict[str, Any]:
        self.write(own)
        snaps = self.read()
        return merge(snaps, {s["pid"] for s in snaps if _alive(s["pid"])})

    async def run(self, snapshot: Callable[[], dict[str, Any]], interval: float = INTERVAL) -> None:
        """Write this worker's snapshot every ``interval`` seconds (a background task)."""
        while True:
            with contextlib.suppress(OSError):
                self.write(snapshot())
            await asyncio.sleep(interval)
