"""Clone detection: serials that behave like copies get a ``suspect`` overlay.

A genuine unit sits in one place and is scanned about as often as the others of its
batch; a copied label turns up in several countries at once, is scanned far more than its
batch-mates, or carries a serial nobody issued (``unknown``) or that was scrapped
(``decommissioned``). Rules in YAML (``config/clone-rules.yaml``) set the thresholds.

The detector is pure and judges by the scans' own times (``at_ms``), never the wall clock:
the same scans give the same findings, whenever they are fed. In a worker it runs behind
the scan buffer (:class:`CloneWatch`: the flusher hands it each written batch, a task of
its own judges them and writes overlays), never on a request.

>>> rules = parse_rules({"rules": [{"name": "abroad", "kind": "countries", "countries": 2,
...                                 "window_seconds": 3600}]}, "inline")
>>> from twin.scans import ScanEvent
>>> d = CloneDetector(rules)
>>> scan = ScanEvent(0, "09506000134352", "S1", None, "consumer", None, "sold", None, "DE")
>>> d.feed([scan, scan._replace(at_ms=60_000, country="BR")])[0].evidence
'scanned in 2 countries (BR, DE) within 3600 s'
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from resolver.errors import Invalid
from twin.errors import IdempotencyConflict
from twin.events import Actor
from twin.overlays import Overlay, SerialScope
from twin.scans import ScanEvent
from twin.store import UnitStore

log = logging.getLogger("serialink.analytics.clones")

KINDS = ("countries", "batch_outlier", "states")
DETECTOR = Actor("system", "clone-detection")
#: Scans judged between two turns of the event loop (~0.3 ms of work).
SLICE = 256


class Rule(NamedTuple):
    name: str
    kind: str  # countries | batch_outlier | states
    window_ms: int
    countries: int = 3  # countries: this many distinct countries within the window
    min_scans: int = 1  # batch_outlier, states: at least this many scans of the unit in the window
    factor: float = 10.0  # batch_outlier: more than factor × the batch-mates' mean
    min_mates: int = 5  # batch_outlier: at least this many units of the batch scanned
    states: frozenset[str] = frozenset({"unknown", "decommissioned"})  # states: scans in these states


class CloneRules(NamedTuple):
    rules: tuple[Rule, ...]
    roles: frozenset[str]  # whose scans count (a technician scanning a unit often is no clone)
    source: str


class Finding(NamedTuple):
    gtin: str
    serial: str
    rule: str
    at_ms: int  # the scan that tipped it
    evidence: str


def _int(raw: Mapping[str, Any], key: str, where: str, default: int, low: int = 1) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise Invalid(f"expected a whole number >= {low}, got {value!r}", f"{where}.{key}")
    return value


def parse_rules(data: object, source: str) -> CloneRules:
    """Validate the YAML document; every problem names ``source`` and the field."""
    if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
        raise Invalid("expected a mapping with a list of rules", f"{source}: rules")
    roles = data.get("roles", ["consumer"])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Invalid("expected a list of roles", f"{source}: roles")
    unknown = set(data) - {"rules", "roles"}
    if unknown:
        raise Invalid("unknown key (known: rules, roles)", f"{source}: {sorted(unknown)[0]}")
    out: list[Rule] = []
    for i, raw in enumerate(data["rules"]):
        where = f"{source}: rules[{i}]"
        if not isinstance(raw, Mapping):
            raise Invalid("expected a mapping", where)
        kind, name = raw.get("kind"), raw.get("name")
        if kind not in KINDS:
            raise Invalid(f"expected one of {', '.join(KINDS)}, got {kind!r}", f"{where}.kind")
        if not isinstance(name, str) or not name.strip() or len(name) > 80:
            raise Invalid("expected a name of 1-80 characters", f"{where}.name")
        allowed = {"name", "kind", "window_seconds"} | {
            "countries": {"countries"}, "batch_outlier": {"min_scans", "factor", "min_mates"},
            "states": {"states", "min_scans"}}[kind]
        extra = set(raw) - allowed
        if extra:
            raise Invalid(f"not a setting of a {kind} rule (known: {', '.join(sorted(allowed))})",
                          f"{where}.{sorted(extra)[0]}")
        window = _int(raw, "window_seconds", where, 86400) * 1000
        factor = raw.get("factor", 10.0)
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or factor < 1:
            raise Invalid(f"expected a number >= 1, got {factor!r}", f"{where}.factor")
        states = raw.get("states", ["unknown", "decommissioned"])
        if not isinstance(states, list) or not states or not all(isinstance(s, str) for s in states):
            raise Invalid("expected a list of unit states", f"{where}.states")
        out.append(Rule(name.strip(), kind, window, _int(raw, "countries", where, 3, 2),
                        _int(raw, "min_scans", where, 1), float(factor), _int(raw, "min_mates", where, 5, 2),
                        frozenset(states)))
    return CloneRules(tuple(out), frozenset(roles), source)


def load_rules(path: Path) -> CloneRules:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise Invalid(f"cannot read the clone rules: {exc}", str(path)) from None
    return parse_rules(data, str(path))


class _Group:
    """One batch's scans in the current window (batch_outlier)."""

    __slots__ = ("bucket", "counts", "total")

    def __init__(self, bucket: int) -> None:
        self.bucket = bucket
        self.counts: dict[str, int] = {}
        self.total = 0


