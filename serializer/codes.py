"""What one batch prints around each serial: the DL URI, element string and HRI pieces.

Everything but the serial is the same for every unit of a batch (GTIN, lot, expiry, stem),
so each form is split once into the text before and after the serial — by asking the GS1
core (``ext.build``) to write it with a placeholder serial — and the writers only have to
put serials between the pieces. The serial goes last in the element string (AI 21 after
the fixed-length AIs and the lot: one FNC1, before 21) and in the DL URI path after the lot
(``/01/…/10/…/21/…?17=…``), as GS1's generator orders them.

>>> from datetime import date
>>> from serializer.codes import CodeShape
>>> shape = CodeShape("09506000134352", "LOT/12", date(2027, 12, 31))
>>> shape.dl_uri("7Y4KQ2M9XW3R")
'https://id.gs1.org/01/09506000134352/10/LOT%2F12/21/7Y4KQ2M9XW3R?17=271231'
>>> shape.element_string("7Y4KQ2M9XW3R")
'^01095060001343521727123110LOT/12^217Y4KQ2M9XW3R'
>>> shape.hri("7Y4KQ2M9XW3R")
'(01) 09506000134352 (17) 271231 (10) LOT/12 (21) 7Y4KQ2M9XW3R'
>>> shape.epc("A/B")
'https://id.gs1.org/01/09506000134352/21/A%2FB'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property

from ext import CANONICAL_STEM, build, element_string, escape, hri

# Stands for the serial while the GS1 core writes a form; it needs no escaping anywhere
_SLOT = "QQSERIALSLOTQQ"
#: How the CSV and JSON files write FNC1 in element strings: the GS1 syntax engine's '^'
FNC1_TOKEN = "^"


def check_stem(stem: str, field: str = "stem") -> str:
    """A stem for minted codes (see ``settings.stem_problem``), without a trailing slash."""
    from serializer.errors import MintError
    from settings import stem_problem

    problem = stem_problem(stem)
    if problem is not None:
        raise MintError(field, problem)
    return stem.rstrip("/")


def ai17(expiry: date) -> str:
    """AI (17) YYMMDD."""
    return expiry.strftime("%y%m%d")


@dataclass(frozen=True, slots=True)
class Split:
    """A text with one serial in it: ``before + serial + after``."""

    before: str
    after: str

    def join(self, serial: str) -> str:
        return self.before + serial + self.after


def _split(text: str, slot: str = _SLOT) -> Split:
    if text.count(slot) != 1:
        raise AssertionError(f"the serial placeholder appears {text.count(slot)} times in {text!r}")
    before, after = text.split(slot)
    return Split(before, after)


@dataclass(frozen=True)
class CodeShape:
    """The fixed part of a batch's codes: GTIN (14 digits), optional lot and expiry, stem."""

    gtin: str
    lot: str | None = None
    expiry: date | None = None
    stem: str = CANONICAL_STEM

    @cached_property
    def element_pairs(self) -> tuple[tuple[str, str], ...]:
        """(AI, value) in label order with the serial placeholder: 01, 17, 10, 21."""
        pairs = [("01", self.gtin)]
        if self.expiry is not None:
            pairs.append(("17", ai17(self.expiry)))
        if self.lot is not None:
            pairs.append(("10", self.lot))
        pairs.append(("21", _SLOT))
        return tuple(pairs)

    @cached_property
    def uri_split(self) -> Split:
        return _split(build(self.element_pairs).uri(self.stem))

    @cached_property
    def epc_split(self) -> Split:
        """EPCIS 2.0 instance identifier: the canonical SGTIN DL URI, no lot, no query."""
        return _split(build((("01", self.gtin), ("21", _SLOT))).uri(CANONICAL_STEM))

    @cached_property
    def element_split(self) -> Split:
        return _split(element_string(self.element_pairs, False, FNC1_TOKEN))

    @cached_property
    def hri_split(self) -> Split:
        return _split(" ".join(hri(self.element_pairs)))

    @cached_property
    def hri_lines(self) -> tuple[str, ...]:
        return hri(self.element_pairs)

    def dl_uri(self, serial: str) -> str:
        return self.uri_split.join(escape(serial))

    def epc(self, serial: str) -> str:
        return self.epc_split.join(escape(serial))

    def element_string(self, serial: str) -> str:
        return self.element_split.join(serial)

    def hri(self, serial: str) -> str:
        return self.hri_split.join(serial)

    def reference_uri(self, serial: str) -> str:
        """The same URI built by the GS1 core from scratch (what the templates must match)."""
        pairs = [(ai, serial if value == _SLOT else value) for ai, value in self.element_pairs]
        return build(pairs).uri(self.stem)

    def reference_element_string(self, serial: str) -> str:
        pairs = [(ai, serial if value == _SLOT else value) for ai, value in self.element_pairs]
        return element_string(pairs, False, FNC1_TOKEN)
