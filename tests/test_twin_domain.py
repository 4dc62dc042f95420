"""The twin's pure domain: lifecycle, events, units, ownership, overlays, links, codec.

No I/O here; these are the rules every backend shares.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin import codec
from twin.batch import (
    Batch,
    BatchKind,
    BatchRange,
    BatchStatus,
    RangeIndex,
    batch_id,
    check_status_move,
    parse_batch_id,
)
from twin.coalesce import Coalescer
from twin.errors import (
    CorruptRecord,
    IllegalTransition,
    InvalidInput,
    StoreError,
    TransferRefused,
    TwinError,
    UnknownEventType,
)
from twin.events import EVENT_TYPES, Actor, Event, make_event
from twin.identity import check_gtin, check_lot, check_serial, gtin_check_digit
from twin.lifecycle import RULES, TERMINAL, State, next_state
from twin.links import Anchor, LinkRecord, check_links
from twin.overlays import (
    CounterRange,
    GtinScope,
    Lift,
    LotScope,
    Overlay,
    SerialRange,
    SerialScope,
    covers,
    flags_for,
)
from twin.ownership import (
    PersonalData,
    TransferOffer,
    check_claim,
    hash_transfer_code,
    issue_transfer_code,
    new_owner_id,
)
from twin.unit import Unit, apply_event, replay, unit_from_batch

GTIN = "09506000134352"
LINE = Actor("line", "line-1")
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def ev(kind: str, actor: Actor = LINE, at: datetime = T0, **data: object) -> Event:
    return make_event(kind, actor, "test", at=at, **data)


# -- identity ---------------------------------------------------------------------------


@pytest.mark.parametrize("gtin", ["09506000134352", "00012345600012", "04006381333931", "10614141000019"])
def test_well_formed_gtins_pass(gtin: str) -> None:
    assert check_gtin(gtin) == gtin and gtin_check_digit(gtin[:13]) == int(gtin[13])


@pytest.mark.parametrize("bad", ["0950600013435", "095060001343521", "0950600013435X", 9506000134352, None])
def test_malformed_gtins_are_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidInput) as err:
        check_gtin(bad)
    assert err.value.field == "gtin"


def test_serials_and_lots_are_x20_over_cset82() -> None:
    assert check_serial("!\"%&'()*+,-./09:;<=>") == "!\"%&'()*+,-./09:;<=>"
    assert check_serial("Az09-._/") == "Az09-._/"
    for bad in ["", "x" * 21, "with space", "brace{", "tilde~", "hash#"]:
        with pytest.raises(InvalidInput, match="^serial"):
            check_serial(bad)
    with pytest.raises(InvalidInput, match="^lot"):
        check_lot("L" * 21)


# -- lifecycle ----------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize("state", [None, *State])
def test_every_state_event_pair_is_allowed_by_the_table_or_refused_with_a_reason(
    state: State | None, event_type: str
) -> None:
    rule = RULES[event_type]
    if state in rule.from_states:
        assert next_state(state, event_type) == (rule.to or state)
    else:
        with pytest.raises(IllegalTransition) as err:
            next_state(state, event_type)
        assert err.value.reason.startswith(f"cannot {event_type} a unit")
        assert (err.value.event_type, err.value.state) == (event_type, state)


def test_the_lifecycle_reads_like_the_issue() -> None:
    path = [None, State.COMMISSIONED, State.SHIPPED, State.SOLD, State.REGISTERED, State.IN_SERVICE, State.REGISTERED]
    for state, event_type, after in zip(
        path, ["commission", "ship", "sell", "register", "start_service", "end_service"], path[1:]
    ):
        assert next_state(state, event_type) is after
    assert next_state(State.IN_SERVICE, "end_of_life") is State.END_OF_LIFE
    assert next_state(State.SHIPPED, "decommission") is State.DECOMMISSIONED


def test_nothing_leaves_a_terminal_state_and_the_dpp_outlives_the_product() -> None:
    for state in TERMINAL:
        allowed = {t for t, r in RULES.items() if state in r.from_states}
        assert allowed == {"dpp", "recall", "recall_lift"}
        assert all(RULES[t].to is None for t in allowed)


def test_every_event_type_has_a_lifecycle_rule() -> None:
    assert set(RULES) == set(EVENT_TYPES)


# -- events -------------------------------------------------------------------------------


def test_event_data_is_checked_against_its_type() -> None:
    with pytest.raises(UnknownEventType, match="event.type"):
        ev("teleport")
    with pytest.raises(InvalidInput, match=r"event.data.purchase_date: required for 'sell'"):
        ev("sell")
    with pytest.raises(InvalidInput, match=r"event.data.purchase_date: expected a date YYYY-MM-DD, got '2025-13-01'"):
        ev("sell", purchase_date="2025-13-01")
    with pytest.raises(InvalidInput, match=r"event.data.purchase_date: expected a date, got a datetime"):
        ev("sell", purchase_date=T0)
    with pytest.raises(InvalidInput, match=r"event.data.jurisdiction"):
        ev("sell", purchase_date="2025-01-01", jurisdiction="Europe")
    with pytest.raises(InvalidInput, match=r"event.data: a dpp event carries exactly one"):
        ev("dpp", href="https://x.example", document={"a": 1})
    with pytest.raises(InvalidInput, match=r"event.data.document: is not JSON-serialisable"):
        ev("dpp", document={"when": object()})
    with pytest.raises(InvalidInput, match=r"event.data.code_hash"):
        ev("transfer_offer", code_hash="abc", expires_at=T0)


def test_event_data_is_normalised_to_what_the_stores_keep() -> None:
    e = ev("sell", purchase_date=date(2025, 3, 1))
    assert e.data["purchase_date"] == "2025-03-01"
    offset = datetime(2025, 3, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    e = ev("transfer_offer", at=offset, code_hash="0" * 64, expires_at=offset)
    assert e.at == datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert e.data["expires_at"] == "2025-03-01T12:00:00.123000Z"
    with pytest.raises(TypeError):
        e.data["x"] = 1  # type: ignore[index]


# -- units ----------------------------------------------------------------------------


def test_flags_toggle_and_refuse_repeats() -> None:
    unit = replay(GTIN, "S", [ev("commission"), ev("report_stolen")])
    assert unit.stolen
    with pytest.raises(IllegalTransition, match="already reported stolen"):
        apply_event(unit, ev("report_stolen"), GTIN, "S")
    unit = apply_event(unit, ev("recovered"), GTIN, "S")
    assert not unit.stolen
    with pytest.raises(IllegalTransition, match="not recalled"):
        apply_event(unit, ev("recall_lift"), GTIN, "S")


def test_register_needs_a_purchase_date_from_a_sale_or_itself() -> None:
    owner = new_owner_id()
    unit = replay(GTIN, "S", [ev("commission")])
    with pytest.raises(InvalidInput, match="event.data.purchase_date: required: no sale"):
        apply_event(unit, ev("register", Actor("owner", owner), owner=owner), GTIN, "S")
    sold = apply_event(unit, ev("sell", purchase_date="2025-02-02", jurisdiction="EU"), GTIN, "S")
    registered = apply_event(sold, ev("register", Actor("owner", owner), owner=owner), GTIN, "S")
    assert (registered.purchase_date, registered.jurisdiction, registered.registered_on) == (
        date(2025, 2, 2), "EU", date(2025, 3, 1))


def test_a_pending_transfer_must_be_cancelled_before_another_is_offered() -> None:
    owner = new_owner_id()
    unit = replay(GTIN, "S", [ev("commission"), ev("register", Actor("owner", owner), owner=owner, purchase_date="2025-01-01")])
    _, offer = issue_transfer_code(T0)
    offered = apply_event(unit, ev("transfer_offer", code_hash=offer.code_hash, expires_at=offer.expires_at), GTIN, "S")
    with pytest.raises(IllegalTransition, match="already pending"):
        apply_event(offered, ev("transfer_offer", code_hash=offer.code_hash, expires_at=offer.expires_at), GTIN, "S")
    later = T0 + timedelta(days=30)  # the first offer has expired: a new one may replace it
    assert apply_event(offered, ev("transfer_offer", at=later, code_hash="1" * 64, expires_at=later + timedelta(days=1)),
                       GTIN, "S").transfer_offer.code_hash == "1" * 64
    cancelled = apply_event(offered, ev("transfer_cancel"), GTIN, "S")
    assert cancelled.transfer_offer is None
    with pytest.raises(IllegalTransition, match="no transfer is pending"):
        apply_event(cancelled, ev("transfer_cancel"), GTIN, "S")


def _batch(status: BatchStatus = BatchStatus.ALLOCATED) -> Batch:
    return Batch(batch_id(GTIN, "eu", 0), GTIN, "eu", 0, 100, status, BatchKind.MINTED, "r", "d", T0, T0, LINE,
                 "L1", date(2027, 1, 1), "line-7", "plant-2", None)


def test_units_without_events_take_their_batch_state() -> None:
    assert unit_from_batch(GTIN, "S", _batch()).state is State.COMMISSIONED
    assert unit_from_batch(GTIN, "S", _batch(BatchStatus.COMMITTED)).lot == "L1"
    assert unit_from_batch(GTIN, "S", _batch(BatchStatus.VOIDED)).state is State.DECOMMISSIONED


_SCRIPTS = st.lists(
    st.sampled_from([
        ("commission", {}), ("ship", {}), ("sell", {"purchase_date": "2025-01-01"}), ("register", {"owner": "o_owner_1"}),
        ("start_service", {}), ("end_service", {}), ("service", {"summary": "s"}), ("firmware", {"version": "1"}),
        ("end_of_life", {}), ("decommission", {}), ("report_stolen", {}), ("recovered", {}), ("recall", {}),
        ("recall_lift", {}), ("dpp", {"href": "https://d.example"}), ("transfer_cancel", {}),
    ]),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_SCRIPTS)
def test_any_event_sequence_folds_to_a_record_the_codec_round_trips(script: list[tuple[str, dict]]) -> None:
    unit = None
    for kind, data in script:
        try:
            unit = apply_event(unit, ev(kind, **data), GTIN, "S")
        except (IllegalTransition, InvalidInput):
            continue  # refused: the record stays as it was
    if unit is not None:
        assert unit.version <= len(script)
        blob = codec.encode_unit(unit)
        assert codec.decode_unit(blob, GTIN, "S", "k") == unit


# -- codec --------------------------------------------------------------------------------


def test_every_record_type_round_trips() -> None:
    full = Unit(GTIN, "S", State.IN_SERVICE, 9, "L1", "b", date(2027, 1, 1), True, True, "o_x", date(2025, 1, 1), "EU",
                date(2025, 1, 2), date(2025, 6, 1), TransferOffer("a" * 64, T0), "2.0", 3, date(2025, 7, 1), 5,
                "https://d.example", None, T0, State.COMMISSIONED)
    assert codec.decode_unit(codec.encode_unit(full), GTIN, "S", "k") == full
    batch = _batch()
    assert codec.decode_batch(codec.encode_batch(batch), batch.id, "k") == batch
    for scope in [GtinScope(), LotScope("L"), SerialRange("1", "9"), CounterRange("eu", 0, 9), SerialScope("S")]:
        o = Overlay("ov-1", GTIN, "recalled", scope, "r", LINE, T0, Lift(T0, LINE, "ok"))
        assert codec.decode_overlay(codec.encode_overlay(o), "k") == o
    links = (LinkRecord("gs1:pip", "https://e.example", "P", "text/html", ("en",), ("c",)),)
    assert codec.decode_links(codec.encode_links(links), "k") == links
    assert codec.decode_personal(codec.encode_personal(PersonalData("A", "b")), "k") == PersonalData("A", "b")
    e = ev("dpp", document={"a": [1, 2, {"b": None}]})
    assert codec.decode_event(codec.encode_event(e), "k") == e


def test_a_record_from_a_newer_version_with_appended_fields_is_still_read() -> None:
    unit = replay(GTIN, "S", [ev("commission", lot="L1")])
    fields = msgpack.unpackb(codec.encode_unit(unit)[1:])
    newer = bytes([codec.FORMAT]) + msgpack.packb(fields + ["a field from the future"])
    assert codec.decode_unit(newer, GTIN, "S", "k") == unit


@pytest.mark.parametrize("blob,problem", [
    (b"", "empty value"),
    (b"\x05abc", "unknown format byte 5"),
    (b"\x01\xc1", "not msgpack"),
    (b"\x01" + msgpack.packb({"a": 1}), "expected an array"),
    (b"\x01" + msgpack.packb([99] * 20), "bad field"),
])
def test_malformed_records_raise_corrupt_record_naming_the_key(blob: bytes, problem: str) -> None:
    with pytest.raises(CorruptRecord, match=problem) as err:
        codec.decode_unit(blob, GTIN, "S", "sl:{09506000134352}:u:S")
    assert err.value.key == "sl:{09506000134352}:u:S"


# -- ownership ------------------------------------------------------------------------


def test_transfer_codes_are_hashed_and_checked() -> None:
    code, offer = issue_transfer_code(T0, ttl=timedelta(hours=1))
    assert len(code) == 19 and code.count("-") == 3 and offer.expires_at == T0 + timedelta(hours=1)
    assert hash_transfer_code(f" {code.lower()} ") == offer.code_hash
    assert code not in repr(offer)
    check_claim(offer, hash_transfer_code(code), T0)
    with pytest.raises(TransferRefused, match="does not match"):
        check_claim(offer, hash_transfer_code("0000-0000-0000-0000"), T0)
    with pytest.raises(TransferRefused, match="no transfer is pending"):
        check_claim(None, offer.code_hash, T0)
    with pytest.raises(InvalidInput, match="transfer_code"):
        hash_transfer_code("")
    assert new_owner_id() != new_owner_id()


def test_personal_data_is_bounded() -> None:
    with pytest.raises(InvalidInput, match="personal.name"):
        PersonalData("", "x@example.com")
    with pytest.raises(InvalidInput, match="personal.contact: is 201 characters"):
        PersonalData("A", "x" * 201)


# -- overlays, links, batches -------------------------------------------------------------


def test_serial_ranges_compare_by_length_then_character() -> None:
    scope = SerialRange("9", "120")
    assert [s for s in ["8", "9", "10", "99", "120", "121", "1000"] if covers(scope, serial=s)] == ["9", "10", "99", "120"]
    assert not covers(LotScope("L1"), serial="x")  # unknown lot: not covered
    assert covers(CounterRange("eu", 10, 20), profile="eu", counter=20)
    assert not covers(CounterRange("eu", 10, 20), profile="us", counter=15)


def test_lifted_overlays_flag_nothing() -> None:
    o = Overlay("ov", GTIN, "recalled", GtinScope(), "r", LINE, T0)
    assert flags_for([o], serial="S") == {"recalled"}
    assert flags_for([replace(o, lifted=Lift(T0, LINE, "ok"))], serial="S") == frozenset()


def test_links_are_validated_field_by_field() -> None:
    ok = LinkRecord("gs1:pip", "https://e.example/p", "P")
    assert check_links(Anchor(GTIN), [ok]) == (ok,)
    for bad, field in [
        (ok._replace(link_type="pip"), "links[0].link_type"),
        (ok._replace(title=""), "links[0].title"),
        (ok._replace(type="html"), "links[0].type"),
        (ok._replace(context="retail"), "links[0].context"),
    ]:
        with pytest.raises(InvalidInput) as err:
            check_links(Anchor(GTIN), [bad])
        assert err.value.field == field
    with pytest.raises(InvalidInput, match="anchor.gtin"):
        check_links(Anchor("123"), [ok])
    with pytest.raises(InvalidInput, match="links: 201 links"):
        check_links(Anchor(GTIN), [ok] * 201)


def test_batch_ids_and_ranges() -> None:
    assert parse_batch_id(batch_id(GTIN, "eu-fmd", 123)) == (GTIN, "eu-fmd", 123)
    for bad in ["x", f"{GTIN}.eu", f"{GTIN}.e u.1", f"{GTIN}.eu.-1", "09506000134353.eu.1"]:
        with pytest.raises(InvalidInput, match="batch_id"):
            parse_batch_id(bad)
    index = RangeIndex([BatchRange(10, 5, "b"), BatchRange(0, 10, "a")])
    assert [index.find(c) for c in (0, 9, 10, 14, 15)] == ["a", "a", "b", "b", None]
    assert 99 in _batch() and 100 not in _batch() and _batch().end == 100
    check_status_move(_batch(), BatchStatus.COMMITTED)
    with pytest.raises(IllegalTransition):
        check_status_move(_batch(BatchStatus.VOIDED), BatchStatus.COMMITTED)



@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 0, 1, 7, 1000, 2**40]), st.sampled_from([1, 2, 3, 10, 500, 2**30])),
                max_size=12), st.lists(st.integers(0, 2**42), max_size=20))
def test_the_range_index_finds_what_a_walk_over_the_ranges_finds(shape: list[tuple[int, int]],
                                                                 probes: list[int]) -> None:
    """The index narrows by a bucket table before it bisects: ranges of any widths and gaps
    (wide ones among narrow ones put many ranges in one bucket) answer as a plain walk."""
    ranges, at = [], 0
    for k, (gap, count) in enumerate(shape):
        at += gap
        ranges.append(BatchRange(at, count, f"b{k}"))
        at += count
    index = RangeIndex(reversed(ranges))
    edges = [c for r in ranges for c in (r.start - 1, r.start, r.start + r.count - 1, r.start + r.count)]
    for counter in [0, at, at + 1, 2**53, *edges, *probes]:
        expected = next((r.batch_id for r in ranges if r.start <= counter < r.start + r.count), None)
        assert index.find(counter) == expected, (ranges, counter)
    assert len(index) == len(ranges)

# -- coalescing -----------------------------------------------------------------------------


def test_the_coalescer_fails_one_batch_without_failing_later_ones() -> None:
    calls: list[list[str]] = []

    async def fetch(keys: list[str]) -> list[str]:
        calls.append(keys)
        await asyncio.sleep(0)
        if "boom" in keys:
            raise ConnectionError("lost")
        return [k * 2 for k in keys]

    async def main() -> None:
        reader: Coalescer[str, str] = Coalescer(fetch, max_batch=3, max_inflight=1)
        results = await asyncio.gather(*(reader.get(k) for k in "abcde"), return_exceptions=True)
        assert results == ["aa", "bb", "cc", "dd", "ee"]
        assert calls == [["a", "b", "c"], ["d", "e"]]
        bad = await asyncio.gather(reader.get("boom"), reader.get("x"), return_exceptions=True)
        assert all(isinstance(r, StoreError) and "lost" in str(r) for r in bad)
        waiter = reader.get("slow")
        waiter.cancel()
        assert await reader.get("after") == "afterafter"

    asyncio.run(main())


def test_every_error_is_a_twin_error() -> None:
    assert issubclass(CorruptRecord, TwinError) and issubclass(InvalidInput, ValueError)
