"""``/00/{sscc}`` for a browser: the contents of a case or pallet as a page in the visitor's
language, for the logistics roles that see them; everyone else the same 404 page as for an
SSCC nobody packed. The real ASGI app on SQLite and on Redis."""

from __future__ import annotations

import html
import re

import pytest

from tests.resolver_fixtures import ROOT
from tests.test_aggregation import GTIN, line_resolver, sscc

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture(params=["sqlite", "redis"])
def packed(request, resolver_factory):
    """Case A (units 0-2) and case B (unit 3) on pallet P, packed at line l1, site s1."""
    r, _, serials, headers = line_resolver(request, resolver_factory)
    case_a, case_b, pallet = sscc(401), sscc(402), sscc(403, ext="1")
    for parent, children, at in ((case_a, [f"{ROOT}/01/{GTIN}/21/{s}" for s in serials[:3]], "2026-03-01T08:00:00Z"),
                                 (case_b, [{"gtin": GTIN, "serial": serials[3]}], "2026-03-01T08:05:00Z"),
                                 (pallet, [case_a, case_b], "2026-03-01T09:30:00Z")):
        done = r.client.post("/v1/aggregations", headers=headers,
                             json={"action": "pack", "parent": parent, "children": children, "at": at})
        assert done.status_code == 201, done.text
    return r, serials, case_a, pallet


def _page(r, path, lang="en-GB", **headers):
    return r.get(path, headers={"accept": BROWSER, "accept-language": lang, **headers})


def _text(answer):
    return html.unescape(re.sub(r"<[^>]+>", " ", answer.text))


def test_logistics_roles_get_the_contents_as_a_page_in_their_language(packed):
    r, serials, case_a, pallet = packed
    for role in ("manufacturer", "regulator"):
        token = r.token(role, gtins=[GTIN])
        for lang, title, line_label, packed_in in (("en-GB", "Contents of", "Packing line", "Packed in"),
                                                   ("de-DE", "Inhalt von", "Verpackungslinie", "Verpackt in")):
            # a browser carries the token in the serialink_token cookie; an API client as a bearer
            for creds in ({"cookie": f"serialink_token={token}"}, {"authorization": f"Bearer {token}"}):
                page = _page(r, f"/00/{case_a}", lang, **creds)
                assert page.status_code == 200, page.text
                assert page.headers["content-type"] == "text/html; charset=utf-8"
                assert page.headers["content-language"] == lang[:2]
                assert "no-store" in page.headers["cache-control"] and "private" in page.headers["cache-control"]
                assert "default-src 'none'" in page.headers["content-security-policy"]
                text = _text(page)
                assert f"{title} {case_a}" in text and line_label in text and packed_in in text
                assert re.search(r"\bl1\b", text) and re.search(r"\bs1\b", text)
                # every child, a link to its Digital Link URI on this resolver; the pallet too
                hrefs = re.findall(r'href="([^"]+)"', page.text)
                for serial in serials[:3]:
                    assert f"{ROOT}/01/{GTIN}/21/{serial}" in hrefs and serial in text
                assert f"{ROOT}/00/{pallet}" in hrefs
    de = _text(_page(r, f"/00/{case_a}", "de-DE", authorization=f"Bearer {r.token('manufacturer', gtins=[GTIN])}"))
    assert "Enthält 3 Einheiten." in de and "1. März 2026, 08:00" in de  # first packed, the German way
    assert de.count("X100 Brennwertkessel") == 3  # the brand's model name, in the page's language
    en = _text(_page(r, f"/00/{pallet}", "en-GB", authorization=f"Bearer {r.token('manufacturer', gtins=[GTIN])}"))
    assert "It holds 2 items." in en and f"Case or pallet {case_a}" in en and "1 March 2026" in en


def test_everyone_else_gets_the_same_404_page_as_for_an_unknown_sscc(packed):
    r, serials, case_a, pallet = packed
    never = sscc(499)
    for lang, words in (("en-GB", "We don't know this product"), ("de-DE", "Dieses Produkt kennen wir nicht")):
        unknown = _page(r, f"/00/{never}", lang)
        assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")
        assert words in _text(unknown) and unknown.headers["content-language"] == lang[:2]
        for creds in ({}, {"authorization": f"Bearer {r.token('owner', gtins=[GTIN])}"},
                      {"authorization": f"Bearer {r.token('manufacturer', gtins=['04012345000009'])}"},
                      {"cookie": f"serialink_token={r.token('technician', gtins=[GTIN])}"}):
            refused = _page(r, f"/00/{case_a}", lang, **creds)
            assert refused.status_code == 404, refused.text
            assert refused.text == unknown.text  # the same page: nothing says the SSCC exists
            assert serials[0] not in refused.text and "l1" not in _text(refused)
        # a logistics role asking for an SSCC nobody packed: a 404 page in the visitor's language
        missing = _page(r, f"/00/{never}", lang, authorization=f"Bearer {r.token('manufacturer', gtins=[GTIN])}")
        assert missing.status_code == 404 and words in _text(missing)


def test_api_clients_keep_the_linkset_and_head_has_no_body(packed):
    r, serials, case_a, pallet = packed
    auth = {"authorization": f"Bearer {r.token('manufacturer', gtins=[GTIN])}"}
    for accept in (None, "application/linkset+json", "application/json"):
        answer = r.get(f"/00/{case_a}", headers={**auth, **({"accept": accept} if accept else {})})
        assert answer.status_code == 200 and "linkset" in answer.json(), answer.text
    head = r.client.head(f"/00/{case_a}", headers={**auth, "accept": BROWSER})
    assert head.status_code == 200 and head.content == b"" and head.headers["content-type"].startswith("text/html")


def test_a_large_case_lists_its_first_children_and_says_how_many_more():
    from resolver.pages.sscc_page import MAX_LISTED, page_context
    from twin.aggregation import Aggregate, Child, ParentMeta

    children = tuple(Child(f"01/{GTIN}/21/S{i:05d}", "b") for i in range(MAX_LISTED + 7))
    context = page_context(Aggregate(sscc(1), ParentMeta("", "", 0), children, None), ROOT, lambda g: "Boiler")
    assert len(context["children"]) == MAX_LISTED and context["more"] == 7 and context["total"] == MAX_LISTED + 7
    assert context["line"] is None and context["children"][0]["name"] == "Boiler"
