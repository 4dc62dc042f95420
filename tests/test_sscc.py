"""SSCCs (AI 00): check digits against GS1's vectors, the durable idempotent allocator on every
store backend and across processes, exhaustion, a SIGKILL mid-write, the CLI's one-line refusals
and the line API — real SQLite, real Redis, real processes, the real ASGI app."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from ext import compute_check_digit
from resolver import problems
from resolver.access.tokens import TokenIssuer
from resolver.api import ssccs as sscc_api
from resolver.services import Services
from serializer.errors import MintConflict, MintError, MintRefused, MintTooLarge
from serializer.logistic_labels import produce
from serializer.profiles import parse_profiles
from serializer.sscc import SsccRequest, check_sscc, list_ssccs, mint_ssccs, sscc_of
from settings import load_settings
from tests.conformance import VECTORS
from twin.events import Actor
from twin.store import open_store

ROOT = Path(__file__).resolve().parent.parent
ACTOR = Actor("line", "line-7")
PREFIX = "9506000"
SECRET = b"s" * 32


def _vectors() -> list[tuple[str, bool]]:
    """18-digit AI (00) values GS1's syntax engine and dictionary linters call valid or not."""
    out = []
    for name in ("gs1-syntax-engine-ai-element-strings.jsonl", "gs1-syntax-dictionary-linters.jsonl"):
        for line in (VECTORS / name).read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                continue
            v = json.loads(line)
            text = v.get("input", "")
            if name.startswith("gs1-syntax-engine") and text.startswith("(00)") and text.count("(") == 1:
                out.append((text[4:], v["valid"]))
            elif v.get("linter") == "csum" and len(text) == 18:
                out.append((text, v["valid"]))
    return out


def request(**kw) -> SsccRequest:
    base = {"prefix": PREFIX, "extension": 3, "count": 10, "request_id": "pal-1"}
    base.update(kw)
    return SsccRequest.parse(base)


def test_check_digits_agree_with_gs1_vectors():
    cases = _vectors()
    assert len(cases) >= 4 and {ok for _, ok in cases} == {True, False}, cases
    for value, valid in cases:
        try:
            check_sscc(value)
            accepted = True
        except MintError:
            accepted = False
        assert accepted == valid, value
        if valid:  # minting rebuilds the same check digit from the 17 data digits
            assert sscc_of(int(value[0]), value[1:8], int(value[8:17])) == value
    # the GS1 General Specifications' worked example
    assert sscc_of(1, "0614141", 123456789) == "106141411234567897"


def test_request_fields_are_refused_by_name():
    cases = [({"prefix": "123"}, "prefix"), ({"prefix": "9506000123456"}, "prefix"), ({"prefix": "95O6000"}, "prefix"),
             ({"prefix": "2100000"}, "prefix"), ({"prefix": "9780000"}, "prefix"), ({"extension": "x"}, "extension"),
             ({"extension": 10}, "extension"), ({"extension": True}, "extension"), ({"count": 0}, "count"),
             ({"count": "many"}, "count"), ({"request_id": "a b"}, "request_id"), ({"line": "l 7"}, "line")]
    for change, field in cases:
        with pytest.raises(MintError) as err:
            request(**change)
        assert err.value.field == field, change
    with pytest.raises(MintTooLarge):
        request(count=1_000_001)
    with pytest.raises(Exception) as err:
        parse_profiles("profiles:\n  - name: sscc-7\n    alphabet: '0123456789'\n    length: 12\n    mode: sequential\n")
    assert "sscc-" in str(err.value)


