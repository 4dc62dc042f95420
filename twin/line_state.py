"""Serial states at the line: what was printed, verified, commissioned or scrapped, per batch.

A minted serial is the permutation of a counter, so it *is* an index into its batch
(``counter - batch.start``). The line's story of a batch is therefore a handful of
compressed bitmaps over ``[0, count)`` (Roaring bitmaps, pyroaring) — no per-serial row,
whatever the batch size::

    allocated ─ printed ─ verified pass ──► commissioned ─┐
                        └ verified fail ─ rejected ───────┴► decommissioned
    allocated ─ unused (returned) ─────────────────────────► decommissioned

A line reports in bulk: one :class:`LineReport` names a step and a set of indices (built
from serial lists or index ranges by ``serializer.line_reports``) and has an id; the store
applies it atomically and remembers the id, so a report repeated after a crash changes
nothing. :func:`apply_report` is the pure core both stores run inside their write: it
refuses the whole report, naming the offending element, when any index may not take the
step (twice commissioned, scrapped then commissioned, a report after the batch closed).

Backward compatibility: a batch with no line state at all (minted before this existed, or
by a line that reports nothing) is not line-tracked, and its units resolve as before (the
batch speaks: commissioned unless voided). A batch opts in with its first report — or at
mint time with an ``open`` report, so that nothing resolves as genuine before the camera
has passed it. Once tracked, a unit is ``commissioned``, ``decommissioned`` or
``not_commissioned``.

>>> from pyroaring import BitMap
>>> from datetime import datetime, timezone
>>> at = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> state = LineState.empty(10)
>>> ok = LineReport("r1", LineStep.VERIFIED, BitMap(range(0, 6)), at, result="pass", grade="A")
>>> state, summary, _ = apply_report(state, ok)
>>> state.state_of(3), state.state_of(7), summary.commissioned
('commissioned', 'not_commissioned', 6)
>>> state, summary, closed = apply_report(state, LineReport("r2", LineStep.CLOSE, BitMap(), at))
>>> state.state_of(7), summary.decommissioned, list(closed), state.closed
('decommissioned', 4, [6, 7, 8, 9], True)
>>> apply_report(LineState.empty(10), LineReport("r3", LineStep.COMMISSIONED, BitMap([1, 1]), at)
...              )[0].view().state_of(1)
'commissioned'
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import msgpack
from pyroaring import BitMap, FrozenBitMap

from twin.batch import Batch, BatchKind, BatchStatus
from twin.errors import (
    CorruptRecord,
    IdempotencyConflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
)

#: ISO/IEC 15415 / 15416 overall symbol grades a verifier reports.
GRADES = ("A", "B", "C", "D", "F")
#: What a tracked unit's state may be (the routing rules' states).
COMMISSIONED, DECOMMISSIONED, NOT_COMMISSIONED = "commissioned", "decommissioned", "not_commissioned"
_FORMAT = 1


class LineStep(StrEnum):
    OPEN = "open"  # opt a batch into line tracking before anything is printed
    PRINTED = "printed"  # encoded on a label, not yet inspected
    VERIFIED = "verified"  # inspected by the camera: result pass (commissions) or fail
    COMMISSIONED = "commissioned"  # commissioned without an inspection result (lines with no camera)
    REJECTED = "rejected"  # printed, failed or damaged: taken off the line, decommissioned
    UNUSED = "unused"  # never printed: returned, decommissioned
    DECOMMISSIONED = "decommissioned"  # destroyed at the plant (QA samples, commissioned or not)
    CLOSE = "close"  # the batch is done: everything never commissioned is decommissioned


#: Steps whose report names no indices (they act on the whole batch).
WHOLE_BATCH = frozenset({LineStep.OPEN, LineStep.CLOSE})


class LineConflict(IllegalTransition):
    """A report the batch's line state refuses; ``field`` names the element at fault."""

    def __init__(self, step: str, field: str, reason: str) -> None:
        super().__init__(f"line:{step}", None, reason)
        self.field = field


class ReportConflict(IdempotencyConflict):
    """A report id already used for a different report."""

    field = "report_id"


