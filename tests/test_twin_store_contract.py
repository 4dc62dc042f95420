"""The store contract: every backend (SQLite, Redis, Redis Cluster) behaves the same.

Each test gets a fresh, empty store (``store`` fixture, parametrized over the three
backends by ``store_url``; see tests/redis_fixtures.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import redis
import redis.cluster

from twin.batch import BatchKind, BatchStatus, RangeIndex
from twin.errors import (
    CorruptRecord,
    IdempotencyConflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    StaleVersion,
    TransferRefused,
    UnknownEventType,
)
from twin.events import Actor, Event, make_event
from twin.lifecycle import State
from twin.links import Anchor, LinkRecord
from twin.overlays import CounterRange, GtinScope, LotScope, SerialRange, SerialScope, flags_for
from twin.ownership import PersonalData, hash_transfer_code, issue_transfer_code, new_owner_id
from twin.scans import ScanEvent
from twin.unit import replay, unit_from_batch

pytestmark = pytest.mark.anyio

GTIN = "09506000134352"
OTHER_GTIN = "09506000134369"
LINE = Actor("line", "line-7")
SHOP = Actor("retailer", "shop-1")
QA = Actor("manufacturer", "qa@example.com")
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def ev(kind: str, actor: Actor = LINE, reason: str = "test", at: datetime = T0, **data: Any) -> Event:
    return make_event(kind, actor, reason, at=at, **data)


async def commissioned(store: Any, serial: str, lot: str = "L1") -> None:
    await store.append_event(GTIN, serial, ev("commission", lot=lot))


def raw_set(store: Any, store_url: str, key_or_table: str, value: bytes, **where: str) -> None:
    """Overwrite a stored record behind the store's back (to test corrupt data)."""
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store.path) as conn:
            conn.execute(
                f"UPDATE {key_or_table} SET head = ? WHERE gtin = ? AND serial = ?", (value, where["gtin"], where["serial"])
            )
    elif store.cluster:
        host, port = store_url.split("//")[1].split(",")[0].split(":")
        client = redis.cluster.RedisCluster(host=host, port=int(port))
        client.set(key_or_table, value)
        client.close()
    else:
        client = redis.Redis.from_url(store_url.split("?")[0])
        client.set(key_or_table, value)
        client.close()


# -- units and events ------------------------------------------------------------------


async def test_a_unit_with_no_events_has_no_record(store: Any) -> None:
    assert await store.get_unit(GTIN, "NOPE") is None
    assert await store.get_units([(GTIN, "A"), (OTHER_GTIN, "B")]) == [None, None]
    assert await store.get_events(GTIN, "NOPE") == []


async def test_unit_keys_lists_exactly_the_units_with_a_record(store: Any) -> None:
    assert [keys async for keys in store.unit_keys()] == []
    wanted = {(GTIN, f"K{i}") for i in range(25)} | {(OTHER_GTIN, "K:1/x")}
    for gtin, serial in wanted:
        await store.append_event(gtin, serial, ev("commission"))
    chunks = [keys async for keys in store.unit_keys(chunk=10)]
    assert all(1 <= len(c) <= 10 for c in chunks)
    assert {k for c in chunks for k in c} == wanted and sum(len(c) for c in chunks) == len(wanted)


async def test_events_append_in_order_and_the_record_is_their_fold(store: Any) -> None:
    owner = new_owner_id()
    events = [
        ev("commission", lot="L42", expiry="2027-01-31"),
        ev("ship", to="DC Rotterdam"),
        ev("sell", SHOP, purchase_date="2025-03-01", jurisdiction="EU"),
        ev("register", Actor("owner", owner), owner=owner),
        ev("firmware", Actor("technician", "t-1"), version="2.0.1"),
    ]
    versions = [(await store.append_event(GTIN, "S1", e)).version for e in events]
    assert versions == [1, 2, 3, 4, 5]
    unit = await store.get_unit(GTIN, "S1")
    assert unit.state is State.REGISTERED and unit.version == 5
    assert (unit.lot, unit.expiry, unit.firmware, unit.owner) == ("L42", date(2027, 1, 31), "2.0.1", owner)
    stored = await store.get_events(GTIN, "S1")
    assert [e.type for e in stored] == ["commission", "ship", "sell", "register", "firmware"]
    assert stored[0].actor == LINE and stored[1].data["to"] == "DC Rotterdam"
    assert replay(GTIN, "S1", stored) == unit


async def test_a_unit_minted_in_a_batch_starts_from_the_batch_state(store: Any) -> None:
    batch = await store.allocate_range(GTIN, "eu", 100, "req-1", "d1", actor=LINE, lot="L9")
    origin = unit_from_batch(GTIN, "X1", batch)
    assert origin.state is State.COMMISSIONED and origin.version == 0
    with pytest.raises(IllegalTransition, match="no record"):
        await store.append_event(GTIN, "X1", ev("sell", SHOP, purchase_date="2025-03-01"))
    done = await store.append_event(GTIN, "X1", ev("sell", SHOP, purchase_date="2025-03-01"), origin=origin)
    assert done.unit.state is State.SOLD and done.unit.lot == "L9" and done.unit.batch_id == batch.id
    unit = await store.get_unit(GTIN, "X1")
    assert replay(GTIN, "X1", await store.get_events(GTIN, "X1"), unit.implied_origin()) == unit


