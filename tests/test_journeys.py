"""Owner and service journeys end to end over the API, on SQLite and on Redis.

A batch is minted for real; its units are read, registered (with the code the notifier
delivered), serviced, installed, transferred, recalled, reported stolen, exported and
retired — each step through the real ASGI app and the real store, and each checked
where people see it: the role-scoped views, the scans, the audit.
"""

from __future__ import annotations

import json
import time

import jsonschema
import pytest

from settings import default_config_dir
from tests.resolver_fixtures import ROOT

GTIN = "09506000134352"
OUTSIDER_GTIN = "04012345000009"


# -- helpers other test modules share ----------------------------------------------------------


def mint_units(resolver, count: int, lot: str, request_id: str) -> list[str]:
    """A real batch in the app's store, with the keys its verifier reads."""
    from serializer.minting import BatchRequest, mint
    from twin.events import Actor

    services = resolver.services
    request = BatchRequest.parse({"gtin": GTIN, "count": count, "profile": "default", "request_id": request_id,
                                  "lot": lot})
    minted = resolver.client.portal.call(mint, services.store, services.keys, services.profiles, request,
                                         Actor("line", "line-7"))
    resolver.services.lookup.invalidate(GTIN, "batch")
    return minted.serials()


_keys = iter(range(10**9))


def key() -> dict[str, str]:
    return {"idempotency-key": f"k-{time.time_ns()}-{next(_keys)}"}


def unit_path(serial: str, suffix: str = "") -> str:
    from ext import escape

    return f"/v1/units/01/{GTIN}/21/{escape(serial)}{suffix}"


def notifications(resolver) -> list[dict]:
    path = resolver.data_dir / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def register(resolver, serial: str, name: str = "Ana Owner", contact: str = "ana@example.com",
             purchase_date: str = "2025-03-01") -> dict:
    """The whole first-owner registration: request, read the code from the message, confirm."""
    r = resolver.client.post(unit_path(serial, "/registration"), headers=key(),
                             json={"name": name, "contact": contact, "purchase_date": purchase_date})
    assert r.status_code == 202, r.text
    pending = r.json()["confirmation"]
    message = next(n for n in reversed(notifications(resolver)) if n["serial"] == serial)
    assert message["to"] == contact and pending in message["link"]
    done = resolver.client.post(unit_path(serial, "/registration/confirm"), headers=key(),
                                json={"confirmation": pending, "code": message["code"]})
    assert done.status_code == 201, done.text
    return done.json()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def issue(resolver, body: dict, role: str = "manufacturer", **scope) -> dict:
    scope = scope or {"gtins": [GTIN]}
    r = resolver.client.post("/v1/tokens", json=body, headers={**resolver.auth(role, **scope), **key()})
    assert r.status_code == 201, r.text
    return r.json()


# -- the journey ------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def app(request, resolver_factory):
    if request.param == "sqlite":
        return resolver_factory()
    from tests.redis_fixtures import fresh_namespace

    return resolver_factory(f"{request.getfixturevalue('redis_url')}?prefix={fresh_namespace()}")


