"""ZPL II for Zebra printers: one label per unit from a template (``config/zpl/label.zpl``).

The template is plain ZPL with placeholders: ``{{dl_uri}}`` (for a ``^BQ`` QR Code, after the
``MA,`` switches), ``{{datamatrix}}`` (GS1 DataMatrix data for ``^BX``: FNC1 first and before
AI 21, written with the escape character the template's ``^BX`` declares, which is doubled
where it occurs in data), ``{{gtin}}``, ``{{serial}}``, ``{{lot}}``, ``{{expiry}}`` (YYMMDD),
``{{expiry_iso}}``, ``{{hri}}``, ``{{element_string}}``; ``{{#lot}}…{{/lot}}`` and
``{{#expiry}}…{{/expiry}}`` keep their text only when the batch has a lot / an expiry. A
``^BX`` without an explicit escape character is refused: its default differs by firmware.

>>> from datetime import date
>>> from serializer.codes import CodeShape
>>> from serializer.zpl import LabelTemplate
>>> t = LabelTemplate.parse("^XA^BXN,6,200,,,,_^FD{{datamatrix}}^FS^FDMA,{{dl_uri}}^FS^XZ\\n")
>>> from serializer.rows import render_one
>>> print(render_one(t.row(CodeShape("09506000134352", "L_1", date(2027, 12, 31))), "AB_1"))
^XA^BXN,6,200,,,,_^FD_101095060001343521727123110L__1_121AB__1^FS^FDMA,https://id.gs1.org/01/09506000134352/10/L_1/21/AB_1?17=271231^FS^XZ
<BLANKLINE>
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ext import element_string
from serializer.codes import _SLOT, CodeShape, ai17
from serializer.errors import TemplateError
from serializer.output import AtomicFile, FileEntry, Progress, write_rows
from serializer.rows import RowBuilder, check_template, uri_table, zpl_escape_table

FILE_NAME = "labels.zpl"
PLACEHOLDERS = ("dl_uri", "datamatrix", "gtin", "serial", "lot", "expiry", "expiry_iso", "hri", "element_string")
_TOKEN = re.compile(r"\{\{\s*([#/]?)([a-z_]+)\s*\}\}")
_BX = re.compile(r"\^BX([^\^~]*)")
_FX = re.compile(r"\^FX[^\^~]*")  # comments


def default_template_path() -> Path:
    from settings import default_config_dir

    return default_config_dir() / "zpl" / "label.zpl"  # the checkout's config/ or the wheel's copy


def read_template(path: Path) -> str:
    """A ZPL template file's text; a file that cannot be read is a TemplateError at line 1."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(str(path), 1, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise TemplateError(str(path), 1, f"not UTF-8 text (byte {exc.start}): a ZPL template is text") from None


