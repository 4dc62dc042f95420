"""OpenAPI entries of the line's closed loop (line reports; EPCIS capture and query;
aggregation), kept apart from ``openapi.py`` so each feature documents itself; that module
merges them (``SCHEMAS`` and ``operations(op)``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BATCH_PARAM = {"name": "batch_id", "in": "path", "required": True, "schema": STR,
               "description": "<gtin>.<profile>.<start>"}


def _obj(properties: dict[str, Any], required: list[str] | None = None, extra: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": extra}
    if required:
        schema["required"] = required
    return schema


RANGE = _obj({"start": {"type": "integer", "minimum": 0}, "count": {"type": "integer", "minimum": 1}},
             ["start", "count"])

SCHEMAS: dict[str, Any] = {
    "LineReport": _obj({
        "report_id": {"type": "string", "minLength": 1, "maxLength": 100},
        "step": {"enum": ["open", "printed", "verified", "commissioned", "rejected", "unused", "decommissioned",
                          "close"]},
        "result": {"enum": ["pass", "fail"]}, "grade": {"enum": ["A", "B", "C", "D", "F"]},
        "serials": {"type": "array", "items": STR}, "ranges": {"type": "array", "items": RANGE},
        "at": {"type": "string", "format": "date-time"}, "reason": {"type": "string", "maxLength": 1000}},
        ["report_id", "step"]),
    "LineClose": _obj({"report_id": {"type": "string", "minLength": 1, "maxLength": 100},
                       "reason": {"type": "string", "maxLength": 1000},
                       "at": {"type": "string", "format": "date-time"}}, ["report_id"]),
    "LineCounts": _obj({"count": INT, "closed": {"type": "boolean"}, "reports": INT, "printed": INT,
                        "verified_pass": INT, "verified_fail": INT, "commissioned": INT, "decommissioned": INT,
                        "not_commissioned": INT, "grades": {"type": "object"}}, extra=True),
    "LineReported": _obj({"batch": STR, "report": {"type": "object"},
                          "line": {"oneOf": [{"$ref": "#/components/schemas/LineCounts"}, {"type": "null"}]}},
                         ["batch", "report"]),
    "LineStatus": _obj({"batch": STR, "tracked": {"type": "boolean"}, "line": {"type": ["object", "null"]}},
                       ["batch", "tracked"]),
    "CaptureResult": _obj({"captured": INT, "replayed": INT, "eventIDs": {"type": "array", "items": STR}},
                          ["captured", "replayed", "eventIDs"]),
    "EPCISCapture": {"type": "object", "description": "an EPCIS 2.0 EPCISDocument (GS1's JSON Schema)",
                     "required": ["type", "epcisBody"]},
    "EPCISQueryDocument": {"type": "object", "required": ["@context", "type", "epcisBody"]},
    "LineReports": _obj({"batch": STR, "reports": {"type": "array", "items": {"type": "object"}}},
                        ["batch", "reports"]),
    "Aggregation": _obj({
        "action": {"enum": ["pack", "unpack"]}, "parent": {"type": "string", "description": "SSCC (18 digits), "
                                                           "its EPC URN or Digital Link URI"},
        "children": {"type": "array", "items": {"oneOf": [STR, _obj({"gtin": STR, "serial": STR},
                                                                    ["gtin", "serial"])]}},
        "eventID": {"type": "string", "minLength": 1, "maxLength": 200},
        "at": {"type": "string", "format": "date-time"}, "allow_cross_site": {"type": "boolean"}},
        ["action", "parent"]),
    "Aggregated": _obj({"eventID": STR, "action": STR, "parent": STR, "children": INT,
                        "replayed": {"type": "boolean"}, "event": {"type": ["object", "null"]}},
                       ["eventID", "action", "parent", "children", "replayed"]),
    "AggregationContents": _obj({"sscc": STR, "line": {"type": ["string", "null"]},
                                 "site": {"type": ["string", "null"]}, "packed_in": {"type": ["string", "null"]},
                                 "children": {"type": "array", "items": {"type": "object"}},
                                 "events": {"type": "array", "items": {"type": "object"}}},
                                ["sscc", "children", "events"]),
}


def operations(op: Callable[..., dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    write = (401, 403, 404, 409, 413, 422, 503)
    roles, readers = "line, manufacturer, admin", "line, manufacturer, admin, regulator"
    return {
        ("post_report", "POST"): op("Report printed / verified / commissioned / rejected / unused serials in bulk "
                                    "(idempotent by report_id)", roles,
                                    {"200": ("a replay: nothing changed", "LineReported"),
                                     "201": ("applied", "LineReported")}, write, body="LineReport",
                                    params=(BATCH_PARAM,), tag="line"),
        ("get_reports", "GET"): op("The line reports applied to a batch, in order", readers,
                                   {"200": ("the reports", "LineReports")}, (401, 403, 404, 503),
                                   params=(BATCH_PARAM,), tag="line"),
        ("close_batch", "POST"): op("Close a batch: decommission every serial never commissioned", roles,
                                    {"200": ("a replay", "LineReported"), "201": ("closed", "LineReported")},
                                    write, body="LineClose", params=(BATCH_PARAM,), tag="line"),
        ("capture", "POST"): op("EPCIS 2.0 capture: commissioning / decommissioning ObjectEvents applied to the "
                                "twin, idempotent by eventID", roles,
                                {"200": ("every event a replay", "CaptureResult"),
                                 "201": ("captured", "CaptureResult")}, write, body="EPCISCapture", tag="epcis"),
        ("events", "GET"): op("EPCIS 2.0 events by EPC (MATCH_epc) or batch, bizStep (EQ_bizStep) and time "
                              "(GE_eventTime, LT_eventTime)", readers,
                              {"200": ("an EPCISQueryDocument", "EPCISQueryDocument")}, (401, 403, 404, 422, 503),
                              params=tuple({"name": n, "in": "query", "required": False, "schema": STR}
                                           for n in ("MATCH_epc", "batch", "EQ_bizStep", "GE_eventTime",
                                                     "LT_eventTime")), tag="epcis"),
        ("post_aggregation", "POST"): op("Pack units or cases into an SSCC, or unpack some or all (EPCIS "
                                         "AggregationEvent ADD / DELETE; idempotent by eventID)", roles,
                                         {"200": ("a replay: nothing changed", "Aggregated"),
                                          "201": ("applied", "Aggregated")}, write, body="Aggregation",
                                         tag="line"),
        ("get_aggregation", "GET"): op("What an SSCC holds, where its goods came from, the SSCC it is on, and "
                                       "its AggregationEvents", readers,
                                       {"200": ("the contents", "AggregationContents")}, (401, 403, 404, 503),
                                       params=({"name": "sscc", "in": "path", "required": True, "schema": STR},),
                                       tag="line"),
        ("get_line", "GET"): op("A batch's line state: counts per state", readers,
                                {"200": ("the counts", "LineStatus")}, (401, 403, 404, 503), params=(BATCH_PARAM,),
                                tag="line"),
    }
