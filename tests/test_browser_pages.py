"""Every built-in page in a real browser (Chromium, Playwright) against `serialink serve`
with the built-in pages' rules and the example brand theme (config/brand.yaml), in English
and German, at 320×640, 390×844 and 1280×800:

- no horizontal scroll; no e-mail address or date broken inside a word (``data-nobreak``
  parts render on one line); no text squeezed to one character per line;
- axe-core (bundled by axe-playwright-python, injected into the page) finds no violation,
  error pages included (scan errors, unknown serial, a bad sign-in link);
- the moments: a new unit leads with "Register", one bought days ago with the setup guide,
  one bought 400 days ago with the maintenance that is due and the part to order; after the
  brand recalls the lot, the unit page leads with the brand's reason in the visitor's
  language and the recall button, offers no registration or hand-over, and the product
  page shows the lot recall;
- forms show every error at once next to its field, in the visitor's language, each linked
  from the summary; the keyboard focus ring reaches 3:1 against the page.

One browser, one server; each page is loaded once per language and resized. Screenshots go
to pytest's tmp dir and are copied to artifacts/screenshots/pages/ (gitignored) for CI.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from resolver.access.tokens import TokenIssuer
from resolver.pages.brand import contrast
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, GTIN, REPO, SECRET, api, serve_for_browser

ARTEFACTS = REPO / "artifacts" / "screenshots" / "pages"
SIZES = {"320": (320, 640), "390": (390, 844), "1280": (1280, 800)}
LANGS = {"en": "en-GB", "de": "de-DE"}

CHECKS = """() => {
  const out = {overflow: document.documentElement.scrollWidth - window.innerWidth, broken: [], squeezed: []};
  for (const el of document.querySelectorAll('[data-nobreak]')) {
    if (el.getClientRects().length > 1) out.broken.push(el.textContent);
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, text = node.textContent.trim(), parent = node.parentElement;
    if (text.length < 4 || !parent || parent.closest('style')) continue;
    const range = document.createRange(); range.selectNodeContents(node);
    const rects = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0);
    if (rects.length < 3) continue;
    const size = parseFloat(getComputedStyle(parent).fontSize);
    if (Math.max(...rects.map(r => r.width)) < size * 1.6) out.squeezed.push(text.slice(0, 40));
  }
  return out;
}"""

AXE = (Path(__import__("axe_playwright_python").__file__).parent / "axe.min.js").read_text()


def check_digit(body: str) -> str:
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def register_by_api(base: str, serial: str, purchase: date, notes: Path, name: str, contact: str) -> dict:
    path = f"{base}/v1/units/01/{GTIN}/21/{serial}/registration"
    r = httpx.post(path, json={"name": name, "contact": contact, "purchase_date": purchase.isoformat()},
                   headers={"idempotency-key": f"reg-{serial}"}, timeout=10)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 5
    while True:
        found = [json.loads(line) for line in notes.read_text().splitlines()] if notes.exists() else []
        found = [m for m in found if m["serial"] == serial]
        if found:
            break
        assert time.monotonic() < deadline, "no registration code delivered"
        time.sleep(0.05)
    done = httpx.post(path + "/confirm", json={"confirmation": r.json()["confirmation"], "code": found[-1]["code"]},
                      headers={"idempotency-key": f"confirm-{serial}"}, timeout=10)
    assert done.status_code == 201, done.text
    return done.json()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with serve_for_browser(tmp_path_factory.mktemp("pages-browser"), 5) as running:
        yield running


def test_every_page_in_both_languages_at_three_sizes(site, tmp_path):
    from playwright.sync_api import sync_playwright

    base, serials, notes = site["base"], site["serials"], site["notifications"]
    new, fresh, due, recalled, spare = serials[:5]
    today = datetime.now(UTC).date()
    owner_fresh = register_by_api(base, fresh, today - timedelta(days=3), notes, "Lena Neumann",
                                  "lena.neumann-mustermann@example-mail.example.com")
    owner_due = register_by_api(base, due, today - timedelta(days=400), notes, "Max Alt", "max.alt@example.com")
    brand = TokenIssuer(SECRET.encode()).issue("brand:qa", "manufacturer", ttl=3600, gtins=[GTIN])
    unit = f"{base}/u/01/{GTIN}/21"
    bad_gtin = GTIN[:-1] + str((int(GTIN[-1]) + 1) % 10)
    unknown_gtin = "0401234500000" + check_digit("0401234500000")  # a valid GTIN these rules do not know
    # a case of two units on a pallet: its contents page, for the brand's token in the cookie
    case, pallet = (body + check_digit(body) for body in ("09506000000000771", "19506000000000772"))
    for parent, children in ((case, [{"gtin": GTIN, "serial": s} for s in (recalled, spare)]), (pallet, [case])):
        api(base, "POST", "/v1/aggregations", brand, {"action": "pack", "parent": parent, "children": children,
                                                     "at": "2026-03-01T08:00:00Z"})
    pages = [  # (name, url, token for the serialink_token cookie or None)
        ("unit-new", f"{unit}/{new}", None),
        ("unit-unboxing", f"{unit}/{fresh}", owner_fresh["token"]),
        ("unit-maintenance", f"{unit}/{due}", owner_due["token"]),
        ("unit-registered-stranger", f"{unit}/{fresh}", None),
        ("product", f"{base}/u/01/{GTIN}", None),
        ("register", f"{unit}/{new}/register", None),
        ("already-registered", f"{unit}/{fresh}/register", None),
        ("confirm", f"{unit}/{new}/confirm?p=abcdefghijkl", None),
        ("claim", f"{unit}/{fresh}/claim", None),
        ("owner-signin", f"{unit}/{fresh}/signin", None),
        ("service-signin", f"{unit}/{new}/service", None),
        ("session", f"{base}/u/session", None),
        ("unknown-serial", f"{unit}/NEVERISSUED9", None),
        ("bad-signin-link", f"{base}/u/signin/not-a-real-link", None),
        ("scan-bad-check-digit", f"{base}/01/{bad_gtin}/21/{new}", None),
        ("scan-unknown-gtin", f"{base}/01/{unknown_gtin}", None),
        ("sscc-case", f"{base}/00/{case}", brand),  # its pallet below; without the token: the scan 404 above
    ]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            contexts = {lang: browser.new_context(locale=locale, viewport={"width": 390, "height": 844},
                                                  device_scale_factor=1, is_mobile=False)
                        for lang, locale in LANGS.items()}

            def visit(name: str, url: str, token: str | None, lang: str) -> None:
                context = contexts[lang]
                context.clear_cookies()
                if token is not None:
                    context.add_cookies([{"name": "serialink_token", "value": token, "url": base}])
                page = context.new_page()
                try:
                    page.goto(url)
                    assert page.evaluate("document.documentElement.lang") == lang, (name, lang)
                    assert page.locator('meta[name="viewport"]').count() == 1, name
                    for size, (width, height) in SIZES.items():
                        page.set_viewport_size({"width": width, "height": height})
                        found = page.evaluate(CHECKS)
                        if found["overflow"] > 1:
                            problems.append(f"{name} {lang} {size}: scrolls sideways by {found['overflow']} px")
                        if found["broken"]:
                            problems.append(f"{name} {lang} {size}: broken inside {found['broken']}")
                        if found["squeezed"]:
                            problems.append(f"{name} {lang} {size}: one character per line: {found['squeezed']}")
                        page.screenshot(path=shots / f"{name}-{lang}-{size}.png", full_page=True)
                        if size == "390":
                            page.evaluate(AXE)
                            result = page.evaluate("axe.run(document).then(r => r.violations.map(v => "
                                                   "v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))")
                            problems.extend(f"{name} {lang}: axe {v}" for v in result)
                finally:
                    page.close()

            for lang in LANGS:
                for name, url, token in pages:
                    visit(name, url, token, lang)

            # -- a case's contents, in German, following its links ------------------------------
            de_ctx = contexts["de"]
            de_ctx.clear_cookies()
            de_ctx.add_cookies([{"name": "serialink_token", "value": brand, "url": base}])
            box = de_ctx.new_page()
            box.goto(f"{base}/00/{case}")
            assert box.get_by_role("heading", level=1).inner_text() == f"Inhalt von {case}"
            assert box.get_by_test_id("child").first.inner_text().startswith("X100 Brennwertkessel")
            assert box.get_by_test_id("child").count() == 2 and box.get_by_test_id("packed-at").inner_text() \
                == "1. März 2026, 08:00 UTC"
            box.get_by_test_id("packed-in").get_by_role("link").click()
            assert box.url == f"{base}/00/{pallet}" and box.get_by_test_id("child").inner_text() \
                == f"Packstück oder Palette {case}"
            box.close()
            de_ctx.clear_cookies()

            # -- the moments, as a consumer sees them ------------------------------------------
            en = contexts["en"]
            en.clear_cookies()
            look = en.new_page()
            look.goto(f"{unit}/{new}")
            assert look.get_by_test_id("register").is_visible()
            assert look.get_by_role("heading", level=1).inner_text() == "X100 condensing boiler"
            assert look.get_by_test_id("product-image").is_visible()
            assert not look.get_by_test_id("details").evaluate("d => d.open")  # identifiers tucked away
            en.add_cookies([{"name": "serialink_token", "value": owner_fresh["token"], "url": base}])
            look.goto(f"{unit}/{fresh}")
            assert look.get_by_test_id("moment-unboxing").is_visible()
            assert look.get_by_test_id("lead-unboxing").inner_text() == "Open the setup guide"
            en.clear_cookies()
            en.add_cookies([{"name": "serialink_token", "value": owner_due["token"], "url": base}])
            look.goto(f"{unit}/{due}")
            maintenance = look.get_by_test_id("moment-maintenance").inner_text()
            assert "Annual service" in maintenance and "Order the part: Service kit SK-100" in maintenance
            assert "Was due on" in maintenance
            en.clear_cookies()

            # -- forms: every error at once, next to its field, in the visitor's language -------
            de = contexts["de"].new_page()
            contexts["de"].clear_cookies()
            de.goto(f"{unit}/{new}/register")
            de.get_by_role("button", name="Code zusenden").click()
            summary = de.locator("#errors")
            assert summary.locator("li").count() == 3  # name, contact and (no sale recorded) the date, together
            for field in ("name", "contact", "purchase_date"):
                assert summary.locator(f'a[href="#{field}"]').count() == 1
                assert de.locator(f"#{field}").get_attribute("aria-invalid") == "true"
            assert de.locator("#name-error").inner_text().startswith("Bitte geben Sie Ihren Namen")
            assert de.locator("#contact").get_attribute("aria-describedby").strip() == "contact-error"
            de.screenshot(path=shots / "register-errors-de-390.png", full_page=True)
            de.evaluate(AXE)
            problems += [f"register-errors de: axe {v}" for v in de.evaluate("axe.run(document).then(r => r.violations"
                                                                              ".map(v => v.id))")]
            de.goto(f"{unit}/{fresh}/claim")
            de.get_by_label("Code").fill("0000-0000-0000-0000")
            de.get_by_label("Ihr Name").fill("Nina Neu")
            de.get_by_label("E-Mail-Adresse oder Telefonnummer").fill("nina@example.com")
            de.get_by_role("button", name="Übernehmen").click()
            assert "Übergabecode" in de.locator("#code-error").inner_text()  # handed over in person
            assert "Nachricht" not in de.locator("#code-error").inner_text()
            # the keyboard focus ring: 3:1 against the page behind it
            de.keyboard.press("Tab")
            de.locator("#name").focus()
            ring = de.locator("#name").evaluate("e => { const s = getComputedStyle(e); return [s.outlineStyle, "
                                                "s.outlineColor, s.outlineWidth, getComputedStyle(document.body)"
                                                ".backgroundColor]; }")
            assert ring[0] != "none" and float(ring[2].removesuffix("px")) >= 2, ring
            assert contrast(_hex(ring[1]), _hex(ring[3])) >= 3, ring
            de.close()

            # -- the brand recalls the lot: the recall pages ---------------------------------------
            api(base, "POST", "/v1/recalls", brand, {"gtin": GTIN, "lot": "LB1", "reason": "Burner seal may leak"})
            time.sleep(0.6)  # every worker follows the change feed within half a second
            for lang in LANGS:
                visit("unit-recall", f"{unit}/{recalled}", None, lang)
                visit("unit-recall-owner", f"{unit}/{due}", owner_due["token"], lang)
                visit("product-recall", f"{base}/u/01/{GTIN}", None, lang)
            for lang, reason, action in (("en", "The burner seal of boilers from lot LB1 may leak", "What to do now"),
                                         ("de", "Die Brennerdichtung von Kesseln aus dem Los LB1", "Was jetzt zu tun ist")):
                context = contexts[lang]
                context.clear_cookies()
                context.add_cookies([{"name": "serialink_token", "value": owner_due["token"], "url": base}])
                page = context.new_page()
                page.goto(f"{base}/01/{GTIN}/21/{due}")  # a scan: the rules send recalled units to the unit page
                banner = page.get_by_test_id("recall-banner")
                assert reason in banner.inner_text()
                button = page.get_by_test_id("recall-action")
                assert button.inner_text() == action
                assert button.get_attribute("href") == "https://www.example.com/recall/x100-lb1"
                html = page.content()
                for forbidden in ("/register", "/claim", 'name="action" value="offer"', "Register this product",
                                  "Produkt registrieren", "Create a transfer code", "Übergabecode erstellen"):
                    assert forbidden not in html, (lang, forbidden)
                page.goto(f"{base}/u/01/{GTIN}")
                assert "LB1" in page.get_by_test_id("recall-banner").inner_text()
                page.goto(f"{unit}/{spare}/register")  # no form for a recalled unit: its page instead
                assert page.url == f"{unit}/{spare}"
                page.close()
        finally:
            browser.close()
    elapsed = time.monotonic() - started
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for shot in shots.glob("*.png"):
        shutil.copy(shot, ARTEFACTS / shot.name)
    assert problems == []
    assert len(list(shots.glob("*.png"))) >= (len(pages) + 3) * len(LANGS) * len(SIZES)
    assert elapsed < 90, f"the browser pass took {elapsed:.0f} s"


def _hex(css: str) -> str:
    """``rgb(r, g, b)`` (what getComputedStyle answers) as #rrggbb."""
    parts = css[css.index("(") + 1:css.index(")")].split(",")
    return "#" + "".join(f"{int(float(v)):02x}" for v in parts[:3])