def test_a_retry_returns_the_same_ssccs_and_nothing_is_issued_twice(store_url):
    async def go():
        async with await open_store(store_url) as store:
            first = await mint_ssccs(store, request(), ACTOR)
            again = await mint_ssccs(store, request(), ACTOR)
            assert again.batch.id == first.batch.id and again.ssccs() == first.ssccs()
            with pytest.raises(MintConflict) as err:
                await mint_ssccs(store, request(count=11), ACTOR)
            assert err.value.field == "request_id"
            second = await mint_ssccs(store, request(request_id="pal-2", count=5), ACTOR)
            other_ext = await mint_ssccs(store, request(request_id="pal-3", extension=4), ACTOR)
            neighbour = await mint_ssccs(store, request(request_id="pal-4", prefix="9506001"), ACTOR)
            issued = first.ssccs() + second.ssccs() + other_ext.ssccs() + neighbour.ssccs()
            assert len(issued) == len(set(issued)) == 35
            assert all(check_sscc(s) and s[1:8] in (PREFIX, "9506001") for s in issued)
            # 9506000 then 95060000: the same 17 digits would come out twice; refused either way round
            for overlapping in (PREFIX + "0", PREFIX[:5]):
                with pytest.raises(MintRefused) as err:
                    await mint_ssccs(store, request(request_id="pal-5", prefix=overlapping), ACTOR)
                assert err.value.field == "prefix"
            listed = await list_ssccs(store, PREFIX, 3)
            assert [r.batch.request_id for r in listed] == ["pal-1", "pal-2"]
            assert [s for r in listed for s in r.ssccs()] == first.ssccs() + second.ssccs()
    asyncio.run(go())


def test_the_serial_reference_range_is_refused_when_exhausted(tmp_path):
    async def go():
        async with await open_store(f"sqlite:///{tmp_path}/twin.db") as store:
            prefix = "950600012345"  # 12 digits: 4-digit serial references, 10,000 SSCCs
            with pytest.raises(MintRefused) as err:
                await mint_ssccs(store, request(prefix=prefix, count=10_001), ACTOR)
            assert err.value.field == "count"
            full = await mint_ssccs(store, request(prefix=prefix, count=10_000, request_id="all"), ACTOR)
            assert full.sscc(9_999)[8:17] == "123459999"
            with pytest.raises(MintRefused):
                await mint_ssccs(store, request(prefix=prefix, count=1, request_id="one-more"), ACTOR)
            # a retry of the request that took the last references still answers
            assert (await mint_ssccs(store, request(prefix=prefix, count=10_000, request_id="all"), ACTOR)).batch == full.batch
    asyncio.run(go())


def _worker(args):
    url, worker, requests = args

    async def go():
        out = []
        async with await open_store(url) as store:
            for i in range(requests):
                got = await mint_ssccs(store, request(count=1 + (worker * 31 + i * 17) % 200, request_id=f"w{worker}-{i}"),
                                       ACTOR)
                out += got.ssccs()
        return out
    return asyncio.run(go())


def test_processes_minting_at_once_never_share_an_ssccs(store_url):
    with ProcessPoolExecutor(4) as pool:
        ssccs = [s for chunk in pool.map(_worker, [(store_url, w, 8) for w in range(4)]) for s in chunk]
    assert len(ssccs) == len(set(ssccs)) > 0


def _cli(tmp: Path, out: Path, count: int, request_id: str | None, *extra: str) -> list[str]:
    rid = ["--request-id", request_id] if request_id else []
    return [sys.executable, "-m", "serialink", "sscc", "mint", "--prefix", PREFIX, "--extension", "3", "--count",
            str(count), "--format", "csv", "--out", str(out), *rid, "--store", f"sqlite:///{tmp}/twin.db",
            "--stem", "https://res.example.com", *extra]


