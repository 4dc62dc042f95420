"""Role-scoped views of one unit: what each kind of caller may see, as JSON-ready dicts.

Pure functions. The caller reads the unit (its record, or the batch-implied one), its
events, the recall/theft flags, the product's links and — only when the caller *is* the
current owner — that owner's personal data; these functions decide what of it each role
is shown. The rule that holds everything together: nobody sees another owner's personal
data. A consumer view never carries an owner id, name or contact; the owner sees their
own; technicians see the service record and nothing of the owner; manufacturers see the
pseudonymous owner id (to count registrations) but never a name or contact.

>>> from datetime import date
>>> from twin.lifecycle import State
>>> from twin.unit import Unit
>>> unit = Unit("09506000134352", "ABC", State.REGISTERED, 4, owner="o_secret-owner-id",
...             purchase_date=date(2025, 3, 1), services=2, last_service_on=date(2025, 9, 1))
>>> snap = Snapshot(unit, known=True, recalled=False, stolen=False)
>>> view = consumer_view(snap, "Example boiler", {}, None)
>>> view["registered"], view["service"], "o_secret-owner-id" in str(view)
(True, {'services': 2, 'last_service_on': '2025-09-01'}, False)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from twin.events import Event
from twin.lifecycle import State
from twin.overlays import SCOPE_NAMES, Overlay
from twin.ownership import PersonalData
from twin.unit import Unit
from twin.warranty import Coverage

#: Token role -> the view it gets. Admins see what manufacturers see; installers what
#: technicians see.
VIEW_OF_ROLE = {"consumer": "consumer", "owner": "owner", "installer": "technician", "technician": "technician",
                "regulator": "regulator", "manufacturer": "manufacturer", "admin": "manufacturer"}

#: Link types a consumer is shown, grouped the way the unit page lists them.
CONSUMER_LINKS = {
    "manuals": ("gs1:instructions", "gs1:quickStartGuide", "gs1:eifu", "gs1:tutorial", "gs1:safetyInfo"),
    "parts": ("gs1:purchaseSuppliesOrAccessories", "gs1:support", "gs1:faqs"),
    "product": ("gs1:pip", "gs1:sustainabilityInfo", "gs1:productSustainabilityInfo", "gs1:whatsInTheBox"),
}

#: Events that make up the service record (what technicians and installers read).
SERVICE_EVENTS = frozenset({"commission", "start_service", "end_service", "service", "firmware", "end_of_life",
                            "recall", "recall_lift", "decommission", "install", "support"})

#: Event data never shown to anyone over the API: hashes of transfer codes.
_SECRET_DATA = frozenset({"code_hash"})


class Snapshot(NamedTuple):
    """What was read about the unit. ``unit`` is its record or the batch-implied one;
    ``known`` is False for a serial no batch issued (then ``unit`` is a placeholder)."""

    unit: Unit
    known: bool
    recalled: bool
    stolen: bool
    overlays: tuple[Overlay, ...] = ()  # active overlays covering the unit


def iso(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value.isoformat()


def coverage_json(coverage: Coverage | None) -> dict[str, Any] | None:
    if coverage is None:
        return None
    return {"covered": coverage.covered, "on": iso(coverage.on), "start": iso(coverage.start), "end": iso(coverage.end),
            "jurisdiction": coverage.jurisdiction, "reasons": list(coverage.reasons)}


def _identity(snap: Snapshot, product_name: str | None) -> dict[str, Any]:
    unit = snap.unit
    state = str(unit.state) if snap.known else "unknown"
    return {"gtin": unit.gtin, "serial": unit.serial, "product": {"name": product_name}, "state": state,
            "known": snap.known, "registered": unit.owner is not None,
            "recalled": snap.recalled, "stolen": snap.stolen, "version": unit.version}


def consumer_view(snap: Snapshot, product_name: str | None, links: Mapping[str, Sequence[Mapping[str, Any]]],
                  coverage: Coverage | None) -> dict[str, Any]:
    """Anyone: the product, warranty status, a public service summary and the manuals/parts links.

    ``links`` maps a link type to the rendered links (href, title, type, …) this role may see.
    """
    unit = snap.unit
    view = _identity(snap, product_name)
    view["view"] = "consumer"
    view["warranty"] = coverage_json(coverage)
    view["service"] = {"services": unit.services, "last_service_on": iso(unit.last_service_on)}
    view["links"] = link_groups(links)
    view["transfer_pending"] = unit.transfer_offer is not None
    if unit.installed_on is not None:  # anyone may know it was fitted; who fitted it is for owner and staff
        view["installation"] = {"on": iso(unit.installed_on)}
    return view


def _installer(view: dict[str, Any], unit: Unit) -> None:
    if unit.installed_on is not None:
        view["installation"] = {"on": iso(unit.installed_on), "by": unit.installed_by,
                                "certification": unit.installer_certification}


def link_groups(links: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, list]:
    """Links by type, grouped as the consumer view lists them (manuals, parts, product)."""
    return {group: [link for t in types for link in links.get(t, ())] for group, types in CONSUMER_LINKS.items()}


def _event_json(event: Event, version: int, *, principal: bool, owner_names: Mapping[str, str] | None) -> dict[str, Any]:
    """One event for a history. ``owner_names`` replaces owner ids (None keeps them)."""
    data: dict[str, Any] = {}
    for key, value in event.data.items():
        if key in _SECRET_DATA:
            continue
        if key == "owner" and owner_names is not None:
            value = owner_names.get(value, "previous owner")
        data[key] = value
    out: dict[str, Any] = {"version": version, "type": event.type, "at": iso(event.at), "role": event.actor.role,
                           "reason": event.reason}
    if principal:  # staff see who did it; an owner stays pseudonymous unless owner_names is None
        who = event.actor.principal
        out["by"] = who if event.actor.role != "owner" or owner_names is None else owner_names.get(who, "owner")
    elif owner_names is not None and event.actor.principal in owner_names:
        out["by"] = owner_names[event.actor.principal]
    if event.where:
        out["where"] = event.where
    if data:
        out["data"] = data
    return out


def owner_view(snap: Snapshot, product_name: str | None, links: Mapping[str, Sequence[Mapping[str, Any]]],
               coverage: Coverage | None, events: Sequence[Event], owner_id: str,
               personal: PersonalData | None) -> dict[str, Any]:
    """The current owner: everything a consumer sees, their registration and the full history.

    Other owners appear in the history only as "previous owner": never their id, name or
    contact.
    """
    unit = snap.unit
    view = consumer_view(snap, product_name, links, coverage)
    view["view"] = "owner"
    view["owner"] = {"id": owner_id, "name": personal.name if personal else None,
                     "contact": personal.contact if personal else None, "registered_on": iso(unit.registered_on),
                     "purchase_date": iso(unit.purchase_date), "jurisdiction": unit.jurisdiction,
                     "transferred_on": iso(unit.transferred_on)}
    offer = unit.transfer_offer
    view["transfer"] = {"expires_at": iso(offer.expires_at)} if offer is not None else None
    view["firmware"] = unit.firmware
    _installer(view, unit)
    names = {owner_id: "you"}
    view["history"] = [_event_json(e, i + 1 + _base(unit, events), principal=False, owner_names=names)
                       for i, e in enumerate(events)]
    view["support"] = support_sessions(events)
    return view


def _base(unit: Unit, events: Sequence[Event]) -> int:
    """Version of the event before the first one given (histories may be cut short)."""
    return unit.version - len(events)


def support_sessions(events: Iterable[Event]) -> list[dict[str, Any]]:
    """The unit's troubleshooting sessions (``support`` events), oldest first."""
    return [{"at": iso(e.at), "role": e.actor.role, "fault_code": e.data["fault_code"],
             "steps": list(e.data.get("steps", ())), "outcome": e.data["outcome"],
             **{k: e.data[k] for k in ("session", "notes") if k in e.data}}
            for e in events if e.type == "support"]


