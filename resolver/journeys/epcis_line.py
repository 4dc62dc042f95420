"""EPCIS 2.0 at the line: events at the step they describe, capture from line systems, queries.

**Events from line reports.** Every applied line report (``twin.line_state``) is one
EPCIS event, rendered on demand from what the store keeps (step, time, the bitmap of
batch indices): ``verified`` pass and ``commissioned`` → ObjectEvent ADD
``commissioning``/``active`` with lot and expiry as ILMD; ``verified`` fail → OBSERVE
``inspecting``/``non_conformant``; ``printed`` → OBSERVE ``encoding``/``encoded``;
``rejected``, ``unused``, ``decommissioned`` and ``close`` → DELETE
``decommissioning``/``inactive`` (for ``close``: the serials it decommissioned). EPCs are
canonical SGTIN Digital Link URIs, at most 10,000 per event.

**Capture.** ``plan_capture`` checks a document against GS1's official EPCIS 2.0 JSON
Schema (``config/epcis/EPCIS-JSON-Schema.json``; the error names the element, e.g.
``epcisBody.eventList[3].action``), then against the twin: each EPC must be a serial some
batch of ours issued (``…epcList[5]: unknown serial``), of a minted batch. Commissioning
(ADD) and decommissioning (DELETE) ObjectEvents become line reports whose id is the
event's ``eventID`` — so capture is idempotent by ``eventID`` — computed as the CBV 2.0
event hash (``ni:///sha-256;…?ver=CBV2.0``) when the event has none.

The hash follows CBV 2.0 §8.9's canonical pre-hash string for the fields Serialink
applies (type, eventTime normalised to UTC milliseconds, eventTimeZoneOffset, sorted EPCs
as URNs, action, bizStep and disposition as CBV URIs, readPoint, bizLocation, parentID,
childEPCs); other fields are appended in key order. It is deterministic and independent
of EPC order and time zone notation; parity with GS1's reference generator on every
field combination is not claimed.

>>> event_hash_id({"type": "ObjectEvent", "eventTime": "2026-03-01T09:00:00+01:00",
...                "eventTimeZoneOffset": "+01:00", "action": "ADD", "bizStep": "commissioning",
...                "epcList": ["https://id.gs1.org/01/09506000134352/21/B", "urn:epc:id:sgtin:9506000.013435.A"]}) \\
...   == event_hash_id({"type": "ObjectEvent", "eventTime": "2026-03-01T08:00:00.000Z",
...                "eventTimeZoneOffset": "+01:00", "action": "ADD", "bizStep": "commissioning",
...                "epcList": ["urn:epc:id:sgtin:9506000.013435.B", "https://id.gs1.org/01/09506000134352/21/A"]})
True
>>> parse_epc("urn:epc:id:sgtin:9506000.013435.A%2FB", "epc")
('09506000134352', 'A/B')
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

import jsonschema_rs
import orjson
from pyroaring import BitMap

from ext import GS1Error, compute_check_digit, parse
from resolver.errors import Invalid
from resolver.journeys.epcis_export import CONTEXT, sgtin
from twin.batch import Batch, BatchKind
from twin.line_state import LineReport, LineStep, StoredReport, report_digest

EPCS_PER_EVENT = 10_000
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://serialink.invalid/epcis/line-reports")
CBV = "https://ref.gs1.org/cbv/"

#: line step (and result) → (action, bizStep, disposition)
STEP_EVENTS: dict[tuple[str, str | None], tuple[str, str, str]] = {
    ("printed", None): ("OBSERVE", "encoding", "encoded"),
    ("verified", "pass"): ("ADD", "commissioning", "active"),
    ("verified", "fail"): ("OBSERVE", "inspecting", "non_conformant"),
    ("commissioned", None): ("ADD", "commissioning", "active"),
    ("rejected", None): ("DELETE", "decommissioning", "inactive"),
    ("unused", None): ("DELETE", "decommissioning", "inactive"),
    ("decommissioned", None): ("DELETE", "decommissioning", "inactive"),
    ("close", None): ("DELETE", "decommissioning", "inactive"),
}
#: what capture applies: (action, bizStep) → line step
CAPTURED_STEPS = {("ADD", "commissioning"): LineStep.COMMISSIONED,
                  ("DELETE", "decommissioning"): LineStep.DECOMMISSIONED,
                  ("DELETE", "destroying"): LineStep.DECOMMISSIONED}


# -- schema ------------------------------------------------------------------------------


@functools.cache
def _validator(path: Path) -> Any:
    return jsonschema_rs.validator_for(orjson.loads(path.read_bytes()), validate_formats=False)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def check_schema(document: Any, schema_file: Path) -> None:
    """Invalid naming the first element GS1's schema refuses (the deepest, most specific)."""
    errors = list(_validator(schema_file).iter_errors(document))
    if errors:
        worst = max(errors, key=lambda e: len(list(e.instance_path)))
        raise Invalid(f"fails the EPCIS 2.0 schema: {worst.message[:300]}", _path(worst.instance_path))


# -- identifiers -------------------------------------------------------------------------


