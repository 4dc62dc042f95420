"""Scan events: one per resolved scan, buffered in memory and flushed to the store in batches.

The resolver must not wait on a write per scan, nor lose scans silently: it ``add``\\ s to a
bounded :class:`ScanBuffer` and a background task flushes it. A full buffer drops (and
counts) new scans; a failed flush keeps its scans for the next try and is reported.

>>> from twin.scans import ScanEvent, ScanBuffer
>>> scan = ScanEvent(1735689600000, "09506000134352", "ABC", None, "consumer", "gs1:pip", "sold", None)
>>> buf = ScanBuffer(store=None, max_events=2)
>>> buf.add(scan), buf.add(scan), buf.add(scan)
(True, True, False)
>>> buf.stats()
ScanBufferStats(buffered=2, flushed=0, dropped=1, failed_flushes=0, last_error=None)
"""

from __future__ import annotations

import asyncio
import collections
import logging
import operator
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import msgpack

from twin.errors import CorruptRecord, InvalidInput
from twin.identity import check_gtin

log = logging.getLogger("serialink.twin.scans")

#: Scans per stored chunk: bounds what one history read has to unpack.
SCAN_CHUNK = 5000
#: How far from a chunk's first scan its other scans may be (pack_chunks splits there):
#: readers by time look this far around the period they want.
CHUNK_SLACK_MS = 3_600_000


class ScanEvent(NamedTuple):
    """One scan as the resolver saw it. Field order is the SQLite column order."""

    at_ms: int  # epoch milliseconds, UTC
    gtin: str
    serial: str | None
    lot: str | None
    role: str
    link_type: str | None  # the link type the resolver answered with
    state: str | None  # the unit state it routed on (None: GTIN-level scan)
    context: str | None  # GS1 context / other routing facts, free-form
    #: ISO 3166 alpha-2 country from the trusted CDN header (settings.country_header), or None
    country: str | None = None


class ScanChunk(NamedTuple):
    """One stored chunk of a GTIN's scans, as read back for export and analytics.

    ``at_ms`` is a time near its scans (SQLite: the first scan's; Redis: when the chunk
    was written): readers use it to skip chunks, then filter the scans themselves.
    """

    gtin: str
    at_ms: int
    blob: bytes


_AT = operator.itemgetter(0)
_GTIN = operator.itemgetter(1)
_SERIAL = operator.itemgetter(2)
_COUNTRY = operator.itemgetter(8)
_ROW = operator.itemgetter(0, 2, 3, 4, 5, 6, 7, 8)  # a stored row: the scan without its GTIN (the chunk's)


def check_scans(scans: Sequence[ScanEvent]) -> None:
    """Cheap structural checks (the resolver already parsed the identities): a ScanEvent-
    shaped tuple, integer time, and each distinct GTIN well-formed.

    The resolver's flusher passes here with thousands of scans at a time on the event
    loop: the checks run column by column in C (``map``/``set``), and only a batch that
    fails them is walked scan by scan to name the culprit.
    """
    if not _well_formed(scans):
        _name_the_culprit(scans)
    for g in set(map(_GTIN, scans)):
        check_gtin(g, "scans[].gtin")


def _well_formed(scans: Sequence[ScanEvent]) -> bool:
    if not set(map(type, scans)) <= {ScanEvent}:  # a ScanEvent always has its 9 fields
        return False
    if not set(map(type, map(_AT, scans))) <= {int}:
        return False
    serials = [x for x in map(_SERIAL, scans) if x is not None]
    if not set(map(type, serials)) <= {str} or max(map(len, serials), default=0) > 20:
        return False
    countries = [x for x in map(_COUNTRY, scans) if x is not None]
    return set(map(type, countries)) <= {str} and set(map(len, countries)) <= {2}


def _name_the_culprit(scans: Sequence[ScanEvent]) -> None:
    width = len(ScanEvent._fields)
    for i, s in enumerate(scans):
        if not isinstance(s, tuple) or len(s) != width or not isinstance(s[0], int):
            raise InvalidInput(f"scans[{i}]", "expected a ScanEvent")
        if s[2] is not None and (not isinstance(s[2], str) or len(s[2]) > 20):
            raise InvalidInput(f"scans[{i}].serial", f"expected up to 20 characters, got {s[2]!r:.40}")
        if s[8] is not None and (not isinstance(s[8], str) or len(s[8]) != 2):
            raise InvalidInput(f"scans[{i}].country", f"expected a two-letter country code, got {s[8]!r:.20}")


