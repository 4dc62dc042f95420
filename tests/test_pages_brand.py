"""The pages under a brand's name, over the real ASGI app (and a real SQLite store):

- the message catalogues are complete: every language has every key, the same
  placeholders, every CLDR plural category its language needs, a text for every event type;
- the brand theme: the example passes its schema, a bad file is refused with file:line:column
  and the last good theme keeps serving, a changed file is served without a restart;
- the moments of a unit's life, chosen from its record (pure function, dates given);
- German pages never show the API's English error messages (each error is asked of the API
  too, and its problem+json text must not appear on the page);
- scan errors: a styled page in the visitor's language for browsers, problem+json for API
  clients; a favicon; theme pictures served by name only.
"""

from __future__ import annotations

import re
import string
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from resolver import i18n
from resolver.pages import life
from resolver.pages.brand import BrandHolder, BrandInvalid, load_brand, parse_brand
from tests.test_journeys import GTIN, mint_units, register
from twin.events import EVENT_TYPES
from twin.lifecycle import State
from twin.unit import Unit
from twin.warranty import Coverage

CONFIG = Path(__file__).resolve().parents[1] / "config"


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


# -- catalogues -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", [lang for lang in i18n.available() if lang != i18n.DEFAULT])
def test_every_catalogue_has_every_text_with_the_same_placeholders(language):
    english, other = i18n.catalogue(i18n.DEFAULT), i18n.catalogue(language)
    assert sorted(set(english) - set(other)) == [], f"{language} misses these texts"
    assert sorted(set(other) - set(english)) == [], f"{language} has texts English lacks"
    for key, text in english.items():
        theirs = other[key]
        assert isinstance(theirs, type(text)), key
        if isinstance(text, dict):  # a plural: every CLDR category of the language, same placeholders
            assert set(theirs) >= i18n.plural_categories(language), (key, sorted(theirs))
            assert {p for form in theirs.values() for p in placeholders(form)} == \
                {p for form in text.values() for p in placeholders(form)}, key
        else:
            assert placeholders(theirs) == placeholders(text), key


def test_plurals_event_names_and_dates_come_from_the_catalogue():
    for language in i18n.available():
        texts = i18n.catalogue(language)
        assert all(f"event_{kind}" in texts for kind in EVENT_TYPES), language
        for key, forms in texts.items():
            if isinstance(forms, dict):
                assert set(forms) >= i18n.plural_categories(language), (language, key)
        assert "(s)" not in " ".join(v for v in texts.values() if isinstance(v, str)), language
    assert i18n.plural("en", "service_summary", 1, date="x") == "1 service visit, the last on x."
    assert i18n.plural("en", "service_summary", 1200, "en", date="x") == "1,200 service visits, the last on x."
    assert i18n.plural("de", "service_summary", 1200, "de", date="x") == "1.200 Wartungsbesuche, zuletzt am x."
    assert i18n.format_date("2026-03-01", "de") == "1. März 2026"
    assert i18n.locale_for("en", ("en-us", "de")) == "en-us" and i18n.locale_for("de", ("fr",)) == "de"


# -- the theme ---------------------------------------------------------------------------------


def test_the_example_theme_passes_and_a_bad_one_is_refused_where_it_is_wrong(tmp_path):
    brand = load_brand(CONFIG / "brand.yaml")
    assert brand.name == "Example Heating" and brand.product(GTIN).model["de"] == "X100 Brennwertkessel"
    assert brand.asset_file("x100.svg") is not None and brand.asset_file("../brand.yaml") is None
    bad = ("version: 1\nbrand:\n  name: Acme\n  colours:\n    primary: '#eeeeee'\n"
           "  support: {email: not-an-address}\nproducts:\n  - {gtin: '123'}\n")
    with pytest.raises(BrandInvalid) as refused:
        parse_brand(bad, "bad.yaml")
    text = "\n".join(str(p) for p in refused.value.problems)
    assert "bad.yaml:6:" in text and "brand.support.email" in text
    assert "bad.yaml:8:" in text and "products.0.gtin" in text
    low = "version: 1\nbrand:\n  name: Acme\n  colours:\n    primary: '#8fb3de'\n"
    with pytest.raises(BrandInvalid) as faint:
        parse_brand(low, "low.yaml")
    assert "low.yaml:5:14" in str(faint.value) and "4.5:1" in str(faint.value)  # buttons must be readable


