"""Resolver details of issue 12: malformed percent-escapes are a 400, `rules diff` replays what a
scan URI asks for, `rules explain` reads the configured rules, and recorded scans export in
the format `rules diff` reads. The real app, a real SQLite store, a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import time
from pathlib import Path

import pytest

from serialink import cli
from tests.resolver_fixtures import running_resolver
from twin.scans import ScanEvent
from twin.store import open_store

REPO = Path(__file__).resolve().parents[1]
GTIN = "09506000134352"
RULES = (REPO / "config" / "rules.yaml").read_text()


def _cli(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main(list(argv))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return status, out.getvalue(), err.getvalue()


MALFORMED = [
    f"/01/{GTIN}/21/AB%2x", f"/01/{GTIN}/21/AB%", f"/01/{GTIN}/21/%G1", f"/01/{GTIN}/21/A%2",
    f"/01/{GTIN}/10/%zz/21/ABC", f"/01/{GTIN}/21/ABC?17=27%1x31", f"/01/{GTIN}/21/ABC?linkType=gs1%3",
    f"/01/{GTIN}/21/%%41", f"/01/{GTIN}/21/A%-1",
    # legacy forms the lenient parser would otherwise read
    "/01/9506000134352/21/AB%2x", "/gtin/09506000134352/ser/AB%2x",
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_resolver(tmp_path_factory.mktemp("details")) as r:
        yield r


@pytest.mark.parametrize("path", MALFORMED)
def test_malformed_percent_escapes_are_400_with_the_reason(app, path):
    answer = app.get(path, headers={"accept": "application/json"})
    assert answer.status_code == 400, (path, answer.status_code, answer.headers.get("location"))
    assert "percent-escape" in answer.text, answer.text
    status, out, _ = _cli("rules", "explain", "https://id.example.com" + path, "--rules", str(app.rules_file))
    assert status == 1 and "answer: 400" in out and "percent-escape" in out


def test_well_formed_escapes_and_legacy_forms_still_resolve(app):
    assert app.get(f"/01/{GTIN}/21/A%2FB").status_code == 307
    assert app.get("/01/9506000134352").status_code == 307  # GTIN-13: the lenient parser reads it


def test_the_readme_says_what_the_resolver_does_with_malformed_escapes():
    row = next(line for line in (REPO / "README.md").read_text().splitlines() if "malformed percent-escapes" in line)
    assert "400" in row and "resolver" in row and "lenient" in row


def _diff(old: Path, new: Path, scans: Path) -> dict:
    status, out, err = _cli("rules", "diff", str(old), str(new), "--scans", str(scans), "--json")
    assert status == 0, err
    return json.loads(out)


def test_rules_diff_honours_link_type_and_context_in_scan_uris(tmp_path):
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(RULES)
    new.write_text(RULES.replace("https://www.example.com/boilers/x100/installation",
                                 "https://www.example.com/boilers/x100/installation-v2")
                   .replace("    routes:\n      - name: recall wins over everything",
                            "    routes:\n      - name: installers by context\n        when: {context: installer}\n"
                            "        link: gs1:instructions\n      - name: recall wins over everything", 1))
    base = f"https://id.example.com/01/{GTIN}/21/ABC"
    cases = {  # scan line -> does it change between old and new?
        base: False,
        f"{base}?linkType=gs1:instructions": True,  # the explicit link type's href changed
        f"{base}?linkType=gs1:pip": False,
        f"{base}?context=installer": True,  # the new route for this context
        f"{base}?context=consumer": False,
        json.dumps({"uri": f"{base}?linkType=gs1:instructions", "role": "technician"}): True,
        json.dumps({"uri": base, "link_type": "gs1:instructions"}): True,
    }
    for line, changes in cases.items():
        scans = tmp_path / "scans.jsonl"
        scans.write_text(line + "\n")
        assert _diff(old, new, scans)["changed"] == int(changes), line


def test_rules_explain_reads_the_rules_file_of_the_settings(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("https://www.example.com/register/{gtin}/{serial}",
                                   "https://www.example.com/signup/{gtin}/{serial}"))
    url = f"https://id.example.com/01/{GTIN}/21/ABC"
    status, out, _ = _cli("rules", "explain", url, "--json", env={"SERIALINK_RULES_FILE": str(rules)})
    assert status == 0 and json.loads(out)["href"] == f"https://www.example.com/signup/{GTIN}/ABC"
    status, out, _ = _cli("rules", "explain", url, "--json")
    assert status == 0 and json.loads(out)["href"] == f"https://www.example.com/register/{GTIN}/ABC"


def test_recorded_scans_export_in_the_format_rules_diff_replays(tmp_path):
    with running_resolver(tmp_path / "app") as r:
        since = time.time() - 1
        made = r.client.post("/v1/batches", json={"gtin": GTIN, "count": 3, "request_id": "exp-1"},
                             headers=r.auth("admin", all_products=True))
        serials = [row.split(",")[1] for row in r.client.get(
            f"/v1/batches/{made.json()['batch']['id']}/files/codes.csv",
            headers=r.auth("admin", all_products=True)).text.splitlines()[1:]]
        scans = [f"/01/{GTIN}/21/{serials[0]}", f"/01/{GTIN}/21/{serials[1]}?context=installer",
                 f"/01/{GTIN}", f"/01/{GTIN}/10/LOT7", f"/01/{GTIN}/21/NOT-ISSUED"]
        for path in scans:
            assert r.get(path).status_code == 307
        assert r.get(f"/01/{GTIN}/21/{serials[2]}", headers=r.auth("technician", all_products=True)).status_code == 307
        deadline = time.monotonic() + 10
        while r.services.scans.stats().buffered or r.services.scans.stats().flushed < len(scans) + 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        store_url = r.services.settings.store_url
        out = tmp_path / "scans.jsonl"
        status, _, err = _cli("scans", "export", "--since", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)),
                              "--store", store_url, "--out", str(out))
        assert status == 0 and "6 scan(s)" in err, err
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(records) == 6
        assert {(rec["role"], rec["state"]) for rec in records} >= {
            ("consumer", "commissioned"), ("consumer", "unserialised"), ("consumer", "unknown"),
            ("technician", "commissioned")}
        assert {rec["context"] for rec in records} >= {"installer", None}
        assert any(rec["uri"].endswith(f"/01/{GTIN}/10/LOT7") for rec in records)
        # a later --since exports nothing; a bad one is refused in one line
        status, _, err = _cli("scans", "export", "--since", "2999-01-01", "--store", store_url, "--out",
                              str(tmp_path / "none.jsonl"))
        assert status == 0 and (tmp_path / "none.jsonl").read_text() == ""
        # replayed against the rules that routed them: nothing changes; against changed rules, what changed
        same = _diff(r.rules_file, r.rules_file, out)
        assert same == {**same, "scans": 6, "changed": 0, "invalid": 0}
        changed_rules = tmp_path / "changed.yaml"
        changed_rules.write_text(RULES.replace("https://www.example.com/register/{gtin}/{serial}",
                                               "https://www.example.com/signup/{gtin}/{serial}"))
        moved = _diff(r.rules_file, changed_rules, out)
        assert moved["changed"] == 2, moved  # the consumer scans of commissioned units: register moved


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_scans_since_reads_every_gtin_from_a_time_on(tmp_path, request, backend):
    url = f"sqlite:///{tmp_path}/s.db" if backend == "sqlite" else \
        f"{request.getfixturevalue('redis_url')}?prefix=since{time.time_ns()}"
    now = int(time.time() * 1000)
    scans = [ScanEvent(now - 3_600_000, GTIN, "OLD", None, "consumer", "gs1:pip", "sold", None),
             ScanEvent(now, GTIN, "NEW", "L1", "consumer", "gs1:pip", "sold", "installer"),
             ScanEvent(now + 1, "04012345000009", None, None, "regulator", "gs1:dpp", None, None)]

    async def go() -> list[ScanEvent]:
        async with await open_store(url) as store:
            await store.append_scans(scans[:1])
            await store.append_scans(scans[1:])
            return [s async for chunk in store.scans_since(now - 1000) for s in chunk]
    found = asyncio.run(go())
    assert sorted(found) == sorted(scans[1:])
