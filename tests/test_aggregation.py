"""Aggregation: units and cases packed into SSCCs, on both stores, over the API, the CLI and
EPCIS capture; /00 resolution scoped by role; recalls list the SSCCs of a lot.

Real parts: SQLite files and the session's redis-server; the real ASGI app; GS1's EPCIS
schema from ../shared/gs1/epcis.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from ext import compute_check_digit
from twin.aggregation import AggregationOp, Child, op_digest

SHARED_EPCIS = Path(__file__).resolve().parents[2] / "shared" / "gs1" / "epcis"
GTIN = "09506000134352"
REPO = Path(__file__).resolve().parents[1]


def sscc(n: int, ext: str = "0", prefix: str = "9506000") -> str:
    body = f"{ext}{prefix}{n:09d}"
    return body + compute_check_digit(body)


def wrong(s: str) -> str:
    return s[:17] + str((int(s[17]) + 1) % 10)


@pytest.fixture(scope="module")
def official():
    path = SHARED_EPCIS / "EPCIS-JSON-Schema.json"
    assert path.exists(), f"GS1's EPCIS schema not found at {path}"
    schema = json.loads(path.read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def valid(validator, events) -> None:
    doc = {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"], "type": "EPCISDocument",
           "schemaVersion": "2.0", "creationDate": "2026-03-01T08:00:00Z", "epcisBody": {"eventList": list(events)}}
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]
    assert not errors, errors[:3]


# -- the store, both backends ------------------------------------------------------------


def _op(event_id, action, parent, keys, origin=("l1", "s1"), batch="b.default.0", allow=False, counters=False):
    """``counters``: units come with their counter (as the journey passes them), a made-up
    but stable one per serial here: the store may key them by (batch, counter)."""
    children = tuple(Child(k) if k.isdigit() else Child(k, batch, _counter(k) if counters else None) for k in keys)
    return AggregationOp(event_id, action, parent, children, 1_767_225_600_000, origin, allow,
                         op_digest(action, parent, children, allow), tuple(f"children[{i}]" for i in range(len(keys))))


def _counter(key: str) -> int:
    return int.from_bytes(key.rsplit("/", 1)[1].encode(), "big")


def _units(*serials):
    return [f"01/{GTIN}/21/{s}" for s in serials]


@pytest.mark.anyio
@pytest.mark.parametrize("counters", [False, True], ids=["by-key", "by-counter"])
async def test_store_packs_unpacks_idempotently_and_all_or_nothing(store_url, counters):
    """SQLite, one Redis node and a Redis Cluster (the {agg} slot) refuse and apply alike,
    whether units come with their counter (SQLite keys them by batch and counter) or not."""
    from functools import partial

    from twin.aggregation import AggregationConflict, EventConflict
    from twin.events import Actor
    from twin.store import open_store

    _op = partial(globals()["_op"], counters=counters)
    actor = Actor("line", "l1")
    case1, case2, pallet = sscc(1), sscc(2), sscc(3, ext="1")
    async with await open_store(store_url) as store:
        assert await store.get_aggregation(case1) is None
        done = await store.apply_aggregations([_op("e1", "ADD", case1, _units("A", "B", "C"))], actor)
        assert [(s.children, s.replayed) for s in done] == [(3, False)]
        again = await store.apply_aggregations([_op("e1", "ADD", case1, _units("A", "B", "C"))], actor)
        assert [(s.children, s.replayed) for s in again] == [(3, True)]
        with pytest.raises(EventConflict):
            await store.apply_aggregations([_op("e1", "ADD", case1, _units("D"))], actor)
        # D is fine, but B is in case1 already: nothing of the pack is applied
        with pytest.raises(AggregationConflict) as refused:
            await store.apply_aggregations([_op("e2", "ADD", case2, _units("D", "B"))], actor)
        assert refused.value.field == "children[1]" and case1 in str(refused.value)
        assert await store.get_aggregation(case2) is None
        # two ops in one write, the second refused: the first is not applied either
        with pytest.raises(AggregationConflict) as refused:
            await store.apply_aggregations([_op("e3", "ADD", case2, _units("D")),
                                            _op("e4", "ADD", sscc(5), _units("E", "B"))], actor)
        assert refused.value.field == "children[1]"
        assert await store.get_aggregation(case2) is None and await store.get_aggregation(sscc(5)) is None
        await store.apply_aggregations([_op("e5", "ADD", case2, _units("D", "E"))], actor)
        await store.apply_aggregations([_op("e6", "ADD", pallet, [case1, case2])], actor)
        agg = await store.get_aggregation(pallet)
        assert [c.key for c in agg.children] == sorted([case1, case2]) and agg.meta[:2] == ("l1", "s1")
        assert (await store.get_aggregation(case1)).packed_in == pallet
        # a pallet cannot go into its own case; a case into another line's pallet only when allowed
        with pytest.raises(AggregationConflict):
            await store.apply_aggregations([_op("e7", "ADD", case1, [pallet])], actor)
        other = sscc(4, ext="1")
        await store.apply_aggregations([_op("e8", "ADD", other, _units("X"), origin=("l9", "s9"))], actor)
        with pytest.raises(AggregationConflict):
            await store.apply_aggregations([_op("e9", "ADD", other, _units("Y"))], actor)
        await store.apply_aggregations([_op("e9b", "ADD", other, _units("Y"), allow=True)], actor)
        assert await store.aggregation_parents(["b.default.0"]) == sorted([case1, case2, pallet, other])
        # unpack some, then all
        await store.apply_aggregations([_op("u1", "DELETE", case1, _units("A"))], actor)
        with pytest.raises(AggregationConflict):
            await store.apply_aggregations([_op("u2", "DELETE", case1, _units("A"))], actor)
        await store.apply_aggregations([_op("u3", "DELETE", pallet, [])], actor)
        assert (await store.get_aggregation(pallet)).children == ()
        assert (await store.get_aggregation(case1)).packed_in is None
        assert [c.key for c in (await store.get_aggregation(case1)).children] == _units("B", "C")
        # A is free again: it may go elsewhere
        await store.apply_aggregations([_op("e10", "ADD", case2, _units("A"))], actor)
        assert [e.event_id for e in await store.aggregation_events(case1)] == ["e1", "u1"]


@pytest.mark.anyio
async def test_a_unit_moved_in_one_write_and_two_racing_packs_of_one_unit(store_url):
    """Unpack from one case and pack into another in one write; two writers packing the same
    unit at once: one wins, the other is refused naming the unit (Redis packs without
    reading its units first, so this is its path through a stale answer and a re-read)."""
    import asyncio

    from twin.aggregation import AggregationConflict
    from twin.events import Actor
    from twin.store import open_store

    actor = Actor("line", "l1")
    case1, case2, case3 = sscc(31), sscc(32), sscc(33)
    async with await open_store(store_url) as store:
        await store.apply_aggregations([_op("m1", "ADD", case1, _units("A", "B"), counters=True)], actor)
        await store.apply_aggregations([_op("m2", "DELETE", case1, _units("A"), counters=True),
                                        _op("m3", "ADD", case2, _units("A", "C"), counters=True)], actor)
        assert [c.key for c in (await store.get_aggregation(case2)).children] == _units("A", "C")
        assert [c.key for c in (await store.get_aggregation(case1)).children] == _units("B")
        races = await asyncio.gather(
            *(store.apply_aggregations([_op(f"r{i}", "ADD", parent, _units(f"D{i}", "Z"), counters=True)], actor)
              for i, parent in enumerate((case3, sscc(34)))), return_exceptions=True)
        refused = [r for r in races if isinstance(r, Exception)]
        assert len(refused) == 1 and isinstance(refused[0], AggregationConflict), races
        assert refused[0].field == "children[1]" and "01/09506000134352/21/Z" in str(refused[0])
        holders = [p for p in (case3, sscc(34)) if await store.get_aggregation(p) is not None]
        assert len(holders) == 1
        assert [c.key for c in (await store.get_aggregation(holders[0])).children] == \
               sorted(_units(f"D{(case3, sscc(34)).index(holders[0])}", "Z"))


@pytest.mark.anyio
async def test_units_packed_without_their_counter_still_count_once_counters_come(store_url):
    """Rows written by key (schema 1 on SQLite, imported serials) and rows written by
    counter are one picture: a unit packed one way is refused, unpacked and listed the other."""
    from twin.aggregation import AggregationConflict
    from twin.events import Actor
    from twin.store import open_store

    actor = Actor("line", "l1")
    case1, case2 = sscc(21), sscc(22)
    async with await open_store(store_url) as store:
        await store.apply_aggregations([_op("k1", "ADD", case1, _units("A", "B"))], actor)
        await store.apply_aggregations([_op("c1", "ADD", case1, _units("C", "D"), counters=True)], actor)
        assert [c.key for c in (await store.get_aggregation(case1)).children] == _units("A", "B", "C", "D")
        with pytest.raises(AggregationConflict) as refused:  # A was packed by key, before counters came
            await store.apply_aggregations([_op("c2", "ADD", case2, _units("E", "A"), counters=True)], actor)
        assert refused.value.field == "children[1]" and case1 in str(refused.value)
        await store.apply_aggregations([_op("u1", "DELETE", case1, _units("A"), counters=True)], actor)
        await store.apply_aggregations([_op("c3", "ADD", case2, _units("A"), counters=True)], actor)
        assert await store.aggregation_parents(["b.default.0"]) == sorted([case1, case2])
        await store.apply_aggregations([_op("u2", "DELETE", case1, [])], actor)  # all of it, both kinds
        assert (await store.get_aggregation(case1)).children == ()
        await store.apply_aggregations([_op("c4", "ADD", case2, _units("B", "C", "D"), counters=True)], actor)
        assert [c.key for c in (await store.get_aggregation(case2)).children] == _units("A", "B", "C", "D")
        assert await store.aggregation_parents(["b.default.0"]) == [case2]


def test_a_schema_1_store_opens_as_schema_2_and_keeps_its_packs(tmp_path):
    import asyncio
    import sqlite3

    from twin.events import Actor
    from twin.store import open_store

    path = tmp_path / "v1.db"

    async def pack_and_read(ops):
        async with await open_store(f"sqlite:///{path}") as store:
            if ops:
                await store.apply_aggregations(ops, Actor("line", "l1"))
            return [c.key for c in (await store.get_aggregation(sscc(1))).children]

    asyncio.run(pack_and_read([_op("k1", "ADD", sscc(1), _units("A"))]))
    with sqlite3.connect(path) as db:  # as schema 1 left it: the table of units by counter absent
        db.execute("DROP TABLE agg_units")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    assert asyncio.run(pack_and_read([_op("c1", "ADD", sscc(1), _units("B"), counters=True)])) == _units("A", "B")
    with sqlite3.connect(path) as db:
        from twin.sqlite_store import SCHEMA_VERSION

        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (str(SCHEMA_VERSION),)
        assert db.execute("SELECT batch, child FROM agg_units").fetchall() == [("b.default.0", _units("B")[0])]


# -- over HTTP: the line's credentials, the twin's checks, EPCIS --------------------------


def _mint(r, count=60, request_id="m1", lot="L7", line="l1", site="s1"):
    headers = r.auth("manufacturer", gtins=[GTIN])
    made = r.client.post("/v1/batches", json={"gtin": GTIN, "count": count, "profile": "default", "lot": lot,
                                              "request_id": request_id, "formats": "csv", "line_tracking": True,
                                              "line": line, "site": site}, headers=headers)
    assert made.status_code == 201, made.text
    batch_id = made.json()["batch"]["id"]
    header, *rows = r.client.get(f"/v1/batches/{batch_id}/files/codes.csv", headers=headers).text.splitlines()
    return batch_id, [row.split(",")[1] for row in rows], headers


def _report(r, batch_id, headers, report_id, step, start, count, **extra):
    done = r.client.post(f"/v1/batches/{batch_id}/reports", headers=headers,
                         json={"report_id": report_id, "step": step, "ranges": [{"start": start, "count": count}],
                               **extra})
    assert done.status_code == 201, done.text


def _uri(serial):
    return f"https://id.gs1.org/01/{GTIN}/21/{serial}"


def line_resolver(request, resolver_factory):
    """A resolver on the store the fixture's param names, 60 units minted on a tracked line,
    0-39 verified: (resolver, batch id, serials, line headers)."""
    url = None
    if request.param == "redis":
        from tests.redis_fixtures import fresh_namespace

        url = f"{request.getfixturevalue('redis_url')}?prefix={fresh_namespace()}"
    r = resolver_factory(url)
    batch_id, serials, headers = _mint(r)
    _report(r, batch_id, headers, "v1", "verified", 0, 40, result="pass", grade="A")
    return r, batch_id, serials, headers


@pytest.fixture(params=["sqlite", "redis"])
def packed(request, resolver_factory):
    """A resolver on each store: 60 units, 0-39 commissioned, 40-44 rejected, the rest never verified."""
    r, batch_id, serials, headers = line_resolver(request, resolver_factory)
    _report(r, batch_id, headers, "rj", "rejected", 40, 5)
    return r, batch_id, serials, headers


def test_pack_over_the_api_checks_the_twin_and_is_idempotent(packed, official):
    r, batch_id, serials, headers = packed
    case = sscc(11)
    body = {"action": "pack", "parent": case, "children": [_uri(s) for s in serials[:10]], "eventID": "p-1"}
    first = r.client.post("/v1/aggregations", json=body, headers=headers)
    assert first.status_code == 201, first.text
    event = first.json()["event"]
    assert event["type"] == "AggregationEvent" and event["action"] == "ADD"
    assert event["parentID"] == "urn:epc:id:sscc:9506000.0000000011"[:0] + event["parentID"]  # shape below
    assert event["parentID"].startswith("urn:epc:id:sscc:9506000.") and len(event["childEPCs"]) == 10
    assert all(c.startswith("urn:epc:id:sgtin:9506000.013435.") for c in event["childEPCs"])
    valid(official, [event])
    again = r.client.post("/v1/aggregations", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["replayed"] is True
    contents = r.client.get(f"/v1/aggregations/{case}", headers=headers).json()
    assert [c["serial"] for c in contents["children"]] == sorted(serials[:10])
    assert (contents["line"], contents["site"], contents["packed_in"]) == ("l1", "s1", None)
    valid(official, contents["events"])

    def refused(body, status, field):
        answer = r.client.post("/v1/aggregations", json=body, headers=headers)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["field"] == field, answer.json()
        return answer.json()

    base = {"action": "pack", "parent": sscc(12)}
    refused({**base, "parent": wrong(sscc(12)), "children": [_uri(serials[20])]}, 422, "parent")
    assert "check digit" in refused({**base, "children": [_uri(serials[20]), wrong(sscc(11))]}, 422,
                                    "children[1]")["detail"]
    assert "rejected" in refused({**base, "children": [_uri(serials[20]), _uri(serials[41])]}, 409,
                                 "children[1]")["detail"]
    assert "not commissioned" in refused({**base, "children": [_uri(serials[21]), _uri(serials[50])]}, 409,
                                         "children[1]")["detail"]
    assert case in refused({**base, "children": [_uri(serials[22]), _uri(serials[3])]}, 409, "children[1]")["detail"]
    refused({**base, "children": [_uri(serials[22]), f"https://id.gs1.org/01/{GTIN}/21/NOT-OURS"]}, 422, "children[1]")
    refused({**base, "children": [_uri(serials[22])], "eventID": "p-1"}, 409, "eventID")
    refused({**base, "action": "squash", "children": []}, 422, "action")
    refused({**base, "action": {}, "children": []}, 422, "action")
    # nothing of the refused packs was applied
    assert r.client.get(f"/v1/aggregations/{sscc(12)}", headers=headers).status_code == 404
    # a pallet of cases, then an unpack
    second = r.client.post("/v1/aggregations", headers=headers, json={
        "action": "pack", "parent": sscc(12), "children": [{"gtin": GTIN, "serial": s} for s in serials[10:20]]})
    assert second.status_code == 201, second.text
    pallet = sscc(13, ext="3")
    on = r.client.post("/v1/aggregations", headers=headers, json={
        "action": "pack", "parent": pallet, "children": [case, f"urn:epc:id:sscc:{sscc(12)[1:8]}.{sscc(12)[0]}"
                                                                  f"{sscc(12)[8:17]}"], "eventID": "pallet-1"})
    assert on.status_code == 201, on.text
    valid(official, [on.json()["event"]])
    assert r.client.get(f"/v1/aggregations/{case}", headers=headers).json()["packed_in"] == pallet
    out = r.client.post("/v1/aggregations", headers=headers,
                        json={"action": "unpack", "parent": case, "children": [_uri(serials[0])], "eventID": "u-1"})
    assert out.status_code == 201 and out.json()["event"]["action"] == "DELETE"
    valid(official, [out.json()["event"]])
    assert len(r.client.get(f"/v1/aggregations/{case}", headers=headers).json()["children"]) == 9
    # credentials: none, a consumer-ish role, a token for another product
    assert r.client.post("/v1/aggregations", json=body).status_code == 401
    assert r.client.post("/v1/aggregations", json={**body, "eventID": "p-9"},
                         headers=r.auth("regulator", gtins=[GTIN])).status_code == 403
    other = r.client.post("/v1/aggregations", headers=r.auth("manufacturer", gtins=["04012345000009"]),
                          json={"action": "pack", "parent": sscc(14), "children": [_uri(serials[30])]})
    assert other.status_code == 403, other.text


def test_epcis_capture_of_an_aggregation_event_packs_through_the_same_path(packed, official):
    r, batch_id, serials, headers = packed
    case = sscc(21)
    event = {"type": "AggregationEvent", "eventTime": "2026-03-01T08:00:00Z", "eventTimeZoneOffset": "+00:00",
             "parentID": f"https://id.gs1.org/00/{case}", "childEPCs": [_uri(s) for s in serials[:5]],
             "action": "ADD", "bizStep": "packing"}
    doc = {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"], "type": "EPCISDocument",
           "schemaVersion": "2.0", "creationDate": "2026-03-01T08:00:00Z", "epcisBody": {"eventList": [event]}}
    valid(official, [event])
    first = r.client.post("/v1/epcis/capture", json=doc, headers=headers)
    assert first.status_code == 201 and first.json()["captured"] == 1, first.text
    again = r.client.post("/v1/epcis/capture", json=doc, headers=headers)
    assert again.status_code == 200 and again.json()["replayed"] == 1
    assert len(r.client.get(f"/v1/aggregations/{case}", headers=headers).json()["children"]) == 5
    bad = dict(event, parentID=f"https://id.gs1.org/00/{sscc(22)}", childEPCs=[_uri(serials[6]), _uri(serials[42])],
               eventTime="2026-03-01T09:00:00Z")
    refused = r.client.post("/v1/epcis/capture", json={**doc, "epcisBody": {"eventList": [bad]}}, headers=headers)
    assert refused.status_code == 409 and refused.json()["field"] == "epcisBody.eventList[0].childEPCs[1]", refused.text
    assert r.client.get(f"/v1/aggregations/{sscc(22)}", headers=headers).status_code == 404


def test_sscc_resolution_shows_contents_to_logistics_roles_only(packed):
    r, batch_id, serials, headers = packed
    case = sscc(31)
    assert r.client.post("/v1/aggregations", headers=headers, json={
        "action": "pack", "parent": case, "children": [_uri(s) for s in serials[:3]]}).status_code == 201
    anonymous = r.get(f"/00/{case}")
    never = r.get(f"/00/{sscc(32)}")
    assert anonymous.status_code == never.status_code == 404  # the same answer: nothing leaks
    assert serials[0] not in anonymous.text and "s1" not in anonymous.text
    assert r.get(f"/00/{case}", headers=r.auth("owner", gtins=[GTIN])).status_code == 404
    assert r.get(f"/00/{case}", headers=r.auth("manufacturer", gtins=["04012345000009"])).status_code == 404
    for role in ("manufacturer", "regulator"):
        seen = r.get(f"/00/{case}", headers=r.auth(role, gtins=[GTIN]))
        assert seen.status_code == 200, seen.text
        assert seen.headers["content-type"] == "application/linkset+json"
        assert "no-store" in seen.headers["cache-control"]
        entry = seen.json()["linkset"][0]
        assert entry["anchor"] == f"https://id.gs1.org/00/{case}"
        assert sorted(i["href"] for i in entry["item"]) == sorted(_uri(s) for s in serials[:3])
    missing = r.get(f"/00/{sscc(32)}", headers=r.auth("manufacturer", gtins=[GTIN]))
    assert missing.status_code == 404


def test_recall_of_a_lot_lists_its_cases_and_pallets(packed):
    r, batch_id, serials, headers = packed
    other_id, other, _ = _mint(r, count=10, request_id="m2", lot="L8")
    _report(r, other_id, headers, "v2", "commissioned", 0, 10)
    case_a, case_b, case_c, pallet = sscc(41), sscc(42), sscc(43), sscc(44, ext="1")
    for parent, children in ((case_a, [_uri(s) for s in serials[:4]]), (case_b, [_uri(s) for s in other[:4]]),
                             (case_c, [_uri(s) for s in other[4:8]]), (pallet, [case_a, case_c])):
        done = r.client.post("/v1/aggregations", headers=headers, json={"action": "pack", "parent": parent,
                                                                         "children": children})
        assert done.status_code == 201, done.text
    recall = r.client.post("/v1/recalls", headers={**r.auth("manufacturer", gtins=[GTIN]), "Idempotency-Key": "rc-1"},
                           json={"gtin": GTIN, "lot": "L8", "reason": "contamination"})
    assert recall.status_code == 201, recall.text
    assert recall.json()["ssccs"] == sorted([case_b, case_c, pallet])


def test_registration_refuses_units_the_line_never_commissioned(packed):
    r, batch_id, serials, headers = packed
    form = {"name": "Ann", "contact": "ann@example.com", "purchase_date": "2026-01-02"}
    for serial, why in ((serials[50], "not_commissioned"), (serials[41], "decommissioned")):
        answer = r.client.post(f"/v1/units/01/{GTIN}/21/{serial}/registration", json=form,
                               headers={"Idempotency-Key": f"k-{serial}"})
        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert why in answer.json()["detail"] and answer.json()["field"] == "state"
    fine = r.client.post(f"/v1/units/01/{GTIN}/21/{serials[5]}/registration", json=form,
                         headers={"Idempotency-Key": "k-ok"})
    assert fine.status_code in (200, 201, 202), fine.text


def test_cli_pack_and_unpack_with_one_line_errors(tmp_path):
    import asyncio

    from serializer.keys import KeyStore
    from serializer.minting import BatchRequest, mint
    from serializer.profiles import load_profiles
    from twin.events import Actor
    from twin.store import open_store

    url = f"sqlite:///{tmp_path}/twin.db"
    keys = tmp_path / "keys"

    async def prepare():
        async with await open_store(url) as store:
            minted = await mint(store, KeyStore(keys), load_profiles(), BatchRequest.parse(
                {"gtin": GTIN, "count": 20, "profile": "default", "request_id": "m1"}), Actor("line", "l1"))
            return minted.serials(0, 20)

    serials = asyncio.run(prepare())  # not line-tracked: its units are commissioned (the batch speaks)
    children = tmp_path / "children.txt"
    children.write_text("\n".join(_uri(s) for s in serials[:5]) + "\n")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "serialink", *args, "--store", url, "--key-dir", str(keys)],
                              capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})

    case = sscc(51)
    done = cli("pack", "--parent", case, "--children", str(children), "--event-id", "c-1")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["children"] == 5 and answer["event"]["action"] == "ADD"
    assert json.loads(cli("pack", "--parent", case, "--children", str(children), "--event-id", "c-1").stdout)["replayed"]
    bad = cli("pack", "--parent", wrong(case), "--child", _uri(serials[9]))
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--parent" in bad.stderr and "check digit" in bad.stderr
    twice = cli("pack", "--parent", sscc(52), "--child", _uri(serials[9]), "--child", _uri(serials[2]))
    assert twice.returncode == 1 and twice.stderr.count("\n") == 1 and "child 2" in twice.stderr and case in twice.stderr
    assert "Traceback" not in twice.stderr
    usage = cli("pack", "--parent", case)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    out = cli("unpack", "--parent", case)
    assert out.returncode == 0 and json.loads(out.stdout)["children"] == 5


def test_unpacking_everything_needs_a_scope_over_what_is_inside(packed):
    r, batch_id, serials, headers = packed
    case = sscc(61)
    assert r.client.post("/v1/aggregations", headers=headers, json={
        "action": "pack", "parent": case, "children": [_uri(s) for s in serials[:2]]}).status_code == 201
    stranger = r.client.post("/v1/aggregations", headers=r.auth("manufacturer", gtins=["04012345000009"]),
                             json={"action": "unpack", "parent": case})
    assert stranger.status_code == 403, stranger.text
    assert len(r.client.get(f"/v1/aggregations/{case}", headers=headers).json()["children"]) == 2
    assert r.client.post("/v1/aggregations", headers=headers, json={"action": "unpack", "parent": case}).status_code == 201
    assert r.client.get(f"/v1/aggregations/{case}", headers=headers).json()["children"] == []