def test_a_changed_theme_is_served_without_a_restart_and_a_broken_one_is_not(tmp_path):
    path = tmp_path / "brand.yaml"
    path.write_text("version: 1\nbrand: {name: First}\n")
    holder = BrandHolder(path, interval=0)
    assert holder.current.name == "First"
    time.sleep(0.01)
    path.write_text("version: 1\nbrand: {name: Second Brand}\n")
    assert holder.current.name == "Second Brand" and holder.stale is None
    path.write_text("version: 1\nbrand: {name: ''}\n# now broken\n")
    assert holder.current.name == "Second Brand" and "brand.name" in holder.stale


# -- moments -----------------------------------------------------------------------------------


MOMENTS = {"unboxing": {"days": 30}, "warranty": {"ending_soon_days": 60},
           "maintenance": [{"task": "service", "every_days": 365, "notice_days": 30},
                           {"task": "filter", "every_days": 730}]}
TODAY = date(2026, 3, 1)


def coverage(start: date | None, end: date | None, covered: bool) -> Coverage:
    return Coverage(covered, TODAY, start, end, "EU", ())


@pytest.mark.parametrize("unit, recalled, cover, lead, tasks, warranty", [
    (Unit(GTIN, "a", State.SOLD), False, None, "register", [], "unknown"),
    (Unit(GTIN, "b", State.REGISTERED, 2, owner="o", purchase_date=TODAY - timedelta(days=3),
          registered_on=TODAY), False, coverage(TODAY, TODAY + timedelta(days=700), True), "unboxing", [], "active"),
    (Unit(GTIN, "c", State.REGISTERED, 2, owner="o", purchase_date=TODAY - timedelta(days=350),
          registered_on=TODAY), False, coverage(TODAY, TODAY + timedelta(days=40), True), "maintenance",
     ["service"], "ending"),
    (Unit(GTIN, "d", State.IN_SERVICE, 5, owner="o", purchase_date=TODAY - timedelta(days=800),
          last_service_on=TODAY - timedelta(days=10)), False, coverage(TODAY, TODAY + timedelta(days=40), True),
     "warranty_ending", [], "ending"),
    (Unit(GTIN, "e", State.IN_SERVICE, 5, owner="o", installed_on=TODAY - timedelta(days=740)), False,
     coverage(TODAY - timedelta(days=740), TODAY - timedelta(days=10), False), "maintenance",
     ["service", "filter"], "expired"),
    (Unit(GTIN, "f", State.REGISTERED, 2, owner="o", purchase_date=TODAY - timedelta(days=400)), True, None,
     "recall", [], "unknown"),
    (Unit(GTIN, "g", State.END_OF_LIFE, 9, owner="o"), False, None, "end_of_life", [], "unknown"),
])
def test_the_moment_a_unit_is_in(unit, recalled, cover, lead, tasks, warranty):
    found = life.life_of(unit, True, recalled, cover, MOMENTS, TODAY)
    assert found.lead == lead and [t["task"] for t in found.maintenance] == tasks and found.warranty == warranty
    if recalled or unit.state in life.ENDED:  # nothing invites registering or handing over
        assert not found.registrable and not found.transferable


# -- pages over the app ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from tests.resolver_fixtures import running_resolver

    with running_resolver(tmp_path_factory.mktemp("brand-pages")) as r:
        yield r


def visible(html: str) -> str:
    body = html.split("<body>", 1)[-1]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def api_message(response) -> str:
    problem = response.json()
    return problem.get("detail") or problem["title"]


DE = {"accept-language": "de-DE,de;q=0.9"}


