"""The unit record (digital twin): current state derived by folding the unit's events.

A unit's stored record is a snapshot of this fold, rewritten with every append so that a
read is one lookup; it can always be recomputed from the events (:func:`replay`). A unit
with no events is described by the batch that minted it (:func:`unit_from_batch`).

>>> from datetime import datetime, timezone
>>> from twin.events import Actor, make_event
>>> from twin.unit import replay
>>> at = datetime(2025, 3, 1, tzinfo=timezone.utc)
>>> line, shop = Actor("line", "line-7"), Actor("retailer", "shop-1")
>>> unit = replay("09506000134352", "ABC123", [
...     make_event("commission", line, "packed", at=at, lot="L42"),
...     make_event("sell", shop, "receipt 9", at=at, purchase_date="2025-03-01"),
... ])
>>> unit.state, unit.version, unit.lot, unit.purchase_date
(<State.SOLD: 'sold'>, 2, 'L42', datetime.date(2025, 3, 1))
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, NamedTuple

from twin.batch import Batch, BatchStatus
from twin.errors import IllegalTransition, InvalidInput
from twin.events import Event
from twin.lifecycle import State, next_state
from twin.ownership import TransferOffer, check_claim


class Unit(NamedTuple):
    """Everything a scan, a warranty query or an owner page needs to know about one unit.

    ``version`` counts the unit's own events: 0 means it has none and its state comes
    from its batch. ``owner`` is a pseudonymous id; personal data lives elsewhere.
    A NamedTuple rather than a frozen dataclass: it is built on every scan, and a tuple
    of 26 fields is built in a fifth of the time.
    """

    gtin: str
    serial: str
    state: State
    version: int = 0
    lot: str | None = None
    batch_id: str | None = None
    expiry: date | None = None
    recalled: bool = False
    stolen: bool = False
    owner: str | None = None
    purchase_date: date | None = None
    jurisdiction: str | None = None
    registered_on: date | None = None
    transferred_on: date | None = None  # the first change of owner after registration
    transfer_offer: TransferOffer | None = None
    firmware: str | None = None
    services: int = 0
    last_service_on: date | None = None
    dpp_version: int | None = None  # which event holds the current DPP data
    dpp_href: str | None = None  # set when that DPP data is a link
    ended_on: date | None = None  # end of life or decommissioning
    updated_at: datetime | None = None
    origin: State | None = None  # the batch-given state before the unit's first event
    installed_on: date | None = None  # the latest install event, else the first start_service
    installed_by: str | None = None  # the installing company, as its session named it
    installer_certification: str | None = None
    made_on: date | None = None  # manufacture: the commission event, or the minting batch's creation
    firmware_on: date | None = None  # the last firmware update
    parts: tuple[tuple[str, date], ...] = ()  # (part, last fitted on) per part named by service events

    def implied_origin(self) -> Unit | None:
        """The batch-implied unit the events were folded over (``None``: a commission
        event began it) — what :func:`replay` needs to recompute this record."""
        if self.origin is None:
            return None
        return Unit(self.gtin, self.serial, self.origin, 0, self.lot, self.batch_id, self.expiry, made_on=self.made_on)


def state_from_batch(batch: Batch) -> State:
    """The state of a unit that has no events: a voided batch's units are decommissioned."""
    return State.DECOMMISSIONED if batch.status is BatchStatus.VOIDED else State.COMMISSIONED


def unit_from_batch(gtin: str, serial: str, batch: Batch) -> Unit:
    """The implied record of a unit that has no events: its batch speaks for it."""
    return Unit(gtin, serial, state_from_batch(batch), 0, batch.lot, batch.id, batch.expiry,
                updated_at=batch.updated_at, made_on=batch.created_at.date())


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def apply_event(unit: Unit | None, event: Event, gtin: str, serial: str) -> Unit:
    """The unit after ``event``; raises IllegalTransition (with a reason) if refused.

    ``event`` must already be validated (twin.events.check_event). Pure: no I/O, no clock.
    """
    state = next_state(None if unit is None else unit.state, event.type)
    if unit is None:
        unit = Unit(gtin, serial, state)
    data, kind, day = event.data, event.type, event.at.date()
    changes: dict[str, Any] = {"state": state, "version": unit.version + 1, "updated_at": event.at}
    if unit.version == 0 and event.type != "commission":
        changes["origin"] = unit.state

    if kind == "commission":
        changes.update(lot=data.get("lot"), batch_id=data.get("batch_id"), expiry=_date(data.get("expiry")),
                       made_on=day)
    elif kind == "sell":
        changes.update(purchase_date=_date(data["purchase_date"]), jurisdiction=data.get("jurisdiction"))
    elif kind == "register":
        purchase = _date(data.get("purchase_date")) or unit.purchase_date
        if purchase is None:
            raise InvalidInput("event.data.purchase_date", "required: no sale is recorded for this unit")
        changes.update(
            owner=data["owner"],
            purchase_date=purchase,
            jurisdiction=data.get("jurisdiction") or unit.jurisdiction,
            registered_on=day,
        )
    elif kind == "service":
        changes.update(services=unit.services + 1, last_service_on=day)
        if data.get("parts"):
            fitted = dict(unit.parts)
            fitted.update((part, day) for part in data["parts"])
            changes["parts"] = tuple(sorted(fitted.items()))
    elif kind == "start_service":
        changes["installed_on"] = unit.installed_on or day
    elif kind == "firmware":
        changes.update(firmware=data["version"], firmware_on=day)
    elif kind == "transfer_offer":
        offer = unit.transfer_offer
        if offer is not None and offer.expires_at >= event.at:
            raise IllegalTransition(kind, state, f"a transfer is already pending until {offer.expires_at.isoformat()}; cancel it first")
        changes["transfer_offer"] = TransferOffer(data["code_hash"], datetime.fromisoformat(data["expires_at"]))
    elif kind == "transfer_cancel":
        if unit.transfer_offer is None:
            raise IllegalTransition(kind, state, "no transfer is pending for this unit")
        changes["transfer_offer"] = None
    elif kind == "transfer_claim":
        check_claim(unit.transfer_offer, data["code_hash"], event.at)
        if data["owner"] == unit.owner:
            raise IllegalTransition(kind, state, "the unit already belongs to this owner")
        changes.update(owner=data["owner"], transfer_offer=None, transferred_on=unit.transferred_on or day)
    elif kind in ("end_of_life", "decommission"):
        changes["ended_on"] = day
    elif kind in ("report_stolen", "recovered"):
        if unit.stolen == (kind == "report_stolen"):
            raise IllegalTransition(kind, state, "the unit is already reported stolen" if unit.stolen else "the unit is not reported stolen")
        changes["stolen"] = not unit.stolen
    elif kind in ("recall", "recall_lift"):
        if unit.recalled == (kind == "recall"):
            raise IllegalTransition(kind, state, "the unit is already recalled" if unit.recalled else "the unit is not recalled")
        changes["recalled"] = not unit.recalled
    elif kind == "install":
        changes.update(installed_on=_date(data["installed_on"]), installed_by=data["company"],
                       installer_certification=data["certification"],
                       jurisdiction=data.get("jurisdiction") or unit.jurisdiction)
    elif kind == "dpp":
        changes.update(dpp_version=unit.version + 1, dpp_href=data.get("href"))
    return unit._replace(**changes)


def replay(gtin: str, serial: str, events: Iterable[Event], origin: Unit | None = None) -> Unit | None:
    """Fold events over ``origin`` (the batch-implied unit, or ``None``): the current state."""
    unit = origin
    for event in events:
        unit = apply_event(unit, event, gtin, serial)
    return unit
