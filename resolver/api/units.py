"""The unit twin over HTTP: role-scoped reads, owner and service journeys, recalls, tokens, exports.

Mounted under ``/v1`` (documented in ``/openapi.json``):

=====================================================  ===========================================
``GET  /units/01/{gtin}/21/{serial}``                  the unit as the caller may see it (anyone)
``POST /units/01/{gtin}/21/{serial}/events``           service, firmware, install, end of life, theft…
``POST /units/01/{gtin}/21/{serial}/registration``     first owner: send a one-time code (public)
``POST …/registration/confirm``                        the code registers the unit (public)
``POST / DELETE …/transfer``                           the owner offers / cancels a hand-over
``POST …/transfer/claim``                              the new owner claims with the code (public)
``GET  …/epcis``, ``…/dpp``                            EPCIS 2.0 events, DPP (JSON-LD)
``GET  /batches/{batch_id}/epcis``                     EPCIS 2.0 events of a batch's units
``POST /recalls``, ``GET /recalls/{gtin}``,            recalls of a lot, a range, a serial, a GTIN
``POST /recalls/{gtin}/{overlay_id}/lift``
``POST /tokens``, ``POST /tokens/{token_id}/revoke``   scoped tokens
``GET  /audit/{gtin}``                                 the audit trail of a GTIN
=====================================================  ===========================================

A unit is addressed by its Digital Link path (``/01/{gtin}/21/{serial}``); the serial is
read from the raw path, so a ``%2F`` inside it stays part of it. Writes need an
``Idempotency-Key`` header and may send ``If-Match: "<version>"``; the operations
themselves live in resolver.journeys.actions, shared with the built-in pages.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router

from ext import escape
from resolver import i18n, problems
from resolver.access.tokens import Claims, token_from_headers
from resolver.api.common import authorize, json_response, object_body
from resolver.errors import (
    BadRequest,
    Forbidden,
    Invalid,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)
from resolver.journeys import channel as channels
from resolver.journeys import dpp, epcis_export, events, reading, recalls, registration, tokens
from resolver.journeys import transfer as transfers
from resolver.journeys.addressing import client_address, parse_unit_path
from resolver.journeys.views import overlay_json
from resolver.ops import logs
from resolver.scan.negotiate import languages
from resolver.services import Services, services_of
from twin.batch import parse_batch_id
from twin.errors import TwinError
from twin.unit import Unit

UNITS = "/v1/units"
#: the sub-resources of a unit, longest first (so ``/transfer/claim`` is not read as ``/transfer``)
SUFFIXES = ("/registration/confirm", "/transfer/claim", "/registration", "/transfer", "/events", "/epcis", "/dpp",
            "/support", "/parts")
MAX_EXPORT_UNITS = 10_000


def unit_key(request: Request, suffix: str = "") -> tuple[str, str]:
    """(gtin, serial) from the raw request path ``/v1/units/01/{gtin}/21/{serial}{suffix}``."""
    raw = (request.scope.get("raw_path") or request.scope["path"].encode()).decode("latin-1").split("?", 1)[0]
    return parse_unit_path(raw, UNITS, suffix)


def channel(request: Request) -> channels.Channel:
    return channels.Channel(client_address(request), "api", channels.check_key(request.headers.get("idempotency-key")))


async def caller(request: Request, services: Services) -> Claims | None:
    """The verified token, if one was sent (None: anonymous). A bad token is a 401, not a
    silent downgrade: an API client should know its credential failed."""
    if token_from_headers(request.headers.get("authorization"), request.headers.get("cookie")) is None:
        return None
    return await authorize(request, ("owner", "installer", "technician", "regulator", "manufacturer", "line", "admin"))


async def writer(request: Request, services: Services, roles, gtin: str | None = None, serial: str | None = None) -> Claims:
    return await authorize(request, roles, gtin, serial)


def expected_version(request: Request, body: Any = None) -> int | None:
    """From ``If-Match: "7"`` (or ``expected_version`` in the body); both must agree."""
    header = request.headers.get("if-match")
    from_header = None
    if header is not None:
        value = header.strip().removeprefix("W/").strip('"')
        if not value.isdigit() or len(value) > 12:
            raise BadRequest('expected If-Match: "<version>" (the ETag of the unit)', "If-Match")
        from_header = int(value)
    from_body = body.get("expected_version") if isinstance(body, dict) else None
    if from_body is not None and (not isinstance(from_body, int) or isinstance(from_body, bool) or from_body < 0):
        raise Invalid("expected a version number (0 or more)", "expected_version")
    if from_header is not None and from_body is not None and from_header != from_body:
        raise BadRequest("If-Match and expected_version disagree", "expected_version")
    return from_header if from_header is not None else from_body


def _unit_answer(unit: Unit, status: int, replayed: bool, extra: dict | None = None) -> Response:
    body = {"gtin": unit.gtin, "serial": unit.serial, "state": str(unit.state), "version": unit.version,
            "recalled": unit.recalled, "stolen": unit.stolen, "replayed": replayed, **(extra or {})}
    headers = {"ETag": f'"{unit.version}"', "Cache-Control": "no-store"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(body, 200 if replayed else status, headers)


def _endpoint(handler):
    """The endpoint with this worker's services (errors are answered by resolver.problems)."""
    async def endpoint(request: Request) -> Response:
        return await handler(request, services_of(request))
    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


