"""The digital product passport of one unit: a JSON-LD document in GS1 Web Vocabulary terms.

What the regulator view and the ``gs1:dpp`` links point to. Identity and lifecycle facts
come from the twin; the passport data itself is what the brand recorded with a ``dpp``
event — an inline document (its members are carried over, ours win on conflict) or a
link to a passport published elsewhere (``gs1:dpp`` then points there too).
Pure: no I/O, no clock.

The passport is role-scoped like the unit views. Its public part is for anyone; a stored
document may hold ``serialink:restricted`` sections for ``regulator``, ``repairer`` and
``recycler`` audiences, and the repair history (service and support events) is for
repairers, regulators and the brand. :data:`AUDIENCES` says which role reads which.

>>> from datetime import date
>>> from twin.lifecycle import State
>>> from twin.unit import Unit
>>> unit = Unit("09506000134352", "ABC", State.SOLD, 3, lot="L42", expiry=date(2030, 1, 31))
>>> doc = dpp_document(unit, "https://id.example.com", "X100 boiler", "en", {"document": {"gs1:netWeight": "41 kg"}},
...                    recalled=False)
>>> doc["@id"], doc["gs1:hasSerialNumber"], doc["gs1:hasBatchLotNumber"], doc["gs1:netWeight"]
('https://id.example.com/01/09506000134352/21/ABC', 'ABC', 'L42', '41 kg')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ext import escape
from twin.events import Event
from twin.unit import Unit

MEDIA_TYPE = "application/ld+json"
CONTEXT = {
    "gs1": "https://gs1.org/voc/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "serialink": "urn:serialink:voc:",
}
#: Members of a stored document that may not override the identity we vouch for.
_OURS = frozenset({"@context", "@id", "@type", "gs1:gtin", "gs1:hasSerialNumber", "gs1:hasBatchLotNumber"})
RESTRICTED = "serialink:restricted"
#: token role -> the restricted sections it reads (anyone else: the public part only)
AUDIENCES: dict[str, frozenset[str]] = {
    "regulator": frozenset({"regulator", "repairer", "recycler"}),
    "manufacturer": frozenset({"regulator", "repairer", "recycler"}),
    "admin": frozenset({"regulator", "repairer", "recycler"}),
    "technician": frozenset({"repairer"}),
    "installer": frozenset({"repairer"}),
    "recycler": frozenset({"recycler"}),
}
SECTIONS = ("regulator", "repairer", "recycler")


def repair_history(events: Sequence[Event]) -> list[dict[str, Any]]:
    """Service visits and support sessions, oldest first: what was wrong, what was done."""
    out: list[dict[str, Any]] = []
    for e in events:
        day = {"@value": e.at.date().isoformat(), "@type": "xsd:date"}
        if e.type == "service":
            out.append({"@type": "serialink:ServiceVisit", "serialink:date": day,
                        "serialink:summary": e.data.get("summary"),
                        "serialink:faultCodes": list(e.data.get("fault_codes", ())),
                        "serialink:partsFitted": list(e.data.get("parts", ()))})
        elif e.type == "support":
            out.append({"@type": "serialink:SupportSession", "serialink:date": day,
                        "serialink:faultCode": e.data["fault_code"], "serialink:outcome": e.data["outcome"]})
    return out


def unit_uri(root: str, gtin: str, serial: str) -> str:
    """The unit's GS1 Digital Link URI on this resolver."""
    return f"{root}/01/{gtin}/21/{escape(serial)}"


def dpp_document(unit: Unit, root: str, product_name: str | None, language: str,
                 stored: Mapping[str, Any] | None, *, recalled: bool, role: str = "regulator",
                 events: Sequence[Event] = ()) -> dict[str, Any]:
    """The passport of ``unit`` as ``role`` may read it (``stored``: the current ``dpp``
    event data, or None; ``events``: the unit's events, for the repair history)."""
    audiences = AUDIENCES.get(role, frozenset())
    doc: dict[str, Any] = {"@context": CONTEXT, "@id": unit_uri(root, unit.gtin, unit.serial), "@type": "gs1:Product",
                           "gs1:gtin": unit.gtin, "gs1:hasSerialNumber": unit.serial}
    if product_name:
        doc["gs1:productName"] = {"@value": product_name, "@language": language}
    if unit.lot:
        doc["gs1:hasBatchLotNumber"] = unit.lot
    if unit.expiry:
        doc["gs1:expirationDate"] = {"@value": unit.expiry.isoformat(), "@type": "xsd:date"}
    doc["serialink:lifecycleState"] = str(unit.state)
    doc["serialink:recalled"] = recalled
    if unit.ended_on:
        doc["serialink:endOfLifeDate"] = {"@value": unit.ended_on.isoformat(), "@type": "xsd:date"}
    if stored:
        if stored.get("href"):
            doc["gs1:dpp"] = {"@id": stored["href"]}
        document = stored.get("document")
        if isinstance(document, Mapping):
            for key, value in document.items():
                if key not in _OURS and key not in doc and key != RESTRICTED:
                    doc[key] = value
            restricted = document.get(RESTRICTED)
            if isinstance(restricted, Mapping):
                for section in SECTIONS:
                    members = restricted.get(section)
                    if section in audiences and isinstance(members, Mapping):
                        for key, value in members.items():
                            if key not in _OURS and key not in doc:
                                doc[key] = value
    history = repair_history(events)
    doc["serialink:repairCount"] = len(history)
    if "repairer" in audiences:
        doc["serialink:repairHistory"] = history
    doc["serialink:audience"] = sorted(audiences) or ["public"]
    return doc
