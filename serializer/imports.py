"""Importing externally issued codes (a national issuer's list) into a batch.

The list file has one code per line: ``GTIN,serial`` / ``GTIN<TAB>serial``, an element string
``(01)…(21)…`` or ``^01…21…``, or a DL URI. Every line is validated (GTIN check digit, the
batch's GTIN, CSET 82 serial, no repeats) and a bad line is refused by number before anything
is stored; serials that a profile bound to the GTIN could mint are refused too (see
serializer.keys). The batch then lives in the store like a minted one — same states, void and
decommission — and the verifier finds its serials through ``store.find_imported``.

>>> from serializer.imports import parse_line
>>> parse_line("09506000134352,ABC123", 1), parse_line("(01)09506000134352(21)X/1", 2)
(('09506000134352', 'ABC123'), ('09506000134352', 'X/1'))
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable

from ext import GS1Error, parse, parse_element_string
from serializer.errors import MintConflict, MintError, MintTooLarge, SourceConflict
from serializer.keys import KeyStore
from serializer.minting import normalise_gtin, parse_expiry
from twin.errors import DuplicateSerial, IdempotencyConflict, InvalidInput
from twin.events import Actor
from twin.identity import check_serial

#: The profile name imported batches are filed under (their own counter space).
IMPORT_PROFILE = "imported"
MAX_IMPORT = 1_000_000


def parse_line(line: str, number: int) -> tuple[str, str]:
    text = line.strip()
    field = f"line {number}"
    try:
        if text.startswith(("http://", "https://", "HTTP://", "HTTPS://")):
            dl = parse(text)
            gtin, serial = dl.gtin, dl.serial
        elif text.startswith(("(", "^", "]")):
            elements = dict(parse_element_string(text).elements)
            gtin, serial = elements.get("01"), elements.get("21")
        else:
            sep = "\t" if "\t" in text else ","
            gtin, _, serial = text.partition(sep)
            gtin, serial = gtin.strip(), serial.strip()
    except GS1Error as exc:
        raise MintError(field, f"not a GS1 code: {exc}") from None
    if not gtin or not serial:
        raise MintError(field, "expected a GTIN and a serial")
    gtin = normalise_gtin(gtin, field)
    try:
        check_serial(serial, field)
    except InvalidInput as exc:
        raise MintError(field, exc.problem) from None
    return gtin, serial


def read_codes(lines: Iterable[str], gtin: str) -> list[str]:
    serials: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        code_gtin, serial = parse_line(line, number)
        if code_gtin != gtin:
            raise MintError(f"line {number}", f"GTIN {code_gtin} is not the batch's GTIN {gtin}")
        if serial in seen:
            raise MintError(f"line {number}", f"serial {serial!r} is listed twice")
        seen.add(serial)
        serials.append(serial)
        if len(serials) > MAX_IMPORT:
            raise MintTooLarge("file", f"more than {MAX_IMPORT:,} codes: split the list")
    if not serials:
        raise MintError("file", "the list holds no codes")
    return serials


async def import_codes(store, keys: KeyStore, gtin: str, lines: Iterable[str], request_id: str, actor: Actor, *,
                       lot: str | None = None, expiry=None, site: str | None = None, line: str | None = None):
    """Validate the list, bind its shapes to the GTIN, record the imported batch."""
    gtin = normalise_gtin(gtin)
    serials = read_codes(lines, gtin)
    expiry = parse_expiry(expiry)
    digest = hashlib.sha256("\n".join([gtin, lot or "", str(expiry or ""), site or "", line or "", *serials])
                            .encode()).hexdigest()[:32]
    try:
        await asyncio.to_thread(keys.bind_imports, gtin, serials)
    except SourceConflict as exc:
        raise MintConflict(exc.field, exc.reason) from None
    try:
        return await store.import_serials(gtin, IMPORT_PROFILE, serials, request_id, digest, actor=actor,
                                          lot=lot, expiry=expiry, line=line, site=site)
    except IdempotencyConflict:
        raise MintConflict("request_id", f"{request_id!r} was used for another import") from None
    except DuplicateSerial as exc:
        raise MintConflict(exc.field, exc.problem) from None
    except InvalidInput as exc:
        raise MintError(exc.field, exc.problem) from None


