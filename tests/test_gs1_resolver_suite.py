"""GS1's own resolver test suite, run headless against `serialink serve`.

Not a re-implementation: GS1's JavaScript (gs1/GS1DL-resolver-testsuite, unmodified, from
../shared/gs1/resolver-testsuite) runs in Debian's Chromium through Playwright, with GS1's
``tester.php`` helper under Debian's PHP (php-cli + php-curl), against `serialink serve`
(Granian) over HTTPS with a certificate from a test CA made here (trustme) that PHP trusts.
``resolver.root`` is the served address, so linkset anchors equal the URIs under test.

The suite's four outside addresses are answered in the browser (Playwright routes) from the
shared reference files: tester.php → the local PHP server (CORS header added, as GS1's host
does), the description-file and linkset schemas, and the link-type list keyed by name. Any
other outside request is refused and fails the test. Ajv, which the suite expects as
``window.ajv7``, comes from the npm package ajv-dist (tests/gs1_suite, installed by .ci/run).

Three URIs: a GTIN, a lot, and a serial minted here (a commissioned unit, which the example
rules send to registration in the reader's language: the case GS1's suite failed before
linksets carried each level's own gs1:defaultLinkMulti). Every check in ``resultsArray``
must pass; a ``warn`` passes only for a known fault of the suite (KNOWN_SUITE_FAULTS, each
with its reason, and each cross-checked here against the resolver directly).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from settings import default_config_dir
from tests.conformance import SHARED_GS1
from tests.redis_fixtures import free_port

REPO = Path(__file__).resolve().parents[1]
SUITE = SHARED_GS1 / "resolver-testsuite"
AJV = REPO / "tests" / "gs1_suite" / "node_modules" / "ajv-dist" / "dist" / "ajv7.bundle.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GTIN = "09506000134352"
LOT = "GS1LOT7"
SECRET = "gs1-suite-" + "s" * 40
TESTER = "https://philarcher.org/gs1/tester.php"
DESCRIPTION_SCHEMA = "https://ref.gs1.org/standards/resolver/description-file-schema"
LINKSET_SCHEMA = "https://gs1.github.io/linkset/gs1-linkset-schema.json"
LINK_TYPES = "https://ref.gs1.org/voc/data/linktypes"

# check id → why a `warn` there is the suite's fault, not the resolver's
KNOWN_SUITE_FAULTS = {
    "linkOnRedirect": "the suite reads the Link header from its OPTIONS (CORS) request, not from a redirect; "
                      "every 307 carries Link rel=\"linkset\" (checked here directly)",
}
# checks every run must report: a harness that silently ran nothing must not pass
CORE_CHECKS = {"isURL", "isHttps", "plausibleDL", "validDL", "basicWalkUp", "tlsOK", "rdFile", "httpVersion",
               "corsCheck", "methodsCheck", "linkOnRedirect", "legacyLinkHeaders", "reportWith400", "noErrorWith200",
               "trailingSlash", "qsPassedOn", "ltLinksetNoRedirect", "ltAcceptHeader", "validLinkset",
               "linksetJsonldCheck", "declaredContentType", "defaultLinkExists", "singleDefaulLink", "defaultTarget",
               "linkTypesDefined", "specificLinkTypeNotFound"}
HOST_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>GS1 resolver test suite</title>
<link rel="stylesheet" href="GS1DigitalLinkResolverTestSuiteStyles.css">
<script src="ajv7.bundle.js"></script>
<script src="GS1DigitalLinkToolkit.js"></script>
<script src="GS1DigitalLinkResolverTestSuite.js"></script>
</head><body><label>GS1 Digital Link URI <input id="testUri" type="url"></label>
<img id="rotatingcircle" src="rotatingcircle.gif" alt="" style="visibility:hidden">
<div id="gs1ResolverTests"></div></body></html>"""


