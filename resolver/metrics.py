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
import time
from collections import defaultdict
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

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
        self.rules_version = ""
        self.rules_reloads: dict[str, int] = defaultdict(int)
        self.scan_flush_failures = 0
        self.counters: dict[tuple[str, tuple], int] = defaultdict(int)  # other modules' named counters
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
        if outcome == "loaded":
            self.rules_version = version

    def scan_flush_failed(self, exc: BaseException, pending: int) -> None:
        self.scan_flush_failures += 1

    def inc(self, name: str, **labels: str) -> None:
        self.counters[(name, tuple(sorted(labels.items())))] += 1

    # -- exposition ---------------------------------------------------------------------------

    def collect(self):
        scans = CounterMetricFamily("serialink_scans", "Scans answered", labels=["link_type", "role", "state", "status"])
        for (link_type, role, state, status), n in list(self.scans.items()):
            scans.add_metric([link_type, role, state, str(status)], n)
        yield scans
        yield self.latency.family("serialink_scan_seconds", "Time to answer a scan inside the app")
        reloads = CounterMetricFamily("serialink_rules_reloads", "Rules loads by outcome", labels=["outcome"])
        for outcome, n in self.rules_reloads.items():
            reloads.add_metric([outcome], n)
        yield reloads
        info = GaugeMetricFamily("serialink_rules_info", "Rules version being served", labels=["version"])
        info.add_metric([self.rules_version or "unknown"], 1)
        yield info
        for (name, labels), n in list(self.counters.items()):
            fam = CounterMetricFamily(name, name.replace("_", " "), labels=[k for k, _ in labels])
            fam.add_metric([v for _, v in labels], n)
            yield fam
        services = self._services
        if services is None:
            return
        if services.scans is not None:
            stats = services.scans.stats()
            yield GaugeMetricFamily("serialink_scan_buffer_depth", "Scans waiting to be written", value=stats.buffered)
            yield CounterMetricFamily("serialink_scan_events_flushed", "Scans written to the store", value=stats.flushed)
            yield CounterMetricFamily("serialink_scan_events_dropped", "Scans dropped (buffer full)", value=stats.dropped)
            yield CounterMetricFamily("serialink_scan_flush_failures", "Failed scan flushes", value=stats.failed_flushes)
        if services.lookup is not None:
            s = services.lookup.stats
            yield CounterMetricFamily("serialink_unit_cache_hits", "Unit reads answered from the cache", value=s.unit_hits)
            yield CounterMetricFamily("serialink_unit_cache_misses", "Unit reads sent to the store", value=s.unit_misses)
            yield CounterMetricFamily("serialink_unit_reads_skipped",
                                      "Unit reads answered by the presence filter (certainly no record)",
                                      value=s.unit_skips)
            yield CounterMetricFamily("serialink_store_errors", "Store calls that failed", value=s.store_errors)
            yield CounterMetricFamily("serialink_degraded_scans", "Scans answered without the store", value=s.degraded)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self._registry), CONTENT_TYPE_LATEST
