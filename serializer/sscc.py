"""SSCCs (AI 00) for cases and pallets, allocated like serial batches: durable and idempotent.

An SSCC is ``extension digit + GS1 company prefix + serial reference + check digit`` (18
digits); the serial reference has ``16 - len(prefix)`` digits. Serial references come from
the store's range allocator (``allocate_range``), the one batches use, so the guarantees are
the same: a range is recorded atomically before any SSCC leaves, a retry with the same
request id gets the same range back, and no counter is ever handed out twice — even after a
crash, since the counter only moves inside that atomic write.

The allocator is keyed by (GTIN, profile). SSCC ranges live under the 14 digits
``extension + first 4 prefix digits + zeros + check digit`` (no trade item's serials can sit
there: serial profiles may not be called ``sscc-…``, see ``serializer.profiles``), with the
profile ``sscc-p<rest of the prefix>``: one counter per (extension, prefix), and every prefix
that could overlap another (``9506000`` and ``95060001`` write the same SSCCs) under the same
key, so a prefix that is a prefix or an extension of one already used is refused (the
first use of each prefix is registered under the key, profile ``sscc-registry``). A line
credential must cover :func:`scope_key`, whose body starts with the whole company prefix.

>>> sscc_of(1, "0614141", 123456789)  # GS1 General Specifications' example SSCC
'106141411234567897'
>>> check_sscc("106141411234567897")
'106141411234567897'
>>> check_sscc("106141411234567890")
Traceback (most recent call last):
...
serializer.errors.MintError: sscc: check digit is 7, not 0 ('106141411234567890')
>>> allocator_key(3, "0614141"), allocator_profile("0614141"), scope_key(3, "0614141"), capacity("0614141")
('30614000000000', 'sscc-p141', '30614141000006', 1000000000)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ext import compute_check_digit
from serializer.errors import MintConflict, MintError, MintRefused, MintTooLarge
from twin.batch import Batch, BatchKind, BatchStatus
from twin.errors import IdempotencyConflict, InvalidInput
from twin.events import Actor
from twin.identity import check_name

#: Profile names of SSCC ranges in the allocator: ``sscc-p`` + the prefix after its 4th digit.
PROFILE_PREFIX = "sscc-p"
#: The allocator profile recording which prefixes use a key, in the order they came.
REGISTRY = "sscc-registry"
#: SSCCs one request may ask for: a shift's pallets and cases, written before the answer.
MAX_COUNT = 1_000_000
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_DIGEST_VERSION = 1
#: GS1 prefixes that are not company prefixes (GS1 General Specifications 1.4.2-1.4.4):
#: restricted circulation numbers (02, 04, 20-29), ISSN/ISBN/ISMN (977-979), refund
#: receipts and coupons (98, 99). An SSCC from them would not be globally unique.
_NOT_A_COMPANY_PREFIX = (("02", "restricted circulation"), ("04", "restricted circulation"),
                         ("2", "restricted circulation"), ("977", "ISSN"), ("978", "ISBN"),
                         ("979", "ISBN/ISMN"), ("98", "refund receipts"), ("99", "coupons"))


def check_prefix(value: object, field: str = "prefix") -> str:
    """A GS1 company prefix: 4-12 digits (the GCP position rule of AI 00: at least 4), not a
    GS1 prefix reserved for something else.

    >>> check_prefix("95060001")
    '95060001'
    >>> check_prefix("123")
    Traceback (most recent call last):
    ...
    serializer.errors.MintError: prefix: expected a GS1 company prefix of 4-12 digits, got '123'
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or not 4 <= len(value) <= 12:
        raise MintError(field, f"expected a GS1 company prefix of 4-12 digits, got {value!r:.40}")
    for start, what in _NOT_A_COMPANY_PREFIX:
        if value.startswith(start):
            raise MintError(field, f"{value} starts with GS1 prefix {start} ({what}), which is no company "
                                   f"prefix: SSCCs need the prefix GS1 licensed to the company")
    return value


def check_extension(value: object, field: str = "extension") -> int:
    """The SSCC's extension digit, 0-9 (the company's choice, e.g. one per packing site)."""
    if isinstance(value, str) and len(value) == 1 and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return value
    raise MintError(field, f"expected one digit 0-9, got {value!r:.40}")


def capacity(prefix: str) -> int:
    """How many serial references the prefix leaves: ``10 ** (16 - len(prefix))``."""
    return 10 ** (16 - len(prefix))


