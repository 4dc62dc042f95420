"""`serialink mint` checks everything it can before a serial is allocated, an allocation whose
files never arrived is listed and can be finished or voided, and minted codes point at this
resolver unless told otherwise. Real SQLite store, real key files, the real CLI."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import resource
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serialink import cli
from serializer.errors import MintError
from serializer.minting import ai17_century, parse_expiry

REPO = Path(__file__).resolve().parents[1]
GTIN = "09506000134352"


def _mint(tmp: Path, out: Path | str, *extra: str, request_id: str | None = None, env: dict | None = None):
    argv = ["mint", "--gtin", GTIN, "--count", "5", "--out", str(out), "--store", f"sqlite:///{tmp}/twin.db",
            "--key-dir", str(tmp / "keys"), "--no-progress", *extra]
    if request_id:
        argv += ["--request-id", request_id]
    stdout, stderr = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                status = cli.main(argv)
            except SystemExit as exc:
                status = exc.code
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return status, stdout.getvalue(), stderr.getvalue()


def _batches(tmp: Path) -> list[dict]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert cli.main(["batches", "list", "--json", "--store", f"sqlite:///{tmp}/twin.db", "--key-dir",
                         str(tmp / "keys")]) == 0
    return [json.loads(line) for line in stdout.getvalue().splitlines()]


def _allocated(tmp: Path) -> int:
    from twin.store import open_store

    async def count() -> int:
        async with await open_store(f"sqlite:///{tmp}/twin.db") as store:
            return sum(b.count for b in await store.list_batches(GTIN))
    return asyncio.run(count())


@pytest.mark.parametrize("case", [
    "out-in-proc", "out-is-a-file", "out-holds-another-batch", "zpl-template-missing", "zpl-template-invalid",
    "zpl-template-not-utf8", "format-unknown", "stem-not-a-url", "stem-with-query", "stem-http", "stem-fragment",
    "expiry-2080", "expiry-iso-week", "expiry-arabic-digits", "expiry-not-a-day", "expiry-yymmdd",
    "profiles-missing",
])
def test_a_refused_mint_allocates_nothing(tmp_path, case):
    out = tmp_path / "out"
    bad_zpl = tmp_path / "bad.zpl"
    bad_zpl.write_text("^XA^FO50,50^BQN,2,5^FDQA,{{nope}}^FS^XZ\n")
    latin1 = tmp_path / "latin1.zpl"
    latin1.write_bytes("^XA^FD\xe9t\xe9^FS^XZ".encode("latin-1"))
    (tmp_path / "a-file").write_text("x")
    before = 0
    if case == "out-holds-another-batch":
        assert _mint(tmp_path, out, "--format", "csv", request_id="first")[0] == 0
        before = _allocated(tmp_path)
        first_files = {p.name: p.read_bytes() for p in out.iterdir()}
    extra = {
        "out-in-proc": ("--out", "/proc/x"), "out-is-a-file": ("--out", str(tmp_path / "a-file")),
        "out-holds-another-batch": ("--format", "csv,zpl"),
        "zpl-template-missing": ("--format", "csv,zpl", "--zpl-template", str(tmp_path / "missing.zpl")),
        "zpl-template-invalid": ("--format", "csv,zpl", "--zpl-template", str(bad_zpl)),
        "zpl-template-not-utf8": ("--format", "csv,zpl", "--zpl-template", str(latin1)),
        "format-unknown": ("--format", "csv,gif"),
        "stem-not-a-url": ("--stem", "not a url"), "stem-with-query": ("--stem", "https://id.example.com/?a=1"),
        "stem-http": ("--stem", "http://id.example.com"), "stem-fragment": ("--stem", "https://id.example.com#x"),
        "expiry-2080": ("--expiry", "2080-06-30"), "expiry-iso-week": ("--expiry", "2027-W01-1"),
        "expiry-arabic-digits": ("--expiry", "\u0662\u0660\u0662\u0667-\u0660\u0661-\u0660\u0661"),
        "expiry-not-a-day": ("--expiry", "2027-02-30"), "expiry-yymmdd": ("--expiry", "271231"),
        "profiles-missing": ("--profiles", str(tmp_path / "missing.yaml")),
    }[case]
    argv_out = out
    if extra[0] == "--out":
        argv_out, extra = Path(extra[1]), ()
    status, _, stderr = _mint(tmp_path, argv_out, *extra, request_id="second")
    assert status in (1, 2) and stderr.startswith("serialink mint: "), stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr
    assert _allocated(tmp_path) == before, f"{case}: serials were allocated by a refused mint"
    if case == "out-holds-another-batch":
        assert {p.name: p.read_bytes() for p in out.iterdir()} == first_files, "the other batch's files changed"
        assert "holds the files of batch" in stderr
    if case == "expiry-2080":
        assert "as 1980-06-30" in stderr


def _fsize_limited(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_an_undelivered_allocation_is_listed_and_can_be_finished_or_voided(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(out: Path, request_id: str, limit: int | None = None) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "serialink", "mint", "--gtin", GTIN, "--count", "40000", "--out", str(out),
                "--request-id", request_id, "--store", f"sqlite:///{tmp_path}/twin.db", "--key-dir",
                str(tmp_path / "keys"), "--no-progress"]
        return subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              preexec_fn=_fsize_limited(limit) if limit else None)

    # the process dies writing codes.csv (a file-size limit kills it: what no check can foresee)
    for request_id in ("crash-a", "crash-b"):
        died = run(tmp_path / request_id, request_id, limit=2_000_000)
        assert died.returncode != 0
        assert not (tmp_path / request_id / "manifest.json").exists()
    listed = {b["request_id"]: b for b in _batches(tmp_path)}
    assert {k: (v["status"], v["delivered"]) for k, v in listed.items()} == {
        "crash-a": ("allocated", False), "crash-b": ("allocated", False)}
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        cli.main(["batches", "list", "--store", f"sqlite:///{tmp_path}/twin.db", "--key-dir", str(tmp_path / "keys")])
    assert text.getvalue().count("UNDELIVERED") == 2 and "2 allocated without delivered files" in text.getvalue()
    # finish one by retrying the same command
    finished = run(tmp_path / "crash-a", "crash-a")
    assert finished.returncode == 0, finished.stderr
    assert (tmp_path / "crash-a" / "manifest.json").exists()
    # void the other
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["batches", "void", listed["crash-b"]["id"], "--reason", "labels never printed",
                         "--store", f"sqlite:///{tmp_path}/twin.db"]) == 0
    after = {b["request_id"]: (b["status"], b["delivered"]) for b in _batches(tmp_path)}
    assert after == {"crash-a": ("committed", True), "crash-b": ("voided", False)}
    # a voided batch is never finished: its request id is refused
    again = run(tmp_path / "crash-b", "crash-b")
    assert again.returncode == 1 and "voided" in again.stderr


def test_minted_codes_point_at_this_resolver_by_default(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text((REPO / "config" / "rules.yaml").read_text().replace("https://id.example.com",
                                                                          "https://qr.brand.example"))
    env = {"SERIALINK_RULES_FILE": str(rules)}
    assert _mint(tmp_path, tmp_path / "a", request_id="stem-a", env=env)[0] == 0
    rows = list(csv.DictReader((tmp_path / "a" / "codes.csv").open()))
    assert rows[0]["dl_uri"].startswith(f"https://qr.brand.example/01/{GTIN}/21/"), rows[0]
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["stem"] == "https://qr.brand.example"
    # settings.dl_stem wins over the rules; --stem over both
    assert _mint(tmp_path, tmp_path / "b", request_id="stem-b", env={**env, "SERIALINK_DL_STEM": "https://dl.example"})[0] == 0
    assert next(csv.DictReader((tmp_path / "b" / "codes.csv").open()))["dl_uri"].startswith("https://dl.example/01/")
    assert _mint(tmp_path, tmp_path / "c", "--stem", "https://x.example/dl/", request_id="stem-c", env=env)[0] == 0
    assert next(csv.DictReader((tmp_path / "c" / "codes.csv").open()))["dl_uri"].startswith("https://x.example/dl/01/")


def test_the_line_api_honours_dl_stem(resolver_factory):
    r = resolver_factory(dl_stem="https://labels.example.net")
    admin = r.auth("admin", all_products=True)
    made = r.client.post("/v1/batches", json={"gtin": GTIN, "count": 2, "request_id": "api-stem"}, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["manifest"]["stem"] == "https://labels.example.net"
    default = resolver_factory()
    made = default.client.post("/v1/batches", json={"gtin": GTIN, "count": 2, "request_id": "api-root"},
                               headers=default.auth("admin", all_products=True))
    assert made.json()["manifest"]["stem"] == default.services.current_rules.root.rstrip("/")


@settings(max_examples=300, deadline=None)
@given(st.dates(date(1900, 1, 1), date(2199, 12, 31)), st.dates(date(2000, 1, 1), date(2120, 12, 31)))
def test_an_expiry_is_accepted_exactly_when_ai17_reads_back_the_same_date(expiry, today):
    """GS1 General Specifications 7.12 decides the century of a YYMMDD; what we print must
    be read back as the date the line asked for."""
    try:
        accepted = parse_expiry(expiry.isoformat(), today)
    except MintError as exc:
        assert exc.field == "expiry"
        assert ai17_century(expiry.year % 100, today) != expiry.year
        return
    assert accepted == expiry
    read_back = date(ai17_century(int(expiry.strftime("%y")), today), expiry.month, expiry.day)
    assert read_back == expiry
    assert abs((expiry - today).days) < 51 * 366


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(categories=["Nd"]), min_size=8, max_size=8)
       .filter(lambda digits: not digits.isascii()))
def test_only_ascii_digits_make_an_expiry(digits):
    with pytest.raises(MintError):
        parse_expiry(f"{digits[:4]}-{digits[4:6]}-{digits[6:]}", date(2026, 1, 1))


def test_the_window_edges_today():
    today = date.today()
    assert parse_expiry((today + timedelta(days=365 * 10)).isoformat()) is not None
    with pytest.raises(MintError, match="a scanner would read"):
        parse_expiry(date(today.year + 52, 6, 30).isoformat())
