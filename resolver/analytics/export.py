"""Scan events and twin events as Parquet, partitioned by day: what any engine a brand
runs (DuckDB, Trino, Spark, ClickHouse) can read.

Layout under the output directory::

    scans/day=YYYY-MM-DD/part-<from ms>-<to ms>.parquet    one file per day and period
    events/day=YYYY-MM-DD/part-<from ms>-<to ms>.parquet
    firstscans/part-<from ms>-<to ms>.parquet              per period: each unit scanned, once
    batches.parquet, overlays.parquet                      snapshots, replaced each run
    _periods.json                                          the periods exported so far

Append-only and idempotent per period: a run exports only the part of [since, until) no
earlier run covered (``_periods.json``), into new files; a run that covers nothing new
writes nothing. Files are written under a temporary name and renamed, the ledger last, so
a run that dies is simply repeated (its files get the same names). Within a day file rows
come GTIN by GTIN, so row-group statistics prune by GTIN.

``firstscans`` is derived, for the funnel: per period, every (gtin, lot, serial) scanned in
it with its first scan time there. Counting distinct serials over every raw scan costs a
hash of each of 100M strings per query (~28 s here); the export already holds each GTIN's
scans in memory, so it groups them once (DuckDB over the Arrow blocks, off the main
thread) and the report reads a table the size of the number of units scanned.

No personal data: scans carry no address, token or owner; events keep their type, the
acting *role*, lot, batch, fault codes, jurisdiction and purchase date — never the
principal, the owner id, free-text reasons or places, nor anything of twin.ownership.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ext.scan_columns import decode_chunk
from twin.batch import Batch
from twin.errors import CorruptRecord
from twin.events import Event
from twin.overlays import CounterRange, LotScope, Overlay, SerialRange, SerialScope
from twin.store import UnitStore

DAY_MS = 86_400_000
#: Rows converted to Arrow at a time.
BLOCK_ROWS = 131_072
TS = pa.timestamp("ms", tz="UTC")

SCAN_SCHEMA = pa.schema([
    ("ts", TS), ("gtin", pa.string()), ("serial", pa.string()), ("lot", pa.string()), ("role", pa.string()),
    ("link_type", pa.string()), ("state", pa.string()), ("context", pa.string()), ("country", pa.string()),
    ("moment", pa.string()),  # the scan's moment (issue 14) once scans carry one; null until then
])
EVENT_SCHEMA = pa.schema([
    ("ts", TS), ("gtin", pa.string()), ("serial", pa.string()), ("version", pa.int32()), ("type", pa.string()),
    ("role", pa.string()), ("lot", pa.string()), ("batch_id", pa.string()), ("fault_codes", pa.list_(pa.string())),
    ("jurisdiction", pa.string()), ("purchase_date", pa.date32()),
])
BATCH_SCHEMA = pa.schema([
    ("id", pa.string()), ("gtin", pa.string()), ("profile", pa.string()), ("start", pa.int64()),
    ("count", pa.int64()), ("status", pa.string()), ("kind", pa.string()), ("lot", pa.string()),
    ("expiry", pa.date32()), ("line", pa.string()), ("site", pa.string()), ("created_at", TS),
])
OVERLAY_SCHEMA = pa.schema([
    ("id", pa.string()), ("gtin", pa.string()), ("kind", pa.string()), ("scope", pa.string()),
    ("lot", pa.string()), ("serial", pa.string()), ("first", pa.string()), ("last", pa.string()),
    ("profile", pa.string()), ("counter_first", pa.int64()), ("counter_last", pa.int64()),
    ("reason", pa.string()), ("created_at", TS), ("lifted_at", TS),
])


@dataclass
class ExportReport:
    periods: list[tuple[int, int]] = field(default_factory=list)  # what this run exported
    scans: int = 0
    events: int = 0
    files: int = 0
    seconds: float = 0.0
    scan_seconds: float = 0.0  # of which reading, converting and writing scans
    event_seconds: float = 0.0  # of which twin events (one store read per unit with a record)


# -- the ledger of exported periods ------------------------------------------------------


def load_periods(out: Path) -> list[tuple[int, int]]:
    path = out / "_periods.json"
    if not path.exists():
        return []
    return [(int(a), int(b)) for a, b, *_ in orjson.loads(path.read_bytes())["periods"]]


def uncovered(since: int, until: int, done: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """[since, until) less every period already exported, as sorted disjoint periods.

    >>> uncovered(0, 100, [(10, 20), (50, 200)])
    [(0, 10), (20, 50)]
    """
    gaps = [(since, until)] if since < until else []
    for a, b in sorted(done):
        nxt: list[tuple[int, int]] = []
        for lo, hi in gaps:
            if b <= lo or a >= hi:
                nxt.append((lo, hi))
                continue
            if lo < a:
                nxt.append((lo, a))
            if b < hi:
                nxt.append((b, hi))
        gaps = nxt
    return gaps


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _record_period(out: Path, period: tuple[int, int], scans: int, events: int) -> None:
    path = out / "_periods.json"
    doc = orjson.loads(path.read_bytes()) if path.exists() else {"version": 1, "periods": []}
    doc["periods"].append([period[0], period[1], scans, events])
    doc["periods"].sort()
    _write_atomic(path, orjson.dumps(doc, option=orjson.OPT_INDENT_2))


# -- day-partitioned writers --------------------------------------------------------------


class _DayFiles:
    """One Parquet writer per day touched by a period; renamed into place on close."""

    def __init__(self, root: Path, schema: pa.Schema, period: tuple[int, int]) -> None:
        self.root, self.schema, self.period = root, schema, period
        self.writers: dict[int, tuple[pq.ParquetWriter, Path, Path]] = {}
        # dictionary pages for the repetitive columns only: a serial is nearly unique per row
        self.dictionary = [n for n in schema.names if n not in ("ts", "serial", "version")]
        self.rows = 0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="parquet-writer")
        self._pending: Future[None] | None = None
        self.firsts: _FirstScans | None = None

    def write(self, table: pa.Table) -> None:
        """Write rows (already inside the period), split by UTC day of ``ts``, on the
        writer thread (Parquet encoding releases the GIL: it overlaps the next decode)."""
        if table.num_rows == 0:
            return
        self._submit(self._write, table)
        self.rows += table.num_rows

    def end_gtin(self) -> None:
        """Every row of the current GTIN is written: fold its first scans (on their own
        thread: DuckDB releases the GIL, so grouping overlaps decoding and writing)."""
        if self.firsts is not None:
            self._submit(self.firsts.fold_later)

    def _submit(self, fn: Any, *args: Any) -> None:
        if self._pending is not None:
            self._pending.result()
        self._pending = self._thread.submit(fn, *args)

    def _write(self, table: pa.Table) -> None:
        if self.firsts is not None:
            self.firsts.add(table)
        ms = pc.cast(table.column("ts"), pa.int64())
        lo, hi = pc.min_max(ms).values()
        first, last = lo.as_py() // DAY_MS, hi.as_py() // DAY_MS
        if first == last:
            self._writer(first).write_table(table)
        else:
            days = pc.divide(ms, DAY_MS)
            for day in range(first, last + 1):
                part = table.filter(pc.equal(days, day))
                if part.num_rows:
                    self._writer(day).write_table(part)

    def _writer(self, day: int) -> pq.ParquetWriter:
        entry = self.writers.get(day)
        if entry is None:
            name = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
            directory = self.root / f"day={name}"
            directory.mkdir(parents=True, exist_ok=True)
            lo, hi = max(self.period[0], day * DAY_MS), min(self.period[1], (day + 1) * DAY_MS)
            final = directory / f"part-{lo:013d}-{hi:013d}.parquet"
            tmp = directory / f".{final.name}.tmp"
            writer = pq.ParquetWriter(tmp, self.schema, compression="snappy", use_dictionary=self.dictionary)
            entry = self.writers[day] = (writer, tmp, final)
        return entry[0]

    def close(self) -> int:
        if self._pending is not None:
            self._pending.result()
        self._thread.shutdown()
        for writer, tmp, final in self.writers.values():
            writer.close()
            os.replace(tmp, final)
        return len(self.writers) + (self.firsts.close() if self.firsts is not None else 0)


class _FirstScans:
    """``firstscans/part-<from>-<to>.parquet`` of one period: (gtin, lot, serial, first ts)
    of every scan with a serial and a lot. Rows arrive GTIN by GTIN, so each GTIN is grouped
    once when it ends and no hash table spans more than one GTIN's units."""

    SCHEMA = pa.schema([("gtin", pa.string()), ("lot", pa.string()), ("serial", pa.string()), ("first", TS)])

    def __init__(self, root: Path, period: tuple[int, int]) -> None:
        self.root, self.period = root, period
        self._db = duckdb.connect(":memory:", config={"threads": 1})  # beside the decoder and the writer
        self._rows: list[pa.Table] = []
        self._done: list[pa.Table] = []
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="firstscans")
        self._folding: Future[None] | None = None

    def add(self, table: pa.Table) -> None:
        self._rows.append(table.select(["gtin", "lot", "serial", "ts"]))

    def fold_later(self) -> None:
        """Group the rows added so far on the fold thread (one GTIN's at a time)."""
        if self._folding is not None:
            self._folding.result()
        rows, self._rows = self._rows, []
        self._folding = self._thread.submit(self._fold, rows) if rows else None

    def _fold(self, rows: list[pa.Table]) -> None:
        self._db.register("block", pa.concat_tables(rows))
        # one GTIN per fold (rows come GTIN by GTIN): grouping on it as well would hash it for nothing
        grouped = self._db.sql("SELECT any_value(gtin) AS gtin, lot, serial, min(ts) AS first FROM block "
                               "WHERE serial IS NOT NULL AND lot IS NOT NULL GROUP BY lot, serial "
                               "ORDER BY lot, serial").to_arrow_table()
        self._db.unregister("block")
        self._done.append(grouped.cast(self.SCHEMA))

    def close(self) -> int:
        """Write the period's file (empty when it had no such scan: the period is covered)."""
        self.fold_later()
        if self._folding is not None:
            self._folding.result()
        self._thread.shutdown()
        self._db.close()
        _write_firsts(self.root, self.period, pa.concat_tables(self._done) if self._done else self.SCHEMA.empty_table())
        return 1


