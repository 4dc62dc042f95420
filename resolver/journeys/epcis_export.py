"""EPCIS 2.0 (JSON-LD) export of a unit's — or a batch's units' — events.

Each twin event becomes one ObjectEvent on the unit's SGTIN (``https://id.gs1.org/01/…/21/…``,
the canonical form EPCIS 2.0 uses for instances), with the CBV business step and
disposition that fit, or a ``urn:serialink:bizstep:`` URI where the CBV has none (owner
registration, transfers, firmware updates). Event ids are name-based UUIDs of
GTIN/serial/version, so an export is reproducible. Personal data never appears: owner
ids, codes and reasons stay in the twin.

>>> from datetime import datetime, timezone
>>> from twin.events import Actor, make_event
>>> ev = make_event("service", Actor("technician", "t-1"), "annual", summary="burner cleaned",
...                 at=datetime(2025, 5, 1, tzinfo=timezone.utc))
>>> obj = object_event("09506000134352", "ABC", 3, ev)
>>> obj["action"], obj["bizStep"], obj["disposition"], obj["epcList"]
('OBSERVE', 'repairing', 'active', ['https://id.gs1.org/01/09506000134352/21/ABC'])
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ext import escape
from twin.events import Event

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
MEDIA_TYPE = "application/ld+json"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://serialink.invalid/epcis/unit-events")

#: twin event type -> (action, bizStep, disposition)
MAPPING: dict[str, tuple[str, str, str]] = {
    "commission": ("ADD", "commissioning", "active"),
    "decommission": ("DELETE", "decommissioning", "inactive"),
    "ship": ("OBSERVE", "shipping", "in_transit"),
    "sell": ("OBSERVE", "retail_selling", "retail_sold"),
    "register": ("OBSERVE", "urn:serialink:bizstep:registering", "active"),
    "start_service": ("OBSERVE", "installing", "active"),
    "end_service": ("OBSERVE", "urn:serialink:bizstep:taking_out_of_service", "inactive"),
    "service": ("OBSERVE", "repairing", "active"),
    "firmware": ("OBSERVE", "urn:serialink:bizstep:updating_firmware", "active"),
    "transfer_offer": ("OBSERVE", "urn:serialink:bizstep:offering_transfer", "active"),
    "transfer_cancel": ("OBSERVE", "urn:serialink:bizstep:cancelling_transfer", "active"),
    "transfer_claim": ("OBSERVE", "urn:serialink:bizstep:transferring_ownership", "active"),
    "end_of_life": ("DELETE", "destroying", "disposed"),
    "report_stolen": ("OBSERVE", "urn:serialink:bizstep:reporting_theft", "stolen"),
    "recovered": ("OBSERVE", "urn:serialink:bizstep:recovering", "active"),
    "recall": ("OBSERVE", "holding", "recalled"),
    "recall_lift": ("OBSERVE", "urn:serialink:bizstep:lifting_recall", "active"),
    "dpp": ("OBSERVE", "urn:serialink:bizstep:publishing_passport", "active"),
    "support": ("OBSERVE", "urn:serialink:bizstep:troubleshooting", "active"),
}


def sgtin(gtin: str, serial: str) -> str:
    return f"https://id.gs1.org/01/{gtin}/21/{escape(serial)}"


def _time(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def object_event(gtin: str, serial: str, version: int, event: Event) -> dict[str, Any]:
    """The ObjectEvent of the unit's event number ``version`` (1-based)."""
    action, biz_step, disposition = MAPPING[event.type]
    out: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{gtin}/{serial}#{version}')}",
        "eventTime": _time(event.at), "eventTimeZoneOffset": "+00:00",
        "action": action, "epcList": [sgtin(gtin, serial)], "bizStep": biz_step, "disposition": disposition,
    }
    if event.type == "support":  # repair history: the fault and how the session ended
        out["serialink:faultCode"] = event.data["fault_code"]
        out["serialink:supportOutcome"] = event.data["outcome"]
    elif event.type == "service" and (event.data.get("parts") or event.data.get("fault_codes")):
        out["serialink:partsFitted"] = list(event.data.get("parts", ()))
        out["serialink:faultCodes"] = list(event.data.get("fault_codes", ()))
    if action == "ADD":
        ilmd = {}
        if event.data.get("lot"):
            ilmd["cbvmda:lotNumber"] = event.data["lot"]
        if event.data.get("expiry"):
            ilmd["cbvmda:itemExpirationDate"] = event.data["expiry"]
        if ilmd:
            out["ilmd"] = ilmd
    return out


def document(units: Iterable[tuple[str, str, int, Sequence[Event]]], created: datetime) -> dict[str, Any]:
    """An EPCISDocument of every event of ``units``: (gtin, serial, first version, events)."""
    events = [object_event(g, s, first + i, e) for g, s, first, evs in units for i, e in enumerate(evs)]
    events.sort(key=lambda e: e["eventTime"])
    return {"@context": [CONTEXT, {"serialink": "urn:serialink:voc:"}], "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": _time(created),
            "epcisBody": {"eventList": events}}