def test_a_unit_from_unboxing_to_recycling(app):
    r = app
    client = r.client
    serials = mint_units(r, 6, "LJ1", f"journey-{time.time_ns()}")
    serial, other = serials[0], serials[1]

    # a consumer scans the new unit: unregistered, invited to register
    view = client.get(unit_path(serial)).json()
    assert view["view"] == "consumer" and view["state"] == "commissioned" and not view["registered"]
    assert view["warranty"]["covered"] is False and view["links"]["manuals"]
    assert r.get(f"/01/{GTIN}/21/{serial}").headers["location"].startswith("https://www.example.com/register/")

    # the owner registers at unboxing, confirming with the code sent to their contact
    owner = register(r, serial, name="<script>alert(1)</script> Ana", contact="ana@example.com")
    assert owner["state"] == "registered" and owner["version"] == 1
    owner_auth = bearer(owner["token"])
    public = client.get(unit_path(serial))
    assert public.json()["registered"] and public.json()["warranty"]["covered"]
    for secret in ("Ana", "ana@example.com", owner["owner"]):
        assert secret not in public.text
    mine = client.get(unit_path(serial), headers=owner_auth).json()
    assert mine["view"] == "owner" and mine["owner"]["name"] == "<script>alert(1)</script> Ana"
    assert mine["owner"]["contact"] == "ana@example.com" and mine["history"][0]["type"] == "register"
    assert r.get(f"/01/{GTIN}/21/{serial}").headers["location"] == "https://www.example.com/boilers/x100"

    # a technician logs a repair; a stale write is refused and changes nothing
    tech = issue(r, {"role": "technician", "principal": "tech:cho", "ttl": 3 * 3600,
                     "unit": {"gtin": GTIN, "serial": serial}})
    tech_auth = bearer(tech["token"])
    service = {"type": "service", "reason": "annual service",
               "data": {"summary": "Burner cleaned, <b>ignition</b> electrode replaced", "ticket": "T-77",
                        "parts": ["IGN-ELECTRODE-3"], "fault_codes": ["F28", "F29"]}}
    done = client.post(unit_path(serial, "/events"), headers={**tech_auth, **key(), "if-match": '"1"'}, json=service)
    assert done.status_code == 201 and done.json()["version"] == 2 and done.headers["etag"] == '"2"'
    stale = client.post(unit_path(serial, "/events"), headers={**tech_auth, **key(), "if-match": '"1"'}, json=service)
    assert stale.status_code == 409 and stale.json()["error"]["field"] == "expected_version"
    firmware = client.post(unit_path(serial, "/events"), headers={**tech_auth, **key()},
                           json={"type": "firmware", "data": {"version": "2.4.1"}, "expected_version": 2})
    assert firmware.status_code == 201
    record = client.get(unit_path(serial), headers=tech_auth)
    assert record.status_code == 200
    record_view = record.json()
    assert record_view["view"] == "technician" and record_view["firmware"] == "2.4.1"
    assert record_view["parts_fitted"] == ["IGN-ELECTRODE-3"] and record_view["fault_codes"] == ["F28", "F29"]
    assert [e["type"] for e in record_view["history"]] == ["service", "firmware"]
    assert "Ana" not in record.text and "ana@example.com" not in record.text and owner["owner"] not in record.text
    assert client.get(unit_path(serial)).json()["service"]["services"] == 1

    # the owner hands it over; the new owner claims it, the old owner's token stops counting
    offer = client.post(unit_path(serial, "/transfer"), headers={**owner_auth, **key()})
    assert offer.status_code == 201, offer.text
    code = offer.json()["code"]
    claim = {"code": code, "name": "Ben Second", "contact": "+49 30 1234567"}
    wrong = client.post(unit_path(serial, "/transfer/claim"), headers=key(), json={**claim, "code": "AAAA-BBBB-CCCC-DDDD"})
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "code"
    claimed = client.post(unit_path(serial, "/transfer/claim"), headers=key(), json=claim)
    assert claimed.status_code == 201, claimed.text
    new_owner = claimed.json()
    assert client.get(unit_path(serial), headers=owner_auth).status_code == 403
    theirs = client.get(unit_path(serial), headers=bearer(new_owner["token"]))
    assert theirs.json()["owner"]["name"] == "Ben Second"
    assert "Ana" not in theirs.text and "ana@example.com" not in theirs.text and owner["owner"] not in theirs.text
    again = client.post(unit_path(serial, "/transfer/claim"), headers=key(), json=claim)
    assert again.status_code == 422  # the code worked once

    # the new owner's installer commissions it on site, with a per-visit token the brand issued
    installer = issue(r, {"role": "installer", "principal": "installer:bob", "ttl": 4 * 3600,
                          "unit": {"gtin": GTIN, "serial": serial}})
    installed = client.post(unit_path(serial, "/events"), headers={**bearer(installer["token"]), **key(),
                                                                    "if-match": '"5"'},
                            json={"type": "start_service", "data": {"ticket": "INST-1"}})
    assert installed.status_code == 201 and installed.json()["state"] == "in_service"
    elsewhere = client.post(unit_path(other, "/events"), headers={**bearer(installer["token"]), **key()},
                            json={"type": "start_service"})
    assert elsewhere.status_code == 403  # a per-visit token covers its one unit

    # the brand recalls the lot: the very next scan of any unit of it shows the recall
    recall = client.post("/v1/recalls", headers={**r.auth("manufacturer", gtins=[GTIN]), **key()},
                         json={"gtin": GTIN, "lot": "LJ1", "reason": "Burner seal may leak"})
    assert recall.status_code == 201, recall.text
    for s in (serial, other):
        scan = r.get(f"/01/{GTIN}/21/{s}")
        assert scan.headers["location"].startswith("https://www.example.com/recalls/09506000134352"), s
        assert client.get(unit_path(s)).json()["recalled"] is True

    # stolen, then found
    new_auth = bearer(new_owner["token"])
    stolen = client.post(unit_path(serial, "/events"), headers={**new_auth, **key()}, json={"type": "report_stolen"})
    assert stolen.status_code == 201 and stolen.json()["stolen"]
    found = client.post(unit_path(serial, "/events"), headers={**new_auth, **key()}, json={"type": "recovered"})
    assert found.status_code == 201 and not found.json()["stolen"]

    # the regulator reads the passport and the events (EPCIS 2.0)
    regulator = r.auth("regulator", gtins=[GTIN])
    passport = client.get(unit_path(serial, "/dpp"), headers=regulator)
    assert passport.status_code == 200 and passport.headers["content-type"].startswith("application/ld+json")
    assert passport.json()["gs1:hasSerialNumber"] == serial and passport.json()["serialink:recalled"] is True
    epcis = client.get(unit_path(serial, "/epcis"), headers=regulator)
    schema = json.loads((default_config_dir() / "epcis" / "epcis-2.0-objectevent.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(epcis.json())
    events = epcis.json()["epcisBody"]["eventList"]
    assert [e["bizStep"] for e in events][:3] == ["urn:serialink:bizstep:registering", "repairing",
                                                  "urn:serialink:bizstep:updating_firmware"]
    assert "Ana" not in epcis.text and "Ben" not in epcis.text
    batch_id = client.get(unit_path(serial), headers=r.auth("manufacturer", gtins=[GTIN])).json()["batch"]
    batch_epcis = client.get(f"/v1/batches/{batch_id}/epcis", headers=regulator)
    assert batch_epcis.status_code == 200
    assert {e["epcList"][0] for e in batch_epcis.json()["epcisBody"]["eventList"]} == {
        f"https://id.gs1.org/01/{GTIN}/21/{serial}"}

    # the recycler (a technician) retires it; the record outlives it
    retired = client.post(unit_path(serial, "/events"), headers={**tech_auth, **key()}, json={"type": "end_of_life"})
    assert retired.status_code == 201 and retired.json()["state"] == "end_of_life"
    assert r.get(f"/01/{GTIN}/21/{serial}").headers["location"].startswith("https://www.example.com/recalls/")

    # the brand sees everything — scans included — but no owner's name or contact
    brand = client.get(unit_path(serial), headers=r.auth("manufacturer", gtins=[GTIN]))
    assert brand.json()["view"] == "manufacturer" and brand.json()["owner"]["id"] == new_owner["owner"]
    deadline = time.monotonic() + 5
    while brand.json()["scans"]["recent"] < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        brand = client.get(unit_path(serial), headers=r.auth("manufacturer", gtins=[GTIN]))
    assert brand.json()["scans"]["recent"] >= 3
    for secret in ("Ana", "ana@example.com", "Ben Second", "1234567"):
        assert secret not in brand.text

    # every write is audited: who, when, what, from where
    audit = client.get(f"/v1/audit/{GTIN}?limit=1000", headers=r.auth("manufacturer", gtins=[GTIN])).json()
    unit_writes = [e for e in audit["entries"] if e["subject"] == serial and e["action"].startswith("event:")]
    assert [e["action"] for e in unit_writes] == [
        "event:register", "event:service", "event:firmware", "event:transfer_offer", "event:transfer_claim",
        "event:start_service", "event:report_stolen", "event:recovered", "event:end_of_life"]
    assert all(e["detail"]["client"] == "testclient" and e["detail"]["via"] == "api" and e["at"]
               and e["detail"]["idempotency_key"] for e in unit_writes)
    assert {e["principal"] for e in unit_writes} >= {"installer:bob", "tech:cho", owner["owner"]}
    recall_audit = next(e for e in audit["entries"] if e["action"] == "overlay:put")
    assert recall_audit["principal"] == "test:manufacturer" and recall_audit["detail"]["client"] == "testclient"


def test_revoked_tokens_are_refused_at_once_and_audited(app):
    r = app
    serial = mint_units(r, 2, "LJ2", f"revoke-{time.time_ns()}")[0]
    tech = issue(r, {"role": "technician", "principal": "tech:dan", "ttl": 3600, "gtins": [GTIN]})
    auth = bearer(tech["token"])
    assert r.get(f"/01/{GTIN}/21/{serial}", headers=auth).headers["location"].startswith("https://service.example.com/")
    stranger = r.services.issuer.issue("mfr:someone-else", "manufacturer", ttl=600, gtins=[GTIN])
    refused = r.client.post(f"/v1/tokens/{tech['token_id']}/revoke", json={"reason": "left the company"},
                            headers={**bearer(stranger), **key()})
    assert refused.status_code == 403  # only its issuer, its holder or an admin
    revoked = r.client.post(f"/v1/tokens/{tech['token_id']}/revoke", json={"reason": "left the company"},
                            headers={**r.auth("manufacturer", gtins=[GTIN]), **key()})
    assert revoked.status_code == 200 and revoked.json()["revoked"]
    write = r.client.post(unit_path(serial, "/events"), headers={**auth, **key()},
                          json={"type": "service", "data": {"summary": "x"}})
    assert write.status_code == 401 and "revoked" in write.json()["error"]["reason"]
    assert not r.get(f"/01/{GTIN}/21/{serial}", headers=auth).headers["location"].startswith("https://service.")
    log = r.client.portal.call(r.services.store.token_log)
    assert [(e.action, e.subject) for e in log][-1] == ("token:revoke", tech["token_id"])
    assert log[-1].actor.principal == "test:manufacturer" and log[-1].detail["client"] == "testclient"


def test_idempotent_retries_repeat_the_first_answer(app):
    r = app
    serial = mint_units(r, 2, "LJ3", f"idem-{time.time_ns()}")[0]
    # registration: the same key and body → the same pending registration, the code sent again
    body = {"name": "Cleo", "contact": "cleo@example.com", "purchase_date": "2025-01-02"}
    k = key()
    first = r.client.post(unit_path(serial, "/registration"), headers=k, json=body)
    second = r.client.post(unit_path(serial, "/registration"), headers=k, json=body)
    assert first.json()["confirmation"] == second.json()["confirmation"] and second.json()["replayed"]
    other_body = r.client.post(unit_path(serial, "/registration"), headers=k, json={**body, "name": "Mallory"})
    assert other_body.status_code == 409
    code = notifications(r)[-1]["code"]
    confirm = {"confirmation": first.json()["confirmation"], "code": code}
    ck = key()
    done = r.client.post(unit_path(serial, "/registration/confirm"), headers=ck, json=confirm)
    retry = r.client.post(unit_path(serial, "/registration/confirm"), headers=ck, json=confirm)
    assert done.status_code == 201 and retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["owner"] == done.json()["owner"] and retry.json()["token_id"] == done.json()["token_id"]
    replay = r.client.post(unit_path(serial, "/registration/confirm"), headers=key(), json=confirm)
    assert replay.status_code == 409  # the one-time code, replayed under a new key
    # tokens: the same key gives the same token
    tk = key()
    body = {"role": "technician", "principal": "tech:eve", "ttl": 600, "gtins": [GTIN]}
    headers = {**r.auth("manufacturer", gtins=[GTIN]), **tk}
    a, b = r.client.post("/v1/tokens", json=body, headers=headers), r.client.post("/v1/tokens", json=body, headers=headers)
    assert a.status_code == 201 and b.status_code == 200 and a.json()["token"] == b.json()["token"]
    # events and recalls
    ek = key()
    owner = bearer(done.json()["token"])
    e1 = r.client.post(unit_path(serial, "/events"), headers={**owner, **ek}, json={"type": "report_stolen"})
    e2 = r.client.post(unit_path(serial, "/events"), headers={**owner, **ek}, json={"type": "report_stolen"})
    assert (e1.status_code, e2.status_code) == (201, 200) and e1.json()["version"] == e2.json()["version"]
    rk = key()
    recall = {"gtin": GTIN, "serials": {"first": serial, "last": serial}, "reason": "check"}
    manufacturer = r.auth("manufacturer", gtins=[GTIN])
    p1 = r.client.post("/v1/recalls", json=recall, headers={**manufacturer, **rk})
    p2 = r.client.post("/v1/recalls", json=recall, headers={**manufacturer, **rk})
    assert (p1.status_code, p2.status_code) == (201, 200) and p1.json()["id"] == p2.json()["id"]
    listed = r.client.get(f"/v1/recalls/{GTIN}", headers=manufacturer).json()["recalls"]
    assert [x["id"] for x in listed].count(p1.json()["id"]) == 1
    lk = key()
    lift = {"reason": "checked, fine"}
    l1 = r.client.post(f"/v1/recalls/{GTIN}/{p1.json()['id']}/lift", json=lift, headers={**manufacturer, **lk})
    l2 = r.client.post(f"/v1/recalls/{GTIN}/{p1.json()['id']}/lift", json=lift, headers={**manufacturer, **lk})
    assert (l1.status_code, l2.status_code) == (200, 200) and l2.json()["replayed"] and not l1.json()["active"]


def test_batch_mates_each_get_their_own_serial_and_links(resolver_factory):
    """The public view of units without a record is partly remembered per batch: each unit
    must still get its own serial and its own serial-level links, in its language."""
    from settings import default_config_dir

    text = (default_config_dir() / "examples" / "rules-builtin-pages.yaml").read_text()
    r = resolver_factory(rules_text=text.replace("http://127.0.0.1:8080", ROOT))
    serials = mint_units(r, 3, "LJ4", f"mates-{time.time_ns()}")
    for serial in serials + serials:
        view = r.client.get(unit_path(serial)).json()
        assert view["serial"] == serial and view["state"] == "commissioned"
        hrefs = [l["href"] for l in view["links"]["product"]]
        assert f"{ROOT}/u/01/{GTIN}/21/{serial}" in hrefs and all(
            serial in h or h.endswith(f"/u/01/{GTIN}") for h in hrefs)
    german = r.client.get(unit_path(serials[0]), headers={"accept-language": "de"}).json()
    assert [l["title"] for l in german["links"]["manuals"]] == ["Installationsanleitung"]
    english = r.client.get(unit_path(serials[0]), headers={"accept-language": "en"}).json()
    assert [l["title"] for l in english["links"]["manuals"]] == ["Installation manual"]
