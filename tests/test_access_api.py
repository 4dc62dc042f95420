"""Line keys under /v1, and what a bad credential gets: 401/403 problem+json on the APIs,
consumer routing on scans. The real app in-process, a real SQLite store, real key files."""

from __future__ import annotations

import os
import time

import pytest

from serialink import cli

GTIN = "09506000134352"
OTHER = "04012345000009"
UNIT = f"/01/{GTIN}/21/ABC123"
SERVICE = "https://service.example.com/"
PROBLEM = "application/problem+json"


def mint(n: int, **overrides) -> dict:
    body = {"gtin": GTIN, "count": 5, "profile": "default", "request_id": f"req-{n}", "site": "plant-1",
            "line": "L7", "formats": ["csv"]}
    return {**body, **overrides}


def bearer(credential: str) -> dict[str, str]:
    return {"authorization": f"Bearer {credential}"}


def add_key(resolver, headers, idem: str, **body):
    payload = {"site": "plant-1", "line": "L7", "gtins": [GTIN], **body}
    return resolver.client.post("/v1/lines", json=payload, headers={**headers, "idempotency-key": idem})


def refused(response, status: int, says: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM) and response.headers["cache-control"] == "no-store"
    problem = response.json()
    assert problem["status"] == status and says in problem["detail"], problem
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_manufacturer_makes_a_line_key_once_and_the_line_mints_with_it(resolver):
    mfr = resolver.auth("manufacturer", gtins=[GTIN])
    made = add_key(resolver, mfr, "make-1", subject="PLC at L7")
    assert made.status_code == 201 and made.headers["cache-control"] == "no-store", made.text
    key = made.json()["key"]
    assert key.startswith("slk_") and made.json()["state"] == "active" and "hash" not in made.json()
    again = add_key(resolver, mfr, "make-1", subject="PLC at L7")  # a lost answer, retried: the same key
    assert again.status_code == 200 and again.json()["key"] == key and again.headers["idempotent-replayed"] == "true"
    refused(add_key(resolver, mfr, "make-1", line="L8"), 409, "another scope")

    minted = resolver.client.post("/v1/batches", json=mint(1), headers=bearer(key))
    assert minted.status_code == 201, minted.text
    batch = minted.json()["batch"]
    assert (batch["site"], batch["line"]) == ("plant-1", "L7")
    assert resolver.client.get(f"/v1/batches/{batch['id']}", headers=bearer(key)).status_code == 200

    listed = resolver.client.get("/v1/lines", headers=mfr)
    assert listed.status_code == 200 and listed.headers["cache-control"] == "no-store"
    assert made.json()["id"] in {k["id"] for k in listed.json()["lines"]} and key not in listed.text
    assert "hash" not in listed.text
    assert "/v1/lines" in resolver.client.get("/openapi.json").json()["paths"]


def test_line_keys_stay_inside_their_site_line_and_products(resolver):
    key = add_key(resolver, resolver.auth("admin", all_products=True), "make-2", line="L9").json()["key"]
    refused(resolver.client.post("/v1/batches", json=mint(2, gtin=OTHER), headers=bearer(key)), 403, OTHER)
    refused(resolver.client.post("/v1/batches", json=mint(3, line="L7"), headers=bearer(key)), 403, "line 'L7'")
    unnamed = {k: v for k, v in mint(3).items() if k not in ("site", "line")}
    refused(resolver.client.post("/v1/batches", json=unnamed, headers=bearer(key)), 403,
            "name the site and line in the body: 'line:plant-1/L9' covers site plant-1 line L9")
    key_id = key[4:].split(".")[0]
    forged = f"slk_{key_id}.{'A' * 43}"  # the right id, another secret
    refused(resolver.client.post("/v1/batches", json=mint(4, line="L9"), headers=bearer(forged)), 401, "not known here")
    refused(resolver.client.post("/v1/batches", json=mint(5, line="L9"), headers=bearer("slk_nonsense")), 401,
            "not a line key")
    refused(resolver.client.get(f"/v1/links/{GTIN}", headers=bearer(key)), 403, "line operations only")
    refused(add_key(resolver, bearer(key), "make-3"), 403, "may not do this")  # a line cannot make keys

    other_brand = resolver.auth("manufacturer", gtins=[OTHER])
    refused(add_key(resolver, other_brand, "make-4"), 403, "outside your own scope")
    assert key_id not in resolver.client.get("/v1/lines", headers=other_brand).text
    refused(resolver.client.post(f"/v1/lines/{key_id}/revoke", json={"reason": "x"},
                                 headers={**other_brand, "idempotency-key": "r1"}), 404, "no line key")


