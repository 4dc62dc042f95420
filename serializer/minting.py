"""Minting a batch: validate the request, bind the profile, allocate durably, derive serials.

``request → validate → bind profile to GTIN (key store) → guess-ratio check → allocate the
counter range in the store (durable, idempotent per request id) → serials = permutation of
the range``. Nothing is written to any file before the store has the batch; the same request
id gives back the same batch, hence the same serials and byte-identical files.

>>> import asyncio, tempfile, os
>>> from twin.store import open_store
>>> from twin.events import Actor
>>> from serializer.keys import KeyStore
>>> from serializer.profiles import load_profiles
>>> from serializer.minting import BatchRequest, mint
>>> async def demo(d):
...     async with await open_store(f"sqlite:///{d}/twin.db") as store:
...         request = BatchRequest.parse({"gtin": "09506000134352", "count": 3,
...                                       "profile": "default", "request_id": "line7-0001"})
...         keys = KeyStore(f"{d}/keys")
...         batch = await mint(store, keys, load_profiles(), request, Actor("line", "line-7"))
...         again = await mint(store, keys, load_profiles(), request, Actor("line", "line-7"))
...         return batch.batch.id, batch.batch.count, batch.serials() == again.serials()
>>> asyncio.run(demo(tempfile.mkdtemp()))
('09506000134352.default.0', 3, True)
>>> BatchRequest.parse({"gtin": "09506000134353", "count": 3, "profile": "default",
...                     "request_id": "x"})
Traceback (most recent call last):
...
serializer.errors.MintError: gtin: check digit is 2, not 3 ('09506000134353')
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from ext import compute_check_digit
from serializer.errors import (
    GuessabilityError,
    MintConflict,
    MintError,
    MintRefused,
    MintTooLarge,
    SourceConflict,
)
from serializer.keys import KeyStore
from serializer.profiles import SerialProfile, check_guessability
from twin.batch import MAX_ALLOCATION, Batch, BatchKind, BatchStatus
from twin.errors import IdempotencyConflict, InvalidInput
from twin.events import Actor
from twin.identity import check_lot, check_name

#: The most serials one request may ask for (the store's cap per allocation).
MAX_COUNT = MAX_ALLOCATION
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_DIGEST_VERSION = 1



def normalise_gtin(value: object, field: str = "gtin") -> str:
    """A GTIN-8/12/13/14 as the 14 digits Digital Link uses, check digit verified."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) not in (8, 12, 13, 14):
        raise MintError(field, f"expected a GTIN of 8, 12, 13 or 14 digits, got {value!r}")
    gtin = value.zfill(14)
    expected = compute_check_digit(gtin[:13])
    if str(expected) != gtin[13]:
        raise MintError(field, f"check digit is {expected}, not {gtin[13]} ({value!r})")
    return gtin


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def ai17_century(yy: int, today: date) -> int:
    """The year a scanner reads for AI (17) ``YY`` on ``today`` (GS1 General Specifications
    7.12: a YY 51-99 years ahead of today's is last century, 50-99 behind is next century).

    >>> ai17_century(80, date(2026, 1, 1)), ai17_century(76, date(2026, 1, 1)), ai17_century(99, date(2026, 1, 1))
    (1980, 2076, 1999)
    """
    century = today.year // 100 * 100
    diff = yy - today.year % 100
    if 51 <= diff <= 99:
        return century - 100 + yy
    if -99 <= diff <= -50:
        return century + 100 + yy
    return century + yy


