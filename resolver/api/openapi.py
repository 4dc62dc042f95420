"""The OpenAPI 3.1 document of every ``/v1`` endpoint, served at ``/openapi.json`` (and ``/docs``).

Paths are read from the app's router, operations from the table below keyed by the
endpoint function: the document lists exactly what the app mounts, where it mounts it,
and an endpoint nobody documented fails the test that builds the document
(tests/test_twin_api_openapi.py, which also validates it with openapi-spec-validator).

>>> doc = document_for([("/v1/recalls", "POST", "post_recall")])
>>> doc["paths"]["/v1/recalls"]["post"]["responses"]["201"]["description"]
'recalled'
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from resolver.api import openapi_line, openapi_sscc
from resolver.api.common import json_response

JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}
GTIN_PARAM = {"name": "gtin", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": "^[0-9]{14}$"}, "description": "GTIN-14"}
SERIAL_PARAM = {"name": "serial", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": "^[!\"%&'()*+,\\-./0-9:;<=>?A-Z_a-z]{1,20}$"},
                "description": "AI 21 serial, percent-encoded as in a GS1 Digital Link URI (`/` is `%2F`)"}
KEY_PARAM = {"name": "Idempotency-Key", "in": "header", "required": True,
             "schema": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^\\S+$"},
             "description": "the same key repeats the first attempt's effect; another body with it is a 409"}
IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": 'the unit version (ETag) the write expects, e.g. `"4"`; a stale one is a 409'}
LINE_KEY_PARAM = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"},
                  "description": "a line key's id (from GET /v1/lines), never the key"}
BATCH_PARAM = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "<gtin>.<profile>.<start>"}

_ERRORS = {"400": "malformed request", "401": "no, a forged, expired or revoked token",
           "403": "the token's role or scope does not allow this", "404": "not found",
           "405": "method not allowed", "409": "conflict: stale version, reused idempotency key, illegal transition",
           "410": "gone (too many wrong codes)", "413": "body too large", "415": "unsupported media type",
           "422": "invalid field (named in error.field)", "429": "rate limited (Retry-After)",
           "503": "store unavailable (Retry-After)", "507": "insufficient storage"}


def _obj(properties: dict[str, Any], required: Iterable[str] = (), extra: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": extra}
    if required:
        schema["required"] = list(required)
    return schema


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
NSTR = {"type": ["string", "null"]}
STRS = {"type": "array", "items": STR}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _obj({"field": STR, "reason": STR}, ["reason"])}, ["error"]),
    "UnitView": _obj({
        "view": {"enum": ["consumer", "owner", "technician", "regulator", "manufacturer"]},
        "gtin": STR, "serial": STR, "product": _obj({"name": NSTR}), "state": STR, "known": BOOL,
        "registered": BOOL, "recalled": BOOL, "stolen": BOOL, "version": INT,
        "warranty": {"type": ["object", "null"]}, "service": {"type": "object"},
        "links": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "object"}}},
        "transfer_pending": BOOL,
    }, ["view", "gtin", "serial", "state", "version", "links"], extra=True),
    "UnitWrite": _obj({"gtin": STR, "serial": STR, "state": STR, "version": INT, "recalled": BOOL, "stolen": BOOL,
                       "replayed": BOOL}, ["gtin", "serial", "state", "version", "replayed"], extra=True),
    "OwnerGrant": {"allOf": [{"$ref": "#/components/schemas/UnitWrite"},
                             _obj({"owner": STR, "token": STR, "token_id": STR, "token_expires_at": STR},
                                  ["owner", "token", "token_id", "token_expires_at"], extra=True)]},
    "EventRequest": _obj({
        "type": {"enum": ["service", "firmware", "start_service", "end_service", "end_of_life", "report_stolen",
                          "recovered", "ship", "sell", "recall", "recall_lift", "dpp", "install"]},
        "reason": {"type": "string", "maxLength": 1000}, "where": {"type": "string", "maxLength": 200},
        "data": {"type": "object", "description": "per type: service {summary, ticket, parts[], fault_codes[]}, "
                                                  "firmware {version}, start_service {ticket}, sell {purchase_date, "
                                                  "jurisdiction, retailer}, ship {to}, dpp {href | document}, "
                                                  "install {site, installed_on, certification, company, jurisdiction}"},
        "expected_version": {"type": "integer", "minimum": 0}}, ["type"]),
    "RegistrationRequest": _obj({"name": {"type": "string", "maxLength": 200},
                                 "contact": {"type": "string", "maxLength": 200, "description": "e-mail or phone"},
                                 "purchase_date": {"type": "string", "format": "date"},
                                 "jurisdiction": {"type": "string", "pattern": "^[A-Z]{2,3}(-[A-Z0-9]{1,3})?$"},
                                 "language": STR}, ["name", "contact"]),
    "RegistrationPending": _obj({"confirmation": STR, "expires_at": STR, "sent_to": STR, "replayed": BOOL,
                                 "links": _obj({"confirm": STR})}, ["confirmation", "expires_at", "sent_to"]),
    "Confirmation": _obj({"confirmation": STR, "code": STR}, ["confirmation", "code"]),
    "Claim": _obj({"code": STR, "name": STR, "contact": STR}, ["code", "name", "contact"]),
    "TransferOffer": {"allOf": [{"$ref": "#/components/schemas/UnitWrite"},
                                _obj({"code": STR, "expires_at": STR}, ["code", "expires_at"], extra=True)]},
    "RecallRequest": _obj({
        "gtin": {"type": "string", "pattern": "^[0-9]{14}$"}, "reason": STR, "lot": STR, "serial": STR,
        "serials": _obj({"first": STR, "last": STR}, ["first", "last"]),
        "counters": _obj({"profile": STR, "first": {"type": "integer", "minimum": 0},
                          "last": {"type": "integer", "minimum": 0}}, ["profile", "first", "last"]),
        "all": BOOL}, ["gtin", "reason"]),
    "Recall": _obj({"id": STR, "kind": STR, "gtin": STR, "scope": {"type": "object"}, "reason": STR, "at": STR,
                    "active": BOOL, "replayed": BOOL,
                    "ssccs": {"type": "array", "items": STR, "description": "cases and pallets holding units "
                              "of a recalled lot or GTIN (logistics: pull these back)"}},
                   ["id", "kind", "scope", "reason", "active"], extra=True),
    "Recalls": _obj({"gtin": STR, "recalls": {"type": "array", "items": {"$ref": "#/components/schemas/Recall"}}},
                    ["gtin", "recalls"]),
    "Reason": _obj({"reason": {"type": "string", "minLength": 1, "maxLength": 1000}}, ["reason"]),
    "TokenRequest": _obj({
        "role": {"enum": ["installer", "technician", "regulator", "line", "manufacturer", "admin"]},
        "principal": {"type": "string", "maxLength": 200}, "ttl": {"type": "integer", "minimum": 60},
        "gtins": STRS, "prefixes": STRS, "all_products": BOOL, "sites": STRS, "lines": STRS,
        "unit": _obj({"gtin": STR, "serial": STR}, ["gtin", "serial"])}, ["role", "principal"]),
    "Token": _obj({"token": STR, "token_id": STR, "role": STR, "principal": STR, "expires_at": STR,
                   "replayed": BOOL, "scope": {"type": "object"}}, ["token", "token_id", "role", "expires_at"]),
    "VisitRequest": _obj({
        "units": {"type": "array", "minItems": 1, "maxItems": 50,
                  "items": _obj({"gtin": STR, "serial": STR}, ["gtin", "serial"])},
        "principal": {"type": "string", "maxLength": 200, "description": "the technician"},
        "reference": {"type": "string", "maxLength": 60, "description": "the job number people see (V)"},
        "starts_at": {"type": "string", "format": "date-time"}, "ends_at": {"type": "string", "format": "date-time"},
        "ttl": {"type": "integer", "minimum": 60, "description": "instead of ends_at (default 8 h; at most 7 days)"}},
        ["units", "principal"]),
    "InstallerSessionRequest": _obj({
        "certification": {"type": "string", "maxLength": 100}, "company": {"type": "string", "maxLength": 200},
        "gtins": STRS, "prefixes": STRS, "principal": {"type": "string", "maxLength": 200},
        "ttl": {"type": "integer", "minimum": 60, "description": "seconds (default 90 days)"}},
        ["certification", "company"]),
    "Session": _obj({"session_id": STR, "role": STR, "principal": STR, "sign_in_link": STR,
                     "qr_svg": {"type": "string", "description": "the sign-in link as a QR code (SVG document)"},
                     "expires_at": STR, "replayed": BOOL}, ["session_id", "sign_in_link", "qr_svg", "expires_at"],
                    extra=True),
    "Revoked": _obj({"token_id": STR, "revoked": BOOL, "replayed": BOOL}, ["token_id", "revoked"]),
    "Audit": _obj({"gtin": STR, "entries": {"type": "array", "items": _obj({
        "cursor": STR, "at": STR, "role": STR, "principal": STR, "action": STR, "subject": STR,
        "detail": {"type": "object"}}, extra=True)}, "next": NSTR}, ["gtin", "entries"]),
    "EPCISDocument": _obj({"@context": {"type": "array"}, "type": {"const": "EPCISDocument"},
                           "schemaVersion": STR, "creationDate": STR,
                           "epcisBody": _obj({"eventList": {"type": "array", "items": {"type": "object"}}},
                                             ["eventList"])}, ["@context", "type", "epcisBody"], extra=True),
    "SupportAnswer": _obj({"gtin": STR, "serial": STR, "faults": {"type": "array", "items": {"type": "object"}},
                           "sessions": {"type": "array", "items": {"type": "object"}}}, ("gtin", "serial", "faults")),
    "SupportSession": _obj({"fault_code": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                            "steps": {"type": "array", "items": STR, "maxItems": 50},
                            "outcome": {"enum": ["resolved", "escalated", "technician_booked"]},
                            "session": STR, "notes": STR, "reason": STR, "expected_version": INT},
                           ("fault_code", "outcome")),
    "PartsAnswer": _obj({"gtin": STR, "serial": STR, "on": STR, "firmware": {"type": ["string", "null"]},
                         "configuration": {"type": ["string", "null"]},
                         "parts": {"type": "array", "items": {"type": "object"}},
                         "due": {"type": "array", "items": STR}}, ("gtin", "serial", "parts", "due")),
    "DPP": _obj({"@context": {"type": "object"}, "@id": STR, "@type": STR, "gs1:gtin": STR,
                 "gs1:hasSerialNumber": STR}, ["@context", "@id", "@type"], extra=True),
    "Linksets": _obj({"linksets": {"type": "array", "items": _obj({"anchor": STR, "links": {
        "type": "array", "items": {"type": "object"}}}, ["anchor", "links"])}}, ["linksets"]),
    "LinksWritten": _obj({"anchors": INT}, ["anchors"]),
    "GtinLinks": _obj({"gtin": STR, "linksets": {"type": "array", "items": {"type": "object"}}}, ["gtin", "linksets"]),
    "BatchRequest": _obj({"gtin": STR, "count": {"type": "integer", "minimum": 1}, "profile": STR, "request_id": STR,
                          "lot": STR, "expiry": {"type": "string", "format": "date"}, "site": STR, "line": STR,
                          "formats": {"oneOf": [STRS, STR]}}, ["gtin", "count", "profile", "request_id"], extra=True),
    "Batch": _obj({"batch": {"type": "object"}, "output": STR, "manifest": {"type": ["object", "null"]},
                   "links": {"type": "object"}}, ["batch", "output"], extra=True),
    "AnalyticsReports": _obj({"reports": STRS, "csv": STR}, ["reports"]),
    "AnalyticsReport": _obj({"report": STR, "since": STR, "until": STR, "gtin": NSTR, "columns": STRS,
                             "rows": {"type": "array", "items": {"type": "array"}}},
                            ["report", "columns", "rows"]),
    "Decommission": _obj({"serials": {"type": "array", "items": STR, "minItems": 1}, "reason": STR},
                         ["serials", "reason"]),
    "LineKeyRequest": _obj({"site": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
                            "line": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
                            "gtins": STRS, "prefixes": STRS, "subject": {"type": "string", "maxLength": 200},
                            "ttl": {"type": ["integer", "string"], "description": "seconds or 365d, P365D; "
                                                                                  "default: until revoked"}},
                           ["site", "line"]),
    "LineKey": _obj({"id": STR, "site": STR, "line": STR, "gtins": STRS, "prefixes": STRS, "subject": STR,
                     "state": {"enum": ["active", "retiring", "retired", "expired", "revoked"]},
                     "created": STR, "expires": NSTR, "retires": NSTR, "replaces": NSTR, "replaced_by": NSTR,
                     "revoked": NSTR, "key": {"type": "string", "description": "shown once: when made or rotated"},
                     "replayed": BOOL}, ["id", "site", "line", "state"], extra=True),
    "LineKeys": _obj({"lines": {"type": "array", "items": {"$ref": "#/components/schemas/LineKey"}}}, ["lines"]),
    "Rotation": _obj({"overlap": {"type": ["integer", "string"],
                                  "description": "how long the old key keeps working: seconds or 24h, PT24H "
                                                 "(default 24 h; 0 stops it now)"}}),
    "Decommissioned": _obj({"batch": STR, "decommissioned": {"type": "array", "items": {"type": "object"}}},
                           ["batch", "decommissioned"]),
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def op(summary: str, roles: str, ok: dict[str, tuple[str, str | None]], errors: Iterable[int], *,
       body: str | None = None, params: Iterable[dict] = (), media: str = JSON, public: bool = False,
       tag: str = "units") -> dict[str, Any]:
    """One operation: ``ok`` maps a status to (description, schema name or None)."""
    responses: dict[str, Any] = {}
    for status, (description, schema) in ok.items():
        responses[status] = {"description": description}
        if schema is not None:
            responses[status]["content"] = {media if schema in ("EPCISDocument", "DPP") else JSON: {"schema": _ref(schema)}}
    for status in sorted(set(errors) | {400}):
        responses[str(status)] = {"description": _ERRORS[str(status)], "content": {JSON: {"schema": ERROR}}}
    out: dict[str, Any] = {"summary": summary, "description": f"Roles: {roles}.", "tags": [tag],
                           "responses": responses}
    params = list(params)
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(body)}}}
    out["security"] = [{}, {"bearer": []}] if public else [{"bearer": []}]
    return out


UNIT_PARAMS = (GTIN_PARAM, SERIAL_PARAM)
WRITE = (401, 403, 404, 409, 413, 422, 503)

#: (endpoint name, method) -> operation
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get_unit", "GET"): op("Read a unit, scoped by the caller's role", "anyone (consumer view); owner (their "
                            "registration and history); installer/technician (service record); regulator (DPP, "
                            "recalls); manufacturer/admin (everything, with scan statistics)",
                            {"200": ("the view", "UnitView")}, (401, 403, 404, 405, 503), params=UNIT_PARAMS,
                            public=True),
    ("post_event", "POST"): op("Append an event: service, firmware, install (start_service), end of life, theft…",
                               "per type: technician/installer service, firmware, start_service, end_service, "
                               "end_of_life; owner end_of_life, report_stolen, recovered; manufacturer/admin all",
                               {"201": ("appended", "UnitWrite"), "200": ("a replay: nothing appended", "UnitWrite")},
                               WRITE, body="EventRequest", params=UNIT_PARAMS + (KEY_PARAM, IF_MATCH)),
    ("post_registration", "POST"): op("Register (first owner), step 1: a one-time code goes to the contact",
                                      "anyone; rate-limited", {"202": ("code sent", "RegistrationPending")},
                                      (404, 409, 413, 422, 429, 503), body="RegistrationRequest",
                                      params=UNIT_PARAMS + (KEY_PARAM,), public=True),
    ("post_confirm", "POST"): op("Register, step 2: the code registers the unit; answers an owner token",
                                 "anyone with the code; rate-limited; 5 wrong codes void it",
                                 {"201": ("registered", "OwnerGrant"), "200": ("a replay", "OwnerGrant")},
                                 (404, 409, 410, 413, 422, 429, 503), body="Confirmation",
                                 params=UNIT_PARAMS + (KEY_PARAM,), public=True),
    ("transfer", "POST"): op("Offer a transfer: the answer carries the one-time code (shown once)", "owner",
                             {"201": ("offered", "TransferOffer"), "200": ("a replay", "TransferOffer")}, WRITE,
                             params=UNIT_PARAMS + (KEY_PARAM, IF_MATCH)),
    ("transfer", "DELETE"): op("Cancel the pending transfer", "owner", {"200": ("cancelled", "UnitWrite")}, WRITE,
                               params=UNIT_PARAMS + (KEY_PARAM, IF_MATCH)),
    ("post_claim", "POST"): op("Claim a transfer with its code; answers an owner token for the new owner",
                               "anyone with the code; rate-limited",
                               {"201": ("claimed", "OwnerGrant"), "200": ("a replay", "OwnerGrant")},
                               (404, 409, 413, 422, 429, 503), body="Claim", params=UNIT_PARAMS + (KEY_PARAM,),
                               public=True),
    ("get_unit_epcis", "GET"): op("The unit's events as EPCIS 2.0 JSON-LD", "regulator, manufacturer, admin",
                                  {"200": ("EPCIS document", "EPCISDocument")}, (401, 403, 404, 503),
                                  params=UNIT_PARAMS, media="application/ld+json"),
    ("get_dpp", "GET"): op("The unit's digital product passport (JSON-LD, GS1 Web Vocabulary), role-scoped",
                           "anyone (public part); installer/technician (+ repairer section, repair history); "
                           "regulator, manufacturer, admin (+ regulator and recycler sections)",
                           {"200": ("the passport", "DPP")}, (401, 403, 404, 503),
                           params=UNIT_PARAMS, media="application/ld+json", public=True),
    ("get_support", "GET"): op("The model's fault codes (steps, likely parts, technician needed) and, for the owner "
                               "and service staff, the unit's support sessions", "anyone; sessions: owner, staff",
                               {"200": ("fault codes", "SupportAnswer")}, (401, 403, 404, 503),
                               params=UNIT_PARAMS + ({"name": "fault", "in": "query", "required": False,
                                                      "schema": {"type": "string"},
                                                      "description": "one fault code"},), public=True),
    ("post_support", "POST"): op("Log a troubleshooting session: fault code, steps tried, outcome",
                                 "owner (of the unit), installer, technician, manufacturer, admin",
                                 {"201": ("appended", "UnitWrite"), "200": ("a replay: nothing appended", "UnitWrite")},
                                 WRITE, body="SupportSession", params=UNIT_PARAMS + (KEY_PARAM, IF_MATCH)),
    ("get_parts", "GET"): op("Parts that fit the unit (model, configuration, firmware), each due or not today",
                             "anyone", {"200": ("parts", "PartsAnswer")}, (401, 403, 404, 422, 503),
                             params=UNIT_PARAMS + ({"name": "configuration", "in": "query", "required": False,
                                                    "schema": {"type": "string"},
                                                    "description": "the unit's configuration (AI 22 variant)"},),
                             public=True),
    ("get_batch_epcis", "GET"): op("The events of a batch's units as EPCIS 2.0 JSON-LD",
                                   "regulator, manufacturer, admin", {"200": ("EPCIS document", "EPCISDocument")},
                                   (401, 403, 404, 413, 503), params=(BATCH_PARAM,), media="application/ld+json",
                                   tag="batches"),
    ("post_recall", "POST"): op("Recall a lot, serial range, counter range, serial or GTIN (next scan)",
                                "manufacturer, admin", {"201": ("recalled", "Recall"), "200": ("a replay", "Recall")},
                                (401, 403, 409, 413, 422, 503), body="RecallRequest", params=(KEY_PARAM,),
                                tag="recalls"),
    ("list_recalls", "GET"): op("A GTIN's recalls (lifted ones too)", "regulator, manufacturer, admin",
                                {"200": ("recalls", "Recalls")}, (401, 403, 422, 503), params=(GTIN_PARAM,),
                                tag="recalls"),
    ("lift_recall", "POST"): op("Lift a recall", "manufacturer, admin", {"200": ("lifted", "Recall")},
                                (401, 403, 404, 409, 413, 422, 503), body="Reason",
                                params=(GTIN_PARAM, {"name": "overlay_id", "in": "path", "required": True,
                                                     "schema": STR}, KEY_PARAM), tag="recalls"),
    ("post_token", "POST"): op("Issue a scoped token (per-visit technician tokens name one unit, ≤ 24 h)",
                               "manufacturer (within its scope), admin",
                               {"201": ("issued", "Token"), "200": ("a replay: the same token", "Token")},
                               (401, 403, 409, 413, 422, 503), body="TokenRequest", params=(KEY_PARAM,), tag="tokens"),
    ("post_visit", "POST"): op("Open a technician's visit: units and a time window → a one-time sign-in link (+ QR)",
                               "manufacturer (within its scope), admin",
                               {"201": ("opened", "Session"), "200": ("a replay: the same link", "Session")},
                               (401, 403, 409, 413, 422, 503), body="VisitRequest", params=(KEY_PARAM,), tag="tokens"),
    ("post_installer_session", "POST"): op("Open an installer company's session (one sign-in link per device)",
                                           "manufacturer (within its scope), admin",
                                           {"201": ("opened", "Session"), "200": ("a replay: the same link", "Session")},
                                           (401, 403, 409, 413, 422, 503), body="InstallerSessionRequest",
                                           params=(KEY_PARAM,), tag="tokens"),
    ("revoke", "POST"): op("Revoke a token by id (every worker and host within a second)",
                           "its issuer, its holder, admin", {"200": ("revoked", "Revoked")},
                           (401, 403, 404, 413, 422, 503), body="Reason",
                           params=({"name": "token_id", "in": "path", "required": True, "schema": STR}, KEY_PARAM),
                           tag="tokens"),
    ("list_lines", "GET"): op("Factory line keys within the caller's scope (never a key)", "manufacturer, admin",
                              {"200": ("the keys", "LineKeys")}, (401, 403, 503), tag="lines"),
    ("add_line", "POST"): op("Make a line key for a site, a line and GTINs; the answer shows the key once "
                             "(a retry with the same Idempotency-Key shows the same key)", "manufacturer (within "
                             "its scope), admin", {"201": ("made", "LineKey"), "200": ("a replay", "LineKey")},
                             (401, 403, 409, 413, 422, 503), body="LineKeyRequest", params=(KEY_PARAM,), tag="lines"),
    ("rotate_line", "POST"): op("Rotate a line key: a new key with the same scope; the old one works `overlap` "
                                "more", "manufacturer (within its scope), admin",
                                {"201": ("the new key", "LineKey"), "200": ("a replay", "LineKey")},
                                (401, 403, 404, 409, 413, 422, 503), body="Rotation",
                                params=(LINE_KEY_PARAM, KEY_PARAM), tag="lines"),
    ("revoke_line", "POST"): op("Revoke a line key now", "manufacturer (within its scope), admin",
                                {"200": ("revoked", "LineKey")}, (401, 403, 404, 413, 422, 503), body="Reason",
                                params=(LINE_KEY_PARAM,), tag="lines"),
    ("get_audit", "GET"): op("A GTIN's audit trail: who, when, what, from where", "manufacturer, admin",
                             {"200": ("entries", "Audit")}, (401, 403, 422, 503),
                             params=(GTIN_PARAM, {"name": "after", "in": "query", "schema": STR},
                                     {"name": "limit", "in": "query",
                                      "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}), tag="audit"),
    ("analytics_index", "GET"): op("The analytics reports there are", "manufacturer, admin",
                                   {"200": ("the reports", "AnalyticsReports")}, (401, 403), tag="analytics"),
    ("analytics_report", "GET"): op(
        "One report over the Parquet export (append .csv for CSV): registration-rate, time-to-registration, "
        "scans-per-day, activity, fault-codes, recall-reach, funnel; or suspects (clone detection, live)",
        "manufacturer, admin (a report over every product needs an all-products token)",
        {"200": ("columns and rows (or text/csv)", "AnalyticsReport")}, (401, 403, 422, 503),
        params=({"name": "report", "in": "path", "required": True, "schema": STR},
                {"name": "since", "in": "query", "schema": STR, "description": "ISO 8601; default 90 days ago"},
                {"name": "until", "in": "query", "schema": STR, "description": "ISO 8601; default now"},
                {"name": "gtin", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]{14}$"}},
                {"name": "by", "in": "query", "schema": {"enum": ["role", "state", "link_type", "country", "moment"]},
                 "description": "scans-per-day: the dimension"}), tag="analytics"),
    # existing APIs (resolver.api.links, resolver.api.batches)
    ("put_links", "PUT"): op("Replace the linksets of anchors (DL URIs)", "manufacturer, admin",
                             {"200": ("written", "LinksWritten")}, (401, 403, 409, 413, 422, 503), body="Linksets",
                             tag="links"),
    ("put_links", "POST"): op("Replace the linksets of anchors (DL URIs), as PUT", "manufacturer, admin",
                              {"200": ("written", "LinksWritten")}, (401, 403, 409, 413, 422, 503), body="Linksets",
                              tag="links"),
    ("get_links", "GET"): op("A GTIN's anchors and links", "manufacturer, admin", {"200": ("links", "GtinLinks")},
                             (401, 403, 422, 503), params=(GTIN_PARAM,), tag="links"),
    ("create_batch", "POST"): op("Mint a batch (idempotent by request_id)", "line, manufacturer, admin",
                                 {"200": ("already minted", "Batch"), "201": ("minted", "Batch"),
                                  "202": ("producing; poll Location", "Batch")},
                                 (401, 403, 404, 409, 413, 422, 503, 507), body="BatchRequest", tag="batches"),
    ("get_batch", "GET"): op("A batch, its output status and manifest", "line, manufacturer, admin, regulator",
                             {"200": ("the batch", "Batch")}, (401, 403, 404, 503), params=(BATCH_PARAM,),
                             tag="batches"),
    ("get_file", "GET"): op("One file of a batch, streamed", "line, manufacturer, admin, regulator",
                            {"200": ("the file", None)}, (401, 403, 404, 503),
                            params=(BATCH_PARAM, {"name": "name", "in": "path", "required": True, "schema": STR}),
                            tag="batches"),
    ("void_batch", "POST"): op("Void a batch", "line, manufacturer, admin", {"200": ("voided", "Batch")},
                               (401, 403, 404, 409, 413, 422, 503), body="Reason", params=(BATCH_PARAM,),
                               tag="batches"),
    ("decommission", "POST"): op("Decommission scrapped labels of a batch", "line, manufacturer, admin",
                                 {"200": ("decommissioned", "Decommissioned")}, (401, 403, 404, 409, 413, 422, 503),
                                 body="Decommission", params=(BATCH_PARAM,), tag="batches"),
}

SCHEMAS.update(openapi_line.SCHEMAS)
OPERATIONS.update(openapi_line.operations(op))
SCHEMAS.update(openapi_sscc.SCHEMAS)
OPERATIONS.update(openapi_sscc.operations(op))


def api_paths(app) -> list[tuple[str, str, str]]:
    """(path, method, endpoint name) of every route the app serves under /v1: the routes
    mounted at /v1 and those that carry the prefix themselves (the line API)."""
    found: list[tuple[str, Route]] = []

    def walk(prefix: str, routes) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(prefix + route.path, route.routes)
            elif isinstance(route, Route):
                found.append((prefix + route.path, route))

    for route in app.routes:
        if isinstance(route, Mount) and route.path == "/v1":
            walk("/v1", route.routes)
        elif isinstance(route, Route) and route.path.startswith("/v1/"):
            found.append((route.path, route))
    out = []
    for path, route in found:
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                out.append((path.replace(":path}", "}"), method, route.endpoint.__name__))
    return out


def document_for(paths: Iterable[tuple[str, str, str]]) -> dict[str, Any]:
    """The document of these routes; KeyError names an undocumented one."""
    out: dict[str, dict[str, Any]] = {}
    for path, method, name in paths:
        operation = OPERATIONS.get((name, method))
        if operation is None:
            raise KeyError(f"{method} {path} ({name}) is not documented in resolver/api/openapi.py")
        out.setdefault(path, {})[method.lower()] = {**operation, "operationId": f"{name}_{method.lower()}"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Serialink API", "version": "1",
                 "description": "GS1 Digital Link resolver and unit twin: owner and service journeys, recalls, "
                                "tokens, factory line keys, link data, factory-line batches. Errors are "
                                'problem+json (RFC 9457): `type`, `title`, `status`, `detail`, a stable `code`, the '
                                '`field` at fault, and the same as `{"error": {"field", "reason"}}`. Scans are answered at the root '
                                "(GS1-Conformant Resolver), not here."},
        "paths": out,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {
                           "type": "http", "scheme": "bearer", "bearerFormat": "JWT or line key (slk_…)",
                           "description": "a scoped token (serialink tokens issue, POST /v1/tokens) or, for "
                                          "the line operations, a factory line key (serialink lines add, "
                                          "POST /v1/lines)"}}},
    }


def document(app) -> dict[str, Any]:
    cached = getattr(app.state, "openapi_document", None)
    if cached is None:
        cached = document_for(api_paths(app))
        app.state.openapi_document = cached
    return cached


async def openapi_json(request: Request) -> Response:
    return json_response(document(request.app), headers={"Cache-Control": "public, max-age=300",
                                                         "Access-Control-Allow-Origin": "*"})


async def docs(request: Request) -> Response:
    """A plain list of the operations (no script, no CDN): the JSON is the reference."""
    rows = []
    for path, item in document(request.app)["paths"].items():
        for method, operation in item.items():
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(operation['summary'])}<br><small>{html.escape(operation['description'])}"
                        "</small></td></tr>")
    page = ("<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            "<title>Serialink API</title><style>body{font:15px/1.4 system-ui,sans-serif;margin:1rem}"
            "td{vertical-align:top;padding:.3rem;border-bottom:1px solid #ddd}</style>"
            "<h1>Serialink API</h1><p>OpenAPI 3.1: <a href='/openapi.json'>/openapi.json</a></p>"
            f"<table>{''.join(rows)}</table></html>")
    return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
]