async def test_an_illegal_transition_is_refused_with_a_reason_and_writes_nothing(store: Any) -> None:
    await commissioned(store, "S1")
    audit_before = await store.audit(GTIN)
    with pytest.raises(IllegalTransition) as err:
        await store.append_event(GTIN, "S1", ev("end_service"))
    assert "cannot end_service a unit that is commissioned" in str(err.value)
    assert err.value.state is State.COMMISSIONED
    assert (await store.get_unit(GTIN, "S1")).version == 1
    assert len(await store.get_events(GTIN, "S1")) == 1
    assert await store.audit(GTIN) == audit_before


async def test_unknown_event_types_and_fields_are_refused(store: Any) -> None:
    await commissioned(store, "S1")
    with pytest.raises(UnknownEventType, match="teleport"):
        await store.append_event(GTIN, "S1", Event("teleport", LINE, T0, "why"))
    with pytest.raises(InvalidInput, match="event.data.colour"):
        await store.append_event(GTIN, "S1", Event("ship", LINE, T0, "x", data={"colour": "red"}))
    with pytest.raises(InvalidInput, match="event.actor.role"):
        await store.append_event(GTIN, "S1", Event("ship", Actor("pirate", "x"), T0, "x"))
    with pytest.raises(InvalidInput, match="event.at"):
        await store.append_event(GTIN, "S1", Event("ship", LINE, datetime(2025, 1, 1), "naive"))
    with pytest.raises(InvalidInput, match="event.reason"):
        await store.append_event(GTIN, "S1", Event("ship", LINE, T0, " "))
    assert (await store.get_unit(GTIN, "S1")).version == 1


async def test_identities_are_checked_before_any_io(store: Any) -> None:
    with pytest.raises(InvalidInput, match="^gtin: check digit"):
        await store.get_unit("09506000134353", "S1")
    with pytest.raises(InvalidInput, match="^gtin: expected 14 digits"):
        await store.get_unit("9506000134352", "S1")
    with pytest.raises(InvalidInput, match="^serial:"):
        await store.get_unit(GTIN, "X" * 21)
    with pytest.raises(InvalidInput, match="^serial:"):
        await store.append_event(GTIN, "has space", ev("commission"))


async def test_an_oversized_payload_is_refused_and_a_dpp_link_is_fine(store: Any) -> None:
    await commissioned(store, "S1")
    with pytest.raises(PayloadTooLarge, match="event.data: is .* bytes encoded, the limit is 65536; publish"):
        await store.append_event(GTIN, "S1", ev("dpp", QA, document={"text": "x" * 70_000}))
    await store.append_event(GTIN, "S1", ev("dpp", QA, document={"materials": [{"steel": 0.7}]}))
    assert await store.get_dpp(GTIN, "S1") == {"document": {"materials": [{"steel": 0.7}]}}
    done = await store.append_event(GTIN, "S1", ev("dpp", QA, href="https://dpp.example.com/S1"))
    assert done.unit.dpp_href == "https://dpp.example.com/S1"
    assert await store.get_dpp(GTIN, "S1") == {"href": "https://dpp.example.com/S1"}


async def test_a_stale_expected_version_is_refused(store: Any) -> None:
    await commissioned(store, "S1")
    await store.append_event(GTIN, "S1", ev("ship"), expected_version=1)
    with pytest.raises(StaleVersion) as err:
        await store.append_event(GTIN, "S1", ev("sell", SHOP, purchase_date="2025-03-01"), expected_version=1)
    assert (err.value.expected, err.value.actual) == (1, 2)
    with pytest.raises(StaleVersion):
        await store.append_event(GTIN, "NEW", ev("commission"), expected_version=3)
    assert (await store.append_event(GTIN, "NEW", ev("commission"), expected_version=0)).version == 1


async def test_concurrent_appends_to_one_unit_lose_nothing(store: Any) -> None:
    owner = new_owner_id()
    await store.append_event(GTIN, "S1", ev("commission"))
    await store.append_event(GTIN, "S1", ev("register", Actor("owner", owner), owner=owner, purchase_date="2025-01-01"))
    tech = Actor("technician", "t-2")
    results = await asyncio.gather(
        *(store.append_event(GTIN, "S1", ev("service", tech, summary=f"visit {i}")) for i in range(20))
    )
    assert sorted(r.version for r in results) == list(range(3, 23))
    unit = await store.get_unit(GTIN, "S1")
    assert unit.services == 20 and unit.version == 22
    assert len(await store.get_events(GTIN, "S1")) == 22


