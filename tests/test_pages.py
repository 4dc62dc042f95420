"""The built-in pages over the real ASGI app: what consumers, owners and technicians see,
in their language, with clear errors, and never anyone else's personal data or markup."""

from __future__ import annotations

import re
import time

import pytest

from tests.test_journeys import GTIN, bearer, issue, key, mint_units, notifications, register

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from tests.resolver_fixtures import running_resolver

    with running_resolver(tmp_path_factory.mktemp("pages")) as r:
        yield r


@pytest.fixture
def serial(app):
    return mint_units(app, 1, "LP1", f"pages-{time.time_ns()}")[0]


def page(serial: str, suffix: str = "") -> str:
    return f"/u/01/{GTIN}/21/{serial}{suffix}"


def form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*? value="([^"]*)"', html)
    assert match, f"no {name} field"
    return match.group(1)


def visible(html: str) -> str:
    """The page's text without tags (an e-mail address is split where it may wrap)."""
    return re.sub(r"<[^>]+>", "", html)


def no_markup_injected(html: str) -> None:
    assert "<script>" not in html and "<img src=x" not in html and "onerror=alert" not in html.replace(
        "onerror=alert(1)&gt;", "")


def test_the_unit_page_a_consumer_lands_on(app, serial):
    r = app.client.get(page(serial))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="en">' in html and '<h1 id="model-title">X100 condensing boiler</h1>' in html  # the theme's
    assert f'href="/u/01/{GTIN}/21/{serial}/register"' in html and "Register this product" in html
    assert "The warranty starts on the purchase date" in html
    assert 'href="https://www.example.com/boilers/x100/installation"' in html  # manuals
    assert 'name="viewport"' in html and "<style>" in html and "<script" not in html
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    assert len(r.content) < 24_000  # one small request on a phone (styles inline, the picture cached)


@pytest.mark.parametrize("accept, lang, text", [
    ("de-DE,de;q=0.9", "de", "Produkt registrieren"),
    ("fr;q=1, de-CH;q=0.9, en;q=0.1", "de", "Garantie"),
    ("es", "en", "Register this product"),
    ("en-GB", "en", "Warranty"),
])
def test_language_follows_accept_language_like_the_resolver(app, serial, accept, lang, text):
    r = app.client.get(page(serial), headers={"accept-language": accept})
    assert r.headers["content-language"] == lang and f'<html lang="{lang}">' in r.text and text in r.text


def test_registration_through_the_forms_with_clear_errors(app, serial):
    client = app.client
    form = client.get(page(serial, "/register"))
    assert form.status_code == 200
    for field in ("name", "contact", "purchase_date"):
        assert f'<label for="{field}">' in form.text and f'id="{field}"' in form.text
    k = form_value(form.text, "idempotency_key")
    bad = client.post(page(serial, "/register"), data={"name": HOSTILE, "contact": "not a contact",
                                                       "purchase_date": "2999-01-01", "idempotency_key": k})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    assert "Please enter an e-mail address or a phone number." in bad.text
    assert 'aria-invalid="true"' in bad.text and 'href="#contact"' in bad.text
    no_markup_injected(bad.text)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in bad.text  # kept, as text
    sent = client.post(page(serial, "/register"), follow_redirects=False, data={"name": HOSTILE, "contact": "dora@example.com",
                                                        "purchase_date": "2025-02-03", "idempotency_key": k})
    assert sent.status_code == 303 and sent.headers["location"].startswith(page(serial, "/confirm?p="))  # PRG
    sent = client.get(sent.headers["location"])  # Reload shows the page again, sends nothing again
    assert sent.status_code == 200 and "d***@example.com" in visible(sent.text)
    message = notifications(app)[-1]
    link = message["link"][len("https://id.example.com"):]
    shown = client.get(link)
    assert shown.status_code == 200 and form_value(shown.text, "code") == message["code"]
    wrong = client.post(page(serial, "/confirm"), data={"p": form_value(shown.text, "p"), "code": "ZZZZ-ZZZZ",
                                                        "idempotency_key": form_value(shown.text, "idempotency_key")})
    assert wrong.status_code == 422 and "The code does not match" in wrong.text
    done = client.post(page(serial, "/confirm"), follow_redirects=False,
                       data={"p": form_value(shown.text, "p"), "code": message["code"],
                             "idempotency_key": form_value(shown.text, "idempotency_key")})
    assert done.status_code == 303 and done.headers["location"] == page(serial)  # the notice travels signed
    cookie = done.headers.get_list("set-cookie")[0]
    assert "serialink_token=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    mine = client.get(done.headers["location"])
    assert "Registered to you" in mine.text and "dora@example.com" in visible(mine.text)
    assert "Registered to you" not in client.get(page(serial)).text  # shown once
    no_markup_injected(mine.text)
    client.cookies.clear()
    public = client.get(page(serial))
    assert "dora@example.com" not in public.text and "script" not in public.text and "Registered" in public.text
    for suffix in ("/register", "/claim", "/service"):
        other = client.get(page(serial, suffix))
        assert "dora@example.com" not in other.text and "alert" not in other.text