def _write_firsts(root: Path, period: tuple[int, int], table: pa.Table) -> None:
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"part-{period[0]:013d}-{period[1]:013d}.parquet"
    tmp = root / f".{final.name}.tmp"
    pq.write_table(table.cast(_FirstScans.SCHEMA), tmp, compression="snappy")
    os.replace(tmp, final)


def _month(ms: int) -> tuple[int, int]:
    """The UTC calendar month holding ``ms``, as [first ms, first ms of the next)."""
    at = datetime.fromtimestamp(ms / 1000, UTC)
    lo = datetime(at.year, at.month, 1, tzinfo=UTC)
    hi = datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)
    return int(lo.timestamp() * 1000), int(hi.timestamp() * 1000)


def roll_up_months(out: Path) -> int:
    """A month's ``firstscans`` file once its periods cover it exactly (daily or hourly exports):
    the funnel over a month then reads one table of the units scanned that month, not one
    per period with a unit repeated in each. Derived from the period files only; written
    once (same name: a repeated run rewrites the same rows). Returns the files written."""
    root = out / "firstscans"
    periods = sorted(load_periods(out))
    files = {(int(a), int(b)): path for path in root.glob("part-*.parquet") for _, a, b in [path.stem.split("-")]}
    written = 0
    for lo, hi in sorted({_month(a) for a, _ in periods}):
        inside = [(a, b) for a, b in periods if a < hi and b > lo]
        if (lo, hi) in files or len(inside) < 2 or inside[0][0] != lo or inside[-1][1] != hi:
            continue
        if any(b != a2 for (_, b), (a2, _) in zip(inside, inside[1:], strict=False)) or any(p not in files for p in inside):
            continue  # a gap, a period crossing the month's end, or one exported before these tables
        sources = ", ".join("'" + str(files[p]).replace("'", "''") + "'" for p in inside)
        with duckdb.connect(":memory:") as db:
            table = db.sql(f"SELECT gtin, lot, serial, min(first) AS first FROM read_parquet([{sources}]) "
                           "GROUP BY ALL ORDER BY gtin, lot, serial").to_arrow_table()
        _write_firsts(root, (lo, hi), table)
        written += 1
    return written