async def test_an_idempotency_key_makes_a_retry_harmless(store: Any) -> None:
    await commissioned(store, "S1")
    first = await store.append_event(GTIN, "S1", ev("ship"), idempotency_key="req-42")
    again = await store.append_event(GTIN, "S1", ev("ship", at=T0 + timedelta(seconds=5)), idempotency_key="req-42")
    assert (first.version, first.replayed) == (2, False)
    assert (again.version, again.replayed) == (2, True)
    assert len(await store.get_events(GTIN, "S1")) == 2
    with pytest.raises(IdempotencyConflict):
        await store.append_event(GTIN, "S1", ev("ship", to="elsewhere"), idempotency_key="req-42")
    with pytest.raises(InvalidInput, match="idempotency_key"):
        await store.append_event(GTIN, "S1", ev("ship"), idempotency_key="has space")


# -- ownership ----------------------------------------------------------------------------


async def test_personal_data_is_kept_apart_from_the_public_record(store: Any) -> None:
    await commissioned(store, "S1")
    owner = new_owner_id()
    await store.append_event(
        GTIN, "S1", ev("register", Actor("owner", owner), owner=owner, purchase_date="2025-02-01", jurisdiction="EU"),
        personal=PersonalData("Ann Example", "ann@example.com"),
    )
    unit = await store.get_unit(GTIN, "S1")
    assert unit.owner == owner
    assert "Ann" not in repr(unit) and "ann@" not in repr(await store.get_events(GTIN, "S1"))
    assert await store.get_personal_data(GTIN, "S1") == {owner: PersonalData("Ann Example", "ann@example.com")}
    assert await store.erase_personal_data(GTIN, "S1", owner, QA, "GDPR art. 17 request #12") is True
    assert await store.get_personal_data(GTIN, "S1") == {}
    assert await store.erase_personal_data(GTIN, "S1", owner, QA, "again") is False
    with pytest.raises(InvalidInput, match="personal"):
        await store.append_event(GTIN, "S1", ev("service", summary="x"), personal=PersonalData("A", "b"))


async def test_a_transfer_is_a_two_step_hand_over(store: Any) -> None:
    alice, bob = new_owner_id(), new_owner_id()
    await commissioned(store, "S1")
    await store.append_event(GTIN, "S1", ev("register", Actor("owner", alice), owner=alice, purchase_date="2025-02-01"),
                             personal=PersonalData("Alice", "alice@example.com"))
    code, offer = issue_transfer_code(T0, ttl=timedelta(days=7))
    await store.append_event(GTIN, "S1", ev("transfer_offer", Actor("owner", alice), code_hash=offer.code_hash,
                                            expires_at=offer.expires_at))
    assert (await store.get_unit(GTIN, "S1")).transfer_offer == offer
    with pytest.raises(TransferRefused, match="does not match"):
        await store.append_event(GTIN, "S1", ev("transfer_claim", Actor("owner", bob), at=T0 + timedelta(days=1),
                                                code_hash=hash_transfer_code("WRONG-CODE"), owner=bob))
    with pytest.raises(TransferRefused, match="expired"):
        await store.append_event(GTIN, "S1", ev("transfer_claim", Actor("owner", bob), at=T0 + timedelta(days=8),
                                                code_hash=hash_transfer_code(code), owner=bob))
    await store.append_event(GTIN, "S1", ev("transfer_claim", Actor("owner", bob), at=T0 + timedelta(days=2),
                                            code_hash=hash_transfer_code(code), owner=bob),
                             personal=PersonalData("Bob", "+31 20 555 0100"))
    unit = await store.get_unit(GTIN, "S1")
    assert (unit.owner, unit.transfer_offer, unit.transferred_on) == (bob, None, date(2025, 3, 3))
    assert set(await store.get_personal_data(GTIN, "S1")) == {alice, bob}  # history kept
    with pytest.raises(TransferRefused, match="no transfer is pending"):
        await store.append_event(GTIN, "S1", ev("transfer_claim", Actor("owner", alice), code_hash=offer.code_hash, owner=alice))


# -- batches and allocation -------------------------------------------------------------


async def test_allocations_are_contiguous_idempotent_and_audited(store: Any) -> None:
    a = await store.allocate_range(GTIN, "eu", 1000, "r-a", "digest-a", actor=LINE, lot="L1", expiry=date(2027, 1, 1),
                                   line="line-7", site="plant-2")
    b = await store.allocate_range(GTIN, "eu", 500, "r-b", "digest-b", actor=LINE)
    other_profile = await store.allocate_range(GTIN, "us", 10, "r-c", "digest-c", actor=LINE)
    assert (a.start, a.count, b.start, b.count, other_profile.start) == (0, 1000, 1000, 500, 0)
    assert (a.status, a.kind, a.lot, a.expiry, a.line, a.site) == (
        BatchStatus.ALLOCATED, BatchKind.MINTED, "L1", date(2027, 1, 1), "line-7", "plant-2")
    assert await store.allocate_range(GTIN, "eu", 1000, "r-a", "digest-a", actor=LINE) == a
    with pytest.raises(IdempotencyConflict, match="r-a"):
        await store.allocate_range(GTIN, "eu", 999, "r-a", "digest-other", actor=LINE)
    assert await store.get_batch(a.id) == a
    assert [x.id for x in await store.list_batches(GTIN)] == [a.id, b.id, other_profile.id]
    assert [x.id for x in await store.list_batches(GTIN, "us")] == [other_profile.id]
    allocations = [e for e in await store.audit(GTIN) if e.action == "allocate"]
    assert [(e.detail["start"], e.detail["count"], e.subject) for e in allocations] == [
        (0, 1000, a.id), (1000, 500, b.id), (0, 10, other_profile.id)]