def pack_chunks(scans: Sequence[ScanEvent]) -> Iterator[tuple[str, int, bytes]]:
    """Group scans by GTIN into chunks of at most SCAN_CHUNK: ``(gtin, first at_ms, blob)``.

    Both backends store scans this way — one record per chunk, not per scan — because a
    per-scan row or stream entry costs more than the 5 µs a scan may take at 200k/s.
    The usual flush (one GTIN, one chunk's worth, a fraction of a second) is packed without
    a Python loop per scan; anything else is split row by row.
    """
    by_gtin: dict[str, list[tuple[Any, ...]]] = {}
    _group(scans, by_gtin)
    for gtin, rows in by_gtin.items():
        for start, end in _bounds(rows):
            yield gtin, rows[start][0], msgpack.packb(rows[start:end])


def _group(scans: Sequence[ScanEvent], by_gtin: dict[str, list[tuple[Any, ...]]]) -> None:
    """Add the scans' stored rows to their GTIN's list (one GTIN: no loop per scan)."""
    gtins = set(map(_GTIN, scans))
    if len(gtins) == 1:
        gtin = gtins.pop()
        rows = by_gtin.get(gtin)
        if rows is None:
            by_gtin[gtin] = list(map(_ROW, scans))
        else:
            rows.extend(map(_ROW, scans))
        return
    for s in scans:
        rows = by_gtin.get(s[1])
        if rows is None:
            rows = by_gtin[s[1]] = []
        rows.append(_ROW(s))


def _bounds(rows: list[tuple[Any, ...]]) -> list[tuple[int, int]]:
    """Where one GTIN's rows are cut into chunks: at most SCAN_CHUNK rows, each within
    CHUNK_SLACK_MS of its chunk's first (readers by time rely on it; a buffer held back by
    a failing store may span longer)."""
    first = rows[0][0]
    times = list(map(_AT, rows))
    if len(rows) <= SCAN_CHUNK and max(times) - first < CHUNK_SLACK_MS and first - min(times) < CHUNK_SLACK_MS:
        return [(0, len(rows))]
    out, start = [], 0
    for i, at in enumerate(times):
        if i - start == SCAN_CHUNK or abs(at - first) >= CHUNK_SLACK_MS:
            out.append((start, i))
            start, first = i, at
    out.append((start, len(rows)))
    return out


#: Scans the flusher checks, groups or packs between two turns of the event loop (~0.2 ms
#: of work): checking and packing a flush of 4,000 scans in one go held the loop ~2 ms,
#: and every scan in flight waited for it (docs/performance.md, the p99).
FLUSH_SLICE = 500
_HEADER = msgpack.Packer()


class PackedScans(list[ScanEvent]):
    """Scans already checked and packed (by :func:`pack_gently`): a store's
    ``append_scans`` writes their chunks as they are. Still the list of the scans."""

    __slots__ = ("chunks",)

    def __init__(self, scans: Sequence[ScanEvent], chunks: list[tuple[str, int, bytes]]) -> None:
        super().__init__(scans)
        self.chunks = chunks


async def pack_gently(scans: Sequence[ScanEvent], step: int = FLUSH_SLICE) -> PackedScans:
    """:func:`check_scans` and :func:`pack_chunks`, ``step`` scans at a time with the event
    loop free in between: the same checks, the same chunks, byte for byte (a msgpack array
    is its header and its items one after another, so a chunk is packed slice by slice)."""
    for i in range(0, len(scans), step):
        check_scans(scans[i:i + step])
        await asyncio.sleep(0)
    by_gtin: dict[str, list[tuple[Any, ...]]] = {}
    for i in range(0, len(scans), step):
        _group(scans[i:i + step], by_gtin)
        await asyncio.sleep(0)
    chunks = []
    for gtin, rows in by_gtin.items():
        for start, end in _bounds(rows):
            parts = [_HEADER.pack_array_header(end - start)]
            for i in range(start, end, step):
                j = min(i + step, end)
                parts.append(msgpack.packb(rows[i:j])[len(_HEADER.pack_array_header(j - i)):])
                await asyncio.sleep(0)
            chunks.append((gtin, rows[start][0], b"".join(parts)))
    return PackedScans(scans, chunks)


def chunks_of(scans: Sequence[ScanEvent]) -> list[tuple[str, int, bytes]]:
    """What a store writes for ``scans``: the chunks the flusher packed, or (scans from
    anyone else) the scans checked and packed now. Raises InvalidInput naming a bad scan."""
    if isinstance(scans, PackedScans):
        return scans.chunks
    check_scans(scans)
    return list(pack_chunks(scans))


def unit_scans(gtin: str, serial: str, blob: bytes, key: str) -> list[ScanEvent]:
    """The scans of one unit in a stored chunk, newest first (chunks written before the
    country field have 7 values a row: the defaults fill the rest)."""
    try:
        rows = msgpack.unpackb(blob)
        return [ScanEvent(r[0], gtin, *r[1:]) for r in reversed(rows) if r[1] == serial]
    except Exception as exc:
        raise CorruptRecord(key, f"not a scan chunk ({type(exc).__name__})") from None