# -- scans --------------------------------------------------------------------------------


def _chunk_arrays(blob: bytes, key: str) -> list[pa.Array]:
    """A chunk's columns (ts as int64 ms, then serial … country), decoded from msgpack
    straight into Arrow buffers (ext.scan_columns: no Python object per row or field)."""
    try:
        n, ts, columns = decode_chunk(blob)
    except ValueError as exc:
        raise CorruptRecord(key, f"not a scan chunk ({exc})") from None
    arrays: list[pa.Array] = [pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(ts)])]
    for offsets, data, valid, nulls in columns:
        arrays.append(pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data),
                                                  pa.py_buffer(valid) if nulls else None, nulls))
    return arrays


def _scan_table(parts: list[tuple[str, list[pa.Array]]], since: int, until: int) -> pa.Table:
    width = len(parts[0][1])
    cols = [pa.concat_arrays([arrays[k] for _, arrays in parts]) for k in range(width)]
    at = cols[0]
    gtins = pa.concat_arrays([pa.repeat(pa.scalar(g, pa.string()), len(arrays[0])) for g, arrays in parts])
    table = pa.Table.from_arrays([at.cast(TS), gtins, *cols[1:], pa.nulls(len(at), pa.string())], schema=SCAN_SCHEMA)
    lo, hi = pc.min_max(at).values()
    if lo.as_py() < since or hi.as_py() >= until:
        table = table.filter(pc.and_(pc.greater_equal(at, since), pc.less(at, until)))
    return table


