"""Errors become answers here, once: problem+json (RFC 9457) for API clients.

Domain code raises the error that says what happened — the resolver's kinds
(``resolver.errors``), the twin's (``twin.errors``), the serialiser's
(``serializer.errors``), the GS1 parser's (``ext.GS1Error``) — and never picks an HTTP
status. :func:`classify` finds the status in one table, most specific class first;
:func:`install` registers Starlette exception handlers that answer with it, so no
endpoint maps errors by hand. The built-in pages render the same classification as a page
in the visitor's language (``resolver.pages``).

A problem carries ``type``, ``title``, ``status`` and ``detail`` (RFC 9457), a stable
``code`` a client (or a page's message catalogue) can switch on, the ``field`` at fault,
and — for clients written against the first API — the same facts as ``error``.

>>> from twin.errors import StaleVersion
>>> p = classify(StaleVersion("unit 1", 3, 4))
>>> p.status, p.code, p.field
(409, 'stale_version', 'expected_version')
>>> body(classify(Invalid("expected the code from your message", "code")))["error"]
{'reason': 'expected the code from your message', 'field': 'code'}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from ext import GS1Error
from resolver.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ResolverError,
    TooMany,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
)
from serializer import errors as serializer_errors
from twin import errors as twin_errors

log = logging.getLogger("serialink.resolver.problems")

MEDIA_TYPE = "application/problem+json"

#: (error class, status, code, field when the error names none); the first match wins
TABLE: tuple[tuple[type[BaseException], int, str, str | None], ...] = (
    (BadRequest, 400, "bad_request", None),
    (Unauthenticated, 401, "unauthenticated", None),
    (Forbidden, 403, "forbidden", None),
    (NotFound, 404, "not_found", None),
    (MethodNotAllowed, 405, "method_not_allowed", None),
    (Conflict, 409, "conflict", None),
    (Gone, 410, "gone", None),
    (PayloadTooLarge, 413, "too_large", None),
    (UnsupportedMediaType, 415, "unsupported_media_type", None),
    (Invalid, 422, "invalid", None),
    (TooMany, 429, "too_many_requests", None),
    (Unavailable, 503, "unavailable", None),
    (ResolverError, 400, "bad_request", None),
    (twin_errors.StaleVersion, 409, "stale_version", "expected_version"),
    (twin_errors.IdempotencyConflict, 409, "idempotency_conflict", "idempotency_key"),
    (twin_errors.DuplicateSerial, 409, "duplicate_serial", "serials"),
    (twin_errors.IllegalTransition, 409, "illegal_transition", "event"),
    (twin_errors.NotFound, 404, "not_found", None),
    (twin_errors.InvalidInput, 422, "invalid", None),
    (twin_errors.CorruptRecord, 500, "corrupt_record", None),
    (twin_errors.UnsafeDurability, 503, "unsafe_durability", "appendfsync"),
    (twin_errors.StoreError, 503, "store_unavailable", None),
    (twin_errors.TwinError, 500, "twin_error", None),
    (serializer_errors.MintConflict, 409, "conflict", None),
    (serializer_errors.MintRefused, 422, "refused", None),
    (serializer_errors.MintTooLarge, 413, "too_large", None),
    (serializer_errors.MintError, 422, "invalid", None),
    (serializer_errors.DiskFull, 507, "disk_full", None),
    (serializer_errors.OutputTaken, 409, "output_taken", None),
    (serializer_errors.SourceConflict, 409, "source_conflict", None),
    (serializer_errors.KeyRotationRefused, 409, "key_rotation_refused", None),
    (serializer_errors.KeyMissing, 503, "key_missing", None),
    (serializer_errors.SerializerError, 500, "serializer_error", None),
    (GS1Error, 400, "invalid_gs1", None),
)

#: what a client is told instead of an internal detail it cannot act on
_SERVER_SIDE = {
    "store_unavailable": "the store is unavailable; try again shortly",
    "corrupt_record": "a stored record is unreadable; the operator has been told",
    "twin_error": "the unit record could not be processed",
}


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    code: str
    reason: str
    field: str | None = None
    retry_after: int | None = None

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


def classify(exc: BaseException) -> Problem:
    """The status, code and plain reason of any error a layer raises on purpose."""
    for kind, status, code, default_field in TABLE:
        if isinstance(exc, kind):
            field = getattr(exc, "field", None) or default_field
            reason = _SERVER_SIDE.get(code) or _reason(exc)
            retry = getattr(exc, "retry_after", None)
            if status == 503 and retry is None:
                retry = 2
            return Problem(status, code, reason, field, retry)
    return Problem(500, "internal", "internal error")


def _reason(exc: BaseException) -> str:
    for attribute in ("reason", "problem"):
        value = getattr(exc, attribute, None)
        if isinstance(value, str) and value:
            return value
    return str(exc)


def body(problem: Problem, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"reason": problem.reason}
    if problem.field is not None:
        error["field"] = problem.field
    out: dict[str, Any] = {"type": "about:blank", "title": problem.title, "status": problem.status,
                           "detail": problem.reason, "code": problem.code}
    if problem.field is not None:
        out["field"] = problem.field
    return {**out, **extra, "error": error}


def headers(problem: Problem) -> dict[str, str]:
    out = {"Cache-Control": "no-store"}
    if problem.retry_after is not None:
        out["Retry-After"] = str(problem.retry_after)
    if problem.status == 401:
        out["WWW-Authenticate"] = "Bearer"
    return out


def response(problem: Problem) -> Response:
    return Response(orjson.dumps(body(problem)), problem.status, headers(problem), media_type=MEDIA_TYPE)


def raw_headers(problem: Problem) -> list[tuple[bytes, bytes]]:
    """:func:`headers` for raw ASGI answers (the unit read fast path)."""
    return [(b"content-type", MEDIA_TYPE.encode())] + [(k.lower().encode(), v.encode())
                                                        for k, v in headers(problem).items()]


def log_problem(problem: Problem, exc: BaseException) -> None:
    if problem.status >= 500:
        log.warning("%s: %s", problem.code, exc)


async def handle(request: Request, exc: Exception) -> Response:
    """The one exception handler: every domain error of every layer becomes a problem."""
    problem = classify(exc)
    log_problem(problem, exc)
    return response(problem)


HANDLED: tuple[type[Exception], ...] = (ResolverError, twin_errors.TwinError, serializer_errors.SerializerError,
                                        GS1Error)


def install(app: Starlette) -> None:
    for kind in HANDLED:
        app.add_exception_handler(kind, handle)