async def test_find_batch_by_counter_is_exact_at_the_edges(store: Any) -> None:
    a = await store.allocate_range(GTIN, "eu", 100, "r1", "d", actor=LINE)
    await store.allocate_range(GTIN, "other", 1000, "r2", "d", actor=LINE)
    b = await store.allocate_range(GTIN, "eu", 50, "r3", "d", actor=LINE)
    await store.set_batch_status(b.id, BatchStatus.VOIDED, QA, "line stopped")
    expect = {0: a.id, 99: a.id, 100: b.id, 149: b.id, 150: None, 10**12: None}
    for counter, batch_id in expect.items():
        found = await store.find_batch_by_counter(GTIN, "eu", counter)
        assert (found.id if found else None) == batch_id, counter
    assert await store.find_batch_by_counter(OTHER_GTIN, "eu", 0) is None
    index = RangeIndex(await store.batch_ranges(GTIN, "eu"))
    assert [index.find(c) for c in expect] == list(expect.values())
    with pytest.raises(InvalidInput, match="counter"):
        await store.find_batch_by_counter(GTIN, "eu", -1)


async def test_batch_status_moves_forward_only(store: Any) -> None:
    batch = await store.allocate_range(GTIN, "eu", 10, "r1", "d", actor=LINE)
    committed = await store.set_batch_status(batch.id, BatchStatus.COMMITTED, LINE, "labels printed")
    assert committed.status is BatchStatus.COMMITTED and committed.status_reason == "labels printed"
    with pytest.raises(IllegalTransition, match="it is committed"):
        await store.set_batch_status(batch.id, BatchStatus.ALLOCATED, LINE, "undo")
    voided = await store.set_batch_status(batch.id, "voided", QA, "recall of whole run")
    assert (await store.get_batch(batch.id)) == voided
    assert unit_from_batch(GTIN, "S", voided).state is State.DECOMMISSIONED
    with pytest.raises(NotFound):
        await store.set_batch_status(f"{GTIN}.eu.999", BatchStatus.VOIDED, QA, "x")
    with pytest.raises(InvalidInput, match="batch_id"):
        await store.get_batch("nonsense")


async def test_a_scrapped_label_is_a_decommission_event_on_the_unit(store: Any) -> None:
    batch = await store.allocate_range(GTIN, "eu", 10, "r1", "d", actor=LINE)
    origin = unit_from_batch(GTIN, "K3", batch)
    done = await store.append_event(GTIN, "K3", ev("decommission", reason="label smeared"), origin=origin)
    assert done.unit.state is State.DECOMMISSIONED
    with pytest.raises(IllegalTransition):
        await store.append_event(GTIN, "K3", ev("ship"))


async def test_bad_allocation_requests_are_refused(store: Any) -> None:
    for kwargs, field in [
        (dict(count=0), "count"), (dict(count=10**9), "count"), (dict(profile="has space"), "profile"),
        (dict(request_id=""), "request_id"), (dict(params_digest=""), "params_digest"),
        (dict(gtin="123"), "gtin"), (dict(lot="x" * 21), "lot"),
    ]:
        args = dict(gtin=GTIN, profile="eu", count=10, request_id="r", params_digest="d") | kwargs
        with pytest.raises(InvalidInput) as err:
            await store.allocate_range(args.pop("gtin"), args.pop("profile"), args.pop("count"), args.pop("request_id"),
                                       args.pop("params_digest"), actor=LINE, **args)
        assert err.value.field == field
    assert await store.list_batches(GTIN) == []


async def test_imported_serials_are_found_by_membership(store: Any) -> None:
    serials = [f"IMP{i:05d}" for i in range(2500)]
    batch = await store.import_serials(GTIN, "tpd", serials, "imp-1", "d", actor=QA, lot="L5")
    assert (batch.kind, batch.count, batch.start) == (BatchKind.IMPORTED, 2500, 0)
    assert await store.find_imported(GTIN, "IMP02499") == batch.id
    assert await store.find_imported(GTIN, "IMP99999") is None
    assert await store.import_serials(GTIN, "tpd", serials, "imp-1", "d", actor=QA) == batch  # retry
    with pytest.raises(InvalidInput, match="'IMP00007' is already imported"):
        await store.import_serials(GTIN, "tpd", ["NEW1", "IMP00007"], "imp-2", "d", actor=QA)
    with pytest.raises(InvalidInput, match="serials"):
        await store.import_serials(GTIN, "tpd", ["A", "A"], "imp-3", "d", actor=QA)
    assert await store.find_imported(GTIN, "NEW1") is None
    assert len(await store.list_batches(GTIN)) == 1


# -- overlays and links -----------------------------------------------------------------