# -- units ------------------------------------------------------------------------------------


@_endpoint
async def get_unit(request: Request, services: Services) -> Response:
    """The unit, scoped by the caller's role."""
    raw = (request.scope.get("raw_path") or b"").decode("latin-1").split("?", 1)[0]
    for suffix in SUFFIXES:  # a sub-resource asked with a method it does not answer
        if raw.count("/") > 6 and raw.endswith(suffix):
            raise MethodNotAllowed(f"{suffix[1:]} does not answer {request.method}")
    gtin, serial = unit_key(request)
    who = await caller(request, services)
    if who is not None and who.role == "line":
        raise Forbidden("role 'line' has no view of units")
    if who is not None and not who.allows_unit(gtin, serial):
        raise Forbidden(f"token for {who.principal!r} does not cover GTIN {gtin} serial {serial}")
    view = await reading.unit_view(services, who, gtin, serial, languages(request.headers.get("accept-language")))
    cache = f"public, max-age={services.rules.current.cache_max_age}" if who is None else "private, no-store"
    return json_response(view, headers={"ETag": f'"{view["version"]}"', "Cache-Control": cache,
                                        "Vary": "Accept-Language, Authorization, Cookie"})


@_endpoint
async def post_event(request: Request, services: Services) -> Response:
    """Append an event (service, firmware, start_service, end_of_life, report_stolen, …)."""
    gtin, serial = unit_key(request, "/events")
    body = await object_body(request)
    who = await writer(request, services, ("owner", "installer", "technician", "manufacturer", "admin"), gtin, serial)
    appended = await events.record_event(services, who, gtin, serial, body, expected_version(request, body),
                                          channel(request))
    return _unit_answer(appended.unit, 201, appended.replayed, {"event": body["type"]})


@_endpoint
async def post_registration(request: Request, services: Services) -> Response:
    """First owner, step 1 (public, rate-limited): a one-time code goes to their contact."""
    gtin, serial = unit_key(request, "/registration")
    body = await object_body(request)
    via = channel(request)
    language = body.pop("language", None) if isinstance(body.get("language"), str) else None
    lang = language if language in i18n.available() else i18n.negotiate(request.headers.get("accept-language"),
                                                                          services.rules.current.default_language)
    answer = await registration.request_registration(services, gtin, serial, body, via, lang)
    confirm = f"{UNITS}/01/{gtin}/21/{escape(serial)}/registration/confirm"
    answer["links"] = {"confirm": confirm}
    return json_response(answer, 202, {"Location": confirm, "Cache-Control": "no-store"})


