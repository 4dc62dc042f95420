"""EPCIS 2.0 capture and query for line systems (see ``resolver.journeys.epcis_line``).

==================================  ===========================================================
``POST /v1/epcis/capture``          an EPCISDocument (JSON / JSON-LD): checked against GS1's
                                    schema and the twin, then applied; idempotent by eventID
``GET  /v1/epcis/events``           ``MATCH_epc`` (repeatable; DL URI or SGTIN URN) or
                                    ``batch``, optional ``EQ_bizStep``, ``GE_eventTime``,
                                    ``LT_eventTime``: an EPCISQueryDocument
==================================  ===========================================================

Capture answers 201 ``{"captured": n, "replayed": n, "eventIDs": […]}``; a document any
part of which is refused answers problem+json naming the element
(``epcisBody.eventList[2].epcList[7]``) and applies nothing. One batch's events are written
atomically; a document spanning batches is checked against every batch's state first.
Query results list, per event, only the EPCs asked for (``MATCH_epc``), or all of the
batch's (``batch``, 10,000 per event). Roles: capture ``line``, ``manufacturer``,
``admin``; query also ``regulator``; scoped to the GTINs involved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pyroaring import BitMap
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from resolver.api.common import claims, json_response, object_body
from resolver.errors import Conflict, Invalid, NotFound
from resolver.journeys.aggregation import apply as apply_aggregations
from resolver.journeys.aggregation import capture_body
from resolver.journeys.epcis_export import MEDIA_TYPE
from resolver.journeys.epcis_line import (
    CONTEXT,
    event_matches,
    parse_epc,
    plan_capture,
    report_events,
)
from resolver.services import services_of
from serializer.minting import regenerate
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
    epcs, batch_id = q.getlist("MATCH_epc"), q.get("batch")
    biz_step, since, until = q.get("EQ_bizStep"), q.get("GE_eventTime"), q.get("LT_eventTime")
    for name, value in (("GE_eventTime", since), ("LT_eventTime", until)):
        if value is not None:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise Invalid(f"expected an ISO 8601 time, got {value!r}", name) from None
    wanted: dict[str, BitMap] = {}  # batch id → indices asked for (empty: all)
    batches = {}
    if batch_id is not None:
        try:
            parse_batch_id(batch_id)
        except InvalidInput as exc:
            raise Invalid(exc.problem, "batch") from None
        claims(request, READ_ROLES, batch_id.split(".", 1)[0])
        batch = await services.store.get_batch(batch_id)
        if batch is None:
            raise NotFound(f"no batch {batch_id!r}", "batch")
        batches[batch_id], wanted[batch_id] = batch, BitMap()
    elif epcs:
        for k, epc in enumerate(epcs):
            gtin, serial = parse_epc(epc, f"MATCH_epc[{k}]")
            claims(request, READ_ROLES, gtin)
            match = await services.serial_verifier.issued_by(gtin, serial)
            if match is None or match.counter is None:
                continue  # an EPC nobody issued has no events here
            batches[match.batch.id] = match.batch
            wanted.setdefault(match.batch.id, BitMap()).add(match.counter - match.batch.start)
    else:
        raise Invalid("name the EPCs (MATCH_epc) or a batch (batch) whose events you want", "MATCH_epc")
    found: list[dict[str, Any]] = []
    for bid, only in wanted.items():
        batch = batches[bid]
        minted = await regenerate(batch, services.keys, services.profiles)
        for report in await services.store.line_reports(bid):
            for event in report_events(batch, report, minted.serial, only or None):
                if event_matches(event, biz_step, since, until):
                    found.append(event)
    found.sort(key=lambda e: e["eventTime"])
    body = {"@context": [CONTEXT], "type": "EPCISQueryDocument", "schemaVersion": "2.0",
            "creationDate": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": found}}}}
    return json_response(body, headers={"Content-Type": MEDIA_TYPE, "Cache-Control": "private, no-store"})


routes: list[BaseRoute] = [
    Route("/v1/epcis/capture", capture, methods=["POST"]),
    Route("/v1/epcis/events", events, methods=["GET"]),
]