def sscc_of(extension: int, prefix: str, reference: int) -> str:
    """The 18-digit SSCC of serial reference ``reference`` (zero-padded), check digit computed."""
    body = f"{extension}{prefix}{reference:0{16 - len(prefix)}d}"
    if len(body) != 17:
        raise MintError("count", f"serial reference {reference} does not fit {16 - len(prefix)} digits")
    return body + str(compute_check_digit(body))


def check_sscc(value: object, field: str = "sscc") -> str:
    """An SSCC as 18 digits with a correct check digit (what pack/unpack and /00 accept)."""
    if not isinstance(value, str) or len(value) != 18 or not value.isascii() or not value.isdigit():
        raise MintError(field, f"expected 18 digits, got {value!r:.40}")
    expected = compute_check_digit(value[:17])
    if str(expected) != value[17]:
        raise MintError(field, f"check digit is {expected}, not {value[17]} ({value!r})")
    return value


def _key(body: str) -> str:
    body = body.ljust(13, "0")
    return body + str(compute_check_digit(body))


def allocator_key(extension: int, prefix: str) -> str:
    """The 14-digit key the allocator files SSCC ranges under: every prefix sharing the
    first 4 digits (GS1's minimum prefix length) shares it, so overlaps can be seen."""
    return _key(f"{extension}{prefix[:4]}")


def scope_key(extension: int, prefix: str) -> str:
    """The 14 digits a credential's product scope is checked against: a token or line key
    scoped to the company prefix (``prefixes``) covers them."""
    return _key(f"{extension}{prefix}")


def allocator_profile(prefix: str) -> str:
    return f"{PROFILE_PREFIX}{prefix[4:]}"


def is_sscc_batch(batch: Batch) -> bool:
    return batch.profile.startswith(PROFILE_PREFIX)


def range_owner(batch_id: str) -> tuple[str, int]:
    """(prefix, extension) of an SSCC range id, read from the id alone (authorise before any
    store read). MintError if the id is no SSCC range."""
    key, profile, _ = batch_id.split(".") if batch_id.count(".") == 2 else ("", "", "")
    rest = profile[len(PROFILE_PREFIX):]
    if not profile.startswith(PROFILE_PREFIX) or not key.isdigit() or len(key) != 14 or not rest.isdigit() and rest:
        raise MintError("batch_id", f"{batch_id!r} is no SSCC range id")
    return key[1:5] + rest, int(key[0])


@dataclass(frozen=True, slots=True)
class SsccRequest:
    """What a packing line asks for; everything but the request id is in the digest."""

    prefix: str
    extension: int
    count: int
    request_id: str
    site: str | None = None
    line: str | None = None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> SsccRequest:
        """Validate a JSON-ish mapping (HTTP body, CLI flags); MintError names the bad field."""
        if not isinstance(body, Mapping):
            raise MintError("body", "expected a JSON object")
        prefix = check_prefix(body.get("prefix"))
        extension = check_extension(body.get("extension"))
        count = body.get("count")
        if isinstance(count, str) and count.isascii() and count.isdigit():
            count = int(count)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise MintError("count", f"expected a whole number from 1 to {MAX_COUNT:,}, got {count!r:.40}")
        if count > MAX_COUNT:
            raise MintTooLarge("count", f"{count:,} is over the cap of {MAX_COUNT:,} SSCCs per request; "
                                        f"split it into several requests")
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            raise MintError("request_id", "expected 1-100 characters of letters, digits and . _ : -")
        site, line = body.get("site") or None, body.get("line") or None
        for name, value in (("site", site), ("line", line)):
            if value is not None:
                try:
                    check_name(value, name)
                except InvalidInput as exc:
                    raise MintError(name, exc.problem) from None
        return cls(prefix, extension, count, request_id, site, line)

    @property
    def key(self) -> str:
        return allocator_key(self.extension, self.prefix)

    @property
    def profile(self) -> str:
        return allocator_profile(self.prefix)

    @property
    def scope(self) -> str:
        return scope_key(self.extension, self.prefix)

    def params_digest(self) -> str:
        body = {"v": _DIGEST_VERSION, "kind": "sscc", "prefix": self.prefix, "extension": self.extension,
                "count": self.count, "site": self.site, "line": self.line}
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class SsccBatch:
    """A durable range of serial references under one (extension, prefix)."""

    batch: Batch
    prefix: str
    extension: int

    def sscc(self, index: int) -> str:
        return sscc_of(self.extension, self.prefix, self.batch.start + index)

    def ssccs(self) -> list[str]:
        return [self.sscc(i) for i in range(self.batch.count)]