@_endpoint
async def post_confirm(request: Request, services: Services) -> Response:
    """First owner, step 2 (public, rate-limited): the code registers the unit and returns an owner token."""
    gtin, serial = unit_key(request, "/registration/confirm")
    body = await object_body(request)
    grant = await registration.confirm_registration(services, gtin, serial, body.get("confirmation"), body.get("code"),
                                               channel(request))
    return _owner_answer(grant)


def _owner_answer(grant: registration.OwnerGrant) -> Response:
    expires = datetime.fromtimestamp(grant.expires_at, UTC).isoformat().replace("+00:00", "Z")
    return _unit_answer(grant.unit, 201, grant.replayed,
                        {"owner": grant.owner, "token": grant.token, "token_id": grant.token_id,
                         "token_expires_at": expires})


@_endpoint
async def transfer(request: Request, services: Services) -> Response:
    """POST: the owner offers a hand-over (the code is in the answer, once). DELETE: cancels it."""
    gtin, serial = unit_key(request, "/transfer")
    who = await writer(request, services, ("owner",), gtin, serial)
    via = channel(request)
    if request.method == "DELETE":
        appended = await transfers.cancel_transfer(services, who, gtin, serial, expected_version(request), via)
        return _unit_answer(appended.unit, 200, appended.replayed)
    body = await object_body(request) if int(request.headers.get("content-length") or 0) else {}
    code, expires, unit, replayed = await transfers.offer_transfer(services, who, gtin, serial,
                                                                 expected_version(request, body), via)
    return _unit_answer(unit, 201, replayed, {"code": code, "expires_at": expires.isoformat().replace("+00:00", "Z")})


@_endpoint
async def post_claim(request: Request, services: Services) -> Response:
    """The new owner claims with the code (public, rate-limited); answers with an owner token."""
    gtin, serial = unit_key(request, "/transfer/claim")
    body = await object_body(request)
    return _owner_answer(await transfers.claim_transfer(services, gtin, serial, body, channel(request)))


@_endpoint
async def get_unit_epcis(request: Request, services: Services) -> Response:
    """Every event of the unit as an EPCIS 2.0 document."""
    gtin, serial = unit_key(request, "/epcis")
    await writer(request, services, reading.EXPORT_ROLES, gtin, serial)
    events = await services.store.get_events(gtin, serial)
    if not events:
        await reading.known_snapshot(services, gtin, serial)  # 404 for serials nobody issued
    doc = epcis_export.document([(gtin, serial, 1, events)], datetime.now(UTC))
    return json_response(doc, headers={"Content-Type": epcis_export.MEDIA_TYPE, "Cache-Control": "private, no-store"})


@_endpoint
async def get_dpp(request: Request, services: Services) -> Response:
    """The unit's digital product passport (JSON-LD, GS1 Web Vocabulary), scoped by role:
    the public part for anyone, restricted sections for regulators, repairers, recyclers."""
    gtin, serial = unit_key(request, "/dpp")
    who = await caller(request, services)
    if who is not None:
        who.require(reading.READ_ROLES, gtin, serial)
    snap = await reading.known_snapshot(services, gtin, serial)
    if who is not None and who.role == "owner" and not reading.is_owner(who, snap.unit):
        raise Forbidden("this token belongs to someone who does not own the unit (any more)")
    stored = await services.store.get_dpp(gtin, serial) if snap.unit.version else None
    role = "consumer" if who is None else who.role
    events = await services.store.get_events(gtin, serial) if snap.unit.version else ()  # repair history
    lang = services.rules.current.default_language or "en"
    product = services.rules.current.product_for(gtin)
    doc = dpp.dpp_document(snap.unit, services.rules.current.root, product.name if product else None, lang, stored,
                           recalled=snap.recalled, role=role, events=events)
    return json_response(doc, headers={"Content-Type": dpp.MEDIA_TYPE, "Cache-Control": "private, no-store"})


