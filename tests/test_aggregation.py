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


@pytest.fixture(params=["sqlite", "redis"])
def any_store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/twin.db"
    from tests.redis_fixtures import fresh_namespace

    return f"{request.getfixturevalue('redis_url')}?prefix={fresh_namespace()}"


def _op(event_id, action, parent, keys, origin=("l1", "s1"), batch="b.default.0", allow=False):
    children = tuple(Child(k, "" if k.isdigit() else batch) for k in keys)
    return AggregationOp(event_id, action, parent, children, 1_767_225_600_000, origin, allow,
                         op_digest(action, parent, children, allow), tuple(f"children[{i}]" for i in range(len(keys))))


def _units(*serials):
    return [f"01/{GTIN}/21/{s}" for s in serials]


@pytest.mark.anyio
async def test_store_packs_unpacks_idempotently_and_all_or_nothing(any_store_url):
    from twin.aggregation import AggregationConflict, EventConflict
    from twin.events import Actor
    from twin.store import open_store

    actor = Actor("line", "l1")
    case1, case2, pallet = sscc(1), sscc(2), sscc(3, ext="1")
    async with await open_store(any_store_url) as store:
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
