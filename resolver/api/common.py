"""What every /v1 API endpoint shares: bounded JSON bodies, scoped tokens, the caller's address.

Endpoints raise domain errors (``resolver.errors`` kinds, the twin's, the serialiser's);
``resolver.problems`` answers them as problem+json, so nothing here maps an error by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from resolver.access import linekeys
from resolver.access.tokens import Claims, token_from_headers
from resolver.errors import BadRequest, Forbidden, PayloadTooLarge, Unauthenticated
from resolver.services import services_of


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def claims(request: Request, roles: Iterable[str], gtin: str | None = None, serial: str | None = None) -> Claims:
    """The caller's verified token, required to have one of ``roles`` and cover the unit.
    Line keys need a store read: endpoints that take them call :func:`authorize`."""
    token = token_from_headers(request.headers.get("authorization"), request.headers.get("cookie"))
    if token is None:
        raise Unauthenticated("a token is required (Authorization: Bearer …)")
    if linekeys.looks_like(token):
        raise Forbidden("a line key opens the line operations only (batches, unit events); use a token here")
    return services_of(request).token_verifier.verify(token).require(roles, gtin, serial)


async def authorize(request: Request, roles: Iterable[str], gtin: str | None = None,
                    serial: str | None = None) -> Claims:
    """As :func:`claims`, and a factory line key (``Authorization: Bearer slk_…``) counts as a
    ``line`` credential: read from the store, so a revoked key is refused at once."""
    token = token_from_headers(request.headers.get("authorization"), None)
    services = services_of(request)
    await services.revocations.fresh()
    if token is not None and linekeys.looks_like(token):
        line = await linekeys.verify(services.store, token)
        if services.revocations(line.token_id):  # its holder revoked it as a token (POST /v1/tokens/{id}/revoke)
            raise linekeys.LineKeyRefused("the line key has been revoked")
        return line.require(roles, gtin, serial)
    return claims(request, roles, gtin, serial)


async def json_body(request: Request, limit: int | None = None) -> Any:
    """The request body as JSON, refused above settings.max_body_bytes (or ``limit``: 413)
    or if malformed (400)."""
    limit = limit or services_of(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", "body") from None


async def object_body(request: Request, limit: int | None = None) -> dict[str, Any]:
    """The body as a JSON object (400 for any other JSON value)."""
    body = await json_body(request, limit)
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object", "body")
    return body
