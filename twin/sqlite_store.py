"""SQLite backend: the embedded default. One file, WAL, one writer thread.

Reads run on the event loop's thread through their own connection: a point lookup in a
warm page cache costs a few microseconds, less than any hop to a thread. Writes go to a
single writer thread (SQLite has one writer anyway) in ``BEGIN IMMEDIATE`` transactions,
so an fsync never blocks the loop and the domain checks run inside the transaction that
writes their result. Several processes may share the file: WAL lets readers run beside
the writer, and ``busy_timeout`` queues writers of different processes.

Durability: ``synchronous=FULL`` (the default) fsyncs the WAL at every commit, so a
write that returned survives a crash of the process *and* of the machine.
``durability=relaxed`` selects ``synchronous=NORMAL``: still safe against a killed
process, but a power loss may roll back the last commits.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import msgpack
import orjson

from twin import codec
from twin.aggregation import (
    AGG_AUDIT,
    BATCH_HISTORY,
    DELETE,
    MAX_DEPTH,
    Aggregate,
    AggregationOp,
    AggregationSummary,
    Child,
    Snapshot,
    StoredAggregation,
    check_lookup,
    check_ops,
    check_sscc,
    chunks,
    decode_event,
    decode_meta,
    encode_meta,
    history_entries,
    keys_to_read,
    naming,
    plan,
)
from twin.batch import (
    MAX_COUNTER,
    Batch,
    BatchKind,
    BatchRange,
    BatchStatus,
    batch_id,
    check_status_move,
    parse_batch_id,
)
from twin.errors import (
    CorruptRecord,
    DuplicateSerial,
    IdempotencyConflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    StoreError,
)
from twin.events import Actor, Event, check_actor, check_event, now_utc
from twin.identity import check_name, check_text
from twin.line_state import (
    LineReport,
    LineState,
    LineSummary,
    StoredReport,
    apply_report,
    check_line_batch,
    check_report_ids,
    decode_report,
    decode_state,
    encode_report,
    encode_state,
    same_report,
)
from twin.links import Anchor, LinkChain, LinkRecord, anchor_from_subject, check_anchor, check_links
from twin.overlays import Lift, Overlay, Scope, check_kind, check_scope
from twin.ownership import PersonalData
from twin.scans import (
    CHUNK_SLACK_MS,
    CHUNK_SPAN_MS,
    ScanChunk,
    ScanEvent,
    chunk_scans,
    chunks_of,
    unit_scans,
)
from twin.store import (
    IDEMPOTENCY_TTL_SECONDS,
    Appended,
    AuditEntry,
    Change,
    ChangeBatch,
    audit_detail,
    check_bucket,
    check_chain_key,
    check_gtin_key,
    check_idempotency_key,
    check_import_serials,
    check_limit,
    check_link_entries,
    check_record_id,
    check_ttl,
    check_unit_key,
    draft_batch,
    event_digest,
    expiry_ms,
    int_param,
    journey_record,
    new_overlay_id,
    next_unit,
    personal_owner,
    redact,
    same_overlay,
    same_request,
    token_expiry_ms,
    url_params,
)
from twin.unit import Unit

#: 2: units packed with their counter live in agg_units, keyed (batch, seq).
#: 3: agg_history (the SSCCs children were unpacked from, for queries) and agg_events by
#: parent; older code would unpack without keeping that history.
SCHEMA_VERSION = 3
#: How much of the file the reading connection maps into memory (address space, not RAM).
READ_MMAP_BYTES = 1 << 30
#: The writer's page cache (KiB): bulk writes into big indexes stay in memory.
WRITE_CACHE_KIB = 65_536
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS units (
    gtin TEXT NOT NULL, serial TEXT NOT NULL, head BLOB NOT NULL,
    PRIMARY KEY (gtin, serial)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    gtin TEXT NOT NULL, serial TEXT NOT NULL, version INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (gtin, serial, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS personal (
    gtin TEXT NOT NULL, serial TEXT NOT NULL, owner TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (gtin, serial, owner)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    gtin TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, body BLOB NOT NULL, created_ms INTEGER NOT NULL,
    PRIMARY KEY (gtin, scope, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    gtin TEXT NOT NULL, profile TEXT NOT NULL, next INTEGER NOT NULL,
    PRIMARY KEY (gtin, profile)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, gtin TEXT NOT NULL, profile TEXT NOT NULL, start INTEGER NOT NULL,
    count INTEGER NOT NULL, body BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batches_range ON batches (gtin, profile, start);
CREATE TABLE IF NOT EXISTS imported (
    gtin TEXT NOT NULL, serial TEXT NOT NULL, batch_id TEXT NOT NULL,
    PRIMARY KEY (gtin, serial)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS overlays (
    gtin TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (gtin, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS links (
    gtin TEXT NOT NULL, subject TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (gtin, subject)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scans (
    seq INTEGER PRIMARY KEY, gtin TEXT NOT NULL, first_at_ms INTEGER NOT NULL, chunk BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS scans_gtin ON scans (gtin, seq);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, gtin TEXT NOT NULL, at_ms INTEGER NOT NULL, role TEXT NOT NULL,
    principal TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, detail BLOB);
CREATE INDEX IF NOT EXISTS audit_gtin ON audit (gtin, seq);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, gtin TEXT NOT NULL, kind TEXT NOT NULL,
    subject TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS gtin_versions (gtin TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (
    gtin TEXT NOT NULL, serial TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL, attempts INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL, PRIMARY KEY (gtin, serial, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, body BLOB NOT NULL, expires_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revoked_tokens (id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS token_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, role TEXT NOT NULL, principal TEXT NOT NULL,
    action TEXT NOT NULL, subject TEXT NOT NULL, detail BLOB);
CREATE TABLE IF NOT EXISTS line_keys (id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS line_state (
    batch_id TEXT PRIMARY KEY, gtin TEXT NOT NULL, body BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS line_reports (
    batch_id TEXT NOT NULL, report_id TEXT NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (batch_id, report_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agg_where (
    child TEXT PRIMARY KEY, parent TEXT NOT NULL, batch TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agg_where_parent ON agg_where (parent);
CREATE INDEX IF NOT EXISTS agg_where_batch ON agg_where (batch, parent);
CREATE TABLE IF NOT EXISTS agg_units (
    batch TEXT NOT NULL, seq INTEGER NOT NULL, child TEXT NOT NULL, parent TEXT NOT NULL,
    PRIMARY KEY (batch, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agg_units_parent ON agg_units (parent);
CREATE TABLE IF NOT EXISTS agg_parents (sscc TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agg_events (
    event_id TEXT PRIMARY KEY, parent TEXT NOT NULL, digest TEXT NOT NULL, body BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agg_events_parent ON agg_events (parent);
CREATE TABLE IF NOT EXISTS agg_history (key TEXT NOT NULL, parent TEXT NOT NULL, PRIMARY KEY (key, parent)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hits (bucket TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_ms INTEGER NOT NULL) WITHOUT ROWID;
"""


