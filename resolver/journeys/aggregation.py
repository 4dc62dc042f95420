"""Packing at the line: units and cases into SSCC-identified cases and pallets, and back out.

One request shape, whether it comes from ``POST /v1/aggregations``, ``serialink pack`` /
``unpack`` or an EPCIS AggregationEvent captured at ``POST /v1/epcis/capture``::

    {"action": "pack",                      # or "unpack"
     "parent": "095060001343520017",        # the SSCC (GS1 check digit checked)
     "children": ["https://id.gs1.org/01/09506000134352/21/ABC",   # units: DL URI, SGTIN URN
                  "urn:epc:id:sscc:9506000.0134352001",            # cases: SSCC, its URN or DL URI
                  {"gtin": "09506000134352", "serial": "ABD"}],
     "eventID": "pack-line3-000172",        # idempotency: the same id again changes nothing
     "at": "2026-03-01T08:00:00Z",          # optional (default: now)
     "allow_cross_site": false}             # mix goods of several lines/sites in one parent

An unpack with no children empties the parent. Before the store sees anything, every unit
child must be one of ours and commissioned: its batch's line state says so, or (a batch
the line does not track, an imported serial) its batch is not voided; and a unit record
of its own must not say decommissioned or end of life. All children of one pack come from
one line and site unless ``allow_cross_site``. The store then refuses, atomically, a child
packed elsewhere, a case into itself, a parent fed from another line or site
(``twin.aggregation``). Every refusal names the child (``children[3]``) and applies nothing.

Each pack or unpack is an EPCIS 2.0 AggregationEvent (:func:`aggregation_event`): ADD
``packing`` or DELETE ``unpacking``, ``parentID`` an SSCC EPC URN, ``childEPCs`` SGTIN
and SSCC EPC URNs, split at the company prefix the configuration knows
(``resolver.journeys.epc_names``; 7 digits when it knows none). The event hash of a pack
without an eventID always uses the 7-digit split, so it does not change with the
configuration.

>>> sscc_urn("095060001343520017")
'urn:epc:id:sscc:9506000.0134352001'
>>> parse_child("urn:epc:id:sscc:9506000.0134352001", "c")
'095060001343520017'
>>> sgtin_urn("09506000134352", "A/1")
'urn:epc:id:sgtin:9506000.013435.A%2F1'
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from ext import GS1Error, compute_check_digit, parse
from resolver.errors import Invalid
from resolver.journeys.epc_names import DEFAULT_NAMES, EpcNames
from resolver.journeys.epcis_line import event_hash_id, parse_epc
from twin.aggregation import (
    ADD,
    DELETE,
    MAX_CHILDREN,
    AggregationConflict,
    AggregationOp,
    AggregationSummary,
    Child,
    StoredAggregation,
    check_sscc,
    op_digest,
    unit_key,
)
from twin.batch import BatchStatus
from twin.errors import InvalidInput
from twin.events import Actor
from twin.identity import check_gtin, check_serial
from twin.lifecycle import State
from twin.line_state import COMMISSIONED, DECOMMISSIONED, LineState

if TYPE_CHECKING:
    from twin.store import UnitStore

ACTIONS = {"pack": ADD, "unpack": DELETE}
_FIELDS = {"action", "parent", "children", "eventID", "at", "allow_cross_site"}
_DEAD = frozenset({State.DECOMMISSIONED, State.END_OF_LIFE})


def sscc_urn(sscc: str, names: EpcNames = DEFAULT_NAMES) -> str:
    """``urn:epc:id:sscc:<company prefix>.<extension digit + serial reference>``."""
    return names.sscc_urn(sscc)


def sgtin_urn(gtin: str, serial: str, names: EpcNames = DEFAULT_NAMES) -> str:
    return names.sgtin_urn(gtin, serial)


def child_urn(key: str, names: EpcNames = DEFAULT_NAMES) -> str:
    return names.child_urn(key)


def parse_sscc(value: object, field: str) -> str:
    """An SSCC given as 18 digits, its EPC URN or a Digital Link URI with AI 00."""
    text = value
    if isinstance(value, str) and value.startswith("urn:epc:id:sscc:"):
        company, _, ref = value[len("urn:epc:id:sscc:"):].partition(".")
        body = ref[:1] + company + ref[1:]
        if not (company.isdigit() and ref.isdigit() and len(body) == 17):
            raise InvalidInput(field, f"{value!r} is not an SSCC URN (urn:epc:id:sscc:<prefix>.<reference>)")
        text = body + compute_check_digit(body)
    elif isinstance(value, str) and value.startswith(("http://", "https://")):
        try:
            text = parse(value).get("00")
        except GS1Error as exc:
            raise InvalidInput(field, f"{value!r} is not a GS1 Digital Link URI: {exc}") from None
    return check_sscc(text, field)


def parse_child(value: object, field: str) -> str | tuple[str, str]:
    """An SSCC (a case) or (GTIN, serial) (a unit)."""
    if isinstance(value, Mapping):
        gtin, serial = value.get("gtin"), value.get("serial")
        if set(value) != {"gtin", "serial"} or not isinstance(gtin, str) or not isinstance(serial, str):
            raise InvalidInput(field, 'expected {"gtin": …, "serial": …}')
        try:
            return check_gtin(gtin), check_serial(serial)
        except InvalidInput as exc:
            raise InvalidInput(field, f"{exc.field}: {exc.problem}") from None
    if isinstance(value, str) and (value.isdigit() or value.startswith("urn:epc:id:sscc:")
                                   or (value.startswith(("http://", "https://")) and "/00/" in value)):
        return parse_sscc(value, field)
    try:
        return parse_epc(value, field)
    except Invalid as exc:
        raise InvalidInput(field, exc.reason) from None
    except GS1Error as exc:
        raise InvalidInput(field, str(exc)) from None


class Request(NamedTuple):
    """A parsed request: the children still as parsed (not yet checked against the twin)."""

    event_id: str
    action: str
    parent: str
    children: tuple[str | tuple[str, str], ...]
    at: datetime
    allow_cross_site: bool
    fields: tuple[str, ...]


def parse_request(body: Mapping[str, Any], prefix: str = "", names: tuple[str, str] = ("parent", "children")) -> Request:
    """Check the request's shape; InvalidInput names the field (``children[3]``)."""
    if not isinstance(body, Mapping):
        raise InvalidInput("body", "expected a JSON object")
    unknown = set(body) - _FIELDS
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "is not a field of a pack or unpack")
    raw_action = body.get("action")
    action = ACTIONS.get(raw_action) if isinstance(raw_action, str) else None
    if action is None:
        raise InvalidInput("action", f"expected pack or unpack, got {body.get('action')!r:.40}")
    parent = parse_sscc(body.get("parent"), prefix + names[0])
    raw = body.get("children", [])
    if not isinstance(raw, list):
        raise InvalidInput("children", "expected a list of units and SSCCs")
    if action == ADD and not raw:
        raise InvalidInput("children", "a pack names at least one child")
    if len(raw) > MAX_CHILDREN:
        raise InvalidInput("children", f"at most {MAX_CHILDREN} children per pack")
    fields = tuple(f"{prefix}{names[1]}[{i}]" for i in range(len(raw)))
    children = tuple(parse_child(v, f) for v, f in zip(raw, fields, strict=True))
    at_raw = body.get("at")
    if at_raw is None:
        at = datetime.now(UTC)
    else:
        try:
            at = datetime.fromisoformat(str(at_raw).replace("Z", "+00:00"))
        except ValueError:
            at = None  # type: ignore[assignment]
        if at is None or at.tzinfo is None or not isinstance(at_raw, str):
            raise InvalidInput("at", f"expected an ISO 8601 time with a zone, got {at_raw!r:.40}")
    allow = body.get("allow_cross_site", False)
    if not isinstance(allow, bool):
        raise InvalidInput("allow_cross_site", "expected true or false")
    event_id = body.get("eventID")
    if event_id is None:
        keys = [_key(c) for c in children]
        # the 7-digit split whatever the configuration: the same pack hashes the same always
        event = {"type": "AggregationEvent", "action": action, "parentID": DEFAULT_NAMES.sscc_urn(parent),
                 "childEPCs": [DEFAULT_NAMES.child_urn(k) for k in keys]}
        if at_raw is not None:
            event["eventTime"] = at.isoformat()
        event_id = event_hash_id(event)
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 200 or any(ch.isspace() for ch in event_id):
        raise InvalidInput("eventID", "expected 1-200 characters without spaces")
    return Request(event_id, action, parent, children, at, allow, fields)


