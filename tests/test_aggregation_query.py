"""Finding packs and unpacks again: by child (unit or case), by batch, after an unpack; on
SQLite, one Redis node and a Redis Cluster (real servers, see tests/redis_fixtures.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.test_aggregation import GTIN, _op, _units, sscc
from twin.aggregation import AggregationOp, Child, op_digest


def _at(op: AggregationOp, ms: int) -> AggregationOp:
    return replace(op, at_ms=ms)


@pytest.mark.anyio
async def test_store_finds_the_events_of_a_child_and_a_batch_after_unpacks(store_url):
    from twin.events import Actor
    from twin.store import open_store

    actor = Actor("line", "l1")
    case1, case2, pallet = sscc(101), sscc(102), sscc(103, ext="1")
    a, b, c = _units("A", "B", "C")
    other = Child(f"01/{GTIN}/21/Z", "b.other.0")
    async with await open_store(store_url) as store:
        assert await store.aggregation_events_of([a], ["b.default.0"]) == []
        await store.apply_aggregations([_at(_op("p1", "ADD", case1, [a, b]), 1000)], actor)
        await store.apply_aggregations([_at(_op("p2", "ADD", pallet, [case1]), 2000)], actor)
        await store.apply_aggregations([_at(_op("u1", "DELETE", case1, [a]), 3000)], actor)
        await store.apply_aggregations([_at(_op("p3", "ADD", case2, [a, c]), 4000)], actor)
        mixed = AggregationOp("p4", "ADD", case2, (other,), 5000, ("l1", "s1"), False,
                              op_digest("ADD", case2, (other,), False))
        await store.apply_aggregations([mixed], actor)
        await store.apply_aggregations([_at(_op("u2", "DELETE", pallet, []), 6000)], actor)  # everything out

        def ids(events):
            return [e.event_id for e in events]

        # A: packed into case1, unpacked from it (case1 is no parent of A any more), then into case2
        assert ids(await store.aggregation_events_of([a])) == ["p1", "u1", "p3"]
        assert ids(await store.aggregation_events_of([b])) == ["p1"]
        assert ids(await store.aggregation_events_of([a, b, c])) == ["p1", "u1", "p3"]
        # a case as a child: on the pallet, then out of it
        assert ids(await store.aggregation_events_of([case1])) == ["p2", "u2"]
        # a batch: every event with one of its units, none of another batch's only
        assert ids(await store.aggregation_events_of(batches=["b.default.0"])) == ["p1", "u1", "p3"]
        assert ids(await store.aggregation_events_of(batches=["b.other.0"])) == ["p4"]
        found = await store.aggregation_events_of([c])
        assert [ch.key for ch in found[0].children] == [a, c]  # the whole event, as stored
        # a replayed unpack writes nothing new, and changes no answer
        await store.apply_aggregations([_at(_op("u1", "DELETE", case1, [a]), 3000)], actor)
        assert ids(await store.aggregation_events_of([a])) == ["p1", "u1", "p3"]
        assert await store.aggregation_events_of([f"01/{GTIN}/21/NEVER"]) == []
        from twin.errors import InvalidInput

        with pytest.raises(InvalidInput):
            await store.aggregation_events_of(["12345"])
