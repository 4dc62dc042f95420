"""Support and parts of one unit over HTTP (mounted with the unit routes under ``/v1/units``):

==================================================  ==============================================
``GET  /units/01/{gtin}/21/{serial}/support``       the model's fault codes (``?fault=E101``: one),
                                                    and the support sessions for owner and staff
``POST /units/01/{gtin}/21/{serial}/support``       log a troubleshooting session (fault code,
                                                    steps tried, outcome); Idempotency-Key
``GET  /units/01/{gtin}/21/{serial}/parts``         parts that fit the unit, each due or not
                                                    (``?configuration=``: its variant)
==================================================  ==============================================
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from resolver.api.common import json_response, object_body
from resolver.api.units import (
    UNIT,
    _endpoint,
    _unit_answer,
    caller,
    channel,
    expected_version,
    unit_key,
    writer,
)
from resolver.errors import Forbidden
from resolver.journeys import parts, support
from resolver.services import Services


@_endpoint
async def get_support(request: Request, services: Services) -> Response:
    """The model's fault codes with their steps and likely parts; sessions for the owner and staff."""
    gtin, serial = unit_key(request, "/support")
    who = await caller(request, services)
    if who is not None and not who.allows_unit(gtin, serial):
        raise Forbidden(f"token for {who.principal!r} does not cover GTIN {gtin} serial {serial}")
    answer = await support.support_answer(services, who, gtin, serial, request.query_params.get("fault"))
    cache = "public, max-age=60" if who is None else "private, no-store"
    return json_response(answer, headers={"Cache-Control": cache, "Vary": "Authorization, Cookie"})


@_endpoint
async def post_support(request: Request, services: Services) -> Response:
    """Log a troubleshooting session on the unit (owner, installer, technician, manufacturer)."""
    gtin, serial = unit_key(request, "/support")
    body = await object_body(request)
    who = await writer(request, services, support.LOG_ROLES, gtin, serial)
    appended = await support.log_session(services, who, gtin, serial, body, expected_version(request, body),
                                         channel(request))
    return _unit_answer(appended.unit, 201, appended.replayed, {"event": "support", "fault_code": body["fault_code"]})


@_endpoint
async def get_parts(request: Request, services: Services) -> Response:
    """The parts that fit the unit (model, configuration, firmware), each marked due or not today."""
    gtin, serial = unit_key(request, "/parts")
    who = await caller(request, services)
    if who is not None and not who.allows_unit(gtin, serial):
        raise Forbidden(f"token for {who.principal!r} does not cover GTIN {gtin} serial {serial}")
    answer = await parts.parts_answer(services, gtin, serial, request.query_params.get("configuration"),
                                      cached=who is None)
    return json_response(answer, headers={"Cache-Control": "private, no-store"})


routes: list[BaseRoute] = [
    Route(UNIT + "/support", get_support, methods=["GET"]),
    Route(UNIT + "/support", post_support, methods=["POST"]),
    Route(UNIT + "/parts", get_parts, methods=["GET"]),
]
