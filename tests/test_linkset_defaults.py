"""Every level of a linkset describes the redirects the resolver makes at that level.

Table-driven over the example rules: every role the rules route on × units in every
lifecycle state and overlay (plus a GTIN and a lot on their own), real app, real SQLite
store. For each level of each linkset, read as GS1's resolver test suite reads it (each
link type taken from the most granular level at or above that has it):

- a scan of the level's own DL URI without a link type goes to its ``gs1:defaultLink``;
- for each ``gs1:defaultLinkMulti`` entry, a scan asking for its language, context and
  media type goes to that entry;
- ``?linkType=gs1:defaultLink`` is served, to the same place as the plain scan (issue 12 §6).
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from settings import default_config_dir
from tests.resolver_fixtures import ROOT

GTIN = "09506000134352"
DEFAULT_LINK = "https://gs1.org/voc/defaultLink"
DEFAULT_MULTI = "https://gs1.org/voc/defaultLinkMulti"
SCHEMA = json.loads((default_config_dir() / "gs1" / "gs1-linkset-schema.json").read_text())
ROLES = ("consumer", "owner", "installer", "technician", "regulator", "manufacturer")
# serial → the events after commissioning that give it its state (no entry: never issued)
UNITS = {
    "COM1": (),
    "SHP1": ("ship",),
    "SLD1": ("sell",),
    "REG1": ("register",),
    "SRV1": ("register", "start_service"),
    "EOL1": ("end_of_life",),
    "DEC1": ("decommission",),
    "STL1": ("report_stolen",),
    "RCL1": ("recall",),
}
EVENT_DATA = {"sell": {"purchase_date": "2025-01-02"}, "register": {"owner": "owner-ana-0001", "purchase_date": "2025-01-02"}}
PATHS = [f"/01/{GTIN}", f"/01/{GTIN}/10/LOT7"] + [f"/01/{GTIN}/21/{s}" for s in UNITS] + [f"/01/{GTIN}/21/NEVER1"]


@pytest.fixture(scope="module")
def units(resolver):
    for serial, events in UNITS.items():
        resolver.unit(GTIN, serial, *events, **{k: v for k, v in EVENT_DATA.items() if k in events})
    return resolver


def headers_for(resolver, role: str, **extra: str) -> dict[str, str]:
    return {**({} if role == "consumer" else resolver.auth(role, gtins=[GTIN])), **extra}


def effective(linkset: dict, anchor: str, rel: str) -> list[dict] | None:
    """The links of one relation that apply at ``anchor``: from the most granular level at or above it."""
    levels = sorted((o for o in linkset["linkset"] if anchor.startswith(o["anchor"])),
                    key=lambda o: len(o["anchor"]), reverse=True)
    return next((o[rel] for o in levels if rel in o), None)


def with_query(href: str | None, query: str) -> str | None:
    """Where a redirect for ``href`` goes when the request carried ``query`` (forwarded whole)."""
    if href is None or not query:
        return href
    return href + ("&" if "?" in href else "?") + query


def location(resolver, path: str, headers: dict) -> str | None:
    r = resolver.get(path, headers=headers)
    assert r.status_code in (307, 300, 404), (path, r.status_code, r.text)
    return r.headers.get("location") if r.status_code == 307 else None


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("role", ROLES)
def test_each_level_of_the_linkset_describes_its_redirects(units, role, path):
    resolver = units
    r = resolver.get(path, headers=headers_for(resolver, role, accept="application/linkset+json"))
    assert r.status_code == 200, r.text
    linkset = r.json()
    jsonschema.validate(linkset, SCHEMA)
    assert linkset["linkset"][0]["anchor"] == f"{ROOT}/01/{GTIN}"
    for obj in linkset["linkset"]:
        anchor = obj["anchor"]
        level_path = anchor[len(ROOT):]
        assert len(obj.get(DEFAULT_LINK, [None])) == 1, f"{anchor}: more than one gs1:defaultLink"
        assert len(obj.get(DEFAULT_MULTI, [None, None])) > 1, f"{anchor}: a single gs1:defaultLinkMulti"
        default = effective(linkset, anchor, DEFAULT_LINK)
        assert default is not None, f"{anchor}: no gs1:defaultLink at or above it"
        assert set(default[0]) == {"href", "title"}
        plain = location(resolver, level_path, headers_for(resolver, role))
        assert plain == default[0]["href"], f"{role} {anchor}: redirect {plain}, linkset default {default[0]['href']}"
        asked = location(resolver, level_path + "?linkType=gs1:defaultLink", headers_for(resolver, role))
        assert asked == with_query(plain, "linkType=gs1:defaultLink")
        for entry in effective(linkset, anchor, DEFAULT_MULTI) or ():
            extra = {}
            if entry.get("hreflang"):
                extra["accept-language"] = entry["hreflang"][0]
            if entry.get("type"):
                extra["accept"] = entry["type"]
            query = f"context={entry['context'][0]}" if entry.get("context") else ""
            got = location(resolver, level_path + (f"?{query}" if query else ""), headers_for(resolver, role, **extra))
            assert got == with_query(entry["href"], query), (role, anchor, entry, got)


def test_an_unregistered_serial_publishes_its_own_language_variants(units):
    """The issue's case: GS1's suite failed loForgs1defaultLinkMulti0/1 on a serial sent to registration."""
    linkset = units.get(f"/01/{GTIN}/21/SLD1", headers={"accept": "application/linkset+json"}).json()
    gtin_level, *_, serial_level = linkset["linkset"]
    assert [e["href"] for e in gtin_level[DEFAULT_MULTI]] == ["https://www.example.com/boilers/x100",
                                                               "https://www.example.com/de/kessel/x100"]
    assert serial_level[DEFAULT_LINK] == [{"href": f"https://www.example.com/register/{GTIN}/SLD1",
                                           "title": "Register your boiler"}]
    assert [(e["href"], e["hreflang"]) for e in serial_level[DEFAULT_MULTI]] == [
        (f"https://www.example.com/register/{GTIN}/SLD1", ["en"]),
        (f"https://www.example.com/de/registrieren/{GTIN}/SLD1", ["de"])]


def test_a_gtin_scanned_by_a_regulator_defaults_to_the_passport(units):
    """Issue 12 §6: the regulator-routed GTIN linkset named the product page while the scan went to the DPP."""
    auth = units.auth("regulator", gtins=[GTIN])
    linkset = units.get(f"/01/{GTIN}", headers={**auth, "accept": "application/linkset+json"}).json()
    assert linkset["linkset"][0][DEFAULT_LINK][0]["href"] == f"https://dpp.example.com/passports/{GTIN}"
    assert DEFAULT_MULTI not in linkset["linkset"][0]
    assert units.get(f"/01/{GTIN}", headers=auth).headers["location"] == f"https://dpp.example.com/passports/{GTIN}"


def test_a_single_target_serial_default_shadows_the_gtin_variants(units):
    """A serial nobody issued goes to verification whatever the language: its level says so for en and de."""
    linkset = units.get(f"/01/{GTIN}/21/NEVER1", headers={"accept": "application/linkset+json"}).json()
    serial_level = linkset["linkset"][-1]
    verify = f"https://www.example.com/verify/{GTIN}/NEVER1"
    assert serial_level[DEFAULT_LINK][0]["href"] == verify
    assert [(e["href"], e["hreflang"]) for e in serial_level[DEFAULT_MULTI]] == [(verify, ["en"]), (verify, ["de"])]


@pytest.mark.parametrize("link_type", ["gs1:defaultLink", "https://gs1.org/voc/defaultLink", "gs1:defaultLinkMulti"])
def test_asking_for_the_default_link_type_is_served(units, link_type):
    """Issue 12 §6: `linkType=gs1:defaultLink` answered 404 although the linkset lists the relation."""
    for path in (f"/01/{GTIN}", f"/01/{GTIN}/21/SLD1"):
        for lang in ("en", "de"):
            plain = units.get(path, headers={"accept-language": lang})
            asked = units.get(f"{path}?linkType={link_type}", headers={"accept-language": lang})
            assert asked.status_code == 307, asked.text
            assert asked.headers["location"] == with_query(plain.headers["location"], f"linkType={link_type}")
