"""EPCIS 2.0 capture and query for line systems (see ``resolver.journeys.epcis_line``).

==================================  ===========================================================
``POST /v1/epcis/capture``          an EPCISDocument (JSON / JSON-LD): checked against GS1's
                                    schema and the twin, then applied; idempotent by eventID
``GET  /v1/epcis/events``           ``MATCH_epc``, ``MATCH_anyEPC``, ``MATCH_parentID``
                                    (repeatable) or ``batch``, optional ``EQ_bizStep``,
                                    ``GE_eventTime``, ``LT_eventTime``: an EPCISQueryDocument
==================================  ===========================================================

Capture answers 201 ``{"captured": n, "replayed": n, "eventIDs": […]}``; a document any
part of which is refused answers problem+json naming the element
(``epcisBody.eventList[2].epcList[7]``) and applies nothing. One batch's events are written
atomically; a document spanning batches is checked against every batch's state first.
The query answers ObjectEvents (line reports) and AggregationEvents (packs and unpacks) in
one list, oldest first. As EPCIS says: ``MATCH_epc`` matches an event's ``epcList`` or
``childEPCs`` (a unit as an SGTIN Digital Link URI or URN; a case as an SSCC: 18 digits,
its URN or a ``/00/`` Digital Link URI), ``MATCH_parentID`` an AggregationEvent's
``parentID`` (an SSCC), ``MATCH_anyEPC`` either. Results list, per event, only the EPCs
asked for (``MATCH_epc``), or all of the batch's (``batch``: ObjectEvents 10,000 EPCs per
event; AggregationEvents with a unit of the batch, listing the batch's units); an
AggregationEvent found by its parent lists every child. ``EQ_bizStep`` (``packing``,
``unpacking``, ``commissioning``… or the CBV URI) and the time window filter both kinds.
Roles: capture ``line``, ``manufacturer``, ``admin``; query also ``regulator``; scoped to
the GTINs involved (every unit an answered event lists).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from pyroaring import BitMap
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from resolver.api.common import claims, json_response, object_body
from resolver.errors import Conflict, Invalid, NotFound
from resolver.journeys.aggregation import aggregation_event, capture_body, parse_child, parse_sscc
from resolver.journeys.aggregation import apply as apply_aggregations
from resolver.journeys.epc_names import names_for_events
from resolver.journeys.epcis_export import MEDIA_TYPE
from resolver.journeys.epcis_line import (
    CONTEXT,
    event_matches,
    plan_capture,
    report_events,
)
from resolver.services import services_of
from serializer.minting import regenerate
from twin.aggregation import Child, StoredAggregation, unit_key
from twin.batch import parse_batch_id
from twin.errors import IdempotencyConflict, InvalidInput
from twin.events import Actor
from twin.line_state import LineState, apply_report

WRITE_ROLES = ("line", "manufacturer", "admin")
READ_ROLES = ("line", "manufacturer", "admin", "regulator")


def _actor(claim: Any) -> Actor:
    role = claim.role if claim.role in ("line", "manufacturer") else "manufacturer"
    return Actor(role, claim.principal[:200])


async def capture(request: Request) -> Response:
    services = services_of(request)
    claim = claims(request, WRITE_ROLES)
    document = await object_body(request, services.settings.max_report_bytes)
    plan = await plan_capture(document, services.settings.config_dir / "epcis" / "EPCIS-JSON-Schema.json",
                              services.serial_verifier)
    for gtin in sorted(plan.gtins):
        claims(request, WRITE_ROLES, gtin)
    store = services.store
    if len(plan.reports) > 1:  # several batches: check every batch before writing any
        for batch_id, reports in plan.reports.items():
            known = {r.report_id for r in await store.line_reports(batch_id)}
            state = await store.get_line_state(batch_id) or LineState.empty(plan.batches[batch_id].count)
            for report in reports:
                if report.report_id not in known:
                    state = apply_report(state, report)[0]
    captured = replayed = 0
    packs = [(capture_body(event, plan.event_ids[int(where.rsplit("[", 1)[1][:-1])]), f"{where}.",
              ("parentID", "childEPCs")) for event, where in plan.aggregations]
    for batch_id, reports in plan.reports.items():
        try:
            summaries = await store.apply_line_reports(batch_id, reports, _actor(claim))
        except IdempotencyConflict as exc:
            raise Conflict(f"{exc}; an eventID names one event for good", "eventID") from None
        except InvalidInput as exc:
            raise Invalid(exc.problem, exc.field) from None
        services.lookup.invalidate(plan.batches[batch_id].gtin, "line", batch_id)
        replayed += sum(1 for s in summaries if s.replayed)
        captured += sum(1 for s in summaries if not s.replayed)
    if packs:  # after the commissioning the document carries: packing needs commissioned units

        def allowed(gtins: set[str], origin: tuple[str, str] | None) -> None:
            for gtin in sorted(gtins):
                claims(request, WRITE_ROLES, gtin)

        done = await apply_aggregations(store, services.serial_verifier, packs, _actor(claim), allowed)
        replayed += sum(1 for s in done if s.replayed)
        captured += sum(1 for s in done if not s.replayed)
    return json_response({"captured": captured, "replayed": replayed, "eventIDs": plan.event_ids},
                         201 if captured else 200)


async def events(request: Request) -> Response:
    services = services_of(request)
    q = request.query_params
    batch_id = q.get("batch")
    biz_step, since, until = q.get("EQ_bizStep"), q.get("GE_eventTime"), q.get("LT_eventTime")
    for name, value in (("GE_eventTime", since), ("LT_eventTime", until)):
        if value is not None:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise Invalid(f"expected an ISO 8601 time, got {value!r}", name) from None
    match = _matches(q)
    claim = claims(request, READ_ROLES)
    wanted: dict[str, BitMap] = {}  # batch id → indices asked for (empty: all)
    batches = {}
    units: list[Child] = []  # the units asked for, as aggregation children
    if batch_id is not None:
        try:
            parse_batch_id(batch_id)
        except InvalidInput as exc:
            raise Invalid(exc.problem, "batch") from None
        claim.require(READ_ROLES, batch_id.split(".", 1)[0])
        batch = await services.store.get_batch(batch_id)
        if batch is None:
            raise NotFound(f"no batch {batch_id!r}", "batch")
        batches[batch_id], wanted[batch_id] = batch, BitMap()
    elif match.units:
        for gtin, serial in match.units:
            claim.require(READ_ROLES, gtin)
            issued = await services.serial_verifier.issued_by(gtin, serial)
            if issued is None:
                continue  # an EPC nobody issued has no events here
            # as packs name it: with its batch and counter (a store may key units by them)
            units.append(Child(unit_key(gtin, serial), issued.batch.id, issued.counter))
            if issued.counter is None:
                continue  # an imported serial: no line reports
            batches[issued.batch.id] = issued.batch
            wanted.setdefault(issued.batch.id, BitMap()).add(issued.counter - issued.batch.start)
    elif not match.ssccs and not match.parents:
        raise Invalid("name the EPCs (MATCH_epc, MATCH_anyEPC, MATCH_parentID) or a batch (batch) whose events "
                      "you want", "MATCH_epc")
    found: list[dict[str, Any]] = []
    for bid, only in wanted.items():
        batch = batches[bid]
        minted = await regenerate(batch, services.keys, services.profiles)
        for report in await services.store.line_reports(bid):
            for event in report_events(batch, report, minted.serial, only or None):
                if event_matches(event, biz_step, since, until):
                    found.append(event)
    if batch_id is not None:
        match, units = Match([], [], []), []  # as for ObjectEvents: the batch, not the EPCs
    for event, gtins in await _aggregation_events(services, match, units, batch_id):
        if event_matches(event, biz_step, since, until):
            for gtin in sorted(gtins):  # what it lists of units, the caller's scope must cover
                claim.require(READ_ROLES, gtin)
            found.append(event)
    found.sort(key=lambda e: e["eventTime"])
    body = {"@context": [CONTEXT], "type": "EPCISQueryDocument", "schemaVersion": "2.0",
            "creationDate": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": found}}}}
    return json_response(body, headers={"Content-Type": MEDIA_TYPE, "Cache-Control": "private, no-store"})


class Match(NamedTuple):
    """What a query names: units (as children of AggregationEvents too, and in ObjectEvents),
    SSCCs as children (``MATCH_epc``, ``MATCH_anyEPC``) and SSCCs as parents
    (``MATCH_parentID``, ``MATCH_anyEPC``)."""

    units: list[tuple[str, str]]
    ssccs: list[str]
    parents: list[str]


def _matches(q: Any) -> Match:
    units: dict[tuple[str, str], None] = {}
    ssccs: dict[str, None] = {}
    parents: dict[str, None] = {}
    for name in ("MATCH_epc", "MATCH_anyEPC", "MATCH_parentID"):
        for k, value in enumerate(q.getlist(name)):
            field = f"{name}[{k}]"
            if name == "MATCH_parentID":
                parents[parse_sscc(value, field)] = None
                continue
            child = parse_child(value, field)
            if isinstance(child, tuple):
                units[child] = None
            else:
                ssccs[child] = None
                if name == "MATCH_anyEPC":
                    parents[child] = None
    return Match(list(units), list(ssccs), list(parents))


async def _aggregation_events(services: Any, match: Match, units: list[Child],
                              batch_id: str | None) -> list[tuple[dict[str, Any], set[str]]]:
    """The AggregationEvents a query finds, each with the GTINs of the units it lists: in
    full where its parent was asked for; else only the children asked for (``units`` of
    ours, SSCCs) or the batch's, as ObjectEvents list only the EPCs asked for."""
    store = services.store
    children = units + [Child(s) for s in match.ssccs]
    keys = [c.key for c in children]
    full: dict[str, StoredAggregation] = {}
    for parent in match.parents:
        for ev in await store.aggregation_events(parent):
            full[ev.event_id] = ev
    by_child = await store.aggregation_events_of(children, [batch_id] if batch_id else []) \
        if children or batch_id else []
    events = list(full.values()) + [ev for ev in by_child if ev.event_id not in full]
    names = await names_for_events(store, services.rules.current.by_prefix, events)
    asked = set(keys)
    out = []
    for ev in events:
        if ev.event_id in full:
            shown = list(ev.children)
        else:
            shown = [c for c in ev.children if c.key in asked or (batch_id is not None and c.batch == batch_id)]
        out.append((aggregation_event(ev, names, {c.key for c in shown}),
                    {c.key.split("/")[1] for c in shown if not c.is_case}))
    return out


routes: list[BaseRoute] = [
    Route("/v1/epcis/capture", capture, methods=["POST"]),
    Route("/v1/epcis/events", events, methods=["GET"]),
]