def test_transfer_and_claim_through_the_pages(app, serial):
    client = app.client
    owner = register(app, serial, name="Erin", contact="erin@example.com")
    client.cookies.set("serialink_token", owner["token"], domain="id.example.com")
    mine = client.get(page(serial))
    assert "Create a transfer code" in mine.text
    forged = client.post(page(serial, "/transfer"), data={"action": "offer", "csrf": "nope",
                                                          "idempotency_key": "k1"})
    assert forged.status_code == 403
    offer = client.post(page(serial, "/transfer"), follow_redirects=False, data={
        "action": "offer", "csrf": form_value(mine.text, "csrf"), "expected_version": form_value(mine.text, "expected_version"),
        "idempotency_key": form_value(mine.text, "idempotency_key")})
    assert offer.status_code == 303 and offer.headers["location"] == page(serial, "/transfer")  # PRG
    shown = client.get(offer.headers["location"])
    code = re.search(r'data-testid="transfer-code">([^<]+)<', shown.text).group(1)
    again = client.get(page(serial, "/transfer"), follow_redirects=False)  # Reload: the code is not shown again
    assert again.status_code == 303 and again.headers["location"] == page(serial)
    client.cookies.clear()
    claim_form = client.get(page(serial, "/claim"))
    assert "Take over" in claim_form.text and "Erin" not in claim_form.text
    wrong = client.post(page(serial, "/claim"), data={"code": "0000-0000-0000-0000", "name": "Finn",
                                                      "contact": "finn@example.com",
                                                      "idempotency_key": form_value(claim_form.text, "idempotency_key")})
    assert wrong.status_code == 422 and "This transfer code does not match" in wrong.text  # handed over in person
    taken = client.post(page(serial, "/claim"), follow_redirects=False,
                        data={"code": code.lower(), "name": "Finn", "contact": "finn@example.com",
                              "idempotency_key": form_value(claim_form.text, "idempotency_key") + "x"})
    assert taken.status_code == 303
    theirs = client.get(taken.headers["location"])
    assert "Finn" in theirs.text and "Erin" not in theirs.text and "erin@example.com" not in theirs.text
    client.cookies.set("serialink_token", owner["token"], domain="id.example.com")
    old = client.get(page(serial))  # the previous owner's cookie: what anyone sees
    assert "Finn" not in old.text and "Create a transfer code" not in old.text
    client.cookies.clear()


