"""The unit store: one protocol, three deployments, chosen by URL.

=================================  ==============================================
``sqlite:///var/serialink.db``     embedded default: one file, WAL, fsync per commit
``redis://host:6379/0``            one Redis node with AOF (``appendfsync always``)
``redis+cluster://h1:7000,h2:7001``  Redis Cluster; every key hash-tagged ``{gtin}``
=================================  ==============================================

Query parameters: ``prefix=`` (Redis key namespace, default ``sl``), ``max_connections=``
(Redis pool size per node, default 64), ``max_inflight=`` (coalesced round trips in flight,
default 4), ``durability=relaxed`` (accept a backend that may lose the last second of
acknowledged writes on power loss; refused for range allocation otherwise),
``feed_maxlen=`` (change-feed retention, default 100000), ``scan_maxlen=`` (Redis: cap a
GTIN's scan stream, in chunks).

>>> import asyncio, tempfile, os
>>> from twin.store import open_store
>>> async def demo(path):
...     async with await open_store(f"sqlite:///{path}") as store:
...         return await store.get_unit("09506000134352", "NO-SUCH-UNIT")
>>> with tempfile.TemporaryDirectory() as d:
...     asyncio.run(demo(os.path.join(d, "twin.db"))) is None
True

Every write method takes the acting :class:`~twin.events.Actor` and records an audit
entry; every write that changes something a resolver caches (units, batches, overlays,
links) bumps the GTIN's version and appends to the change feed.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, Protocol
from urllib.parse import parse_qs, urlsplit

import orjson

from twin.aggregation import Aggregate, AggregationOp, AggregationSummary, Child, StoredAggregation
from twin.batch import Batch, BatchKind, BatchRange, BatchStatus, check_count
from twin.errors import IdempotencyConflict, InvalidInput, StaleVersion
from twin.events import Actor, Event, check_actor
from twin.identity import check_gtin, check_lot, check_name, check_serial
from twin.line_state import LineReport, LineState, LineSummary, StoredReport
from twin.links import Anchor, LinkChain, LinkRecord, check_links
from twin.overlays import Overlay, Scope
from twin.ownership import PersonalData
from twin.scans import ScanChunk, ScanEvent
from twin.unit import Unit, apply_event

#: What ``serialink serve`` uses when nothing is configured.
DEFAULT_STORE_URL = "sqlite:///var/serialink.db"

#: How long an idempotency key of a unit write is remembered.
IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600


class Appended(NamedTuple):
    """Result of an event append. ``replayed``: the idempotency key was seen before and
    nothing was written; ``version`` is what the original append produced."""

    version: int
    unit: Unit
    replayed: bool = False


class AuditEntry(NamedTuple):
    cursor: str
    at: datetime
    actor: Actor
    action: str  # "event:sell", "allocate", "batch:voided", "overlay:put", "links:put", …
    subject: str  # serial, batch id, overlay id or link anchor, within the GTIN
    detail: Mapping[str, Any]


class Change(NamedTuple):
    """One entry of the change feed: something cacheable changed for ``gtin``."""

    cursor: str
    gtin: str
    kind: str  # unit | batch | overlay | links | personal
    subject: str  # serial, batch id, overlay id, link anchor subject
    version: int  # the GTIN's version after the change


class ChangeBatch(NamedTuple):
    """``reset``: the feed was trimmed past the caller's cursor — drop every cache."""

    cursor: str
    changes: tuple[Change, ...]
    reset: bool = False


