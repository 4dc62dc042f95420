"""What the resolver knows about a scanned unit, read through in-process caches.

Per scan: at most one (coalesced) store read — the unit's own record. Everything else a
scan needs is per GTIN and cached here — recall/theft overlays, uploaded link data, and
(inside the serialiser's verifier) the batch ranges — and dropped when the store's change
feed says the GTIN changed. Units with no record take their batch's state; a serial no
batch issued is ``unknown``.

When the store cannot be reached, scans are still answered: from the cached record if
there is one, else at batch level if the verifier still knows the ranges, else at GTIN
level (state ``unserialised``) — never as ``unknown``, which would call a genuine unit a
counterfeit because a database was down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ext.bloom import BloomFilter
from resolver.rules.moments import Moments
from resolver.scan.decide import NO_STORED_LINKS, StoredLinks, UnitFacts
from resolver.scan.line_views import LineViews
from resolver.scan.unit_moments import UnitMoments
from twin.batch import Batch
from twin.links import LinkRecord
from twin.overlays import Overlay, flags_for
from twin.unit import Unit

if TYPE_CHECKING:
    from ext.dl import DigitalLink
    from serializer.verify import IssuedMatch
    from twin.store import UnitStore

log = logging.getLogger("serialink.resolver.units")


class Verifier(Protocol):
    async def issued_by(self, gtin: str, serial: str) -> IssuedMatch | None: ...
    def invalidate(self, gtin: str) -> None: ...


class _GtinData(NamedTuple):
    overlays: tuple[Overlay, ...]
    gtin_links: tuple[LinkRecord, ...]
    lot_links: Mapping[str, tuple[LinkRecord, ...]]
    serial_anchors: frozenset[str]
    loaded_at: float


_WARN_EVERY = 10.0
#: Per-batch facts kept: as many batches as the serial verifier caches (100k), so a GTIN
#: with 100k batches does not rebuild them on most scans (~20 MB when full).
_BATCH_FACTS_MAX = 100_000
_INLINE_HASHES = 100_000  # fewer keys than this are added on the loop (a few ms); more, in a thread
_last_warned: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def _warn(kind: str, message: str, *args: object) -> None:
    """A store outage fails every scan's read: log it once per kind every 10 s, with a count."""
    now = time.monotonic()
    if now - _last_warned.get(kind, -_WARN_EVERY) < _WARN_EVERY:
        _suppressed[kind] = _suppressed.get(kind, 0) + 1
        return
    _last_warned[kind] = now
    skipped = _suppressed.pop(kind, 0)
    log.warning(message + (f" (and {skipped} more like it in the last {_WARN_EVERY:.0f} s)" if skipped else ""), *args)


class LookupStats:
    __slots__ = ("unit_hits", "unit_misses", "unit_skips", "store_errors", "degraded", "presence_builds")

    def __init__(self) -> None:
        self.unit_hits = self.unit_misses = self.unit_skips = self.store_errors = self.degraded = 0
        self.presence_builds = 0


def _expiry(batch: Batch) -> str | None:
    exp = getattr(batch, "expiry", None)
    return exp.strftime("%y%m%d") if exp is not None else None