def service_record(events: Sequence[Event], unit: Unit) -> dict[str, Any]:
    """The service history plus what it adds up to: fault codes seen and parts fitted."""
    base = _base(unit, events)
    history = [_event_json(e, base + i + 1, principal=True, owner_names={})
               for i, e in enumerate(events) if e.type in SERVICE_EVENTS]
    parts: list[str] = []
    faults: list[str] = []
    for e in events:
        if e.type == "service":
            parts += list(e.data.get("parts", ()))
            faults += list(e.data.get("fault_codes", ()))
        elif e.type == "support":
            faults.append(e.data["fault_code"])
    return {"history": history, "parts_fitted": parts, "fault_codes": sorted(set(faults)),
            "parts_installed": [{"part": p, "fitted_on": iso(d)} for p, d in unit.parts],
            "support": support_sessions(events)}


def technician_view(snap: Snapshot, product_name: str | None, links: Mapping[str, Sequence[Mapping[str, Any]]],
                    coverage: Coverage | None, events: Sequence[Event]) -> dict[str, Any]:
    """Technicians and installers: service history, firmware, fault codes, parts fitted.
    Nothing about the owner beyond whether the unit is registered."""
    unit = snap.unit
    view = consumer_view(snap, product_name, links, coverage)
    view["view"] = "technician"
    view["firmware"] = unit.firmware
    view["lot"] = unit.lot
    _installer(view, unit)
    view.update(service_record(events, unit))
    return view