@_endpoint
async def get_batch_epcis(request: Request, services: Services) -> Response:
    """The events of every unit of a batch that has any, as one EPCIS 2.0 document.

    Units without events have only their commissioning, which the batch's own
    ``epcis.jsonld`` file (from the line API) lists.
    """
    batch_id = request.path_params["batch_id"]
    try:
        gtin = parse_batch_id(batch_id)[0]
    except TwinError:
        raise NotFound(f"no batch {batch_id!r}", "batch_id") from None
    await writer(request, services, reading.EXPORT_ROLES, gtin)
    batch = await services.store.get_batch(batch_id)
    if batch is None:
        raise NotFound(f"no batch {batch_id!r}", "batch_id")
    serials: list[str] = []
    async for keys in services.store.unit_keys():
        candidates = [k for k in keys if k[0] == gtin]
        for unit in await services.store.get_units(candidates) if candidates else ():
            if unit is not None and unit.batch_id == batch_id:
                serials.append(unit.serial)
        if len(serials) > MAX_EXPORT_UNITS:
            raise PayloadTooLarge(f"more than {MAX_EXPORT_UNITS} units of this batch have events; "
                                "export them unit by unit", "batch_id")
    units = [(gtin, s, 1, await services.store.get_events(gtin, s)) for s in sorted(serials)]
    doc = epcis_export.document(units, datetime.now(UTC))
    return json_response(doc, headers={"Content-Type": epcis_export.MEDIA_TYPE, "Cache-Control": "private, no-store"})


# -- recalls, tokens, audit -----------------------------------------------------------------


