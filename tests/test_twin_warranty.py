"""Warranty: "is this unit covered on date D, and why", from purchase date and YAML rules."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from twin.lifecycle import State
from twin.unit import Unit
from twin.warranty import (
    WARRANTY_SCHEMA,
    WarrantyRulesError,
    add_months,
    coverage,
    load_rules,
    parse_rules,
)

ROOT = Path(__file__).resolve().parent.parent
GTIN = "09506000134352"
RULES = parse_rules("""
version: 1
default_jurisdiction: EU
jurisdictions:
  EU: {minimum_months: 24, on_transfer: carry}
  US: {minimum_months: 12, on_transfer: end}
products:
  - gtins: ["09506000134352"]
    months: 36
    registration_extension: {months: 12, within_days: 30}
  - gtin_prefixes: ["0950600"]
    months: 6
  - gtin_prefixes: ["09506001"]
    months: 60
    on_transfer: end
""")
SOLD = Unit(GTIN, "S1", State.SOLD, 2, purchase_date=date(2025, 3, 1), jurisdiction="EU")


def test_the_eu_minimum_applies_from_the_purchase_date() -> None:
    unit = SOLD._replace(gtin="09506000999995")
    first, last, after = (coverage(RULES, unit, d) for d in (date(2025, 3, 1), date(2027, 2, 28), date(2027, 3, 1)))
    assert (first.covered, last.covered, after.covered) == (True, True, False)
    assert last.end == date(2027, 2, 28)
    assert "product rule 0950600: 6 months, below the minimum" in last.reason
    assert after.reason.endswith("cover ran from 2025-03-01 to 2027-02-28")


def test_a_product_rule_extends_and_early_registration_adds_more() -> None:
    assert coverage(RULES, SOLD, date(2028, 2, 29)).end == date(2028, 2, 29)
    registered = SOLD._replace(state=State.REGISTERED, registered_on=date(2025, 3, 31))
    c = coverage(RULES, registered, date(2029, 2, 28))
    assert c.covered and c.end == date(2029, 2, 28)
    assert "+12 months for registering within 30 days" in c.reason
    late = registered._replace(registered_on=date(2025, 4, 1))
    assert coverage(RULES, late, date(2028, 2, 29)).end == date(2028, 2, 29)
    assert "registered too late" in coverage(RULES, late, date(2026, 1, 1)).reason


def test_the_most_specific_product_rule_wins() -> None:
    assert RULES.product_rule(GTIN).label == GTIN
    assert RULES.product_rule("09506001000007").label == "09506001"
    assert RULES.product_rule("09506000999995").label == "0950600"
    assert RULES.product_rule("04006381333931") is None


def test_a_transfer_ends_the_warranty_where_the_rule_says_so() -> None:
    us = SOLD._replace(gtin="04006381333931", jurisdiction="US", transferred_on=date(2025, 9, 1))
    before, after = coverage(RULES, us, date(2025, 8, 31)), coverage(RULES, us, date(2025, 9, 1))
    assert before.covered and not after.covered
    assert "ends at the transfer to a new owner on 2025-09-01" in after.reason
    eu = SOLD._replace(transferred_on=date(2025, 9, 1))
    assert coverage(RULES, eu, date(2026, 1, 1)).covered  # EU: carries


def test_no_purchase_no_cover_and_the_reason_says_so() -> None:
    c = coverage(RULES, SOLD._replace(purchase_date=None), date(2025, 6, 1))
    assert not c.covered and c.reason == "no purchase is recorded; a warranty starts at purchase"
    early = coverage(RULES, SOLD, date(2025, 2, 28))
    assert not early.covered and "2025-02-28 is before the purchase on 2025-03-01" in early.reason


def test_end_of_life_ends_cover_and_unknown_jurisdictions_fall_back() -> None:
    dead = SOLD._replace(state=State.END_OF_LIFE, ended_on=date(2025, 6, 1))
    assert coverage(RULES, dead, date(2025, 5, 31)).covered
    assert not coverage(RULES, dead, date(2025, 6, 1)).covered
    jp = coverage(RULES, SOLD._replace(jurisdiction="JP"), date(2025, 6, 1))
    assert jp.jurisdiction == "EU" and jp.reasons[0] == "no rules for jurisdiction JP; using EU"


def test_months_are_calendar_months() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2025, 11, 15), 14) == date(2027, 1, 15)


def test_the_shipped_rules_file_loads_and_its_schema_matches_the_code() -> None:
    rules = load_rules(ROOT / "config" / "warranty.yaml")
    assert rules.default_jurisdiction == "EU" and rules.jurisdictions["EU"].minimum_months == 24
    assert json.loads((ROOT / "config" / "warranty.schema.json").read_text()) == WARRANTY_SCHEMA


@pytest.mark.parametrize("text,message", [
    ("version: 1\ndefault_jurisdiction: EU\njurisdictions:\n  EU: {minimum_months: -1}\n",
     "<rules>:4: jurisdictions.EU.minimum_months: -1 is less than the minimum of 0"),
    ("version: 1\ndefault_jurisdiction: EU\njurisdictions:\n  EU: {minimum_months: 24}\nproducts:\n  - gtins: [123]\n",
     "<rules>:6: products.0.gtins.0: 123 is not of type 'string'"),
    ("version: 1\ndefault_jurisdiction: US\njurisdictions:\n  EU: {minimum_months: 24}\n",
     "<rules>:2: default_jurisdiction: 'US' is not among the jurisdictions"),
    ("version: 1\ndefault_jurisdiction: EU\njurisdictions:\n  EU: {minimum_months: 24, colour: red}\n",
     "<rules>:4: jurisdictions.EU: Additional properties are not allowed ('colour' was unexpected)"),
    ("version: 1\njurisdictions: [\n", "<rules>:3: not valid YAML"),
    ("- just a list\n", "<rules>:1: (top level): ['just a list'] is not of type 'object'"),
])
def test_a_bad_rules_file_is_refused_with_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(WarrantyRulesError) as err:
        parse_rules(text)
    assert str(err.value).startswith(message)


def test_an_unreadable_rules_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WarrantyRulesError, match="missing.yaml: cannot read"):
        load_rules(tmp_path / "missing.yaml")