def test_german_pages_never_show_the_apis_english_errors(app):
    serial, registered = mint_units(app, 2, "LG1", f"de-errors-{time.time_ns()}")
    register(app, registered, name="Ute", contact="ute@example.com")
    unit = f"/u/01/{GTIN}/21/{serial}"
    api = f"/v1/units/01/{GTIN}/21/{serial}"
    cases = [  # (the page's form, its fields, the same request to the API)
        (unit + "/register", {"name": "", "contact": "nope", "purchase_date": "2999-01-01"},
         (api + "/registration", {"name": "", "contact": "nope", "purchase_date": "2999-01-01"})),
        (unit + "/register", {"name": "Ida", "contact": "nope", "purchase_date": "2025-01-01"},
         (api + "/registration", {"name": "Ida", "contact": "nope", "purchase_date": "2025-01-01"})),
        (unit + "/register", {"name": "Ida", "contact": "ida@example.com", "purchase_date": "01.02.2025"},
         (api + "/registration", {"name": "Ida", "contact": "ida@example.com", "purchase_date": "01.02.2025"})),
        (unit + "/confirm", {"p": "abcdefghijklmnop", "code": "AAAA-BBBB"},
         (api + "/registration/confirm", {"confirmation": "abcdefghijklmnop", "code": "AAAA-BBBB"})),
        (f"/u/01/{GTIN}/21/{registered}/claim", {"code": "0000-0000-0000-0000", "name": "N", "contact": "n@ex.com"},
         (f"/v1/units/01/{GTIN}/21/{registered}/transfer/claim",
          {"code": "0000-0000-0000-0000", "name": "N", "contact": "n@ex.com"})),
    ]
    for path, fields, (api_path, body) in cases:
        page = app.client.post(path, data={**fields, "idempotency_key": f"k-{time.time_ns()}"}, headers=DE)
        answer = app.client.post(api_path, json=body, headers={"idempotency-key": f"a-{time.time_ns()}"})
        assert page.status_code >= 400 and answer.status_code >= 400, (path, page.status_code, answer.text)
        shown = visible(page.text)
        assert page.headers["content-language"] == "de" and 'role="alert"' in page.text, path
        assert api_message(answer) not in shown, (path, api_message(answer))
        reason = answer.json().get("error", {}).get("reason")
        assert not reason or reason not in shown, (path, reason)
    everything = app.client.post(unit + "/register", data={"name": "", "contact": "", "purchase_date": ""},
                                 headers=DE)
    assert everything.status_code == 422
    errors = re.findall(r'<span class="error" id="(\w+)-error">', everything.text)
    assert errors == ["name", "contact", "purchase_date"]  # all at once, each next to its field
    assert "3 Angaben brauchen Ihre Aufmerksamkeit" in everything.text
    for status_page in (f"/u/01/{GTIN}/21/{serial}/transfer", "/u/01/123/21/x"):
        refused = app.client.post(status_page, data={"action": "offer"}, headers=DE) \
            if status_page.endswith("/transfer") else app.client.get(status_page, headers=DE)
        assert refused.status_code in (400, 403, 404) and refused.headers["content-language"] == "de"
        assert "only the owner" not in refused.text and "not a GTIN" not in refused.text


@pytest.mark.parametrize("path, status, code", [
    (f"/01/{GTIN[:-1]}3/21/ABC", 400, "INCORRECT_CHECK_DIGIT"),
    ("/01/04012345000009", 404, None),  # a valid GTIN nobody publishes here
])
def test_scan_errors_are_a_page_in_the_visitors_language_and_problem_json_for_clients(app, path, status, code):
    browser = app.client.get(path, headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8", **DE})
    assert browser.status_code == status and browser.headers["content-type"].startswith("text/html")
    assert browser.headers["content-language"] == "de" and "default-src 'none'" in \
        browser.headers["content-security-policy"]
    texts = i18n.texts("de")
    assert texts[f"scan_{status}_title"] in browser.text
    assert texts[f"scan_{code}" if code else f"scan_{status}"] in browser.text
    assert 'name="viewport"' in browser.text and 'rel="icon"' in browser.text
    client = app.client.get(path, headers={"accept": "application/json", **DE})
    assert client.status_code == status and client.headers["content-type"] == "application/problem+json"
    if code:
        assert client.json()["code"] == code


def test_favicon_and_theme_pictures(app):
    icon = app.client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    picture = app.client.get("/u/assets/x100.svg")
    assert picture.status_code == 200 and "max-age" in picture.headers["cache-control"]
    for name in ("brand.yaml", "..%2Fbrand.yaml", "rules.yaml"):
        assert app.client.get(f"/u/assets/{name}").status_code in (400, 404)  # only the theme's own pictures


def test_the_product_page_shows_a_lot_recall(app):
    mint_units(app, 1, "LR9", f"lot-recall-{time.time_ns()}")
    r = app.client.post("/v1/recalls", json={"gtin": GTIN, "lot": "LR9", "reason": "Valve may stick"},
                        headers={**app.auth("manufacturer", gtins=[GTIN]), "idempotency-key": f"r-{time.time_ns()}"})
    assert r.status_code == 201, r.text
    page = app.client.get(f"/u/01/{GTIN}", headers=DE)
    assert 'data-testid="recall-banner"' in page.text and "Los LR9" in visible(page.text)
    assert "Valve may stick" in page.text  # no campaign for this lot: the brand's words as recorded
