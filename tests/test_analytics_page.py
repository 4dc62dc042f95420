"""The analytics page in Debian's Chromium (Playwright), against `serialink serve` on
loopback reading a real Parquet export: every chart drawn and visible, each CSV link
answering the chart's numbers, and axe-core (shipped in axe-playwright-python) finding no
violation. The screenshot is written under the test's tmp directory.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from resolver.access.tokens import COOKIE, TokenIssuer
from resolver.analytics.export import export
from tests.redis_fixtures import free_port
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS
from twin.events import Actor, make_event
from twin.overlays import LotScope, SerialScope
from twin.scans import ScanEvent
from twin.store import open_store
from twin.unit import unit_from_batch

GTIN = "09506000134352"
SECRET = "analytics-page-" + "s" * 40
QA = Actor("manufacturer", "qa")


async def _brand(store_url: str, out: Path) -> None:
    """A few months of a brand's data, exported."""
    rnd = random.Random(3)
    now = datetime.now(UTC)
    async with await open_store(store_url) as store:
        batches = [await store.allocate_range(GTIN, "default", 50, f"r{i}", f"d{i}", actor=QA, lot=f"L{i}")
                   for i in range(3)]
        await store.set_batch_status(batches[0].id, "committed", QA, "printed")
        for batch in batches:
            for i in range(0, batch.count, 3):
                serial = f"{batch.lot}-{i}"
                at = now - timedelta(days=rnd.randrange(1, 20))
                ev = make_event("register", Actor("owner", f"o_owner{i:04d}"), "r", owner=f"o_owner{i:04d}",
                                purchase_date=at.date().isoformat(), at=at)
                await store.append_event(GTIN, serial, ev, origin=unit_from_batch(GTIN, serial, batch))
                if i % 2 == 0:
                    await store.append_event(GTIN, serial, make_event(
                        "service", Actor("technician", "t"), "s", summary="x", fault_codes=[rnd.choice(("F1", "E7"))],
                        at=at + timedelta(hours=1)))
        await store.put_overlay(GTIN, "recalled", LotScope("L1"), QA, "water ingress")
        await store.put_overlay(GTIN, "suspect", SerialScope("L2-7"), Actor("system", "clone-detection"),
                                "clone rule 'several countries': scanned in 3 countries (BR, DE, FR) within 3600 s")
        start = int((now - timedelta(days=14)).timestamp() * 1000)
        scans = [ScanEvent(start + rnd.randrange(14 * 86_400_000), GTIN, f"L{rnd.randrange(3)}-{rnd.randrange(50)}",
                           f"L{rnd.randrange(3)}", rnd.choice(("consumer", "consumer", "owner", "technician")),
                           rnd.choice(("gs1:pip", "gs1:serviceInfo")), rnd.choice(("sold", "registered")), None,
                           rnd.choice(("DE", "FR", "BR", None))) for _ in range(3000)]
        await store.append_scans(sorted(scans))
        await export(store, out, 0, int(now.timestamp() * 1000))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analytics-page")
    store = f"sqlite:///{tmp / 'var' / 'serialink.db'}"
    (tmp / "var").mkdir()
    asyncio.run(_brand(store, tmp / "export"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, SERIALINK_TOKEN_SECRET=SECRET, SERIALINK_DATA_DIR=str(tmp / "var"),
               SERIALINK_ANALYTICS_DIR=str(tmp / "export"), SERIALINK_LOG_LEVEL="warning",
               SERIALINK_KEY_DIR=str(tmp / "keys"))
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "serialink", "serve", "--port", str(port), "--store", store],
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
        yield {"base": base, "tmp": tmp}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()


def test_the_charts_are_visible_with_their_csv_and_axe_finds_nothing(server, tmp_path: Path) -> None:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect, sync_playwright

    base = server["base"]
    token = TokenIssuer(SECRET.encode()).issue("brand:analyst", "manufacturer", ttl=3600, gtins=[GTIN])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            context.add_cookies([{"name": COOKIE, "value": token, "url": base}])
            page = context.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"{base}/u/analytics")
            expect(page.get_by_role("heading", level=1)).to_have_text("What your scans say")
            charts = page.get_by_test_id("chart")
            expect(charts).to_have_count(11)
            for i in range(11):
                svg = charts.nth(i).locator("svg")
                expect(svg).to_be_visible()
                box = svg.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 20
            # the charts carry data: bars drawn for scans per day, registrations, fault codes, funnel, recall
            bars = [charts.nth(i).locator("svg rect").count() for i in range(11)]
            assert all(n > 0 for n in bars[:8]) and bars[8] > 0 and bars[10] > 0, bars
            expect(page.get_by_test_id("suspects")).to_contain_text("L2-7")
            page.screenshot(path=tmp_path / "analytics.png", full_page=True)
            assert (tmp_path / "analytics.png").stat().st_size > 10_000
            assert all(u.startswith(base) for u in requests), requests  # nothing from elsewhere

            results = Axe().run(page)
            assert results.violations_count == 0, results.generate_report()

            # each chart's CSV link answers the numbers its chart drew (the cookie is the credential)
            link = charts.nth(2).get_by_role("link")
            href = link.get_attribute("href")
            assert href is not None and href.startswith("/v1/analytics/scans-per-day.csv?")
            answer = httpx.get(base + href, cookies={COOKIE: token}, timeout=10)
            assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(answer.text)))
            assert sum(int(r["scans"]) for r in rows) == 3000
            assert {r["role"] for r in rows} == {"consumer", "owner", "technician"}
        finally:
            browser.close()