def test_rotation_keeps_the_old_key_for_the_overlap_and_revocation_stops_it_at_once(resolver):
    mfr = resolver.auth("manufacturer", gtins=[GTIN])
    first = add_key(resolver, mfr, "make-5", line="L5").json()
    rotate = {**mfr, "idempotency-key": "rot-1"}
    second = resolver.client.post(f"/v1/lines/{first['id']}/rotate", json={"overlap": "1h"}, headers=rotate)
    assert second.status_code == 201 and second.json()["replaces"] == first["id"], second.text
    retry = resolver.client.post(f"/v1/lines/{first['id']}/rotate", json={"overlap": "1h"}, headers=rotate)
    assert retry.status_code == 200 and retry.json()["key"] == second.json()["key"]
    for n, key in enumerate((first["key"], second.json()["key"])):  # both work during the overlap
        assert resolver.client.post("/v1/batches", json=mint(10 + n, line="L5"), headers=bearer(key)).status_code == 201
    third = resolver.client.post(f"/v1/lines/{second.json()['id']}/rotate", json={"overlap": 0},
                                 headers={**mfr, "idempotency-key": "rot-2"})
    assert third.status_code == 201
    refused(resolver.client.post("/v1/batches", json=mint(12, line="L5"), headers=bearer(second.json()["key"])),
            401, "rotated")
    refused(resolver.client.post(f"/v1/lines/{first['id']}/revoke", json={}, headers=mfr), 422, "say why")
    revoked = resolver.client.post(f"/v1/lines/{third.json()['id']}/revoke", json={"reason": "PLC stolen"}, headers=mfr)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    refused(resolver.client.post("/v1/batches", json=mint(13, line="L5"), headers=bearer(third.json()["key"])),
            401, "revoked")
    refused(resolver.client.post(f"/v1/lines/{first['id']}/rotate", json={"overlap": "1 week"},
                                 headers={**mfr, "idempotency-key": "rot-3"}), 422, "expected e.g.")


@pytest.fixture(scope="module")
def credentials(resolver):
    """Every kind of bad credential, made the way they arise in practice (and a unit to scan)."""
    resolver.unit(GTIN, "ABC123")
    expired = resolver.services.issuer.issue("t", "manufacturer", ttl=1, gtins=[GTIN], now=int(time.time()) - 60)
    issued = resolver.client.post("/v1/tokens", json={"role": "technician", "principal": "tech:bo", "gtins": [GTIN]},
                                  headers={**resolver.auth("manufacturer", gtins=[GTIN]), "idempotency-key": "tok-1"})
    revoked = issued.json()["token"]
    gone = resolver.client.post(f"/v1/tokens/{issued.json()['token_id']}/revoke", json={"reason": "visit over"},
                                headers={**bearer(revoked), "idempotency-key": "rev-1"})
    assert gone.status_code == 200, gone.text
    mfr = resolver.auth("manufacturer", gtins=[GTIN])
    made = add_key(resolver, mfr, "make-9", line="L3").json()
    resolver.client.post(f"/v1/lines/{made['id']}/revoke", json={"reason": "x"}, headers=mfr)
    good = resolver.token("technician", gtins=[GTIN])
    return {"forged": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"), "expired": expired,
            "revoked": revoked, "revoked line key": made["key"], "garbage": "not-a-token",
            "other product": resolver.token("technician", gtins=[OTHER]), "technician": good}


@pytest.mark.parametrize("kind, status, says", [
    ("forged", 401, "invalid token"), ("expired", 401, "expired"), ("revoked", 401, "revoked"),
    ("revoked line key", 401, "revoked"), ("garbage", 401, "invalid token"),
    ("other product", 403, "may not do this"), ("technician", 403, "may not do this"),
])
def test_bad_credentials_on_the_api_get_a_plain_401_or_403(resolver, credentials, kind, status, says):
    refused(resolver.client.post("/v1/batches", json=mint(50), headers=bearer(credentials[kind])), status, says)


def test_no_credential_on_the_api_is_a_401_that_says_what_to_send(resolver):
    refused(resolver.client.post("/v1/batches", json=mint(51)), 401, "a token is required")


@pytest.mark.parametrize("kind", ["forged", "expired", "revoked", "revoked line key", "garbage", "other product"])
def test_bad_credentials_on_scans_route_as_a_consumer_and_are_never_cached(resolver, credentials, kind):
    for headers in (bearer(credentials[kind]), {"cookie": f"serialink_token={credentials[kind]}"}):
        r = resolver.get(UNIT, headers=headers)
        assert r.status_code == 307 and not r.headers["location"].startswith(SERVICE), (kind, r.headers)
        assert r.headers["cache-control"] == "private, no-store"
    assert resolver.get(UNIT, headers=bearer(credentials["technician"])).headers["location"].startswith(SERVICE)


def test_a_token_from_the_cli_opens_the_api_until_the_cli_revokes_it(resolver, monkeypatch, capsys):
    monkeypatch.setenv("SERIALINK_TOKEN_SECRET", resolver.services.settings.token_secret)
    for name in [n for n in os.environ if n.startswith("SERIALINK_") and n != "SERIALINK_TOKEN_SECRET"]:
        monkeypatch.delenv(name)
    store = ["--store", resolver.services.settings.store_url]
    assert cli.main(["tokens", "issue", "--role", "manufacturer", "--gtin", GTIN, *store]) == 0
    token = capsys.readouterr().out.strip()
    assert resolver.client.get(f"/v1/audit/{GTIN}", headers=bearer(token)).status_code == 200
    assert cli.main(["lines", "add", "--site", "plant-2", "--line", "L1", "--gtin", GTIN, *store]) == 0
    key = capsys.readouterr().out.strip()
    assert resolver.client.post("/v1/batches", json=mint(60, site="plant-2", line="L1"),
                                headers=bearer(key)).status_code == 201
    token_id = next(line.split()[0] for line in _listing(store, capsys) if line.split()[1] == "manufacturer")
    assert cli.main(["tokens", "revoke", token_id, *store]) == 0
    time.sleep(1.1)  # every worker's copy of the revocation list is at most a second old
    refused(resolver.client.get(f"/v1/audit/{GTIN}", headers=bearer(token)), 401, "revoked")


def _listing(store, capsys) -> list[str]:
    assert cli.main(["tokens", "list", *store]) == 0
    return capsys.readouterr().out.splitlines()[1:]
