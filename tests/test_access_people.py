"""Doors for people, over the real ASGI app and store: a technician's visit opened by a
one-time sign-in link, an installer's standing session and "Record installation", an owner
signing in on another device with a code from the notifier, the previous owner after a
transfer, and notices that no URL can forge."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest

from resolver import i18n
from resolver.access import sessions
from tests.test_journeys import GTIN, bearer, key, mint_units, notifications, register, unit_path
from tests.test_pages import visible
from twin.events import Actor

ROOT = "https://id.example.com"
TECH_TARGET = "https://service.example.com/units/"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from tests.resolver_fixtures import running_resolver

    with running_resolver(tmp_path_factory.mktemp("people")) as r:
        yield r


@pytest.fixture
def serials(app):
    return mint_units(app, 4, "LA1", f"people-{time.time_ns()}")


def page(serial: str, suffix: str = "") -> str:
    return f"/u/01/{GTIN}/21/{serial}{suffix}"


def form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*? value="([^"]*)"', html)
    assert match, f"no {name} field"
    return match.group(1)


def brand(app) -> dict[str, str]:
    return app.auth("manufacturer", gtins=[GTIN])


def open_visit(app, units, **body) -> dict:
    r = app.client.post("/v1/visits", headers={**brand(app), **key()},
                        json={"units": [{"gtin": GTIN, "serial": s} for s in units], "principal": "tech:cho", **body})
    assert r.status_code == 201, r.text
    return r.json()


def local(link: str) -> str:
    assert link.startswith(ROOT + "/u/signin/")
    return link[len(ROOT):]


def decode_qr_svg(svg: str) -> list[str]:
    """Draw the SVG's modules (segno writes one path of horizontal runs) and read it with zxing."""
    import numpy as np
    import zxingcpp

    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    size = int(root.get("width")) // 4
    path = root.find("{http://www.w3.org/2000/svg}path").get("d")
    image = np.full((size, size), 255, dtype=np.uint8)
    x = y = 0.0
    for command, args in re.findall(r"([MmHh])([^MmHh]*)", path):
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", args)]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        else:
            image[int(y), int(x):int(x + numbers[0])] = 0
            x += numbers[0]
    return [r.text for r in zxingcpp.read_barcodes(np.kron(image, np.ones((4, 4), dtype=np.uint8)))]


def scan(app, serial: str, **headers) -> str:
    r = app.get(f"/01/{GTIN}/21/{serial}", headers=headers)
    assert r.status_code == 307, r.text
    return r.headers["location"]


# -- technicians -----------------------------------------------------------------------------


def test_a_visit_answers_a_one_time_link_and_the_same_link_as_a_qr_code(app, serials):
    headers = {**brand(app), **key()}
    body = {"units": [{"gtin": GTIN, "serial": serials[0]}], "principal": "tech:cho", "reference": "JOB-1"}
    first = app.client.post("/v1/visits", headers=headers, json=body)
    assert first.status_code == 201 and first.headers["cache-control"] == "no-store"
    visit = first.json()
    assert visit["reference"] == "JOB-1" and visit["units"] == [{"gtin": GTIN, "serial": serials[0]}]
    assert decode_qr_svg(visit["qr_svg"]) == [visit["sign_in_link"]]  # a phone's camera reads the same link
    retry = app.client.post("/v1/visits", headers=headers, json=body)
    assert retry.status_code == 200 and retry.json()["sign_in_link"] == visit["sign_in_link"]
    reused = app.client.post("/v1/visits", headers=headers, json={**body, "reference": "JOB-2"})
    assert reused.status_code == 409


@pytest.mark.parametrize("body, status, field", [
    ({"units": [], "principal": "t"}, 422, "units"),
    ({"units": [{"gtin": "123", "serial": "A"}], "principal": "t"}, 422, "units[0]"),
    ({"units": [{"gtin": "04012345000009", "serial": "A"}], "principal": "t"}, 403, "units[0]"),
    ({"units": [{"gtin": GTIN, "serial": "A"}], "principal": "t", "ends_at": "tomorrow"}, 422, "ends_at"),
    ({"units": [{"gtin": GTIN, "serial": "A"}], "principal": "t", "ends_at": "2020-01-01T00:00:00Z"}, 422, "ends_at"),
    ({"units": [{"gtin": GTIN, "serial": "A"}], "principal": "t", "ttl": 30 * 86400}, 422, "ttl"),
    ({"units": [{"gtin": GTIN, "serial": "A"}], "principal": "t", "colour": "red"}, 422, "colour"),
])
def test_visit_requests_that_cannot_be_granted(app, body, status, field):
    r = app.client.post("/v1/visits", headers={**brand(app), **key()}, json=body)
    assert r.status_code == status and r.json()["error"]["field"] == field


