"""Finding packs and unpacks again: by child (unit or case), by batch, after an unpack; on
SQLite, one Redis node and a Redis Cluster (real servers, see tests/redis_fixtures.py)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from tests.test_aggregation import GTIN, SHARED_EPCIS, _counter, _op, _units, sscc
from twin.aggregation import AggregationOp, Child, op_digest


@pytest.fixture(scope="module")
def official():
    """GS1's EPCIS 2.0 JSON Schema from ../shared/gs1/epcis, as jsonschema reads it."""
    import json

    import jsonschema

    schema = json.loads((SHARED_EPCIS / "EPCIS-JSON-Schema.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def _at(op: AggregationOp, ms: int) -> AggregationOp:
    return replace(op, at_ms=ms)


@pytest.mark.anyio
@pytest.mark.parametrize("counters", [False, True], ids=["by-key", "by-counter"])
async def test_store_finds_the_events_of_a_child_and_a_batch_after_unpacks(store_url, counters):
    """Units packed with their counter (as the journey packs minted units: a store may key
    them by batch and counter) or without (imported serials, older rows): found alike."""
    from twin.events import Actor
    from twin.store import open_store

    actor = Actor("line", "l1")
    case1, case2, pallet = sscc(101), sscc(102), sscc(103, ext="1")
    a, b, c = _units("A", "B", "C")

    def op(event_id, action, parent, keys, ms):
        return _at(_op(event_id, action, parent, keys, counters=counters), ms)

    def unit(key, batch="b.default.0"):  # as a query names it: with its counter when it has one
        return Child(key, batch, _counter(key) if counters else None)

    other_key = f"01/{GTIN}/21/Z"
    other = Child(other_key, "b.other.0", _counter(other_key) if counters else None)
    async with await open_store(store_url) as store:
        assert await store.aggregation_events_of([unit(a)], ["b.default.0"]) == []
        await store.apply_aggregations([op("p1", "ADD", case1, [a, b], 1000)], actor)
        await store.apply_aggregations([op("p2", "ADD", pallet, [case1], 2000)], actor)
        await store.apply_aggregations([op("u1", "DELETE", case1, [a], 3000)], actor)
        await store.apply_aggregations([op("p3", "ADD", case2, [a, c], 4000)], actor)
        mixed = AggregationOp("p4", "ADD", case2, (other,), 5000, ("l1", "s1"), False,
                              op_digest("ADD", case2, (other,), False))
        await store.apply_aggregations([mixed], actor)
        await store.apply_aggregations([op("u2", "DELETE", pallet, [], 6000)], actor)  # everything out

        def ids(events):
            return [e.event_id for e in events]

        # A: packed into case1, unpacked from it (case1 is no parent of A any more), then into case2
        assert ids(await store.aggregation_events_of([unit(a)])) == ["p1", "u1", "p3"]
        assert ids(await store.aggregation_events_of([unit(b)])) == ["p1"]
        assert ids(await store.aggregation_events_of([unit(a), unit(b), unit(c)])) == ["p1", "u1", "p3"]
        # a case as a child: on the pallet, then out of it
        assert ids(await store.aggregation_events_of([Child(case1)])) == ["p2", "u2"]
        # a batch: every event with one of its units, none of another batch's only
        assert ids(await store.aggregation_events_of(batches=["b.default.0"])) == ["p1", "u1", "p3"]
        assert ids(await store.aggregation_events_of(batches=["b.other.0"])) == ["p4"]
        found = await store.aggregation_events_of([unit(c)])
        assert [ch.key for ch in found[0].children] == [a, c]  # the whole event, as stored
        # a replayed unpack writes nothing new, and changes no answer
        await store.apply_aggregations([op("u1", "DELETE", case1, [a], 3000)], actor)
        assert ids(await store.aggregation_events_of([unit(a)])) == ["p1", "u1", "p3"]
        assert await store.aggregation_events_of([unit(f"01/{GTIN}/21/NEVER")]) == []
        from twin.errors import InvalidInput

        for bad in (["12345"], [Child("12345")], "01/x"):
            with pytest.raises(InvalidInput):
                await store.aggregation_events_of(bad)


# -- GET /v1/epcis/events: AggregationEvents with the ObjectEvents, over the real app --------


@pytest.fixture(params=["sqlite", "redis", "cluster"])
def line(request, resolver_factory):
    """A resolver on each store: 60 units, 0-39 commissioned, then cases A, B on pallet P,
    unit 0 taken out of A and packed into C — at known times, a minute apart."""
    from tests.redis_fixtures import fresh_namespace
    from tests.test_aggregation import _mint, _report

    url = None
    if request.param != "sqlite":
        server = request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
        url = f"{server}?prefix={fresh_namespace()}"
    r = resolver_factory(url)
    batch_id, serials, headers = _mint(r)
    _report(r, batch_id, headers, "v1", "verified", 0, 40, result="pass", grade="A")
    case_a, case_b, case_c, pallet = _SSCCS
    steps = [("pack", case_a, [_uri(s) for s in serials[:5]], "pA"),
             ("pack", case_b, [_uri(s) for s in serials[5:10]], "pB"),
             ("pack", pallet, [case_a, case_b], "pP"),
             ("unpack", case_a, [_uri(serials[0])], "uA"),
             ("pack", case_c, [_uri(serials[0]), _uri(serials[20])], "pC")]
    for minute, (action, parent, children, event_id) in enumerate(steps):
        done = r.client.post("/v1/aggregations", headers=headers, json={
            "action": action, "parent": parent, "children": children, "eventID": event_id,
            "at": f"2099-01-01T08:0{minute}:00Z"})
        assert done.status_code == 201, done.text
    return r, batch_id, serials, headers, {"A": case_a, "B": case_b, "C": case_c, "P": pallet}


_SSCCS = [sscc(201), sscc(202), sscc(203), sscc(204, ext="1")]


def _uri(serial):
    return f"https://id.gs1.org/01/{GTIN}/21/{serial}"


def _query(r, headers, official, **params):
    answer = r.client.get("/v1/epcis/events", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    events = answer.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    from tests.test_aggregation import valid

    valid(official, events)  # every event, both kinds, against GS1's schema
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events)
    return events


def _aggs(events):
    from resolver.journeys.epc_names import EpcNames

    urns = {EpcNames().sscc_urn(s): s for s in _SSCCS}
    return [(e["action"], e["bizStep"], urns[e["parentID"]], len(e["childEPCs"]))
            for e in events if e["type"] == "AggregationEvent"]


def test_query_finds_aggregation_events_by_unit_sscc_batch_step_and_time(line, official):
    from resolver.journeys.epc_names import EpcNames

    r, batch_id, serials, headers, ssccs = line
    urn = EpcNames()
    a, p = ssccs["A"], ssccs["P"]

    # a unit: its commissioning, then packed into A, out of A, into C — listing only the unit
    for epc in (_uri(serials[0]), urn.sgtin_urn(GTIN, serials[0])):
        events = _query(r, headers, official, MATCH_epc=epc)
        assert [e["type"] for e in events] == ["ObjectEvent"] + ["AggregationEvent"] * 3
        assert [e["eventID"] for e in events[1:]] == [
            f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'serialink:aggregation#' + i)}" for i in ("pA", "uA", "pC")]
        assert [(e["action"], e["bizStep"]) for e in events[1:]] == [("ADD", "packing"), ("DELETE", "unpacking"),
                                                                     ("ADD", "packing")]
        assert [e["parentID"] for e in events[1:]] == [urn.sscc_urn(a), urn.sscc_urn(a), urn.sscc_urn(ssccs["C"])]
        assert all(e["childEPCs"] == [urn.sgtin_urn(GTIN, serials[0])] for e in events[1:])
    # an SSCC as the parent, bare, as its URN or a /00 Digital Link URI: every child listed
    for given in (a, urn.sscc_urn(a), f"https://id.gs1.org/00/{a}"):
        events = _query(r, headers, official, MATCH_parentID=given)
        assert _aggs(events) == [("ADD", "packing", a, 5), ("DELETE", "unpacking", a, 1)]
    # an SSCC as a child (MATCH_epc, as EPCIS says), or either (MATCH_anyEPC)
    assert _aggs(_query(r, headers, official, MATCH_epc=a)) == [("ADD", "packing", p, 1)]
    assert _aggs(_query(r, headers, official, MATCH_anyEPC=a)) == [
        ("ADD", "packing", a, 5), ("ADD", "packing", p, 1), ("DELETE", "unpacking", a, 1)]
    assert _aggs(_query(r, headers, official, MATCH_parentID=p)) == [("ADD", "packing", p, 2)]
    # the business step and the time window filter both kinds
    packing = _query(r, headers, official, MATCH_epc=_uri(serials[0]), EQ_bizStep="packing")
    assert [e["bizStep"] for e in packing] == ["packing", "packing"]
    assert [e["bizStep"] for e in _query(r, headers, official, MATCH_epc=_uri(serials[0]),
                                         EQ_bizStep="https://ref.gs1.org/cbv/BizStep-unpacking")] == ["unpacking"]
    window = _query(r, headers, official, MATCH_epc=_uri(serials[0]), GE_eventTime="2099-01-01T08:01:00Z",
                    LT_eventTime="2099-01-01T08:04:00Z")
    assert [(e["type"], e["bizStep"]) for e in window] == [("AggregationEvent", "unpacking")]
    # a batch: its ObjectEvents and every pack/unpack of its units, listing the batch's units
    events = _query(r, headers, official, batch=batch_id)
    assert _aggs(events) == [("ADD", "packing", a, 5), ("ADD", "packing", ssccs["B"], 5),
                             ("DELETE", "unpacking", a, 1), ("ADD", "packing", ssccs["C"], 2)]
    assert [e["type"] for e in events][0] == "ObjectEvent"
    # several EPCs at once: each event once
    both = _query(r, headers, official, MATCH_epc=[_uri(serials[0]), _uri(serials[1])])
    assert [len(e["childEPCs"]) for e in both if e["type"] == "AggregationEvent"] == [2, 1, 1]


def test_query_of_aggregations_is_scoped_and_checks_its_input(line, official):
    r, batch_id, serials, headers, ssccs = line
    a = ssccs["A"]
    regulator = r.auth("regulator", gtins=[GTIN])
    assert _aggs(_query(r, regulator, official, MATCH_parentID=a))[0][3] == 5
    other = r.auth("manufacturer", gtins=["04012345000009"])
    for params in ({"MATCH_parentID": a}, {"MATCH_epc": _uri(serials[0])}, {"batch": batch_id}):
        refused = r.client.get("/v1/epcis/events", params=params, headers=other)
        assert refused.status_code == 403, refused.text
        assert GTIN in refused.json()["detail"]
    # a pallet of cases names no unit: any reader may see it, a consumer may not
    assert r.client.get("/v1/epcis/events", params={"MATCH_parentID": ssccs["P"]}).status_code == 401
    assert r.client.get("/v1/epcis/events", params={"MATCH_parentID": ssccs["P"]},
                        headers=r.auth("owner", gtins=[GTIN])).status_code == 403
    bad = a[:17] + str((int(a[17]) + 1) % 10)
    for name, value in (("MATCH_parentID", bad), ("MATCH_epc", bad), ("MATCH_anyEPC", "urn:epc:id:sscc:12.3"),
                        ("MATCH_parentID", _uri(serials[0]))):
        answer = r.client.get("/v1/epcis/events", params={name: value}, headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == f"{name}[0]"
    # an SSCC nobody packed: no events, not an error
    assert _query(r, headers, official, MATCH_parentID=sscc(299)) == []
