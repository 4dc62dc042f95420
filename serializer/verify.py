"""Did this system issue a scanned serial, and in which batch? (The resolver's ``unknown``.)

A minted serial is the permutation of a counter: inverting the permutation of each profile
bound to the GTIN gives the counter, and the GTIN's range index says which batch holds it.
No per-serial storage, no store read on the hot path once a GTIN is cached; imported serials
are looked up in the store. The resolver's change-feed follower calls :meth:`invalidate` when
a GTIN's batches change; a counter beyond every known range also refreshes the index (at
most once a second per profile), so a batch minted a moment ago is found before the feed
catches up.

>>> import asyncio, tempfile
>>> from twin.store import open_store
>>> from twin.events import Actor
>>> from serializer.keys import KeyStore
>>> from serializer.profiles import load_profiles
>>> from serializer.minting import BatchRequest, mint
>>> from serializer.verify import SerialVerifier
>>> async def demo(d):
...     async with await open_store(f"sqlite:///{d}/twin.db") as store:
...         keys, profiles = KeyStore(f"{d}/keys"), load_profiles()
...         request = BatchRequest.parse({"gtin": "09506000134352", "count": 5,
...                                       "profile": "default", "request_id": "r1"})
...         minted = await mint(store, keys, profiles, request, Actor("line", "l1"))
...         verifier = SerialVerifier(store, keys, profiles)
...         hit = await verifier.issued_by("09506000134352", minted.serial(3))
...         miss = await verifier.issued_by("09506000134352", "ZZZZZZZZZZZZ")
...         return hit.batch_id, hit.counter, hit.status, miss
>>> asyncio.run(demo(tempfile.mkdtemp()))
('09506000134352.default.0', 3, 'allocated', None)
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from ext.permutation import SerialPermutation
from serializer.keys import KeyStore
from serializer.profiles import SerialProfile, load_profiles
from settings import Settings
from twin.batch import Batch, RangeIndex

if TYPE_CHECKING:
    from twin.store import UnitStore

#: How often a counter beyond the known ranges may trigger a refresh of one index.
REFRESH_SECONDS = 1.0


class IssuedMatch(NamedTuple):
    """Where a serial came from: its batch (``twin.batch.Batch``: status, lot, expiry…),
    the profile, and the counter (minted) or ``None`` (imported). A NamedTuple: the
    resolver makes one per scan of a unit without a record."""

    gtin: str
    serial: str
    batch: Batch
    profile: str
    counter: int | None

    @property
    def batch_id(self) -> str:
        return self.batch.id

    @property
    def status(self) -> str:
        return str(self.batch.status)

    @property
    def kind(self) -> str:
        return str(self.batch.kind)


class _Gtin:
    """One GTIN's cache: permutations of its bound profiles and their range indexes."""

    __slots__ = ("permutations", "indexes", "batches", "ends", "refreshed", "record_mtime")

    def __init__(self) -> None:
        self.record_mtime: int | None = None
        self.permutations: list[tuple[str, SerialPermutation]] = []
        self.indexes: dict[str, RangeIndex] = {}
        # per profile, the batch records by their range's position in the index (None: not
        # read yet): a scan reaches its batch through one list slot, not the batch id's
        # string and a dict (at 100k batches a GTIN, each of those is a cache miss)
        self.batches: dict[str, list[Batch | None]] = {}
        self.ends: dict[str, int] = {}
        self.refreshed: dict[str, float] = {}


