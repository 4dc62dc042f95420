"""The built-in pages in a real browser: Debian's Chromium, headless, driven by Playwright,
against `serialink serve` on loopback with the example rules for a manufacturer without
its own site (config/examples/rules-builtin-pages.yaml).

One journey on a phone-sized screen: scan a freshly minted unit and land on its page,
register it (the code comes from the file notifier), hand it over to a new owner who
claims it in German, log a service visit as a technician with a per-visit token, and see
the recall banner after the brand recalls the lot. No script dialog may ever open (names
carry markup). Screenshots go to artifacts/screenshots/.

Chromium must be installed (`apt-get install chromium`): without it this test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from resolver.access.tokens import TokenIssuer
from tests.redis_fixtures import free_port

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GTIN = "09506000134352"
SECRET = "browser-test-" + "s" * 40
HOSTILE_NAME = 'Ana <script>alert("owned")</script><img src=x onerror=alert(2)>'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_for_browser(tmp_path_factory.mktemp("browser"), 3) as running:
        yield running


@contextlib.contextmanager
def serve_for_browser(tmp: Path, count: int):
    """`serialink serve` on loopback with the built-in pages' rules and ``count`` minted units."""
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.fail("Chromium is required for the browser test: apt-get install -y chromium", pytrace=False)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rules = tmp / "rules.yaml"
    example = (REPO / "config" / "examples" / "rules-builtin-pages.yaml").read_text()
    rules.write_text(example.replace("http://127.0.0.1:8080", base))
    store = f"sqlite:///{tmp / 'var' / 'serialink.db'}"
    env = dict(os.environ, SERIALINK_TOKEN_SECRET=SECRET, SERIALINK_KEY_DIR=str(tmp / "keys"),
               SERIALINK_DATA_DIR=str(tmp / "var"), SERIALINK_LOG_LEVEL="warning", SERIALINK_NOTIFIER="file")
    minted = subprocess.run([sys.executable, "-m", "serialink", "mint", "--gtin", GTIN, "--count", str(count), "--profile",
                             "default", "--format", "jsonl", "--out", str(tmp / "mint"), "--request-id", "browser-1",
                             "--lot", "LB1", "--store", store, "--no-progress"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert minted.returncode == 0, minted.stderr
    serials = [json.loads(line)["serial"] for path in (tmp / "mint").glob("*.jsonl") for line in path.open()]
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "serialink", "serve", "--port", str(port), "--data-dir",
                             str(tmp / "var"), "--rules", str(rules), "--store", store],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp / "server.log").read_text()
            time.sleep(0.1)
        yield {"base": base, "serials": serials, "notifications": tmp / "var" / "notifications.jsonl"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()


def api(base: str, method: str, path: str, token: str, body: dict) -> dict:
    r = httpx.request(method, base + path, json=body, timeout=10,
                      headers={"authorization": f"Bearer {token}", "idempotency-key": f"browser-{time.time_ns()}"})
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_register_transfer_service_and_recall_in_a_browser(server):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    base, serial = server["base"], server["serials"][0]
    scan = f"{base}/01/{GTIN}/21/{serial}"
    unit = f"{base}/u/01/{GTIN}/21/{serial}"
    brand = TokenIssuer(SECRET.encode()).issue("brand:qa", "manufacturer", ttl=3600, gtins=[GTIN])
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            phone = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}
            owner = browser.new_context(locale="en-GB", **phone)
            page = owner.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

            # scan → the unit page with a register button
            page.goto(scan)
            assert page.url == unit
            expect(page.get_by_role("heading", level=1)).to_have_text("X100 condensing boiler")  # the brand theme's model name
            page.screenshot(path=SHOTS / "01-unit-page.png", full_page=True)

            # register, confirming with the code the notifier delivered
            page.get_by_role("link", name="Register this product").click()
            page.get_by_role("button", name="Send me a code").click()  # empty: clear errors
            expect(page.get_by_role("alert")).to_contain_text("Please enter your name")
            page.screenshot(path=SHOTS / "02-register-errors.png", full_page=True)
            page.get_by_label("Your name").fill(HOSTILE_NAME)
            page.get_by_label("E-mail address or phone number").fill("ana@example.com")
            page.get_by_label("Purchase date").fill("2025-03-01")
            page.get_by_role("button", name="Send me a code").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Check your messages")
            code = json.loads(server["notifications"].read_text().splitlines()[-1])["code"]
            page.get_by_label("Code").fill(code)
            page.get_by_role("button", name="Confirm registration").click()
            expect(page.get_by_test_id("notice")).to_have_text("Registered to you")
            expect(page.get_by_test_id("owner")).to_contain_text('<script>alert("owned")</script>')
            page.screenshot(path=SHOTS / "03-registered.png", full_page=True)

            # hand over: the owner creates a code, the new owner claims it (in German)
            page.get_by_role("button", name="Create a transfer code").click()
            transfer_code = page.get_by_test_id("transfer-code").inner_text().strip()
            page.screenshot(path=SHOTS / "04-transfer-code.png", full_page=True)
            buyer = browser.new_context(locale="de-DE", **phone)
            second = buyer.new_page()
            second.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            second.goto(scan)
            expect(second.get_by_test_id("state")).to_have_text("Registriert")
            assert "ana@example.com" not in second.content() and "Ana" not in second.content()
            second.get_by_role("link", name="Sie übernehmen dieses Produkt von seinen Besitzern?").click()
            second.get_by_label("Code").fill(transfer_code)
            second.get_by_label("Ihr Name").fill("Ben Zweiter")
            second.get_by_label("E-Mail-Adresse oder Telefonnummer").fill("+49 30 1234567")
            second.get_by_role("button", name="Übernehmen").click()
            expect(second.get_by_test_id("notice")).to_have_text("Das Produkt ist jetzt auf Sie registriert")
            expect(second.get_by_test_id("owner")).to_contain_text("Ben Zweiter")
            second.screenshot(path=SHOTS / "05-claimed-de.png", full_page=True)
            page.reload()
            assert "ana@example.com" not in page.content() and "Ben Zweiter" not in page.content()

            # a technician, with a per-visit token the brand issued, logs a service visit
            visit = api(base, "POST", "/v1/tokens", brand, {"role": "technician", "principal": "tech:cho",
                                                             "ttl": 4 * 3600, "unit": {"gtin": GTIN, "serial": serial}})
            tech = browser.new_context(locale="en-GB", **phone).new_page()
            tech.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            tech.goto(unit + "/service")
            tech.get_by_label("Access token").fill(visit["token"])
            tech.get_by_role("button", name="Open").click()
            expect(tech.get_by_role("heading", name="Log a service visit")).to_be_visible()
            tech.get_by_label("What was done").fill("Annual service: burner cleaned <b>ok</b>")
            tech.get_by_label("Parts fitted (one per line)").fill("IGN-ELECTRODE-3\nGASKET-2")
            tech.get_by_label("Fault codes read (one per line)").fill("F28")
            tech.get_by_role("button", name="Save the visit").click()
            expect(tech.get_by_test_id("notice")).to_have_text("Saved.")
            expect(tech.get_by_test_id("service-history")).to_contain_text("Annual service: burner cleaned <b>ok</b>")
            assert "Ben Zweiter" not in tech.content()
            tech.screenshot(path=SHOTS / "06-technician.png", full_page=True)

            # the brand recalls the lot: the next scan lands on the recall banner
            api(base, "POST", "/v1/recalls", brand, {"gtin": GTIN, "lot": "LB1", "reason": "Burner seal may leak"})
            anyone = browser.new_context(locale="en-GB", **phone).new_page()
            anyone.goto(f"{base}/01/{GTIN}/21/{server['serials'][1]}")
            # the brand's campaign for lot LB1 (config/brand.yaml) words the reason in the visitor's language
            expect(anyone.get_by_test_id("recall-banner")).to_contain_text("The burner seal of boilers from lot LB1 may leak")
            anyone.screenshot(path=SHOTS / "07-recall-banner.png", full_page=True)
        finally:
            browser.close()
    assert dialogs == []  # no markup anyone typed ever ran
    assert len(list(SHOTS.glob("0*.png"))) >= 7
