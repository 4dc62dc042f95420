"""Warranty: is this unit covered on date D, and why — from purchase date and YAML rules.

Rules name a statutory minimum per jurisdiction (the EU's two years), per-product terms
that may go beyond it, an extension for registering early, and whether the warranty
carries over to a new owner or ends at transfer:

>>> from datetime import date
>>> from twin.lifecycle import State
>>> from twin.unit import Unit
>>> from twin.warranty import parse_rules, coverage
>>> rules = parse_rules('''
... version: 1
... default_jurisdiction: EU
... jurisdictions:
...   EU: {minimum_months: 24, on_transfer: carry}
... products:
...   - gtins: ["09506000134352"]
...     months: 36
...     registration_extension: {months: 12, within_days: 30}
... ''')
>>> unit = Unit("09506000134352", "S1", State.REGISTERED, 2, purchase_date=date(2025, 3, 1),
...             jurisdiction="EU", registered_on=date(2025, 3, 10))
>>> c = coverage(rules, unit, date(2029, 2, 28))
>>> c.covered, c.end
(True, datetime.date(2029, 2, 28))
>>> print(c.reason)
EU minimum 24 months; product rule 09506000134352: 36 months; +12 months for registering within 30 days; covered from 2025-03-01 to 2029-02-28
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from twin.errors import TwinError
from twin.lifecycle import State
from twin.unit import Unit

#: The schema of the rules file; ``config/warranty.schema.json`` is this, exported for
#: editors (a test keeps the two equal).
WARRANTY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Serialink warranty rules",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "default_jurisdiction", "jurisdictions"],
    "properties": {
        "version": {"const": 1},
        "default_jurisdiction": {"type": "string", "pattern": "^[A-Z]{2,3}(-[A-Z0-9]{1,3})?$"},
        "jurisdictions": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[A-Z]{2,3}(-[A-Z0-9]{1,3})?$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["minimum_months"],
                "properties": {
                    "name": {"type": "string"},
                    "minimum_months": {"type": "integer", "minimum": 0, "maximum": 600},
                    "on_transfer": {"enum": ["carry", "end"]},
                    "starts": {"enum": ["purchase", "installation"]},
                },
            },
        },
        "products": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "anyOf": [{"required": ["gtins"]}, {"required": ["gtin_prefixes"]}],
                "properties": {
                    "gtins": {"type": "array", "items": {"type": "string", "pattern": "^[0-9]{14}$"}},
                    "gtin_prefixes": {"type": "array", "items": {"type": "string", "pattern": "^[0-9]{1,13}$"}},
                    "months": {"type": "integer", "minimum": 0, "maximum": 600},
                    "on_transfer": {"enum": ["carry", "end"]},
                    "registration_extension": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["months", "within_days"],
                        "properties": {
                            "months": {"type": "integer", "minimum": 1, "maximum": 600},
                            "within_days": {"type": "integer", "minimum": 0, "maximum": 3650},
                        },
                    },
                },
            },
        },
    },
}


class WarrantyRulesError(TwinError):
    """A rules file that does not validate; the message says file:line and the field."""


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    code: str
    minimum_months: int
    on_transfer: str = "carry"
    starts: str = "purchase"  # or "installation": the market counts cover from the fitting date


@dataclass(frozen=True, slots=True)
class ProductRule:
    label: str  # how reasons name it: the first GTIN or prefix
    gtins: frozenset[str]
    gtin_prefixes: tuple[str, ...]
    months: int | None
    on_transfer: str | None
    extension_months: int | None
    extension_within_days: int | None

    def match(self, gtin: str) -> int:
        """Specificity of the match: 15 for an exact GTIN, prefix length, 0 for none."""
        if gtin in self.gtins:
            return 15
        return max((len(p) for p in self.gtin_prefixes if gtin.startswith(p)), default=0)


@dataclass(frozen=True, slots=True)
class WarrantyRules:
    default_jurisdiction: str
    jurisdictions: dict[str, Jurisdiction]
    products: tuple[ProductRule, ...]

    def product_rule(self, gtin: str) -> ProductRule | None:
        """The most specific product rule for ``gtin`` (exact GTIN beats longest prefix)."""
        best, score = None, 0
        for rule in self.products:
            s = rule.match(gtin)
            if s > score:
                best, score = rule, s
        return best


@dataclass(frozen=True, slots=True)
class Coverage:
    """The answer to "is this unit covered on ``on``" with the reasons, in order."""

    covered: bool
    on: date
    start: date | None
    end: date | None  # last covered day, inclusive
    jurisdiction: str | None
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def add_months(day: date, months: int) -> date:
    """Calendar months, clamping to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    m = day.month - 1 + months
    year, month = day.year + m // 12, m % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def coverage(rules: WarrantyRules, unit: Unit, on: date) -> Coverage:
    """Is ``unit`` covered on day ``on``? Pure: the rules and the unit record decide."""
    reasons: list[str] = []
    start = unit.purchase_date
    code = unit.jurisdiction or rules.default_jurisdiction

    def answer(covered: bool, end: date | None = None) -> Coverage:
        return Coverage(covered, on, start, end, code, tuple(reasons))

    jur = rules.jurisdictions.get(code)
    missing = code
    if jur is None:
        code = rules.default_jurisdiction
        jur = rules.jurisdictions[code]
    if unit.installed_on is not None and (jur.starts == "installation" or start is None):
        start = unit.installed_on
        reasons.append(f"starts at the installation on {start}"
                       + (f" ({code} counts from installation)" if jur.starts == "installation" else ""))
    if start is None:
        reasons.append("no purchase is recorded; a warranty starts at purchase")
        return answer(False)
    if code != missing:
        reasons.append(f"no rules for jurisdiction {missing}; using {rules.default_jurisdiction}")
    months = jur.minimum_months
    reasons.append(f"{code} minimum {months} months")
    on_transfer = jur.on_transfer
    product = rules.product_rule(unit.gtin)
    if product is not None:
        if product.months is not None:
            if product.months > months:
                reasons.append(f"product rule {product.label}: {product.months} months")
                months = product.months
            else:
                reasons.append(f"product rule {product.label}: {product.months} months, below the minimum")
        on_transfer = product.on_transfer or on_transfer
        if product.extension_months and unit.registered_on is not None:
            if (unit.registered_on - start).days <= (product.extension_within_days or 0):
                months += product.extension_months
                reasons.append(
                    f"+{product.extension_months} months for registering within {product.extension_within_days} days"
                )
            else:
                reasons.append(f"registered too late for the extension (after {product.extension_within_days} days)")
    end = add_months(start, months) - timedelta(days=1)
    if unit.transferred_on is not None and on_transfer == "end" and unit.transferred_on <= end:
        end = unit.transferred_on - timedelta(days=1)
        reasons.append(f"ends at the transfer to a new owner on {unit.transferred_on} (rule: on_transfer end)")
    if unit.ended_on is not None and unit.state in (State.END_OF_LIFE, State.DECOMMISSIONED) and unit.ended_on <= end:
        end = unit.ended_on - timedelta(days=1)
        reasons.append(f"the unit became {unit.state} on {unit.ended_on}")
    if on < start:
        reasons.append(f"{on} is before the purchase on {start}")
        return answer(False, end)
    if end < start:
        reasons.append("no cover remains")
        return answer(False, end)
    if on > end:
        reasons.append(f"cover ran from {start} to {end}")
        return answer(False, end)
    reasons.append(f"covered from {start} to {end}")
    return answer(True, end)