def _key(child: str | tuple[str, str]) -> str:
    return child if isinstance(child, str) else unit_key(*child)


async def build_op(store: UnitStore, verifier: Any, request: Request,
                   lines: dict[str, LineState | None] | None = None) -> AggregationOp:
    """Check every child against the twin (ours, commissioned, one origin) and build the
    store's op; AggregationConflict / InvalidInput name the child. ``lines``: batch line
    states already read for this write (the packs of one call share one read per batch)."""
    children: list[Child] = []
    origins: list[tuple[str, str]] = []
    lines = {} if lines is None else lines
    units = [(i, c) for i, c in enumerate(request.children) if not isinstance(c, str)]
    records = await store.get_units([c for _, c in units]) if units and request.action == ADD else [None] * len(units)
    record_of = {i: r for (i, _), r in zip(units, records, strict=True)}
    for i, child in enumerate(request.children):
        field = request.fields[i]
        if isinstance(child, str):
            children.append(Child(child))
            if request.action == ADD:
                agg = await store.get_aggregation(child)
                if agg is None:
                    raise AggregationConflict(field, f"SSCC {child} holds nothing: pack its contents first; "
                                                     "nothing was applied")
                origins.append((agg.meta.line, agg.meta.site))
            continue
        gtin, serial = child
        match = await verifier.issued_by(gtin, serial)
        if match is None:
            raise InvalidInput(field, f"unknown unit {gtin}/{serial}: no batch of ours issued it")
        batch = match.batch
        children.append(Child(unit_key(gtin, serial), batch.id, match.counter))
        origins.append((batch.line or "", batch.site or ""))
        if request.action == DELETE:
            continue
        if batch.status is BatchStatus.VOIDED:
            raise AggregationConflict(field, f"unit {gtin}/{serial} is of voided batch {batch.id}; nothing was applied")
        unit = record_of.get(i)
        if unit is not None and unit.version and unit.state in _DEAD:
            raise AggregationConflict(field, f"unit {gtin}/{serial} is {unit.state}; nothing was applied")
        if match.counter is None:
            continue  # imported serials: the batch speaks
        if batch.id not in lines:
            lines[batch.id] = await store.get_line_state(batch.id)
        line = lines[batch.id]
        if line is None:
            continue  # not line-tracked: commissioned unless voided
        state = line.state_of(match.counter - batch.start)
        if state == DECOMMISSIONED:
            raise AggregationConflict(field, f"unit {gtin}/{serial} is decommissioned (rejected or scrapped at the "
                                             "line); nothing was applied")
        if state != COMMISSIONED and not (unit is not None and unit.version):
            raise AggregationConflict(field, f"unit {gtin}/{serial} is not commissioned: the line has not reported "
                                             "it verified; nothing was applied")
    origin: tuple[str, str] | None = None
    if origins:
        origin = origins[0]
        if not request.allow_cross_site:
            for i, o in enumerate(origins):
                if o != origin:
                    raise AggregationConflict(request.fields[i], f"comes from line {o[0] or '-'} at site {o[1] or '-'}, "
                                                                 f"the first child from line {origin[0] or '-'} at site "
                                                                 f"{origin[1] or '-'}; pass allow_cross_site to mix "
                                                                 "them; nothing was applied")
    digest = op_digest(request.action, request.parent, children, request.allow_cross_site)
    return AggregationOp(request.event_id, request.action, request.parent, tuple(children),
                         int(request.at.timestamp() * 1000), origin, request.allow_cross_site, digest, request.fields)


