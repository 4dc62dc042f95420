"""The digital product passport of one unit: a JSON-LD document in GS1 Web Vocabulary terms.

What the regulator view and the ``gs1:dpp`` links point to. Identity and lifecycle facts
come from the twin; the passport data itself is what the brand recorded with a ``dpp``
event — an inline document (its members are carried over, ours win on conflict) or a
link to a passport published elsewhere (``gs1:dpp`` then points there too).
Pure: no I/O, no clock.

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

from collections.abc import Mapping
from typing import Any

from ext import escape
from twin.unit import Unit

MEDIA_TYPE = "application/ld+json"
CONTEXT = {
    "gs1": "https://gs1.org/voc/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "serialink": "urn:serialink:voc:",
}
#: Members of a stored document that may not override the identity we vouch for.
_OURS = frozenset({"@context", "@id", "@type", "gs1:gtin", "gs1:hasSerialNumber", "gs1:hasBatchLotNumber"})


def unit_uri(root: str, gtin: str, serial: str) -> str:
    """The unit's GS1 Digital Link URI on this resolver."""
    return f"{root}/01/{gtin}/21/{escape(serial)}"


def dpp_document(unit: Unit, root: str, product_name: str | None, language: str,
                 stored: Mapping[str, Any] | None, *, recalled: bool) -> dict[str, Any]:
    """The passport of ``unit`` (``stored``: the current ``dpp`` event data, or None)."""
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
                if key not in _OURS and key not in doc:
                    doc[key] = value
    return doc