def _line_of(root: yaml.Node | None, path: list[Any]) -> int | None:
    """1-based line of the YAML node at ``path`` (the deepest one that exists)."""
    node, line = root, None
    for part in path:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def parse_rules(text: str, source: str = "<rules>") -> WarrantyRules:
    """Parse and validate rules; any fault raises WarrantyRulesError with file:line."""
    try:
        doc = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise WarrantyRulesError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    validator = jsonschema.Draft202012Validator(WARRANTY_SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        path = list(error.absolute_path)
        line = _line_of(root, path)
        dotted = ".".join(str(p) for p in path) or "(top level)"
        raise WarrantyRulesError(f"{source}:{line or 1}: {dotted}: {error.message}")
    jurisdictions = {
        code: Jurisdiction(code, j["minimum_months"], j.get("on_transfer", "carry"), j.get("starts", "purchase"))
        for code, j in doc["jurisdictions"].items()
    }
    if doc["default_jurisdiction"] not in jurisdictions:
        line = _line_of(root, ["default_jurisdiction"])
        raise WarrantyRulesError(
            f"{source}:{line}: default_jurisdiction: {doc['default_jurisdiction']!r} is not among the jurisdictions"
        )
    products = []
    for p in doc.get("products") or ():
        ext = p.get("registration_extension") or {}
        gtins, prefixes = p.get("gtins", []), p.get("gtin_prefixes", [])
        products.append(
            ProductRule(
                label=(gtins or prefixes)[0] if (gtins or prefixes) else "?",
                gtins=frozenset(gtins),
                gtin_prefixes=tuple(prefixes),
                months=p.get("months"),
                on_transfer=p.get("on_transfer"),
                extension_months=ext.get("months"),
                extension_within_days=ext.get("within_days"),
            )
        )
    return WarrantyRules(doc["default_jurisdiction"], jurisdictions, tuple(products))


def load_rules(path: str | Path) -> WarrantyRules:
    """Read and validate a rules file (``config/warranty.yaml`` is the example)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WarrantyRulesError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_rules(text, str(path))