def test_sigkill_mid_write_then_retry_completes_identically_and_reissues_nothing(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_cli(tmp_path, out, 1_000_000, "crash-1"), cwd=ROOT, stdout=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        temps = list(out.glob(".ssccs.csv.tmp-*")) if out.exists() else []
        if temps and temps[0].stat().st_size > 1_000_000:
            break
        time.sleep(0.005)
    else:
        pytest.fail("the run never started writing")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "ssccs.csv").exists() and not (out / "manifest.json").exists(), "a killed run looks complete"
    retry = subprocess.run(_cli(tmp_path, out, 1_000_000, "crash-1"), cwd=ROOT, capture_output=True, text=True)
    assert retry.returncode == 0, retry.stderr
    assert not list(out.glob(".*tmp*")), "the retry removes the dead attempt's temporaries"
    clean = subprocess.run(_cli(tmp_path, tmp_path / "clean", 1_000_000, "crash-1"), cwd=ROOT, capture_output=True)
    assert clean.returncode == 0
    assert (out / "ssccs.csv").read_bytes() == (tmp_path / "clean" / "ssccs.csv").read_bytes()
    nxt = subprocess.run(_cli(tmp_path, tmp_path / "next", 10, "next-1"), cwd=ROOT, capture_output=True, text=True)
    assert nxt.returncode == 0, nxt.stderr
    dead, after = json.loads(retry.stdout), json.loads(nxt.stdout)
    assert int(after["first"][8:17]) > int(dead["last"][8:17]), "a new request reused SSCCs of the killed one"
    listed = subprocess.run([sys.executable, "-m", "serialink", "sscc", "list", "--prefix", PREFIX, "--extension", "3",
                             "--store", f"sqlite:///{tmp_path}/twin.db"], cwd=ROOT, capture_output=True, text=True)
    assert [json.loads(line)["request_id"] for line in listed.stdout.splitlines()] == ["crash-1", "next-1"]


@pytest.mark.parametrize(("flags", "field"), [
    (["--prefix", "12"], "prefix"), (["--prefix", "0200000"], "prefix"), (["--extension", "a"], "extension"),
    (["--extension", "12"], "extension"), (["--count", "-3"], "count"), (["--count", "2000000"], "count"),
    (["--format", "csv,pdf"], "format"), (["--request-id", "no spaces"], "request_id"),
])
def test_cli_wrong_input_is_one_line_naming_the_field(tmp_path, flags, field):
    options = {"--prefix": PREFIX, "--extension": "3", "--count": "5", "--format": "csv", "--out": str(tmp_path / "o"),
               "--store": f"sqlite:///{tmp_path}/twin.db", "--stem": "https://res.example.com"}
    options.update(zip(flags[::2], flags[1::2]))
    args = [a for pair in options.items() for a in pair]
    done = subprocess.run([sys.executable, "-m", "serialink", "sscc", "mint", *args], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"serialink sscc mint: {field}: "), done.stderr
    assert not (tmp_path / "twin.db").exists(), "refused before the store was opened"


def test_a_retried_run_rewrites_identical_files(tmp_path):
    async def go():
        async with await open_store(f"sqlite:///{tmp_path}/twin.db") as store:
            got = await mint_ssccs(store, request(count=50), ACTOR)
            one = produce(got, "https://res.example.com/", ("csv", "zpl"), tmp_path / "a")
            two = produce(await mint_ssccs(store, request(count=50), ACTOR), "https://res.example.com",
                          ("csv", "zpl"), tmp_path / "b")
            return got, one, two
    got, one, two = asyncio.run(go())
    assert one["files"] == two["files"] and one["first"] == got.sscc(0)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a" / "ssccs.csv").read_text())))
    assert rows[7] == {"sscc": got.sscc(7), "element_string": "^00" + got.sscc(7),
                       "dl_uri": "https://res.example.com/00/" + got.sscc(7)}


# -- the line API ------------------------------------------------------------------------------

@pytest.fixture
def api(tmp_path):
    async def make():
        settings = load_settings(env={}, data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path}/twin.db",
                                 key_dir=tmp_path / "keys", token_secret=SECRET.decode(), max_body_bytes=65536)
        services = await Services.open(settings)
        app = Starlette(routes=sscc_api.routes)
        problems.install(app)
        app.state.services = services
        return services, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    return make


def token(role="line", **scope):
    scope.setdefault("prefixes", [PREFIX])
    return {"Authorization": "Bearer " + TokenIssuer(SECRET).issue("line:site1/l7", role, ttl=600, **scope)}


