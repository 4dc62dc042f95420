"""Compatible parts and consumables: which parts fit a unit, and which are due for replacement.

A catalogue (YAML, or CSV with the same columns) lists each part's GTIN, name, the models
(GTINs) it fits, optional firmware and configuration constraints, a replacement interval
for consumables (ISO 8601) and a shop URL template. A part fitted during a service is
named in the ``service`` event (twin.unit keeps the day it was last fitted), so the next
answer counts its interval from then; a part never fitted counts from installation,
registration or manufacture.

>>> from datetime import date
>>> from twin.lifecycle import State
>>> from twin.unit import Unit
>>> catalogue = parse_catalogue('''
... version: 1
... parts:
...   - {gtin: "09506000134376", name: Condensate filter, models: ["09506000134352"], replacement_interval: P12M}
...   - {gtin: "09506000134383", name: Control board v3, models: ["09506000134352"], firmware: {at_least: "3.0"}}
... ''')
>>> unit = Unit("09506000134352", "S1", State.IN_SERVICE, 5, firmware="2.4", installed_on=date(2025, 3, 1),
...             parts=(("09506000134376", date(2025, 9, 1)),))
>>> [(p.part.name, p.fits, p.due_on) for p in catalogue.answer(unit, date(2026, 1, 1))]
[('Condensate filter', True, datetime.date(2026, 9, 1)), ('Control board v3', False, None)]
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from packaging.version import InvalidVersion, Version

from ext import escape
from ext.durations import Duration, parse_duration
from twin.catalogue_file import CatalogueError, line_of, validated, validated_yaml
from twin.errors import InvalidInput
from twin.unit import Unit

_GTIN = {"type": "string", "pattern": "^[0-9]{14}$"}
#: The schema of a parts catalogue; ``config/parts.schema.json`` is this, exported for
#: editors (a test keeps the two equal).
PARTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Serialink parts and consumables catalogue",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "parts"],
    "properties": {
        "version": {"const": 1},
        "parts": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["gtin", "name", "models"],
                "properties": {
                    "gtin": _GTIN,
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "models": {"type": "array", "minItems": 1, "items": _GTIN, "description": "GTINs it fits."},
                    "firmware": {
                        "type": "object", "additionalProperties": False, "minProperties": 1,
                        "properties": {"at_least": {"type": ["string", "number"]}, "below": {"type": ["string", "number"]}},
                    },
                    "configurations": {"type": "array", "minItems": 1,
                                       "items": {"type": "string", "pattern": "^[!-~]{1,20}$"},
                                       "description": "Configurations (consumer product variants, AI 22) it fits."},
                    "replacement_interval": {"type": "string", "pattern": "^P", "description": "ISO 8601 duration."},
                    "shop_url": {"type": "string", "pattern": "^https?://[^\\s\"<>]+$", "maxLength": 2000,
                                 "description": "May hold {part}, {gtin}, {serial}."},
                },
            },
        },
    },
}
CSV_COLUMNS = ("gtin", "name", "models", "firmware_at_least", "firmware_below", "configurations",
               "replacement_interval", "shop_url")


class Part(NamedTuple):
    gtin: str
    name: str
    models: frozenset[str]
    firmware_at_least: Version | None
    firmware_below: Version | None
    configurations: tuple[str, ...]
    interval: Duration | None
    shop_url: str | None

    def shop_href(self, unit: Unit) -> str | None:
        if self.shop_url is None:
            return None
        return (self.shop_url.replace("{part}", self.gtin).replace("{gtin}", unit.gtin)
                .replace("{serial}", escape(unit.serial)))


class PartAnswer(NamedTuple):
    """One part for one unit: does it fit (and why not), when it was fitted, when it is due."""

    part: Part
    fits: bool
    why_not: str | None
    fitted_on: date | None
    due_on: date | None
    due: bool

    def as_json(self, unit: Unit) -> dict[str, Any]:
        p = self.part
        out: dict[str, Any] = {"gtin": p.gtin, "name": p.name, "fits": self.fits,
                               "replacement_interval": str(p.interval) if p.interval else None,
                               "fitted_on": self.fitted_on.isoformat() if self.fitted_on else None,
                               "due_on": self.due_on.isoformat() if self.due_on else None, "due": self.due,
                               "shop_url": p.shop_href(unit)}
        if p.configurations:
            out["configurations"] = list(p.configurations)
        if self.why_not:
            out["why_not"] = self.why_not
        return out


class PartsCatalogue(NamedTuple):
    parts: Mapping[str, Part]  # by part GTIN, catalogue order

    def for_model(self, gtin: str) -> tuple[Part, ...]:
        return tuple(p for p in self.parts.values() if gtin in p.models)

    def why_not(self, part: Part, unit: Unit, configuration: str | None = None) -> str | None:
        """Why ``part`` does not fit ``unit`` (None: it fits)."""
        if unit.gtin not in part.models:
            return f"made for other models ({', '.join(sorted(part.models))}), not {unit.gtin}"
        if part.firmware_at_least is not None or part.firmware_below is not None:
            try:
                version = Version(unit.firmware) if unit.firmware else None
            except InvalidVersion:
                version = None
            if version is None:
                return "needs a known firmware version; none is recorded"
            if part.firmware_at_least is not None and version < part.firmware_at_least:
                return f"needs firmware {part.firmware_at_least} or later; the unit runs {unit.firmware}"
            if part.firmware_below is not None and version >= part.firmware_below:
                return f"needs firmware below {part.firmware_below}; the unit runs {unit.firmware}"
        if part.configurations and configuration is not None and configuration not in part.configurations:
            return f"fits configurations {', '.join(part.configurations)}, not {configuration}"
        return None

    def due_on(self, part: Part, unit: Unit) -> date | None:
        """When a consumable is next due: its interval after it was last fitted, or after
        the unit was installed, registered or made."""
        if part.interval is None:
            return None
        base = dict(unit.parts).get(part.gtin) or unit.installed_on or unit.registered_on or unit.made_on
        return part.interval.after(base) if base is not None else None

    def answer(self, unit: Unit, today: date, configuration: str | None = None) -> list[PartAnswer]:
        """The parts of the unit's model: fitting ones first, each due or not on ``today``."""
        out = []
        fitted = dict(unit.parts)
        for part in self.for_model(unit.gtin):
            why = self.why_not(part, unit, configuration)
            due_on = self.due_on(part, unit) if why is None else None
            out.append(PartAnswer(part, why is None, why, fitted.get(part.gtin), due_on,
                                  due_on is not None and due_on <= today))
        return sorted(out, key=lambda a: not a.fits)

    def consumable_due(self, unit: Unit) -> date | None:
        """The earliest day a fitting consumable is due (feeds the ``service_due`` moment)."""
        days = [d for p in self.for_model(unit.gtin) if p.interval is not None and self.why_not(p, unit) is None
                and (d := self.due_on(p, unit)) is not None]
        return min(days, default=None)

    def check_fitted(self, unit: Unit, parts: Sequence[str], field: str = "event.data.parts") -> None:
        """Refuse GTIN-shaped part numbers the catalogue does not list for this unit's model
        (free-text part numbers pass: they are what a technician read off the part)."""
        for i, number in enumerate(parts):
            if not (len(number) == 14 and number.isdigit()):
                continue
            part = self.parts.get(number)
            if part is None:
                if self.for_model(unit.gtin):
                    raise InvalidInput(f"{field}[{i}]", f"part {number} is not in the parts catalogue of {unit.gtin}")
                continue
            if unit.gtin not in part.models:
                raise InvalidInput(f"{field}[{i}]", f"part {number} ({part.name}) does not fit {unit.gtin}: it is "
                                                    f"made for {', '.join(sorted(part.models))}")


