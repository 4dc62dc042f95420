"""Prometheus metrics for one worker, cheap enough for the scan path.

Counting a scan is a dict increment and a bisect; the prometheus_client collector turns
the plain counters into metric families only when /metrics is scraped.

>>> m = Metrics()
>>> m.observe_scan(307, 0.0004, "gs1:pip", "consumer", "sold")
>>> b"serialink_scans_total" in m.render()[0]
True
"""

from __future__ import annotations

import bisect
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Histogram:
    __slots__ = ("counts", "total", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1

    def state(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "total": self.total, "count": self.count}

    @staticmethod
    def family_of(state: dict[str, Any], name: str, doc: str) -> HistogramMetricFamily:
        h = _Histogram()
        h.counts, h.total, h.count = list(state["counts"]), state["total"], state["count"]
        return h.family(name, doc)

    def family(self, name: str, doc: str, labels: dict[str, str] | None = None) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(name, doc, labels=list(labels or ()))
        cumulative, buckets = 0, []
        for bound, n in zip(BUCKETS + (float("inf"),), self.counts):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        fam.add_metric(list((labels or {}).values()), buckets, self.total)
        return fam


class Metrics:
    def __init__(self) -> None:
        self.scans: dict[tuple[str, str, str, int], int] = defaultdict(int)
        self.latency = _Histogram()
        self.flush_latency = _Histogram()
        self.shared: Any = None  # resolver.ops.metrics_shared.SharedMetrics when several workers serve
        self.rules_version = ""
        self.rules_reloads: dict[str, int] = defaultdict(int)
        self.scan_flush_failures = 0
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], int] = defaultdict(int)  # other modules' named counters
        self._services: Any = None
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)
        self.started = time.time()

    def bind(self, services: Any) -> None:
        self._services = services

    # -- recording (hot path) ---------------------------------------------------------------

    def observe_scan(self, status: int, seconds: float, link_type: str | None = None, role: str = "consumer",
                     state: str | None = None) -> None:
        self.scans[(link_type or "none", role, state or "none", status)] += 1
        self.latency.observe(seconds)

    def rules_reloaded(self, outcome: str, version: str) -> None:
        self.rules_reloads[outcome] += 1
        if outcome in ("loaded", "last_good"):
            self.rules_version = version

    def scan_flush_failed(self, exc: BaseException, pending: int) -> None:
        self.scan_flush_failures += 1

    def inc(self, name: str, by: int = 1, **labels: str) -> None:
        self.counters[(name, tuple(sorted(labels.items())))] += by

    def scan_flushed(self, count: int, seconds: float) -> None:
        self.flush_latency.observe(seconds)

    # -- exposition ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every number this worker would expose, as plain JSON-able data (see metrics_shared:
        with several Granian workers each writes its snapshot and /metrics sums them)."""
        snap: dict[str, Any] = {
            "pid": os.getpid(),
            "scans": [[*key, n] for key, n in list(self.scans.items())],
            "latency": self.latency.state(),
            "flush_latency": self.flush_latency.state(),
            "rules_version": self.rules_version,
            "rules_reloads": dict(self.rules_reloads),
            "counters": [[name, [list(kv) for kv in labels], n] for (name, labels), n in list(self.counters.items())],
            "counts": {}, "gauges": {}, "sizes": {},
        }
        services = self._services
        if services is None:
            return snap
        counts, gauges = snap["counts"], snap["gauges"]
        if services.rules is not None:
            gauges["rules_stale"] = 0 if services.rules.stale is None else 1
        if services.scans is not None:
            stats = services.scans.stats()
            gauges["scan_buffer_depth"] = stats.buffered
            counts.update(scan_events_flushed=stats.flushed, scan_events_dropped=stats.dropped,
                          scan_flush_failures=stats.failed_flushes)
        if services.lookup is not None:
            st = services.lookup.stats
            counts.update(unit_cache_hits=st.unit_hits, unit_cache_misses=st.unit_misses,
                          unit_reads_skipped=getattr(st, "unit_skips", 0), store_errors=st.store_errors,
                          degraded_scans=st.degraded, presence_builds=st.presence_builds)
        store = services.store
        health = getattr(store, "health", None)
        if health is not None:
            gauges["store_up"] = 0 if health.down else 1
            counts.update(store_outages=health.outages, store_fast_failures=health.fast_failures)
        for op, attr in (("unit_read", "_reader"), ("allocate", "_allocator")):
            co = getattr(getattr(store, attr, None), "stats", None)
            if co is not None:
                snap["sizes"][op] = {"round_trips": co.round_trips, "keys": co.keys, "failures": co.failures,
                                     "seconds": co.seconds, "sizes": list(co.sizes)}
        return snap

    def collect(self) -> Iterator[Metric]:
        if self.shared is not None:
            yield from families(self.shared.merged(self.snapshot()))
        else:
            yield from families(self.snapshot())

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self._registry), CONTENT_TYPE_LATEST


_COUNTS = {
    "scan_events_flushed": "Scans written to the store",
    "scan_events_dropped": "Scans dropped (buffer full, or still failing to flush when it overflowed)",
    "scan_flush_failures": "Failed scan flushes (their scans are kept for the next try, up to the buffer size)",
    "unit_cache_hits": "Unit reads answered from the cache",
    "unit_cache_misses": "Unit reads sent to the store",
    "unit_reads_skipped": "Unit reads answered by the presence filter (certainly no record)",
    "store_errors": "Store calls that failed",
    "degraded_scans": "Scans answered without the store",
    "presence_builds": "Builds of the filter of units with a record (0: still building the first; scans read the store)",
    "store_outages": "Times the store became unreachable (the breaker opened)",
    "store_fast_failures": "Store calls refused at once while it was unreachable",
}
_GAUGES = {
    "scan_buffer_depth": "Scans waiting to be written",
    "store_up": "1 when the store answered the last call, 0 while unreachable (min over workers)",
    "workers": "Worker processes whose numbers are in this scrape",
    "rules_stale": "1 while the rules file on disk is refused and older rules serve (see /readyz), else 0",
}


def families(snap: dict[str, Any]) -> Iterator[Metric]:
    """Prometheus metric families from a (possibly merged) snapshot."""
    scans = CounterMetricFamily("serialink_scans", "Scans answered", labels=["link_type", "role", "state", "status"])
    for link_type, role, state, status, n in snap["scans"]:
        scans.add_metric([link_type, role, state, str(status)], n)
    yield scans
    yield _Histogram.family_of(snap["latency"], "serialink_scan_seconds", "Time to answer a scan inside the app")
    yield _Histogram.family_of(snap["flush_latency"], "serialink_scan_flush_seconds",
                               "Time to write one batch of buffered scans to the store")
    reloads = CounterMetricFamily("serialink_rules_reloads", "Rules loads by outcome (loaded, rejected: invalid file, "
                                  "failed: unexpected error, last_good: started on the last good copy)",
                                  labels=["outcome"])
    for outcome, n in snap["rules_reloads"].items():
        reloads.add_metric([outcome], n)
    yield reloads
    info = GaugeMetricFamily("serialink_rules_info", "Rules version being served", labels=["version"])
    for version in sorted(set(snap["rules_version"].split(","))) if snap["rules_version"] else ["unknown"]:
        info.add_metric([version], 1)
    yield info
    named: dict[str, CounterMetricFamily] = {}
    for name, labels, n in snap["counters"]:
        fam = named.get(name)
        if fam is None:
            fam = named[name] = CounterMetricFamily(name, name.replace("_", " "), labels=[k for k, _ in labels])
        fam.add_metric([v for _, v in labels], n)
    yield from named.values()
    for key, doc in _COUNTS.items():
        if key in snap["counts"]:
            yield CounterMetricFamily(f"serialink_{key}", doc, value=snap["counts"][key])
    for key, doc in _GAUGES.items():
        if key in snap["gauges"]:
            yield GaugeMetricFamily(f"serialink_{key}", doc, value=snap["gauges"][key])
    if snap["sizes"]:
        trips = CounterMetricFamily("serialink_store_round_trips", "Coalesced store round trips", labels=["op"])
        keys = CounterMetricFamily("serialink_store_coalesced_keys", "Reads/requests carried by those round trips",
                                   labels=["op"])
        fails = CounterMetricFamily("serialink_store_round_trip_failures", "Coalesced round trips that failed",
                                    labels=["op"])
        secs = CounterMetricFamily("serialink_store_round_trip_seconds", "Time spent in coalesced round trips",
                                   labels=["op"])
        sizes = HistogramMetricFamily("serialink_store_batch_size", "Keys per coalesced round trip", labels=["op"])
        for op, st in sorted(snap["sizes"].items()):
            trips.add_metric([op], st["round_trips"])
            keys.add_metric([op], st["keys"])
            fails.add_metric([op], st["failures"])
            secs.add_metric([op], st["seconds"])
            cumulative, buckets = 0, []
            for bound, n in zip([*(str(1 << i) for i in range(len(st["sizes"]) - 1)), "+Inf"], st["sizes"]):
                cumulative += n
                buckets.append((bound, cumulative))
            sizes.add_metric([op], buckets, st["keys"])
        yield from (trips, keys, fails, secs, sizes)