def parse_epc(value: object, field: str) -> tuple[str, str]:
    """(GTIN, serial) of an SGTIN given as a Digital Link URI or an EPC URN."""
    if isinstance(value, str) and value.startswith("urn:epc:id:sgtin:"):
        parts = value[len("urn:epc:id:sgtin:"):].split(".", 2)
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit() and len(parts[0]) + len(parts[1]) == 13:
            company, item, serial = parts
            body = item[0] + company + item[1:]
            return body + str(compute_check_digit(body)), unquote(serial)
        raise Invalid(f"{value!r} is not an SGTIN URN (urn:epc:id:sgtin:<prefix>.<item>.<serial>)", field)
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        try:
            dl = parse(value)
        except GS1Error as exc:
            raise Invalid(f"{value!r} is not a GS1 Digital Link URI: {exc}", field) from None
        if dl.gtin is not None and dl.serial is not None:
            return dl.gtin, dl.serial
    raise Invalid(f"{value!r} is not a serialised GTIN (SGTIN); give a Digital Link URI with /01/…/21/… "
                  "or urn:epc:id:sgtin:…", field)


def _urn(epc: str) -> str:
    """An SGTIN in the URN form the event hash uses (anything else as given). The split is
    always after 7 digits, whatever company prefix is configured: the same event must hash
    the same before and after a prefix is configured (the eventIDs of captures without one
    are these hashes). URNs Serialink writes split at the configured prefix
    (``resolver.journeys.epc_names``); both parse back (``parse_epc`` reads any split)."""
    try:
        gtin, serial = parse_epc(epc, "epc")
    except Invalid:
        return epc
    return f"urn:epc:id:sgtin:{gtin[1:8]}.{gtin[0]}{gtin[8:13]}.{serial}"


def _utc(text: str) -> str:
    at = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _vocab(value: str, kind: str) -> str:
    return value if ":" in value else f"{CBV}{kind}-{value}"


def event_hash_id(event: Mapping[str, Any]) -> str:
    """The CBV 2.0 event hash ID of ``event`` (see the module docstring for its scope)."""
    parts = [f"eventType={event.get('type')}"]
    if "eventTime" in event:
        parts.append(f"eventTime={_utc(str(event['eventTime']))}")
    if "eventTimeZoneOffset" in event:
        parts.append(f"eventTimeZoneOffset={event['eventTimeZoneOffset']}")
    if "parentID" in event:
        parts.append(f"parentID={_urn(str(event['parentID']))}")
    for name in ("epcList", "childEPCs"):
        if event.get(name):
            parts.append(name + "".join(f"epc={e}" for e in sorted(_urn(str(x)) for x in event[name])))
    if "action" in event:
        parts.append(f"action={event['action']}")
    if "bizStep" in event:
        parts.append(f"bizStep={_vocab(str(event['bizStep']), 'BizStep')}")
    if "disposition" in event:
        parts.append(f"disposition={_vocab(str(event['disposition']), 'Disp')}")
    for name in ("readPoint", "bizLocation"):
        if isinstance(event.get(name), Mapping) and "id" in event[name]:
            parts.append(f"{name}id={event[name]['id']}")
    done = {"type", "eventTime", "eventTimeZoneOffset", "parentID", "epcList", "childEPCs", "action", "bizStep",
            "disposition", "readPoint", "bizLocation", "eventID", "recordTime", "@context"}
    for name in sorted(set(event) - done):
        parts.append(f"{name}={orjson.dumps(event[name], option=orjson.OPT_SORT_KEYS).decode()}")
    digest = hashlib.sha256("".join(parts).encode()).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"


# -- events from line reports -------------------------------------------------------------


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_event_id(batch_id: str, report_id: str, chunk: int = 0) -> str:
    """A captured event keeps its own eventID; a line API report gets a name-based UUID."""
    if chunk == 0 and report_id.startswith(("urn:", "ni:", "http:", "https:")):
        return report_id
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{batch_id}#{report_id}#{chunk}')}"


def report_events(batch: Batch, report: StoredReport, serial_of: Any, only: BitMap | None = None) -> list[dict[str, Any]]:
    """The EPCIS event(s) of one stored line report (``only``: just these indices)."""
    shape = STEP_EVENTS.get((report.step, report.result if report.step == "verified" else None))
    if shape is None:
        return []
    indices = report.indices if only is None else report.indices & only
    if not indices:
        return []
    action, biz_step, disposition = shape
    listed = list(indices)
    out = []
    for chunk, first in enumerate(range(0, len(listed), EPCS_PER_EVENT)):
        event: dict[str, Any] = {
            "type": "ObjectEvent", "eventID": report_event_id(batch.id, report.report_id, chunk),
            "eventTime": _iso(report.at_ms), "eventTimeZoneOffset": "+00:00",
            "epcList": [sgtin(batch.gtin, serial_of(i)) for i in listed[first:first + EPCS_PER_EVENT]],
            "action": action, "bizStep": biz_step, "disposition": disposition,
        }
        if action == "ADD" and (batch.lot or batch.expiry):
            ilmd: dict[str, str] = {}
            if batch.lot:
                ilmd["cbvmda:lotNumber"] = batch.lot
            if batch.expiry:
                ilmd["cbvmda:itemExpirationDate"] = batch.expiry.isoformat()
            event["ilmd"] = ilmd
        out.append(event)
    return out