@dataclass(frozen=True, slots=True)
class LineReport:
    """One bulk report from the line, already resolved to batch indices.

    ``locate(index)`` names the request element an index came from (``serials[12]``,
    ``ranges[0]``) so a refusal can point at it; ``digest`` is what a retry of the same
    report id must repeat.
    """

    report_id: str
    step: LineStep
    indices: BitMap | FrozenBitMap
    at: datetime
    result: str | None = None  # verified: pass | fail
    grade: str | None = None  # verified: A-F
    reason: str | None = None
    locate: Callable[[int], str] = field(default=lambda index: f"index {index}", compare=False, repr=False)
    digest: str = ""

    def element(self, index: int) -> str:
        return self.locate(index)


class LineSummary(NamedTuple):
    """What one report did (kept with the report id: a replay answers the same)."""

    report_id: str
    step: str
    units: int  # indices the report named (the batch's remainder for close)
    commissioned: int  # newly commissioned by this report
    decommissioned: int  # newly decommissioned by this report
    at_ms: int
    replayed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"report_id": self.report_id, "step": self.step, "units": self.units,
                "commissioned": self.commissioned, "decommissioned": self.decommissioned,
                "replayed": self.replayed}


class LineView:
    """The read side a resolver caches per batch: two frozen bitmaps, one lookup per scan."""

    __slots__ = ("commissioned", "decommissioned")

    def __init__(self, commissioned: FrozenBitMap, decommissioned: FrozenBitMap) -> None:
        self.commissioned = commissioned
        self.decommissioned = decommissioned

    def state_of(self, index: int) -> str:
        if index in self.decommissioned:
            return DECOMMISSIONED
        if index in self.commissioned:
            return COMMISSIONED
        return NOT_COMMISSIONED


_SETS = ("printed", "passed", "failed", "commissioned", "decommissioned")


@dataclass(frozen=True, slots=True)
class LineState:
    """Everything the line reported about one batch (``version`` counts applied reports)."""

    count: int
    version: int = 0
    closed: bool = False
    printed: FrozenBitMap = field(default_factory=FrozenBitMap)
    passed: FrozenBitMap = field(default_factory=FrozenBitMap)
    failed: FrozenBitMap = field(default_factory=FrozenBitMap)
    commissioned: FrozenBitMap = field(default_factory=FrozenBitMap)
    decommissioned: FrozenBitMap = field(default_factory=FrozenBitMap)
    grades: Mapping[str, FrozenBitMap] = field(default_factory=dict)

    @classmethod
    def empty(cls, count: int) -> LineState:
        return cls(count)

    def state_of(self, index: int) -> str:
        return self.view().state_of(index)

    def view(self) -> LineView:
        return LineView(self.commissioned, self.decommissioned)

    def counts(self) -> dict[str, Any]:
        """Totals per state, for the API and the CLI."""
        live = self.commissioned - self.decommissioned
        return {
            "count": self.count, "closed": self.closed, "reports": self.version,
            "printed": len(self.printed), "verified_pass": len(self.passed), "verified_fail": len(self.failed),
            "commissioned": len(live), "decommissioned": len(self.decommissioned),
            "not_commissioned": self.count - len(live) - len(self.decommissioned),
            "grades": {g: len(b) for g, b in sorted(self.grades.items()) if len(b)},
        }


def _refuse(report: LineReport, bad: BitMap | FrozenBitMap, why: str) -> LineConflict:
    first = bad.min()
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    where = report.element(first)
    return LineConflict(str(report.step), where, f"{where}: batch index {first} {why}{more}; nothing was applied")