def parse_expiry(value: object, today: date | None = None) -> date | None:
    """``YYYY-MM-DD`` (ASCII digits, a real day) whose year AI (17) carries unambiguously.

    AI (17) holds only ``YYMMDD``; scanners put it in the century GS1's rule picks around
    today, so a date outside that window (2080 read as 1980) is refused here rather than
    printed wrong.

    >>> parse_expiry("2027-12-31", date(2026, 1, 1))
    datetime.date(2027, 12, 31)
    >>> parse_expiry("2080-06-30", date(2026, 1, 1))
    Traceback (most recent call last):
    ...
    serializer.errors.MintError: expiry: 2080-06-30 is outside the years AI (17) can carry today (1977-2076): a scanner would read 800630 as 1980-06-30
    """
    if value is None or value == "":
        return None
    if isinstance(value, date):
        expiry = value
    elif isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            expiry = date.fromisoformat(value)
        except ValueError:
            raise MintError("expiry", f"{value!r} is not a calendar day; expected YYYY-MM-DD") from None
    else:
        raise MintError("expiry", f"expected a date YYYY-MM-DD, got {value!r}")
    today = today or date.today()
    read_as = ai17_century(expiry.year % 100, today)
    if read_as != expiry.year:
        first = ai17_century((today.year + 50) % 100 + 1, today)
        raise MintError("expiry", f"{expiry.isoformat()} is outside the years AI (17) can carry today "
                                  f"({first}-{first + 99}): a scanner would read {expiry.strftime('%y%m%d')} as "
                                  f"{read_as}-{expiry.month:02d}-{expiry.day:02d}")
    return expiry


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """What a line asks for. Everything here is part of the idempotency digest."""

    gtin: str
    count: int
    profile: str
    request_id: str
    lot: str | None = None
    expiry: date | None = None
    site: str | None = None
    line: str | None = None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> BatchRequest:
        """Validate a JSON-ish mapping (the HTTP body, the CLI's flags); MintError names
        the first bad field."""
        if not isinstance(body, Mapping):
            raise MintError("body", "expected a JSON object")
        gtin = normalise_gtin(body.get("gtin"))
        count = body.get("count")
        if isinstance(count, str) and count.isdigit():
            count = int(count)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise MintError("count", f"expected a whole number from 1 to {MAX_COUNT:,}, got {count!r}")
        if count > MAX_COUNT:
            raise MintTooLarge("count", f"{count:,} is over the cap of {MAX_COUNT:,} serials per "
                                     f"request; split the run into several requests")
        profile = _optional_text(body, "profile") or "default"
        _name(profile, "profile")
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            raise MintError("request_id", "expected 1-100 characters of letters, digits and . _ : -")
        lot = _optional_text(body, "lot")
        if lot is not None:
            try:
                check_lot(lot)
            except InvalidInput as exc:
                raise MintError("lot", exc.problem) from None
        site, line = _optional_text(body, "site"), _optional_text(body, "line")
        if site is not None:
            _name(site, "site")
        if line is not None:
            _name(line, "line")
        return cls(gtin, count, profile, request_id, lot, parse_expiry(body.get("expiry")), site, line)

    def params_digest(self) -> str:
        """What a retry with the same request id must repeat (everything but the id)."""
        body = {"v": _DIGEST_VERSION, "kind": "minted", "gtin": self.gtin, "count": self.count,
                "profile": self.profile, "lot": self.lot,
                "expiry": self.expiry.isoformat() if self.expiry else None,
                "site": self.site, "line": self.line}
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


@dataclass(frozen=True)
class MintedBatch:
    """A durable batch with what it takes to regenerate its serials."""

    batch: Batch
    profile: SerialProfile
    permutation: Any  # ext.permutation.SerialPermutation
    key: bytes | None = field(default=None, repr=False)  # for worker processes (images)

    def serials(self, offset: int = 0, count: int | None = None) -> list[str]:
        """Serials of the batch (a slice of it): for tests and small runs, not for millions."""
        count = self.batch.count - offset if count is None else count
        return self.permutation.encode_range(self.batch.start + offset, count)

    def serial(self, index: int) -> str:
        return self.permutation.encode(self.batch.start + index)


def _optional_text(body: Mapping[str, Any], field: str) -> str | None:
    """A text field that may be absent (``None`` or empty); any other type is refused by name
    rather than read as "absent" (``"lot": 0`` or ``"profile": []`` is a mistake, not a default)."""
    value = body.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MintError(field, f"expected text, got {type(value).__name__} {value!r:.40}")
    return value