@_endpoint
async def post_recall(request: Request, services: Services) -> Response:
    """Recall a lot, serial range, counter range, serial or a whole GTIN (next scan shows it)."""
    body = await object_body(request)
    who = await writer(request, services, recalls.RECALL_ROLES)
    started = datetime.now(UTC)
    overlay = await recalls.put_recall(services, who, body, channel(request))
    replayed = overlay.created_at < started.replace(microsecond=started.microsecond // 1000 * 1000)
    headers = {"Location": f"/v1/recalls/{overlay.gtin}/{overlay.id}"} | ({"Idempotent-Replayed": "true"} if replayed else {})
    ssccs = await recalls.affected_ssccs(services, overlay)
    return json_response({**overlay_json(overlay), "gtin": overlay.gtin, "replayed": replayed, "ssccs": ssccs},
                         200 if replayed else 201, headers)


@_endpoint
async def list_recalls(request: Request, services: Services) -> Response:
    """The GTIN's recalls, lifted ones included (history)."""
    gtin = _gtin(request)
    await writer(request, services, ("regulator", "manufacturer", "admin"), gtin)
    overlays = await services.store.get_overlays(gtin, include_lifted=True)
    return json_response({"gtin": gtin, "recalls": [overlay_json(o) for o in overlays if o.kind == "recalled"]})


@_endpoint
async def lift_recall(request: Request, services: Services) -> Response:
    """End a recall (it stays in the history)."""
    gtin = _gtin(request)
    body = await object_body(request)
    who = await writer(request, services, recalls.RECALL_ROLES, gtin)
    overlay, replayed = await recalls.lift_recall(services, who, gtin, request.path_params["overlay_id"], body.get("reason"),
                                                  channel(request))
    return json_response({**overlay_json(overlay), "gtin": gtin, "replayed": replayed},
                         headers={"Idempotent-Replayed": "true"} if replayed else None)


def _gtin(request: Request) -> str:
    gtin = request.path_params["gtin"]
    if not (len(gtin) == 14 and gtin.isdigit()):
        raise Invalid("expected a 14-digit GTIN", "gtin")
    return gtin


@_endpoint
async def post_token(request: Request, services: Services) -> Response:
    """Issue a scoped token (manufacturers within their scope; admins any but owner)."""
    body = await object_body(request)
    who = await writer(request, services, ("manufacturer", "admin"))
    answer = await tokens.issue_token(services, who, body, channel(request))
    return json_response(answer, 200 if answer["replayed"] else 201,
                         {"Cache-Control": "no-store", **({"Idempotent-Replayed": "true"} if answer["replayed"] else {})})


@_endpoint
async def revoke(request: Request, services: Services) -> Response:
    """Revoke a token by id: every worker and host refuses it within a second."""
    body = await object_body(request)
    who = await writer(request, services, ("owner", "installer", "technician", "regulator", "manufacturer", "line", "admin"))
    token_id = request.path_params["token_id"]
    if not (0 < len(token_id) <= 64 and token_id.replace("-", "").replace("_", "").isalnum()):
        raise NotFound(f"no token {token_id!r}", "token_id")
    return json_response(await tokens.revoke_token(services, who, token_id, body.get("reason"), channel(request)))


@_endpoint
async def get_audit(request: Request, services: Services) -> Response:
    """Who did what to the GTIN's data, when and from where (oldest first, paged by ``after``)."""
    gtin = _gtin(request)
    await writer(request, services, ("manufacturer", "admin"), gtin)
    after = request.query_params.get("after")
    limit_text = request.query_params.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
        raise Invalid("expected 1..1000", "limit")
    if after is not None and not (0 < len(after) <= 40 and after.replace("-", "").isdigit()):
        raise Invalid("expected a cursor this endpoint returned", "after")
    entries = await services.store.audit(gtin, after=after, limit=int(limit_text))
    return json_response({"gtin": gtin, "entries": [
        {"cursor": e.cursor, "at": e.at.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "role": e.actor.role,
         "principal": e.actor.principal, "action": e.action, "subject": e.subject, "detail": _plain(e.detail)}
        for e in entries], "next": entries[-1].cursor if entries else after})


def _plain(detail: Any) -> Any:
    """Audit details are msgpack: keep them JSON-shaped (bytes as text)."""
    if isinstance(detail, dict):
        return {str(k): _plain(v) for k, v in detail.items()}
    if isinstance(detail, (list, tuple)):
        return [_plain(v) for v in detail]
    if isinstance(detail, bytes):
        return detail.decode("utf-8", "replace")
    return detail


# -- the hot path: an anonymous read, in raw ASGI ---------------------------------------------

_READ_HEADERS = [(b"content-type", b"application/json"), (b"vary", b"Accept-Language, Authorization, Cookie")]
#: the unit itself, no sub-resource: ``/v1/units/01/{gtin}/21/{serial}`` has six slashes
#: (a ``/`` inside a serial arrives escaped, so it does not count)
_UNIT_SLASHES = 6
log = logging.getLogger("serialink.resolver.units")


async def _send_json(send, status: int, body: bytes, headers: list, head: bool) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": headers + [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def read_anonymously(services: Services, scope, send) -> bool:
    """Answer ``GET``/``HEAD /v1/units/01/{gtin}/21/{serial}`` without a credential, in front
    of Starlette (True), or leave the request to the routes below (False, nothing sent).

    The consumer view is what every phone that scans a label may ask for, so the app calls
    this before Starlette's router and middleware, as it sends scans to the scan handler:
    the router's matching of every route before ``/v1`` and four middleware layers cost
    more than the view itself. What those layers do for such a request is done here too:
    the request id (echoed in ``X-Request-Id``, bound for log lines), the access log line,
    problem+json errors; an anonymous read needs no cache rewrite (no credential) and no
    durability check (not a write). Anything with a credential (``Authorization``, a
    ``serialink_*`` cookie), every write and sub-resource takes the full route.
    """
    method = scope["method"]
    if method != "GET" and method != "HEAD":
        return False
    raw = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
    if raw.count("/") != _UNIT_SLASHES or not raw.startswith(UNITS + "/"):
        return False
    accept_language = rid = None
    for name, value in scope["headers"]:
        if name == b"authorization" or (name == b"cookie" and b"serialink_" in value):
            return False  # a credential (resolver.access.tokens.carries_credential): the full route checks it
        if name == b"accept-language":
            accept_language = value.decode("latin-1")
        elif name == b"x-request-id":
            rid = value
    rid = logs.bind(rid)
    started = time.perf_counter()
    status = 500
    try:
        status = await _anonymous_read(services, send, raw, accept_language, method == "HEAD", rid)
    except Exception:  # a bug answers 500 problem+json and is logged, as the error middleware would
        log.exception("unit read failed: %s", scope["path"])
        problem = problems.Problem(500, "internal", "internal error")
        await _send_json(send, 500, orjson.dumps(problems.body(problem)),
                         _READ_HEADERS[1:] + problems.raw_headers(problem) + [(b"x-request-id", rid)], method == "HEAD")
    finally:
        logs.access(method, scope["path"], status, started)
    return True


async def _anonymous_read(services: Services, send, raw: str, accept_language: str | None, head: bool,
                          rid: bytes) -> int:
    try:
        gtin, serial = parse_unit_path(raw, UNITS, "")
        view = await reading.public_view(services, gtin, serial, languages(accept_language))
    except problems.HANDLED as exc:
        problem = problems.classify(exc)
        problems.log_problem(problem, exc)
        await _send_json(send, problem.status, orjson.dumps(problems.body(problem)),
                         _READ_HEADERS[1:] + problems.raw_headers(problem) + [(b"x-request-id", rid)], head)
        return problem.status
    headers = _READ_HEADERS + [(b"etag", b'"%d"' % view["version"]),
                               (b"cache-control", services.rules.current.cache_control[0]),
                               (b"x-request-id", rid)]
    await _send_json(send, 200, orjson.dumps(view), headers, head)
    return 200


UNIT = "/01/{gtin}/21/{serial:path}"
unit_routes: list[BaseRoute] = [  # the sub-resources first: {serial:path} would swallow them
    Route(UNIT + "/events", post_event, methods=["POST"]),
    Route(UNIT + "/registration/confirm", post_confirm, methods=["POST"]),
    Route(UNIT + "/registration", post_registration, methods=["POST"]),
    Route(UNIT + "/transfer/claim", post_claim, methods=["POST"]),
    Route(UNIT + "/transfer", transfer, methods=["POST", "DELETE"]),
    Route(UNIT + "/epcis", get_unit_epcis, methods=["GET"]),
    Route(UNIT + "/dpp", get_dpp, methods=["GET"]),
    Route(UNIT, get_unit, methods=["GET"]),
]
#: the unit routes under ``/v1/units`` (a Router, so the OpenAPI document lists them through the Mount)
units_app = Router(routes=unit_routes)


def add_unit_routes(extra: list[BaseRoute]) -> None:
    """Sub-resources of a unit defined in their own modules (resolver.api.support), matched
    before the unit itself; the app adds them once when it is built."""
    for route in extra:
        if route not in units_app.routes:
            units_app.routes.insert(0, route)


routes: list[BaseRoute] = [
    Mount("/units", app=units_app),
    Route("/batches/{batch_id}/epcis", get_batch_epcis, methods=["GET"]),
    Route("/recalls", post_recall, methods=["POST"]),
    Route("/recalls/{gtin}", list_recalls, methods=["GET"]),
    Route("/recalls/{gtin}/{overlay_id}/lift", lift_recall, methods=["POST"]),
    Route("/tokens", post_token, methods=["POST"]),
    Route("/tokens/{token_id}/revoke", revoke, methods=["POST"]),
    Route("/audit/{gtin}", get_audit, methods=["GET"]),
]