def apply_report(state: LineState, report: LineReport) -> tuple[LineState, LineSummary, FrozenBitMap]:
    """The state after ``report``, what it did, and the indices it acted on (a close: the
    ones it decommissioned); or LineConflict naming the first element refused.

    Pure and all-or-nothing: the caller writes the result (and the report id) in one
    atomic store write, or nothing.
    """
    step, r = report.step, report.indices
    at_ms = int(report.at.timestamp() * 1000)
    if state.closed:
        raise LineConflict(str(step), "batch", "the batch is closed: its line state takes no more reports")
    if step not in WHOLE_BATCH:
        if not r:
            raise InvalidInput("serials", "the report names no serials")
        if r.max() >= state.count:
            raise InvalidInput(report.element(r.max()), f"index {r.max()} is outside the batch (0..{state.count - 1})")
    gone, done = state.decommissioned, state.commissioned
    changes: dict[str, Any] = {"version": state.version + 1}
    commissioned = decommissioned = 0
    if step is LineStep.OPEN:
        pass
    elif step is LineStep.PRINTED:
        _check(report, r & gone, "is decommissioned")
        _check(report, r & done, "is already commissioned")
        _check(report, r & state.printed, "is already printed")
        changes["printed"] = FrozenBitMap(state.printed | r)
    elif step in (LineStep.VERIFIED, LineStep.COMMISSIONED):
        if step is LineStep.VERIFIED:
            if report.result not in ("pass", "fail"):
                raise InvalidInput("result", f"expected pass or fail, got {report.result!r}")
            if report.grade is not None and report.grade not in GRADES:
                raise InvalidInput("grade", f"expected one of {', '.join(GRADES)}, got {report.grade!r}")
        _check(report, r & gone, "is decommissioned")
        _check(report, r & done, "is already commissioned")
        changes["printed"] = FrozenBitMap(state.printed | r)
        if report.grade is not None:
            grades = {g: FrozenBitMap(b - r) for g, b in state.grades.items()}
            grades[report.grade] = FrozenBitMap(grades.get(report.grade, FrozenBitMap()) | r)
            changes["grades"] = grades
        if step is LineStep.VERIFIED and report.result == "fail":
            changes["failed"] = FrozenBitMap(state.failed | r)
        else:
            if step is LineStep.VERIFIED:
                changes["passed"] = FrozenBitMap(state.passed | r)
            changes["commissioned"] = FrozenBitMap(done | r)
            commissioned = len(r)
    elif step is LineStep.REJECTED:
        _check(report, r & gone, "is already decommissioned")
        _check(report, r & done, "is commissioned: report it decommissioned, not rejected")
        changes["decommissioned"] = FrozenBitMap(gone | r)
        decommissioned = len(r)
    elif step is LineStep.UNUSED:
        _check(report, r & gone, "is already decommissioned")
        _check(report, r & done, "is commissioned, so it was used")
        _check(report, r & state.printed, "is printed: report it rejected, not unused")
        changes["decommissioned"] = FrozenBitMap(gone | r)
        decommissioned = len(r)
    elif step is LineStep.DECOMMISSIONED:
        _check(report, r & gone, "is already decommissioned")
        changes["decommissioned"] = FrozenBitMap(gone | r)
        decommissioned = len(r)
    elif step is LineStep.CLOSE:
        everything = BitMap()
        everything.add_range(0, state.count)
        rest = everything - done - gone
        changes["decommissioned"] = FrozenBitMap(gone | rest)
        changes["closed"] = True
        decommissioned = len(rest)
        r = rest
    else:  # pragma: no cover - LineStep is closed
        raise InvalidInput("step", f"unknown step {step!r}")
    new = replace(state, **changes)
    summary = LineSummary(report.report_id, str(step), len(r), commissioned, decommissioned, at_ms)
    return new, summary, FrozenBitMap(r)


def _check(report: LineReport, bad: BitMap | FrozenBitMap, why: str) -> None:
    if bad:
        raise _refuse(report, bad, why)


# -- stored form -------------------------------------------------------------------------


def _bitmap_bytes(b: BitMap | FrozenBitMap) -> bytes:
    m = BitMap(b)
    m.run_optimize()  # ranges (the common case) shrink to a few bytes
    out: bytes = m.serialize()
    return out


def _bitmap(blob: bytes, key: str) -> FrozenBitMap:
    try:
        return FrozenBitMap.deserialize(blob)
    except Exception as exc:  # pyroaring raises ValueError on a bad buffer
        raise CorruptRecord(key, f"bad bitmap: {exc}") from None


def encode_state(s: LineState) -> bytes:
    body = [_FORMAT, s.count, s.version, s.closed, [_bitmap_bytes(getattr(s, n)) for n in _SETS],
            {g: _bitmap_bytes(b) for g, b in s.grades.items()}]
    out: bytes = msgpack.packb(body)
    return out


def decode_state(blob: bytes, key: str) -> LineState:
    try:
        fmt, count, version, closed, sets, grades = msgpack.unpackb(blob)[:6]
    except Exception as exc:
        raise CorruptRecord(key, f"bad line state: {exc}") from None
    if fmt != _FORMAT:
        raise CorruptRecord(key, f"unknown line state format {fmt!r}")
    maps = dict(zip(_SETS, (_bitmap(b, key) for b in sets), strict=True))
    return LineState(count, version, bool(closed), grades={g: _bitmap(b, key) for g, b in grades.items()}, **maps)