def sscc_batch(batch: Batch) -> SsccBatch:
    """The SsccBatch of a stored SSCC range (listing, regenerating files)."""
    if not is_sscc_batch(batch):
        raise MintError("batch_id", f"batch {batch.id} is a serial batch, not an SSCC range")
    prefix, extension = range_owner(batch.id)
    return SsccBatch(batch, prefix, extension)


async def mint_ssccs(store, request: SsccRequest, actor: Actor) -> SsccBatch:
    """Allocate (or find again) the SSCC range of ``request``; refuse past the prefix's capacity."""
    limit = capacity(request.prefix)
    first = await _claim_prefix(store, request, actor)
    if first is not None:
        raise MintRefused("prefix", _overlap_text(request, first))
    ranges = await store.batch_ranges(request.key, request.profile)
    issued = max((r.start + r.count for r in ranges), default=0)
    if issued + request.count > limit and await _existing(store, request) is None:
        raise MintRefused("count", _full_text(request, issued, limit))
    try:
        batch = await store.allocate_range(request.key, request.profile, request.count, request.request_id,
                                           request.params_digest(), actor=actor, site=request.site,
                                           line=request.line)
    except IdempotencyConflict:
        raise MintConflict("request_id", f"{request.request_id!r} was already used for other parameters "
                                         f"(prefix, extension, count, site or line); use a new request id") from None
    except InvalidInput as exc:
        raise MintError(exc.field, exc.problem) from None
    if batch.kind is not BatchKind.MINTED or not is_sscc_batch(batch):
        raise MintConflict("request_id", f"{request.request_id!r} names a serial batch, not SSCCs")
    if batch.end > limit:
        # a concurrent request took the last references: this range never issues
        if batch.status is not BatchStatus.VOIDED:
            await store.set_batch_status(batch.id, BatchStatus.VOIDED, Actor("system", "serializer"),
                                         "SSCC serial references exhausted by concurrent allocations; never issued")
        raise MintRefused("count", _full_text(request, batch.start, limit))
    if batch.status is BatchStatus.VOIDED:
        raise MintConflict("request_id", f"SSCC range {batch.id} of request {request.request_id!r} was voided "
                                         f"({batch.status_reason or 'no reason given'}); use a new request id")
    return SsccBatch(batch, request.prefix, request.extension)


async def list_ssccs(store, prefix: str, extension: int) -> list[SsccBatch]:
    """Every SSCC range issued under (extension, prefix), in range order."""
    key = allocator_key(extension, prefix)
    return [SsccBatch(b, prefix, extension) for b in await store.list_batches(key, allocator_profile(prefix))]


async def _claim_prefix(store, request: SsccRequest, actor: Actor) -> str | None:
    """Register the prefix under its key (once: an allocation of one counter in the
    ``sscc-registry`` profile, idempotent by ``prefix-<prefix>``), then return the prefix
    that overlaps it and was registered first, if any. Registrations are ordered by their
    counter, which the store hands out atomically, so of two overlapping prefixes started at
    the same moment exactly one may issue."""
    registered = await store.list_batches(request.key, REGISTRY)
    mine = next((b for b in registered if b.request_id == f"prefix-{request.prefix}"), None)
    if mine is None:
        digest = hashlib.sha256(f"sscc-prefix:{request.prefix}".encode()).hexdigest()[:32]
        mine = await store.allocate_range(request.key, REGISTRY, 1, f"prefix-{request.prefix}", digest, actor=actor)
        registered = await store.list_batches(request.key, REGISTRY)
    for other in sorted(registered, key=lambda b: b.start):
        prefix = other.request_id.removeprefix("prefix-")
        if other.start >= mine.start:
            return None
        if prefix.startswith(request.prefix) or request.prefix.startswith(prefix):
            return prefix
    return None


def _overlap_text(request: SsccRequest, first: str) -> str:
    return (f"{request.prefix} overlaps company prefix {first}, already used for SSCCs with extension "
            f"{request.extension} (the same 17 digits would come out twice); GS1 company prefixes never "
            f"overlap: check the prefix")


async def _existing(store, request: SsccRequest) -> Batch | None:
    for batch in await store.list_batches(request.key, request.profile):
        if batch.request_id == request.request_id:
            return batch
    return None


def _full_text(request: SsccRequest, issued: int, limit: int) -> str:
    return (f"{request.count:,} more SSCCs would pass the {limit:,} serial references of extension "
            f"{request.extension} and prefix {request.prefix} ({issued:,} issued); use another "
            f"extension digit or company prefix")
