"""Line keys over HTTP, for a manufacturer token (or an admin's): what ``serialink lines`` does.

=========================================  ==============================================
``GET  /v1/lines``                         the keys within the caller's scope (never a key)
``POST /v1/lines``                         make a key: the answer shows it, once
``POST /v1/lines/{key_id}/rotate``         a new key; the old one works ``overlap`` more
``POST /v1/lines/{key_id}/revoke``         stop a key now
=========================================  ==============================================

Writes carry an ``Idempotency-Key``: the key's id and secret are derived from it (and the
deployment's secret), so a retried ``POST`` answers the very same key although the store
keeps only its hash. Answers are ``no-store``: a key must never sit in a cache.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from resolver.access import linekeys
from resolver.access.durations import parse_duration
from resolver.api.common import authorize, json_response, object_body
from resolver.errors import Invalid
from resolver.journeys.channel import actor_for, check_key
from resolver.journeys.derived import derive_text
from resolver.services import services_of

ROLES = ("manufacturer", "admin")
NO_STORE = {"Cache-Control": "no-store"}


def _parts(request: Request, purpose: str, *scope: str) -> tuple[str, str]:
    """(id, secret) of a key, from the caller, the Idempotency-Key and the deployment's secret."""
    secret = services_of(request).secret
    key = check_key(request.headers.get("idempotency-key"))
    key_id = derive_text(secret, f"{purpose}-id", *scope, key, length=16)
    return key_id, derive_text(secret, f"{purpose}-secret", key_id, length=43)


def _seconds(value: object, field: str, default: int | None) -> int | None:
    """Seconds as a number, or a duration such as "24h" / "PT24H"."""
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise Invalid(str(exc), field) from None
    raise Invalid("expected seconds or a duration such as 24h", field)


def _created(key: str, record: dict, replayed: bool) -> Response:
    body = {"key": key, **linekeys.public(record), "replayed": replayed}
    return json_response(body, 200 if replayed else 201,
                         {**NO_STORE, "Location": f"/v1/lines/{record['id']}",
                          **({"Idempotent-Replayed": "true"} if replayed else {})})


async def list_lines(request: Request) -> Response:
    who = await authorize(request, ROLES)
    keys = await linekeys.listing(services_of(request).store, who)
    return json_response({"lines": keys}, headers=NO_STORE)


async def add_line(request: Request) -> Response:
    body = await object_body(request)
    who = await authorize(request, ROLES)
    unknown = set(body) - {"site", "line", "gtins", "prefixes", "subject", "ttl"}
    if unknown:
        raise Invalid("unknown field", sorted(unknown)[0])
    key, record, replayed = await linekeys.add(
        services_of(request).store, actor_for(who), site=body.get("site"), line=body.get("line"),
        gtins=body.get("gtins"), prefixes=body.get("prefixes"), subject=body.get("subject") or "",
        ttl=_seconds(body.get("ttl"), "ttl", None), parts=_parts(request, "line-key", who.principal),
        audit={"via": "api"}, caller=who)
    return _created(key, record, replayed)


async def rotate_line(request: Request) -> Response:
    body = await object_body(request)
    who = await authorize(request, ROLES)
    key_id = request.path_params["key_id"]
    overlap = _seconds(body.get("overlap"), "overlap", linekeys.DEFAULT_OVERLAP)
    key, record, old, replayed = await linekeys.rotate(
        services_of(request).store, actor_for(who), key_id, overlap,  # type: ignore[arg-type]
        parts=_parts(request, "line-key-rotation", key_id), audit={"via": "api"}, caller=who)
    return _created(key, record, replayed)


async def revoke_line(request: Request) -> Response:
    body = await object_body(request)
    who = await authorize(request, ROLES)
    record, before = await linekeys.revoke(services_of(request).store, actor_for(who), request.path_params["key_id"],
                                           body.get("reason"), audit={"via": "api"}, caller=who)  # type: ignore[arg-type]
    return json_response({**linekeys.public(record), "replayed": before}, headers=NO_STORE)


routes: list[BaseRoute] = [
    Route("/v1/lines", list_lines, methods=["GET"]),
    Route("/v1/lines", add_line, methods=["POST"]),
    Route("/v1/lines/{key_id}/rotate", rotate_line, methods=["POST"]),
    Route("/v1/lines/{key_id}/revoke", revoke_line, methods=["POST"]),
]
