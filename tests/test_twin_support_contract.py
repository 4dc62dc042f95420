"""Support sessions and parts fitted on every backend (SQLite, Redis, Redis Cluster): appended
like other events, idempotent, audited, folded into the record, refused whole when bad."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from twin.errors import IdempotencyConflict, IllegalTransition, InvalidInput
from twin.events import Actor, make_event
from twin.unit import replay, unit_from_batch

pytestmark = pytest.mark.anyio

GTIN = "09506000134352"
TECH = Actor("technician", "t-7")
OWNER = Actor("owner", "owner-0001")
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def support(at: datetime = T0, **data: Any):
    return make_event("support", OWNER, "support session", at=at, **data)


async def test_support_sessions_append_in_order_idempotently_and_audited(store: Any) -> None:
    batch = await store.allocate_range(GTIN, "eu", 10, "req-s", "d-s", actor=Actor("line", "l-1"))
    origin = unit_from_batch(GTIN, "SUP1", batch)
    first = await store.append_event(GTIN, "SUP1", support(fault_code="E101", steps=["topped up"], outcome="resolved"),
                                     origin=origin, idempotency_key="sess-1", audit={"via": "api"})
    again = await store.append_event(GTIN, "SUP1", support(T0 + timedelta(seconds=3), fault_code="E101",
                                                           steps=["topped up"], outcome="resolved"),
                                     origin=origin, idempotency_key="sess-1")
    assert (first.version, first.replayed, again.version, again.replayed) == (1, False, 1, True)
    with pytest.raises(IdempotencyConflict):
        await store.append_event(GTIN, "SUP1", support(fault_code="E133", outcome="escalated"), idempotency_key="sess-1")
    await store.append_event(GTIN, "SUP1", support(T0 + timedelta(days=1), fault_code="E133", outcome="technician_booked",
                                                   session="call-9"), expected_version=1)
    events = await store.get_events(GTIN, "SUP1")
    assert [(e.type, e.data["fault_code"], e.data["outcome"]) for e in events] == [
        ("support", "E101", "resolved"), ("support", "E133", "technician_booked")]
    assert events[1].data["session"] == "call-9" and events[0].actor == OWNER
    unit = await store.get_unit(GTIN, "SUP1")
    assert unit.version == 2 and unit.made_on == batch.created_at.date()
    assert replay(GTIN, "SUP1", events, unit.implied_origin()) == unit
    audit = [a for a in await store.audit(GTIN, limit=100) if a.subject.endswith("SUP1")]
    assert len(audit) == 2 and all(a.actor.role == "owner" for a in audit)


async def test_bad_support_sessions_are_refused_and_write_nothing(store: Any) -> None:
    await store.append_event(GTIN, "SUP2", make_event("commission", Actor("line", "l"), "made", at=T0))
    with pytest.raises(InvalidInput, match="event.data.outcome: expected one of resolved, escalated, technician_booked"):
        await store.append_event(GTIN, "SUP2", support(fault_code="E101", outcome="fixed?"))
    with pytest.raises(InvalidInput, match="event.data.fault_code: required"):
        await store.append_event(GTIN, "SUP2", support(outcome="resolved"))
    await store.append_event(GTIN, "SUP2", make_event("end_of_life", OWNER, "scrapped", at=T0))
    with pytest.raises(IllegalTransition, match="cannot support a unit that is end_of_life"):
        await store.append_event(GTIN, "SUP2", support(fault_code="E101", outcome="resolved"))
    assert [e.type for e in await store.get_events(GTIN, "SUP2")] == ["commission", "end_of_life"]


async def test_parts_fitted_installation_and_firmware_dates_are_kept_on_the_record(store: Any) -> None:
    days = [T0 + timedelta(days=n) for n in range(6)]
    line = Actor("line", "l")
    for event in [make_event("commission", line, "made", at=days[0]),
                  make_event("register", OWNER, "mine", at=days[1], owner="owner-0001", purchase_date="2025-03-01"),
                  make_event("start_service", TECH, "installed", at=days[2]),
                  make_event("service", TECH, "filter", at=days[3], summary="filter", parts=["09506000134376", "X-12"]),
                  make_event("firmware", TECH, "ota", at=days[4], version="3.1"),
                  make_event("service", TECH, "filter again", at=days[5], summary="filter", parts=["09506000134376"])]:
        await store.append_event(GTIN, "SUP3", event)
    unit = await store.get_unit(GTIN, "SUP3")
    assert (unit.made_on, unit.installed_on, unit.firmware_on, unit.last_service_on) == (
        date(2025, 3, 1), date(2025, 3, 3), date(2025, 3, 5), date(2025, 3, 6))
    assert unit.parts == (("09506000134376", date(2025, 3, 6)), ("X-12", date(2025, 3, 4)))
    assert replay(GTIN, "SUP3", await store.get_events(GTIN, "SUP3")) == unit
