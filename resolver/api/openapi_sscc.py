"""OpenAPI operations of ``resolver.api.ssccs`` (SSCCs for cases and pallets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

STR = {"type": "string"}
STRS = {"type": "array", "items": STR}
RANGE_PARAM = {"name": "batch_id", "in": "path", "required": True, "schema": STR,
               "description": "<allocator key>.sscc-p<prefix digits after the 4th>.<start> (from POST /v1/ssccs)"}

SCHEMAS: dict[str, Any] = {
    "SsccRequest": {"type": "object", "additionalProperties": True,
                    "required": ["prefix", "extension", "count", "request_id"],
                    "properties": {"prefix": {"type": "string", "pattern": "^[0-9]{4,12}$"},
                                   "extension": {"type": ["string", "integer"], "description": "one digit 0-9"},
                                   "count": {"type": "integer", "minimum": 1, "maximum": 1000000},
                                   "request_id": STR, "site": STR, "line": STR,
                                   "formats": {"oneOf": [STRS, STR]}}},
    "SsccRange": {"type": "object", "additionalProperties": True, "required": ["sscc_range", "links"],
                  "properties": {"sscc_range": {"type": "object"}, "manifest": {"type": ["object", "null"]},
                                 "links": {"type": "object"}}},
}


def operations(op: Callable[..., dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    roles, readers = "line, manufacturer, admin", "line, manufacturer, admin, regulator"
    return {
        ("create_ssccs", "POST"): op("Mint SSCCs (AI 00) for cases and pallets and write their labels (ZPL with "
                                     "GS1-128 and DL QR, CSV); idempotent by request_id", roles,
                                     {"200": ("already minted", "SsccRange"), "201": ("minted", "SsccRange")},
                                     (401, 403, 409, 413, 422, 503, 507), body="SsccRequest", tag="ssccs"),
        ("get_ssccs", "GET"): op("An SSCC range, its first and last SSCC and label manifest", readers,
                                 {"200": ("the range", "SsccRange")}, (401, 403, 404, 503), params=(RANGE_PARAM,),
                                 tag="ssccs"),
        ("get_sscc_file", "GET"): op("One label file of an SSCC range, streamed", readers,
                                     {"200": ("the file", None)}, (401, 403, 404, 503),
                                     params=(RANGE_PARAM, {"name": "name", "in": "path", "required": True,
                                                           "schema": STR}), tag="ssccs"),
    }
