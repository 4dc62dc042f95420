"""What every /v1 API endpoint shares: bounded JSON bodies, scoped tokens, errors that name the field.

Errors are ``{"error": {"field": …, "reason": …}}`` with the status that fits: 400/422
for bad input, 401 for a missing/forged/expired token, 403 for one outside its scope,
404, 409 for conflicts (stale version, reused idempotency key), 413 for oversized
bodies, 503 (with Retry-After) when the store is unavailable.
"""

from __future__ import annotations

from typing import Any, Iterable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from resolver.access.tokens import Claims, TokenError, token_from_headers


class ApiError(Exception):
    def __init__(self, status: int, reason: str, field: str | None = None, headers: dict | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.field, self.headers = status, reason, field, headers


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def error_response(exc: ApiError) -> Response:
    body: dict[str, Any] = {"reason": exc.reason}
    if exc.field is not None:
        body["field"] = exc.field
    return json_response({"error": body}, exc.status, exc.headers)


def claims(request: Request, roles: Iterable[str], gtin: str | None = None, serial: str | None = None) -> Claims:
    """The caller's verified token, required to have one of ``roles`` and cover the unit."""
    token = token_from_headers(request.headers.get("authorization"), request.headers.get("cookie"))
    if token is None:
        raise ApiError(401, "a token is required (Authorization: Bearer …)", headers={"WWW-Authenticate": "Bearer"})
    try:
        return request.app.state.token_verifier.verify(token).require(roles, gtin, serial)
    except TokenError as exc:
        raise ApiError(exc.status, exc.reason,
                       headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None) from None


async def json_body(request: Request) -> Any:
    """The request body as JSON, refused above settings.max_body_bytes (413) or if malformed (400)."""
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", "body") from None


def twin_error(exc: Exception) -> ApiError:
    """Map the store's error types onto HTTP."""
    from twin import errors

    if isinstance(exc, errors.StaleVersion):
        return ApiError(409, str(exc), "expected_version")
    if isinstance(exc, errors.IdempotencyConflict):
        return ApiError(409, str(exc), "idempotency_key")
    if isinstance(exc, errors.IllegalTransition):
        return ApiError(409, str(exc), "event")
    if isinstance(exc, errors.NotFound):
        return ApiError(404, str(exc))
    if isinstance(exc, errors.InvalidInput):
        return ApiError(422, exc.problem, exc.field)
    return ApiError(503, "the store is unavailable; try again shortly", headers={"Retry-After": "2"})
