"""`serialink convert`: element strings, scan data and Digital Link URIs into one another.

Targets: ``dl`` (canonical DL URI), ``brackets`` (``(01)…``), ``unbracketed``
(``^01…`` with ``^`` for FNC1), ``scan`` (GS1 DataMatrix scan data ``]d2…`` with GS
separators, escaped as ``\\x1d`` in text output) and ``hri`` (human-readable lines).
"""

from __future__ import annotations

import argparse
import sys

import orjson

from ext.dl import DigitalLink, parse
from ext.elements import parse_element_string
from ext.errors import GS1Error
from serialink.parse_cmd import read_lines

TARGETS = ("dl", "brackets", "unbracketed", "scan", "hri")


def convert(data: str, to: str | None, stem: str | None, lenient: bool) -> str:
    """One conversion; raises GS1Error on invalid input."""
    is_uri = data[:8].lower().startswith(("http://", "https://"))
    if is_uri:
        dl = parse(data, lenient=lenient)
        to = to or "brackets"
    else:
        es = parse_element_string(data)
        to = to or "dl"
        dl = None
    if to == "dl":
        return (dl if dl is not None else es.to_digital_link()).uri(stem)
    if to == "brackets":
        return (dl or es).element_string()
    if to == "unbracketed":
        return (dl or es).element_string(brackets=False)
    if to == "scan":
        target = es if not is_uri else parse_element_string((dl).element_string())
        return target.scan_data()
    return "\n".join((dl or es).hri(titles=True))


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    invalid = 0
    for item in args.inputs:
        blocks = read_lines(sys.stdin.buffer) if item == "-" else [[item]]
        for block in blocks:
            for data in block:
                try:
                    result = convert(data, args.to, args.stem, args.lenient)
                except GS1Error as exc:
                    invalid += 1
                    if args.json:
                        out.write(orjson.dumps({"input": data, "valid": False, "error": str(exc)}).decode() + "\n")
                    else:
                        out.write(f"invalid  {data}\n         {exc}\n")
                    continue
                if args.json:
                    out.write(orjson.dumps({"input": data, "valid": True, "output": result}).decode() + "\n")
                else:
                    out.write(result.replace("\x1d", "\\x1d") + "\n")
    out.flush()
    return 1 if invalid else 0


__all__ = ["convert", "run", "TARGETS", "DigitalLink"]
