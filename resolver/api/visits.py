"""Sessions for people in the field, opened by a brand or its dispatch system.

=========================================  =====================================================
``POST /v1/visits``                        a technician's visit: units, time window → a one-time
                                           sign-in link and the same link as a QR code (SVG)
``POST /v1/installer-sessions``            an installer company's standing session, opened the
                                           same way on each of its devices
=========================================  =====================================================

Both need a manufacturer (or admin) token and an ``Idempotency-Key``; a retry returns the
same link. The session id is a token id: ``POST /v1/tokens/{id}/revoke`` ends it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from resolver.api.common import claims, json_response, object_body
from resolver.journeys import channel as channels
from resolver.journeys import visits
from resolver.journeys.addressing import client_address
from resolver.services import services_of


async def _open(request: Request, kind: str) -> Response:
    services = services_of(request)
    body = await object_body(request)
    await services.revocations.fresh()
    who = claims(request, visits.ISSUERS)
    channel = channels.Channel(client_address(request), "api",
                               channels.check_key(request.headers.get("idempotency-key")))
    answer = await visits.open_session(services, who, body, channel, kind)
    headers = {"Cache-Control": "no-store", **({"Idempotent-Replayed": "true"} if answer["replayed"] else {})}
    return json_response(answer, 200 if answer["replayed"] else 201, headers)


async def post_visit(request: Request) -> Response:
    """Open a technician's visit for a set of units and a time window."""
    return await _open(request, "visit")


async def post_installer_session(request: Request) -> Response:
    """Open an installer company's session over GTINs or company prefixes."""
    return await _open(request, "installer")


routes: list[BaseRoute] = [
    Route("/visits", post_visit, methods=["POST"]),
    Route("/installer-sessions", post_installer_session, methods=["POST"]),
]