def _name(value: object, field: str) -> str:
    try:
        return check_name(value, field)
    except InvalidInput as exc:
        raise MintError(field, exc.problem) from None


def find_profile(profiles: Mapping[str, SerialProfile], name: str) -> SerialProfile:
    profile = profiles.get(name)
    if profile is None:
        raise MintRefused("profile", f"unknown profile {name!r}; known: {', '.join(profiles)}")
    return profile


async def mint(store, keys: KeyStore, profiles: Mapping[str, SerialProfile], request: BatchRequest,
               actor: Actor) -> MintedBatch:
    """Allocate (or find again) the batch of ``request``; nothing leaves before this returns."""
    profile = find_profile(profiles, request.profile)
    if profile.max_issuable < request.count:
        raise MintRefused("profile", _guess_text(profile, request.count, 0))
    record = await _bind(keys.bind_profile, request.gtin, profile)
    digest = request.params_digest()
    ranges = await store.batch_ranges(request.gtin, profile.name)
    issued_end = max((r.start + r.count for r in ranges), default=0)
    try:
        check_guessability(profile, issued_end + request.count)
    except GuessabilityError:
        # a retry of an already allocated request is not a new issue
        if await _existing(store, request) is None:
            raise MintRefused("count", _guess_text(profile, request.count, issued_end)) from None
    try:
        batch = await store.allocate_range(
            request.gtin, profile.name, request.count, request.request_id, digest, actor=actor,
            lot=request.lot, expiry=request.expiry, line=request.line, site=request.site)
    except IdempotencyConflict:
        raise MintConflict("request_id", f"{request.request_id!r} was already used for a batch with other "
                                      f"parameters (GTIN, count, profile, lot, expiry, site or line); "
                                      f"use a new request id") from None
    except InvalidInput as exc:
        raise MintError(exc.field, exc.problem) from None
    if batch.kind is not BatchKind.MINTED:
        raise MintConflict("request_id", f"{request.request_id!r} names an import, not a minted batch")
    if batch.end > profile.max_issuable:
        # a concurrent allocation took the last of the allowed serials: this one never issues
        if batch.status is not BatchStatus.VOIDED:
            await store.set_batch_status(batch.id, BatchStatus.VOIDED, Actor("system", "serializer"),
                                         "guess ratio limit reached by concurrent allocations; never issued")
        raise MintRefused("count", _guess_text(profile, request.count, batch.start))
    if batch.status is BatchStatus.VOIDED:
        raise MintConflict("request_id", f"batch {batch.id} of request {request.request_id!r} was voided"
                                      f" ({batch.status_reason or 'no reason given'}); its serials are "
                                      f"never reissued: use a new request id")
    return MintedBatch(batch, profile, profile.permutation(record.key, request.gtin), record.key)


async def regenerate(batch: Batch, keys: KeyStore, profiles: Mapping[str, SerialProfile]) -> MintedBatch:
    """The MintedBatch of a stored batch (downloads, retries after a crash)."""
    profile = find_profile(profiles, batch.profile)
    record = await _bind(keys.bind_profile, batch.gtin, profile)
    return MintedBatch(batch, profile, profile.permutation(record.key, batch.gtin), record.key)


async def _bind(fn, *args):
    try:
        return await asyncio.to_thread(fn, *args)
    except SourceConflict as exc:
        raise MintConflict(exc.field, exc.reason) from None


async def _existing(store, request: BatchRequest) -> Batch | None:
    for batch in await store.list_batches(request.gtin, request.profile):
        if batch.request_id == request.request_id:
            return batch
    return None


def _guess_text(profile: SerialProfile, count: int, issued: int) -> str:
    return (f"{count:,} more serials of profile {profile.name!r} (after {issued:,} issued for this "
            f"GTIN) would pass its limit of {profile.max_issuable:,} per GTIN — the guess ratio "
            f"issued/space must stay below 1/10,000 (EU 2016/161 Art. 4(c)) and its space is "
            f"{profile.space:,}; use a profile with a larger space")