class SerialVerifier:
    """``await verifier.issued_by(gtin, serial) -> IssuedMatch | None``."""

    def __init__(self, store: UnitStore, keys: KeyStore, profiles: Mapping[str, SerialProfile], *,
                 max_gtins: int = 100_000) -> None:
        self.store = store
        self.keys = keys
        self.profiles = profiles
        self._gtins: dict[str, _Gtin] = {}
        self._batches: dict[str, Batch] = {}
        self._loading: dict[str, asyncio.Future[_Gtin]] = {}
        self._max = max_gtins
        self._slotted = 0  # batch records held in the GTINs' position lists (at most _max)

    @classmethod
    def from_settings(cls, store: UnitStore, settings: Settings) -> SerialVerifier:
        """The verifier a resolver app builds: keys from ``settings.key_dir``, profiles from
        the config directory's serial-profiles.yaml (the built-in ones when it has none)."""
        path = settings.config_dir / "serial-profiles.yaml"
        profiles = load_profiles(path if path.exists() else None)
        assert settings.key_dir is not None  # Settings fills in its default
        return cls(store, KeyStore(settings.key_dir), profiles)

    def invalidate(self, gtin: str | None = None) -> None:
        """Forget what is cached for ``gtin`` (every GTIN when None): its batches changed."""
        if gtin is None:
            self._gtins.clear()
            self._batches.clear()
            self._slotted = 0
            return
        self._gtins.pop(gtin, None)
        prefix = gtin + "."
        for batch_id in [b for b in self._batches if b.startswith(prefix)]:
            del self._batches[batch_id]

    async def issued_by(self, gtin: str, serial: str) -> IssuedMatch | None:
        cache = self._gtins.get(gtin)
        if cache is None:
            cache = await self._load(gtin)
        match = await self._find(gtin, serial, cache)
        if match is None and self._record_mtime(gtin) != cache.record_mtime:
            # a profile was bound since the GTIN was cached: its serials are new to us
            self._gtins.pop(gtin, None)
            match = await self._find(gtin, serial, await self._load(gtin))
        return match

    def _record_mtime(self, gtin: str) -> int | None:
        try:
            return os.stat(self.keys.path(gtin)).st_mtime_ns
        except (FileNotFoundError, ValueError):
            return None

    async def _find(self, gtin: str, serial: str, cache: _Gtin) -> IssuedMatch | None:
        for name, permutation in cache.permutations:
            counter = permutation.decode(serial)
            if counter is None:
                continue
            index = cache.indexes.get(name)
            if index is None or counter >= cache.ends.get(name, 0):
                index = await self._refresh(gtin, name, cache)
            position = index.position(counter)
            if position < 0:
                continue
            slots = cache.batches[name]
            batch = slots[position]
            if batch is None:
                batch = await self._batch(index.batch_id(position))
                if batch is None:
                    continue
                if self._slotted >= self._max:
                    self._empty_slots()  # (a GTIN dropped by invalidate still counts: a bound, not a tally)
                    slots = cache.batches[name]
                slots[position] = batch
                self._slotted += 1
            return IssuedMatch(gtin, serial, batch, name, counter)
        imported = await self.store.find_imported(gtin, serial)
        if imported is None:
            return None
        batch = await self._batch(imported)
        return None if batch is None else IssuedMatch(gtin, serial, batch, batch.profile, None)

    async def _load(self, gtin: str) -> _Gtin:
        pending = self._loading.get(gtin)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._loading[gtin] = future
        try:
            record = await asyncio.to_thread(self.keys.record, gtin)
            cache = _Gtin()
            cache.record_mtime = self._record_mtime(gtin)
            if record is not None:
                for bound in record.profiles:
                    profile = self.profiles.get(bound.name)
                    if profile is None:
                        continue
                    cache.permutations.append((bound.name, profile.permutation(record.key, gtin)))
            if len(self._gtins) >= self._max:
                self._gtins.pop(next(iter(self._gtins)))
            self._gtins[gtin] = cache
            future.set_result(cache)
            return cache
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            self._loading.pop(gtin, None)

    async def _refresh(self, gtin: str, profile: str, cache: _Gtin) -> RangeIndex:
        now = time.monotonic()
        index = cache.indexes.get(profile)
        if index is not None and now - cache.refreshed.get(profile, 0.0) < REFRESH_SECONDS:
            return index
        ranges = await self.store.batch_ranges(gtin, profile)
        index = RangeIndex(ranges)
        cache.indexes[profile] = index
        cache.batches[profile] = [None] * len(index)
        cache.ends[profile] = max((r.start + r.count for r in ranges), default=0)
        cache.refreshed[profile] = now
        return index

    def _empty_slots(self) -> None:
        """Forget every batch record held by position (they are read again as scanned):
        the bound on what the verifier keeps, like the one on ``_batches``."""
        for cache in self._gtins.values():
            for profile, slots in cache.batches.items():
                cache.batches[profile] = [None] * len(slots)
        self._slotted = 0

    async def _batch(self, batch_id: str) -> Batch | None:
        known = self._batches.get(batch_id)
        if known is not None:
            return known
        batch = await self.store.get_batch(batch_id)
        if batch is not None:
            if len(self._batches) >= self._max:
                self._batches.pop(next(iter(self._batches)))
            self._batches[batch_id] = batch
        return batch
