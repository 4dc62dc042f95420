"""Prove the printed label: the ZPL files are rendered by a real ZPL renderer and the barcodes
in the picture are decoded; the decoded data must equal what was minted.

The renderer is zpl-renderer-js (Zebrash, a Go ZPL renderer compiled to WebAssembly and
inlined in the package: no network), run in Chromium through Playwright; the PNG it draws is
read by zxing-cpp. Case/pallet labels: the GS1-128 must carry ``(00)`` + SSCC with FNC1 first
(symbology ``]C1``) and the QR the DL URI ``<stem>/00/<sscc>``. Unit labels (the default
``config/zpl/label.zpl``): the QR the unit's DL URI, the DataMatrix the GS1 element string
(``]d2``, FNC1 before AI 21). Chromium (apt-get install chromium) and the npm package
(``npm ci --prefix tests/zpl``, done by .ci/run) are required: without them this test fails.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from serializer.codes import CodeShape
from serializer.keys import KeyStore
from serializer.logistic_labels import produce as produce_labels
from serializer.minting import BatchRequest, mint
from serializer.produce import produce
from serializer.profiles import load_profiles
from serializer.sscc import SsccRequest, mint_ssccs
from twin.events import Actor
from twin.store import open_store

REPO = Path(__file__).resolve().parents[1]
RENDERER = REPO / "tests" / "zpl" / "node_modules" / "zpl-renderer-js" / "dist" / "index.umd.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
STEM = "https://res.example.com"
ACTOR = Actor("line", "line-7")
SHOTS = REPO / "artifacts" / "labels"


@pytest.fixture(scope="module")
def render():
    """``render(zpl, width_mm, height_mm) -> PIL image`` at 8 dots/mm (203 dpi), one label."""
    missing = []
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        missing.append("Chromium (apt-get install -y chromium)")
    if not RENDERER.exists():
        missing.append(f"zpl-renderer-js at {RENDERER} (npm ci --prefix tests/zpl)")
    if missing:
        pytest.fail("the label proof needs " + " and ".join(missing), pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.route("**/*", lambda route: route.abort())  # offline: nothing may be fetched
        page.set_content("<!doctype html><title>zpl</title>")
        page.add_script_tag(content=RENDERER.read_text(encoding="utf-8"))

        def draw(zpl: str, width_mm: float, height_mm: float) -> Image.Image:
            png = page.evaluate("async ([z, w, h]) => (await window.zpljs.ready).api.zplToBase64Async(z, w, h, 8)",
                                [zpl, width_mm, height_mm])
            return Image.open(io.BytesIO(base64.b64decode(png))).convert("L")

        yield draw
        browser.close()


def _run(coro):
    """asyncio.run in its own thread: Playwright's sync API keeps a loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _labels(text: str) -> list[str]:
    labels = re.findall(r"\^XA.*?\^XZ", text, re.S)
    assert labels, "no ^XA…^XZ label in the file"
    return labels


def _decode(image: Image.Image, name: str) -> dict[str, zxingcpp.Barcode]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    image.save(SHOTS / f"{name}.png")
    found = {b.format.name: b for b in zxingcpp.read_barcodes(image)}
    return found


def test_case_and_pallet_labels_decode_to_the_minted_ssccs(tmp_path, render):
    async def mint_them():
        async with await open_store(f"sqlite:///{tmp_path}/twin.db") as store:
            request = SsccRequest.parse({"prefix": "9506000", "extension": 3, "count": 3, "request_id": "pal-1"})
            ssccs = await mint_ssccs(store, request, ACTOR)
            return ssccs, produce_labels(ssccs, STEM, ("csv", "zpl"), tmp_path / "out")

    ssccs, manifest = _run(mint_them())
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "ssccs.csv").read_text())))
    labels = _labels((tmp_path / "out" / "sscc-labels.zpl").read_text())
    assert [r["sscc"] for r in rows] == ssccs.ssccs() and len(labels) == 3 == manifest["counts"]["ssccs"]
    for i, (row, zpl) in enumerate(zip(rows, labels)):
        found = _decode(render(zpl, 101.6, 152.4), f"sscc-{i}")
        assert set(found) == {"QRCode", "Code128"}, f"label {i}: decoded {sorted(found)}"
        qr, gs1_128 = found["QRCode"], found["Code128"]
        assert qr.text == row["dl_uri"] == f"{STEM}/00/{row['sscc']}"
        # FNC1 in first position makes it GS1-128 (]C1); the data is the element string
        assert gs1_128.symbology_identifier == "]C1"
        assert gs1_128.bytes.decode() == row["element_string"].removeprefix("^") == "00" + ssccs.sscc(i)
        assert gs1_128.text == f"(00){ssccs.sscc(i)}"


def test_unit_labels_decode_to_the_minted_serials(tmp_path, render):
    async def mint_them():
        async with await open_store(f"sqlite:///{tmp_path}/twin.db") as store:
            request = BatchRequest.parse({"gtin": "09506000134352", "count": 3, "profile": "default",
                                          "request_id": "units-1", "lot": "L7", "expiry": "2027-12-31"})
            minted = await mint(store, KeyStore(tmp_path / "keys"), load_profiles(), request, ACTOR)
            shape = CodeShape(minted.batch.gtin, minted.batch.lot, minted.batch.expiry, STEM)
            produce(minted, shape, ("csv", "zpl"), tmp_path / "out")
            return minted

    minted = _run(mint_them())
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "codes.csv").read_text())))
    labels = _labels((tmp_path / "out" / "labels.zpl").read_text())
    assert [r["serial"] for r in rows] == minted.serials() and len(labels) == 3
    for i, (row, zpl) in enumerate(zip(rows, labels)):
        found = _decode(render(zpl, 101.6, 50.8), f"unit-{i}")
        assert set(found) == {"QRCode", "DataMatrix"}, f"label {i}: decoded {sorted(found)}"
        assert found["QRCode"].text == row["dl_uri"]
        dm = found["DataMatrix"]
        assert dm.symbology_identifier == "]d2", "not GS1 DataMatrix: FNC1 must come first"
        # the element string with FNC1 (GS, 0x1D) before AI 21, exactly as minted
        assert dm.bytes.decode() == row["element_string"].removeprefix("^").replace("^", "\x1d")
        assert dm.text == f"(01)09506000134352(17)271231(10)L7(21){minted.serial(i)}"