def test_only_a_brand_opens_visits(app, serials):
    body = {"units": [{"gtin": GTIN, "serial": serials[0]}], "principal": "t"}
    assert app.client.post("/v1/visits", headers=key(), json=body).status_code == 401
    tech = app.auth("technician", gtins=[GTIN])
    assert app.client.post("/v1/visits", headers={**tech, **key()}, json=body).status_code == 403
    forged = {"authorization": "Bearer " + app.token("manufacturer", gtins=[GTIN])[:-4] + "AAAA"}
    assert app.client.post("/v1/installer-sessions", headers={**forged, **key()},
                           json={"certification": "C", "company": "X", "gtins": [GTIN]}).status_code == 401


def test_a_technician_signs_in_once_and_camera_scans_route_by_the_visit(app, serials):
    client = app.client
    inside, also, outside = serials[0], serials[1], serials[2]
    consumer_target = scan(app, outside)
    visit = open_visit(app, [inside, also], reference="JOB-42", ttl=3600)
    opened = app.get(local(visit["sign_in_link"]))
    assert opened.status_code == 303 and opened.headers["location"] == "/u/session"
    cookie = opened.headers["set-cookie"]
    assert cookie.startswith("serialink_token=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" in cookie and "Path=/" in cookie
    status = client.get("/u/session")
    until = i18n.format_datetime(visit["ends_at"], "en")  # as the visitor writes a time (Babel)
    bar = re.search(r'data-testid="session">(.*?)</div>', status.text).group(1)
    assert f"Signed in as technician for visit JOB-42 until {until}" in bar and "Sign out" in bar
    assert page(inside) in status.text and page(outside) not in status.text
    cookies = {"cookie": f"serialink_token={client.cookies.get('serialink_token')}"}
    assert scan(app, inside, **cookies).startswith(TECH_TARGET)
    assert scan(app, also, **cookies).startswith(TECH_TARGET)
    assert scan(app, outside, **cookies) == consumer_target
    # the link works once: this device is sent to its session, any other gets a clear page
    assert app.get(local(visit["sign_in_link"])).headers["location"] == "/u/session"
    token = client.cookies.get("serialink_token")
    client.cookies.clear()
    second = app.get(local(visit["sign_in_link"]))
    assert second.status_code == 200 and "This sign-in link was already used" in second.text
    assert "set-cookie" not in second.headers
    forged = app.get(local(visit["sign_in_link"])[:-3] + "xyz")
    assert forged.status_code == 404 and "This sign-in link is not valid" in forged.text
    # signing out revokes the session everywhere: the scan routes as a consumer again
    client.cookies.set("serialink_token", token, domain="id.example.com")
    csrf = form_value(client.get("/u/session").text, "csrf")
    out = client.post("/u/signout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and 'serialink_token=""' in out.headers["set-cookie"]
    app.client.portal.call(app.services.revocations.refresh)
    assert not scan(app, inside, cookie=f"serialink_token={token}").startswith(TECH_TARGET)
    client.cookies.clear()


def test_a_withdrawn_link_and_a_visit_that_has_not_started(app, serials):
    visit = open_visit(app, [serials[0]], ttl=3600)
    revoked = app.client.post(f"/v1/tokens/{visit['session_id']}/revoke", headers={**brand(app), **key()},
                              json={"reason": "job cancelled"})
    assert revoked.status_code == 200
    withdrawn = app.get(local(visit["sign_in_link"]))
    assert withdrawn.status_code == 403 and "This sign-in link was withdrawn" in withdrawn.text
    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    tomorrow = open_visit(app, [serials[1]], starts_at=later.isoformat(), ends_at=(later + timedelta(hours=4)).isoformat())
    assert tomorrow["starts_at"] == later.isoformat().replace("+00:00", "Z")
    opened = app.get(local(tomorrow["sign_in_link"]))
    assert opened.status_code == 303
    token = opened.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert not scan(app, serials[1], cookie=f"serialink_token={token}").startswith(TECH_TARGET)  # not yet
    app.client.cookies.clear()


def test_when_the_visit_has_ended_the_next_scan_is_a_consumers_with_a_notice(app, serials):
    services = app.services
    now = int(time.time())
    record = {"principal": "tech:cho", "role": "technician", "exp": now - 60, "gtins": [GTIN], "prefixes": [],
              "units": [[GTIN, serials[0]]], "ext": {"kind": "visit", "visit": "JOB-9"}}
    ended = sessions.session_token(services.secret, "ended-visit", record, now - 4000)
    consumer = scan(app, serials[0])
    assert scan(app, serials[0], cookie=f"serialink_token={ended}") == consumer
    app.client.cookies.set("serialink_token", ended, domain="id.example.com")
    shown = app.client.get(page(serials[0]))
    assert shown.status_code == 200
    notice = re.search(r'data-testid="session-notice">([^<]+)<', shown.text).group(1)
    assert notice.startswith("Your visit JOB-9 ended at ") and "you now see what anyone sees" in notice
    assert 'serialink_token=""' in shown.headers["set-cookie"]  # said once, then forgotten
    assert "Record installation" not in shown.text and "Service record" not in shown.text
    app.client.cookies.clear()


@pytest.mark.parametrize("credential", ["forged", "expired", "revoked", "out-of-scope", "garbage", "owner-other"])
def test_bad_credentials_on_scans_route_as_consumer_never_an_error(app, serials, credential):
    services = app.services
    good = app.token("technician", gtins=[GTIN])
    token = {
        "forged": good[:-6] + "AAAAAA",
        "expired": services.issuer.issue("t", "technician", gtins=[GTIN], ttl=60, now=int(time.time()) - 3600),
        "revoked": good,
        "out-of-scope": app.token("technician", gtins=["04012345000009"]),
        "garbage": "%%%;=;;" * 50,
        "owner-other": app.token("owner", gtins=[GTIN], unit=(GTIN, "SOMEONEELSE")),
    }[credential]
    if credential == "revoked":
        claims = services.token_verifier.verify(token)
        app.client.portal.call(services.store.revoke_token, claims.token_id, datetime.fromtimestamp(claims.expires, UTC),
                               Actor("manufacturer", "t"), "test")
        app.client.portal.call(services.revocations.refresh)
    consumer = scan(app, serials[0])
    for headers in ({"cookie": f"serialink_token={token}"}, {"authorization": f"Bearer {token}"}):
        assert scan(app, serials[0], **headers) == consumer
    installer_page = app.client.get(page(serials[0], "/install"), headers={"cookie": f"serialink_token={token}",
                                                                            "accept-language": "de"})
    assert installer_page.status_code == 401 and "Melden Sie sich zuerst als Installateur an" in installer_page.text


# -- installers ------------------------------------------------------------------------------


def test_an_installer_records_the_installation_and_the_owner_sees_it(app, serials):
    client = app.client
    serial = serials[0]
    owner = register(app, serial, name="Olga", contact="olga@example.com", purchase_date="2025-03-01")
    r = client.post("/v1/installer-sessions", headers={**app.auth("manufacturer", prefixes=["9506000"]), **key()},
                    json={"certification": "GSR-778899", "company": "Heat & Co", "prefixes": ["9506000"]})
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["company"] == "Heat & Co" and session["scope"] == {"gtins": [], "prefixes": ["9506000"]}
    assert decode_qr_svg(session["qr_svg"]) == [session["sign_in_link"]]
    assert app.get(local(session["sign_in_link"])).status_code == 303
    token = client.cookies.get("serialink_token")
    assert scan(app, serial, cookie=f"serialink_token={token}").startswith(TECH_TARGET)  # routes as installer
    unit = client.get(page(serial))
    assert "Signed in as installer Heat &amp; Co (GSR-778899) until" in unit.text and "Record installation" in unit.text
    form = client.get(page(serial, "/install"))
    assert form.status_code == 200 and 'data-testid="certification">GSR-778899<' in form.text
    fields = {"csrf": form_value(form.text, "csrf"), "idempotency_key": form_value(form.text, "idempotency_key"),
              "expected_version": form_value(form.text, "expected_version")}
    future = (date.today() + timedelta(days=3)).isoformat()
    bad = client.post(page(serial, "/install"), data={**fields, "site": " ", "installed_on": future})
    assert bad.status_code == 422 and "Please enter the site address" in bad.text
    forged = client.post(page(serial, "/install"), data={**fields, "csrf": "x", "site": "1 Main St",
                                                         "installed_on": "2025-06-01"})
    assert forged.status_code == 403
    done = client.post(page(serial, "/install"), follow_redirects=False,
                       data={**fields, "site": "1 Main St\nLeeds", "installed_on": "2025-06-01", "jurisdiction": "GB",
                             "certification": "SOMEONE-ELSES"})
    assert done.status_code == 303 and done.headers["location"] == page(serial)
    after = client.get(done.headers["location"])
    assert re.search(r'data-testid="notice">Installation recorded.<', after.text)
    assert "Installation recorded." not in client.get(page(serial)).text  # once
    client.cookies.clear()
    # the owner's next look: who installed it and when; the warranty counts from installation in GB
    client.cookies.set("serialink_token", owner["token"], domain="id.example.com")
    mine = client.get(page(serial))
    assert "Installed on June 1, 2025 by Heat &amp; Co (certification GSR-778899)." in visible(mine.text)
    view = client.get(unit_path(serial), headers=bearer(owner["token"])).json()
    assert view["installation"] == {"on": "2025-06-01", "by": "Heat & Co", "certification": "GSR-778899"}
    assert view["warranty"]["start"] == "2025-06-01" and view["owner"]["jurisdiction"] == "GB"
    client.cookies.clear()
    anyone = client.get(unit_path(serial)).json()
    assert anyone["installation"] == {"on": "2025-06-01"}  # strangers: when, not who
    other_gtin_installer = client.post("/v1/installer-sessions", headers={**brand(app), **key()},
                                       json={"certification": "C-1", "company": "Elsewhere", "gtins": ["09506000134369"]})
    assert other_gtin_installer.status_code == 403  # outside the brand's own scope


def test_an_installer_outside_its_scope_gets_a_plain_403(app, serials):
    wide = app.auth("manufacturer", prefixes=["9506000"])
    r = app.client.post("/v1/installer-sessions", headers={**wide, **key()},
                        json={"certification": "C-2", "company": "Narrow Ltd", "gtins": ["09506000134369"]})
    assert r.status_code == 201, r.text
    app.get(local(r.json()["sign_in_link"]))
    refused = app.client.get(page(serials[0], "/install"))
    assert refused.status_code == 403 and "Your installer sign-in does not cover this product." in refused.text
    app.client.cookies.clear()


# -- owners ----------------------------------------------------------------------------------


def ask_code(client, serial: str, contact: str):
    form = client.get(page(serial, "/signin"))
    assert form.status_code == 200 and 'id="contact"' in form.text
    return client.post(page(serial, "/signin"), follow_redirects=False,
                       data={"contact": contact, "idempotency_key": form_value(form.text, "idempotency_key")})


def test_an_owner_signs_in_on_another_device_with_a_code(app, serials):
    serial = serials[0]
    register(app, serial, name="Pia", contact="Pia@Example.com")
    client = app.client
    client.cookies.clear()
    unit = client.get(page(serial))
    assert "Is this yours? Sign in" in unit.text and "Pia" not in unit.text
    before = len(notifications(app))
    asked = ask_code(client, serial, "pia@example.com")
    assert asked.status_code == 303 and asked.headers["location"].startswith(page(serial, "/signin/code?p="))
    code_page = client.get(asked.headers["location"])
    deadline = time.monotonic() + 5
    while len(notifications(app)) == before and time.monotonic() < deadline:
        time.sleep(0.02)  # sent off the request path
    message = notifications(app)[-1]
    assert message["kind"] == "owner-signin" and message["to"] == "Pia@Example.com" and message["serial"] == serial
    fields = {"p": form_value(code_page.text, "p"), "idempotency_key": form_value(code_page.text, "idempotency_key")}
    wrong = client.post(page(serial, "/signin/code"), data={**fields, "code": "ZZZZ-ZZZZ"})
    assert wrong.status_code == 422 and "The code does not match" in wrong.text
    done = client.post(page(serial, "/signin/code"), data={**fields, "code": message["code"]}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == page(serial)
    assert "HttpOnly" in done.headers.get_list("set-cookie")[0]
    mine = client.get(page(serial))
    assert "Signed in: you are the owner of this product." in mine.text and "Pia@Example.com" in visible(mine.text)
    replay = client.post(page(serial, "/signin/code"), data={**fields, "idempotency_key": "other", "code": message["code"]})
    assert replay.status_code == 410  # a code works once
    client.cookies.clear()


def test_owner_sign_in_tells_a_stranger_nothing_and_locks(app, serials):
    serial = serials[1]
    register(app, serial, name="Quinn", contact="quinn@example.com")
    client = app.client
    client.cookies.clear()
    before = len(notifications(app))
    stranger = ask_code(client, serial, "guess@example.com")
    owner = ask_code(client, serials[1], "quinn@example.com")
    assert stranger.status_code == owner.status_code == 303
    a, b = client.get(stranger.headers["location"]), client.get(owner.headers["location"])
    strip = lambda html: re.sub(r'value="[^"]*"', "", html)  # noqa: E731 - ids and keys differ, nothing else
    assert strip(a.text) == strip(b.text)
    time.sleep(0.2)
    assert [n["to"] for n in notifications(app)[before:]] == ["quinn@example.com"]  # the guess got nothing
    fields = {"p": form_value(a.text, "p"), "idempotency_key": form_value(a.text, "idempotency_key")}
    statuses = [client.post(page(serial, "/signin/code"), data={**fields, "code": "AAAA-AAA" + str(i)}).status_code
                for i in range(5)]
    assert statuses == [422, 422, 422, 422, 410]  # locked after five wrong tries
    message = notifications(app)[-1]
    real = {"p": form_value(b.text, "p"), "idempotency_key": form_value(b.text, "idempotency_key")}
    assert client.post(page(serial, "/signin/code"), data={**real, "code": message["code"]},
                       follow_redirects=False).status_code == 303
    client.cookies.clear()
    # a flood of code requests for one unit is refused (shared counters, per unit)
    register(app, serials[2], name="Rae", contact="rae@example.com")
    answers = [ask_code(client, serials[2], f"g{i}@example.com").status_code for i in range(6)]
    assert answers[:3] == [303, 303, 303] and answers[-1] == 429


# -- previous owners, /register and notices -------------------------------------------------


def test_the_previous_owner_is_told_about_the_transfer(app, serials):
    serial = serials[0]
    first = register(app, serial, name="Sam", contact="sam@example.com")
    offer = app.client.post(unit_path(serial, "/transfer"), headers={**bearer(first["token"]), **key()})
    claimed = app.client.post(unit_path(serial, "/transfer/claim"), headers=key(),
                              json={"code": offer.json()["code"], "name": "Tia", "contact": "tia@example.com"})
    assert claimed.status_code == 201
    app.client.cookies.set("serialink_token", first["token"], domain="id.example.com")
    old = app.client.get(page(serial))
    today = i18n.format_date(datetime.now(UTC).date(), "en")
    assert re.search(rf'data-testid="session-notice">You transferred this product on {today}.<', old.text)
    assert "Tia" not in old.text and "Create a transfer code" not in old.text
    app.client.cookies.clear()


def test_register_on_a_registered_unit_says_so_before_any_form(app, serials):
    register(app, serials[0], name="Uma", contact="uma@example.com")
    shown = app.client.get(page(serials[0], "/register"), headers={"accept-language": "de"})
    assert shown.status_code == 409 and "Dieses Produkt ist bereits registriert" in shown.text
    assert 'name="contact"' not in shown.text and page(serials[0], "/signin") in shown.text
    refused = app.client.post(page(serials[0], "/register"), data={"name": "X", "contact": "x@example.com"})
    assert refused.status_code == 409 and 'name="contact"' not in refused.text


def test_no_url_and_no_forged_cookie_makes_a_page_claim_anything(app, serials):
    serial = serials[0]
    for notice in ("claimed", "registered", "saved", "signed_in"):
        shown = app.client.get(page(serial) + f"?notice={notice}")
        assert 'data-testid="notice"' not in shown.text
    secret = app.services.secret
    other_unit = sessions.notice_value(secret, "claimed", GTIN, serials[1], "")
    forged = sessions.notice_value(b"not-the-secret" * 3, "claimed", GTIN, serial, "")
    for value in (other_unit, forged, "garbage.value"):
        app.client.cookies.set(sessions.NOTICE_COOKIE, value, domain="id.example.com", path="/u/")
        assert 'data-testid="notice"' not in app.client.get(page(serial)).text
        app.client.cookies.clear()
    # bound to the session: a notice made for someone else's session shows nothing here
    someone = sessions.notice_value(secret, "claimed", GTIN, serial, "their-token-id")
    app.client.cookies.set(sessions.NOTICE_COOKIE, someone, domain="id.example.com", path="/u/")
    assert 'data-testid="notice"' not in app.client.get(page(serial)).text
    app.client.cookies.clear()
