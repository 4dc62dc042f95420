"""The resolver over HTTP (real ASGI app, real SQLite store): routing by role and state,
security properties, bad input, and the link-data API."""

from __future__ import annotations

import time
from datetime import UTC

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.resolver_fixtures import ROOT

GTIN = "09506000134352"
UNIT = f"/01/{GTIN}/21/ABC123"


@pytest.fixture(scope="module", autouse=True)
def commissioned_unit(resolver):
    """ABC123 exists (commissioned); other serials in these tests were never issued."""
    resolver.unit(GTIN, "ABC123")


def test_anonymous_scan_of_a_product_goes_to_the_default_link(resolver):
    r = resolver.get(f"/01/{GTIN}")
    assert r.status_code == 307
    assert r.headers["location"] == "https://www.example.com/boilers/x100"
    assert r.headers["vary"] == "Accept, Accept-Language, Authorization, Cookie"
    assert r.headers["cache-control"].startswith("public, max-age=")
    assert r.headers["access-control-allow-origin"] == "*"


def test_language_negotiation_with_q_values_and_region_fallback(resolver):
    de = resolver.get(f"/01/{GTIN}", headers={"accept-language": "fr;q=1, de-CH;q=0.9, en;q=0.1"})
    assert de.headers["location"] == "https://www.example.com/de/kessel/x100"
    en = resolver.get(f"/01/{GTIN}", headers={"accept-language": "en-GB"})
    assert en.headers["location"] == "https://www.example.com/boilers/x100"


@pytest.mark.parametrize("role, target", [
    ("technician", "https://service.example.com/units/09506000134352/ABC123"),
    ("installer", "https://service.example.com/units/09506000134352/ABC123"),
    ("regulator", "https://dpp.example.com/passports/09506000134352/ABC123"),
])
def test_roles_from_tokens_route_to_their_links(resolver, role, target):
    r = resolver.get(UNIT, headers=resolver.auth(role, gtins=[GTIN]))
    assert r.status_code == 307 and r.headers["location"] == target
    assert r.headers["cache-control"] == "private, no-store"


def test_token_in_cookie_works_like_a_bearer_token(resolver):
    token = resolver.token("technician", prefixes=["9506000"])
    r = resolver.get(UNIT, headers={"cookie": f"other=1; serialink_token={token}"})
    assert r.headers["location"].startswith("https://service.example.com/")


@pytest.mark.parametrize("headers", [
    {"authorization": "Bearer not-a-token"},
    {"authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoidGVjaG5pY2lhbiJ9.Zm9yZ2Vk"},
])
def test_forged_tokens_fall_back_to_consumer_on_scans(resolver, headers):
    r = resolver.get(UNIT, headers=headers)
    assert r.status_code == 307
    assert not r.headers["location"].startswith("https://service.example.com/")


def test_expired_and_out_of_scope_tokens_fall_back_to_consumer(resolver):
    expired = resolver.services.issuer.issue("t", "technician", ttl=1, gtins=[GTIN], now=int(time.time()) - 10)
    other_product = resolver.token("technician", gtins=["04012345000009"])
    for token in (expired, other_product):
        r = resolver.get(UNIT, headers={"authorization": f"Bearer {token}"})
        assert not r.headers["location"].startswith("https://service.example.com/")


def test_per_visit_technician_token_covers_only_its_unit(resolver):
    token = resolver.token("technician", gtins=[GTIN], unit=(GTIN, "ABC123"), ttl=4 * 3600)
    assert resolver.get(UNIT, headers={"authorization": f"Bearer {token}"}).headers["location"].startswith(
        "https://service.example.com/")
    other = resolver.get(f"/01/{GTIN}/21/OTHER1", headers={"authorization": f"Bearer {token}"})
    assert not other.headers["location"].startswith("https://service.example.com/")


def test_consumers_never_see_role_restricted_links(resolver):
    r = resolver.get(UNIT + "?linkType=gs1:serviceInfo")
    assert r.status_code == 404
    linkset = resolver.get(UNIT + "?linkType=linkset").json()
    assert all("https://gs1.org/voc/serviceInfo" not in obj for obj in linkset["linkset"])
    tech = resolver.get(UNIT + "?linkType=linkset", headers=resolver.auth("technician", gtins=[GTIN])).json()
    assert any("https://gs1.org/voc/serviceInfo" in obj for obj in tech["linkset"])


def test_the_request_can_never_choose_the_target(resolver):
    evil = "https://evil.example.org/phish"
    for query in (f"?redirect={evil}", f"?linkType={evil}", f"?url={evil}&linkType=gs1:pip", "?@evil.example.org"):
        r = resolver.get(f"/01/{GTIN}{query}")
        if r.status_code == 307:
            location = r.headers["location"]
            assert location.startswith("https://www.example.com/"), location
            assert "//" not in location.split("?")[0][len("https://"):]
    r = resolver.get(ROOT + "//evil.example.org/01/" + GTIN)
    assert r.status_code in (307, 400) and (r.status_code == 400 or r.headers["location"].startswith("https://www.example.com/"))


