"""Hostile input to the twin API: oversized bodies, malformed JSON and paths, wrong codes,
replays, floods. Every one is a clear 4xx naming what is wrong, and nothing changes."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_journeys import GTIN, bearer, key, mint_units, notifications, register, unit_path


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from tests.resolver_fixtures import running_resolver

    with running_resolver(tmp_path_factory.mktemp("hostile")) as r:
        yield r


@pytest.fixture
def serial(app):
    return mint_units(app, 1, "LH1", f"hostile-{time.time_ns()}")[0]


def state(app, serial):
    store = app.services.store
    return (app.client.portal.call(store.get_unit, GTIN, serial),
            len(app.client.portal.call(lambda: store.audit(GTIN, limit=100_000))))


def error(r, status: int, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["reason"]
    if field is not None:
        assert body.get("field") == field, body


def test_oversized_and_malformed_bodies(app, serial):
    before = state(app, serial)
    tech = app.auth("technician", gtins=[GTIN])
    huge = b'{"type": "service", "data": {"summary": "' + b"x" * 2_000_000 + b'"}}'
    for path, headers in ((unit_path(serial, "/events"), tech), (unit_path(serial, "/registration"), {}),
                          ("/v1/recalls", app.auth("manufacturer", gtins=[GTIN])),
                          ("/v1/tokens", app.auth("admin", all_products=True))):
        error(app.client.post(path, content=huge, headers={**headers, **key(), "content-type": "application/json"}), 413)
        error(app.client.post(path, content=b"{not json", headers={**headers, **key()}), 400, "body")
        error(app.client.post(path, json=["a", "list"], headers={**headers, **key()}), 400, "body")
    error(app.client.post(unit_path(serial, "/events"), json={"type": "service", "data": {"summary": "s" * 2001}},
                          headers={**tech, **key()}), 422, "data.summary")
    error(app.client.post(unit_path(serial, "/events"), json={"type": "teleport"}, headers={**tech, **key()}), 422, "type")
    error(app.client.post("/v1/tokens", json={"role": {}, "principal": "p"},
                          headers={**app.auth("admin", all_products=True), **key()}), 422, "role")
    error(app.client.post(unit_path(serial, "/events"), json={"type": "service", "colour": "red"},
                          headers={**tech, **key()}), 422, "colour")
    error(app.client.post(unit_path(serial, "/events"), json={"type": "service", "data": {"summary": "ok",
                                                                                         "parts": "not a list"}},
                          headers={**tech, **key()}), 422, "data.parts")
    assert state(app, serial) == before


def test_writes_need_an_idempotency_key_and_a_well_formed_if_match(app, serial):
    before = state(app, serial)
    tech = app.auth("technician", gtins=[GTIN])
    body = {"type": "service", "data": {"summary": "ok"}}
    error(app.client.post(unit_path(serial, "/events"), json=body, headers=tech), 400, "Idempotency-Key")
    error(app.client.post(unit_path(serial, "/events"), json=body, headers={**tech, "idempotency-key": "x" * 101}),
          400, "Idempotency-Key")
    error(app.client.post(unit_path(serial, "/events"), json=body, headers={**tech, **key(), "if-match": "yesterday"}),
          400, "If-Match")
    error(app.client.post(unit_path(serial, "/events"), json={**body, "expected_version": 3},
                          headers={**tech, **key(), "if-match": '"2"'}), 400, "expected_version")
    error(app.client.post(unit_path(serial, "/events"), json=body, headers={**tech, **key(), "if-match": '"9"'}),
          409, "expected_version")
    assert state(app, serial) == before


@pytest.mark.parametrize("path, status", [
    (f"/v1/units/01/{GTIN[:-1]}3/21/ABC", 400),  # check digit
    (f"/v1/units/01/{GTIN}/21/{'A' * 21}", 400),  # serial too long
    (f"/v1/units/01/{GTIN}/21/ABC%00", 400),
    (f"/v1/units/01/{GTIN}/21/NEVERISSUED", 404),
    (f"/v1/units/01/{GTIN}/21/ABC/registration", 405),  # GET on a POST-only sub-resource
    ("/v1/recalls/123", 422),
    ("/v1/batches/nonsense/epcis", 404),
])
def test_bad_paths_are_clear_4xx(app, path, status):
    assert app.client.get(path).status_code == status


def test_a_serial_with_a_slash_is_one_unit(app):
    from twin.events import Actor, make_event

    store = app.services.store
    app.client.portal.call(lambda: store.append_event(GTIN, "A/B", make_event("commission", Actor("line", "l"), "x")))
    app.services.lookup.invalidate(GTIN, "unit", "A/B")
    r = app.client.get(f"/v1/units/01/{GTIN}/21/A%2FB")
    assert r.status_code == 200 and r.json()["serial"] == "A/B"
    assert app.client.get(f"/v1/units/01/{GTIN}/21/A/B").status_code == 400


def test_wrong_codes_are_counted_and_a_used_code_is_not_replayable(app, serial):
    r = app.client.post(unit_path(serial, "/registration"), headers=key(),
                        json={"name": "Jo", "contact": "jo@example.com", "purchase_date": "2025-01-01"})
    pending = r.json()["confirmation"]
    before = state(app, serial)
    for left in (4, 3, 2, 1):
        wrong = app.client.post(unit_path(serial, "/registration/confirm"), headers=key(),
                                json={"confirmation": pending, "code": "WRONG-CODE"})
        error(wrong, 422, "code")
        assert f"{left} tries left" in wrong.json()["error"]["reason"]
    error(app.client.post(unit_path(serial, "/registration/confirm"), headers=key(),
                          json={"confirmation": pending, "code": "WRONG-CODE"}), 410, "code")
    right = notifications(app)[-1]["code"]
    error(app.client.post(unit_path(serial, "/registration/confirm"), headers=key(),
                          json={"confirmation": pending, "code": right}), 410, "code")
    assert state(app, serial)[0] == before[0]  # not registered
    error(app.client.post(unit_path(serial, "/registration/confirm"), headers=key(),
                          json={"confirmation": "nosuchpending01", "code": right}), 404, "confirmation")
    error(app.client.post(unit_path(serial, "/registration/confirm"), headers=key(),
                          json={"confirmation": ["x"], "code": right}), 422, "confirmation")


def test_transfer_codes_work_once_and_only_for_their_unit(app):
    a, b = mint_units(app, 2, "LH2", f"hostile-t-{time.time_ns()}")
    owner_a, owner_b = register(app, a), register(app, b, name="B", contact="b@example.com")
    code = app.client.post(unit_path(a, "/transfer"), headers={**bearer(owner_a["token"]), **key()}).json()["code"]
    app.client.post(unit_path(b, "/transfer"), headers={**bearer(owner_b["token"]), **key()})
    before = state(app, b)
    claim = {"code": code, "name": "Kim", "contact": "kim@example.com"}
    error(app.client.post(unit_path(b, "/transfer/claim"), headers=key(), json=claim), 422, "code")
    assert state(app, b) == before
    assert app.client.post(unit_path(a, "/transfer/claim"), headers=key(), json=claim).status_code == 201
    before = state(app, a)
    error(app.client.post(unit_path(a, "/transfer/claim"), headers=key(), json=claim), 422, "code")
    assert state(app, a) == before
    error(app.client.post(unit_path(a, "/transfer/claim"), headers=key(), json={**claim, "code": 7}), 422, "code")
    error(app.client.post(unit_path(a, "/transfer/claim"), headers=key(), json={**claim, "contact": "<b>"}),
          422, "contact")


def test_floods_of_public_writes_are_rate_limited(resolver_factory, monkeypatch):
    app = resolver_factory(rate_limits="register=3/600,claim=2/600")
    serials = mint_units(app, 5, "LH3", f"flood-{time.time_ns()}")
    body = {"name": "Flo", "contact": "flo@example.com", "purchase_date": "2025-01-01"}
    answers = [app.client.post(unit_path(s, "/registration"), headers=key(), json=body) for s in serials]
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    assert int(answers[3].headers["retry-after"]) > 0 and "too many" in answers[3].json()["error"]["reason"]
    pending = [e for e in app.client.portal.call(lambda: app.services.store.audit(GTIN)) if e.action == "pending:put"]
    assert len(pending) == 3
    claims = [app.client.post(unit_path(serials[0], "/transfer/claim"), headers=key(),
                              json={"code": "0000-0000-0000-0000", "name": "X", "contact": "x@example.com"})
              for _ in range(3)]
    assert [c.status_code for c in claims] == [409, 409, 429]  # no transfer is pending; then the limit


event_bodies = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["service", "firmware", "end_of_life", "ship", "nope", 7, None]),
    "reason": st.one_of(st.text(max_size=30), st.integers(), st.none()),
    "where": st.one_of(st.text(max_size=30), st.lists(st.text())),
    "data": st.one_of(st.dictionaries(st.sampled_from(["summary", "parts", "version", "to", "x"]),
                                      st.one_of(st.text(max_size=20), st.lists(st.text(max_size=5), max_size=3),
                                                st.integers(), st.none()), max_size=3), st.text(max_size=5)),
    "expected_version": st.one_of(st.integers(-2, 5), st.text(max_size=3), st.booleans()),
})


@pytest.fixture(scope="module")
def fuzz_serial(app):
    return mint_units(app, 1, "LH4", f"fuzz-{time.time_ns()}")[0]


@given(event_bodies)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzzed_event_bodies_never_produce_a_5xx(app, fuzz_serial, body):
    r = app.client.post(unit_path(fuzz_serial, "/events"), json=body,
                        headers={**app.auth("manufacturer", gtins=[GTIN]), **key()})
    assert r.status_code < 500, (body, r.text)
