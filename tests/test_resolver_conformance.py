"""The 31 checks of GS1's resolver conformance test suite, run against the real app.

Each check of ../shared/gs1/vectors/gs1-resolver-testsuite-checks.jsonl runs against
two Digital Links — a GTIN and a serialised unit of the example rules — and is recorded
in the conformance table. The TLS and HTTP-version checks need a real server; they run
in test_resolver_granian.py against Granian with TLS on loopback and are recorded there.
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from ext import parse
from resolver.rules.linktypes import NAMESPACES, normalise, vocabulary
from settings import default_config_dir
from tests.conformance import load_vectors
from tests.resolver_fixtures import ROOT

CHECKS = {case["id"]: case for case in load_vectors("gs1-resolver-testsuite-checks.jsonl")}
GS1 = default_config_dir() / "gs1"
LINKSET_SCHEMA = json.loads((GS1 / "gs1-linkset-schema.json").read_text())
DESCRIPTION_SCHEMA = json.loads((GS1 / "resolver-description.schema.json").read_text())
RE2 = re.compile(r"^https?:(\/\/((([^\/?#]*)@)?([^\/?#:]*)(:([^\/?#]*))?))?([^?#]*)(((\/(01|8006|8013|8010|414|417|"
                 r"8017|8018|255|00|253|401|402|8003|8004|415)\/)(\d{4}[^\/]+)(\/[^/]+\/[^/]+)?[/]?(\?([^?\n]*))?"
                 r"(#([^\n]*))?))")
DLS = {"gtin": f"{ROOT}/01/09506000134352", "serial": f"{ROOT}/01/09506000134352/21/ABC123"}
DEFAULT_LINK = "https://gs1.org/voc/defaultLink"
DEFAULT_MULTI = "https://gs1.org/voc/defaultLinkMulti"
HANDLED_ELSEWHERE = {"resolver-tlsOK", "resolver-httpVersion"}


def path_of(url: str) -> str:
    return url[len(ROOT):]


def linkset_of(resolver, dl: str) -> dict:
    r = resolver.get(path_of(dl), headers={"accept": "application/linkset+json"})
    assert r.status_code == 200, r.text
    return r.json()


def default_entry(linkset: dict, dl: str) -> tuple[dict, list]:
    """The most granular anchor at or above the request that carries a gs1:defaultLink."""
    anchors = [obj for obj in linkset["linkset"] if dl.startswith(obj["anchor"])]
    anchors.sort(key=lambda obj: len(obj["anchor"]), reverse=True)
    for obj in anchors:
        if DEFAULT_LINK in obj:
            return obj, obj[DEFAULT_LINK]
    raise AssertionError(f"no gs1:defaultLink at {dl} or above: {linkset}")


@pytest.fixture(scope="module")
def conformant(resolver):
    """The example resolver plus uploaded link data for the 300 check (two identical faqs links)."""
    body = {"linksets": [{"anchor": f"{ROOT}/01/09506000134352", "links": [
        {"type": "gs1:faqs", "href": "https://www.example.com/faq/a", "title": "FAQ", "lang": ["en"]},
        {"type": "gs1:faqs", "href": "https://www.example.com/faq/b", "title": "FAQ mirror", "lang": ["en"]},
    ]}]}
    r = resolver.client.put("/v1/links", json=body, headers=resolver.auth("manufacturer", gtins=["09506000134352"]))
    assert r.status_code == 200, r.text
    return resolver


def check_once(check_id: str, resolver, dl: str) -> None:
    no_query = dl.split("?")[0]
    path = path_of(no_query)
    if check_id == "resolver-isURL":
        assert re.match(r"^https?://", dl) and "." in dl.split("/")[2]
    elif check_id == "resolver-isHttps":
        assert dl.startswith("https://")
    elif check_id == "resolver-plausibleDL":
        assert RE2.match(dl)
    elif check_id == "resolver-validDL":
        parsed = parse(dl)
        assert parsed.primary_key[0] == "01" and len(parsed.gtin) == 14
    elif check_id == "resolver-basicWalkUp":
        r = resolver.get(path_of(f"{ROOT}/01/{parse(dl).gtin}") + "/10/KL8G")
        assert r.status_code != 404 and r.status_code < 400
    elif check_id == "resolver-rdFile":
        r = resolver.get("/.well-known/gs1resolver", headers={"accept": "application/json"})
        assert r.status_code == 200
        jsonschema.validate(r.json(), DESCRIPTION_SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    elif check_id == "resolver-corsCheck":
        r = resolver.client.options(path, headers={"origin": "https://ref.gs1.org/test-suites/resolver/",
                                                   "access-control-request-method": "GET"})
        assert r.headers.get("access-control-allow-origin") == "*"
    elif check_id == "resolver-methodsCheck":
        r = resolver.client.options(path, headers={"origin": "https://x.example", "access-control-request-method": "GET"})
        methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
        assert {"GET", "HEAD", "OPTIONS"} <= methods
    elif check_id == "resolver-linkOnRedirect":
        r = resolver.get(path)
        assert 300 <= r.status_code < 400 and 'rel="linkset"' in r.headers["link"]
    elif check_id == "resolver-legacyLinkHeaders":
        r = resolver.get(path)
        assert not re.search(r'rel="gs1:', r.headers.get("link", ""))
    elif check_id == "resolver-reportWith400":
        assert resolver.get(path + "/foo").status_code == 400
    elif check_id == "resolver-noErrorWith200":
        assert resolver.get(path + "/foo").status_code != 200
    elif check_id == "resolver-trailingSlash":
        a, b = resolver.get(path), resolver.get(path + "/")
        assert (a.status_code, a.headers.get("location")) == (b.status_code, b.headers.get("location"))
    elif check_id == "resolver-qsPassedOn":
        r = resolver.get(path + "?foo=bar")
        assert 300 <= r.status_code < 400 and "foo=bar" in r.headers["location"]
    elif check_id == "resolver-ltLinksetNoRedirect":
        r = resolver.get(path + "?linkType=linkset")
        assert r.status_code == 200 and "location" not in r.headers
    elif check_id == "resolver-ltAllNoRedirect":
        r = resolver.get(path + "?linkType=all")
        assert r.status_code == 200 and "location" not in r.headers
    elif check_id == "resolver-ltAcceptHeader":
        r = resolver.get(path, headers={"accept": "application/linkset+json"})
        assert r.status_code == 200 and "location" not in r.headers
    elif check_id == "resolver-validLinkset":
        jsonschema.validate(linkset_of(resolver, no_query), LINKSET_SCHEMA)
    elif check_id == "resolver-declaredContentType":
        r = resolver.get(path, headers={"accept": "application/linkset+json"})
        assert r.headers["content-type"].startswith("application/linkset+json")
    elif check_id == "resolver-linksetJsonldCheck":
        r = resolver.get(path, headers={"accept": "application/linkset+json"})
        link = r.headers["link"]
        assert 'rel="http://www.w3.org/ns/json-ld#context"' in link and 'type="application/ld+json"' in link
    elif check_id == "resolver-defaultLinkExists":
        default_entry(linkset_of(resolver, no_query), no_query)
    elif check_id == "resolver-singleDefaultLink":
        _, links = default_entry(linkset_of(resolver, no_query), no_query)
        assert len(links) == 1 and set(links[0]) == {"href", "title"}
    elif check_id == "resolver-defaultTarget":
        _, links = default_entry(linkset_of(resolver, no_query), no_query)
        assert resolver.get(path).headers["location"] == links[0]["href"]
    elif check_id == "resolver-loForLinkType":
        linkset = linkset_of(resolver, no_query)
        anchors = sorted((o for o in linkset["linkset"] if no_query.startswith(o["anchor"])),
                         key=lambda o: len(o["anchor"]), reverse=True)
        for rel in ("https://gs1.org/voc/dpp", "https://gs1.org/voc/sustainabilityInfo",
                    "https://gs1.org/voc/instructions"):
            href = next(obj[rel][0]["href"] for obj in anchors if rel in obj)
            r = resolver.get(path + f"?linkType={normalise(rel)}")
            assert r.status_code == 307 and r.headers["location"].split("?linkType=")[0] == href
    elif check_id == "resolver-loForLinkTypeWithAttributes":
        linkset = linkset_of(resolver, no_query)
        gtin_level = next(o for o in linkset["linkset"] if o["anchor"] == f"{ROOT}/01/09506000134352")
        for link in gtin_level["https://gs1.org/voc/pip"]:
            r = resolver.get(path + "?linkType=gs1:pip",
                             headers={"accept-language": link["hreflang"][0], "accept": link["type"]})
            assert r.headers["location"].split("?linkType=")[0] == link["href"]
    elif check_id == "resolver-threeHundred":
        r = resolver.get(path + "?linkType=gs1:faqs")
        assert r.status_code == 300
        body = r.json()
        assert len(body["linkset"][0]["https://gs1.org/voc/faqs"]) == 2
        jsonschema.validate(body, LINKSET_SCHEMA)
    elif check_id == "resolver-singleMultiLink":
        for obj in linkset_of(resolver, no_query)["linkset"]:
            assert len(obj.get(DEFAULT_MULTI, [None, None])) != 1
    elif check_id == "resolver-linkTypesDefined":
        for obj in linkset_of(resolver, no_query)["linkset"]:
            for key in obj:
                if key.startswith(NAMESPACES):
                    assert normalise(key) in vocabulary(), key
    elif check_id == "resolver-specificLinkTypeNotFound":
        assert resolver.get(path + "?linkType=gs1:nosuchlt").status_code == 404
    else:
        raise AssertionError(f"no implementation for check {check_id}")


@pytest.mark.parametrize("check_id", sorted(set(CHECKS) - HANDLED_ELSEWHERE))
@pytest.mark.parametrize("kind", sorted(DLS))
def test_resolver_check(check_id, kind, conformant, conformance):
    try:
        check_once(check_id, conformant, DLS[kind])
    except Exception:
        conformance.record("gs1-resolver-testsuite-checks", f"{check_id}[{kind}]", "fail")
        raise
    conformance.record("gs1-resolver-testsuite-checks", f"{check_id}[{kind}]", "pass")


def test_every_check_of_the_suite_is_covered():
    assert len(CHECKS) == 31
    assert HANDLED_ELSEWHERE <= set(CHECKS)


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in load_vectors("gs1-linkset-examples.jsonl")])
def test_linkset_examples_against_the_schema_we_serve(case, conformance):
    """The linkset schema Serialink validates its own linksets with agrees with GS1's examples."""
    errors = list(jsonschema.Draft7Validator(LINKSET_SCHEMA).iter_errors(case["input"]))
    outcome = "pass" if (not errors) == case["valid"] else "fail"
    conformance.record("gs1-linkset-examples", case["id"], outcome)
    assert (not errors) == case["valid"], errors