def test_invalid_uris_are_400_with_a_reason_and_never_200(resolver):
    for path in (f"/01/{GTIN[:-1]}3", f"/01/{GTIN}/21/", f"/01/{GTIN}/10/A/21/B/22/C", "/01/ABC",
                 f"/01/{GTIN}?17=250231", "/foo/bar", "/", f"/01/{GTIN}/21/a%00b"):
        r = resolver.get(path)
        assert r.status_code == 400, path
        body = r.json()
        assert body["title"] == "invalid GS1 Digital Link URI" and body["detail"]
    r = resolver.get(f"/01/{GTIN[:-1]}3", headers={"accept": "text/html"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")


def test_unknown_product_is_404(resolver):
    assert resolver.get("/01/04012345000009").status_code == 404


def test_legacy_labels_resolve_through_the_lenient_parser(resolver):
    short = resolver.get("/01/9506000134352")  # GTIN-13
    assert short.status_code == 307 and short.headers["location"] == "https://www.example.com/boilers/x100"
    alias = resolver.get("/gtin/9506000134352")
    assert alias.status_code == 307


def test_compressed_uri_is_decompressed_with_owl_same_as(resolver):
    from ext.compression import compress

    compressed = compress(ROOT, [("01", GTIN)])
    r = resolver.get(compressed[len(ROOT):])
    assert r.status_code == 307
    assert f'<{ROOT}/01/{GTIN}>; rel="owl:sameAs"' in r.headers["link"]
    assert r.headers["location"] == resolver.get(f"/01/{GTIN}").headers["location"]


def test_methods_head_options_and_405(resolver):
    head = resolver.client.head(f"/01/{GTIN}", follow_redirects=False)
    assert head.status_code == 307 and head.content == b""
    assert resolver.client.post(f"/01/{GTIN}").status_code == 405
    assert resolver.client.request("PUT", f"/01/{GTIN}").headers["allow"] == "GET, HEAD, OPTIONS"


def test_html_linkset_page_escapes_and_embeds_the_linkset(resolver):
    r = resolver.get(f"/01/{GTIN}?linkType=linkset", headers={"accept": "text/html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<h1>Example X100 condensing boiler</h1>" in r.text
    assert 'type="application/linkset+json"' in r.text


def test_recall_overlay_wins_over_everything(resolver_factory):
    r = resolver_factory()
    from twin.events import Actor
    from twin.overlays import LotScope

    store = r.services.store
    r.client.portal.call(store.put_overlay, GTIN, "recalled", LotScope("L42"), Actor("manufacturer", "qa"), "burner fault")
    r.services.lookup.invalidate(GTIN, "overlay")
    lot_scan = r.get(f"/01/{GTIN}/10/L42?linkType=gs1:pip")
    assert lot_scan.headers["location"] == "https://www.example.com/recalls/09506000134352?linkType=gs1:pip"
    other_lot = r.get(f"/01/{GTIN}/10/L43")
    assert other_lot.headers["location"] == "https://www.example.com/boilers/x100"


def test_debug_header_returns_the_trace_for_manufacturers_only(resolver):
    token = resolver.auth("manufacturer", gtins=[GTIN])
    r = resolver.get(UNIT, headers={**token, "x-serialink-debug": "1"})
    assert "route" in r.headers["x-serialink-trace"]
    assert "x-serialink-trace" not in resolver.get(UNIT, headers={"x-serialink-debug": "1"}).headers
    tech = resolver.get(UNIT, headers={**resolver.auth("technician", gtins=[GTIN]), "x-serialink-debug": "1"})
    assert "x-serialink-trace" not in tech.headers


def test_scans_are_recorded_in_batches(resolver_factory):
    r = resolver_factory()
    for i in range(20):
        assert r.get(f"/01/{GTIN}/21/SCAN{i}").status_code == 307
    deadline = time.monotonic() + 5
    while r.services.scans.stats().flushed < 20:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    history = r.client.portal.call(r.services.store.scan_history, GTIN, "SCAN3")
    assert len(history) == 1 and history[0].role == "consumer"


def test_readiness_and_metrics(resolver):
    assert resolver.get("/healthz").json() == {"status": "ok"}
    ready = resolver.get("/readyz")
    assert ready.status_code == 200 and ready.json()["store"] == "ok"
    resolver.get(f"/01/{GTIN}")
    metrics = resolver.get("/metrics").text
    assert "serialink_scans_total" in metrics and "serialink_scan_seconds_bucket" in metrics


# -- link data API -------------------------------------------------------------------

def put_links(resolver, body, role="manufacturer", gtins=(GTIN,)):
    return resolver.client.put("/v1/links", json=body, headers=resolver.auth(role, gtins=list(gtins)))


def test_uploaded_serial_links_win_over_configured_ones(resolver_factory):
    r = resolver_factory()
    body = {"linksets": [{"anchor": f"{ROOT}{UNIT}", "links": [
        {"type": "gs1:pip", "href": "https://www.example.com/units/ABC123", "title": "Your boiler"}]}]}
    assert put_links(r, body).status_code == 200
    scan = r.get(UNIT + "?linkType=gs1:pip")
    assert scan.headers["location"] == "https://www.example.com/units/ABC123?linkType=gs1:pip"
    assert r.get(f"/01/{GTIN}/21/OTHER?linkType=gs1:pip").headers["location"].startswith(
        "https://www.example.com/boilers/x100")
    listing = r.client.get(f"/v1/links/{GTIN}", headers=r.auth("manufacturer", gtins=[GTIN])).json()
    assert listing["linksets"][0]["anchor"] == f"{ROOT}{UNIT}"


@pytest.mark.parametrize("body, field", [
    ({"linksets": [{"anchor": "https://x.example.com/01/09506000134353", "links": []}]}, "linksets[0].anchor"),
    ({"linksets": [{"anchor": f"{ROOT}/00/095060001343520000", "links": []}]}, "linksets[0].anchor"),
    ({"linksets": [{"anchor": f"{ROOT}/01/{GTIN}", "links": [{"type": "gs1:pip", "href": "https://evil.example.org/",
                                                             "title": "x"}]}]}, "linksets[0].links[0].href"),
    ({"linksets": [{"anchor": f"{ROOT}/01/{GTIN}", "links": [{"type": "gs1:nope", "href": "https://www.example.com/",
                                                             "title": "x"}]}]}, "linksets[0].links[0].type"),
    ({"linksets": [{"anchor": f"{ROOT}/01/{GTIN}", "links": [{"type": "gs1:pip", "href": "javascript:alert(1)",
                                                             "title": "x"}]}]}, "linksets[0].links[0].href"),
    ({"linksets": [{"anchor": f"{ROOT}/01/{GTIN}", "links": [{"type": "gs1:pip", "href": "https://www.example.com/",
                                                             "title": 7}]}]}, "linksets[0].links[0].title"),
    ({"nope": 1}, "linksets"),
])
def test_bad_link_payloads_are_refused_naming_the_field(resolver, body, field):
    r = put_links(resolver, body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_link_api_needs_a_scoped_writer_token(resolver):
    body = {"linksets": [{"anchor": f"{ROOT}/01/{GTIN}", "links": []}]}
    assert resolver.client.put("/v1/links", json=body).status_code == 401
    assert put_links(resolver, body, role="technician").status_code == 403
    assert put_links(resolver, body, gtins=["04012345000009"]).status_code == 403
    assert resolver.client.get(f"/v1/links/{GTIN}").status_code == 401
    huge = {"linksets": [{"anchor": f"{ROOT}/01/{GTIN}", "links": [{"type": "gs1:pip", "href": "https://www.example.com/",
                                                                   "title": "x" * 2_000_000}]}]}
    assert put_links(resolver, huge).status_code == 413


# -- fuzz --------------------------------------------------------------------------------

path_parts = st.sampled_from(["01", GTIN, "21", "10", "22", "235", "17", "ABC", "%2F", "%00", "%", "..", "gtin",
                              "9506000134352", "00", "8004", "?", "&", "=", "linkType", "gs1:pip", "#", "~", ""])


@given(st.lists(path_parts, max_size=8), st.text(max_size=40))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzzed_urls_never_produce_a_5xx(resolver, parts, tail):
    path = "/" + "/".join(parts)
    query = "".join(ch for ch in tail if ch.isprintable() and ch not in " #")
    r = resolver.get(ROOT + path + ("?" + query if query else ""))
    assert r.status_code < 500, (path, query, r.text)


def test_a_revoked_token_stops_routing_scans_without_any_api_request_first(resolver_factory):
    from datetime import datetime, timedelta

    from twin.events import Actor

    r = resolver_factory()
    r.unit(GTIN, "ABC123")
    token = r.token("technician", gtins=[GTIN])
    headers = {"authorization": f"Bearer {token}"}
    assert r.get(UNIT, headers=headers).headers["location"].startswith("https://service.example.com/")
    claims = r.services.token_verifier.verify(token)
    expires = datetime.now(UTC) + timedelta(hours=1)
    r.client.portal.call(lambda: r.services.store.revoke_token(claims.token_id, expires, Actor("manufacturer", "security"), "lost"))
    deadline = time.monotonic() + 5
    while r.get(UNIT, headers=headers).headers["location"].startswith("https://service.example.com/"):
        assert time.monotonic() < deadline, "a revoked token kept its role on scans"
        time.sleep(0.1)