def _require_tools() -> None:
    missing = []
    if not SUITE.is_dir():
        missing.append(f"GS1's suite at {SUITE} (../shared/gs1/resolver-testsuite beside the repository)")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        missing.append("Chromium (apt-get install -y chromium)")
    php = shutil.which("php")
    if php is None:
        missing.append("PHP (apt-get install -y php-cli php-curl)")
    elif "curl" not in subprocess.run([php, "-m"], capture_output=True, text=True).stdout.split():
        missing.append("PHP's curl extension (apt-get install -y php-curl)")
    if not AJV.exists():
        missing.append(f"Ajv at {AJV} (npm ci --prefix tests/gs1_suite)")
    if missing:
        pytest.fail("GS1's resolver suite needs: " + "; ".join(missing), pytrace=False)


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path, verify) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url, timeout=1, verify=verify).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{url} did not come up:\n{log.read_text()}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The test CA, `serialink serve` over TLS with a minted unit, and tester.php under PHP."""
    import trustme

    _require_tools()
    tmp = tmp_path_factory.mktemp("gs1suite")
    ca = trustme.CA()
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    leaf.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))

    port = free_port()
    root = f"https://127.0.0.1:{port}"
    rules = tmp / "rules.yaml"
    rules.write_text((default_config_dir() / "rules.yaml").read_text().replace("https://id.example.com", root))
    store = f"sqlite:///{tmp / 'var' / 'serialink.db'}"
    env = dict(os.environ, SERIALINK_TOKEN_SECRET=SECRET, SERIALINK_KEY_DIR=str(tmp / "keys"),
               SERIALINK_DATA_DIR=str(tmp / "var"), SERIALINK_LOG_LEVEL="warning")
    minted = subprocess.run([sys.executable, "-m", "serialink", "mint", "--gtin", GTIN, "--count", "1", "--profile",
                             "default", "--format", "jsonl", "--out", str(tmp / "mint"), "--request-id", "gs1-suite-1",
                             "--lot", LOT, "--store", store, "--no-progress"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert minted.returncode == 0, minted.stderr
    serial = next(json.loads(line)["serial"] for path in (tmp / "mint").glob("*.jsonl") for line in path.open())

    server_log, php_log = tmp / "server.log", tmp / "php.log"
    server = subprocess.Popen([sys.executable, "-m", "serialink", "serve", "--port", str(port), "--data-dir",
                               str(tmp / "var"), "--rules", str(rules), "--store", store, "--ssl-cert", str(cert_file),
                               "--ssl-key", str(key_file)],
                              env=env, stdout=server_log.open("w"), stderr=subprocess.STDOUT)
    php_port = free_port()
    php = subprocess.Popen([shutil.which("php") or "php", "-d", f"curl.cainfo={ca_file}", "-d", f"openssl.cafile={ca_file}",
                            "-S", f"127.0.0.1:{php_port}", "-t", str(SUITE)],
                           env=dict(os.environ, PHP_CLI_SERVER_WORKERS="2"), stdout=php_log.open("w"),
                           stderr=subprocess.STDOUT, cwd=tmp)
    try:
        _wait_until_up(f"{root}/healthz", server, server_log, ssl.create_default_context(cafile=str(ca_file)))
        _wait_until_up(f"http://127.0.0.1:{php_port}/LICENSE", php, php_log, False)
        yield {"root": root, "php": f"http://127.0.0.1:{php_port}", "ca": str(ca_file),
               "uris": {"gtin": f"{root}/01/{GTIN}", "lot": f"{root}/01/{GTIN}/10/{LOT}",
                        "serial": f"{root}/01/{GTIN}/21/{serial}"}}
    finally:
        _stop(php)
        _stop(server)


def _link_types() -> dict:
    """GS1's link-type list as the suite reads it: an object keyed by link-type name."""
    data = json.loads((SHARED_GS1 / "webvoc" / "linktypes-v1.16.json").read_text())
    return {entry["curie"].removeprefix("gs1:"): entry for entry in data["link_types"]}


