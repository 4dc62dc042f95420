"""Routing rules: validation with positions, the decision logic, and the ops commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ext import parse
from resolver.rules.compiler import RulesInvalid, compile_rules, default_rules_file, load_rules
from resolver.rules.holder import RulesHolder
from resolver.scan.decide import ScanRequest, UnitFacts, decide
from resolver.scan.negotiate import Preferences

EXAMPLE = default_rules_file().read_text()
GTIN = "09506000134352"
NO_PREFS = Preferences((), None, ())


def rules_with(**replacements: str):
    text = EXAMPLE
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return compile_rules(text, "rules.yaml")


def go(rules, url, role="consumer", state="commissioned", link_type=None, prefs=NO_PREFS, **facts):
    return decide(rules, parse(url), role, UnitFacts(state, **facts), ScanRequest(link_type, prefs, 1_700_000_000_000))


@pytest.fixture(scope="module")
def rules():
    return load_rules(default_rules_file())


# -- the decision ---------------------------------------------------------------------------

@pytest.mark.parametrize("role, state, flags, expected", [
    ("consumer", "commissioned", {}, "https://www.example.com/register/09506000134352/S1"),
    ("consumer", "sold", {}, "https://www.example.com/register/09506000134352/S1"),
    ("consumer", "registered", {}, "https://www.example.com/boilers/x100"),
    ("owner", "in_service", {}, "https://www.example.com/boilers/x100"),
    ("technician", "registered", {}, "https://service.example.com/units/09506000134352/S1"),
    ("regulator", "sold", {}, "https://dpp.example.com/passports/09506000134352/S1"),
    ("consumer", "end_of_life", {}, "https://www.example.com/recycling/x100"),
    ("technician", "registered", {"recalled": True}, "https://www.example.com/recalls/09506000134352?serial=S1"),
    ("consumer", "unknown", {}, "https://www.example.com/verify/09506000134352/S1"),
    ("consumer", "sold", {"stolen": True}, "https://www.example.com/found/09506000134352/S1"),
])
def test_routes_by_role_and_state(rules, role, state, flags, expected):
    d = go(rules, f"https://id.example.com/01/{GTIN}/21/S1", role, state, **flags)
    assert (d.status, d.href) == (307, expected)


def test_explicit_link_type_follows_the_standard_unless_a_route_says_any(rules):
    url = f"https://id.example.com/01/{GTIN}/21/S1"
    assert go(rules, url, link_type="gs1:instructions").href == "https://www.example.com/boilers/x100/installation"
    assert go(rules, url, link_type="gs1:instructions", recalled=True).href.startswith("https://www.example.com/recalls/")
    assert go(rules, url, link_type="gs1:nosuchlt").status == 404


def test_walk_up_serial_lot_gtin(rules):
    d = go(rules, f"https://id.example.com/01/{GTIN}/10/LOT1?17=271231", state="unserialised", link_type="gs1:dpp")
    assert d.level == "gtin" and d.href == "https://dpp.example.com/passports/09506000134352"
    d = go(rules, f"https://id.example.com/01/{GTIN}/21/S9", link_type="gs1:dpp")
    assert d.level == "serial" and d.href == "https://dpp.example.com/passports/09506000134352/S9"


def test_company_prefix_products_and_unknown_products(rules):
    d = go(rules, "https://id.example.com/01/09506000999999", state="unserialised")
    assert d.href == "https://www.example.com/products/09506000999999"
    assert go(rules, "https://id.example.com/01/04012345000009", state="unserialised").status == 404


def test_template_values_are_percent_encoded(rules):
    d = go(rules, f"https://id.example.com/01/{GTIN}/21/A%2FB%3F", link_type="gs1:registerProduct")
    assert d.href == "https://www.example.com/register/09506000134352/A%2FB%3F"


def test_indistinguishable_links_make_a_300():
    rules = rules_with(**{
        '      - {type: gs1:sustainabilityInfo, href: "https://www.example.com/recycling/x100", title: Recycling and materials}':
        '      - {type: gs1:sustainabilityInfo, href: "https://www.example.com/recycling/x100", title: Recycling and materials}\n'
        '      - {type: gs1:sustainabilityInfo, href: "https://www.example.com/recycling/x100-b", title: Recycling (mirror)}'})
    d = go(rules, f"https://id.example.com/01/{GTIN}", state="unserialised", link_type="gs1:sustainabilityInfo")
    assert d.status == 300 and len(d.candidates) == 2


def test_date_windows_and_language_conditions():
    route = ('      - name: winter campaign\n        when: {role: consumer, from: "2023-11-01T00:00:00Z", '
             'until: "2023-12-01T00:00:00Z"}\n        href: "https://www.example.com/winter/{gtin}"\n'
             '        title: Winter service offer\n')
    rules = rules_with(**{"    routes:\n      - name: recall wins over everything": "    routes:\n" + route +
                          "      - name: recall wins over everything"})
    url = f"https://id.example.com/01/{GTIN}"
    inside = decide(rules, parse(url), "consumer", UnitFacts("unserialised"), ScanRequest(None, NO_PREFS, 1_700_000_000_000))
    outside = decide(rules, parse(url), "consumer", UnitFacts("unserialised"), ScanRequest(None, NO_PREFS, 1_800_000_000_000))
    assert inside.href == "https://www.example.com/winter/09506000134352"
    assert outside.href == "https://www.example.com/boilers/x100"


def test_memoised_plans_render_each_scans_own_values(rules):
    a = go(rules, f"https://id.example.com/01/{GTIN}/21/FIRST")
    b = go(rules, f"https://id.example.com/01/{GTIN}/21/SECOND")
    assert a.href.endswith("/FIRST") and b.href.endswith("/SECOND") and a.route == b.route


def test_explain_trace_names_each_route_and_why(rules):
    d = decide(rules, parse(f"https://id.example.com/01/{GTIN}/21/S1"), "regulator", UnitFacts("sold"),
               ScanRequest(None, NO_PREFS, 0), explain=True)
    text = "\n".join(d.trace)
    assert "role: regulator; state: sold" in text
    assert "regulators get the product passport" in text and "matched" in text
    assert "gs1:dpp at serial level" in text


# -- validation -------------------------------------------------------------------------------

def problems_of(text: str) -> list[str]:
    with pytest.raises(RulesInvalid) as info:
        compile_rules(text, "r.yaml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("old, new, expected", [
    ("version: 1", "version: 2", "r.yaml:27:10: error: version: 1 was expected"),
    ("root: https://id.example.com", "root: ftp://id", "r.yaml:30:9: error: resolver.root"),
    ("when: {role: regulator}\n        link: gs1:dpp", "when: {role: auditor}\n        link: gs1:dpp",
     "'auditor' is not one of"),
    ('default: gs1:pip\n    links:\n      - {type: gs1:pip, href: "https://www.example.com/boilers/x100"',
     'default: gs1:pipx\n    links:\n      - {type: gs1:pip, href: "https://www.example.com/boilers/x100"',
     "unknown GS1 link type gs1:pipx (did you mean gs1:pip?)"),
    ("https://www.example.com/boilers/x100/installation", "https://www.example.com/{serialnumber}",
     "unknown template variable {serialnumber}"),
    ("https://www.example.com/recycling/x100", "https://recycling.evil.org/x100",
     "is not in resolver.allowed_target_hosts"),
    ('company_prefix: "9506000"', 'gtin: "09506000134352"', "GTIN 09506000134352 is already configured"),
    ('gtin: "09506000134352"', 'gtin: "09506000134353"', "wrong check digit"),
    ("  cache_max_age: 30\n", "  cache_max_age: 30\n  cache_max_age: 60\n", "duplicate key 'cache_max_age'"),
    ("products:\n", "products:\n  - [unclosed\n", "YAML syntax"),
])
def test_bad_rules_are_refused_with_file_line_column(old, new, expected):
    assert old in EXAMPLE
    found = problems_of(EXAMPLE.replace(old, new, 1))
    assert any(expected in p for p in found), found
    assert all(p.startswith("r.yaml:") for p in found)


def test_reload_swaps_only_valid_rules_and_keeps_the_last_good_copy(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(EXAMPLE)
    outcomes = []
    holder = RulesHolder(path, tmp_path / "data", lambda outcome, version: outcomes.append(outcome))
    first = holder.current
    path.write_text(EXAMPLE.replace("cache_max_age: 30", "cache_max_age: 31"))
    assert holder.changed() and holder.reload()[0]
    assert holder.current.cache_max_age == 31 and holder.current is not first
    good = holder.current
    path.write_text("version: 1\nresolver: {}\n")
    accepted, problems = holder.reload()
    assert not accepted and problems and holder.current is good
    assert outcomes == ["loaded", "loaded", "rejected"]
    # a new worker starting while the file is broken serves the last good copy
    assert RulesHolder(path, tmp_path / "data").current.cache_max_age == 31


# -- the commands -------------------------------------------------------------------------------

def serialink(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serialink", *args], capture_output=True, text=True, timeout=120)


def test_rules_check_command(tmp_path):
    ok = serialink("rules", "check", str(default_rules_file()))
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.replace("default: gs1:pip", "default: gs1:nope", 1))
    result = serialink("rules", "check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:" in result.stdout and "unknown GS1 link type gs1:nope" in result.stdout


def test_rules_explain_command():
    result = serialink("rules", "explain", f"https://id.example.com/01/{GTIN}/21/S1", "--role", "technician",
                       "--state", "registered", "--json")
    out = json.loads(result.stdout)
    assert out["status"] == 307 and out["href"] == "https://service.example.com/units/09506000134352/S1"
    assert out["route"] == "technicians and installers get the service record"
    invalid = serialink("rules", "explain", f"https://id.example.com/01/{GTIN[:-1]}9")
    assert invalid.returncode == 1 and "400" in invalid.stdout


def test_rules_diff_counts_changed_destinations_by_role_and_state(tmp_path):
    new = tmp_path / "new.yaml"
    new.write_text(EXAMPLE.replace("        when: {role: regulator}\n        link: gs1:dpp",
                                   "        when: {role: regulator}\n        link: gs1:instructions", 1))
    scans = tmp_path / "scans.jsonl"
    scans.write_text("\n".join([
        json.dumps({"gtin": GTIN, "serial": "S1", "role": "regulator", "state": "sold"}),
        json.dumps({"gtin": GTIN, "serial": "S2", "role": "consumer", "state": "sold"}),
        json.dumps({"uri": f"https://id.example.com/01/{GTIN}", "role": "regulator"}),
        f"https://id.example.com/01/{GTIN}/21/S3",
        "not a uri",
    ]) + "\n")
    result = serialink("rules", "diff", str(default_rules_file()), str(new), "--scans", str(scans), "--json")
    out = json.loads(result.stdout)
    assert out["scans"] == 4 and out["invalid"] == 1 and out["changed"] == 2
    changed = {(r["role"], r["state"]): r["changed"] for r in out["by_role_state"]}
    assert changed[("regulator", "sold")] == 1 and changed[("regulator", "unserialised")] == 1
    assert changed[("consumer", "sold")] == 0 and changed[("consumer", "commissioned")] == 0
    assert out["samples"][0]["new"].endswith("installation")
