"""Packing over HTTP: units and cases into SSCCs (see ``resolver.journeys.aggregation``).

==============================  ================================================================
``POST /v1/aggregations``       one pack or unpack (``{"action": "pack", "parent": SSCC,
                                "children": […], "eventID": …}``); idempotent by ``eventID``
``GET  /v1/aggregations/{sscc}`` what the SSCC holds, where its goods came from, the SSCC it
                                is packed in, and its AggregationEvents (EPCIS 2.0)
==============================  ================================================================

A new pack answers 201 with what it did and its EPCIS event; the same eventID again 200
``replayed: true``, changing nothing. A refusal (unknown or uncommissioned unit, a child
packed elsewhere, a wrong SSCC check digit, goods of another line) answers problem+json
naming the child (``children[3]``) and applies nothing. Credentials: what the line API
takes (``line`` keys and tokens, scoped to the GTINs and the line/site; ``manufacturer``,
``admin``); reading also ``regulator``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from resolver.api.batches import READ_ROLES, WRITE_ROLES, _actor, _check_line
from resolver.api.common import authorize, json_response, object_body
from resolver.errors import NotFound
from resolver.journeys.aggregation import aggregation_event, apply
from resolver.journeys.epc_names import DEFAULT_NAMES, EpcNames, names_for_events
from resolver.services import services_of
from twin.aggregation import check_sscc, split_key
from twin.errors import InvalidInput


async def post_aggregation(request: Request) -> Response:
    claim = await authorize(request, WRITE_ROLES)
    services = services_of(request)
    body = await object_body(request, services.settings.max_report_bytes)

    def allowed(gtins: set[str], origin: tuple[str, str] | None) -> None:
        for gtin in sorted(gtins):
            claim.require(WRITE_ROLES, gtin)
        if origin is not None:
            _check_line(claim, origin[1] or None, origin[0] or None)

    summaries = await apply(services.store, services.serial_verifier, [(body, "", ("parent", "children"))],
                            _actor(claim), allowed)
    summary = summaries[0]
    events = [e for e in await services.store.aggregation_events(summary.parent) if e.event_id == summary.event_id]
    names = await names_for_events(services.store, services.rules.current.by_prefix, events)
    return json_response({**summary.as_json(), "event": aggregation_event(events[0], names) if events else None},
                         200 if summary.replayed else 201)


def contents_json(agg: Any, names: EpcNames = DEFAULT_NAMES) -> dict[str, Any]:
    children = []
    for c in agg.children:
        parts = split_key(c.key)
        if isinstance(parts, str):
            children.append({"sscc": parts, "epc": names.child_urn(c.key)})
        else:
            children.append({"gtin": parts[0], "serial": parts[1], "batch": c.batch, "epc": names.child_urn(c.key)})
    return {"sscc": agg.sscc, "line": agg.meta.line or None, "site": agg.meta.site or None,
            "packed_in": agg.packed_in, "children": children}


async def get_aggregation(request: Request) -> Response:
    sscc = request.path_params["sscc"]
    claim = await authorize(request, READ_ROLES)
    try:
        check_sscc(sscc)
    except InvalidInput as exc:
        raise NotFound(f"no SSCC {sscc!r}: {exc.problem}", "sscc") from None
    store = services_of(request).store
    agg = await store.get_aggregation(sscc)
    if agg is None:
        raise NotFound(f"SSCC {sscc} was never packed", "sscc")
    for gtin in sorted({c.key.split("/")[1] for c in agg.children if not c.is_case}):
        claim.require(READ_ROLES, gtin)
    stored = await store.aggregation_events(sscc)
    names = await names_for_events(store, services_of(request).rules.current.by_prefix, stored)
    events = [aggregation_event(e, names) for e in stored]
    return json_response({**contents_json(agg, names), "events": events}, headers={"Cache-Control": "private, no-store"})


routes: list[BaseRoute] = [
    Route("/v1/aggregations", post_aggregation, methods=["POST"]),
    Route("/v1/aggregations/{sscc}", get_aggregation, methods=["GET"]),
]