async def export_scans(store: UnitStore, files: _DayFiles, gtins: Sequence[str]) -> int:
    since, until = files.period
    parts: list[tuple[str, list[pa.Array]]] = []
    pending = 0
    for gtin in gtins:
        async for chunks in store.scan_chunks(gtin, since, until):
            for chunk in chunks:
                arrays = _chunk_arrays(chunk.blob, f"scans/{gtin}@{chunk.at_ms}")
                parts.append((gtin, arrays))
                pending += len(arrays[0])
                if pending >= BLOCK_ROWS:
                    files.write(_scan_table(parts, since, until))
                    parts, pending = [], 0
        if parts:
            files.write(_scan_table(parts, since, until))
            parts, pending = [], 0
        files.end_gtin()
    return files.rows


# -- twin events --------------------------------------------------------------------------


def _event_row(gtin: str, serial: str, version: int, ev: Event, lot: str | None, batch_id: str | None) -> tuple[Any, ...]:
    data = ev.data
    purchase = data.get("purchase_date")
    return (int(ev.at.timestamp() * 1000), gtin, serial, version, ev.type, ev.actor.role,
            data.get("lot") or lot, data.get("batch_id") or batch_id, list(data.get("fault_codes") or []) or None,
            data.get("jurisdiction"), datetime.fromisoformat(purchase).date() if purchase else None)


async def export_events(store: UnitStore, files: _DayFiles) -> int:
    since, until = files.period
    rows: list[tuple[Any, ...]] = []
    async for keys in store.unit_keys(2000):
        units = await store.get_units(keys)
        for (gtin, serial), unit in zip(keys, units, strict=True):
            if unit is None:
                continue
            for i, ev in enumerate(await store.get_events(gtin, serial)):
                ms = int(ev.at.timestamp() * 1000)
                if since <= ms < until:
                    rows.append(_event_row(gtin, serial, i + 1, ev, unit.lot, unit.batch_id))
        if len(rows) >= BLOCK_ROWS:
            files.write(_event_table(rows))
            rows = []
    if rows:
        files.write(_event_table(rows))
    return files.rows