def _path_of(url: str) -> str:
    """``sqlite:///rel/path.db`` → ``rel/path.db``; ``sqlite:////abs/path.db`` → ``/abs/path.db``."""
    path = unquote(urlsplit(url).path)
    path = path[1:] if path.startswith("/") else path
    if not path:
        raise InvalidInput("store_url", "sqlite URL needs a file path: sqlite:///path/to/file.db")
    return path


#: Runs one query (the writer's ``execute`` inside a write, the reader's otherwise).
Run = Callable[[str, Sequence[Any]], Iterable[Any]]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _where_now(run: Run, keys: Iterable[str], seqs: Mapping[str, tuple[str, int]]) -> dict[str, str]:
    """child key -> the SSCC it is in now, for the children that are in one: units with a
    counter (``seqs``: key -> (batch, seq)) in agg_units, every key also in agg_where (cases,
    imported serials, rows from before schema 2)."""
    by_batch: dict[str, dict[int, str]] = {}
    for key, (batch, seq) in seqs.items():
        by_batch.setdefault(batch, {})[seq] = key
    found: dict[str, str] = {}
    for batch, keyed in by_batch.items():
        for seqs_in in chunks(sorted(keyed)):
            q = f"SELECT seq, parent FROM agg_units WHERE batch = ? AND seq IN ({_marks(len(seqs_in))})"
            found.update((keyed[seq], parent) for seq, parent in run(q, (batch, *seqs_in)))
    for chunk in chunks(sorted(keys)):
        found.update(run(f"SELECT child, parent FROM agg_where WHERE child IN ({_marks(len(chunk))})", chunk))
    return found


def _holding_batches(run: Run, batch_ids: Iterable[str]) -> set[str]:
    """The SSCCs that hold a unit of one of these batches now (both tables)."""
    found: set[str] = set()
    for chunk in chunks(sorted(set(batch_ids))):
        for table in ("agg_where", "agg_units"):
            q = f"SELECT DISTINCT parent FROM {table} WHERE batch IN ({_marks(len(chunk))})"
            found.update(p for (p,) in run(q, chunk))
    return found


