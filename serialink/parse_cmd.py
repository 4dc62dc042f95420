"""`serialink parse`: validate DL URIs from arguments or a stream, one result per input line.

The JSON form is a contract other tools build on:
``{"input", "valid": true, "elements", "element_string", "canonical"}`` or
``{"input", "valid": false, "error"}``, one object per line, in input order.
Stdin is read in blocks and answered in blocks, so memory stays flat.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator

import orjson

from ext.dl import parse
from ext.errors import GS1Error

BLOCK = 1 << 20


def read_lines(stream) -> Iterator[list[str]]:
    """Blocks of decoded lines from a binary stream (without their line endings)."""
    rest = b""
    while True:
        chunk = stream.read(BLOCK)
        if not chunk:
            break
        chunk = rest + chunk
        lines = chunk.split(b"\n")
        rest = lines.pop()
        yield [line.rstrip(b"\r").decode("utf-8", "replace") for line in lines]
    if rest:
        yield [rest.rstrip(b"\r").decode("utf-8", "replace")]


def json_lines(lines: Iterable[str], lenient: bool, stem: str | None) -> tuple[bytes, int]:
    """The JSON answer for a block of inputs, and how many were invalid.

    Each object is appended to one buffer as soon as it is made, so a block costs
    its output size, not one allocation per line kept alive until the end.
    """
    out = bytearray()
    invalid = 0
    dumps = orjson.dumps
    for line in lines:
        try:
            dl = parse(line, lenient=lenient)
        except GS1Error as exc:
            invalid += 1
            out += dumps({"input": line, "valid": False, "error": str(exc)})
        else:
            out += dumps({
                "input": line,
                "valid": True,
                "elements": dl.elements,
                "element_string": dl.element_string(),
                "canonical": dl.uri(stem),
            })
        out += b"\n"
    return bytes(out), invalid


def text_lines(lines: Iterable[str], lenient: bool, stem: str | None) -> tuple[bytes, int]:
    out = []
    invalid = 0
    for line in lines:
        try:
            dl = parse(line, lenient=lenient)
        except GS1Error as exc:
            invalid += 1
            out.append(f"invalid  {line}\n         {exc}")
            continue
        out.append(f"valid    {dl.uri(stem)}\n         {dl.element_string()}")
    out.append("")
    return "\n".join(out).encode("utf-8"), invalid


def run(args: argparse.Namespace) -> int:
    render = json_lines if args.json else text_lines
    write = sys.stdout.buffer.write
    invalid = 0
    for item in args.uris:
        blocks = read_lines(sys.stdin.buffer) if item == "-" else [[item]]
        for block in blocks:
            data, bad = render(block, args.lenient, args.stem)
            invalid += bad
            write(data)
    sys.stdout.buffer.flush()
    return 1 if invalid else 0