class CloneDetector:
    """Feed it scans in batches; it returns the units that tip a rule, each once.

    Memory is bounded: per-unit state is kept for at most ``max_units`` units (the oldest
    dropped first), which can only miss a clone, never invent one.
    """

    def __init__(self, rules: CloneRules, max_units: int = 1_000_000) -> None:
        self.rules = rules
        self.max_units = max_units
        self.flagged: set[tuple[str, str]] = set()
        self._countries: dict[tuple[str, str], dict[str, int]] = {}  # unit -> country -> last scan
        self._states: dict[tuple[str, str], list[int]] = {}  # unit -> [window start, scans]
        self._groups: dict[tuple[str, str], _Group] = {}  # (gtin, lot) -> this window's counts
        self._plan = tuple((rule, rule.kind) for rule in rules.rules)
        self.seen = 0

    def feed(self, scans: Sequence[ScanEvent]) -> list[Finding]:
        """Judge scans in order. Every scan of every worker passes here, so the rules that
        cannot apply to a scan are skipped before any call: a ``countries`` rule needs a
        country, a ``states`` rule one of its states (most scans carry neither)."""
        found: list[Finding] = []
        roles = self.rules.roles
        plan = self._plan
        flagged = self.flagged
        judge = self._judge
        for scan in scans:
            serial = scan[2]
            if serial is None or scan[4] not in roles:
                continue
            key = (scan[1], serial)
            if key in flagged:
                continue
            country, state = scan[8], scan[6]
            for rule, kind in plan:
                if (kind == "countries" and country is None) or (kind == "states" and state not in rule.states):
                    continue
                evidence = judge(rule, scan, key)
                if evidence is not None:
                    flagged.add(key)
                    found.append(Finding(scan.gtin, serial, rule.name, scan.at_ms, evidence))
                    break
        self.seen += len(scans)
        if len(self._countries) > self.max_units:
            _drop_oldest(self._countries)
        if len(self._states) > self.max_units:
            _drop_oldest(self._states)
        return found

    def _judge(self, rule: Rule, scan: ScanEvent, key: tuple[str, str]) -> str | None:
        at = scan.at_ms
        if rule.kind == "countries":
            country = scan.country
            if country is None:
                return None
            seen = self._countries.get(key)
            if seen is None:
                self._countries[key] = {country: at}
                return None
            seen[country] = at
            if len(seen) < rule.countries:
                return None
            for c in [c for c, last in seen.items() if at - last > rule.window_ms]:
                del seen[c]
            if len(seen) < rule.countries:
                return None
            return (f"scanned in {len(seen)} countries ({', '.join(sorted(seen))}) "
                    f"within {rule.window_ms // 1000} s")
        if rule.kind == "states":
            if scan.state not in rule.states:
                return None
            entry = self._states.get(key)
            if entry is None or at - entry[0] > rule.window_ms:
                entry = self._states[key] = [at, 0]
            entry[1] += 1
            if entry[1] < rule.min_scans:
                return None
            return f"scanned {entry[1]} time(s) as {scan.state} (a serial never commissioned or scrapped)"
        # batch_outlier: this unit against the others of its batch (GTIN + lot) in the window
        gkey = (scan.gtin, scan.lot or "")
        bucket = at // rule.window_ms
        group = self._groups.get(gkey)
        if group is None or group.bucket != bucket:
            group = self._groups[gkey] = _Group(bucket)
        count = group.counts.get(key[1], 0) + 1
        group.counts[key[1]] = count
        group.total += 1
        mates = len(group.counts) - 1
        if count < rule.min_scans or mates < rule.min_mates:
            return None
        mean = (group.total - count) / mates
        if count <= rule.factor * max(mean, 1.0):
            return None
        return (f"{count} scans in {rule.window_ms // 1000} s against a mean of {mean:.1f} "
                f"for {mates} batch-mates (lot {scan.lot or 'none'})")