def body(**kw):
    base = {"prefix": PREFIX, "extension": "3", "count": 20, "request_id": "api-1", "site": "site1", "line": "l7"}
    base.update(kw)
    return base


def test_the_api_mints_idempotently_and_serves_the_labels(api):
    async def go():
        services, client = await api()
        h = token(sites=["site1"], lines=["l7"])
        first = await client.post("/v1/ssccs", json=body(), headers=h)
        assert first.status_code == 201, first.text
        got = first.json()
        assert got["sscc_range"]["count"] == 20 and check_sscc(got["sscc_range"]["first"])
        root = services.current_rules.root
        csv_file = await client.get(got["links"]["files"]["ssccs.csv"], headers=h)
        rows = list(csv.DictReader(io.StringIO(csv_file.text)))
        assert len(rows) == 20 and rows[0]["dl_uri"] == f"{root}/00/{got['sscc_range']['first']}"
        zpl = await client.get(got["links"]["files"]["sscc-labels.zpl"], headers=h)
        assert zpl.text.count("^XA") == 20 and f"^FD(00){rows[-1]['sscc']}^FS" in zpl.text
        again = await client.post("/v1/ssccs", json=body(), headers=h)
        assert again.status_code == 200 and again.json()["sscc_range"]["first"] == got["sscc_range"]["first"]
        assert again.json()["manifest"] == got["manifest"]
        status = await client.get(f"/v1/ssccs/{got['sscc_range']['id']}", headers=h)
        assert status.status_code == 200 and status.json()["sscc_range"]["status"] == "committed"
        nxt = await client.post("/v1/ssccs", json=body(request_id="api-2", count=5), headers=h)
        assert int(nxt.json()["sscc_range"]["first"][8:17]) == 20
        await services.store.close()
    asyncio.run(go())


def test_the_api_refuses_bad_input_and_foreign_credentials(api):
    async def go():
        services, client = await api()
        h = token()
        for payload, status, field in [(body(prefix="12"), 422, "prefix"), (body(extension="x"), 422, "extension"),
                                       (body(count=0), 422, "count"), (body(count=1_000_001), 413, "count"),
                                       (body(formats="csv,gif"), 422, "formats"), (body(site="a b"), 422, "site")]:
            answer = await client.post("/v1/ssccs", json=payload, headers=h)
            assert answer.status_code == status, (payload, answer.text)
            assert answer.json()["error"]["field"] == field
        assert (await client.post("/v1/ssccs", json=body(count=3), headers=h)).status_code == 201
        conflict = await client.post("/v1/ssccs", json=body(count=4), headers=h)
        assert conflict.status_code == 409 and conflict.json()["error"]["field"] == "request_id"
        full = await client.post("/v1/ssccs", json=body(prefix="950601234567", count=10_001, request_id="x"),
                                 headers=token(prefixes=["950601234567"]))
        assert full.status_code == 422 and full.json()["error"]["field"] == "count"
        assert (await client.post("/v1/ssccs", json=body(request_id="y"))).status_code == 401
        other = await client.post("/v1/ssccs", json=body(request_id="y"), headers=token(prefixes=["4012345"]))
        assert other.status_code == 403
        gtin_only = await client.post("/v1/ssccs", json=body(request_id="y"), headers=token(prefixes=[],
                                                                                            gtins=["09506000134352"]))
        assert gtin_only.status_code == 403
        wrong_line = await client.post("/v1/ssccs", json=body(request_id="y"), headers=token(sites=["site1"],
                                                                                            lines=["l8"]))
        assert wrong_line.status_code == 403
        assert (await client.get("/v1/ssccs/09506000134352.default.0", headers=h)).status_code in (403, 404)
        await services.store.close()
    asyncio.run(go())


def test_minted_ssccs_have_the_check_digit_of_their_17_digits():
    for ext, ref in ((0, 0), (9, 999_999_999), (5, 123)):
        value = sscc_of(ext, PREFIX, ref)
        assert value[17] == str(compute_check_digit(value[:17])) and len(value) == 18