def overlay_json(overlay: Overlay) -> dict[str, Any]:
    scope = overlay.scope
    return {"id": overlay.id, "kind": overlay.kind, "scope": {"type": SCOPE_NAMES[type(scope)], **scope._asdict()},
            "reason": overlay.reason, "at": iso(overlay.created_at), "active": overlay.lifted is None}


def regulator_view(snap: Snapshot, product_name: str | None, links: Mapping[str, Sequence[Mapping[str, Any]]],
                   coverage: Coverage | None, dpp_href: str) -> dict[str, Any]:
    """Regulators: the DPP (its document URL), lifecycle state, lot/batch and recalls."""
    unit = snap.unit
    view = consumer_view(snap, product_name, links, coverage)
    view["view"] = "regulator"
    view.update(lot=unit.lot, batch=unit.batch_id, expiry=iso(unit.expiry), ended_on=iso(unit.ended_on),
                dpp={"href": dpp_href, "published": unit.dpp_version is not None},
                overlays=[overlay_json(o) for o in snap.overlays])
    return view


def scan_statistics(scans: Iterable[Any]) -> dict[str, Any]:
    """Recent scans of the unit summed up: how many, by role and link type, first and last."""
    scans = list(scans)
    times = [s.at_ms for s in scans]
    return {"recent": len(scans), "by_role": dict(Counter(s.role for s in scans)),
            "by_link_type": dict(Counter(s.link_type or "none" for s in scans)),
            "first_at": iso(datetime.fromtimestamp(min(times) / 1000, tz=UTC)) if times else None,
            "last_at": iso(datetime.fromtimestamp(max(times) / 1000, tz=UTC)) if times else None}


def manufacturer_view(snap: Snapshot, product_name: str | None, links: Mapping[str, Sequence[Mapping[str, Any]]],
                      coverage: Coverage | None, events: Sequence[Event], scans: Iterable[Any],
                      dpp_href: str) -> dict[str, Any]:
    """The brand: everything, including scan statistics — but an owner only by their
    pseudonymous id, never by name or contact."""
    unit = snap.unit
    view = regulator_view(snap, product_name, links, coverage, dpp_href)
    view["view"] = "manufacturer"
    view.update(firmware=unit.firmware, owner={"id": unit.owner, "registered_on": iso(unit.registered_on),
                                               "purchase_date": iso(unit.purchase_date),
                                               "jurisdiction": unit.jurisdiction,
                                               "transferred_on": iso(unit.transferred_on)},
                updated_at=iso(unit.updated_at))
    _installer(view, unit)
    view.update(service_record(events, unit))
    view["history"] = [_event_json(e, _base(unit, events) + i + 1, principal=True, owner_names=None)
                       for i, e in enumerate(events)]
    view["scans"] = scan_statistics(scans)
    return view


def unknown_unit(gtin: str, serial: str) -> Unit:
    """The placeholder of a serial no batch issued (rendered as state ``unknown``)."""
    return Unit(gtin, serial, State.COMMISSIONED)