def test_the_technician_page(app, serial):
    client = app.client
    register(app, serial, name="Gus", contact="gus@example.com")
    gate = client.get(page(serial, "/service"))
    assert gate.status_code == 200 and 'type="password"' in gate.text
    refused = client.post(page(serial, "/service"), data={"action": "login", "token": "nonsense"})
    assert refused.status_code == 401 and "This token is not valid for this product." in refused.text
    other_unit = issue(app, {"role": "technician", "principal": "tech:hal", "ttl": 3600,
                             "unit": {"gtin": GTIN, "serial": "SOMEOTHER"}})
    assert client.post(page(serial, "/service"), data={"action": "login", "token": other_unit["token"]}).status_code == 401
    visit = issue(app, {"role": "technician", "principal": "tech:hal", "ttl": 3600,
                        "unit": {"gtin": GTIN, "serial": serial}})
    login = client.post(page(serial, "/service"), data={"action": "login", "token": visit["token"]},
                        follow_redirects=False)
    assert login.status_code == 303 and "HttpOnly" in login.headers["set-cookie"]
    record = client.get(page(serial, "/service"))
    assert "Log a service visit" in record.text and "Gus" not in record.text and "gus@example.com" not in record.text
    empty = client.post(page(serial, "/service"), data={
        "action": "log", "csrf": form_value(record.text, "csrf"), "summary": " ",
        "idempotency_key": form_value(record.text, "idempotency_key"),
        "expected_version": form_value(record.text, "expected_version")})
    assert empty.status_code == 422 and "Please describe what was done." in empty.text
    saved = client.post(page(serial, "/service"), follow_redirects=False, data={
        "action": "log", "csrf": form_value(record.text, "csrf"), "summary": f"Pump replaced {HOSTILE}",
        "parts": "PUMP-7\r\nGASKET-2", "fault_codes": "F28", "ticket": "T-9", "firmware": "3.0.0",
        "idempotency_key": form_value(record.text, "idempotency_key"),
        "expected_version": form_value(record.text, "expected_version")})
    assert saved.status_code == 303
    after = client.get(saved.headers["location"])
    assert "Saved." in after.text and "PUMP-7, GASKET-2" in after.text and "3.0.0" in after.text
    no_markup_injected(after.text)
    stale = client.post(page(serial, "/service"), data={
        "action": "log", "csrf": form_value(record.text, "csrf"), "summary": "again",
        "idempotency_key": "another-key", "expected_version": form_value(record.text, "expected_version")})
    assert stale.status_code == 409 and "The record changed since you opened this page" in stale.text
    client.cookies.clear()


def test_recall_banner_and_unknown_serials(app, serial):
    recall = app.client.post("/v1/recalls", headers={**app.auth("manufacturer", gtins=[GTIN]), **key()},
                             json={"gtin": GTIN, "serial": serial, "reason": f"Seal may leak {HOSTILE}"})
    assert recall.status_code == 201
    shown = app.client.get(page(serial), headers={"accept-language": "de"})
    assert 'data-testid="recall-banner"' in shown.text and "Sicherheitsrückruf" in shown.text
    assert "Seal may leak" in shown.text
    no_markup_injected(shown.text)
    unknown = app.client.get(page("NEVERISSUED1"))
    assert unknown.status_code == 404 and "Serial number not found" in unknown.text
    product = app.client.get(f"/u/01/{GTIN}")
    assert product.status_code == 200 and "X100 condensing boiler" in product.text
    assert "installation" in product.text and "/21/" not in product.text  # the product's own links only


def test_forms_refuse_what_they_cannot_read(app, serial):
    big = app.client.post(page(serial, "/register"), data={"name": "x" * 70_000, "contact": "a@b.cd"})
    assert big.status_code == 413
    json_body = app.client.post(page(serial, "/register"), json={"name": "x"})
    assert json_body.status_code == 415
    assert app.client.get(f"/u/01/{GTIN[:-1]}3/21/{serial}").status_code == 400
    assert notifications(app) == [] or all(n["serial"] != serial for n in notifications(app))


def test_owner_api_token_works_as_a_page_cookie(app, serial):
    owner = register(app, serial, name="Ida", contact="ida@example.com")
    mine = app.client.get(page(serial), headers=bearer(owner["token"]))
    assert "ida@example.com" in visible(mine.text)
