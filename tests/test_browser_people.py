"""People's doors in a real browser on a phone-sized screen (Chromium, Playwright, 390×844)
against `serialink serve` with the built-in pages' rules:

- a technician opens the visit's sign-in link, then scans (navigates to) two units of the
  visit, which open their service page, and one outside it, which opens the consumer page;
- an owner who registered on one device signs in on a second one with the code the
  notifier delivered;
- the previous owner, after handing the unit over, is told so on the next scan.

Screenshots go to artifacts/screenshots/ (people-*.png).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx

from resolver import i18n
from resolver.access.tokens import TokenIssuer
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, GTIN, SECRET, SHOTS, api, serve_for_browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}


def outbox(path, kind: str, serial: str, after: int, timeout: float = 5.0) -> dict:
    """The newest message of ``kind`` for ``serial`` the file notifier wrote (its outbox)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        found = [json.loads(line) for line in lines[after:]]
        found = [m for m in found if m["kind"] == kind and m["serial"] == serial]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no {kind} message for {serial}"
        time.sleep(0.05)


def sent_so_far(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_technician_owner_and_previous_owner_on_a_phone(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with serve_for_browser(tmp_path, 4) as server:
        base, serials, notes = server["base"], server["serials"], server["notifications"]
        brand = TokenIssuer(SECRET.encode()).issue("brand:dispatch", "manufacturer", ttl=3600, gtins=[GTIN])
        dialogs: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                # -- a technician: one sign-in link, then plain scans ---------------------------
                visit = api(base, "POST", "/v1/visits", brand, {
                    "units": [{"gtin": GTIN, "serial": s} for s in serials[:2]], "principal": "tech:dee",
                    "reference": "JOB-77", "ttl": 4 * 3600})
                assert visit["sign_in_link"].startswith(base + "/u/signin/")
                tech = browser.new_context(locale="en-GB", **PHONE).new_page()
                tech.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                tech.goto(visit["sign_in_link"])
                assert tech.url == base + "/u/session"
                expect(tech.get_by_test_id("session")).to_contain_text(
                    "Signed in as technician for visit JOB-77 until " + i18n.format_datetime(visit["ends_at"], "en-GB"))
                expect(tech.get_by_test_id("session")).to_contain_text("Sign out")
                tech.screenshot(path=SHOTS / "people-01-technician-signed-in.png", full_page=True)
                for n, serial in enumerate(serials[:2]):
                    tech.goto(f"{base}/01/{GTIN}/21/{serial}")  # what the camera app opens
                    assert tech.url == f"{base}/u/01/{GTIN}/21/{serial}/service"
                    expect(tech.get_by_role("heading", name="Log a service visit")).to_be_visible()
                    expect(tech.get_by_test_id("session")).to_contain_text("visit JOB-77")
                    tech.screenshot(path=SHOTS / f"people-0{2 + n}-technician-in-scope.png", full_page=True)
                tech.goto(f"{base}/01/{GTIN}/21/{serials[2]}")
                assert tech.url == f"{base}/u/01/{GTIN}/21/{serials[2]}"  # outside the visit: the consumer's page
                expect(tech.get_by_role("link", name="Register this product")).to_be_visible()
                expect(tech.get_by_role("link", name="Service record (technicians)")).to_have_count(0)
                tech.screenshot(path=SHOTS / "people-04-technician-out-of-scope.png", full_page=True)
                again = browser.new_context(locale="en-GB", **PHONE).new_page()
                again.goto(visit["sign_in_link"])  # the link works once
                expect(again.get_by_role("heading", level=1)).to_have_text("This sign-in link was already used")

                # -- an owner registered on a laptop signs in on the phone ---------------------
                serial = serials[3]
                before = sent_so_far(notes)
                unit_api = f"{base}/v1/units/01/{GTIN}/21/{serial}"
                pending = httpx.post(unit_api + "/registration", headers={"idempotency-key": "reg-people-1"}, timeout=10,
                                     json={"name": "Vera Owner", "contact": "vera@example.com",
                                           "purchase_date": "2025-04-01"})
                assert pending.status_code == 202, pending.text
                code = outbox(notes, "registration", serial, before)["code"]
                confirmed = httpx.post(unit_api + "/registration/confirm", headers={"idempotency-key": "reg-people-2"},
                                       json={"confirmation": pending.json()["confirmation"], "code": code}, timeout=10)
                assert confirmed.status_code == 201, confirmed.text
                phone = browser.new_context(locale="en-GB", **PHONE)
                owner = phone.new_page()
                owner.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                owner.goto(f"{base}/01/{GTIN}/21/{serial}")
                assert "vera@example.com" not in owner.content()
                owner.get_by_role("link", name="Is this yours? Sign in").click()
                owner.get_by_label("E-mail address or phone number").fill("vera@example.com")
                before = sent_so_far(notes)
                owner.get_by_role("button", name="Send me a code").click()
                expect(owner.get_by_role("heading", level=1)).to_have_text("Check your messages")
                owner.screenshot(path=SHOTS / "people-05-owner-code.png", full_page=True)
                message = outbox(notes, "owner-signin", serial, before)
                assert message["to"] == "vera@example.com"
                owner.get_by_label("Code").fill(message["code"])
                owner.get_by_role("button", name="Sign in").click()
                expect(owner.get_by_test_id("notice")).to_have_text("Signed in: you are the owner of this product.")
                expect(owner.get_by_test_id("owner")).to_contain_text("vera@example.com")
                owner.screenshot(path=SHOTS / "people-06-owner-signed-in.png", full_page=True)
                owner.reload()  # the notice was for that moment only
                expect(owner.get_by_test_id("notice")).to_have_count(0)

                # -- the owner hands it over; the next scan tells them so ----------------------
                owner.get_by_role("button", name="Create a transfer code").click()
                transfer_code = owner.get_by_test_id("transfer-code").inner_text().strip()
                owner.reload()  # Reload after the form: the code is not shown again
                expect(owner.get_by_test_id("transfer-code")).to_have_count(0)
                buyer = browser.new_context(locale="en-GB", **PHONE).new_page()
                buyer.goto(f"{base}/u/01/{GTIN}/21/{serial}/claim")
                buyer.get_by_label("Code").fill(transfer_code)
                buyer.get_by_label("Your name").fill("Wes Next")
                buyer.get_by_label("E-mail address or phone number").fill("wes@example.com")
                buyer.get_by_role("button", name="Take over").click()
                expect(buyer.get_by_test_id("owner")).to_contain_text("Wes Next")
                owner.goto(f"{base}/01/{GTIN}/21/{serial}")
                today = i18n.format_date(datetime.now(UTC).date(), "en-GB")  # as the visitor writes a day
                expect(owner.get_by_test_id("session-notice")).to_have_text(f"You transferred this product on {today}.")
                assert "Wes Next" not in owner.content() and "wes@example.com" not in owner.content()
                owner.screenshot(path=SHOTS / "people-07-previous-owner.png", full_page=True)
            finally:
                browser.close()
        assert dialogs == []