class UnitLookup:
    def __init__(self, store: UnitStore, verifier: Verifier | None, *, cache_size: int = 100_000, gtin_ttl: float = 300.0,
                 moments: UnitMoments | None = None) -> None:
        self.store = store
        self.moments = moments or UnitMoments()  # dates, warranty, consumables: for moment routes
        self.verifier = verifier
        self.stats = LookupStats()
        self._units: dict[tuple[str, str], Unit | None] = {}
        self._cache_size = cache_size
        self._gtins: dict[str, _GtinData] = {}
        self._serial_links: OrderedDict[tuple[str, str], tuple[LinkRecord, ...]] = OrderedDict()
        self._gtin_ttl = gtin_ttl
        self._cursor: str | None = None
        # Which units have a record of their own (a Bloom filter; None until first built).
        # Most scanned units never get one, and "certainly no record" saves the store read.
        self.presence: BloomFilter | None = None
        # batch id (untracked) or (batch id, line state) → (batch record, its units' facts), when nothing else varies
        self._batch_facts: dict[str | tuple[str, str], tuple[Batch, UnitFacts, int]] = {}
        self.lines = LineViews(store)  # line-tracked batches: which units the line commissioned
        self._presence_adds: list[tuple[str, str]] | None = None  # recorded while rebuilding
        if self.moments.parts is not None:  # batch facts carry consumables due from the catalogue
            self.moments.parts.listeners.append(self._batch_facts.clear)

    # -- per GTIN ---------------------------------------------------------------------

    def cached_gtin_data(self, gtin: str) -> _GtinData | None:
        """The GTIN's cached data if fresh — the scan path's fast path, no coroutine."""
        data = self._gtins.get(gtin)
        if data is not None and time.monotonic() - data.loaded_at < self._gtin_ttl:
            return data
        return None

    async def gtin_data(self, gtin: str) -> _GtinData | None:
        data = self._gtins.get(gtin)
        if data is not None and time.monotonic() - data.loaded_at < self._gtin_ttl:
            return data
        try:
            overlays = await self.store.get_overlays(gtin)
            anchors = await self.store.list_link_anchors(gtin)
            gtin_anchor = next((a for a in anchors if a.lot is None and a.serial is None), None)
            chain_gtin = await self.store.get_links(gtin_anchor) if gtin_anchor is not None else ()
            lot_links: dict[str, tuple[LinkRecord, ...]] = {}
            for anchor in anchors:
                if anchor.lot is not None:
                    lot_links[anchor.lot] = tuple(await self.store.get_links(anchor))
        except Exception as exc:  # store down: keep what we had, even if stale
            self.stats.store_errors += 1
            _warn("gtin", "store unavailable for GTIN data of %s: %s", gtin, exc)
            return data
        data = _GtinData(
            tuple(overlays), tuple(chain_gtin), lot_links,
            frozenset(a.serial for a in anchors if a.serial is not None),
            time.monotonic())
        self._gtins[gtin] = data
        return data

    def no_stored_links(self, gtin: str) -> bool:
        """True when the GTIN is known (cached) to have no uploaded link data at all."""
        data = self.cached_gtin_data(gtin)
        return data is not None and not (data.gtin_links or data.lot_links or data.serial_anchors)

    async def stored_links(self, gtin: str, lot: str | None, serial: str | None) -> StoredLinks:
        data = await self.gtin_data(gtin)
        if data is None:
            return NO_STORED_LINKS
        serial_links: tuple[LinkRecord, ...] = ()
        if serial is not None and serial in data.serial_anchors:
            key = (gtin, serial)
            cached = self._serial_links.get(key)
            if cached is not None:
                serial_links = cached
            else:
                try:
                    chain = await self.store.get_link_chain(gtin, None, serial)
                    serial_links = tuple(chain.serial)
                except Exception as exc:
                    self.stats.store_errors += 1
                    _warn("links", "store unavailable for serial links %s/%s: %s", gtin, serial, exc)
                    serial_links = ()
                self._serial_links[key] = serial_links
                if len(self._serial_links) > self._cache_size:
                    self._serial_links.popitem(last=False)
        lot_links = data.lot_links.get(lot, ()) if lot is not None else ()
        if not (serial_links or lot_links or data.gtin_links):
            return NO_STORED_LINKS
        return StoredLinks(serial_links, lot_links, data.gtin_links)

    # -- per unit ---------------------------------------------------------------------

    async def unit(self, gtin: str, serial: str) -> Unit | None:
        """The unit's record as scans see it (None: it has none): from this worker's cache,
        the presence filter, else the store — as fresh as the change feed keeps the cache."""
        return await self._unit(gtin, serial)

    async def _unit(self, gtin: str, serial: str) -> Unit | None:
        # insertion-ordered dict, oldest evicted first: LRU-like without the bookkeeping cost
        # on every hit (most scans are of distinct units and never hit)
        key = (gtin, serial)
        units = self._units
        if key in units:
            self.stats.unit_hits += 1
            return units[key]
        presence = self.presence
        if presence is not None and key not in presence:
            self.stats.unit_skips += 1
            return None
        self.stats.unit_misses += 1
        unit = await self.store.get_unit(gtin, serial)
        units[key] = unit
        if len(units) > self._cache_size:
            del units[next(iter(units))]
        return unit

    async def facts(self, dl: DigitalLink) -> UnitFacts:
        """The state the rules route on, for this scan."""
        gtin = dl.gtin
        serial = dl.serial
        if gtin is None:
            return UnitFacts("unserialised", source="none")
        data = self.cached_gtin_data(gtin) or await self.gtin_data(gtin)
        overlays = data.overlays if data is not None else ()
        lot = dl.lot
        if serial is None:
            flags = flags_for(overlays, lot=lot) if overlays else frozenset()
            return UnitFacts("unserialised", "recalled" in flags, "stolen" in flags, lot, dl.get("17"), "scan",
                             suspect="suspect" in flags)
        try:
            unit = await self._unit(gtin, serial)
        except Exception as exc:
            self.stats.store_errors += 1
            self.stats.degraded += 1
            _warn("unit", "store unavailable for unit %s/%s: %s", gtin, serial, exc)
            unit = self._units.get((gtin, serial))
            if unit is None:
                return await self._from_batch(gtin, serial, lot, dl, overlays, degraded=True)
        if unit is not None:
            lot = unit.lot or lot
            flags = flags_for(overlays, serial=serial, lot=lot) if overlays else frozenset()
            expiry = unit.expiry.strftime("%y%m%d") if unit.expiry else dl.get("17")
            return UnitFacts(str(unit.state), unit.recalled or "recalled" in flags, unit.stolen or "stolen" in flags,
                             lot, expiry, "record", self.moments.of_unit(unit), "suspect" in flags)
        return await self._from_batch(gtin, serial, lot, dl, overlays)

    async def _from_batch(self, gtin: str, serial: str, lot: str | None, dl: DigitalLink,
                          overlays: tuple[Overlay, ...], degraded: bool = False) -> UnitFacts:
        match = None
        if self.verifier is not None:
            try:
                match = await self.verifier.issued_by(gtin, serial)
            except Exception as exc:
                self.stats.store_errors += 1
                _warn("verifier", "verifier unavailable for %s/%s: %s", gtin, serial, exc)
                degraded = True
        if match is None:
            if degraded:
                flags = flags_for(overlays, lot=lot) if overlays else frozenset()
                return UnitFacts("unserialised", "recalled" in flags, "stolen" in flags, lot, dl.get("17"), "degraded",
                                 suspect="suspect" in flags)
            flags = flags_for(overlays, serial=serial, lot=lot) if overlays else frozenset()
            return UnitFacts("unknown", "recalled" in flags, "stolen" in flags, lot, dl.get("17"), "no batch issued it",
                             suspect="suspect" in flags)
        batch = match.batch
        lines = self.lines
        # every unit of a batch without overlays has the same facts (per line state): they
        # are built once per batch record (a changed record is a new object, so identity
        # tells staleness). An untracked batch's entry is keyed by its id alone and stamped
        # with the line views' epoch: while no line state changed anywhere, a scan needs
        # neither its batch's line view nor a key tuple (at 100k batches per GTIN each of
        # those lookups is a cache miss, docs/performance.md)
        same = not overlays and dl.lot is None and not dl.attributes
        if same:
            entry = self._batch_facts.get(batch.id)
            if entry is not None and entry[0] is batch and entry[2] == lines.epoch:
                return entry[1]
        line_state = None
        settled = True  # the line view is cached (or the batch is imported: never line-tracked)
        if match.counter is not None:  # minted: the counter is the unit's index in its batch
            settled, view = lines.cached(batch.id)
            if not settled:
                view = await lines.get(batch.id)
                settled = lines.cached(batch.id)[0]  # not when the load failed or raced a change
            if view is not None:
                line_state = view.state_of(match.counter - batch.start)
        if same:
            key: str | tuple[str, str] = batch.id if line_state is None else (batch.id, line_state)
            stamp = lines.epoch if settled and line_state is None else -1
            entry = self._batch_facts.get(key)
            if entry is None or entry[0] is not batch:
                if len(self._batch_facts) >= _BATCH_FACTS_MAX:
                    self._batch_facts.clear()
                facts = self._facts_of(batch, batch.lot, frozenset(), None, line_state, self.moments.of_batch(gtin, batch))
                entry = self._batch_facts[key] = (batch, facts, stamp)
            elif entry[2] != stamp:
                entry = self._batch_facts[key] = (batch, entry[1], stamp)
            return entry[1]
        lot = getattr(batch, "lot", None) or lot
        flags = flags_for(overlays, serial=serial, lot=lot, profile=match.profile, counter=match.counter) \
            if overlays else frozenset()
        return self._facts_of(batch, lot, flags, dl.get("17"), line_state, self.moments.of_batch(gtin, batch))

    @staticmethod
    def _facts_of(batch: Batch, lot: str | None, flags: frozenset[str], scanned_expiry: str | None,
                  line_state: str | None = None, moments: Moments | None = None) -> UnitFacts:
        """A voided batch's units are decommissioned; a line-tracked batch's units are what
        the line reported; an untracked batch's units are commissioned (as before tracking)."""
        status = str(getattr(batch, "status", "allocated"))
        state = "decommissioned" if status == "voided" else line_state or "commissioned"
        return UnitFacts(state, "recalled" in flags, "stolen" in flags, lot, _expiry(batch) or scanned_expiry,
                         f"batch {batch.id}", moments, "suspect" in flags)

    # -- invalidation -------------------------------------------------------------------

    def invalidate(self, gtin: str, kind: str = "", subject: str = "") -> None:
        """Forget what a change makes stale (called by the change-feed follower and by
        writes made in this process, so a worker sees its own writes at once)."""
        if kind == "unit" and subject:
            self._units.pop((gtin, subject), None)
            self._note_record(gtin, subject)
            return
        if kind == "line":  # a batch's line state: nothing else of the GTIN changed
            self.lines.invalidate(subject or None)
            return
        data = self._gtins.get(gtin)
        if data is not None:  # stale, not gone: if the store is down the old data still serves
            self._gtins[gtin] = data._replace(loaded_at=float("-inf"))
        if kind in ("", "links"):
            for key in [k for k in self._serial_links if k[0] == gtin]:
                del self._serial_links[key]
        if kind in ("", "batch", "import") and self.verifier is not None:
            self.verifier.invalidate(gtin)
        if kind == "":
            self.lines.invalidate_gtin(gtin)
            for key in [k for k in self._units if k[0] == gtin]:
                del self._units[key]

    def invalidate_all(self) -> None:
        self.lines.invalidate()
        self._units.clear()
        self._gtins.clear()
        self._serial_links.clear()
        if self.verifier is not None and hasattr(self.verifier, "invalidate_all"):
            self.verifier.invalidate_all()

    def _note_record(self, gtin: str, serial: str) -> None:
        if self.presence is not None:
            self.presence.add((gtin, serial))
        if self._presence_adds is not None:
            self._presence_adds.append((gtin, serial))

    async def build_presence(self) -> None:
        """(Re)build the filter of units with a record from the store, then swap it in.

        Call it only after the change-feed cursor is taken: a unit written later is then
        either in the scan or in the feed. Units recorded while the scan runs are kept
        aside and added to the new filter before the swap.

        Cost as the installed base grows: the keys are streamed from the store chunk by
        chunk and only their hashes kept (8 bytes a unit in one array, not a tuple of two
        strings at ~150 bytes), and the bits are set in a thread without the GIL, so
        10M registered units cost ~80 MB transiently and ~40 MB of filter, and scans go
        on between chunks. Until the first filter is swapped in, ``presence`` is None
        and every scan reads the store: slower, never wrong.
        """
        self._presence_adds = []
        try:
            hashes = array("q")
            async for chunk in self.store.unit_keys():
                hashes.extend(map(hash, chunk))
                await asyncio.sleep(0)  # let scans through while a big table is read
            fresh = BloomFilter.for_capacity(max(len(hashes) * 2, 1 << 16))
            if len(hashes) > _INLINE_HASHES:
                await asyncio.to_thread(fresh.add_hashes, hashes)
            else:
                fresh.add_hashes(hashes)
            del hashes
            for key in self._presence_adds:
                fresh.add(key)
            self.presence = fresh
            self.stats.presence_builds += 1
        finally:
            self._presence_adds = None

    async def follow_changes(self, interval: float, presence_rebuild: float = 600.0) -> None:
        """Poll the store's change feed forever (a background task per worker).

        The first round takes the cursor, then builds the presence filter; every
        ``presence_rebuild`` seconds (or when it fills up) the filter is rebuilt, a
        backstop against a feed entry lost between a write and its feed append.
        """
        next_rebuild = 0.0
        while True:
            try:
                if self._cursor is None:
                    self._cursor = await self.store.changes_cursor()
                    await self.build_presence()
                    next_rebuild = time.monotonic() + presence_rebuild
                elif time.monotonic() > next_rebuild or (self.presence is not None and self.presence.load > 1 / 12):
                    await self.build_presence()
                    next_rebuild = time.monotonic() + presence_rebuild
                batch = await self.store.changes(self._cursor)
                if batch.reset:
                    self.invalidate_all()
                    self.presence = None  # rebuilt from a fresh cursor next round
                    self._cursor = None
                    continue
                for change in batch.changes:
                    self.invalidate(change.gtin, change.kind, change.subject)
                self._cursor = batch.cursor
                if batch.changes:
                    continue  # more may be waiting
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.store_errors += 1
                _warn("feed", "change feed unavailable: %s", exc)
            await asyncio.sleep(interval)
