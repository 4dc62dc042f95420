"""What a request names and where it came from, read the same way by the API and the pages.

A unit is addressed by its Digital Link path under a prefix (``/v1/units`` for the API,
``/u`` for the pages), still percent-encoded, so a ``%2F`` inside a serial stays data.
"""

from __future__ import annotations

from starlette.requests import Request

from ext import GS1Error, parse
from resolver.errors import BadRequest, NotFound


def parse_unit_path(raw: str, prefix: str, suffix: str) -> tuple[str, str]:
    """(gtin, serial) of ``{prefix}/01/{gtin}/21/{serial}{suffix}`` (raw, percent-encoded).

    >>> parse_unit_path("/u/01/09506000134352/21/A%2F1/register", "/u", "/register")
    ('09506000134352', 'A/1')
    """
    if not raw.startswith(prefix) or not raw.endswith(suffix):
        raise NotFound("no such resource", "path")
    dl_path = raw[len(prefix):len(raw) - len(suffix)] if suffix else raw[len(prefix):]
    try:
        dl = parse("https://id.gs1.org" + dl_path)
    except GS1Error as exc:
        raise BadRequest(f"not a GS1 Digital Link path of a unit: {exc}", "path") from None
    gtin, serial = dl.gtin, dl.serial
    if dl.primary_key[0] != "01" or gtin is None or serial is None or len(dl.qualifiers) != 1 or dl.attributes:
        raise BadRequest("a unit is addressed as /01/{gtin}/21/{serial}", "path")
    return gtin, serial


def client_address(request: Request) -> str:
    """Where a write came from, for the audit: the peer address as the server saw it."""
    return request.client.host if request.client is not None else "unknown"