async def test_overlays_cover_lots_ranges_and_serials_and_are_lifted_with_history(store: Any) -> None:
    recall = await store.put_overlay(GTIN, "recalled", LotScope("L42"), QA, "contamination, notice 7")
    theft = await store.put_overlay(GTIN, "stolen", SerialRange("1000", "1999"), QA, "truck 7")
    await store.put_overlay(GTIN, "stolen", SerialScope("ABC"), QA, "reported by owner")
    await store.put_overlay(GTIN, "recalled", CounterRange("eu", 0, 99), QA, "first batch")
    await store.put_overlay(OTHER_GTIN, "recalled", GtinScope(), QA, "all of it")
    overlays = await store.get_overlays(GTIN)
    assert len(overlays) == 4
    assert flags_for(overlays, serial="1500", lot="L42") == {"recalled", "stolen"}
    assert flags_for(overlays, serial="ABC") == {"stolen"}
    assert flags_for(overlays, serial="Z", profile="eu", counter=5) == {"recalled"}
    lifted = await store.lift_overlay(GTIN, recall.id, QA, "all clear")
    assert lifted.lifted.reason == "all clear"
    assert recall.id not in {o.id for o in await store.get_overlays(GTIN)}
    assert recall.id in {o.id for o in await store.get_overlays(GTIN, include_lifted=True)}
    with pytest.raises(IllegalTransition, match="was lifted"):
        await store.lift_overlay(GTIN, recall.id, QA, "again")
    with pytest.raises(NotFound):
        await store.lift_overlay(GTIN, "ov-nope", QA, "x")
    with pytest.raises(InvalidInput, match="overlay.scope"):
        await store.put_overlay(GTIN, "stolen", SerialRange("9", "1"), QA, "backwards")
    with pytest.raises(InvalidInput, match="overlay.kind"):
        await store.put_overlay(GTIN, "lost", GtinScope(), QA, "x")
    assert theft in await store.get_overlays(GTIN)


async def test_links_are_stored_per_anchor_and_read_as_one_chain(store: Any) -> None:
    pip = LinkRecord("gs1:pip", "https://example.com/p", "Product", "text/html", ("en", "de"), ("retail",))
    lot_epil = LinkRecord("gs1:epil", "https://example.com/leaflet/L42", "Leaflet", "application/pdf", ("en",))
    ser_reg = LinkRecord("gs1:registerProduct", "https://example.com/reg?s=S1", "Register")
    await store.put_links(Anchor(GTIN), [pip], QA)
    await store.put_links(Anchor(GTIN, lot="L42"), [lot_epil], QA)
    version = await store.put_links(Anchor(GTIN, serial="S1"), [ser_reg], QA)
    assert version == await store.gtin_version(GTIN)
    chain = await store.get_link_chain(GTIN, "L42", "S1")
    assert chain == ((ser_reg,), (lot_epil,), (pip,))
    assert await store.get_link_chain(GTIN, "L43", "S2") == ((), (), (pip,))
    assert await store.get_link_chain(GTIN, None, None) == ((), (), (pip,))
    assert await store.get_links(Anchor(GTIN, lot="L42")) == (lot_epil,)
    assert set(await store.list_link_anchors(GTIN)) == {Anchor(GTIN), Anchor(GTIN, lot="L42"), Anchor(GTIN, serial="S1")}
    await store.put_links(Anchor(GTIN, lot="L42"), [], QA)
    assert await store.get_links(Anchor(GTIN, lot="L42")) == ()
    with pytest.raises(InvalidInput, match=r"links\[1\].hreflang\[0\]"):
        await store.put_links(Anchor(GTIN), [pip, pip._replace(hreflang=("english!",))], QA)
    with pytest.raises(InvalidInput, match="not both"):
        await store.put_links(Anchor(GTIN, lot="L1", serial="S1"), [pip], QA)
    assert await store.get_links(Anchor(GTIN)) == (pip,)


async def test_bulk_link_writes_are_validated_whole_and_fed_once_per_gtin(store: Any) -> None:
    link = LinkRecord("gs1:pip", "https://example.com/p", "Product")
    entries = [(Anchor(GTIN, serial=f"S{i}"), [link._replace(href=f"https://example.com/s/{i}")]) for i in range(2500)]
    entries += [(Anchor(OTHER_GTIN), [link]), (Anchor(GTIN, lot="GONE"), [])]
    await store.put_links(Anchor(GTIN, lot="GONE"), [link], QA)
    with pytest.raises(InvalidInput, match=r"^entries\[2\].links\[0\].href"):
        await store.put_links_many([entries[0], entries[1], (Anchor(GTIN), [link._replace(href="nope")])], QA)
    assert await store.get_links(Anchor(GTIN, serial="S0")) == ()  # nothing of the bad batch written
    cursor = await store.changes_cursor()
    assert await store.put_links_many(entries, QA) == 2502
    assert (await store.get_link_chain(GTIN, "GONE", "S2499")).serial[0].href == "https://example.com/s/2499"
    assert await store.get_links(Anchor(GTIN, lot="GONE")) == ()
    assert await store.get_links(Anchor(OTHER_GTIN)) == (link,)
    fed = (await store.changes(cursor)).changes
    assert {(c.gtin, c.kind, c.subject) for c in fed} == {(GTIN, "links", "*"), (OTHER_GTIN, "links", "*")}