def _drop_oldest(table: dict[Any, Any]) -> None:
    for key in list(table)[: len(table) // 2]:
        del table[key]


class CloneWatch:
    """Judges the scans the buffer wrote, off the request path, and flags units.

    ``offer`` (called by the flusher) only queues the batch, dropping it when the queue is
    full (counted in ``dropped``); :meth:`run` judges and writes a ``suspect`` overlay per
    finding, idempotent per unit, and calls ``on_flag`` so this worker's caches see it.
    """

    def __init__(self, detector: CloneDetector, store: UnitStore, *, max_pending: int = 500_000,
                 on_flag: Callable[[Overlay], None] | None = None) -> None:
        self.detector = detector
        self.store = store
        self.max_pending = max_pending
        self.on_flag = on_flag
        self._queue: collections.deque[Sequence[ScanEvent]] = collections.deque()
        self._pending = 0
        self.dropped = 0
        self.flagged = 0
        self._wakeup = asyncio.Event()

    def offer(self, scans: Sequence[ScanEvent]) -> None:
        if self._pending + len(scans) > self.max_pending:
            self.dropped += len(scans)
            return
        self._queue.append(scans)
        self._pending += len(scans)
        self._wakeup.set()

    async def drain(self) -> list[Finding]:
        """Judge everything queued now and write the findings' overlays."""
        findings: list[Finding] = []
        while self._queue:
            batch = self._queue.popleft()
            self._pending -= len(batch)
            # a flush hands over a quarter second of scans (thousands): judged in slices of
            # SLICE with the loop free in between, no scan waits for more than one slice
            for start in range(0, len(batch), SLICE):
                findings += self.detector.feed(batch[start:start + SLICE])
                await asyncio.sleep(0)
        for finding in findings:
            await self.flag(finding)
        return findings

    async def flag(self, finding: Finding) -> Overlay | None:
        try:
            overlay = await self.store.put_overlay(
                finding.gtin, "suspect", SerialScope(finding.serial), DETECTOR,
                f"clone rule '{finding.rule}': {finding.evidence}",
                idempotency_key=f"suspect:{finding.gtin}:{finding.serial}",
                audit={"rule": finding.rule, "scan_at_ms": finding.at_ms})
        except IdempotencyConflict:
            return None  # flagged before, by this or another worker
        self.flagged += 1
        if self.on_flag is not None:
            self.on_flag(overlay)
        return overlay

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: findings are lost, scans are not
                log.warning("clone detection could not flag a unit: %s", exc)
                await asyncio.sleep(1.0)