def _event_table(rows: list[tuple[Any, ...]]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    arrays = [pa.array(cols[0], pa.int64()).cast(TS)]
    arrays += [pa.array(c, t) for c, t in zip(cols[1:], EVENT_SCHEMA.types[1:], strict=True)]
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


# -- snapshots ----------------------------------------------------------------------------


def batch_table(batches: Sequence[Batch]) -> pa.Table:
    rows = [{"id": b.id, "gtin": b.gtin, "profile": b.profile, "start": b.start, "count": b.count,
             "status": str(b.status), "kind": str(b.kind), "lot": b.lot, "expiry": b.expiry, "line": b.line,
             "site": b.site, "created_at": b.created_at} for b in batches]
    return pa.Table.from_pylist(rows, schema=BATCH_SCHEMA)


def overlay_table(overlays: Sequence[Overlay]) -> pa.Table:
    rows = []
    for o in overlays:
        s = o.scope
        rows.append({
            "id": o.id, "gtin": o.gtin, "kind": o.kind, "scope": type(s).__name__.removesuffix("Scope").lower()
            if not isinstance(s, (SerialRange, CounterRange)) else ("serials" if isinstance(s, SerialRange) else "counters"),
            "lot": s.lot if isinstance(s, LotScope) else None,
            "serial": s.serial if isinstance(s, SerialScope) else None,
            "first": s.first if isinstance(s, SerialRange) else None,
            "last": s.last if isinstance(s, SerialRange) else None,
            "profile": s.profile if isinstance(s, CounterRange) else None,
            "counter_first": s.first if isinstance(s, CounterRange) else None,
            "counter_last": s.last if isinstance(s, CounterRange) else None,
            "reason": o.reason, "created_at": o.created_at, "lifted_at": o.lifted.at if o.lifted else None})
    return pa.Table.from_pylist(rows, schema=OVERLAY_SCHEMA)


async def write_snapshots(store: UnitStore, out: Path, gtins: Sequence[str]) -> None:
    batches: list[Batch] = []
    overlays: list[Overlay] = []
    for gtin in gtins:
        batches += await store.list_batches(gtin)
        overlays += await store.get_overlays(gtin, include_lifted=True)
    for name, table in (("batches", batch_table(batches)), ("overlays", overlay_table(overlays))):
        tmp = out / f".{name}.parquet.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, out / f"{name}.parquet")


# -- the whole run ------------------------------------------------------------------------


async def export(store: UnitStore, out: Path, since_ms: int | None, until_ms: int) -> ExportReport:
    """Export [since_ms, until_ms) less what is already there (since default: the end of
    the last exported period, or the beginning)."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    done = load_periods(out)
    since = since_ms if since_ms is not None else max((b for _, b in done), default=0)
    report = ExportReport()
    gtins = await store.gtins()
    for period in uncovered(since, until_ms, done):
        t0 = time.perf_counter()
        scans = _DayFiles(out / "scans", SCAN_SCHEMA, period)
        scans.firsts = _FirstScans(out / "firstscans", period)
        n_scans = await export_scans(store, scans, gtins)
        report.files += scans.close()
        t1 = time.perf_counter()
        events = _DayFiles(out / "events", EVENT_SCHEMA, period)
        n_events = await export_events(store, events)
        report.files += events.close()
        report.scan_seconds += t1 - t0
        report.event_seconds += time.perf_counter() - t1
        _record_period(out, period, n_scans, n_events)
        report.periods.append(period)
        report.scans += n_scans
        report.events += n_events
    if report.periods:
        report.files += roll_up_months(out)
    await write_snapshots(store, out, gtins)
    report.seconds = time.perf_counter() - started
    return report