def _version(value: Any, where: str) -> Version | None:
    if value is None or value == "":
        return None
    try:
        return Version(str(value))
    except InvalidVersion:
        raise CatalogueError(f"{where}: {value!r} is not a version number (e.g. 2.1.0)") from None


def _build(doc: Mapping[str, Any], source: str, line: Any) -> PartsCatalogue:
    parts: dict[str, Part] = {}
    for i, p in enumerate(doc["parts"]):
        where = f"{source}:{line(i)}: parts.{i}"
        if p["gtin"] in parts:
            raise CatalogueError(f"{where}.gtin: {p['gtin']} is listed twice")
        interval = None
        if p.get("replacement_interval"):
            try:
                interval = parse_duration(p["replacement_interval"])
            except ValueError as exc:
                raise CatalogueError(f"{where}.replacement_interval: {exc}") from None
        firmware = p.get("firmware") or {}
        parts[p["gtin"]] = Part(p["gtin"], p["name"], frozenset(p["models"]),
                                _version(firmware.get("at_least"), f"{where}.firmware.at_least"),
                                _version(firmware.get("below"), f"{where}.firmware.below"),
                                tuple(p.get("configurations", ())), interval, p.get("shop_url"))
    return PartsCatalogue(parts)


def _csv_rows(text: str) -> Iterable[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    unknown = set(reader.fieldnames or ()) - set(CSV_COLUMNS)
    if unknown or "gtin" not in (reader.fieldnames or ()):
        raise CatalogueError(f"line 1: expected the columns {', '.join(CSV_COLUMNS)}"
                             + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""))
    for row in reader:
        out: dict[str, Any] = {"gtin": row["gtin"], "name": row.get("name") or "",
                               "models": (row.get("models") or "").split()}
        firmware = {k: row[f"firmware_{k}"] for k in ("at_least", "below") if row.get(f"firmware_{k}")}
        if firmware:
            out["firmware"] = firmware
        if row.get("configurations"):
            out["configurations"] = row["configurations"].split()
        for key in ("replacement_interval", "shop_url"):
            if row.get(key):
                out[key] = row[key]
        yield out


def parse_catalogue(text: str, source: str = "<parts>") -> PartsCatalogue:
    """Parse and validate a YAML catalogue, or a CSV one when ``source`` ends in .csv."""
    if source.endswith(".csv"):
        try:
            doc = {"version": 1, "parts": list(_csv_rows(text))}
        except CatalogueError as exc:
            raise CatalogueError(f"{source}:{exc}") from None
        try:
            validated(doc, None, source, PARTS_SCHEMA)
        except CatalogueError as exc:  # name the CSV row (header is line 1) rather than a YAML path
            message = str(exc).split(": ", 1)[1]
            index = message.split(".")[1] if message.startswith("parts.") else "0"
            raise CatalogueError(f"{source}:{int(index) + 2 if index.isdigit() else 1}: {message}") from None
        return _build(doc, source, lambda i: i + 2)
    doc, root = validated_yaml(text, source, PARTS_SCHEMA)
    return _build(doc, source, lambda i: line_of(root, ["parts", i]))


def load_catalogue(path: str | Path) -> PartsCatalogue:
    path = Path(path)
    return parse_catalogue(path.read_text(encoding="utf-8"), str(path))