def document(events: Sequence[dict[str, Any]], created: datetime) -> dict[str, Any]:
    return {"@context": [CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "epcisBody": {"eventList": list(events)}}


def event_matches(event: Mapping[str, Any], biz_step: str | None, since: str | None, until: str | None) -> bool:
    if biz_step is not None and _vocab(str(event.get("bizStep", "")), "BizStep") != _vocab(biz_step, "BizStep"):
        return False
    at = _utc(str(event["eventTime"]))
    return (since is None or at >= _utc(since)) and (until is None or at < _utc(until))


# -- capture -------------------------------------------------------------------------------


class CapturePlan(NamedTuple):
    """What a captured document does: line reports per batch (in document order), and the
    eventIDs (given or computed) of every event."""

    reports: dict[str, list[LineReport]]
    batches: dict[str, Batch]
    event_ids: list[str]
    gtins: frozenset[str]
    aggregations: list[tuple[Mapping[str, Any], str]]  # AggregationEvents and where they are


async def plan_capture(document: Any, schema_file: Path, verifier: Any) -> CapturePlan:
    """Check ``document`` (schema, then twin) and turn it into line reports; Invalid names
    the element at fault and nothing is applied."""
    check_schema(document, schema_file)
    if not isinstance(document, Mapping) or document.get("type") != "EPCISDocument":
        raise Invalid("expected an EPCISDocument", "type")
    events = document["epcisBody"].get("eventList", [])
    reports: dict[str, list[LineReport]] = {}
    batches: dict[str, Batch] = {}
    ids: list[str] = []
    gtins: set[str] = set()
    aggregations: list[tuple[Mapping[str, Any], str]] = []
    for i, event in enumerate(events):
        where = f"epcisBody.eventList[{i}]"
        event_id = event.get("eventID") or event_hash_id(event)
        if len(event_id) > 100 or " " in event_id:
            raise Invalid("this capture interface keeps eventIDs of at most 100 characters", f"{where}.eventID")
        ids.append(event_id)
        if event.get("type") == "AggregationEvent":
            aggregations.append((event, where))  # packs and unpacks: resolver.journeys.aggregation
            continue
        if event.get("type") != "ObjectEvent":
            raise Invalid(f"{event.get('type')} is not applied by this capture interface (ObjectEvent: "
                          "commissioning ADD, decommissioning/destroying DELETE; AggregationEvent ADD/DELETE)",
                          f"{where}.type")
        step = CAPTURED_STEPS.get((event.get("action"), str(event.get("bizStep", "")).rsplit("-", 1)[-1]))
        if step is None:
            raise Invalid("applied here: action ADD with bizStep commissioning, DELETE with decommissioning or "
                          "destroying", f"{where}.bizStep")
        epcs = event.get("epcList") or []
        if not epcs:
            raise Invalid("an applied ObjectEvent lists its EPCs", f"{where}.epcList")
        batch: Batch | None = None
        positions: list[int] = []
        for k, epc in enumerate(epcs):
            field = f"{where}.epcList[{k}]"
            gtin, serial = parse_epc(epc, field)
            match = await verifier.issued_by(gtin, serial)
            if match is None:
                raise Invalid(f"unknown serial {serial!r} of GTIN {gtin}: no batch issued it", field)
            if match.batch.kind is not BatchKind.MINTED or match.counter is None:
                raise Invalid(f"{serial!r} is an imported serial; line events apply to minted batches", field)
            if batch is None:
                batch = match.batch
            elif match.batch.id != batch.id:
                raise Invalid(f"belongs to batch {match.batch.id}, the event's first EPC to {batch.id}: "
                              "send one event per batch", field)
            positions.append(match.counter - batch.start)
        assert batch is not None
        indices = BitMap(positions)
        if len(indices) != len(positions):
            k = next(k for k, p in enumerate(positions) if positions.index(p) != k)
            raise Invalid("the event lists this EPC twice", f"{where}.epcList[{k}]")
        gtins.add(batch.gtin)
        batches[batch.id] = batch
        at = datetime.fromisoformat(str(event["eventTime"]).replace("Z", "+00:00"))

        def locate(index: int, where: str = where, positions: list[int] = positions) -> str:
            return f"{where}.epcList[{positions.index(index)}]" if index in positions else where

        reports.setdefault(batch.id, []).append(LineReport(
            event_id, step, indices, at, locate=locate, digest=report_digest(str(step), None, None, None, indices)))
    seen: set[str] = set()
    for i, event_id in enumerate(ids):
        if event_id in seen:
            raise Invalid("the document repeats this eventID", f"epcisBody.eventList[{i}].eventID")
        seen.add(event_id)
    return CapturePlan(reports, batches, ids, frozenset(gtins), aggregations)
