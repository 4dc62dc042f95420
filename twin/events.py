"""Events: the only way a unit's record changes. Appended, never rewritten.

Every event says who (role + principal), when, where (optional) and why, and carries
type-specific data checked against a table, so an unknown type or field is refused
before anything is written:

>>> from datetime import datetime, timezone
>>> from twin.events import Actor, make_event
>>> ev = make_event("sell", Actor("retailer", "gln:9506000000005"), "till 4, receipt 118",
...                 at=datetime(2025, 3, 1, 12, tzinfo=timezone.utc),
...                 purchase_date="2025-03-01", jurisdiction="EU")
>>> ev.type, ev.data["purchase_date"], ev.actor.role
('sell', '2025-03-01', 'retailer')
>>> make_event("teleport", Actor("owner", "o_1"), "why not")
Traceback (most recent call last):
...
twin.errors.UnknownEventType: event.type: unknown event type 'teleport'; known: commission, decommission, ship, sell, register, start_service, end_service, service, firmware, transfer_offer, transfer_cancel, transfer_claim, end_of_life, report_stolen, recovered, recall, recall_lift, dpp, install, support
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson

from twin.errors import InvalidInput, PayloadTooLarge, UnknownEventType
from twin.identity import check_lot, check_text

ROLES = frozenset(
    {
        "manufacturer",  # brand owner staff and its systems
        "line",  # a packaging line / serialiser client
        "logistics",
        "retailer",
        "owner",  # the registered owner of this unit
        "consumer",  # anyone else, unauthenticated
        "installer",
        "technician",
        "regulator",
        "system",  # Serialink itself (batch voids, migrations)
    }
)

#: Encoded size limit of one event's data. DPP documents larger than this belong behind
#: a link (``href``): every read of the event list would otherwise carry them.
MAX_EVENT_DATA_BYTES = 64 * 1024
MAX_REASON = 1000
MAX_WHERE = 200
MAX_PRINCIPAL = 200
MAX_LIST = 50

_JURISDICTION = re.compile(r"[A-Z]{2,3}(-[A-Z0-9]{1,3})?")
_OWNER_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_URL = re.compile(r"https?://[^\s]{1,2040}")


class Actor(NamedTuple):
    """Who did it: a role from ``ROLES`` and the principal (user, client or system id)."""

    role: str
    principal: str


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded change. Build with :func:`make_event`, which validates; the plain
    constructor is for decoding what the store already accepted."""

    type: str
    actor: Actor
    at: datetime
    reason: str
    where: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


class _Field(NamedTuple):
    kind: str  # text | texts | date | datetime | hex64 | owner | jurisdiction | lot | url | document | choice
    required: bool = False
    max_len: int = 200
    choices: tuple[str, ...] = ()  # the values a "choice" may take


#: How a troubleshooting session ended (the ``outcome`` of a ``support`` event).
SUPPORT_OUTCOMES = ("resolved", "escalated", "technician_booked")


# The event vocabulary. Lifecycle effects live in twin.lifecycle; this table only says
# what data each type carries, so that validation needs no knowledge of state.
EVENT_DATA: dict[str, dict[str, _Field]] = {
    "commission": {"lot": _Field("lot"), "batch_id": _Field("text", max_len=100), "expiry": _Field("date")},
    "decommission": {},
    "ship": {"to": _Field("text")},
    "sell": {
        "purchase_date": _Field("date", True),
        "jurisdiction": _Field("jurisdiction"),
        "retailer": _Field("text"),
    },
    "register": {
        "owner": _Field("owner", True),
        "purchase_date": _Field("date"),
        "jurisdiction": _Field("jurisdiction"),
    },
    "start_service": {"ticket": _Field("text", max_len=100)},
    "end_service": {"ticket": _Field("text", max_len=100)},
    # parts fitted and fault codes read: lists of short texts (part numbers, codes as shown)
    "service": {"summary": _Field("text", True, 2000), "ticket": _Field("text", max_len=100),
                "parts": _Field("texts", max_len=100), "fault_codes": _Field("texts", max_len=64)},
    "firmware": {"version": _Field("text", True, 64)},
    "transfer_offer": {"code_hash": _Field("hex64", True), "expires_at": _Field("datetime", True)},
    "transfer_cancel": {},
    "transfer_claim": {"code_hash": _Field("hex64", True), "owner": _Field("owner", True)},
    "end_of_life": {},
    "report_stolen": {},
    "recovered": {},
    "recall": {},
    "recall_lift": {},
    "dpp": {"href": _Field("url"), "document": _Field("document")},
    # a certified installer fitted the unit at a site: where, when, who (the company and its
    # certification) and the market whose warranty rules apply
    "install": {"site": _Field("text", True, 300), "installed_on": _Field("date", True),
                "certification": _Field("text", True, 100), "company": _Field("text", True, 200),
                "jurisdiction": _Field("jurisdiction")},
    # a troubleshooting session: which fault code, which catalogue steps were tried, how it ended
    "support": {"fault_code": _Field("text", True, 64), "steps": _Field("texts", max_len=500),
                "outcome": _Field("choice", True, choices=SUPPORT_OUTCOMES), "session": _Field("text", max_len=100),
                "notes": _Field("text", max_len=2000)},
}
EVENT_TYPES = tuple(EVENT_DATA)