# -- scans, audit, change feed -----------------------------------------------------------


async def test_scans_are_appended_in_batches_and_read_back_newest_first(store: Any) -> None:
    scans = [ScanEvent(1_700_000_000_000 + i, GTIN, f"S{i % 3}", None, "consumer", "gs1:pip", "sold", None)
             for i in range(6000)]
    scans.append(ScanEvent(1_800_000_000_000, OTHER_GTIN, None, "L1", "regulator", None, None, "ctx"))
    assert await store.append_scans(scans) == 6001
    history = await store.scan_history(GTIN, "S1", limit=5)
    assert [s.at_ms for s in history] == [1_700_000_000_000 + i for i in (5998, 5995, 5992, 5989, 5986)]
    assert history[0] == scans[5998]
    assert await store.scan_history(GTIN, "NEVER") == []
    with pytest.raises(InvalidInput, match="scans"):
        await store.append_scans([("not", "a", "scan")])
    with pytest.raises(InvalidInput, match="gtin"):
        await store.append_scans([ScanEvent(1, "123", None, None, "consumer", None, None, None)])


async def test_every_write_is_audited_with_who_and_what(store: Any) -> None:
    await commissioned(store, "S1")
    batch = await store.allocate_range(GTIN, "eu", 5, "r1", "d", actor=LINE)
    await store.put_overlay(GTIN, "recalled", GtinScope(), QA, "x")
    entries = await store.audit(GTIN)
    assert [(e.action, e.actor) for e in entries] == [("event:commission", LINE), ("allocate", LINE), ("overlay:put", QA)]
    assert entries[0].subject == "S1" and entries[1].subject == batch.id
    assert [e.action for e in await store.audit(GTIN, after=entries[0].cursor)] == ["allocate", "overlay:put"]
    assert await store.audit(OTHER_GTIN) == []


async def test_the_change_feed_reports_cacheable_changes_in_order(store: Any) -> None:
    start = await store.changes_cursor()
    assert await store.gtin_version(GTIN) == 0
    await commissioned(store, "S1")
    batch = await store.allocate_range(GTIN, "eu", 5, "r1", "d", actor=LINE)
    overlay = await store.put_overlay(GTIN, "stolen", SerialScope("S1"), QA, "x")
    await store.put_links(Anchor(GTIN, lot="L1"), [LinkRecord("gs1:pip", "https://e.com", "P")], QA)
    await store.put_overlay(OTHER_GTIN, "recalled", GtinScope(), QA, "x")
    got = await store.changes(start)
    assert not got.reset
    assert [(c.gtin, c.kind, c.subject, c.version) for c in got.changes] == [
        (GTIN, "unit", "S1", 1), (GTIN, "batch", batch.id, 2), (GTIN, "overlay", overlay.id, 3),
        (GTIN, "links", "lot:L1", 4), (OTHER_GTIN, "overlay", got.changes[-1].subject, 1)]
    assert await store.gtin_version(GTIN) == 4
    assert (await store.changes(got.cursor)).changes == ()
    page = await store.changes(start, limit=2)
    assert len(page.changes) == 2 and (await store.changes(page.cursor)).changes == got.changes[2:]
    with pytest.raises(InvalidInput, match="after"):
        await store.changes("not-a-cursor")


async def test_concurrent_reads_are_coalesced_and_each_gets_its_own_answer(store: Any) -> None:
    for i in range(0, 100, 2):
        await store.append_event(GTIN, f"C{i}", ev("commission", lot=f"L{i}"))
    serials = [f"C{i}" if i % 2 == 0 else f"MISSING{i}" for i in range(100)]
    units = await asyncio.gather(*(store.get_unit(GTIN, s) for s in serials))
    for serial, unit in zip(serials, units):
        assert (unit.lot if unit else None) == (f"L{serial[1:]}" if serial.startswith("C") else None)
    many = await store.get_units([(GTIN, s) for s in serials] + [(OTHER_GTIN, "C0")])
    assert many[:-1] == units and many[-1] is None


async def test_a_malformed_record_is_reported_and_harms_nothing_else(store: Any, store_url: str) -> None:
    await commissioned(store, "GOOD")
    await commissioned(store, "BAD")
    key = "units" if store_url.startswith("sqlite") else store.keys.unit(GTIN, "BAD")
    raw_set(store, store_url, key, b"\x01\xc1garbage", gtin=GTIN, serial="BAD")
    with pytest.raises(CorruptRecord) as err:
        await store.get_unit(GTIN, "BAD")
    assert "BAD" in err.value.key
    good, bad = await asyncio.gather(store.get_unit(GTIN, "GOOD"), store.get_unit(GTIN, "BAD"), return_exceptions=True)
    assert good.version == 1 and isinstance(bad, CorruptRecord)
    with pytest.raises(CorruptRecord):
        await store.append_event(GTIN, "BAD", ev("ship"))
    assert len(await store.get_events(GTIN, "BAD")) == 1  # refused, not overwritten
    raw_set(store, store_url, key, b"\x09future-format", gtin=GTIN, serial="BAD")
    with pytest.raises(CorruptRecord, match="unknown format byte 9"):
        await store.get_unit(GTIN, "BAD")
    await store.append_event(GTIN, "GOOD", ev("ship"))
    assert (await store.get_unit(GTIN, "GOOD")).state is State.SHIPPED


