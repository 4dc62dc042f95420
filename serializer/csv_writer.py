"""CSV for label software (BarTender, NiceLabel, Loftware): one row per unit.

Columns: ``gtin, serial, lot, expiry, dl_uri, element_string, hri`` with a header row, UTF-8,
CRLF line ends (RFC 4180), fields quoted only where a value could need it. ``expiry`` is the
AI (17) ``YYMMDD`` printed on the label; ``element_string`` is the unbracketed GS1 element
string with FNC1 written as ``^`` (a raw GS byte does not survive spreadsheets); ``hri`` is
the human-readable line ``(01) … (17) … (10) … (21) …``.

>>> from datetime import date
>>> from serializer.codes import CodeShape
>>> from serializer.csv_writer import csv_template
>>> from serializer.rows import render_one
>>> t = csv_template(CodeShape("09506000134352", "L1", date(2027, 12, 31)), "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
>>> print(render_one(t, "7Y4KQ2M9XW3R").rstrip("\\r\\n"))
09506000134352,7Y4KQ2M9XW3R,L1,271231,https://id.gs1.org/01/09506000134352/10/L1/21/7Y4KQ2M9XW3R?17=271231,^01095060001343521727123110L1^217Y4KQ2M9XW3R,(01) 09506000134352 (17) 271231 (10) L1 (21) 7Y4KQ2M9XW3R
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from serializer.codes import CodeShape, Split, ai17
from serializer.output import AtomicFile, FileEntry, Progress, write_rows
from serializer.rows import (
    RowBuilder,
    check_template,
    csv_needs_quotes,
    csv_quoted_table,
    uri_table,
)

COLUMNS = ("gtin", "serial", "lot", "expiry", "dl_uri", "element_string", "hri")
HEADER = ",".join(COLUMNS) + "\r\n"
FILE_NAME = "codes.csv"


def _constant(builder: RowBuilder, value: str) -> None:
    if csv_needs_quotes(value):
        builder.text('"' + value.replace('"', '""') + '"')
    else:
        builder.text(value)


def _with_serial(builder: RowBuilder, split: Split, serial_chars: str, table: bytes | None) -> None:
    """A field holding the serial: quoted when the serial's characters or the fixed text
    around it could need quotes (then every row is quoted alike)."""
    if csv_needs_quotes(split.before + split.after + serial_chars):
        builder.text('"' + split.before.replace('"', '""'))
        builder.serial(csv_quoted_table() if table is None else table)
        builder.text(split.after.replace('"', '""') + '"')
    else:
        builder.text(split.before)
        builder.serial(table)
        builder.text(split.after)


def csv_template(shape: CodeShape, serial_chars: str):
    b = RowBuilder()
    _constant(b, shape.gtin)
    b.text(",")
    _with_serial(b, Split("", ""), serial_chars, None)
    b.text(",")
    _constant(b, shape.lot or "")
    b.text(",")
    _constant(b, ai17(shape.expiry) if shape.expiry else "")
    b.text(",")
    # percent-encoding leaves no ',' or '"' in a URI
    b.text(shape.uri_split.before)
    b.serial(uri_table())
    b.text(shape.uri_split.after)
    b.text(",")
    _with_serial(b, shape.element_split, serial_chars, None)
    b.text(",")
    _with_serial(b, shape.hri_split, serial_chars, None)
    b.text("\r\n")
    return b.build()


def reference_row(shape: CodeShape, serial: str) -> str:
    """The same row through the csv module and the GS1 core: what the template must equal."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([
        shape.gtin, serial, shape.lot or "", ai17(shape.expiry) if shape.expiry else "",
        shape.reference_uri(serial), shape.reference_element_string(serial), shape.hri(serial)])
    return out.getvalue()


def write(minted, shape: CodeShape, directory: Path, progress: Progress | None = None) -> FileEntry:
    profile, batch = minted.profile, minted.batch
    chars = profile.alphabet + profile.prefix
    template = csv_template(shape, chars)
    samples = [minted.serial(0), minted.serial(batch.count - 1)]
    if csv_needs_quotes(chars):
        # quoted-always fields differ from csv.QUOTE_MINIMAL's bytes; compare parsed values
        check_template(template, samples, lambda s: _normalise(reference_row(shape, s)))
    else:
        check_template(template, samples, lambda s: reference_row(shape, s))
    with AtomicFile(directory / FILE_NAME, "csv", batch.count) as out:
        out.write(HEADER.encode())
        write_rows(out, minted.permutation, batch.start, batch.count, template, progress)
    return out.entry


def _normalise(row: str) -> str:
    values = next(csv.reader(io.StringIO(row)))
    return ",".join('"' + v.replace('"', '""') + '"' if csv_needs_quotes(v) or i in (1, 5, 6) else v
                    for i, v in enumerate(values)) + "\r\n"
