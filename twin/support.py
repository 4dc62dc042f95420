"""Fault codes per model: what a code means, the steps to try, the parts it may need,
and whether it needs a technician — the catalogue support sessions are logged against.

A session itself is a ``support`` event on the unit (twin.events): who, when, which fault
code, which steps were tried and how it ended (resolved, escalated, technician booked).

>>> catalogue = parse_catalogue('''
... version: 1
... models:
...   - gtins: ["09506000134352"]
...     faults:
...       - {code: E101, title: Low water pressure, steps: [Check the gauge, Top up to 1.5 bar]}
...       - {code: E133, title: No ignition, technician: true, parts: ["09506000134376"]}
... ''')
>>> catalogue.fault("09506000134352", "E133").technician
True
>>> catalogue.fault("09506000134352", "E999") is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from twin.catalogue_file import CatalogueError, line_of, validated_yaml

#: The schema of a fault-code catalogue; ``config/fault-codes.schema.json`` is this,
#: exported for editors (a test keeps the two equal).
FAULT_CODES_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Serialink fault-code catalogue",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "models"],
    "properties": {
        "version": {"const": 1},
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["gtins", "faults"],
                "properties": {
                    "gtins": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[0-9]{14}$"}},
                    "faults": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["code", "title"],
                            "properties": {
                                "code": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                                "title": {"type": "string", "minLength": 1, "maxLength": 200},
                                "steps": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 500}},
                                "parts": {"type": "array", "items": {"type": "string", "pattern": "^[0-9]{14}$"},
                                          "description": "GTINs of the parts this fault is likely to need."},
                                "technician": {"type": "boolean", "description": "Needs a technician (not owner-fixable)."},
                            },
                        },
                    },
                },
            },
        },
    },
}


class Fault(NamedTuple):
    code: str
    title: str
    steps: tuple[str, ...]
    parts: tuple[str, ...]
    technician: bool

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "title": self.title, "steps": list(self.steps), "parts": list(self.parts),
                "technician": self.technician}


class FaultCatalogue(NamedTuple):
    """Fault codes by model (GTIN), in catalogue order."""

    by_model: Mapping[str, Mapping[str, Fault]]

    def faults(self, gtin: str) -> tuple[Fault, ...]:
        return tuple(self.by_model.get(gtin, {}).values())

    def fault(self, gtin: str, code: str) -> Fault | None:
        return self.by_model.get(gtin, {}).get(code)


def parse_catalogue(text: str, source: str = "<fault codes>") -> FaultCatalogue:
    """Parse and validate; CatalogueError with file:line for a schema fault, a model listed
    twice or a code listed twice for one model."""
    doc, root = validated_yaml(text, source, FAULT_CODES_SCHEMA)
    by_model: dict[str, dict[str, Fault]] = {}
    for mi, model in enumerate(doc["models"]):
        faults: dict[str, Fault] = {}
        for fi, f in enumerate(model["faults"]):
            if f["code"] in faults:
                line = line_of(root, ["models", mi, "faults", fi, "code"])
                raise CatalogueError(f"{source}:{line}: models.{mi}.faults.{fi}.code: {f['code']} is listed twice")
            faults[f["code"]] = Fault(f["code"], f["title"], tuple(f.get("steps", ())), tuple(f.get("parts", ())),
                                      bool(f.get("technician", False)))
        for gi, gtin in enumerate(model["gtins"]):
            if gtin in by_model:
                line = line_of(root, ["models", mi, "gtins", gi])
                raise CatalogueError(f"{source}:{line}: models.{mi}.gtins.{gi}: {gtin} already has fault codes above")
            by_model[gtin] = faults
    return FaultCatalogue(by_model)


def load_catalogue(path: str | Path) -> FaultCatalogue:
    path = Path(path)
    return parse_catalogue(path.read_text(encoding="utf-8"), str(path))
