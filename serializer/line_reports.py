"""Line reports: a line's bulk message (serials or index ranges) → a twin.line_state report.

The line API (``POST /v1/batches/{id}/reports``), ``serialink line report`` and EPCIS
capture all speak this one shape::

    {"report_id": "cam-3/000172",          # idempotency: the same id again changes nothing
     "step": "verified",                   # open printed verified commissioned rejected
                                           #   unused decommissioned close
     "result": "pass", "grade": "A",       # verified only: pass commissions, fail does not
     "serials": ["K7Q2…", …],              # and/or
     "ranges": [{"start": 0, "count": 5000}],   # batch indices, start + count ≤ batch size
     "at": "2026-03-01T08:00:00Z",         # optional: when it happened (default: now)
     "reason": "camera 3 reject bin"}      # optional

Serials map to batch indices by inverting the batch's serial permutation (no store read,
no per-serial row); a serial that is not one of the batch's, a repeated serial or range
overlap is refused naming the element (``serials[12]``, ``ranges[1]``) before anything
is written.

>>> import asyncio, tempfile
>>> from twin.store import open_store
>>> from twin.events import Actor
>>> from serializer.keys import KeyStore
>>> from serializer.profiles import load_profiles
>>> from serializer.minting import BatchRequest, mint
>>> async def demo(d):
...     async with await open_store(f"sqlite:///{d}/twin.db") as store:
...         keys, profiles = KeyStore(f"{d}/keys"), load_profiles()
...         minted = await mint(store, keys, profiles, BatchRequest.parse(
...             {"gtin": "09506000134352", "count": 100, "profile": "default", "request_id": "m1"}), Actor("line", "l1"))
...         body = {"report_id": "r1", "step": "verified", "result": "pass", "grade": "B",
...                 "serials": minted.serials(0, 2), "ranges": [{"start": 10, "count": 40}]}
...         first = await submit(store, keys, profiles, minted.batch.id, body, Actor("line", "l1"))
...         again = await submit(store, keys, profiles, minted.batch.id, body, Actor("line", "l1"))
...         state = await store.get_line_state(minted.batch.id)
...         return first.commissioned, again.replayed, state.counts()["not_commissioned"]
>>> asyncio.run(demo(tempfile.mkdtemp()))
(42, True, 58)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pyroaring import BitMap

from serializer.keys import KeyStore
from serializer.minting import MintedBatch, regenerate
from serializer.profiles import SerialProfile
from twin.batch import Batch
from twin.errors import InvalidInput, NotFound
from twin.events import Actor, now_utc
from twin.line_state import (
    WHOLE_BATCH,
    LineReport,
    LineStep,
    LineSummary,
    check_line_batch,
    check_report_id,
    locate_in,
    report_digest,
)

#: Most elements (serials + ranges) one report may list; ranges cover any count.
MAX_ELEMENTS = 5_000_000


def _step(value: object) -> LineStep:
    try:
        return LineStep(value)
    except ValueError:
        raise InvalidInput("step", f"expected one of {', '.join(s.value for s in LineStep)}, got {value!r}") from None


def _at(value: object) -> datetime:
    if value is None:
        return now_utc()
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None:
            return at
    raise InvalidInput("at", f"expected an ISO 8601 time with a zone (2026-03-01T08:00:00Z), got {value!r}")


def _text(value: object, field: str, max_len: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= max_len:
        raise InvalidInput(field, f"expected text of 1-{max_len} characters")
    return value


def _serial_indices(serials: object, minted: MintedBatch) -> list[int]:
    if not isinstance(serials, list):
        raise InvalidInput("serials", "expected a list of serials")
    for i, s in enumerate(serials):
        if not isinstance(s, str):
            raise InvalidInput(f"serials[{i}]", f"expected a serial (text), got {type(s).__name__}")
    batch = minted.batch
    counters = minted.permutation.decode_many(serials)
    if None in counters:
        i = counters.index(None)
        raise InvalidInput(f"serials[{i}]", f"{serials[i]!r} is not a serial of batch {batch.id} (not of its profile)")
    start, end = batch.start, batch.end
    if counters and (min(counters) < start or max(counters) >= end):  # type: ignore[type-var]
        i = next(i for i, c in enumerate(counters) if not start <= c < end)  # type: ignore[operator]
        raise InvalidInput(f"serials[{i}]", f"{serials[i]!r} is not a serial of batch {batch.id} (another batch's)")
    return [c - start for c in counters] if start else counters  # type: ignore[return-value,operator]


def _ranges(ranges: object, count: int) -> list[tuple[int, int]]:
    if not isinstance(ranges, list):
        raise InvalidInput("ranges", 'expected a list of {"start": …, "count": …}')
    out = []
    for k, r in enumerate(ranges):
        if not isinstance(r, Mapping) or set(r) - {"start", "count"}:
            raise InvalidInput(f"ranges[{k}]", 'expected {"start": …, "count": …}')
        a, n = r.get("start"), r.get("count")
        if not isinstance(a, int) or isinstance(a, bool) or not isinstance(n, int) or isinstance(n, bool) \
                or a < 0 or n < 1 or a + n > count:
            raise InvalidInput(f"ranges[{k}]", f"expected start ≥ 0 and count ≥ 1 within the batch's {count} indices")
        out.append((a, a + n))
    return out


def parse_report(body: Mapping[str, Any], minted: MintedBatch) -> LineReport:
    """The report a line's message describes, as batch indices; InvalidInput names the element."""
    if not isinstance(body, Mapping):
        raise InvalidInput("body", "expected a JSON object")
    unknown = set(body) - {"report_id", "step", "result", "grade", "serials", "ranges", "at", "reason"}
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "is not a field of a line report")
    report_id = check_report_id(body.get("report_id"))
    step = _step(body.get("step"))
    result = body.get("result")
    grade = body.get("grade")
    if step is LineStep.VERIFIED:
        if result not in ("pass", "fail"):
            raise InvalidInput("result", f"a verified report needs result pass or fail, got {result!r}")
        if grade is not None and (not isinstance(grade, str) or grade not in ("A", "B", "C", "D", "F")):
            raise InvalidInput("grade", f"expected an ISO/IEC 15415 grade A, B, C, D or F, got {grade!r}")
    elif result is not None or grade is not None:
        raise InvalidInput("result" if result is not None else "grade", "only a verified report carries a result and grade")
    reason = _text(body.get("reason"), "reason", 1000)
    at = _at(body.get("at"))
    serials, ranges = body.get("serials"), body.get("ranges")
    count = minted.batch.count
    if step in WHOLE_BATCH:
        if serials or ranges:
            raise InvalidInput("serials" if serials else "ranges", f"a {step} report names no serials")
        indices, positions, spans = BitMap(), [], []
    else:
        if serials is None and ranges is None:
            raise InvalidInput("serials", "name the serials (a list) or index ranges the report is about")
        positions = _serial_indices(serials, minted) if serials is not None else []
        spans = _ranges(ranges, count) if ranges is not None else []
        if len(positions) + len(spans) > MAX_ELEMENTS:
            raise InvalidInput("serials", f"at most {MAX_ELEMENTS} serials and ranges per report")
        indices = BitMap(positions)
        if len(indices) != len(positions):
            seen: dict[int, int] = {}
            for i, p in enumerate(positions):
                if p in seen:
                    raise InvalidInput(f"serials[{i}]", f"repeats serials[{seen[p]}]")
                seen[p] = i
        for k, (a, b) in enumerate(spans):
            span = BitMap()
            span.add_range(a, b)
            overlap = indices & span
            if overlap:
                raise InvalidInput(f"ranges[{k}]", f"overlaps {locate_in(positions, spans[:k])(overlap.min())} "
                                                   f"at index {overlap.min()}")
            indices |= span
    digest = report_digest(str(step), result, grade, reason, indices)
    return LineReport(report_id, step, indices, at, result, grade, reason, locate_in(positions, spans), digest)


async def batch_for_report(store: Any, batch_id: str) -> Batch:
    batch = await store.get_batch(batch_id)
    if batch is None:
        raise NotFound(f"no batch {batch_id}")
    return check_line_batch(batch, batch_id)


async def submit(store: Any, keys: KeyStore, profiles: Mapping[str, SerialProfile], batch_id: str,
                 body: Mapping[str, Any], actor: Actor, batch: Batch | None = None) -> LineSummary:
    """Parse ``body`` against the batch and apply it: the one way a report reaches the twin."""
    batch = batch or await batch_for_report(store, batch_id)
    minted = await regenerate(batch, keys, profiles)
    report = parse_report(body, minted)
    summaries: list[LineSummary] = await store.apply_line_reports(batch_id, [report], actor)
    return summaries[0]


def serial_list(minted: MintedBatch, indices: Sequence[int]) -> list[str]:
    """The serials at batch ``indices`` (for EPCIS events and CLI output)."""
    start = minted.batch.start
    return [minted.permutation.encode(start + i) for i in indices]
