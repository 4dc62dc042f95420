"""JSON Lines of the codes: one object per unit, the same fields as the CSV.

``{"gtin", "serial", "lot", "expiry", "dl_uri", "element_string", "hri"}`` — ``expiry`` as an
ISO date here (JSON readers want dates, not YYMMDD), ``lot``/``expiry`` null when absent.

>>> from datetime import date
>>> from serializer.codes import CodeShape
>>> from serializer.jsonl import jsonl_template
>>> from serializer.rows import render_one
>>> import json
>>> t = jsonl_template(CodeShape("09506000134352", "L1", date(2027, 12, 31)))
>>> json.loads(render_one(t, 'A"B'))["serial"]
'A"B'
"""

from __future__ import annotations

from pathlib import Path

import orjson

from serializer.codes import CodeShape
from serializer.output import AtomicFile, FileEntry, Progress, write_rows
from serializer.rows import RowBuilder, check_template, json_table, uri_table

FILE_NAME = "codes.jsonl"


def _js(value) -> str:
    return orjson.dumps(value).decode()


def _inner(value: str) -> str:
    """A string's JSON form without its quotes."""
    return _js(value)[1:-1]


def jsonl_template(shape: CodeShape):
    b = RowBuilder()
    b.text('{"gtin":' + _js(shape.gtin) + ',"serial":"')
    b.serial(json_table())
    b.text('","lot":' + _js(shape.lot) + ',"expiry":' + _js(shape.expiry.isoformat() if shape.expiry else None))
    b.text(',"dl_uri":"' + _inner(shape.uri_split.before))
    b.serial(uri_table())
    b.text(_inner(shape.uri_split.after) + '","element_string":"' + _inner(shape.element_split.before))
    b.serial(json_table())
    b.text(_inner(shape.element_split.after) + '","hri":"' + _inner(shape.hri_split.before))
    b.serial(json_table())
    b.text(_inner(shape.hri_split.after) + '"}\n')
    return b.build()


def reference_line(shape: CodeShape, serial: str) -> str:
    return _js({"gtin": shape.gtin, "serial": serial, "lot": shape.lot,
                "expiry": shape.expiry.isoformat() if shape.expiry else None,
                "dl_uri": shape.reference_uri(serial),
                "element_string": shape.reference_element_string(serial),
                "hri": shape.hri(serial)}) + "\n"


def write(minted, shape: CodeShape, directory: Path, progress: Progress | None = None) -> FileEntry:
    batch = minted.batch
    template = jsonl_template(shape)
    check_template(template, [minted.serial(0), minted.serial(batch.count - 1)],
                   lambda s: reference_line(shape, s))
    with AtomicFile(directory / FILE_NAME, "jsonl", batch.count) as out:
        write_rows(out, minted.permutation, batch.start, batch.count, template, progress)
    return out.entry