class StoredReport(NamedTuple):
    """A report as the store keeps it: enough to answer a replay and to render the
    EPCIS event of the step it describes. ``seq``: its place among the batch's reports."""

    seq: int
    report_id: str
    digest: str
    step: str
    result: str | None
    grade: str | None
    reason: str | None
    at_ms: int
    indices: FrozenBitMap
    summary: LineSummary
    actor: tuple[str, str]


def encode_report(seq: int, report: LineReport, summary: LineSummary, affected: FrozenBitMap,
                  actor: tuple[str, str]) -> bytes:
    """``affected``: the indices the report acted on (a close: those it decommissioned,
    which its EPCIS decommissioning event lists)."""
    out: bytes = msgpack.packb([
        _FORMAT, report.report_id, report.digest, str(report.step), report.result, report.grade, report.reason,
        summary.at_ms, _bitmap_bytes(affected), list(summary[:6]), list(actor), seq])
    return out


def decode_report(blob: bytes, key: str) -> StoredReport:
    try:
        fields = msgpack.unpackb(blob)
        fmt, rid, digest, step, result, grade, reason, at_ms, indices, summary, actor, seq = fields[:12]
    except Exception as exc:
        raise CorruptRecord(key, f"bad line report: {exc}") from None
    if fmt != _FORMAT:
        raise CorruptRecord(key, f"unknown line report format {fmt!r}")
    return StoredReport(seq, rid, digest, step, result, grade, reason, at_ms, _bitmap(indices, key),
                        LineSummary(*summary), (actor[0], actor[1]))


def same_report(stored: StoredReport, report: LineReport) -> LineSummary:
    """A report id seen before: the same report is a replay, another one a conflict."""
    if stored.digest != report.digest:
        raise ReportConflict(f"report_id {report.report_id!r} was already used for another report "
                             f"({stored.summary.step} of {stored.summary.units} units); use a new report id")
    return stored.summary._replace(replayed=True)


def check_line_batch(batch: Batch | None, batch_id: str) -> Batch:
    """A batch a line may report on: it exists, was minted (its serials are indices) and
    is not voided (voided serials are never valid: there is nothing to commission)."""
    if batch is None:
        raise NotFound(f"no batch {batch_id}")
    if batch.kind is not BatchKind.MINTED:
        raise InvalidInput("batch_id", f"batch {batch_id} holds imported serials; line tracking needs a minted batch")
    if batch.status is BatchStatus.VOIDED:
        raise LineConflict("report", "batch", f"batch {batch_id} is voided; its serials take no line reports")
    return batch


def check_report_id(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 100 or not value.isprintable() or " " in value:
        raise InvalidInput("report_id", "expected 1-100 printable characters without spaces")
    return value


def check_report_ids(reports: Sequence[LineReport]) -> None:
    """Reports written together: at least one, each with a good id, no id twice."""
    if not reports:
        raise InvalidInput("reports", "expected at least one report")
    ids = [check_report_id(r.report_id) for r in reports]
    if len(set(ids)) != len(ids):
        raise InvalidInput("report_id", "the same report id appears twice in one write")


def report_digest(step: str, result: str | None, grade: str | None, reason: str | None,
                  indices: BitMap | FrozenBitMap) -> str:
    """What a retry of a report id must repeat: the step, its outcome and the very indices."""
    h = hashlib.sha256(f"{step}|{result}|{grade}|{reason}|".encode())
    h.update(_bitmap_bytes(indices))
    return h.hexdigest()[:32]


def locate_in(serial_positions: Sequence[int], ranges: Sequence[tuple[int, int]]) -> Callable[[int], str]:
    """``locate`` for a report given as a list of serials (their batch indices, in request
    order) and index ranges ``[start, end)``: the first element that names an index.
    Only a refusal calls it, so a linear search is fine."""
    def locate(index: int) -> str:
        for i, value in enumerate(serial_positions):
            if value == index:
                return f"serials[{i}]"
        for k, (a, b) in enumerate(ranges):
            if a <= index < b:
                return f"ranges[{k}]"
        return f"index {index}"
    return locate