def chunk_scans(gtin: str, blob: bytes, key: str, since_ms: int = 0) -> list[ScanEvent]:
    """Every scan of a stored chunk at or after ``since_ms``, oldest first (for exports)."""
    try:
        rows = msgpack.unpackb(blob)
        return [ScanEvent(r[0], gtin, *r[1:]) for r in rows if r[0] >= since_ms]
    except Exception as exc:
        raise CorruptRecord(key, f"not a scan chunk ({type(exc).__name__})") from None


#: A chunk holds what one flush wrote: scans buffered for seconds (minutes in a store
#: outage). Chunks whose first scan is older than ``since`` by more than this are skipped.
CHUNK_SPAN_MS = 86_400_000


class ScanBufferStats(NamedTuple):
    buffered: int
    flushed: int
    dropped: int
    failed_flushes: int
    last_error: str | None


class ScanBuffer:
    """Bounded in-memory buffer of scans, flushed to ``store.append_scans`` in batches.

    ``on_error(exc, scans_pending)`` is called for every failed flush (default: log an
    error), ``on_flush(scans, seconds)`` for every batch written, ``on_batch(scans)`` with the scans
    of every batch written (a consumer must only queue them: it runs in the flusher). Run :meth:`run` as a background task, or call :meth:`flush` yourself.
    """

    def __init__(
        self,
        store: Any,
        *,
        max_events: int = 200_000,
        batch_size: int = SCAN_CHUNK,
        interval: float = 0.25,
        on_error: Callable[[BaseException, int], None] | None = None,
        on_flush: Callable[[int, float], None] | None = None,
        on_batch: Callable[[Sequence[ScanEvent]], None] | None = None,
    ) -> None:
        self._store = store
        self._max = max_events
        self._batch = batch_size
        self._interval = interval
        self._on_error = on_error
        self._on_flush = on_flush  # (scans written, seconds the write took): flush latency for metrics
        self.on_batch = on_batch  # every batch written, after the write (analytics: clone detection)
        self._buf: collections.deque[ScanEvent] = collections.deque()
        self._flushed = 0
        self._dropped = 0
        self._failed = 0
        self._last_error: str | None = None
        self._wakeup: asyncio.Event | None = None
        # one flush at a time: a caller's flush waits for the flusher's batch in flight, so
        # "flushed" means everything buffered before the call is in the store
        self._flushing = asyncio.Lock()

    def add(self, scan: ScanEvent) -> bool:
        """Buffer one scan; ``False`` (and counted as dropped) when the buffer is full."""
        if len(self._buf) >= self._max:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 10_000 == 0:
                log.warning("scan buffer full (%d): %d scans dropped so far", self._max, self._dropped)
            return False
        self._buf.append(scan)
        if self._wakeup is not None and len(self._buf) >= self._batch:
            self._wakeup.set()
        return True

    def stats(self) -> ScanBufferStats:
        return ScanBufferStats(len(self._buf), self._flushed, self._dropped, self._failed, self._last_error)

    async def flush(self) -> int:
        """Write everything buffered now, batch by batch; returns how many were written.

        On failure the unwritten scans go back to the front of the buffer (if that
        overflows it, the newest are dropped and counted: the oldest are next to be written)
        and the error is reported.
        """
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        written = 0
        while self._buf:
            n = min(self._batch, len(self._buf))
            batch: list[ScanEvent] = [self._buf.popleft() for _ in range(n)]
            started = time.perf_counter()
            try:
                await self._store.append_scans(await pack_gently(batch))
            except Exception as exc:
                self._buf.extendleft(reversed(batch))
                overflow = len(self._buf) - self._max
                for _ in range(max(0, overflow)):
                    self._buf.pop()
                    self._dropped += 1
                self._failed += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                if self._on_error is not None:
                    self._on_error(exc, len(self._buf))
                else:
                    log.error("scan flush failed, %d scans kept for retry: %s", len(self._buf), self._last_error)
                raise
            written += n
            self._flushed += n
            if self.on_batch is not None:
                self.on_batch(batch)
            if self._on_flush is not None:
                self._on_flush(n, time.perf_counter() - started)
        return written

    async def run(self) -> None:
        """Flush every ``interval`` seconds or when a batch is full, until cancelled;
        a last flush is attempted on cancellation."""
        self._wakeup = asyncio.Event()
        try:
            while True:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self._interval)
                except TimeoutError:
                    pass
                self._wakeup.clear()
                try:
                    await self.flush()
                except Exception:
                    await asyncio.sleep(self._interval)  # reported in flush(); back off
        finally:
            self._wakeup = None
            if self._buf:
                try:
                    await asyncio.shield(self.flush())
                except Exception:
                    pass  # reported in flush()
