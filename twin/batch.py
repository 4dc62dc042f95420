"""Batches: a counter range allocated for one (GTIN, serial profile), and what became of it.

A batch is the only per-unit-free record of millions of minted units: their serials are
a keyed permutation of the counters ``start … start+count-1`` (the serialiser's job), and
a unit with no events of its own takes its state from the batch that minted it.

>>> from twin.batch import batch_id, parse_batch_id, RangeIndex, BatchRange
>>> batch_id("09506000134352", "eu-fmd", 1000)
'09506000134352.eu-fmd.1000'
>>> parse_batch_id("09506000134352.eu-fmd.1000")
('09506000134352', 'eu-fmd', 1000)
>>> index = RangeIndex([BatchRange(0, 500, "a"), BatchRange(500, 100, "b"), BatchRange(900, 50, "c")])
>>> index.find(550), index.find(700), index.find(949)
('b', None, 'c')
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import NamedTuple

from twin.errors import IllegalTransition, InvalidInput
from twin.events import Actor
from twin.identity import check_gtin, check_name

#: One request may ask for at most this many counters (TraceLink SNX caps at 500k; a
#: whole line shift fits). Bigger asks are split by the caller.
MAX_ALLOCATION = 10_000_000
#: Counters stay below 2**53 on every backend: Redis runs the allocation in Lua, whose
#: numbers are doubles. That is 9e15 serials per (GTIN, profile), far past any guess-ratio.
MAX_COUNTER = 2**53


class BatchStatus(StrEnum):
    ALLOCATED = "allocated"  # range reserved, serials handed to the line
    COMMITTED = "committed"  # the line confirmed: labels exist
    VOIDED = "voided"  # cancelled; its serials are never valid and never reissued


class BatchKind(StrEnum):
    MINTED = "minted"  # serials = permutation of the counter range
    IMPORTED = "imported"  # serials issued elsewhere (tobacco ID issuer, CRPT); counters index them


_STATUS_MOVES = {
    BatchStatus.ALLOCATED: frozenset({BatchStatus.COMMITTED, BatchStatus.VOIDED}),
    BatchStatus.COMMITTED: frozenset({BatchStatus.VOIDED}),
    BatchStatus.VOIDED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Batch:
    """A counter range ``[start, start + count)`` for one (GTIN, profile), with its story."""

    id: str
    gtin: str
    profile: str
    start: int
    count: int
    status: BatchStatus
    kind: BatchKind
    request_id: str
    params_digest: str
    created_at: datetime
    updated_at: datetime
    created_by: Actor
    lot: str | None = None
    expiry: date | None = None
    line: str | None = None
    site: str | None = None
    status_reason: str | None = None

    @property
    def end(self) -> int:
        """One past the last counter of the range."""
        return self.start + self.count

    def __contains__(self, counter: object) -> bool:
        return isinstance(counter, int) and self.start <= counter < self.start + self.count


class BatchRange(NamedTuple):
    start: int
    # The field shadows tuple.count(), which mypy reports; it is the range's public name
    # (BatchRange(start, count, batch_id), sorted and compared as a tuple), so it stays.
    count: int  # type: ignore[assignment]
    batch_id: str


def batch_id(gtin: str, profile: str, start: int) -> str:
    """Batch ids embed the GTIN (so a cluster knows the slot) and the range start (unique
    per profile, since ranges never overlap)."""
    return f"{gtin}.{profile}.{start}"


def parse_batch_id(value: object) -> tuple[str, str, int]:
    """Split a batch id into (gtin, profile, start); InvalidInput names what is wrong."""
    if not isinstance(value, str) or value.count(".") != 2:
        raise InvalidInput("batch_id", f"expected '<gtin>.<profile>.<start>', got {value!r}")
    gtin, profile, start = value.split(".")
    check_gtin(gtin, "batch_id.gtin")
    check_name(profile, "batch_id.profile")
    if not start.isdigit() or len(start) > 19:
        raise InvalidInput("batch_id.start", f"expected a counter, got {start!r}")
    return gtin, profile, int(start)


def check_status_move(batch: Batch, status: BatchStatus) -> None:
    """allocated → committed → voided (or allocated → voided); never back."""
    if status not in _STATUS_MOVES[batch.status]:
        raise IllegalTransition(
            f"batch:{status}", batch.status, f"cannot set batch {batch.id} to {status}: it is {batch.status}"
        )


def check_count(count: object) -> int:
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_ALLOCATION:
        raise InvalidInput("count", f"expected an integer 1..{MAX_ALLOCATION}, got {count!r}")
    return count


class RangeIndex:
    """Sorted, non-overlapping ranges; ``find(counter)`` in O(1) for evenly spread ranges,
    O(log n) at worst.

    The resolver keeps one per (GTIN, profile) in process, rebuilt when the change feed
    reports a batch change, so the hot path never asks the store which batch minted a unit.

    Why not a plain bisect over the starts: with 100k batches per GTIN, a bisect's 17
    probes each touched a different int object far apart in memory, ~1 µs a scan in cache
    misses. The starts and ends sit in flat arrays, and a bucket table (one bucket per
    mean range width, so about one range each) narrows the search to the ranges that can
    hold the counter before it bisects.
    """

    __slots__ = ("_starts", "_ends", "_ids", "_first", "_base", "_shift")

    def __init__(self, ranges: Iterable[BatchRange]) -> None:
        ordered = sorted(ranges)
        self._starts = array("q", [r.start for r in ordered])
        self._ends = array("q", [r.start + r.count for r in ordered])
        self._ids = [r.batch_id for r in ordered]
        n = len(ordered)
        self._base = ordered[0].start if n else 0
        span = self._ends[-1] - self._base if n else 0
        self._shift = max(0, (span // max(n, 1)).bit_length() - 1)  # bucket width: at most the mean range's
        # _first[b]: the last range starting at or before bucket b's first counter
        buckets = (span >> self._shift) + 2 if n else 0
        first = array("q", bytes(8 * buckets))
        starts, i = self._starts, 0
        for b in range(buckets):
            edge = self._base + (b << self._shift)
            while i + 1 < n and starts[i + 1] <= edge:
                i += 1
            first[b] = i
        self._first = first

    def find(self, counter: int) -> str | None:
        i = self.position(counter)
        return self._ids[i] if i >= 0 else None

    def position(self, counter: int) -> int:
        """The index (in start order) of the range holding ``counter``, -1 if none: what a
        caller keeps per-range data in a list by (the verifier's batch records)."""
        b = (counter - self._base) >> self._shift
        first = self._first
        if b < 0 or b + 1 >= len(first):
            return -1  # before the first range, or past the last one's end
        i = bisect.bisect_right(self._starts, counter, first[b], first[b + 1] + 1) - 1
        return i if counter < self._ends[i] else -1

    def batch_id(self, position: int) -> str:
        return self._ids[position]

    def __len__(self) -> int:
        return len(self._ids)