class UnitStore(Protocol):
    """What every backend provides. All methods are coroutines on the caller's loop.

    Reads of a missing thing return ``None`` (or empty); writes raise twin.errors types:
    InvalidInput (names the field), IllegalTransition (with a reason), StaleVersion,
    IdempotencyConflict, NotFound, CorruptRecord (names the key), UnsafeDurability.
    """

    url: str
    durability: str  # "always" (fsync before ack), "relaxed", or what the server reports

    async def close(self) -> None: ...

    async def check_durable(self) -> None:
        """Raise UnsafeDurability while an acknowledged write could be lost in a crash (and the
        store URL did not accept that risk); re-reads the backend's setting now and then, so
        fixing it needs no restart. Write endpoints ask before writing."""
    async def __aenter__(self) -> UnitStore: ...
    async def __aexit__(self, *exc: object) -> None: ...

    # -- units ------------------------------------------------------------------------
    async def get_unit(self, gtin: str, serial: str) -> Unit | None:
        """The unit's own record, or ``None`` if it has no events (then its batch speaks).
        On Redis, concurrent calls are coalesced into one round trip; on SQLite it is a
        point lookup on the caller's thread."""

    async def get_units(self, keys: Sequence[tuple[str, str]]) -> list[Unit | None]:
        """Many units in one round trip (per cluster slot), in the order asked."""

    def unit_keys(self, chunk: int = 10_000) -> AsyncIterator[list[tuple[str, str]]]:
        """Every (gtin, serial) that has a record, in chunks, in no particular order: what a
        resolver needs to know which scans can skip the store (most units never get one)."""

    async def get_events(self, gtin: str, serial: str) -> list[Event]:
        """The unit's events in order; event *i* produced version *i + 1*."""

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
        """Validate ``event``, check it against the lifecycle and append it.

        ``expected_version``: refuse with StaleVersion unless the unit is at that version
        (0 = no events yet); without it a concurrent append is retried. ``origin``: the
        batch-implied unit (twin.unit.unit_from_batch) a unit with no record starts
        from; without it the first event must be ``commission``. ``personal``: the
        owner's name/contact for ``register``/``transfer_claim``, stored apart.
        ``audit``: what the caller adds to the audit entry (client address, channel…).
        """

    async def get_personal_data(self, gtin: str, serial: str) -> dict[str, PersonalData]:
        """Owner id → personal data, current and past owners (never read on a scan)."""

    async def erase_personal_data(self, gtin: str, serial: str, owner: str, actor: Actor, reason: str) -> bool:
        """Forget an owner's personal data (events keep only the pseudonymous id)."""

    async def get_dpp(self, gtin: str, serial: str) -> Mapping[str, Any] | None:
        """The unit's current DPP data: ``{"href": …}`` or ``{"document": {…}}``."""

    # -- batches and allocation -----------------------------------------------------
    async def allocate_range(
        self,
        gtin: str,
        profile: str,
        count: int,
        request_id: str,
        params_digest: str,
        *,
        actor: Actor,
        lot: str | None = None,
        expiry: date | None = None,
        line: str | None = None,
        site: str | None = None,
    ) -> Batch:
        """Reserve ``count`` counters for (gtin, profile) and record the batch, durably,
        in one atomic step. The same ``request_id`` (scoped per GTIN) returns the same
        batch; with another ``params_digest`` it raises IdempotencyConflict."""

    async def import_serials(
        self,
        gtin: str,
        profile: str,
        serials: Sequence[str],
        request_id: str,
        params_digest: str,
        *,
        actor: Actor,
        lot: str | None = None,
        expiry: date | None = None,
        line: str | None = None,
        site: str | None = None,
    ) -> Batch:
        """Record externally issued serials as an ``imported`` batch (counter *i* of its
        range is ``serials[i]``) and their membership; idempotent like allocation."""

    async def find_imported(self, gtin: str, serial: str) -> str | None:
        """The id of the imported batch holding ``serial`` (coalesced read)."""

    async def get_batch(self, batch_id: str) -> Batch | None: ...

    async def list_batches(self, gtin: str, profile: str | None = None) -> list[Batch]:
        """All batches of a GTIN (optionally one profile), by profile and range start."""

    async def batch_ranges(self, gtin: str, profile: str) -> list[BatchRange]:
        """The allocated ranges of (gtin, profile): feed a twin.batch.RangeIndex."""

    async def find_batch_by_counter(self, gtin: str, profile: str, counter: int) -> Batch | None:
        """The batch whose range holds ``counter``, or ``None`` (no batch issued it)."""

    async def set_batch_status(self, batch_id: str, status: BatchStatus, actor: Actor, reason: str) -> Batch:
        """allocated → committed → voided; refused backwards (IllegalTransition)."""

    # -- line state (twin.line_state) ---------------------------------------------------
    async def get_line_state(self, batch_id: str) -> LineState | None:
        """The batch's line state; ``None``: the batch is not line-tracked (its units take
        the batch's state, as before line tracking existed)."""

    async def apply_line_reports(self, batch_id: str, reports: Sequence[LineReport], actor: Actor) -> list[LineSummary]:
        """Apply bulk line reports in order and remember their ids, in one atomic write (a
        SIGKILL leaves all of them or none). A report id seen before is a replay
        (``replayed``) that writes nothing; with other content it raises ReportConflict.
        If any report is refused (LineConflict, InvalidInput naming the element) nothing
        is written."""

    async def line_reports(self, batch_id: str) -> list[StoredReport]:
        """Every report applied to the batch, in the order applied."""

    # -- aggregation (twin.aggregation) -------------------------------------------------
    async def apply_aggregations(self, ops: Sequence[AggregationOp], actor: Actor) -> list[AggregationSummary]:
        """Apply packs and unpacks in order in one atomic write (a SIGKILL leaves all of them
        or none). An event id seen before is a replay (``replayed``) that writes nothing; with
        other content it raises EventConflict. If any child is refused (AggregationConflict,
        InvalidInput naming the element) nothing is written."""

    async def get_aggregation(self, sscc: str) -> Aggregate | None:
        """The SSCC's origin, contents and the SSCC it is packed in; ``None``: never packed."""

    async def aggregation_parents(self, batch_ids: Sequence[str]) -> list[str]:
        """Every SSCC holding a unit of these batches, directly or through a case in it."""

    async def aggregation_events(self, sscc: str) -> list[StoredAggregation]:
        """The packs and unpacks of this parent, oldest first."""

    async def aggregation_events_of(self, children: Sequence[Child] = (),
                                    batches: Sequence[str] = ()) -> list[StoredAggregation]:
        """The packs and unpacks (each once, oldest first, every child as stored) with one of
        ``children`` (by key: ``01/<gtin>/21/<serial>`` or an SSCC; a minted unit with its
        batch and counter, as packed) or a unit of one of ``batches`` as a child, whether it
        is still in that parent or was unpacked since (twin.aggregation)."""

    # -- overlays and links ---------------------------------------------------------
    async def put_overlay(
        self, gtin: str, kind: str, scope: Scope, actor: Actor, reason: str, *, idempotency_key: str | None = None,
        audit: Mapping[str, Any] | None = None,
    ) -> Overlay:
        """Put a recall or theft overlay. With ``idempotency_key`` a retry returns the overlay
        the key made (IdempotencyConflict if its kind, scope or reason differ)."""

    async def lift_overlay(
        self, gtin: str, overlay_id: str, actor: Actor, reason: str, *, audit: Mapping[str, Any] | None = None
    ) -> Overlay: ...

    async def get_overlays(self, gtin: str, *, include_lifted: bool = False) -> tuple[Overlay, ...]: ...

    async def put_links(self, anchor: Anchor, links: Sequence[LinkRecord], actor: Actor) -> int:
        """Replace the linkset of one anchor (empty: delete it); returns the GTIN version."""

    async def put_links_many(self, entries: Sequence[tuple[Anchor, Sequence[LinkRecord]]], actor: Actor) -> int:
        """Bulk link management: replace many linksets (empty: delete) in few round trips,
        all validated before any is written. Audited and fed once per GTIN, with subject
        ``*`` (drop every cached link of that GTIN). Returns how many were written."""

    async def get_links(self, anchor: Anchor) -> tuple[LinkRecord, ...]: ...

    async def get_link_chain(self, gtin: str, lot: str | None, serial: str | None) -> LinkChain:
        """serial, lot and GTIN levels in one round trip."""

    async def list_link_anchors(self, gtin: str) -> list[Anchor]: ...

    # -- scans ------------------------------------------------------------------------
    async def append_scans(self, scans: Sequence[ScanEvent]) -> int:
        """Write a batch of scans (one round trip per backend call); returns the count."""

    async def scan_history(self, gtin: str, serial: str, limit: int = 50, *, max_chunks: int = 64) -> list[ScanEvent]:
        """The unit's most recent scans, newest first, from at most the GTIN's last
        ``max_chunks`` stored chunks of scans (recent history, not an archive)."""

    def scan_chunks(self, gtin: str, since_ms: int, until_ms: int) -> AsyncIterator[list[ScanChunk]]:
        """Every stored chunk of the GTIN that may hold scans timed in [since_ms, until_ms)
        (and maybe others: the caller filters the scans), oldest first, a few at a time: what
        exports and analytics read (never a scan). SQLite keeps each chunk's first scan time;
        Redis its write time, which no scan of the chunk is later than."""

    async def gtins(self) -> list[str]:
        """Every GTIN the store holds anything for (units, batches, overlays, links, scans),
        sorted: where exports and analytics start."""

    def scans_since(self, since_ms: int) -> AsyncIterator[list[ScanEvent]]:
        """Every stored scan at or after ``since_ms`` (epoch ms), of every GTIN, a stored
        chunk at a time, oldest first within a GTIN: what ``serialink scans export`` writes."""

    # -- journeys: pending confirmations, issued and revoked tokens, rate counters -------
    async def put_pending(
        self,
        gtin: str,
        serial: str,
        pending_id: str,
        record: Mapping[str, Any],
        expires_at: datetime,
        actor: Actor,
        *,
        audit: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep a confirmation waiting for the unit (a registration until its code comes
        back) until ``expires_at``; writing it again replaces the record and keeps the count
        of wrong codes. Audited under the GTIN (the record is not: it holds personal data)."""

    async def get_pending(self, gtin: str, serial: str, pending_id: str) -> dict[str, Any] | None:
        """The record plus ``attempts`` (wrong codes so far); None once absent or expired."""

    async def fail_pending(self, gtin: str, serial: str, pending_id: str) -> int:
        """Count one wrong code against a pending confirmation: the new count (0: none pending)."""

    async def record_token(
        self, token_id: str, record: Mapping[str, Any], actor: Actor, *, audit: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Remember an issued token (its grant, never the token) until ``record["exp"]``
        (epoch seconds). An id already recorded returns that record and True: a retry."""

    async def get_token(self, token_id: str) -> dict[str, Any] | None: ...

    async def revoke_token(
        self, token_id: str, expires_at: datetime, actor: Actor, reason: str, *, audit: Mapping[str, Any] | None = None
    ) -> bool:
        """Add a token id to the revocation list every worker reads, until the token would
        have expired anyway. False if it was already there (nothing written)."""

    async def revoked_tokens(self) -> dict[str, datetime]:
        """Every revoked token id not yet expired, with its expiry."""

    async def token_log(self, *, after: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Audit of token issuance and revocation (subject: the token id), oldest first."""

    async def add_line_key(
        self, key_id: str, record: Mapping[str, Any], actor: Actor, *, audit: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Keep a factory line key's record (its scope and the hash of the key, never the
        key) under ``key_id``; logged in the token log. An id already there returns that
        record and True (a retry) and writes nothing. Line keys do not expire from the store:
        a revoked or retired key stays listed, with its state in the record."""

    async def set_line_key(
        self, key_id: str, record: Mapping[str, Any], actor: Actor, action: str, *,
        audit: Mapping[str, Any] | None = None,
    ) -> None:
        """Replace the record of an existing line key (retired by a rotation, revoked),
        logged as ``action``; twin.errors.NotFound if there is no such key."""

    async def get_line_key(self, key_id: str) -> dict[str, Any] | None: ...

    async def line_keys(self) -> list[dict[str, Any]]:
        """Every line key's record, in id order."""

    async def count_hit(self, bucket: str, ttl_seconds: int) -> int:
        """Add one to a counter that lives ``ttl_seconds`` from its first hit: the count
        (rate limits; shared by every worker and host)."""

    # -- audit and change feed ------------------------------------------------------
    async def audit(self, gtin: str, *, after: str | None = None, limit: int = 1000) -> list[AuditEntry]: ...

    async def gtin_version(self, gtin: str) -> int:
        """Bumped by every cacheable change of the GTIN's data (0: never written)."""

    async def changes_cursor(self) -> str:
        """The feed's current end: follow :meth:`changes` from here."""

    async def changes(self, after: str, limit: int = 1000) -> ChangeBatch:
        """Feed entries after ``after``, oldest first."""


async def open_store(url: str | None = None) -> UnitStore:
    """Open (and create, for SQLite) the store at ``url``; default: DEFAULT_STORE_URL."""
    url = url or DEFAULT_STORE_URL
    scheme = urlsplit(url).scheme
    # each backend is imported only when chosen: SQLite users need no redis client
    if scheme == "sqlite":
        from twin.sqlite_store import SQLiteStore

        return await SQLiteStore.open(url)
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        from twin.redis_store import RedisStore

        return await RedisStore.open(url)
    raise InvalidInput("store_url", f"unknown scheme {scheme!r}; use sqlite://, redis:// or redis+cluster://")


# -- helpers shared by the backends ------------------------------------------------------


def url_params(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def int_param(params: Mapping[str, str], name: str, default: int) -> int:
    """A positive integer URL parameter (0 allowed only as the default: "off")."""
    value = params.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise InvalidInput(f"store_url.{name}", f"expected a positive integer, got {value!r}")
    return int(value)


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def event_digest(event: Event) -> str:
    """What an idempotent retry must repeat: everything but the time it was built."""
    body = [event.type, event.actor.role, event.actor.principal, event.reason, event.where, dict(event.data)]
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= 100 or any(c.isspace() for c in key):
        raise InvalidInput("idempotency_key", "expected 1-100 characters without spaces")
    return key


def check_request(request_id: object, params_digest: object) -> None:
    if not isinstance(request_id, str) or not 1 <= len(request_id) <= 100 or any(c.isspace() for c in request_id):
        raise InvalidInput("request_id", "expected 1-100 characters without spaces")
    if not isinstance(params_digest, str) or not 1 <= len(params_digest) <= 128:
        raise InvalidInput("params_digest", "expected a digest string of 1-128 characters")


def same_request(batch: Batch, params_digest: str) -> Batch:
    """An allocation retry: the same request id must come with the same parameters."""
    if batch.params_digest != params_digest:
        raise IdempotencyConflict(
            f"request_id {batch.request_id!r} was used for batch {batch.id} with other parameters "
            f"(digest {batch.params_digest}, not {params_digest})"
        )
    return batch


def personal_owner(event: Event, personal: PersonalData | None) -> str | None:
    """The owner id the personal data is filed under (register / transfer_claim only)."""
    if personal is None:
        return None
    if not isinstance(personal, PersonalData):
        raise InvalidInput("personal", f"expected PersonalData, got {type(personal).__name__}")
    if event.type not in ("register", "transfer_claim"):
        raise InvalidInput("personal", f"only register and transfer_claim bind personal data, not {event.type}")
    owner: str = event.data["owner"]  # a string: check_event validated the event's data
    return owner


def check_limit(limit: object, maximum: int = 100_000) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= maximum:
        raise InvalidInput("limit", f"expected 1..{maximum}, got {limit!r}")
    return limit


def next_unit(
    current: Unit | None, origin: Unit | None, event: Event, gtin: str, serial: str, expected_version: int | None
) -> Unit:
    """The unit after ``event`` (validated) given what the store holds: the write plan
    both backends share, so they refuse exactly the same things."""
    version = 0 if current is None else current.version
    if expected_version is not None and expected_version != version:
        raise StaleVersion(f"unit {gtin}/{serial}", expected_version, version)
    base = current
    if current is None and origin is not None:
        if not isinstance(origin, Unit) or (origin.gtin, origin.serial, origin.version) != (gtin, serial, 0):
            raise InvalidInput("origin", "expected the batch-implied unit of this GTIN and serial (version 0)")
        base = origin
    return apply_event(base, event, gtin, serial)


def draft_batch(
    gtin: str,
    profile: str,
    count: int,
    request_id: str,
    params_digest: str,
    actor: Actor,
    kind: BatchKind,
    now: datetime,
    lot: str | None,
    expiry: date | None,
    line: str | None,
    site: str | None,
) -> Batch:
    """Validate an allocation request and build its batch record, range still unknown
    (``start`` = 0, ``id`` = ""): the backend fills both in as it reserves the range."""
    check_gtin(gtin)
    check_name(profile, "profile")
    check_count(count)
    check_request(request_id, params_digest)
    check_actor(actor, "actor")
    if lot is not None:
        check_lot(lot)
    if expiry is not None and (not isinstance(expiry, date) or isinstance(expiry, datetime)):
        raise InvalidInput("expiry", f"expected a date, got {expiry!r}")
    if line is not None:
        check_name(line, "line")
    if site is not None:
        check_name(site, "site")
    return Batch(
        "", gtin, profile, 0, count, BatchStatus.ALLOCATED, kind, request_id, params_digest, now, now, actor,
        lot, expiry, line, site,
    )


def check_unit_key(gtin: str, serial: str) -> None:
    """Validate an identity on the read path: the GTIN check is cached (GTINs are few)."""
    _gtin_ok(gtin) if type(gtin) is str else check_gtin(gtin)
    check_serial(serial)


def check_gtin_key(gtin: str) -> None:
    _gtin_ok(gtin) if type(gtin) is str else check_gtin(gtin)


def check_chain_key(gtin: str, lot: str | None, serial: str | None) -> None:
    check_gtin_key(gtin)
    if lot is not None:
        check_lot(lot)
    if serial is not None:
        check_serial(serial)


def check_import_serials(serials: Sequence[str]) -> list[str]:
    if isinstance(serials, str) or not isinstance(serials, Sequence):
        raise InvalidInput("serials", "expected a list of serials")
    out = [check_serial(s, f"serials[{i}]") for i, s in enumerate(serials)]
    if len(set(out)) != len(out):
        raise InvalidInput("serials", "the list repeats a serial")
    return out


def new_overlay_id(now: datetime) -> str:
    """Time-ordered and unguessable: ``ov-<ms hex>-<random>``."""
    return f"ov-{(now - _EPOCH) // timedelta(milliseconds=1):011x}-{secrets.token_hex(4)}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=65536)
def _gtin_ok(gtin: str) -> str:
    return check_gtin(gtin)


def check_link_entries(
    entries: Sequence[tuple[Anchor, Sequence[LinkRecord]]],
) -> dict[str, list[tuple[str, tuple[LinkRecord, ...]]]]:
    """Validate a bulk link write; group it by GTIN as ``{gtin: [(subject, links)]}``."""
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise InvalidInput("entries", "expected a list of (anchor, links)")
    by_gtin: dict[str, list[tuple[str, tuple[LinkRecord, ...]]]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, tuple) or len(entry) != 2:
            raise InvalidInput(f"entries[{i}]", "expected (anchor, links)")
        anchor, links = entry
        try:
            checked = check_links(anchor, links)
        except InvalidInput as exc:
            raise InvalidInput(f"entries[{i}].{exc.field}", exc.problem) from None
        by_gtin.setdefault(anchor.gtin, []).append((anchor.subject, checked))
    return by_gtin


# -- journeys: shared checks for pending confirmations, tokens, rate counters, audit extras

MAX_JOURNEY_RECORD_BYTES = 8 * 1024
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BUCKET = re.compile(r"[A-Za-z0-9_.:/-]{1,200}")


def check_record_id(value: object, field: str) -> str:
    """Ids of pending confirmations and tokens: store keys, so short and plain."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidInput(field, "expected 1-64 characters of [A-Za-z0-9_-]")
    return value


def check_bucket(bucket: object) -> str:
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
        raise InvalidInput("bucket", "expected 1-200 characters of [A-Za-z0-9_.:/-]")
    return bucket


def check_ttl(seconds: object) -> int:
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= 366 * 24 * 3600:
        raise InvalidInput("ttl_seconds", f"expected 1..{366 * 24 * 3600} seconds, got {seconds!r}")
    return seconds


def journey_record(record: object, field: str) -> bytes:
    """A small JSON-typed mapping, encoded (pending confirmations, token grants)."""
    if not isinstance(record, Mapping):
        raise InvalidInput(field, f"expected a mapping, got {type(record).__name__}")
    try:
        body = orjson.dumps(record)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInput(field, f"is not JSON-serialisable: {exc}") from None
    if len(body) > MAX_JOURNEY_RECORD_BYTES:
        raise InvalidInput(field, f"is {len(body)} bytes encoded, the limit is {MAX_JOURNEY_RECORD_BYTES}")
    return body


def audit_detail(base: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """An audit entry's detail: what the store records, plus what the caller adds (the
    client address, the channel, the idempotency key). The store's own keys win."""
    if extra is None:
        return dict(base)
    if not isinstance(extra, Mapping) or len(extra) > 16:
        raise InvalidInput("audit", "expected a mapping of at most 16 entries")
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if not isinstance(key, str) or len(key) > 40:
            raise InvalidInput("audit", f"expected short text keys, got {key!r:.50}")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise InvalidInput(f"audit.{key}", f"expected a string, number or boolean, got {type(value).__name__}")
        if isinstance(value, str) and len(value) > 300:
            raise InvalidInput(f"audit.{key}", "at most 300 characters")
        out[key] = value
    out.update(base)
    return out


def expiry_ms(at: object, field: str = "expires_at") -> int:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidInput(field, "expected a timezone-aware datetime")
    return int(at.timestamp() * 1000)


def same_overlay(existing: Overlay, kind: str, scope: Scope, reason: str) -> Overlay:
    """An overlay write retried with its idempotency key must repeat the same overlay."""
    if (existing.kind, existing.scope, existing.reason) != (kind, scope, reason):
        raise IdempotencyConflict(f"idempotency_key was used for overlay {existing.id} with other content")
    return existing


def token_expiry_ms(record: Mapping[str, Any]) -> int:
    exp = record.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp <= 0:
        raise InvalidInput("record.exp", "expected the token's expiry in epoch seconds")
    return exp * 1000
