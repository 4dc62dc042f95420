"""Row templates for the writers, and the escaping each place a serial lands in needs.

A row is literal text with the serial in some slots; each slot escapes the serial for where
it lands: percent-encoding in a DL URI (exactly as ``ext.escape``), ``"`` doubled inside a
quoted CSV field, JSON string escapes, the ZPL escape character doubled in DataMatrix data.
A template is checked against a row built the slow, obvious way before it writes anything
(:func:`check_template`): a writer that disagrees with the GS1 core or the csv/json modules
fails loudly on its first row instead of printing millions of wrong labels.

>>> from serializer.rows import RowBuilder, render_one, uri_table
>>> b = RowBuilder()
>>> b.text("https://id.gs1.org/01/09506000134352/21/"); b.serial(uri_table()); b.text("\\n")
>>> template = b.build()
>>> render_one(template, "A/B")
'https://id.gs1.org/01/09506000134352/21/A%2FB\\n'
"""

from __future__ import annotations

from ext import escape
from ext.labels import RowTemplate, escape_table
from serializer.profiles import CSET82


def uri_table() -> bytes:
    """Percent-encoding of a DL URI path segment, as the GS1 core does it."""
    return escape_table({ord(c): escape(c).encode() for c in CSET82 if escape(c) != c})


def csv_quoted_table() -> bytes:
    """Inside a quoted CSV field: ``"`` is written twice (RFC 4180)."""
    return escape_table({ord('"'): b'""'})


def json_table() -> bytes:
    """Inside a JSON string: ``"`` and ``\\`` escaped (CSET 82 has no control characters)."""
    return escape_table({ord('"'): b'\\"', ord("\\"): b"\\\\"})


def zpl_escape_table(escape_char: str) -> bytes:
    """In ZPL field data with an escape (``^FH``/``^BX`` g) character: that character doubled."""
    return escape_table({ord(escape_char): (escape_char * 2).encode()})


def csv_needs_quotes(text: str) -> bool:
    return any(c in text for c in ',"\r\n')


class RowBuilder:
    """Collects literal text and serial slots, then builds a :class:`RowTemplate`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = [b""]
        self._tables: list[bytes | None] = []

    def text(self, text: str) -> None:
        self._parts[-1] += text.encode("utf-8")

    def serial(self, table: bytes | None = None) -> None:
        self._tables.append(table)
        self._parts.append(b"")

    def build(self) -> RowTemplate:
        return RowTemplate(self._parts, self._tables)


def render_one(template: RowTemplate, serial: str) -> str:
    raw = serial.encode("ascii")
    out = bytearray(template.max_row_bytes(len(raw)))
    n = template.render(raw, 1, len(raw), out)
    return out[:n].decode("utf-8")


def check_template(template: RowTemplate, serials: list[str], expected) -> None:
    """Refuse a template whose rows differ from ``expected(serial)`` for sample serials."""
    for serial in serials:
        got, want = render_one(template, serial), expected(serial)
        if got != want:
            raise AssertionError(f"row template disagrees with the reference for serial "
                                 f"{serial!r}:\n  template:  {got!r}\n  reference: {want!r}")
