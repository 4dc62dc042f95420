"""The authorization matrix: every role × every /v1 twin endpoint, allowed or refused as designed.

Each cell sends a real request through the app. "Allowed" means the credential was
accepted (any answer but 401/403 — the request may still be refused on its merits, say a
409 for an illegal transition); "refused" means 401 (no or unusable credential) or 403
(valid, but not this role, product or unit), and then nothing was written: the unit's
version and the GTIN's audit trail are unchanged.
"""

from __future__ import annotations

import time

import pytest

from tests.test_journeys import GTIN, OUTSIDER_GTIN, bearer, key, mint_units, register, unit_path

ROLES = ("anonymous", "owner", "other_owner", "installer", "technician", "visit_other_unit", "regulator",
         "manufacturer", "manufacturer_elsewhere", "line", "admin", "forged", "expired")

#: endpoint -> roles whose credential it accepts ("public" endpoints accept everyone)
ALL = set(ROLES) - {"forged", "expired"}
ALLOWED: dict[str, set[str]] = {
    "read unit": {"anonymous", "owner", "installer", "technician", "regulator", "manufacturer", "admin"},
    "service event": {"installer", "technician", "manufacturer", "admin"},
    "stolen event": {"owner", "manufacturer", "admin"},
    "ship event": {"manufacturer", "admin"},
    "register": ALL | {"forged", "expired"},  # public: tokens are not read
    "confirm": ALL | {"forged", "expired"},
    "claim": ALL | {"forged", "expired"},
    "offer transfer": {"owner"},
    "cancel transfer": {"owner"},
    "unit epcis": {"regulator", "manufacturer", "admin"},
    "dpp": {"anonymous", "owner", "installer", "technician", "regulator", "manufacturer", "admin"},  # role-scoped
    "batch epcis": {"regulator", "manufacturer", "admin"},
    "recall": {"manufacturer", "admin"},
    "list recalls": {"regulator", "manufacturer", "admin"},
    "lift recall": {"manufacturer", "admin"},
    "issue token": {"manufacturer", "admin"},
    "revoke token": {"manufacturer", "admin"},  # the issuer (test:manufacturer) and admins
    "audit": {"manufacturer", "admin"},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One app, a registered unit, a second unit, a recall and a token to act on."""
    from tests.resolver_fixtures import running_resolver

    limits = "register=1000/60,register-unit=1000/60,confirm=1000/60,claim=1000/60,claim-unit=1000/60"
    with running_resolver(tmp_path_factory.mktemp("authz"), rate_limits=limits) as r:
        r.client.get("/healthz")
        serials = mint_units(r, 4, "LA1", f"authz-{time.time_ns()}")
        owner = register(r, serials[0])
        other = register(r, serials[1], name="Other", contact="other@example.com")
        issuer = r.services.issuer
        now = int(time.time())
        tokens = {
            "owner": owner["token"], "other_owner": other["token"],
            "installer": r.token("installer", gtins=[GTIN]), "technician": r.token("technician", gtins=[GTIN]),
            "visit_other_unit": r.token("technician", gtins=[GTIN], unit=(GTIN, serials[2])),
            "regulator": r.token("regulator", gtins=[GTIN]), "manufacturer": r.token("manufacturer", gtins=[GTIN]),
            "manufacturer_elsewhere": issuer.issue("test:other-brand", "manufacturer", ttl=3600,
                                                   gtins=[OUTSIDER_GTIN]),
            "line": r.token("line", gtins=[GTIN]), "admin": r.token("admin", all_products=True),
            "forged": issuer.issue("x", "admin", ttl=60, all_products=True)[:-4] + "AAAA",
            "expired": issuer.issue("x", "admin", ttl=1, all_products=True, now=now - 100),
        }
        manufacturer = bearer(tokens["manufacturer"])
        recall = r.client.post("/v1/recalls", headers={**manufacturer, **key()},
                               json={"gtin": GTIN, "serial": serials[3], "reason": "matrix"}).json()
        yield {"r": r, "serial": serials[0], "spare": serials[2], "tokens": tokens, "recall": recall["id"],
               "batch": r.client.get(unit_path(serials[0]), headers=manufacturer).json()["batch"]}


def requests(world, role: str):
    """(endpoint, method, path, json body) for one role's attempt."""
    s, spare = world["serial"], world["spare"]
    pending = world.get("pending", "nosuchpending00")
    issued = world["r"].client.post("/v1/tokens", headers={**bearer(world["tokens"]["manufacturer"]), **key()},
                                    json={"role": "technician", "principal": "t", "gtins": [GTIN], "ttl": 600})
    token_id = issued.json()["token_id"]
    yield "read unit", "GET", unit_path(s), None
    yield "service event", "POST", unit_path(s, "/events"), {"type": "service", "data": {"summary": f"by {role}"}}
    yield "stolen event", "POST", unit_path(s, "/events"), {"type": "report_stolen"}
    yield "ship event", "POST", unit_path(spare, "/events"), {"type": "ship", "data": {"to": "DC"}}
    yield "register", "POST", unit_path(spare, "/registration"), {"name": "N", "contact": "n@example.com",
                                                                  "purchase_date": "2025-01-01"}
    yield "confirm", "POST", unit_path(spare, "/registration/confirm"), {"confirmation": pending, "code": "0000-0000"}
    yield "claim", "POST", unit_path(s, "/transfer/claim"), {"code": "0000-0000-0000-0000", "name": "N",
                                                            "contact": "n@example.com"}
    yield "offer transfer", "POST", unit_path(s, "/transfer"), None
    yield "cancel transfer", "DELETE", unit_path(s, "/transfer"), None
    yield "unit epcis", "GET", unit_path(s, "/epcis"), None
    yield "dpp", "GET", unit_path(s, "/dpp"), None
    yield "batch epcis", "GET", f"/v1/batches/{world['batch']}/epcis", None
    yield "recall", "POST", "/v1/recalls", {"gtin": GTIN, "serial": spare, "reason": f"by {role}"}
    yield "list recalls", "GET", f"/v1/recalls/{GTIN}", None
    yield "lift recall", "POST", f"/v1/recalls/{GTIN}/{world['recall']}/lift", {"reason": f"by {role}"}
    yield "issue token", "POST", "/v1/tokens", {"role": "technician", "principal": "t", "gtins": [GTIN], "ttl": 600}
    yield "revoke token", "POST", f"/v1/tokens/{token_id}/revoke", {"reason": f"by {role}"}
    yield "audit", "GET", f"/v1/audit/{GTIN}", None


@pytest.mark.parametrize("role", ROLES)
def test_every_endpoint_allows_or_refuses_this_role_as_designed(world, role):
    r = world["r"]
    store = r.services.store
    headers = {} if role == "anonymous" else bearer(world["tokens"][role])
    cells = 0
    for endpoint, method, path, body in requests(world, role):
        before_units = [r.client.portal.call(store.get_unit, GTIN, s) for s in (world["serial"], world["spare"])]
        before_audit = len(r.client.portal.call(lambda: store.audit(GTIN, limit=100_000)))
        answer = r.client.request(method, path, json=body, headers={**headers, **key()})
        assert answer.status_code < 500, (role, endpoint, answer.text)
        if role in ALLOWED[endpoint]:
            assert answer.status_code not in (401, 403), (role, endpoint, answer.status_code, answer.text)
        else:
            assert answer.status_code in (401, 403), (role, endpoint, answer.status_code, answer.text)
            assert "error" in answer.json() and answer.json()["error"]["reason"]
            after_units = [r.client.portal.call(store.get_unit, GTIN, s) for s in (world["serial"], world["spare"])]
            assert after_units == before_units, (role, endpoint)
            assert len(r.client.portal.call(lambda: store.audit(GTIN, limit=100_000))) == before_audit, (role, endpoint)
        cells += 1
    assert cells == len(ALLOWED)


def test_the_matrix_covers_every_twin_endpoint_the_app_mounts(world):
    from resolver.api import openapi

    twin = {(p, m) for p, m, name in openapi.api_paths(world["r"].app)
            if name in {"get_unit", "post_event", "post_registration", "post_confirm", "post_claim", "transfer",
                        "get_unit_epcis", "get_dpp", "get_batch_epcis", "post_recall", "list_recalls", "lift_recall",
                        "post_token", "revoke", "get_audit"}}
    exercised = set()
    for _, method, path, _ in requests(world, "admin"):
        for template, m in twin:
            import re

            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if m == method and re.match(pattern, path):
                exercised.add((template, m))
    assert exercised == twin
    assert len(ROLES) * len(ALLOWED) == 234
