"""Moments in the routing rules: every condition, with a frozen clock, compiled from YAML
and decided by the same function live scans use; bad moments are `check` errors at file:line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ext import parse
from ext.durations import parse_duration
from resolver.rules.compiler import RulesInvalid, compile_rules, default_rules_file
from resolver.rules.moments import Moments
from resolver.scan.decide import ScanRequest, UnitFacts, decide
from resolver.scan.negotiate import Preferences

GTIN = "09506000134352"
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)  # the frozen clock of every decision here
PREFS = Preferences((), None, ())
PRODUCT = '''
version: 1
resolver: {root: "https://id.example.com"}
products:
  - gtin: "09506000134352"
    name: Boiler
    service_interval: P12M
    moments:
      first_week: {since_installation: {at_most: P7D}}
      ending: {warranty: {ending_within: P60D}}
    default: gs1:pip
    links:
      - {type: gs1:pip, href: "https://example.com/pip", title: Product}
      - {type: gs1:support, href: "https://example.com/support/{fault}", title: Support}
    routes:
      - name: the moment under test
        when: {WHEN}
        href: "https://example.com/moment"
        title: Moment
'''


def rules_with(when: str):
    return compile_rules(PRODUCT.replace("{WHEN}", when), "r.yaml")


def route(when: str, moments: Moments, now: datetime = NOW, uri: str = f"https://id.example.com/01/{GTIN}/21/S1",
          state: str = "registered") -> str | None:
    """Where a scan goes: 'moment' if the route matched, else the default."""
    rules = rules_with(when)
    request = ScanRequest(None, PREFS, int(now.timestamp() * 1000))
    decision = decide(rules, parse(uri), "owner", UnitFacts(state, moments=moments), request)
    again = decide(rules, parse(uri), "owner", UnitFacts(state, moments=moments), request)  # the memo's answer
    assert again.href == decision.href
    return decision.href


M = Moments(made=date(2025, 1, 10), registered=date(2025, 3, 1), installed=date(2026, 6, 10),
            serviced=date(2025, 9, 1), firmware_updated=date(2026, 1, 5), firmware="2.4.1",
            warranty_start=date(2025, 3, 1), warranty_end=date(2027, 2, 28))

CASES = [
    # (when, moments, matches)
    ("{since_manufacture: {at_least: P1Y}}", M, True),
    ("{since_manufacture: {at_least: P2Y}}", M, False),
    ("{since_manufacture: {at_most: P18M}}", M, True),
    ("{since_manufacture: {at_most: P12M}}", M, False),
    ("{since_registration: {at_least: P15M, at_most: P16M}}", M, True),
    ("{since_registration: {at_most: P7D}}", M, False),
    ("{since_registration: {at_least: P1D}}", Moments(made=date(2025, 1, 1)), False),  # never registered
    ("{since_installation: {at_most: P7D}}", M, True),
    ("{since_installation: {at_most: PT96H}}", M, False),  # 5.5 days ago
    ("{since_service: {at_least: P9M}}", M, True),
    ("{since_service: {at_least: P10M}}", M, False),
    ("{since_firmware_update: {at_least: P5M, at_most: P6M}}", M, True),
    ("{since_firmware_update: {at_least: P2W}}", Moments(), False),
    ("{warranty: active}", M, True),
    ("{warranty: expired}", M, False),
    ("{warranty: expired}", M._replace(warranty_end=date(2026, 6, 14)), True),
    ("{warranty: none}", M, False),
    ("{warranty: none}", Moments(made=date(2025, 1, 1)), True),
    ("{warranty: {ending_within: P60D}}", M, False),
    ("{warranty: {ending_within: P60D}}", M._replace(warranty_end=date(2026, 8, 1)), True),
    ("{warranty: {ending_within: P60D}}", M._replace(warranty_end=date(2026, 6, 1)), False),  # already over
    ('{firmware: {at_least: "2.4"}}', M, True),
    ('{firmware: {at_least: "2.10"}}', M, False),  # versions, not strings: 2.10 > 2.4.1
    ('{firmware: {at_least: "2.0", below: "3.0"}}', M, True),
    ('{firmware: {below: "2.4.1"}}', M, False),
    ('{firmware: {at_least: "1.0"}}', Moments(), False),  # firmware unknown
    ("{service_due: true}", M, False),  # serviced 2025-09-01 + P12M = 2026-09-01
    ("{service_due: true}", M._replace(serviced=date(2025, 6, 1)), True),
    ("{service_due: false}", M._replace(serviced=date(2025, 6, 1)), False),
    ("{service_due: true}", M._replace(consumable_due=date(2026, 6, 1)), True),  # a consumable is due first
    ("{service_due: true}", Moments(made=date(2025, 6, 1)), True),  # never serviced: counted from manufacture
    ("{moment: first_week}", M, True),
    ("{moment: [first_week, ending]}", M, False),
    ("{moment: ending}", M._replace(warranty_end=date(2026, 7, 1)), True),
    ("{moment: first_week, warranty: expired}", M, False),
]


@pytest.mark.parametrize(("when", "moments", "matches"), CASES)
def test_each_moment_condition_decides_with_a_frozen_clock(when, moments, matches):
    assert route(when, moments) == ("https://example.com/moment" if matches else "https://example.com/pip")


def test_the_memo_keeps_units_in_different_moments_apart():
    rules = rules_with("{since_installation: {at_most: P7D}}")
    request = ScanRequest(None, PREFS, int(NOW.timestamp() * 1000))
    dl = parse(f"https://id.example.com/01/{GTIN}/21/S1")
    answers = [decide(rules, dl, "owner", UnitFacts("registered", moments=M._replace(installed=day)), request).href
               for day in (date(2026, 6, 10), date(2026, 1, 1), date(2026, 6, 14), None)]
    assert answers == ["https://example.com/moment", "https://example.com/pip", "https://example.com/moment",
                       "https://example.com/pip"]
    assert sum(1 for k in rules.memo if len(k) > 3) == 2  # one plan per outcome of the product's moment test


def test_a_product_without_moments_is_not_keyed_by_them():
    rules = rules_with("{state: sold}")
    product = rules.product_for(GTIN)
    assert product.moment_tests == () and product.uses_fault  # {fault} in a link: keyed by the fault only
    request = ScanRequest(None, PREFS, int(NOW.timestamp() * 1000))
    for day in (date(2020, 1, 1), date(2026, 1, 1)):
        decide(rules, parse(f"https://id.example.com/01/{GTIN}/21/S{day.year}"), "owner",
               UnitFacts("registered", moments=Moments(made=day)), request)
    assert len(rules.memo) == 1


def test_explain_shows_the_values_used_and_why_a_route_did_not_match():
    rules = rules_with("{moment: first_week}")
    request = ScanRequest(None, PREFS, int(NOW.timestamp() * 1000))
    decision = decide(rules, parse(f"https://id.example.com/01/{GTIN}/21/S1"), "owner",
                      UnitFacts("registered", moments=M._replace(installed=date(2026, 5, 1))), request, explain=True)
    trace = "\n".join(decision.trace)
    assert "moments at 2026-06-15: made 2025-01-10 (521 days ago); registered 2025-03-01" in trace
    assert "warranty active until 2027-02-28" in trace and "service due 2026-09-01" in trace
    assert "skipped, moment first_week: since installation at most P7D: installed 2026-05-01, 45 days ago" in trace


def test_a_fault_code_in_the_query_routes_and_fills_the_template():
    text = PRODUCT.replace("{WHEN}", "{fault: [E101, E119]}").replace(
        'href: "https://example.com/moment"\n        title: Moment', "link: gs1:support")
    rules = compile_rules(text, "r.yaml")
    request = ScanRequest(None, PREFS, int(NOW.timestamp() * 1000))
    go = [decide(rules, parse(f"https://id.example.com/01/{GTIN}/21/S1{q}"), "consumer", UnitFacts("sold"), request).href
          for q in ("?fault=E119", "?fault=E119", "?fault=E999", "", "?fault=E101")]
    assert go == ["https://example.com/support/E119", "https://example.com/support/E119", "https://example.com/pip",
                  "https://example.com/pip", "https://example.com/support/E101"]


BAD = [
    ("{since_registration: {at_most: P7X}}", "r.yaml:17:46: error: 'P7X' is not an ISO 8601 duration"),
    ("{since_recall: {at_most: P7D}}", "r.yaml:17:30: error: since_recall: no event 'recall' to count from"),
    ("{since_instalation: {at_most: P7D}}", "did you mean since_installation?"),
    ("{moment: first_wek}", "r.yaml:17:24: error: moment 'first_wek' is not defined for this product (did you mean 'first_week'?)"),
    ('{firmware: {at_least: "three"}}', "r.yaml:17:37: error: 'three' is not a version number"),
    ('{firmware: {at_least: "3.0", below: "2.0"}}', "firmware: below must be above at_least"),
    ("{since_service: {at_least: P2Y, at_most: P1Y}}", "at_least P2Y is longer than at_most P1Y: never true"),
    ("{warranty: lapsed}", "r.yaml:17:26: error: products.0.routes.0.when.warranty"),
    ("{fault: false}", "products.0.routes.0.when.fault"),
]


@pytest.mark.parametrize(("when", "expected"), BAD)
def test_bad_moments_are_check_errors_with_their_location(when, expected):
    with pytest.raises(RulesInvalid) as caught:
        rules_with(when)
    found = [str(p) for p in caught.value.problems]
    assert any(expected in p for p in found), found


def test_bad_named_moments_and_intervals_are_errors_where_they_are_defined():
    text = PRODUCT.replace("{WHEN}", "{state: sold}").replace("P12M", "12 months").replace(
        "{since_installation: {at_most: P7D}}", "{since_purchase: {at_most: P7D}}")
    with pytest.raises(RulesInvalid) as caught:
        compile_rules(text, "r.yaml")
    found = [str(p) for p in caught.value.problems]
    assert any(p.startswith("r.yaml:7:23: error: '12 months' is not an ISO 8601") for p in found), found
    assert any(p.startswith("r.yaml:9:36: error: since_purchase: no event 'purchase'") for p in found), found


def test_durations_are_calendar_aware():
    assert parse_duration("P1M").after(date(2025, 1, 31)) == date(2025, 2, 28)
    assert parse_duration("P1Y").after(date(2024, 2, 29)) == date(2025, 2, 28)
    assert parse_duration("P2W").before(date(2025, 3, 1)) == date(2025, 2, 15)
    for bad in ("P", "PT", "1D", "P-1D", "P1DT", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


# -- the commands: explain shows the values it used, diff --scans replays moments ------------

def serialink(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "serialink", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_rules_explain_takes_the_units_history_and_a_frozen_time():
    due = serialink("rules", "explain", f"https://id.example.com/01/{GTIN}/21/S1", "--role", "owner", "--state",
                    "registered", "--registered", "2024-02-01", "--serviced", "2025-03-01", "--warranty-start",
                    "2024-02-01", "--warranty-end", "2027-01-31", "--at", "2026-06-01T12:00:00Z", "--json")
    out = json.loads(due.stdout)
    assert out["href"] == f"https://service.example.com/book/{GTIN}/S1"
    assert any("last serviced 2025-03-01 (457 days ago)" in line and "service due 2026-03-01" in line
               for line in out["trace"])
    fresh = serialink("rules", "explain", f"https://id.example.com/01/{GTIN}/21/S1", "--role", "owner", "--state",
                      "registered", "--serviced", "2026-05-01", "--at", "2026-06-01T12:00:00Z", "--json")
    assert json.loads(fresh.stdout)["href"] == "https://www.example.com/boilers/x100"
    bad = serialink("rules", "explain", f"https://id.example.com/01/{GTIN}/21/S1", "--serviced", "last spring")
    assert bad.returncode == 1 and bad.stderr == ("serialink rules explain: --serviced: expected a date YYYY-MM-DD, "
                                                  "got 'last spring'\n")


@pytest.mark.parametrize("field,value,says", [
    ("made", "last spring", "made: expected a date YYYY-MM-DD, got 'last spring'"),
    ("at", "yesterday", "at: expected an ISO 8601 time"),
    ("at", "2026-06-01T12:00:00", "at: give a time zone"),
])
def test_rules_diff_names_the_scan_line_of_a_wrong_moment(tmp_path, field, value, says):
    """A recorded scan's wrong date is the shared one-line error naming file:line (it was a
    bare SystemExit: no command prefix, and --verbose could not add the traceback)."""
    scans = tmp_path / "scans.jsonl"
    good = {"gtin": GTIN, "serial": "S1", "role": "owner", "state": "registered", "at": "2026-06-01T12:00:00Z"}
    scans.write_text(json.dumps(good) + "\n" + json.dumps({**good, field: value}) + "\n")
    rules = str(default_rules_file())
    run = serialink("rules", "diff", rules, rules, "--scans", str(scans))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith(f"serialink rules diff: {scans}:2: {says}"), run.stderr
    assert len(run.stderr.splitlines()) == 1


def test_rules_diff_replays_recorded_scans_with_their_moments(tmp_path):
    new = tmp_path / "new.yaml"
    new.write_text(default_rules_file().read_text().replace("service_interval: P12M", "service_interval: P24M"))
    scans = tmp_path / "scans.jsonl"
    base = {"gtin": GTIN, "role": "owner", "state": "registered", "at": "2026-06-01T12:00:00Z"}
    scans.write_text("\n".join(json.dumps({**base, **extra}) for extra in [
        {"serial": "A", "serviced": "2025-03-01"},  # due under P12M, not under P24M: changes
        {"serial": "B", "serviced": "2026-05-01"},  # due under neither
        {"serial": "C", "serviced": "2023-01-01"},  # due under both
        {"uri": f"https://id.example.com/01/{GTIN}/21/D?fault=E101", "state": "sold"},  # fault route: same
    ]) + "\n")
    result = serialink("rules", "diff", str(default_rules_file()), str(new), "--scans", str(scans), "--json")
    out = json.loads(result.stdout)
    assert (out["scans"], out["changed"]) == (4, 1), out
    assert out["samples"][0]["old"].endswith(f"book/{GTIN}/A") and out["samples"][0]["new"].endswith("x100")
