"""Every output format read back: CSV rows, JSON lines, ZPL fields, EPCIS against its
schema, QR images decoded by a real decoder; same request id, byte-identical files."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import jsonschema
import pytest
import zxingcpp
from PIL import Image

from ext import parse, parse_element_string
from serializer.codes import CodeShape
from serializer.keys import KeyStore
from serializer.minting import BatchRequest, mint
from serializer.produce import produce
from serializer.profiles import load_profiles, parse_profiles
from twin.events import Actor
from twin.store import open_store

GTIN = "09506000134352"
ROOT = Path(__file__).resolve().parent.parent
ACTOR = Actor("line", "line-7")

# CSET 82 characters that need escaping in URIs, quoting in CSV, escaping in JSON and ZPL
AWKWARD = parse_profiles("""
version: 1
profiles:
  - name: awkward
    alphabet: "AB/%,\\"_-.9"
    length: 8
    mode: randomised
""")


def mint_to(tmp: Path, out: Path, formats, count=300, profile="default", profiles=None, lot="L/1", expiry="2027-12-31",
            request_id="req-1"):
    profiles = profiles or load_profiles()

    async def go():
        async with await open_store(f"sqlite:///{tmp}/twin.db") as store:
            request = BatchRequest.parse({"gtin": GTIN, "count": count, "profile": profile, "request_id": request_id,
                                          "lot": lot, "expiry": expiry})
            minted = await mint(store, KeyStore(tmp / "keys"), profiles, request, ACTOR)
        shape = CodeShape(GTIN, minted.batch.lot, minted.batch.expiry)
        return minted, produce(minted, shape, tuple(formats), out)
    return asyncio.run(go())


def test_files_match_their_manifest_and_a_retry_is_byte_identical(tmp_path):
    minted, manifest = mint_to(tmp_path, tmp_path / "a", ["csv", "zpl", "jsonl", "epcis"])
    again, manifest2 = mint_to(tmp_path, tmp_path / "b", ["csv", "zpl", "jsonl", "epcis"])
    assert again.batch == minted.batch and manifest2 == manifest
    for entry in manifest["files"]:
        a, b = (tmp_path / "a" / entry["name"]).read_bytes(), (tmp_path / "b" / entry["name"]).read_bytes()
        assert a == b and hashlib.sha256(a).hexdigest() == entry["sha256"] and len(a) == entry["bytes"]
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("profile", ["default", "awkward"])
def test_csv_and_jsonl_rows_parse_back_to_the_minted_codes(tmp_path, profile):
    profiles = AWKWARD if profile == "awkward" else None
    minted, _ = mint_to(tmp_path, tmp_path / "o", ["csv", "jsonl"], count=2000, profile=profile, profiles=profiles)
    serials = minted.serials()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "o" / "codes.csv").read_text(encoding="utf-8"), newline="")))
    lines = [json.loads(x) for x in (tmp_path / "o" / "codes.jsonl").read_text().splitlines()]
    assert [r["serial"] for r in rows] == serials == [x["serial"] for x in lines]
    assert len(set(serials)) == len(serials)
    for row, line in zip(rows, lines):
        dl = parse(row["dl_uri"])
        assert (dl.gtin, dl.serial, dl.lot, dl.get("17")) == (GTIN, row["serial"], "L/1", "271231")
        assert row["dl_uri"] == line["dl_uri"]
        es = parse_element_string(row["element_string"])
        assert dict(es.elements) == {"01": GTIN, "17": "271231", "10": "L/1", "21": row["serial"]}
        assert row["hri"] == f"(01) {GTIN} (17) 271231 (10) L/1 (21) {row['serial']}" == line["hri"]
        assert (row["gtin"], row["lot"], row["expiry"], line["expiry"]) == (GTIN, "L/1", "271231", "2027-12-31")


_FIELD = re.compile(r"\^FD(.*?)\^FS", re.S)


def test_zpl_labels_carry_the_uri_the_datamatrix_data_and_the_hri(tmp_path):
    minted, _ = mint_to(tmp_path, tmp_path / "o", ["zpl"], count=500, profile="awkward", profiles=AWKWARD)
    text = (tmp_path / "o" / "labels.zpl").read_text()
    labels = re.findall(r"\^XA.*?\^XZ", text, re.S)
    assert len(labels) == 500
    for label, serial in zip(labels, minted.serials()):
        qr, dm, *hri = _FIELD.findall(label)
        assert qr.startswith("MA,") and parse(qr[3:]).serial == serial
        assert "^BXN,6,200,,,,_" in label
        # undo the ZPL escapes: _1 is FNC1, __ a literal underscore
        decoded = re.sub(r"_(1|_)", lambda m: "\x1d" if m.group(1) == "1" else "_", dm)
        assert decoded.startswith("\x1d")
        es = parse_element_string("^" + decoded[1:].replace("\x1d", "^"))
        assert dict(es.elements) == {"01": GTIN, "17": "271231", "10": "L/1", "21": serial}
        assert hri == [f"(01) {GTIN}", "(17) 271231", "(10) L/1", f"(21) {serial}"]


def test_zpl_template_sections_drop_lines_without_lot_or_expiry(tmp_path):
    minted, _ = mint_to(tmp_path, tmp_path / "o", ["zpl"], count=3, lot=None, expiry=None)
    label = (tmp_path / "o" / "labels.zpl").read_text().split("^XZ")[0]
    assert "(10)" not in label and "(17)" not in label and f"(21) {minted.serial(0)}" in label


def test_epcis_document_validates_against_the_schema(tmp_path):
    minted, _ = mint_to(tmp_path, tmp_path / "o", ["epcis"], count=25_001)
    doc = json.loads((tmp_path / "o" / "epcis.jsonld").read_text())
    schema = json.loads((ROOT / "config" / "epcis" / "epcis-2.0-objectevent.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert list(validator.iter_errors(doc)) == []
    events = doc["epcisBody"]["eventList"]
    assert [len(e["epcList"]) for e in events] == [10_000, 10_000, 5_001]
    epcs = [epc for e in events for epc in e["epcList"]]
    assert epcs == [f"https://id.gs1.org/01/{GTIN}/21/{s}" for s in minted.serials()]
    assert {(e["action"], e["bizStep"], e["disposition"]) for e in events} == {("ADD", "commissioning", "active")}
    assert events[0]["ilmd"] == {"cbvmda:lotNumber": "L/1", "cbvmda:itemExpirationDate": "2027-12-31"}
    broken = json.loads(json.dumps(doc))
    broken["epcisBody"]["eventList"][0]["action"] = "OBSERVE"
    assert list(validator.iter_errors(broken)), "an OBSERVE event must not carry ILMD"


def test_every_image_decodes_back_to_its_exact_uri(tmp_path):
    import pypdfium2 as pdfium
    import resvg_py
    minted, _ = mint_to(tmp_path, tmp_path / "o", ["svg", "png", "pdf"], count=30, profile="awkward", profiles=AWKWARD)
    shape = CodeShape(GTIN, "L/1", minted.batch.expiry)
    expected = {shape.dl_uri(s) for s in minted.serials()}
    for name in ("qr-svg.zip", "qr-png.zip"):
        with zipfile.ZipFile(tmp_path / "o" / name) as archive:
            found = set()
            for entry in archive.namelist():
                data = archive.read(entry)
                if entry.endswith(".svg"):
                    data = bytes(resvg_py.svg_to_bytes(svg_string=data.decode(), background="#ffffff"))
                results = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)), formats=zxingcpp.BarcodeFormat.QRCode)
                assert len(results) == 1 and results[0].format == zxingcpp.BarcodeFormat.QRCode
                found.add(results[0].text)
        assert found == expected
    pdf = pdfium.PdfDocument(str(tmp_path / "o" / "labels.pdf"))
    decoded = set()
    for page in pdf:
        decoded |= {r.text for r in zxingcpp.read_barcodes(page.render(scale=4).to_pil(),
                                                          formats=zxingcpp.BarcodeFormat.QRCode)}
    assert decoded == expected
