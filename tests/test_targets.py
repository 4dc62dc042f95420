"""Redirect targets never leave the allowed hosts (issue 12, section 2).

Reproduction: with a manufacturer token, ``PUT /v1/links`` with a gs1:pip href
``https://evil.example.net\\@www.example.com/pip`` was accepted (urllib reads host
www.example.com) and the scan answered 307 to it; browsers go to evil.example.net.

Here: a corpus of host-confusion cases, each checked by resolver.rules.targets and by
Chromium's own URL parser (``new URL(x)`` in a page, via Playwright): the validator
accepts exactly the cases the table says, and everything it accepts has, in Chromium, an
https URL whose host is on the allow-list (and the same host the validator saw). Then the
same check on the real app: the upload is refused with 422 problem+json naming the field,
for every corpus case that is refused, in the rules file too; and template values cannot
add segments, climb the path or change the host (``/21/%2E%2E``), property-tested against
the WHATWG parser.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import ada_url
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.rules.compiler import RulesInvalid, Template, compile_rules, default_rules_file
from resolver.rules.targets import check_target
from tests.resolver_fixtures import running_resolver
from twin.events import Actor
from twin.links import Anchor, LinkRecord

ALLOWED = ("example.com", "*.example.com")  # as in config/rules.yaml
GTIN = "09506000134352"
EXAMPLE = default_rules_file().read_text()
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

# (URL, accepted?) — accepted only if a browser would go, over https, to the host written, on the list
CORPUS = [
    ("https://www.example.com/pip", True),
    ("https://example.com/", True),
    ("https://WWW.EXAMPLE.COM/x", True),
    ("HTTPS://www.example.com/x", True),
    ("https://www.example.com:8443/x", True),
    ("https://dpp.example.com/passports/1?x=a#frag", True),
    ("https://www.example.com/a/../b", True),
    ("https://www.example.com/@evil.example.net", True),
    ("https://www.example.com?@evil.example.net", True),
    ("https://www.example.com#@evil.example.net", True),
    ("https://xn--bcher-kva.example.com/", True),
    ("https://www.example.com/path%5Cx", True),
    ("https://evil.example.net\\@www.example.com/pip", False),  # the reproduction
    ("https://evil.example.net\\.www.example.com/", False),
    ("https://www.example.com\\.evil.net/", False),
    ("https://evil.example.net\\\\www.example.com/", False),
    ("https:\\\\evil.example.net/", False),
    ("https://www\u3002example\u3002com/", False),  # ideographic full stops
    ("https://www\uff0eexample\uff0ecom/", False),  # full-width full stops
    ("https://www.example.com\u3002evil.net/", False),
    ("https://www.example.com\uff0eevil.net/", False),
    ("https://www.example.com\uff61evil.net/", False),  # halfwidth ideographic full stop
    ("https://www.example.com%2eevil.net/", False),
    ("https://www.example.com%2Fevil.net/", False),
    ("https://www.ex%61mple.com/", False),
    ("https://www.example.com%00.evil.net/", False),
    ("https://evil.example.net@www.example.com/", False),
    ("https://www.example.com@evil.example.net/", False),
    ("https://www.example.com:443@evil.example.net/", False),
    ("https://@www.example.com/", False),
    ("https://www.example.com.evil.net/", False),
    ("https://evil.example.net/www.example.com", False),
    ("https://evil.example.net#@www.example.com/", False),
    ("https://evil.example.net?.example.com", False),
    ("https://example.com.evil.net", False),
    ("https://evilexample.com/", False),
    ("https://www.example.com./", False),
    ("//www.example.com/", False),
    ("http://www.example.com/", False),
    ("javascript:alert(1)//www.example.com", False),
    ("data:text/html,<script>alert(1)</script>", False),
    ("https:/www.example.com/", False),
    ("https:///www.example.com/", False),
    (" https://www.example.com/", False),
    ("https://www.example.com/\n", False),
    ("https://www.exa\tmple.com/", False),
    ("https://www.example.com\u202e.evil/", False),  # right-to-left override
    ("https://www.example.com\uff0fevil.net", False),  # full-width solidus
    ("https://127.1/", False),
    ("https://0x7f.0.0.1/", False),
    ("https://[::1]/", False),
    ("https://www.\u00e9xample.com/", False),
    ("https://\u24d4\u24e7\u24d0\u24dc\u24df\u24db\u24d4.com/", False),  # circled letters: IDNA maps them to example
    ("https://www.example.com:0x1bb/", False),
    ("https://www.example.com/ x", False),
    ("ftp://www.example.com/", False),
]


def chromium_hosts(urls: list[str]) -> list[dict]:
    """``new URL(x)`` in Chromium for each URL: protocol and hostname, or an error."""
    from playwright.sync_api import sync_playwright

    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.fail("Chromium is required: apt-get install -y chromium", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            return page.evaluate("""urls => urls.map(x => {
                try { const u = new URL(x); return {ok: true, protocol: u.protocol, hostname: u.hostname}; }
                catch (e) { return {ok: false}; } })""", urls)
        finally:
            browser.close()


def on_list(host: str) -> bool:
    return host == "example.com" or host.endswith(".example.com")


def test_the_corpus_is_big_enough_and_balanced():
    assert len(CORPUS) >= 40 and len({u for u, _ in CORPUS}) == len(CORPUS)
    assert sum(ok for _, ok in CORPUS) >= 10 and sum(not ok for _, ok in CORPUS) >= 30


@pytest.mark.parametrize("url, accepted", CORPUS)
def test_the_validator_accepts_exactly_the_safe_cases(url, accepted):
    why = check_target(url, ALLOWED)
    assert (why is None) == accepted, why


def test_what_the_validator_accepts_chromium_sends_to_an_allowed_host():
    urls = [u for u, _ in CORPUS]
    seen = chromium_hosts(urls)
    for url, browser in zip(urls, seen):
        accepted = check_target(url, ALLOWED) is None
        if accepted:
            assert browser["ok"] and browser["protocol"] == "https:" and on_list(browser["hostname"]), (url, browser)
            assert browser["hostname"] == ada_url.URL(url).hostname, (url, browser)
        if not (browser["ok"] and browser["protocol"] == "https:" and on_list(browser["hostname"])):
            assert not accepted, (url, browser)
        if browser["ok"]:  # the parser the validator uses reads hosts as Chromium does
            assert ada_url.URL(url).hostname == browser["hostname"], (url, browser)
    # the reproduction really is a trap: Chromium goes to evil.example.net
    assert seen[urls.index("https://evil.example.net\\@www.example.com/pip")]["hostname"] == "evil.example.net"


# -- the same check everywhere: uploads and the rules file ------------------------------------------

REFUSED = [u for u, ok in CORPUS if not ok and "\n" not in u]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_resolver(tmp_path_factory.mktemp("targets")) as r:
        yield r


def put_link(app, href: str, anchor: str = f"https://id.example.com/01/{GTIN}"):
    body = {"linksets": [{"anchor": anchor, "links": [{"type": "gs1:pip", "href": href, "title": "Product"}]}]}
    return app.client.put("/v1/links", json=body, headers=app.auth("manufacturer", gtins=[GTIN]))


def test_reproduction_backslash_at_upload_is_refused_and_never_redirected_to(app):
    r = put_link(app, "https://evil.example.net\\@www.example.com/pip")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "linksets[0].links[0].href", r.json()
    scan = app.get(f"/01/{GTIN}")
    assert scan.status_code == 307 and on_list(ada_url.URL(scan.headers["location"]).hostname), scan.headers


@pytest.mark.parametrize("href", REFUSED)
def test_every_refused_target_is_refused_at_upload_with_the_field(app, href):
    r = put_link(app, href)
    assert r.status_code == 422 and r.json()["field"] == "linksets[0].links[0].href", r.text


def test_every_refused_target_is_refused_in_the_rules_file_at_its_line():
    line = '      - {type: gs1:sustainabilityInfo, href: "https://www.example.com/recycling/x100",'
    assert line in EXAMPLE
    for href in REFUSED:
        quoted = href.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
        text = EXAMPLE.replace(line, f'      - {{type: gs1:sustainabilityInfo, href: "{quoted}",', 1)
        with pytest.raises(RulesInvalid) as refused:
            compile_rules(text, "rules.yaml")
        lineno = next(i for i, l in enumerate(text.splitlines(), 1) if l.startswith("      - {type: gs1:sustainabilityInfo"))
        where = f"rules.yaml:{lineno}:"
        assert any(str(p).startswith(where) for p in refused.value.problems), (href, refused.value.problems)


def test_links_stored_before_the_check_never_redirect_off_the_list(app):
    """Link data written before this check (straight into the store) is filtered per scan."""
    evil = LinkRecord("gs1:pip", "https://evil.example.net\\@www.example.com/pip", "Product")
    app.client.portal.call(app.services.store.put_links, Anchor(GTIN), [evil], Actor("manufacturer", "test"))
    app.services.lookup.invalidate(GTIN, "links", "")
    try:
        scan = app.get(f"/01/{GTIN}")
        assert scan.status_code == 307 and scan.headers["location"] == "https://www.example.com/boilers/x100"
        linkset = app.get(f"/01/{GTIN}", headers={"accept": "application/linkset+json"}).text
        assert "evil.example.net" not in linkset
    finally:
        app.client.portal.call(app.services.store.put_links, Anchor(GTIN), [], Actor("manufacturer", "test"))
        app.services.lookup.invalidate(GTIN, "links", "")


# -- template values: encoded so they cannot add segments, climb or change the host ---------------------------

def test_reproduction_dot_dot_serial_does_not_climb(app):
    """``/21/%2E%2E`` scans as serial ``..``: rendered into /verify/{gtin}/{serial} a browser
    would climb to /verify/. The link does not render; the scan falls back, never up."""
    for path in (f"/01/{GTIN}/21/%2E%2E", f"/01/{GTIN}/21/%2e", f"/01/{GTIN}/21/%2E%2E?linkType=gs1:registerProduct"):
        r = app.get(path)
        if r.status_code == 307:
            location = r.headers["location"]
            assert "/.." not in location and not location.rstrip("/").endswith("/."), location
            assert ada_url.URL(location).href == location, location  # nothing a browser would rewrite
        else:
            assert r.status_code in (300, 404), r.status_code


TEMPLATES = [
    "https://www.example.com/register/{gtin}/{serial}",
    "https://www.example.com/recalls/{gtin}?serial={serial}",
    "https://www.example.com/l/{lot}/s/{serial}#{serial}",
    "https://www.example.com/x.{serial}/{lot}y",
    "https://www.example.com/{serial}{lot}/z",
    "https://www.example.com/%2e{serial}/",
]
values = st.one_of(st.sampled_from(["", ".", "..", "%2E", "%2e%2E", "/", "\\", "?", "#", "@evil.net", "a/../b",
                                    "..%2F..", "\u3002", "\uff0e", "%", "x"]), st.text(max_size=12))


@settings(max_examples=300, deadline=None)
@given(template=st.sampled_from(TEMPLATES), serial=values, lot=values)
def test_template_values_cannot_change_the_host_add_segments_or_climb(template, serial, lot):
    href = Template(template)
    rendered = href.render({"01": GTIN, "21": serial, "10": lot})
    neutral_text = href.render({"01": GTIN, "21": "s", "10": "l"})
    neutral = ada_url.URL(neutral_text)
    if rendered is None:  # only a dot segment may stop a template from rendering
        assert {serial, lot} & {"", ".", ".."}, (serial, lot)
        return
    url = ada_url.URL(rendered)
    assert url.hostname == neutral.hostname
    assert url.pathname.count("/") == neutral.pathname.count("/"), rendered
    assert url.href == rendered, rendered  # the browser rewrites nothing: no dot segment was resolved
    assert [rendered.count(c) for c in "?#&="] == [neutral_text.count(c) for c in "?#&="], rendered
    assert href.fits({"01": GTIN, "21": serial, "10": lot})


def test_template_variables_cannot_sit_in_the_host():
    for template in ("https://{serial}.example.com/", "https://www.example.com{serial}/", "https://www.example.com:{lot}/",
                     "{serial}"):
        with pytest.raises(ValueError, match="after the host"):
            Template(template)