async def test_a_consumer_behind_a_trimmed_feed_is_told_to_reset(store_url: str) -> None:
    from twin.store import open_store

    url = store_url + ("&" if "?" in store_url else "?") + "feed_maxlen=10"
    link = LinkRecord("gs1:pip", "https://e.com", "P")
    async with await open_store(url) as store:
        from_start = await store.changes_cursor()
        await store.put_links(Anchor(GTIN), [link], QA)
        early = await store.changes_cursor()
        assert not (await store.changes(from_start)).reset
        for i in range(300):
            await store.put_links(Anchor(GTIN, lot=f"L{i}"), [link], QA)
        assert (await store.changes(from_start)).reset
        assert (await store.changes(early)).reset
        recent = await store.changes_cursor()
        await store.put_links(Anchor(GTIN, lot="LAST"), [link], QA)
        tail = await store.changes(recent)
        assert not tail.reset and [c.subject for c in tail.changes] == ["lot:LAST"]


async def test_reads_across_hundreds_of_gtins_at_once_are_one_batch(store: Any) -> None:
    from twin.identity import gtin_check_digit

    gtins = [f"{body}{gtin_check_digit(body)}" for body in (f"0950600{n:06d}" for n in range(300))]
    for gtin in gtins[:10]:
        await store.append_event(gtin, "S1", ev("commission", lot="L7"))
    pairs = [(g, s) for g in gtins for s in ("S1", "S2")]
    units = await asyncio.gather(*(store.get_unit(g, s) for g, s in pairs))
    assert [u is not None for u in units] == [g in gtins[:10] and s == "S1" for g, s in pairs]
    imported = await asyncio.gather(*(store.find_imported(g, "S1") for g in gtins))
    assert imported == [None] * 300


# -- journeys: audit extras, idempotent overlays, pending confirmations, tokens, rate counters


async def test_writes_carry_the_callers_audit_detail(store: Any) -> None:
    where = {"client": "203.0.113.9", "via": "api", "idempotency_key": "k-1"}
    await store.append_event(GTIN, "S1", ev("commission"), audit={**where, "version": 99})
    overlay = await store.put_overlay(GTIN, "recalled", LotScope("L1"), QA, "seal", audit=where)
    await store.lift_overlay(GTIN, overlay.id, QA, "fixed", audit=where)
    entries = await store.audit(GTIN)
    assert [e.action for e in entries] == ["event:commission", "overlay:put", "overlay:lift"]
    assert all(e.detail["client"] == "203.0.113.9" and e.detail["via"] == "api" for e in entries)
    assert entries[0].detail["version"] == 1  # the store's own detail wins over the caller's
    with pytest.raises(InvalidInput, match="audit"):
        await store.append_event(GTIN, "S1", ev("ship"), audit={"client": {"nested": 1}})
    assert (await store.get_unit(GTIN, "S1")).version == 1


async def test_an_overlay_with_an_idempotency_key_is_written_once(store: Any) -> None:
    first = await store.put_overlay(GTIN, "recalled", LotScope("L1"), QA, "seal", idempotency_key="rk-1")
    again = await store.put_overlay(GTIN, "recalled", LotScope("L1"), QA, "seal", idempotency_key="rk-1")
    assert again == first and len(await store.get_overlays(GTIN)) == 1
    with pytest.raises(IdempotencyConflict):
        await store.put_overlay(GTIN, "recalled", LotScope("L2"), QA, "seal", idempotency_key="rk-1")
    other = await store.put_overlay(GTIN, "recalled", LotScope("L1"), QA, "seal", idempotency_key="rk-2")
    assert other.id != first.id and len(await store.get_overlays(GTIN)) == 2
    assert [e.action for e in await store.audit(GTIN)] == ["overlay:put", "overlay:put"]


