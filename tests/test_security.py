"""The threat model's claims (docs/threat-model.md), each as a test against the real app.

T1 no open redirect · T2 no enumeration of units or owners by anonymous callers · T3 tokens
expire, are signed and scoped · T4 secrets never reach a log line · T5 request size limits ·
T6 the OpenAPI-described API never answers 5xx to generated input (schemathesis).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from tests.fault_harness import GTIN, SECRET, Serve, token
from tests.resolver_fixtures import running_resolver

REGISTERED, FRESH = "SECREG001", "SECNEW001"
LINKS_BODY = {"linksets": [{"anchor": f"https://id.example.com/01/{GTIN}/21/NOLINKS", "links": []}]}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_resolver(tmp_path_factory.mktemp("security")) as r:
        r.unit(GTIN, REGISTERED, "sell", "register", sell={"purchase_date": "2026-01-02"},
               register={"owner": "owner-alice-private"})
        r.unit(GTIN, "SECREG002", "sell", "register", sell={"purchase_date": "2026-01-02"},
               register={"owner": "owner-bob-private"})
        yield r


def allowed_host(location: str) -> bool:
    host = urlsplit(location).hostname or ""
    return host == "example.com" or host.endswith(".example.com")


# -- T1: no open redirect ------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    f"/01/{GTIN}?redirect=https://evil.test/",
    f"/01/{GTIN}?linkType=https://evil.test/x",
    f"/01/{GTIN}?linkType=gs1:pip&target=//evil.test",
    f"/01/{GTIN}/21/X?next=https%3A%2F%2Fevil.test",
    f"//evil.test/01/{GTIN}",
    f"/01/{GTIN}?context=https://evil.test",
    f"/01/{GTIN}/21/%2F%2Fevil.test",
])
def test_t1_a_scan_never_redirects_off_the_configured_hosts(app, path):
    r = app.get(path)
    if r.status_code in (301, 302, 303, 307, 308):
        assert allowed_host(r.headers["location"]), r.headers["location"]
        assert not r.headers["location"].startswith("//")
    else:
        assert r.status_code in (200, 300, 400, 404), r.status_code


def test_t1_link_data_cannot_point_outside_the_allowed_hosts(app):
    body = {"linksets": [{"anchor": f"https://id.example.com/01/{GTIN}",
                          "links": [{"type": "gs1:pip", "href": "https://evil.test/phish", "title": "x"}]}]}
    r = app.client.put("/v1/links", json=body, headers=app.auth("manufacturer", gtins=[GTIN]))
    assert r.status_code in (400, 422), r.text
    assert allowed_host(app.get(f"/01/{GTIN}").headers["location"])


# -- T2: no enumeration -------------------------------------------------------------------

def _shape(r: httpx.Response, serial: str) -> tuple:
    """What an anonymous caller can compare: status, header names and values (but the
    request id), the body — with the scanned serial itself taken out."""
    headers = sorted((k, v.replace(serial, "S")) for k, v in r.headers.items() if k != "x-request-id")
    return r.status_code, headers, r.content.replace(serial.encode(), b"S")


def test_t2_two_registered_units_look_identical_to_anonymous_callers(app):
    a = app.get(f"/01/{GTIN}/21/{REGISTERED}")
    b = app.get(f"/01/{GTIN}/21/SECREG002")
    assert _shape(a, REGISTERED) == _shape(b, "SECREG002"), "who owns a unit must not change what a consumer sees"
    for accept in ("application/linkset+json", "text/html"):
        la = app.get(f"/01/{GTIN}/21/{REGISTERED}", headers={"accept": accept})
        lb = app.get(f"/01/{GTIN}/21/SECREG002", headers={"accept": accept})
        text = la.text + lb.text
        assert "owner-alice-private" not in text and "owner-bob-private" not in text
        assert la.content.replace(REGISTERED.encode(), b"S") == lb.content.replace(b"SECREG002", b"S")


def test_t2_the_scan_reveals_only_what_the_rules_route_on(app):
    """Issued-and-unregistered, registered and never-issued serials differ only in the link
    the rules pick for them (register, product page, verification) — that is the rules'
    intent — never in status, headers or a body that would say more."""
    answers = {s: app.get(f"/01/{GTIN}/21/{s}") for s in (FRESH, REGISTERED, "NEVERISSUED9")}
    assert {r.status_code for r in answers.values()} == {307}
    assert len({tuple(sorted(k for k in r.headers if k != "x-request-id")) for r in answers.values()}) == 1
    assert {r.content for r in answers.values()} == {b""}
    assert all(allowed_host(r.headers["location"]) for r in answers.values())


@pytest.mark.parametrize("path", ["/v1/batches/{gtin}.default.0", "/v1/batches/{gtin}.default.999999999"])
def test_t2_apis_authenticate_before_saying_whether_something_exists(app, path):
    path = path.format(gtin=GTIN)
    assert app.get(path).status_code == 401
    other = app.auth("manufacturer", gtins=["04012345000009"])
    assert app.get(path, headers=other).status_code == 403


# -- T3: tokens -------------------------------------------------------------------------

def test_t3_expired_forged_and_unsigned_tokens_are_refused_by_apis_and_ignored_by_scans(app):
    secret = app.services.settings.secret()
    expired = app.services.issuer.issue("tech:old", "technician", ttl=1, gtins=[GTIN])
    forged = jwt.encode({**jwt.decode(app.token("manufacturer", gtins=[GTIN]), options={"verify_signature": False})},
                        b"not-the-secret-" * 3, algorithm="HS256")
    unsigned = jwt.encode(jwt.decode(app.token("admin", all_products=True), options={"verify_signature": False}),
                          None, algorithm="none")
    time.sleep(1.1)
    body = LINKS_BODY
    for bad in (expired, forged, unsigned, "garbage", secret.decode()):
        r = app.client.put("/v1/links", json=body, headers={"authorization": f"Bearer {bad}"})
        assert r.status_code == 401, (bad[:20], r.status_code)
        scan = app.get(f"/01/{GTIN}/21/{FRESH}", headers={"authorization": f"Bearer {bad}"})
        assert scan.status_code == 307 and "service.example.com" not in scan.headers["location"]


def test_t3_a_token_is_scoped_to_its_products_and_role(app):
    scoped = app.auth("technician", gtins=["04012345000009"])
    scan = app.get(f"/01/{GTIN}/21/{REGISTERED}", headers=scoped)
    assert "service.example.com" not in scan.headers["location"], "out-of-scope token routed as technician"
    inside = app.get(f"/01/{GTIN}/21/{REGISTERED}", headers=app.auth("technician", gtins=[GTIN]))
    assert inside.headers["location"].startswith("https://service.example.com/")
    body = LINKS_BODY
    assert app.client.put("/v1/links", json=body, headers=app.auth("technician", gtins=[GTIN])).status_code == 403
    assert app.client.put("/v1/links", json=body,
                          headers=app.auth("manufacturer", gtins=["04012345000009"])).status_code == 403
    line = app.auth("line", gtins=[GTIN], sites=["s1"], lines=["l1"])
    batch = {"gtin": GTIN, "count": 10, "profile": "default", "request_id": "sec-1", "site": "s2", "line": "l1"}
    assert app.client.post("/v1/batches", json=batch, headers=line).status_code == 403


def test_t3_tokens_cannot_outlive_the_maximum_lifetime(app):
    from resolver.access.tokens import MAX_TTL

    with pytest.raises(ValueError, match="ttl must be"):
        app.services.issuer.issue("x", "technician", ttl=MAX_TTL + 1, gtins=[GTIN])


# -- T4: secrets never logged -------------------------------------------------------------

def test_t4_secrets_never_reach_a_log_line(tmp_path: Path, redis_factory):
    redis = redis_factory()
    password = "s3cr3t-redis-pass-" + "q" * 10
    redis.cli("CONFIG", "SET", "requirepass", password)
    url = f"redis://:{password}@127.0.0.1:{redis.port}/0"
    serve = Serve(tmp_path, url, env={"SERIALINK_LOG_LEVEL": "debug"}).start()
    tokens = [token("technician"), token("line", sites=["s1"], lines=["l1"]), "eyJhbGciOiJIUzI1NiJ9.eyJmYWtlIjoxfQ.sig"]
    try:
        for t in tokens:
            serve.client.get(f"/01/{GTIN}/21/X1", headers={"authorization": f"Bearer {t}"})
            serve.client.get(f"/01/{GTIN}?token={t}", headers={"cookie": f"serialink_token={t}"})
            serve.client.post("/v1/batches", json={"gtin": GTIN, "count": "x"}, headers={"authorization": f"Bearer {t}"})
            serve.client.get("/v1/batches/nope", headers={"authorization": f"Bearer {t}"})
        redis.kill()  # errors that name the store URL
        for t in tokens:
            serve.client.post("/v1/batches", json={"gtin": GTIN, "count": 5, "profile": "default", "request_id": "r",
                                                   "site": "s1", "line": "l1"},
                              headers={"authorization": f"Bearer {tokens[1]}"})
            serve.client.get(f"/01/{GTIN}/21/Y{t[-5:]}")
        time.sleep(1)
        serve.stop()
        log = serve.log_text()
        assert "store unavailable" in log or "unavailable" in log, "the fault was logged"
        for secret in [password, SECRET, *tokens]:
            assert secret not in log, f"a secret reached the log: {secret[:12]}…"
        assert "eyJ" not in log
    finally:
        serve.close()


def test_t4_config_show_and_store_errors_mask_the_password():
    from twin.store import redact

    assert "hunter2" not in redact("redis://:hunter2@db:6379/0")
    env = {"SERIALINK_STORE_URL": "redis+cluster://u:hunter2@h1:7000,h2:7001", "SERIALINK_TOKEN_SECRET": "z" * 40}
    out = subprocess.run([sys.executable, "-m", "serialink", "config", "show"], capture_output=True, text=True,
                         env={**__import__("os").environ, **env}, check=True).stdout
    assert "hunter2" not in out and "z" * 40 not in out


# -- T5: request size limits --------------------------------------------------------------

def test_t5_bodies_over_the_limit_are_refused_with_413(app):
    limit = app.services.settings.max_body_bytes
    headers = app.auth("line", gtins=[GTIN], sites=["s1"], lines=["l1"])
    big = b'{"gtin": "' + b"9" * (limit + 10) + b'"}'
    r = app.client.post("/v1/batches", content=big, headers={**headers, "content-type": "application/json"})
    assert r.status_code == 413

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = app.client.post("/v1/batches", content=chunks(), headers={**headers, "content-type": "application/json"})
    assert r.status_code == 413
    r = app.client.put("/v1/links", content=big, headers={**app.auth("manufacturer", gtins=[GTIN]),
                                                         "content-type": "application/json"})
    assert r.status_code == 413


def test_t5_overlong_scan_uris_are_refused(app):
    assert app.get(f"/01/{GTIN}?x=" + "a" * 9000).status_code == 414


# -- T6: schemathesis against the OpenAPI spec --------------------------------------------

@pytest.mark.slow
def test_t6_the_api_answers_generated_requests_without_5xx(tmp_path: Path):
    cli = shutil.which("schemathesis") or shutil.which("st")
    assert cli, "schemathesis is a test dependency"
    serve = Serve(tmp_path, f"sqlite:///{tmp_path / 'twin.db'}").start()
    try:
        if serve.client.get("/openapi.json").status_code != 200:
            pytest.skip("this build serves no /openapi.json (the journeys API publishes it)")
        admin = token("admin", all_products=True)
        for auth in ([], ["-H", f"Authorization: Bearer {admin}"]):
            run = subprocess.run([cli, "run", f"{serve.base}/openapi.json", "--checks", "not_a_server_error",
                                  "--max-examples", "15", "--request-timeout", "10", *auth],
                                 capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    finally:
        serve.close()