def run_suite(browser, stack: dict, uri: str) -> tuple[list[dict], list[str], list[str]]:
    """GS1's testDL(uri) in a fresh page: its resultsArray, any outside request it tried, its console."""
    php = stack["php"]
    outside: list[str] = []
    console: list[str] = []
    answers = {
        DESCRIPTION_SCHEMA: (SHARED_GS1 / "resolver" / "description-file-schema-1.2.0.json").read_bytes(),
        LINKSET_SCHEMA: (SHARED_GS1 / "resolver" / "gs1-linkset-schema.json").read_bytes(),
        LINK_TYPES: json.dumps(_link_types()).encode(),
    }
    cors = {"access-control-allow-origin": "*"}

    def route(route) -> None:
        url = route.request.url
        if url == f"{php}/index.html":
            route.fulfill(status=200, content_type="text/html", body=HOST_PAGE)
        elif url == f"{php}/ajv7.bundle.js":
            route.fulfill(status=200, content_type="text/javascript", body=AJV.read_bytes())
        elif url.startswith((php + "/", stack["root"] + "/")) or url == stack["root"]:
            route.continue_()  # the suite's own files (PHP serves the shared copy) and the resolver
        elif url.startswith(TESTER + "?"):
            # GS1's host answers tester.php with CORS; the same script, run here under PHP
            r = httpx.get(f"{php}/tester.php?{url.split('?', 1)[1]}", timeout=60)
            route.fulfill(status=r.status_code, body=r.content,
                          headers={"content-type": r.headers.get("content-type", "application/json"), **cors})
        elif url in answers:
            route.fulfill(status=200, body=answers[url], headers={"content-type": "application/json", **cors})
        else:
            outside.append(url)
            route.abort()

    # the test CA is the resolver's; Chromium asks before a page reaches a loopback address: allowed here
    context = browser.new_context(ignore_https_errors=True, permissions=["local-network-access"])
    try:
        context.route("**/*", route)
        page = context.new_page()
        page.on("console", lambda m: console.append(m.text[:300]))
        page.goto(f"{php}/index.html")
        page.evaluate("uri => testDL(uri)", uri)
        # tlsOK and rdFile run unawaited inside testDL: give them until they settle
        try:
            page.wait_for_function("""() => ['tlsOK', 'rdFile'].every(
                id => resultsArray.some(r => r.id === id && r.status !== 'fail'))""", timeout=10_000)
        except Exception:
            pass  # read what there is: a check still failing then is reported as such
        results = page.evaluate("() => resultsArray.map(r => ({id: r.id, status: r.status, msg: r.msg}))")
    finally:
        context.close()
    return results, outside, console


def test_gs1_resolver_test_suite_on_gtin_lot_and_serial(stack, conformance):
    from playwright.sync_api import sync_playwright

    runs: dict[str, list[dict]] = {}
    consoles: dict[str, list[str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for label, uri in stack["uris"].items():
                results, outside, consoles[label] = run_suite(browser, stack, uri)
                assert not outside, f"the suite tried outside addresses not answered locally: {outside}"
                runs[label] = results
        finally:
            browser.close()

    problems = []
    for label, results in runs.items():
        seen = {r["id"] for r in results}
        missing = CORE_CHECKS - seen
        if missing:
            problems.append(f"{label}: checks never reported: {sorted(missing)}")
        for r in results:
            status = r["status"]
            if status == "warn" and r["id"] in KNOWN_SUITE_FAULTS:
                status = "known"
            conformance.record_suite(label, r["id"], status)
            if status not in ("pass", "known"):
                problems.append(f"{label} ({stack['uris'][label]}): {r['id']} {r['status']}: {r['msg']}")
        if problems and problems[-1].startswith(label):
            problems.extend(f"  console: {line}" for line in consoles[label][-15:])
    conformance.suite_faults.update(KNOWN_SUITE_FAULTS)

    # the known fault must really be the suite's: every redirect carries the linkset link
    for label, uri in stack["uris"].items():
        r = httpx.get(uri, verify=ssl.create_default_context(cafile=stack["ca"]), follow_redirects=False, timeout=10)
        assert r.status_code == 307 and 'rel="linkset"' in r.headers["link"], (label, r.status_code, r.headers)
    assert not problems, "GS1's resolver test suite:\n" + "\n".join(problems)
