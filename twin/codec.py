"""Stored form of every twin record: one format byte, then a msgpack array.

Arrays (not maps) because the unit record is decoded on every scan and arrays are the
smallest and fastest to unpack; a record written by an older version is a *shorter*
array, read with defaults for the missing tail. A change that cannot be expressed by
appending fields gets a new format byte, and decoders keep reading the old one.
Both backends store exactly these bytes, so there is one codec to get right.

>>> from twin.codec import encode_event, decode_event
>>> from twin.events import make_event, Actor
>>> from datetime import datetime, timezone
>>> ev = make_event("firmware", Actor("technician", "t-9"), "OTA", version="2.1.0",
...                 at=datetime(2025, 5, 1, tzinfo=timezone.utc))
>>> blob = encode_event(ev)
>>> blob[0], decode_event(blob, "demo") == ev
(1, True)
>>> decode_event(b"\\x07junk", "sl:{09506000134352}:e:X")
Traceback (most recent call last):
...
twin.errors.CorruptRecord: record 'sl:{09506000134352}:e:X' is unreadable: unknown format byte 7
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeVar

import msgpack

from twin.batch import Batch, BatchKind, BatchStatus
from twin.errors import CorruptRecord
from twin.events import Actor, Event
from twin.lifecycle import STATE_CODES, STATES_BY_CODE
from twin.links import LinkRecord
from twin.overlays import SCOPE_NAMES, SCOPE_TYPES, Lift, Overlay
from twin.ownership import PersonalData, TransferOffer
from twin.unit import Unit

FORMAT = 1  # the format byte every encoder writes today
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_packb: Callable[[object], bytes] = msgpack.packb  # a fresh packer per call: encoders run in the SQLite writer thread too
_unpackb = msgpack.unpackb
T = TypeVar("T")


def to_ms(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _ord(day: date | None) -> int | None:
    return None if day is None else day.toordinal()


def _day(n: int | None) -> date | None:
    return None if n is None else date.fromordinal(n)


def _pack(fields: Sequence[Any]) -> bytes:
    return bytes((FORMAT,)) + _packb(fields)


def _fields(blob: bytes, key: str, minimum: int) -> list[Any]:
    """Check the format byte and unpack; anything odd becomes CorruptRecord(key)."""
    if not blob:
        raise CorruptRecord(key, "empty value")
    if blob[0] != FORMAT:
        raise CorruptRecord(key, f"unknown format byte {blob[0]}")
    try:
        fields = _unpackb(memoryview(blob)[1:])
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise CorruptRecord(key, f"not msgpack ({type(exc).__name__})") from None
    if not isinstance(fields, list) or len(fields) < minimum:
        raise CorruptRecord(key, f"expected an array of at least {minimum} fields")
    return fields


def _decoding(key: str, build: Callable[[], T]) -> T:
    try:
        return build()
    except CorruptRecord:
        raise
    except Exception as exc:
        raise CorruptRecord(key, f"bad field ({type(exc).__name__}: {exc})") from None


# -- unit ---------------------------------------------------------------------------


def encode_unit(u: Unit) -> bytes:
    offer = u.transfer_offer
    return _pack(
        (
            STATE_CODES[u.state],
            u.version,
            u.lot,
            u.batch_id,
            _ord(u.expiry),
            (1 if u.recalled else 0) | (2 if u.stolen else 0),
            u.owner,
            _ord(u.purchase_date),
            u.jurisdiction,
            _ord(u.registered_on),
            _ord(u.transferred_on),
            None if offer is None else (offer.code_hash, to_ms(offer.expires_at)),
            u.firmware,
            u.services,
            _ord(u.last_service_on),
            u.dpp_version,
            u.dpp_href,
            _ord(u.ended_on),
            None if u.updated_at is None else to_ms(u.updated_at),
            None if u.origin is None else STATE_CODES[u.origin],
            _ord(u.installed_on),
            u.installed_by,
            u.installer_certification,
            _ord(u.made_on),
            _ord(u.firmware_on),
            [(part, day.toordinal()) for part, day in u.parts],
        )
    )


def decode_unit(blob: bytes, gtin: str, serial: str, key: str) -> Unit:
    f = _fields(blob, key, 20)

    def build() -> Unit:
        flags, offer, updated, origin = f[5], f[11], f[18], f[19]
        tail = f[20:26] + [None] * (26 - len(f))  # fields appended later: older records lack them
        return Unit(
            gtin,
            serial,
            STATES_BY_CODE[f[0]],
            f[1],
            f[2],
            f[3],
            _day(f[4]),
            bool(flags & 1),
            bool(flags & 2),
            f[6],
            _day(f[7]),
            f[8],
            _day(f[9]),
            _day(f[10]),
            None if offer is None else TransferOffer(offer[0], from_ms(offer[1])),
            f[12],
            f[13],
            _day(f[14]),
            f[15],
            f[16],
            _day(f[17]),
            None if updated is None else from_ms(updated),
            None if origin is None else STATES_BY_CODE[origin],
            _day(tail[0]),
            tail[1],
            tail[2],
            _day(tail[3]),
            _day(tail[4]),
            tuple((part, date.fromordinal(day)) for part, day in tail[5] or ()),
        )

    return _decoding(key, build)


# -- events -------------------------------------------------------------------------


def encode_event(e: Event) -> bytes:
    return _pack((e.type, to_ms(e.at), e.actor.role, e.actor.principal, e.reason, e.where, dict(e.data)))


def decode_event(blob: bytes, key: str) -> Event:
    f = _fields(blob, key, 7)
    return _decoding(key, lambda: Event(f[0], Actor(f[2], f[3]), from_ms(f[1]), f[4], f[5], MappingProxyType(f[6])))


# -- batches ------------------------------------------------------------------------


def encode_batch(b: Batch) -> bytes:
    """The batch without its id (gtin, profile and start live in the id, which is the
    record's key): Redis's allocation script can then file it under an id it computes."""
    return _pack(
        (
            b.count,
            str(b.status),
            str(b.kind),
            b.request_id,
            b.params_digest,
            to_ms(b.created_at),
            to_ms(b.updated_at),
            b.created_by.role,
            b.created_by.principal,
            b.lot,
            _ord(b.expiry),
            b.line,
            b.site,
            b.status_reason,
        )
    )


def decode_batch(blob: bytes, batch_id: str, key: str) -> Batch:
    f = _fields(blob, key, 14)

    def build() -> Batch:
        gtin, profile, start = batch_id.split(".")
        return Batch(
            batch_id,
            gtin,
            profile,
            int(start),
            f[0],
            BatchStatus(f[1]),
            BatchKind(f[2]),
            f[3],
            f[4],
            from_ms(f[5]),
            from_ms(f[6]),
            Actor(f[7], f[8]),
            f[9],
            _day(f[10]),
            f[11],
            f[12],
            f[13],
        )

    return _decoding(key, build)


# -- overlays -----------------------------------------------------------------------


def encode_overlay(o: Overlay) -> bytes:
    lift = o.lifted
    return _pack(
        (
            o.id,
            o.gtin,
            o.kind,
            SCOPE_NAMES[type(o.scope)],
            list(o.scope),
            o.reason,
            o.actor.role,
            o.actor.principal,
            to_ms(o.created_at),
            None if lift is None else (to_ms(lift.at), lift.actor.role, lift.actor.principal, lift.reason),
        )
    )


def decode_overlay(blob: bytes, key: str) -> Overlay:
    f = _fields(blob, key, 10)

    def build() -> Overlay:
        lift = f[9]
        return Overlay(
            f[0],
            f[1],
            f[2],
            SCOPE_TYPES[f[3]](*f[4]),
            f[5],
            Actor(f[6], f[7]),
            from_ms(f[8]),
            None if lift is None else Lift(from_ms(lift[0]), Actor(lift[1], lift[2]), lift[3]),
        )

    return _decoding(key, build)


# -- links, personal data, small records ----------------------------------------------


def encode_links(links: Sequence[LinkRecord]) -> bytes:
    return _pack([(l.link_type, l.href, l.title, l.type, list(l.hreflang), list(l.context)) for l in links])


def decode_links(blob: bytes, key: str) -> tuple[LinkRecord, ...]:
    f = _fields(blob, key, 0)
    return _decoding(key, lambda: tuple(LinkRecord(a, b, c, d, tuple(e), tuple(g)) for a, b, c, d, e, g in f))


def encode_personal(p: PersonalData) -> bytes:
    return _pack((p.name, p.contact))


def decode_personal(blob: bytes, key: str) -> PersonalData:
    f = _fields(blob, key, 2)
    return _decoding(key, lambda: PersonalData(f[0], f[1]))


def encode_record(*fields: Any) -> bytes:
    """Small internal records (idempotency results, allocation requests, audit lines)."""
    return _pack(fields)


def decode_record(blob: bytes, key: str, minimum: int) -> list[Any]:
    return _fields(blob, key, minimum)