class SQLiteStore:
    """The SQLite implementation of twin.store.UnitStore."""

    def __init__(self, url: str, path: str, synchronous: str, feed_maxlen: int) -> None:
        self.url = redact(url)
        self.path = path
        self.durability = "always" if synchronous == "FULL" else "relaxed"
        self._synchronous = synchronous
        self._feed_maxlen = feed_maxlen
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="twin-sqlite-writer")
        self._w: sqlite3.Connection | None = None
        self._r: sqlite3.Connection | None = None
        self._closed = False

    # -- opening and closing ------------------------------------------------------------

    async def check_durable(self) -> None:
        """Always durable enough: ``synchronous=FULL``, or ``NORMAL`` that the URL asked for."""

    @classmethod
    async def open(cls, url: str) -> SQLiteStore:
        params = url_params(url)
        durability = params.get("durability", "strict")
        if durability not in ("strict", "relaxed"):
            raise InvalidInput("store_url.durability", f"expected strict or relaxed, got {durability!r}")
        feed_maxlen = int_param(params, "feed_maxlen", 100_000)
        path = _path_of(url)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self = cls(url, path, "FULL" if durability == "strict" else "NORMAL", feed_maxlen)
        try:
            await self._in_writer(self._open_writer)
            self._r = self._connect()
            # reads map the file instead of copying each page through read(): a full scan of
            # the scan chunks (the analytics export) reads ~10x faster on a warm page cache
            self._r.execute(f"PRAGMA mmap_size = {READ_MMAP_BYTES}")
        except sqlite3.Error as exc:
            self._executor.shutdown(wait=False)
            raise StoreError(f"{path}: cannot open the store: {exc}") from exc
        return self

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def _open_writer(self) -> None:
        conn = self._connect()
        # bulk writes (aggregation, line reports) touch index pages all over a big table:
        # the writer keeps more of them than SQLite's default 2 MiB
        conn.execute(f"PRAGMA cache_size = -{WRITE_CACHE_KIB}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"{self.path}: cannot switch to WAL (journal_mode={mode})")
        conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: written by a newer Serialink (schema {row[0]} > {SCHEMA_VERSION})")
            elif int(row[0]) < SCHEMA_VERSION:  # the schema above added what is new; older code must not open it now
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))
            cutoff = (codec.to_ms(now_utc()) - IDEMPOTENCY_TTL_SECONDS * 1000)
            conn.execute("DELETE FROM idempotency WHERE scope != 'alloc' AND created_ms < ?", (cutoff,))
            now_ms = codec.to_ms(now_utc())  # journeys' records past their time
            for table in ("pending", "tokens", "revoked_tokens", "hits"):
                conn.execute(f"DELETE FROM {table} WHERE expires_ms <= ?", (now_ms,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            conn.close()
            raise
        self._w = conn

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._r is not None:
            self._r.close()
        if self._w is not None:
            await self._in_writer(self._w.close)
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> SQLiteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing -------------------------------------------------------------------------

    async def _in_writer(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one IMMEDIATE transaction on the writer thread."""
        if self._closed:
            raise StoreError("store is closed")
        return await self._in_writer(self._transaction, fn, args)

    def _transaction(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._w
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot begin a write: {exc}") from exc
        try:
            result = fn(conn, *args)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.path}: write failed: {exc}") from exc
            raise
        return result

    def _read(self, sql: str, args: Sequence[Any]) -> list[Any]:
        assert self._r is not None, "store is closed"
        try:
            return self._r.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: read failed: {exc}") from exc

    def _audit(self, c: sqlite3.Connection, gtin: str, actor: Actor, action: str, subject: str, detail: Mapping[str, Any] | None = None) -> None:
        c.execute(
            "INSERT INTO audit (gtin, at_ms, role, principal, action, subject, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (gtin, codec.to_ms(now_utc()), actor.role, actor.principal, action, subject, msgpack.packb(dict(detail or {}))),
        )

    def _changed(self, c: sqlite3.Connection, gtin: str, kind: str, subject: str) -> int:
        c.execute(
            "INSERT INTO gtin_versions VALUES (?, 1) ON CONFLICT (gtin) DO UPDATE SET version = version + 1", (gtin,)
        )
        version: int = c.execute("SELECT version FROM gtin_versions WHERE gtin = ?", (gtin,)).fetchone()[0]
        seq = c.execute(
            "INSERT INTO changes (gtin, kind, subject, version) VALUES (?, ?, ?, ?)", (gtin, kind, subject, version)
        ).lastrowid
        assert seq is not None, "an INSERT into a rowid table sets lastrowid"
        if seq % 100 == 0 and seq > self._feed_maxlen:
            through = seq - self._feed_maxlen
            c.execute("DELETE FROM changes WHERE seq <= ?", (through,))
            c.execute("INSERT OR REPLACE INTO meta VALUES ('feed_trimmed_through', ?)", (str(through),))
        return version

    # -- units --------------------------------------------------------------------------

    def _unit_row(self, gtin: str, serial: str) -> Unit | None:
        rows = self._read("SELECT head FROM units WHERE gtin = ? AND serial = ?", (gtin, serial))
        return codec.decode_unit(rows[0][0], gtin, serial, f"units/{gtin}/{serial}") if rows else None

    async def get_unit(self, gtin: str, serial: str) -> Unit | None:
        check_unit_key(gtin, serial)
        return self._unit_row(gtin, serial)

    async def get_units(self, keys: Sequence[tuple[str, str]]) -> list[Unit | None]:
        serials: dict[str, set[str]] = {}
        for gtin, serial in keys:
            check_unit_key(gtin, serial)
            serials.setdefault(gtin, set()).add(serial)
        heads: dict[tuple[str, str], bytes] = {}
        for gtin, wanted in serials.items():  # one query per 500 serials (a pack names thousands)
            for chunk in chunks(sorted(wanted)):
                q = f"SELECT serial, head FROM units WHERE gtin = ? AND serial IN ({','.join('?' * len(chunk))})"
                heads.update(((gtin, serial), head) for serial, head in self._read(q, (gtin, *chunk)))
        return [codec.decode_unit(heads[(g, s)], g, s, f"units/{g}/{s}") if (g, s) in heads else None for g, s in keys]

    async def unit_keys(self, chunk: int = 10_000) -> AsyncIterator[list[tuple[str, str]]]:
        assert self._r is not None, "store is closed"
        cursor = self._r.execute("SELECT gtin, serial FROM units")
        while True:
            try:
                rows = cursor.fetchmany(chunk)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: read failed: {exc}") from exc
            if not rows:
                return
            yield [(g, s) for g, s in rows]

    async def get_events(self, gtin: str, serial: str) -> list[Event]:
        check_unit_key(gtin, serial)
        rows = self._read("SELECT version, body FROM events WHERE gtin = ? AND serial = ? ORDER BY version", (gtin, serial))
        return [codec.decode_event(body, f"events/{gtin}/{serial}/{v}") for v, body in rows]

    async def get_dpp(self, gtin: str, serial: str) -> Mapping[str, Any] | None:
        unit = await self.get_unit(gtin, serial)
        if unit is None or unit.dpp_version is None:
            return None
        rows = self._read(
            "SELECT body FROM events WHERE gtin = ? AND serial = ? AND version = ?", (gtin, serial, unit.dpp_version)
        )
        if not rows:
            raise CorruptRecord(f"events/{gtin}/{serial}/{unit.dpp_version}", "the DPP event is missing")
        return codec.decode_event(rows[0][0], f"events/{gtin}/{serial}/{unit.dpp_version}").data

    async def append_event(
        self,
        gtin: str,
        serial: str,
        event: Event,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        origin: Unit | None = None,
        personal: PersonalData | None = None,
        audit: Mapping[str, Any] | None = None,
    ) -> Appended:
        check_unit_key(gtin, serial)
        event = check_event(event)
        idem = check_idempotency_key(idempotency_key)
        owner = personal_owner(event, personal)
        digest = event_digest(event) if idem else ""
        extra = audit_detail({}, audit)
        return await self._write(self._append, gtin, serial, event, expected_version, idem, digest, origin, owner, personal,
                                 extra)

    def _append(
        self,
        c: sqlite3.Connection,
        gtin: str,
        serial: str,
        event: Event,
        expected: int | None,
        idem: str | None,
        digest: str,
        origin: Unit | None,
        owner: str | None,
        personal: PersonalData | None,
        extra: Mapping[str, Any] | None = None,
    ) -> Appended:
        scope = f"unit {serial}"
        if idem is not None:
            row = c.execute(
                "SELECT body FROM idempotency WHERE gtin = ? AND scope = ? AND key = ?", (gtin, scope, idem)
            ).fetchone()
            if row is not None:
                seen_digest, version = codec.decode_record(row[0], f"idempotency/{gtin}/{serial}/{idem}", 2)
                if seen_digest != digest:
                    raise IdempotencyConflict(f"idempotency_key {idem!r} was used for a different event on {gtin}/{serial}")
                head = c.execute("SELECT head FROM units WHERE gtin = ? AND serial = ?", (gtin, serial)).fetchone()
                unit = codec.decode_unit(head[0], gtin, serial, f"units/{gtin}/{serial}")
                return Appended(version, unit, True)
        row = c.execute("SELECT head FROM units WHERE gtin = ? AND serial = ?", (gtin, serial)).fetchone()
        current = None if row is None else codec.decode_unit(row[0], gtin, serial, f"units/{gtin}/{serial}")
        unit = next_unit(current, origin, event, gtin, serial, expected)
        c.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (gtin, serial, unit.version, codec.encode_event(event)))
        c.execute("INSERT OR REPLACE INTO units VALUES (?, ?, ?)", (gtin, serial, codec.encode_unit(unit)))
        if idem is not None:
            c.execute(
                "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?)",
                (gtin, scope, idem, codec.encode_record(digest, unit.version), codec.to_ms(now_utc())),
            )
        if owner is not None and personal is not None:
            c.execute("INSERT OR REPLACE INTO personal VALUES (?, ?, ?, ?)", (gtin, serial, owner, codec.encode_personal(personal)))
        self._audit(c, gtin, event.actor, f"event:{event.type}", serial, audit_detail({"version": unit.version}, extra))
        self._changed(c, gtin, "unit", serial)
        return Appended(unit.version, unit)

    async def get_personal_data(self, gtin: str, serial: str) -> dict[str, PersonalData]:
        check_unit_key(gtin, serial)
        rows = self._read("SELECT owner, body FROM personal WHERE gtin = ? AND serial = ?", (gtin, serial))
        return {o: codec.decode_personal(b, f"personal/{gtin}/{serial}/{o}") for o, b in rows}

    async def erase_personal_data(self, gtin: str, serial: str, owner: str, actor: Actor, reason: str) -> bool:
        check_unit_key(gtin, serial)
        check_actor(actor, "actor")
        check_text(reason, "reason", max_len=1000)

        def erase(c: sqlite3.Connection) -> bool:
            n = c.execute("DELETE FROM personal WHERE gtin = ? AND serial = ? AND owner = ?", (gtin, serial, owner)).rowcount
            if n:
                self._audit(c, gtin, actor, "personal:erase", serial, {"owner": owner, "reason": reason})
                self._changed(c, gtin, "personal", serial)
            return bool(n)

        return await self._write(erase)

    # -- batches ----------------------------------------------------------------------

    def _batch_row(self, row: Sequence[Any]) -> Batch:
        return codec.decode_batch(row[1], row[0], f"batches/{row[0]}")

    async def allocate_range(
        self, gtin: str, profile: str, count: int, request_id: str, params_digest: str, *, actor: Actor,
        lot: str | None = None, expiry: date | None = None, line: str | None = None, site: str | None = None,
    ) -> Batch:
        draft = draft_batch(gtin, profile, count, request_id, params_digest, actor, BatchKind.MINTED, now_utc(), lot, expiry, line, site)
        return await self._write(self._allocate, draft, None)

    async def import_serials(
        self, gtin: str, profile: str, serials: Sequence[str], request_id: str, params_digest: str, *, actor: Actor,
        lot: str | None = None, expiry: date | None = None, line: str | None = None, site: str | None = None,
    ) -> Batch:
        serials = check_import_serials(serials)
        draft = draft_batch(gtin, profile, len(serials), request_id, params_digest, actor, BatchKind.IMPORTED, now_utc(), lot, expiry, line, site)
        return await self._write(self._allocate, draft, serials)

    def _allocate(self, c: sqlite3.Connection, draft: Batch, serials: list[str] | None) -> Batch:
        g, rid = draft.gtin, draft.request_id
        row = c.execute("SELECT body FROM idempotency WHERE gtin = ? AND scope = 'alloc' AND key = ?", (g, rid)).fetchone()
        if row is not None:
            existing = c.execute("SELECT id, body FROM batches WHERE id = ?", (row[0].decode(),)).fetchone()
            return same_request(self._batch_row(existing), draft.params_digest)
        row = c.execute("SELECT next FROM counters WHERE gtin = ? AND profile = ?", (g, draft.profile)).fetchone()
        start = 0 if row is None else row[0]
        if start + draft.count > MAX_COUNTER:
            raise InvalidInput("count", f"the counter of {g}/{draft.profile} would pass {MAX_COUNTER}")
        batch = replace(draft, id=batch_id(g, draft.profile, start), start=start)
        if serials is not None:
            for i in range(0, len(serials), 500):
                chunk = serials[i : i + 500]
                taken = c.execute(
                    f"SELECT serial, batch_id FROM imported WHERE gtin = ? AND serial IN ({','.join('?' * len(chunk))})",
                    (g, *chunk),
                ).fetchall()
                if taken:
                    raise DuplicateSerial("serials", f"{taken[0][0]!r} is already imported in batch {taken[0][1]}")
            c.executemany("INSERT INTO imported VALUES (?, ?, ?)", ((g, s, batch.id) for s in serials))
        c.execute("INSERT OR REPLACE INTO counters VALUES (?, ?, ?)", (g, draft.profile, start + draft.count))
        c.execute(
            "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?)",
            (batch.id, g, batch.profile, start, batch.count, codec.encode_batch(batch)),
        )
        c.execute("INSERT INTO idempotency VALUES (?, 'alloc', ?, ?, ?)", (g, rid, batch.id.encode(), codec.to_ms(batch.created_at)))
        detail = {"start": start, "count": batch.count, "request_id": rid, "profile": batch.profile}
        self._audit(c, g, batch.created_by, "allocate" if serials is None else "import", batch.id, detail)
        self._changed(c, g, "batch", batch.id)
        return batch

    async def find_imported(self, gtin: str, serial: str) -> str | None:
        check_unit_key(gtin, serial)
        rows = self._read("SELECT batch_id FROM imported WHERE gtin = ? AND serial = ?", (gtin, serial))
        return rows[0][0] if rows else None

    async def get_batch(self, batch_id: str) -> Batch | None:
        parse_batch_id(batch_id)
        rows = self._read("SELECT id, body FROM batches WHERE id = ?", (batch_id,))
        return self._batch_row(rows[0]) if rows else None

    async def list_batches(self, gtin: str, profile: str | None = None) -> list[Batch]:
        check_gtin_key(gtin)
        if profile is None:
            rows = self._read("SELECT id, body FROM batches WHERE gtin = ? ORDER BY profile, start", (gtin,))
        else:
            check_name(profile, "profile")
            rows = self._read("SELECT id, body FROM batches WHERE gtin = ? AND profile = ? ORDER BY start", (gtin, profile))
        return [self._batch_row(r) for r in rows]

    async def batch_ranges(self, gtin: str, profile: str) -> list[BatchRange]:
        check_gtin_key(gtin)
        check_name(profile, "profile")
        rows = self._read("SELECT start, count, id FROM batches WHERE gtin = ? AND profile = ? ORDER BY start", (gtin, profile))
        return [BatchRange(*r) for r in rows]

    async def find_batch_by_counter(self, gtin: str, profile: str, counter: int) -> Batch | None:
        check_gtin_key(gtin)
        check_name(profile, "profile")
        if not isinstance(counter, int) or counter < 0 or counter > MAX_COUNTER:
            raise InvalidInput("counter", f"expected 0..{MAX_COUNTER}, got {counter!r}")
        rows = self._read(
            "SELECT id, body, start, count FROM batches WHERE gtin = ? AND profile = ? AND start <= ? ORDER BY start DESC LIMIT 1",
            (gtin, profile, counter),
        )
        if not rows or counter >= rows[0][2] + rows[0][3]:
            return None
        return self._batch_row(rows[0])

    async def set_batch_status(self, batch_id: str, status: BatchStatus, actor: Actor, reason: str) -> Batch:
        gtin = parse_batch_id(batch_id)[0]
        status = BatchStatus(status)
        check_actor(actor, "actor")
        check_text(reason, "reason", max_len=1000)

        def update(c: sqlite3.Connection) -> Batch:
            row = c.execute("SELECT id, body FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if row is None:
                raise NotFound(f"no batch {batch_id}")
            batch = self._batch_row(row)
            check_status_move(batch, status)
            new = replace(batch, status=status, updated_at=now_utc(), status_reason=reason)
            c.execute("UPDATE batches SET body = ? WHERE id = ?", (codec.encode_batch(new), batch_id))
            self._audit(c, gtin, actor, f"batch:{status}", batch_id, {"reason": reason})
            self._changed(c, gtin, "batch", batch_id)
            return new

        return await self._write(update)

    # -- line state ---------------------------------------------------------------------

    async def get_line_state(self, batch_id: str) -> LineState | None:
        parse_batch_id(batch_id)
        rows = self._read("SELECT body FROM line_state WHERE batch_id = ?", (batch_id,))
        return decode_state(rows[0][0], f"line_state/{batch_id}") if rows else None

    async def apply_line_reports(self, batch_id: str, reports: Sequence[LineReport], actor: Actor) -> list[LineSummary]:
        gtin = parse_batch_id(batch_id)[0]
        check_actor(actor, "actor")
        check_report_ids(reports)
        return await self._write(self._line_reports, gtin, batch_id, reports, actor)

    def _line_reports(self, c: sqlite3.Connection, gtin: str, batch_id: str, reports: Sequence[LineReport],
                      actor: Actor) -> list[LineSummary]:
        out: list[LineSummary] = []
        state: LineState | None = None
        for report in reports:
            key = f"line_reports/{batch_id}/{report.report_id}"
            row = c.execute("SELECT body FROM line_reports WHERE batch_id = ? AND report_id = ?",
                            (batch_id, report.report_id)).fetchone()
            if row is not None:
                out.append(same_report(decode_report(row[0], key), report))
                continue
            if state is None:
                brow = c.execute("SELECT id, body FROM batches WHERE id = ?", (batch_id,)).fetchone()
                batch = check_line_batch(None if brow is None else self._batch_row(brow), batch_id)
                srow = c.execute("SELECT body FROM line_state WHERE batch_id = ?", (batch_id,)).fetchone()
                state = LineState.empty(batch.count) if srow is None else decode_state(srow[0], f"line_state/{batch_id}")
            state, summary, affected = apply_report(state, report)
            c.execute("INSERT INTO line_reports VALUES (?, ?, ?, ?)", (batch_id, report.report_id, state.version,
                                                                     encode_report(state.version, report, summary, affected, actor)))
            self._audit(c, gtin, actor, f"line:{report.step}", batch_id, dict(summary._asdict()))
            out.append(summary)
        if state is not None:
            c.execute("INSERT OR REPLACE INTO line_state VALUES (?, ?, ?)", (batch_id, gtin, encode_state(state)))
            self._changed(c, gtin, "line", batch_id)
        return out

    async def line_reports(self, batch_id: str) -> list[StoredReport]:
        parse_batch_id(batch_id)
        rows = self._read("SELECT report_id, body FROM line_reports WHERE batch_id = ? ORDER BY seq", (batch_id,))
        return [decode_report(body, f"line_reports/{batch_id}/{rid}") for rid, body in rows]

    # -- aggregation (twin.aggregation) -----------------------------------------------------

    async def apply_aggregations(self, ops: Sequence[AggregationOp], actor: Actor) -> list[AggregationSummary]:
        check_actor(actor, "actor")
        check_ops(ops)
        return await self._write(self._aggregate_and_remember, ops, actor)

    def _aggregate_and_remember(self, c: sqlite3.Connection, ops: Sequence[AggregationOp],
                                actor: Actor) -> list[AggregationSummary]:
        summaries = self._aggregate(c, ops, actor)
        self._remember_unpacks(c, summaries)
        return summaries

    def _remember_unpacks(self, c: sqlite3.Connection, summaries: Sequence[AggregationSummary]) -> None:
        """The parents the write's unpacks emptied children out of (``agg_history``, see
        twin.aggregation.history_entries), in the write's transaction: queries find a
        child's events after it left. Packs write nothing here."""
        ids = sorted({s.event_id for s in summaries if s.action == DELETE and not s.replayed})
        events = []
        for chunk in chunks(ids):
            q = f"SELECT body FROM agg_events WHERE event_id IN ({','.join('?' * len(chunk))})"
            events += [decode_event(b) for (b,) in c.execute(q, chunk)]
        if events:
            c.executemany("INSERT OR IGNORE INTO agg_history VALUES (?, ?)", sorted(history_entries(events)))

    def _aggregate(self, c: sqlite3.Connection, ops: Sequence[AggregationOp], actor: Actor) -> list[AggregationSummary]:
        # Units that come with their counter are kept in agg_units, keyed (batch, seq): a
        # line packs in print order, so its writes append. Cases, imported serials and
        # rows written before schema 2 are in agg_where, keyed by the child.
        where_keys, parents, event_ids, listed = keys_to_read(ops)
        seqs: dict[str, tuple[str, int]] = {ch.key: (ch.batch, ch.seq) for op in ops for ch in op.children
                                            if ch.seq is not None and ch.batch}
        snap = Snapshot()
        snap.where = dict.fromkeys(where_keys)
        snap.where.update(_where_now(c.execute, where_keys, seqs))
        for parent in parents:  # their ancestors, for the nesting check
            at = snap.where.get(parent)
            for _ in range(MAX_DEPTH):
                if at is None or at in snap.where:
                    break
                row = c.execute("SELECT parent FROM agg_where WHERE child = ?", (at,)).fetchone()
                snap.where[at] = None if row is None else row[0]
                at = snap.where[at]
            row = c.execute("SELECT body FROM agg_parents WHERE sscc = ?", (parent,)).fetchone()
            snap.meta[parent] = None if row is None else decode_meta(row[0])
        for eid in event_ids:
            row = c.execute("SELECT digest, body FROM agg_events WHERE event_id = ?", (eid,)).fetchone()
            snap.events[eid] = None if row is None else (row[0], row[1])
        for parent in listed:
            held = dict(c.execute("SELECT child, batch FROM agg_where WHERE parent = ?", (parent,)))
            for child, batch, seq in c.execute("SELECT child, batch, seq FROM agg_units WHERE parent = ?", (parent,)):
                held[child] = batch
                seqs[child] = (batch, seq)
            snap.contents[parent] = held
        changes = plan(ops, snap, (actor.role, actor.principal))
        for parent, changed in changes.contents.items():
            removed = [k for k, b in changed.items() if b is None]
            if removed:
                c.executemany("DELETE FROM agg_units WHERE batch = ? AND seq = ?", [seqs[k] for k in removed if k in seqs])
                c.executemany("DELETE FROM agg_where WHERE child = ?", [(k,) for k in removed])
            added = [(k, b) for k, b in changed.items() if b is not None]
            units = sorted((*seqs[k], k, parent) for k, _ in added if k in seqs)
            if units:
                c.executemany("INSERT OR REPLACE INTO agg_units VALUES (?, ?, ?, ?)", units)
            others = sorted((k, parent, b) for k, b in added if k not in seqs)
            if others:
                c.executemany("INSERT OR REPLACE INTO agg_where VALUES (?, ?, ?)", others)
        for sscc, meta in changes.meta.items():
            c.execute("INSERT OR REPLACE INTO agg_parents VALUES (?, ?)", (sscc, encode_meta(meta)))
        c.executemany("INSERT INTO agg_events VALUES (?, ?, ?, ?)",
                      [(eid, changes.event_parents[eid], digest, body) for eid, (digest, body) in changes.events.items()])
        for s in changes.summaries:
            if not s.replayed:
                self._audit(c, AGG_AUDIT, actor, f"aggregation:{s.action.lower()}", s.parent, s._asdict())
        return changes.summaries

    async def get_aggregation(self, sscc: str) -> Aggregate | None:
        check_sscc(sscc)
        rows = self._read("SELECT body FROM agg_parents WHERE sscc = ?", (sscc,))
        if not rows:
            return None
        held = [Child(k, b) for k, b in self._read("SELECT child, batch FROM agg_where WHERE parent = ?", (sscc,))]
        held += [Child(k, b, q) for k, b, q in self._read("SELECT child, batch, seq FROM agg_units WHERE parent = ?", (sscc,))]
        up = self._read("SELECT parent FROM agg_where WHERE child = ?", (sscc,))
        return Aggregate(sscc, decode_meta(rows[0][0]), tuple(sorted(held, key=lambda ch: ch.key)),
                         up[0][0] if up else None)

    async def aggregation_parents(self, batch_ids: Sequence[str]) -> list[str]:
        found = _holding_batches(self._read, batch_ids)
        frontier = set(found)
        for _ in range(MAX_DEPTH):
            up: set[str] = set()
            for chunk in chunks(sorted(frontier)):
                q = f"SELECT parent FROM agg_where WHERE child IN ({','.join('?' * len(chunk))})"
                up.update(p for (p,) in self._read(q, chunk))
            frontier = up - found
            if not frontier:
                break
            found |= frontier
        return sorted(found)

    async def aggregation_events(self, sscc: str) -> list[StoredAggregation]:
        check_sscc(sscc)
        rows = self._read("SELECT body FROM agg_events WHERE parent = ?", (sscc,))
        return sorted((decode_event(b) for (b,) in rows), key=lambda e: (e.at_ms, e.event_id))

    async def aggregation_events_of(self, children: Sequence[Child] = (),
                                    batches: Sequence[str] = ()) -> list[StoredAggregation]:
        wanted, of = check_lookup(children, batches)
        keys = [c.key for c in wanted]
        counted = {c.key: (c.batch, c.seq) for c in wanted if c.seq is not None and c.batch}
        parents = set(_where_now(self._read, keys, counted).values())  # where the children are now
        parents |= _holding_batches(self._read, of)
        for chunk in chunks(keys + [BATCH_HISTORY + b for b in of]):  # where they were
            q = f"SELECT parent FROM agg_history WHERE key IN ({','.join('?' * len(chunk))})"
            parents.update(p for (p,) in self._read(q, chunk))
        events = []
        for chunk in chunks(sorted(parents)):
            q = f"SELECT body FROM agg_events WHERE parent IN ({','.join('?' * len(chunk))})"
            events += [decode_event(b) for (b,) in self._read(q, chunk)]
        return naming(events, keys, of)

    # -- overlays -------------------------------------------------------------------------

    async def put_overlay(
        self, gtin: str, kind: str, scope: Scope, actor: Actor, reason: str, *, idempotency_key: str | None = None,
        audit: Mapping[str, Any] | None = None,
    ) -> Overlay:
        check_gtin_key(gtin)
        now = now_utc()
        overlay = Overlay(
            new_overlay_id(now), gtin, check_kind(kind), check_scope(scope), check_text(reason, "reason", max_len=1000),
            check_actor(actor, "actor"), now,
        )
        idem = check_idempotency_key(idempotency_key)
        detail = audit_detail({"kind": kind, "reason": reason}, audit)

        def put(c: sqlite3.Connection) -> Overlay:
            if idem is not None:
                row = c.execute(
                    "SELECT body FROM idempotency WHERE gtin = ? AND scope = 'overlay' AND key = ?", (gtin, idem)
                ).fetchone()
                if row is not None:
                    oid = row[0].decode()
                    found = c.execute("SELECT body FROM overlays WHERE gtin = ? AND id = ?", (gtin, oid)).fetchone()
                    if found is None:
                        raise CorruptRecord(f"idempotency/{gtin}/overlay/{idem}", "points to a missing overlay")
                    existing = codec.decode_overlay(found[0], f"overlays/{gtin}/{oid}")
                    return same_overlay(existing, overlay.kind, overlay.scope, overlay.reason)
                c.execute("INSERT INTO idempotency VALUES (?, 'overlay', ?, ?, ?)",
                          (gtin, idem, overlay.id.encode(), codec.to_ms(now)))
            c.execute("INSERT INTO overlays VALUES (?, ?, ?)", (gtin, overlay.id, codec.encode_overlay(overlay)))
            self._audit(c, gtin, actor, "overlay:put", overlay.id, detail)
            self._changed(c, gtin, "overlay", overlay.id)
            return overlay

        return await self._write(put)

    async def lift_overlay(
        self, gtin: str, overlay_id: str, actor: Actor, reason: str, *, audit: Mapping[str, Any] | None = None
    ) -> Overlay:
        check_gtin_key(gtin)
        check_actor(actor, "actor")
        check_text(reason, "reason", max_len=1000)
        detail = audit_detail({"reason": reason}, audit)

        def lift(c: sqlite3.Connection) -> Overlay:
            row = c.execute("SELECT body FROM overlays WHERE gtin = ? AND id = ?", (gtin, overlay_id)).fetchone()
            if row is None:
                raise NotFound(f"no overlay {overlay_id} on {gtin}")
            overlay = codec.decode_overlay(row[0], f"overlays/{gtin}/{overlay_id}")
            if overlay.lifted is not None:
                raise IllegalTransition("overlay:lift", None, f"overlay {overlay_id} was lifted at {overlay.lifted.at.isoformat()}")
            new = replace(overlay, lifted=Lift(now_utc(), actor, reason))
            c.execute("UPDATE overlays SET body = ? WHERE gtin = ? AND id = ?", (codec.encode_overlay(new), gtin, overlay_id))
            self._audit(c, gtin, actor, "overlay:lift", overlay_id, detail)
            self._changed(c, gtin, "overlay", overlay_id)
            return new

        return await self._write(lift)

    async def get_overlays(self, gtin: str, *, include_lifted: bool = False) -> tuple[Overlay, ...]:
        check_gtin_key(gtin)
        rows = self._read("SELECT id, body FROM overlays WHERE gtin = ? ORDER BY id", (gtin,))
        overlays = (codec.decode_overlay(b, f"overlays/{gtin}/{i}") for i, b in rows)
        return tuple(o for o in overlays if include_lifted or o.lifted is None)

    # -- links --------------------------------------------------------------------------

    async def put_links(self, anchor: Anchor, links: Sequence[LinkRecord], actor: Actor) -> int:
        links = check_links(anchor, links)
        check_actor(actor, "actor")
        g, subject = anchor.gtin, anchor.subject

        def put(c: sqlite3.Connection) -> int:
            if links:
                c.execute("INSERT OR REPLACE INTO links VALUES (?, ?, ?)", (g, subject, codec.encode_links(links)))
            else:
                c.execute("DELETE FROM links WHERE gtin = ? AND subject = ?", (g, subject))
            self._audit(c, g, actor, "links:put" if links else "links:delete", subject, {"count": len(links)})
            return self._changed(c, g, "links", subject)

        return await self._write(put)

    async def put_links_many(self, entries: Sequence[tuple[Anchor, Sequence[LinkRecord]]], actor: Actor) -> int:
        by_gtin = check_link_entries(entries)
        check_actor(actor, "actor")

        def put(c: sqlite3.Connection) -> int:
            for g, items in by_gtin.items():
                c.executemany(
                    "INSERT OR REPLACE INTO links VALUES (?, ?, ?)",
                    ((g, subject, codec.encode_links(links)) for subject, links in items if links),
                )
                c.executemany("DELETE FROM links WHERE gtin = ? AND subject = ?", ((g, s) for s, links in items if not links))
                self._audit(c, g, actor, "links:put-many", "*", {"count": len(items)})
                self._changed(c, g, "links", "*")
            return sum(len(items) for items in by_gtin.values())

        return await self._write(put)

    async def get_links(self, anchor: Anchor) -> tuple[LinkRecord, ...]:
        check_anchor(anchor)
        rows = self._read("SELECT body FROM links WHERE gtin = ? AND subject = ?", (anchor.gtin, anchor.subject))
        return codec.decode_links(rows[0][0], f"links/{anchor.gtin}/{anchor.subject}") if rows else ()

    async def get_link_chain(self, gtin: str, lot: str | None, serial: str | None) -> LinkChain:
        check_chain_key(gtin, lot, serial)
        subjects = [f"ser:{serial}" if serial else "-", f"lot:{lot}" if lot else "-", ""]
        rows = dict(self._read("SELECT subject, body FROM links WHERE gtin = ? AND subject IN (?, ?, ?)", (gtin, *subjects)))
        return LinkChain(
            *(codec.decode_links(rows[s], f"links/{gtin}/{s}") if s in rows else () for s in subjects)
        )

    async def list_link_anchors(self, gtin: str) -> list[Anchor]:
        check_gtin_key(gtin)
        rows = self._read("SELECT subject FROM links WHERE gtin = ? ORDER BY subject", (gtin,))
        return [anchor_from_subject(gtin, r[0]) for r in rows]

    # -- scans ------------------------------------------------------------------------

    async def append_scans(self, scans: Sequence[ScanEvent]) -> int:
        chunks = chunks_of(scans)
        if not scans:
            return 0

        def insert(c: sqlite3.Connection) -> int:
            c.executemany("INSERT INTO scans (gtin, first_at_ms, chunk) VALUES (?, ?, ?)", chunks)
            return len(scans)

        return await self._write(insert)

    async def scans_since(self, since_ms: int) -> AsyncIterator[list[ScanEvent]]:
        last = 0
        while True:
            rows = self._read("SELECT seq, gtin, chunk FROM scans WHERE seq > ? AND first_at_ms >= ? ORDER BY seq "
                              "LIMIT 64", (last, since_ms - CHUNK_SPAN_MS))
            if not rows:
                return
            for seq, gtin, chunk in rows:
                found = chunk_scans(gtin, chunk, f"scans/{seq}", since_ms)
                if found:
                    yield found
            last = rows[-1][0]

    async def scan_history(self, gtin: str, serial: str, limit: int = 50, *, max_chunks: int = 64) -> list[ScanEvent]:
        """Newest first, from the GTIN's last ``max_chunks`` stored chunks (as on Redis)."""
        check_unit_key(gtin, serial)
        check_limit(limit, 10_000)
        rows = self._read("SELECT seq, chunk FROM scans WHERE gtin = ? ORDER BY seq DESC LIMIT ?", (gtin, max_chunks))
        found: list[ScanEvent] = []
        for seq, chunk in rows:
            found += unit_scans(gtin, serial, chunk, f"scans/{seq}")[: limit - len(found)]
            if len(found) == limit:
                break
        return found

    async def scan_chunks(self, gtin: str, since_ms: int, until_ms: int) -> AsyncIterator[list[ScanChunk]]:
        check_gtin_key(gtin)
        assert self._r is not None, "store is closed"
        cursor = self._r.execute(
            "SELECT first_at_ms, chunk FROM scans WHERE gtin = ? AND first_at_ms >= ? AND first_at_ms < ? ORDER BY seq",
            (gtin, since_ms - CHUNK_SLACK_MS, until_ms + CHUNK_SLACK_MS))
        while True:
            try:
                rows = cursor.fetchmany(16)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: read failed: {exc}") from exc
            if not rows:
                return
            yield [ScanChunk(gtin, at, blob) for at, blob in rows]

    async def gtins(self) -> list[str]:
        rows = self._read(
            "SELECT gtin FROM gtin_versions UNION SELECT gtin FROM batches UNION SELECT DISTINCT gtin FROM scans", ())
        return sorted(r[0] for r in rows)

    # -- journeys: pending confirmations, tokens, rate counters ----------------------------

    async def put_pending(
        self, gtin: str, serial: str, pending_id: str, record: Mapping[str, Any], expires_at: datetime, actor: Actor,
        *, audit: Mapping[str, Any] | None = None,
    ) -> None:
        check_unit_key(gtin, serial)
        check_record_id(pending_id, "pending_id")
        body = journey_record(record, "record")
        until = expiry_ms(expires_at)
        check_actor(actor, "actor")
        detail = audit_detail({"pending": pending_id}, audit)

        def put(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO pending VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (gtin, serial, id) "
                "DO UPDATE SET body = excluded.body, expires_ms = excluded.expires_ms",
                (gtin, serial, pending_id, body, until),
            )
            self._audit(c, gtin, actor, "pending:put", serial, detail)

        await self._write(put)

    async def get_pending(self, gtin: str, serial: str, pending_id: str) -> dict[str, Any] | None:
        check_unit_key(gtin, serial)
        check_record_id(pending_id, "pending_id")
        rows = self._read(
            "SELECT body, attempts FROM pending WHERE gtin = ? AND serial = ? AND id = ? AND expires_ms > ?",
            (gtin, serial, pending_id, codec.to_ms(now_utc())),
        )
        return {**orjson.loads(rows[0][0]), "attempts": rows[0][1]} if rows else None

    async def fail_pending(self, gtin: str, serial: str, pending_id: str) -> int:
        check_unit_key(gtin, serial)
        check_record_id(pending_id, "pending_id")

        def fail(c: sqlite3.Connection) -> int:
            row = c.execute(
                "UPDATE pending SET attempts = attempts + 1 WHERE gtin = ? AND serial = ? AND id = ? AND expires_ms > ? "
                "RETURNING attempts",
                (gtin, serial, pending_id, codec.to_ms(now_utc())),
            ).fetchone()
            return row[0] if row else 0

        return await self._write(fail)

    def _log_token(self, c: sqlite3.Connection, actor: Actor, action: str, token_id: str, detail: Mapping[str, Any]) -> None:
        c.execute(
            "INSERT INTO token_log (at_ms, role, principal, action, subject, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (codec.to_ms(now_utc()), actor.role, actor.principal, action, token_id, msgpack.packb(dict(detail))),
        )

    async def record_token(
        self, token_id: str, record: Mapping[str, Any], actor: Actor, *, audit: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], bool]:
        check_record_id(token_id, "token_id")
        body = journey_record(record, "record")
        until = token_expiry_ms(record)
        check_actor(actor, "actor")
        detail = audit_detail({"role": str(record.get("role", ""))[:40], "for": str(record.get("principal", ""))[:200]},
                              audit)

        def put(c: sqlite3.Connection) -> tuple[dict[str, Any], bool]:
            row = c.execute("SELECT body FROM tokens WHERE id = ?", (token_id,)).fetchone()
            if row is not None:
                return orjson.loads(row[0]), True
            c.execute("INSERT INTO tokens VALUES (?, ?, ?)", (token_id, body, until))
            self._log_token(c, actor, "token:issue", token_id, detail)
            return orjson.loads(body), False

        return await self._write(put)

    async def get_token(self, token_id: str) -> dict[str, Any] | None:
        check_record_id(token_id, "token_id")
        rows = self._read("SELECT body FROM tokens WHERE id = ? AND expires_ms > ?", (token_id, codec.to_ms(now_utc())))
        return orjson.loads(rows[0][0]) if rows else None

    async def revoke_token(
        self, token_id: str, expires_at: datetime, actor: Actor, reason: str, *, audit: Mapping[str, Any] | None = None
    ) -> bool:
        check_record_id(token_id, "token_id")
        until = expiry_ms(expires_at)
        check_actor(actor, "actor")
        check_text(reason, "reason", max_len=1000)
        detail = audit_detail({"reason": reason}, audit)

        def revoke(c: sqlite3.Connection) -> bool:
            if c.execute("SELECT 1 FROM revoked_tokens WHERE id = ?", (token_id,)).fetchone() is not None:
                return False
            c.execute("INSERT INTO revoked_tokens VALUES (?, ?)", (token_id, until))
            self._log_token(c, actor, "token:revoke", token_id, detail)
            return True

        return await self._write(revoke)

    async def revoked_tokens(self) -> dict[str, datetime]:
        rows = self._read("SELECT id, expires_ms FROM revoked_tokens WHERE expires_ms > ?", (codec.to_ms(now_utc()),))
        return {token_id: codec.from_ms(ms) for token_id, ms in rows}

    async def token_log(self, *, after: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        check_limit(limit)
        rows = self._read(
            "SELECT seq, at_ms, role, principal, action, subject, detail FROM token_log WHERE seq > ? ORDER BY seq LIMIT ?",
            (_int_cursor(after), limit),
        )
        return [
            AuditEntry(str(seq), codec.from_ms(at), Actor(role, principal), action, subject, msgpack.unpackb(detail) if detail else {})
            for seq, at, role, principal, action, subject, detail in rows
        ]

    async def add_line_key(
        self, key_id: str, record: Mapping[str, Any], actor: Actor, *, audit: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], bool]:
        check_record_id(key_id, "key_id")
        body = journey_record(record, "record")
        check_actor(actor, "actor")
        detail = audit_detail({}, audit)

        def add(c: sqlite3.Connection) -> tuple[dict[str, Any], bool]:
            row = c.execute("SELECT body FROM line_keys WHERE id = ?", (key_id,)).fetchone()
            if row is not None:
                return orjson.loads(row[0]), True
            c.execute("INSERT INTO line_keys VALUES (?, ?)", (key_id, body))
            self._log_token(c, actor, "linekey:add", key_id, detail)
            return orjson.loads(body), False

        return await self._write(add)

    async def set_line_key(
        self, key_id: str, record: Mapping[str, Any], actor: Actor, action: str, *,
        audit: Mapping[str, Any] | None = None,
    ) -> None:
        check_record_id(key_id, "key_id")
        body = journey_record(record, "record")
        check_actor(actor, "actor")
        check_text(action, "action", max_len=40)
        detail = audit_detail({}, audit)

        def put(c: sqlite3.Connection) -> None:
            if c.execute("UPDATE line_keys SET body = ? WHERE id = ?", (body, key_id)).rowcount == 0:
                raise NotFound(f"no line key {key_id}")
            self._log_token(c, actor, action, key_id, detail)

        await self._write(put)

    async def get_line_key(self, key_id: str) -> dict[str, Any] | None:
        check_record_id(key_id, "key_id")
        rows = self._read("SELECT body FROM line_keys WHERE id = ?", (key_id,))
        return orjson.loads(rows[0][0]) if rows else None

    async def line_keys(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for (body,) in self._read("SELECT body FROM line_keys ORDER BY id", ())]

    async def count_hit(self, bucket: str, ttl_seconds: int) -> int:
        check_bucket(bucket)
        check_ttl(ttl_seconds)

        def hit(c: sqlite3.Connection) -> int:
            now = codec.to_ms(now_utc())
            count: int = c.execute(
                "INSERT INTO hits VALUES (?, 1, ?) ON CONFLICT (bucket) DO UPDATE SET "
                "count = CASE WHEN expires_ms <= ? THEN 1 ELSE count + 1 END, "
                "expires_ms = CASE WHEN expires_ms <= ? THEN excluded.expires_ms ELSE expires_ms END RETURNING count",
                (bucket, now + ttl_seconds * 1000, now, now),
            ).fetchone()[0]
            if count == 1 and now % 64 == 0:  # now and then, forget windows long gone
                c.execute("DELETE FROM hits WHERE expires_ms <= ?", (now,))
            return count

        return await self._write(hit)

    # -- audit and feed -----------------------------------------------------------------

    async def audit(self, gtin: str, *, after: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        check_gtin_key(gtin)
        check_limit(limit)
        rows = self._read(
            "SELECT seq, at_ms, role, principal, action, subject, detail FROM audit WHERE gtin = ? AND seq > ? ORDER BY seq LIMIT ?",
            (gtin, _int_cursor(after), limit),
        )
        return [
            AuditEntry(str(seq), codec.from_ms(at), Actor(role, principal), action, subject, msgpack.unpackb(detail) if detail else {})
            for seq, at, role, principal, action, subject, detail in rows
        ]

    async def gtin_version(self, gtin: str) -> int:
        check_gtin_key(gtin)
        rows = self._read("SELECT version FROM gtin_versions WHERE gtin = ?", (gtin,))
        return rows[0][0] if rows else 0

    async def changes_cursor(self) -> str:
        rows = self._read("SELECT max(seq) FROM changes", ())
        trimmed = self._read("SELECT value FROM meta WHERE key = 'feed_trimmed_through'", ())
        return str(rows[0][0] or (int(trimmed[0][0]) if trimmed else 0))

    async def changes(self, after: str, limit: int = 1000) -> ChangeBatch:
        check_limit(limit)
        cursor = _int_cursor(after)
        trimmed = self._read("SELECT value FROM meta WHERE key = 'feed_trimmed_through'", ())
        reset = bool(trimmed) and cursor < int(trimmed[0][0])
        rows = self._read("SELECT seq, gtin, kind, subject, version FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, limit))
        changes = tuple(Change(str(seq), g, k, s, v) for seq, g, k, s, v in rows)
        return ChangeBatch(changes[-1].cursor if changes else str(cursor), changes, reset)


def _int_cursor(after: str | None) -> int:
    if after is None:
        return 0
    if not isinstance(after, str) or not after.isdigit():
        raise InvalidInput("after", f"expected a cursor this store returned, got {after!r}")
    return int(after)


