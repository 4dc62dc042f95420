"""Read the GS1 Barcode Syntax Dictionary into typed entries.

The dictionary is the single source of truth for every AI rule Serialink
enforces: formats, character sets, linters, FNC1, DL data-attribute flags,
``req=``/``ex=`` associations and ``dlpkey`` qualifier sequences.  This module
is plain Python so that ``setup.py`` can run it before anything is compiled:
it turns the vendored text into ``ext/ai_table.py`` (see :func:`main`), which
the Cython core loads into C arrays at import.

>>> entries = parse_dictionary('01 *? N14,csum,gcppos2 ex=255,37 dlpkey=22,10,21|235 # GTIN')
>>> e = entries[0]
>>> e.ai, e.predefined, e.dl_attr, e.components[0]
('01', True, True, Component(cset='N', min_len=14, max_len=14, optional=False, linters=('csum', 'gcppos2')))
>>> e.excludes, e.dlpkey
(('255', '37'), (('22', '10', '21'), ('235',)))
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import NamedTuple

__all__ = ["Component", "Entry", "parse_dictionary", "release_of", "main"]


class Component(NamedTuple):
    cset: str  # N digits, X CSET 82, Y CSET 39, Z CSET 64
    min_len: int
    max_len: int
    optional: bool
    linters: tuple[str, ...]


class Entry(NamedTuple):
    ai: str
    predefined: bool  # '*': predefined length, no FNC1 separator after it
    dl_attr: bool  # '?': permitted as a DL URI data attribute
    components: tuple[Component, ...]
    requires: tuple[tuple[tuple[str, ...], ...], ...]  # each req= rule: groups of patterns
    excludes: tuple[str, ...]  # ex= patterns
    dlpkey: tuple[tuple[str, ...], ...] | None  # None: not a primary key
    title: str


_COMPONENT = re.compile(r"^([NXYZ])(\d+)?(?:\.\.(\d+))?((?:,[a-z0-9]+)*)$")
_FLAGS = re.compile(r"^[*!?\"$%&'()+,\-./:;<=>@\[\\\]^_`{|}~]+$")


def _component(token: str, line_no: int) -> Component:
    # optional components are bracketed: "[X..17]" or "[N3],iso3166"
    optional = token.startswith("[")
    m = _COMPONENT.match(token.replace("[", "").replace("]", ""))
    if not m or optional != ("]" in token):
        raise ValueError(f"line {line_no}: bad component {token!r}")
    cset, fixed, upto, linters = m.groups()
    if upto is not None:  # "X..20" (fixed is None) or the older "X1..20"
        min_len, max_len = int(fixed or 1), int(upto)
    else:
        min_len = max_len = int(fixed)
    names = tuple(x for x in (linters or "").split(",") if x)
    return Component(cset, min_len, max_len, optional, names)


def _expand(ai_spec: str) -> list[str]:
    if "-" not in ai_spec:
        return [ai_spec]
    lo, hi = ai_spec.split("-")
    width = len(lo)
    return [str(n).zfill(width) for n in range(int(lo), int(hi) + 1)]


def parse_dictionary(text: str) -> tuple[Entry, ...]:
    """Parse dictionary text into one :class:`Entry` per AI (ranges expanded)."""
    out: list[Entry] = []
    for line_no, raw in enumerate(text.splitlines(), 1):
        body, _, title = raw.partition("#")
        tokens = body.split()
        if not tokens:
            continue
        ais = _expand(tokens[0])
        rest = tokens[1:]
        flags = ""
        if rest and _FLAGS.match(rest[0]):
            flags, rest = rest[0], rest[1:]
        components: list[Component] = []
        requires: list[tuple[tuple[str, ...], ...]] = []
        excludes: list[str] = []
        dlpkey: tuple[tuple[str, ...], ...] | None = None
        for tok in rest:
            if tok.startswith("req="):
                requires.append(tuple(tuple(g.split("+")) for g in tok[4:].split(",")))
            elif tok.startswith("ex="):
                excludes.extend(tok[3:].split(","))
            elif tok == "dlpkey":
                dlpkey = ((),)
            elif tok.startswith("dlpkey="):
                dlpkey = tuple(tuple(alt.split(",")) for alt in tok[7:].split("|"))
            elif "=" in tok:
                raise ValueError(f"line {line_no}: unknown attribute {tok!r}")
            else:
                components.append(_component(tok, line_no))
        if not components:
            raise ValueError(f"line {line_no}: AI {tokens[0]} has no format components")
        for ai in ais:
            out.append(
                Entry(ai, "*" in flags, "?" in flags, tuple(components), tuple(requires),
                      tuple(excludes), dlpkey, title.strip())
            )
    return tuple(out)


def release_of(text: str) -> str:
    m = re.search(r"^#\s*Release:\s*(\S+)", text, re.M)
    return m.group(1) if m else "unknown"


def main(argv: list[str] | None = None) -> int:
    """``python ext/syntax_dictionary.py DICT OUT`` — write the generated AI table module."""
    args = sys.argv[1:] if argv is None else argv
    src, dst = Path(args[0]), Path(args[1])
    text = src.read_text(encoding="utf-8")
    entries = parse_dictionary(text)
    lines = [
        "# Generated at build time from config/gs1/gs1-syntax-dictionary.txt by",
        "# ext/syntax_dictionary.py. Do not edit: edit the dictionary and rebuild.",
        "# GS1 Barcode Syntax Dictionary: Apache-2.0, (c) BWIPP, Zint, GS1 AISBL.",
        "from ext.syntax_dictionary import Component as C, Entry as E",
        "",
        f"RELEASE = {release_of(text)!r}",
        "ENTRIES = (",
    ]
    lines += [f"    {e!r}," for e in entries]
    lines.append(")")
    body = "\n".join(lines).replace("Component(", "C(").replace("Entry(", "E(") + "\n"
    if not dst.exists() or dst.read_text(encoding="utf-8") != body:
        dst.write_text(body, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
