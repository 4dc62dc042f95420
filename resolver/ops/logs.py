"""Structured logs: one JSON object per line, a request id on every line a request causes,
and no secret in any of them.

``configure(level)`` installs the JSON formatter on the root logger (each Granian worker
calls it from ``app_factory``). Every request gets an id — the caller's ``X-Request-Id``
when it is sane (1-128 of ``[A-Za-z0-9._:-]``), else a fresh one — that is echoed in the
response header and carried by every log line written while the request runs (a context
variable, so concurrent requests on one event loop keep theirs apart). Ids are a random
per-process prefix and a counter: unique across workers and restarts, and far cheaper than
a UUID on the scan path.

Secrets never reach a line: bearer tokens, JWTs, the token cookie and passwords inside
URLs are masked in the message and in every string field, whatever logged them.

>>> request_id(b"lb-1234")
b'lb-1234'
>>> request_id(b"bad id\\n") != b"bad id\\n"
True
>>> redact("GET with Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl from redis://:hunter2@db:6379/0")
'GET with Authorization: Bearer *** from redis://:***@db:6379/0'
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import re
import secrets
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The id of the request being handled on this task, as sent in the header (None outside requests).
REQUEST_ID: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("serialink_request_id", default=None)

_PREFIX = secrets.token_hex(4).encode()
_COUNTER = itertools.count(1)
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

_SECRETS = [
    (re.compile(r"(?i)\b(bearer)\s+[^\s,;\"']+"), r"\1 ***"),
    (re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"), "***"),  # a JWS/JWT anywhere
    (re.compile(r"(?i)(serialink_token=)[^\s;,\"']+"), r"\1***"),
    (re.compile(r"(?i)\b((?:\w*token|\w*secret|password|passwd|code)=)[^\s&;,\"']+"), r"\1***"),  # key=value
    (re.compile(r"(?i)(\"(?:\w*token|\w*secret|password|passwd|code)\"\s*:\s*\")[^\"]*"), r"\1***"),  # JSON
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@"), r"\1***@"),  # password in a URL
]
_literal_secrets: list[str] = []

# LogRecord attributes that are not user fields (anything else passed via extra= is one)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def request_id(header: bytes | None) -> bytes:
    """The caller's id when sane, else a new one (bytes: it goes straight into a header)."""
    if header is not None and _SANE.fullmatch(header):
        return header
    return b"%s-%x" % (_PREFIX, next(_COUNTER))


def bind(header: bytes | None) -> bytes:
    """Set (and return) the id of the request now starting on this task."""
    rid = request_id(header)
    REQUEST_ID.set(rid)
    return rid


def redact(text: str) -> str:
    """``text`` with every recognisable secret masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    for value in _literal_secrets:
        if value in text:
            text = text.replace(value, "***")
    return text


def never_log(*values: str) -> None:
    """Register secret values (e.g. the token signing secret) to mask wherever they appear."""
    for value in values:
        if value and len(value) >= 8 and value not in _literal_secrets:
            _literal_secrets.append(value)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """time (UTC, ms), level, logger, message, request_id, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        t = record.created
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        rid = REQUEST_ID.get()
        if rid is not None:
            entry["request_id"] = rid.decode("ascii")
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _clean(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "info", *, secrets: Iterable[str] = (), stream: TextIO | None = None) -> None:
    """JSON lines on stderr for the root logger (replacing its handlers)."""
    never_log(*secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


access_log = logging.getLogger("serialink.access")
_QUIET = ("/healthz", "/readyz", "/metrics")


class RequestIds:
    """ASGI middleware for everything but scans: bind a request id, echo it in
    ``X-Request-Id``, and write one access line per request (method, path without the
    query, status, milliseconds) — at debug for probes and scrapes, info otherwise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                header = value
                break
        rid = bind(header)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", rid)]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access(scope["method"], scope["path"], status, started)


def access(method: str, path: str, status: int, started: float) -> None:
    """The access line of one request (``started``: its ``time.perf_counter()``)."""
    level = logging.DEBUG if path in _QUIET else logging.INFO
    if access_log.isEnabledFor(level):
        access_log.log(level, "%s %s %d", method, path, status,
                       extra={"method": method, "path": path, "status": status,
                              "ms": round((time.perf_counter() - started) * 1000, 2)})