async def test_pending_confirmations_wait_count_wrong_codes_and_expire(store: Any) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    record = {"owner": "o_abcdefgh", "name": "Ana", "contact": "ana@example.com", "code_hash": "x" * 64}
    assert await store.get_pending(GTIN, "S1", "p1") is None
    assert await store.fail_pending(GTIN, "S1", "p1") == 0
    await store.put_pending(GTIN, "S1", "p1", record, soon, Actor("consumer", "anonymous"), audit={"client": "c"})
    assert await store.get_pending(GTIN, "S1", "p1") == {**record, "attempts": 0}
    assert [await store.fail_pending(GTIN, "S1", "p1") for _ in range(3)] == [1, 2, 3]
    await store.put_pending(GTIN, "S1", "p1", {**record, "used_by": "k"}, soon, Actor("owner", "o_abcdefgh"))
    assert await store.get_pending(GTIN, "S1", "p1") == {**record, "used_by": "k", "attempts": 3}
    assert await store.get_pending(GTIN, "S2", "p1") is None and await store.get_pending(GTIN, "S1", "p2") is None
    past = datetime.now(UTC) - timedelta(seconds=1)
    await store.put_pending(GTIN, "S1", "gone", record, past, Actor("consumer", "anonymous"))
    assert await store.get_pending(GTIN, "S1", "gone") is None and await store.fail_pending(GTIN, "S1", "gone") == 0
    audit = await store.audit(GTIN)
    assert [e.action for e in audit] == ["pending:put"] * 3 and audit[0].detail == {"pending": "p1", "client": "c"}
    assert "Ana" not in repr(audit) and "ana@example.com" not in repr(audit)
    assert await store.get_unit(GTIN, "S1") is None  # a pending confirmation is no event
    with pytest.raises(InvalidInput, match="pending_id"):
        await store.put_pending(GTIN, "S1", "bad id!", record, soon, Actor("consumer", "anonymous"))
    with pytest.raises(InvalidInput, match="record"):
        await store.put_pending(GTIN, "S1", "p3", {"blob": "x" * 10_000}, soon, Actor("consumer", "anonymous"))


async def test_issued_tokens_are_recorded_once_and_revocations_are_shared(store: Any) -> None:
    exp = int(datetime.now(UTC).timestamp()) + 3600
    grant = {"principal": "tech:ana", "role": "technician", "iat": exp - 3600, "exp": exp, "gtins": [GTIN]}
    assert await store.record_token("t1", grant, QA, audit={"client": "c"}) == (grant, False)
    assert await store.record_token("t1", {**grant, "role": "admin"}, QA) == (grant, True)
    assert await store.get_token("t1") == grant and await store.get_token("nope") is None
    assert await store.revoked_tokens() == {}
    until = datetime.fromtimestamp(exp, UTC)
    assert await store.revoke_token("t1", until, QA, "left", audit={"client": "c"}) is True
    assert await store.revoke_token("t1", until, QA, "left") is False
    assert await store.revoke_token("never-recorded", until, QA, "lost") is True
    assert await store.revoked_tokens() == {"t1": until, "never-recorded": until}
    await store.revoke_token("t-expired", datetime.now(UTC) - timedelta(seconds=1), QA, "old")
    assert "t-expired" not in await store.revoked_tokens()
    log = await store.token_log()
    assert [(e.action, e.subject) for e in log] == [("token:issue", "t1"), ("token:revoke", "t1"),
                                                    ("token:revoke", "never-recorded"), ("token:revoke", "t-expired")]
    assert log[0].detail == {"role": "technician", "for": "tech:ana", "client": "c"} and log[1].detail["reason"] == "left"
    assert [e.subject for e in await store.token_log(after=log[1].cursor)] == ["never-recorded", "t-expired"]
    with pytest.raises(InvalidInput, match="record.exp"):
        await store.record_token("t2", {"principal": "x"}, QA)


async def test_line_keys_are_added_once_replaced_listed_and_logged(store: Any) -> None:
    record = {"id": "k1", "hash": "ab" * 32, "site": "plant-1", "line": "L7", "gtins": [GTIN], "revoked": None}
    assert await store.line_keys() == [] and await store.get_line_key("k1") is None
    assert await store.add_line_key("k1", record, QA, audit={"client": "c"}) == (record, False)
    assert await store.add_line_key("k1", {**record, "site": "other"}, QA) == (record, True)  # a retry writes nothing
    await store.add_line_key("k0", {**record, "id": "k0"}, QA)
    await store.set_line_key("k1", {**record, "revoked": 1_750_000_000}, QA, "linekey:revoke", audit={"reason": "gone"})
    assert await store.get_line_key("k1") == {**record, "revoked": 1_750_000_000}
    assert [r["id"] for r in await store.line_keys()] == ["k0", "k1"]
    with pytest.raises(NotFound):
        await store.set_line_key("nope", record, QA, "linekey:revoke")
    with pytest.raises(InvalidInput, match="key_id"):
        await store.add_line_key("bad id!", record, QA)
    with pytest.raises(InvalidInput, match="record"):
        await store.add_line_key("k2", {"blob": "x" * 10_000}, QA)
    log = [(e.action, e.subject) for e in await store.token_log()]
    assert log == [("linekey:add", "k1"), ("linekey:add", "k0"), ("linekey:revoke", "k1")]


async def test_rate_counters_count_per_bucket_and_start_over_after_their_ttl(store: Any) -> None:
    assert [await store.count_hit("register:203.0.113.9:1", 60) for _ in range(3)] == [1, 2, 3]
    assert await store.count_hit("register:198.51.100.1:1", 60) == 1
    assert await store.count_hit("short:x", 1) == 1
    await asyncio.sleep(1.1)
    assert await store.count_hit("short:x", 1) == 1
    with pytest.raises(InvalidInput, match="bucket"):
        await store.count_hit("{evil}", 60)