def utc_ms(at: datetime, field_name: str = "event.at") -> datetime:
    """Normalise an aware datetime to UTC at millisecond precision (what the stores keep)."""
    if not isinstance(at, datetime):
        raise InvalidInput(field_name, f"expected a datetime, got {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput(field_name, "must be timezone-aware (UTC recommended)")
    at = at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def now_utc() -> datetime:
    return utc_ms(datetime.now(UTC))


def check_actor(actor: object, field_name: str = "event.actor") -> Actor:
    if not isinstance(actor, tuple) or len(actor) != 2:
        raise InvalidInput(field_name, "expected Actor(role, principal)")
    role, principal = actor
    if role not in ROLES:
        raise InvalidInput(f"{field_name}.role", f"unknown role {role!r}; known: {', '.join(sorted(ROLES))}")
    check_text(principal, f"{field_name}.principal", max_len=MAX_PRINCIPAL)
    return Actor(role, principal)


def _check_value(kind: _Field, value: Any, where: str) -> Any:
    """Validate one data value and return its stored (JSON-typed) form."""
    if kind.kind == "text":
        return check_text(value, where, max_len=kind.max_len)
    if kind.kind == "texts":
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or len(value) > MAX_LIST:
            raise InvalidInput(where, f"expected a list of up to {MAX_LIST} texts")
        return [check_text(v, f"{where}[{i}]", max_len=kind.max_len) for i, v in enumerate(value)]
    if kind.kind == "lot":
        return check_lot(value, where)
    if kind.kind == "choice":
        if value not in kind.choices:
            raise InvalidInput(where, f"expected one of {', '.join(kind.choices)}, got {value!r:.80}")
        return value
    if kind.kind == "date":
        if isinstance(value, datetime):
            raise InvalidInput(where, "expected a date, got a datetime")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str) and len(value) == 10:
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                pass
        raise InvalidInput(where, f"expected a date YYYY-MM-DD, got {value!r}")
    if kind.kind == "datetime":
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise InvalidInput(where, f"expected an ISO 8601 datetime, got {value!r}") from None
        return utc_ms(value, where).isoformat().replace("+00:00", "Z")
    if kind.kind == "hex64":
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise InvalidInput(where, "expected 64 lower-case hex digits (a SHA-256)")
        return value
    if kind.kind == "owner":
        if not isinstance(value, str) or not _OWNER_ID.fullmatch(value):
            raise InvalidInput(where, f"expected an owner id of 8-64 [A-Za-z0-9_-], got {value!r}")
        return value
    if kind.kind == "jurisdiction":
        if not isinstance(value, str) or not _JURISDICTION.fullmatch(value):
            raise InvalidInput(where, f"expected a jurisdiction code like EU, US or DE, got {value!r}")
        return value
    if kind.kind == "url":
        if not isinstance(value, str) or not _URL.fullmatch(value):
            raise InvalidInput(where, f"expected an absolute http(s) URL, got {value!r:.80}")
        return value
    if kind.kind == "document":
        if not isinstance(value, Mapping):
            raise InvalidInput(where, f"expected a JSON object, got {type(value).__name__}")
        try:
            return orjson.loads(orjson.dumps(value))  # a plain, JSON-typed copy
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise InvalidInput(where, f"is not JSON-serialisable: {exc}") from None
    raise AssertionError(kind)  # pragma: no cover - table typo


def check_event_data(event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``data`` for ``event_type``; return its normalised, JSON-typed copy."""
    spec = EVENT_DATA.get(event_type)
    if spec is None:
        raise UnknownEventType("event.type", f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    if not isinstance(data, Mapping):
        raise InvalidInput("event.data", f"expected a mapping, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name not in spec:
            known = ", ".join(spec) or "none"
            raise InvalidInput(f"event.data.{name}", f"unknown field for {event_type!r} (known: {known})")
        if value is None:
            continue
        out[name] = _check_value(spec[name], value, f"event.data.{name}")
    for name, kind in spec.items():
        if kind.required and name not in out:
            raise InvalidInput(f"event.data.{name}", f"required for {event_type!r}")
    if event_type == "dpp" and len(out) != 1:
        raise InvalidInput("event.data", "a dpp event carries exactly one of href (a link) or document")
    size = len(orjson.dumps(out))
    if size > MAX_EVENT_DATA_BYTES:
        hint = "; publish the document and record its link (href) instead" if event_type == "dpp" else ""
        raise PayloadTooLarge("event.data", f"is {size} bytes encoded, the limit is {MAX_EVENT_DATA_BYTES}{hint}")
    return out


def make_event(
    type: str,
    actor: Actor,
    reason: str,
    *,
    at: datetime | None = None,
    where: str | None = None,
    **data: Any,
) -> Event:
    """Build a validated event (``at`` defaults to now, UTC)."""
    return check_event(Event(type, actor, now_utc() if at is None else at, reason, where, data))


def check_event(event: Event) -> Event:
    """Validate every part of an event; return the normalised copy the stores record."""
    if not isinstance(event, Event):
        raise InvalidInput("event", f"expected an Event, got {type(event).__name__}")
    data = check_event_data(event.type, event.data)
    return Event(
        type=event.type,
        actor=check_actor(event.actor),
        at=utc_ms(event.at),
        reason=check_text(event.reason, "event.reason", max_len=MAX_REASON),
        where=check_text(event.where, "event.where", max_len=MAX_WHERE, required=False),
        data=MappingProxyType(data),
    )