async def apply(store: UnitStore, verifier: Any, bodies: Sequence[tuple[Mapping[str, Any], str, tuple[str, str]]],
                actor: Actor, allowed: Any = None) -> list[AggregationSummary]:
    """Parse, check and apply packs and unpacks in one atomic write: the one way they reach
    the twin. ``bodies``: (request, field prefix for errors); ``allowed(gtins, origin)``:
    the caller's scope check, run before anything is written."""
    ops = []
    lines: dict[str, LineState | None] = {}
    for body, prefix, names in bodies:
        request = parse_request(body, prefix, names)
        op = await build_op(store, verifier, request, lines)
        if allowed is not None:
            children = op.children
            if op.action == DELETE and not children:  # everything out: the scope must cover what is inside
                held = await store.get_aggregation(op.parent)
                children = held.children if held is not None else ()
            allowed({c.key.split("/")[1] for c in children if not c.is_case}, op.origin)
        ops.append(op)
    result: list[AggregationSummary] = await store.apply_aggregations(ops, actor)
    return result


# -- EPCIS ---------------------------------------------------------------------------------


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def aggregation_event(ev: StoredAggregation, names: EpcNames = DEFAULT_NAMES,
                      only: Collection[str] | None = None) -> dict[str, Any]:
    """The EPCIS 2.0 AggregationEvent of one stored pack or unpack, URNs split by ``names``
    (``resolver.journeys.epc_names``); ``only``: list just these children (keys)."""
    event_id = ev.event_id if ev.event_id.startswith(("urn:", "ni:", "http:", "https:")) else \
        f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'serialink:aggregation#' + ev.event_id)}"
    out: dict[str, Any] = {
        "type": "AggregationEvent", "eventID": event_id, "eventTime": _iso(ev.at_ms), "eventTimeZoneOffset": "+00:00",
        "parentID": names.sscc_urn(ev.parent),
        "childEPCs": [names.child_urn(c.key) for c in ev.children if only is None or c.key in only], "action": ev.action,
        "bizStep": "packing" if ev.action == ADD else "unpacking",
        "disposition": "in_progress",
    }
    return out


def capture_body(event: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    """The pack/unpack request an EPCIS AggregationEvent describes (ADD / DELETE)."""
    action = {"ADD": "pack", "DELETE": "unpack"}.get(str(event.get("action")))
    if action is None:
        raise InvalidInput("action", "an applied AggregationEvent is ADD (pack) or DELETE (unpack)")
    if "parentID" not in event:
        raise InvalidInput("parentID", "an applied AggregationEvent names its parent SSCC")
    body: dict[str, Any] = {"action": action, "parent": event["parentID"], "children": list(event.get("childEPCs") or []),
                            "eventID": event_id, "at": str(event["eventTime"])}
    return body