@dataclass(frozen=True)
class LabelTemplate:
    text: str
    path: str = "<template>"
    escape_char: str | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> LabelTemplate:
        path = Path(path) if path is not None else default_template_path()
        return cls.parse(read_template(path), str(path))

    @classmethod
    def parse(cls, text: str, path: str = "<template>") -> LabelTemplate:
        def line_of(pos: int) -> int:
            return text.count("\n", 0, pos) + 1

        if "^XA" not in text or "^XZ" not in text:
            raise TemplateError(path, 1, "a label format starts with ^XA and ends with ^XZ")
        open_sections: list[tuple[str, int]] = []
        for m in _TOKEN.finditer(text):
            kind, name = m.groups()
            if kind and name not in ("lot", "expiry"):
                raise TemplateError(path, line_of(m.start()), f"sections exist only for lot and expiry, not {name!r}")
            if not kind and name not in PLACEHOLDERS:
                raise TemplateError(path, line_of(m.start()), f"unknown placeholder {{{{{name}}}}}; known: {', '.join(PLACEHOLDERS)}")
            if kind == "#":
                open_sections.append((name, m.start()))
            elif kind == "/":
                if not open_sections or open_sections[-1][0] != name:
                    raise TemplateError(path, line_of(m.start()), f"{{{{/{name}}}}} closes no open section")
                open_sections.pop()
        if open_sections:
            raise TemplateError(path, line_of(open_sections[-1][1]), f"section {open_sections[-1][0]!r} is never closed")
        escape_char = None
        for m in _BX.finditer(_FX.sub(lambda c: " " * len(c.group(0)), text)):
            params = m.group(1).split(",")
            g = params[6].strip() if len(params) > 6 else ""
            if len(g) != 1:
                raise TemplateError(path, line_of(m.start()), "^BX must name its escape character (7th "
                                    "parameter, e.g. ^BXN,6,200,,,,_): the default differs by firmware")
            if escape_char not in (None, g):
                raise TemplateError(path, line_of(m.start()), "all ^BX fields must use the same escape character")
            escape_char = g
        if "{{datamatrix}}" in text.replace(" ", "") and escape_char is None:
            raise TemplateError(path, 1, "{{datamatrix}} needs a ^BX field with an escape character")
        return cls(text, path, escape_char)

    def row(self, shape: CodeShape):
        """The RowTemplate of one label for this batch."""
        text = self.text
        for name, present in (("lot", shape.lot is not None), ("expiry", shape.expiry is not None)):
            pattern = re.compile(r"\{\{\s*#" + name + r"\s*\}\}(.*?)\{\{\s*/" + name + r"\s*\}\}", re.S)
            text = pattern.sub(r"\1" if present else "", text)
        b = RowBuilder()
        pos = 0
        for m in _TOKEN.finditer(text):
            b.text(text[pos:m.start()])
            pos = m.end()
            self._placeholder(b, m.group(2), shape)
        b.text(text[pos:])
        if not text.endswith("\n"):
            b.text("\n")
        return b.build()

    def _placeholder(self, b: RowBuilder, name: str, shape: CodeShape) -> None:
        if name == "dl_uri":
            b.text(shape.uri_split.before)
            b.serial(uri_table())
            b.text(shape.uri_split.after)
        elif name == "datamatrix":
            before, after = self.datamatrix(shape, _SLOT).split(_SLOT)
            b.text(before)
            b.serial(zpl_escape_table(self.escape_char))
            b.text(after)
        elif name in ("serial",):
            b.serial(None)
        elif name == "hri":
            b.text(shape.hri_split.before)
            b.serial(None)
            b.text(shape.hri_split.after)
        elif name == "element_string":
            b.text(shape.element_split.before)
            b.serial(None)
            b.text(shape.element_split.after)
        else:
            b.text(self.constant(name, shape))

    @staticmethod
    def constant(name: str, shape: CodeShape) -> str:
        if name == "gtin":
            return shape.gtin
        if name == "lot":
            return shape.lot or ""
        if name == "expiry":
            return ai17(shape.expiry) if shape.expiry else ""
        if name == "expiry_iso":
            return shape.expiry.isoformat() if shape.expiry else ""
        raise KeyError(name)

    def datamatrix(self, shape: CodeShape, serial: str) -> str:
        """The ^BX field data: FNC1 as <escape>1, the escape character doubled in data."""
        g = self.escape_char or "_"
        pairs = [(ai, serial if value == _SLOT else value) for ai, value in shape.element_pairs]
        doubled = [(ai, value if value == _SLOT else value.replace(g, g + g)) for ai, value in pairs]
        return element_string(doubled, False, g + "1")

    def reference(self, shape: CodeShape, serial: str) -> str:
        """The label built by plain string substitution (what the row template must equal)."""
        text = self.text
        for name, present in (("lot", shape.lot is not None), ("expiry", shape.expiry is not None)):
            pattern = re.compile(r"\{\{\s*#" + name + r"\s*\}\}(.*?)\{\{\s*/" + name + r"\s*\}\}", re.S)
            text = pattern.sub(r"\1" if present else "", text)
        values = {"dl_uri": shape.reference_uri(serial),
                  "datamatrix": self.datamatrix(shape, serial),
                  "serial": serial, "hri": shape.hri(serial),
                  "element_string": shape.reference_element_string(serial)}
        out = _TOKEN.sub(lambda m: values[m.group(2)] if m.group(2) in values
                         else self.constant(m.group(2), shape), text)
        return out if out.endswith("\n") else out + "\n"


def write(minted, shape: CodeShape, directory: Path, progress: Progress | None = None, *,
          template_path: Path | None = None) -> FileEntry:
    template = LabelTemplate.load(template_path)
    batch = minted.batch
    row = template.row(shape)
    check_template(row, [minted.serial(0), minted.serial(batch.count - 1)],
                   lambda s: template.reference(shape, s))
    with AtomicFile(directory / FILE_NAME, "zpl", batch.count) as out:
        write_rows(out, minted.permutation, batch.start, batch.count, row, progress)
    return out.entry
