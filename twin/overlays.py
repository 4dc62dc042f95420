"""Recall, theft and suspect overlays: flags put on a whole GTIN, a lot, a serial or
counter range, or a single serial, without touching the units they cover. ``suspect`` is
put by clone detection (resolver.analytics.clones) on a unit that behaves like a copy.

The resolver keeps a GTIN's overlays in process (they are few) and asks, per scan, which
flags apply:

>>> from datetime import datetime, timezone
>>> from twin.events import Actor
>>> from twin.overlays import Overlay, LotScope, SerialRange, flags_for
>>> at = datetime(2025, 1, 1, tzinfo=timezone.utc)
>>> qa = Actor("manufacturer", "qa@example.com")
>>> recall = Overlay("ov1", "09506000134352", "recalled", LotScope("L42"), "contamination", qa, at)
>>> theft = Overlay("ov2", "09506000134352", "stolen", SerialRange("1000", "1999"), "truck 7", qa, at)
>>> sorted(flags_for([recall, theft], serial="1500", lot="L42"))
['recalled', 'stolen']
>>> sorted(flags_for([recall, theft], serial="999", lot="L43"))
[]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from twin.errors import InvalidInput
from twin.events import Actor
from twin.identity import check_lot, check_name, check_serial

OVERLAY_KINDS = ("recalled", "stolen", "suspect")


class GtinScope(NamedTuple):
    """Every unit of the GTIN."""


class LotScope(NamedTuple):
    lot: str


class SerialRange(NamedTuple):
    """``first``…``last`` inclusive, serials compared by length then character: numeric
    order for digit strings without leading zeros, plain order for fixed-width ones."""

    first: str
    last: str


class CounterRange(NamedTuple):
    """Minted units by counter (what the serialiser's permutation inverts a serial to)."""

    profile: str
    first: int
    last: int


class SerialScope(NamedTuple):
    serial: str


Scope = GtinScope | LotScope | SerialRange | CounterRange | SerialScope
SCOPE_NAMES: dict[type, str] = {
    GtinScope: "gtin",
    LotScope: "lot",
    SerialRange: "serials",
    CounterRange: "counters",
    SerialScope: "serial",
}
SCOPE_TYPES = {name: cls for cls, name in SCOPE_NAMES.items()}


class Lift(NamedTuple):
    at: datetime
    actor: Actor
    reason: str


@dataclass(frozen=True, slots=True)
class Overlay:
    """A recall, theft report or clone suspicion over a scope. Lifting keeps the record (history)."""

    id: str
    gtin: str
    kind: str
    scope: Scope
    reason: str
    actor: Actor
    created_at: datetime
    lifted: Lift | None = None

    @property
    def active(self) -> bool:
        return self.lifted is None


def _serial_order(serial: str) -> tuple[int, str]:
    return (len(serial), serial)


def check_scope(scope: object) -> Scope:
    """Validate a scope; raise InvalidInput naming the field."""
    if isinstance(scope, GtinScope):
        return scope
    if isinstance(scope, LotScope):
        return LotScope(check_lot(scope.lot, "overlay.scope.lot"))
    if isinstance(scope, SerialScope):
        return SerialScope(check_serial(scope.serial, "overlay.scope.serial"))
    if isinstance(scope, SerialRange):
        first = check_serial(scope.first, "overlay.scope.first")
        last = check_serial(scope.last, "overlay.scope.last")
        if _serial_order(first) > _serial_order(last):
            raise InvalidInput("overlay.scope", f"first {first!r} comes after last {last!r}")
        return SerialRange(first, last)
    if isinstance(scope, CounterRange):
        check_name(scope.profile, "overlay.scope.profile")
        for name in ("first", "last"):
            value = getattr(scope, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidInput(f"overlay.scope.{name}", f"expected a counter >= 0, got {value!r}")
        if scope.first > scope.last:
            raise InvalidInput("overlay.scope", f"first {scope.first} comes after last {scope.last}")
        return scope
    raise InvalidInput("overlay.scope", f"expected one of {', '.join(SCOPE_TYPES)}, got {type(scope).__name__}")


def check_kind(kind: object) -> str:
    if kind not in OVERLAY_KINDS:
        raise InvalidInput("overlay.kind", f"expected one of {', '.join(OVERLAY_KINDS)}, got {kind!r}")
    return kind  # `in OVERLAY_KINDS` narrowed it to str


def covers(
    scope: Scope,
    *,
    serial: str | None = None,
    lot: str | None = None,
    profile: str | None = None,
    counter: int | None = None,
) -> bool:
    """Does ``scope`` cover a unit known by these facts (any may be unknown)?"""
    if isinstance(scope, GtinScope):
        return True
    if isinstance(scope, LotScope):
        return lot is not None and lot == scope.lot
    if isinstance(scope, SerialScope):
        return serial is not None and serial == scope.serial
    if isinstance(scope, SerialRange):
        return serial is not None and _serial_order(scope.first) <= _serial_order(serial) <= _serial_order(scope.last)
    return profile == scope.profile and counter is not None and scope.first <= counter <= scope.last


def flags_for(
    overlays: Iterable[Overlay],
    *,
    serial: str | None = None,
    lot: str | None = None,
    profile: str | None = None,
    counter: int | None = None,
) -> frozenset[str]:
    """The overlay kinds (``recalled``, ``stolen``, ``suspect``) active on one unit."""
    return frozenset(
        o.kind
        for o in overlays
        if o.lifted is None and covers(o.scope, serial=serial, lot=lot, profile=profile, counter=counter)
    )
