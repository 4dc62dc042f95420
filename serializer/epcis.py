"""EPCIS 2.0 JSON-LD: commissioning ObjectEvents for what a batch minted.

One EPCISDocument per batch; its events carry at most 10,000 EPCs each (receivers limit
event size), ``action: ADD``, ``bizStep: commissioning``, ``disposition: active``, the units as
canonical SGTIN Digital Link URIs (``https://id.gs1.org/01/{gtin}/21/{serial}``: EPCIS 2.0
identifies instances by key and serial only) and the lot and expiry as ILMD. Times come from
the stored batch and event ids are name-based UUIDs of the batch id, so a regenerated file is
byte-identical. The file is streamed: memory does not grow with the batch.

>>> from serializer.epcis import event_id
>>> event_id("09506000134352.default.0", 0)
'urn:uuid:a09e47a1-2dfa-5853-ac72-bcac5d555de8'
"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson

from serializer.codes import CodeShape
from serializer.output import AtomicFile, FileEntry, Progress, write_rows
from serializer.rows import RowBuilder, check_template, uri_table

FILE_NAME = "epcis.jsonld"
CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EPCS_PER_EVENT = 10_000
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://serialink.invalid/epcis/events")


def event_id(batch_id: str, index: int) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{batch_id}#{index}')}"


def _time(batch) -> str:
    return batch.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epc_row(shape: CodeShape, separator: str):
    b = RowBuilder()
    b.text('"' + shape.epc_split.before)
    b.serial(uri_table())
    b.text(shape.epc_split.after + '"' + separator)
    return b.build()


def event_head(batch, index: int) -> bytes:
    """An event up to the opening of its epcList (members in a fixed order)."""
    head = orjson.dumps({"type": "ObjectEvent", "eventID": event_id(batch.id, index),
                         "eventTime": _time(batch), "eventTimeZoneOffset": "+00:00",
                         "action": "ADD", "bizStep": "commissioning", "disposition": "active"})
    return head[:-1] + b',"epcList":['


def event_tail(batch) -> bytes:
    ilmd = {}
    if batch.lot is not None:
        ilmd["cbvmda:lotNumber"] = batch.lot
    if batch.expiry is not None:
        ilmd["cbvmda:itemExpirationDate"] = batch.expiry.isoformat()
    return b"]" + (b',"ilmd":' + orjson.dumps(ilmd) if ilmd else b"") + b"}"


def write(minted, shape: CodeShape, directory: Path, progress: Progress | None = None) -> FileEntry:
    batch, perm = minted.batch, minted.permutation
    inner, last = _epc_row(shape, ","), _epc_row(shape, "")
    check_template(last, [minted.serial(0)], lambda s: orjson.dumps(shape.epc(s)).decode())
    head = orjson.dumps({"@context": [CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
                         "creationDate": _time(batch)})
    events = -(-batch.count // EPCS_PER_EVENT)
    with AtomicFile(directory / FILE_NAME, "epcis", events) as out:
        out.write(head[:-1] + b',"epcisBody":{"eventList":[\n')
        for index in range(events):
            first = index * EPCS_PER_EVENT
            n = min(EPCS_PER_EVENT, batch.count - first)
            out.write((b",\n" if index else b"") + event_head(batch, index))
            write_rows(out, perm, batch.start + first, n - 1, inner, progress)
            write_rows(out, perm, batch.start + first + n - 1, 1, last, progress)
            out.write(event_tail(batch))
        out.write(b"\n]}}\n")
    return out.entry
