"""Legacy GS1 Digital Link compression (DL 1.1.x): decompress and compress.

A compressed DL URI carries all of its AI data as one base64url path segment of
bit-packed records.  Resolvers of the 1.0/1.1 generation had to decompress it,
so Serialink's resolver does; the serialiser may emit it.  Compressed scans are
rare, so this is plain Python and favours clarity over speed.

The worked example from the standards digest (optimisation code ``1F`` = 01+10+15,
then AI (21)):

>>> d = decompress("https://dlnkd.tn.gg/HxHKVAdpQgZzjr-hCDKigI")
>>> d.elements
(('01', '09780345418913'), ('10', '231'), ('15', '120820'), ('21', '345345'))
>>> d.uri()
'https://dlnkd.tn.gg/01/09780345418913/10/231/21/345345?15=120820'
>>> compress(d.stem, d.elements)
'https://dlnkd.tn.gg/HxHKVAdpQgZzjr-hCDKigI'

Malformed input only ever raises :class:`CompressionError`, naming the bit:

>>> try:
...     decompress("https://dlnkd.tn.gg/HxHKVAdpQgZz")
... except CompressionError as e:
...     print(e.reason, "/", e.bit)
truncated value of AI (10) / 63

Wire format (verified against GS1's prototype and the digital-link.js vectors):
records follow each other until fewer than 9 bits remain; the rest is zero
padding to a multiple of 6 bits.  A record starts with 8 bits read as two hex
digits.  Two decimal digits are the start of an AI key (one 4-bit digit per AI
digit; the AI length comes from its first two digits); a pair with a hex letter is
an optimisation code standing for a fixed AI sequence; ``F`` + 7 bits is a non-GS1
key/value pair.  AI values are packed per *field* (see :func:`_fields`).

Deliberate differences from the prototype (GS1DigitalLinkCompressionPrototype):
leading zeros survive (numbers are zero-padded to their encoded length); no
``undefined`` text for singleton/empty query members; no key is silently
dropped when several primary keys are present; AI formats come from the Syntax
Dictionary, which changes the bits of AIs whose prototype table is out of date
(e.g. 8007 IBAN is X..34, not X..24).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from itertools import groupby, takewhile
from typing import NamedTuple
from urllib.parse import quote, quote_plus, unquote_to_bytes

from ext.ai_table import ENTRIES
from ext.syntax_dictionary import Component, Entry

__all__ = ["CompressionError", "Decompressed", "compress", "decompress", "is_compressed"]


class CompressionError(ValueError):
    """Malformed compressed URI, or data that cannot be compressed.

    ``reason`` is the plain-words cause; ``bit`` is the offset into the decoded
    bit string when the fault is inside the compressed segment (else ``None``).
    """

    def __init__(self, reason: str, bit: int | None = None) -> None:
        self.reason = reason
        self.bit = bit
        super().__init__(reason if bit is None else f"{reason} (at bit {bit})")


# --------------------------------------------------------------------------- tables

class Field(NamedTuple):
    """One packed unit of an AI value: numeric or alphanumeric, fixed or variable."""

    numeric: bool
    fixed: bool
    length: int  # exact length when fixed, else the maximum


def _fields(components: Sequence[Component]) -> tuple[Field, ...]:
    """Map dictionary components onto the compression fields of DL 1.1.

    The compression table was written from the GenSpecs formats, which the
    dictionary has since split into finer components.  Re-joining them gives the
    same fields as GS1's table for every AI the two share: a run of mandatory
    fixed-length numeric components is one fixed numeric field (8006 N14 N4 ->
    N18, 8003 N1 N13 -> N14); the optional/variable numeric components after it
    are one variable field (8008 N6 N2 [N2] [N2] -> N8 + N..4); a run of
    alphanumeric components (X, Y, Z) is one field, fixed only if every part is
    mandatory and fixed (7230 X2 X..28 -> X..30).
    """
    out: list[Field] = []
    for numeric, run in groupby(components, key=lambda c: c.cset == "N"):
        parts = list(run)
        if numeric:
            head = list(takewhile(lambda c: not c.optional and c.min_len == c.max_len, parts))
            tail = parts[len(head):]
            if head:
                out.append(Field(True, True, sum(c.max_len for c in head)))
            if tail:
                out.append(Field(True, False, sum(c.max_len for c in tail)))
        else:
            fixed = all(not c.optional and c.min_len == c.max_len for c in parts)
            out.append(Field(False, fixed, sum(c.max_len for c in parts)))
    return tuple(out)


_ENTRY: dict[str, Entry] = {e.ai: e for e in ENTRIES}
_FIELDS: dict[str, tuple[Field, ...]] = {e.ai: _fields(e.components) for e in ENTRIES}


def _prefix_lengths(ais: Iterable[str]) -> dict[str, int]:
    """2-digit prefix -> AI length; the dictionary guarantees one length per prefix."""
    table: dict[str, int] = {}
    for ai in ais:
        if table.setdefault(ai[:2], len(ai)) != len(ai):
            raise RuntimeError(f"AI prefix {ai[:2]} has AIs of different lengths")
    return table


_AI_LENGTH = _prefix_lengths(_ENTRY)

# Optimisation codes (DL 1.1 compression table).  Values follow in the listed
# order; the encoder picks greedily the group whose AI keys are longest in
# total, the first listed winning a tie, exactly as GS1's reference encoder does.
_OPTIMISATIONS: dict[str, tuple[str, ...]] = {
    "0A": ("01", "22"), "0B": ("01", "10"), "0C": ("01", "21"), "0D": ("01", "17"),
    "0E": ("01", "7003"), "0F": ("01", "30"),
    "1A": ("01", "10", "21", "17"), "1B": ("01", "15"), "1C": ("01", "11"),
    "1D": ("01", "16"), "1E": ("01", "91"), "1F": ("01", "10", "15"),
    **{f"2{c}": ("01", f"310{i}") for i, c in enumerate("ABCDEF")},
    **{f"3{c}": ("01", f"320{i}") for i, c in enumerate("ABCDEF")},
    "9A": ("8010", "8011"), "9B": ("8017", "8019"), "9C": ("8018", "8019"),
    "9D": ("414", "254"),
    **{f"A{i}": ("01", f"392{i}") for i in range(10)},
    **{f"C{i}": ("255", f"390{i}") for i in range(10)},
    **{f"C{c}": ("255", f"394{i}") for i, c in enumerate("ABCD")},
}


def _check_tables() -> None:
    """Fail at import, not on a scan, if a dictionary update breaks an assumption."""
    for ai, fields in _FIELDS.items():
        if not all(f.fixed for f in fields[:-1]):
            raise RuntimeError(f"AI {ai}: a variable-length field is not last")
    for code, group in _OPTIMISATIONS.items():
        if not all(ai in _ENTRY for ai in group):
            raise RuntimeError(f"optimisation {code} names an AI missing from the dictionary")
        if sum(_ENTRY[ai].dlpkey is not None for ai in group) > 1:
            raise RuntimeError(f"optimisation {code} holds two primary keys")


_check_tables()

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_INDEX = {c: i for i, c in enumerate(_B64)}
_HEX = "0123456789abcdef"
# Character encodings of alphanumeric data: (bits per character, alphabet or None = ASCII)
_NUMERIC, _HEX_LOWER, _HEX_UPPER, _BASE64, _ASCII = range(5)
_CHAR_CODES: dict[int, tuple[int, str | None]] = {
    _HEX_LOWER: (4, _HEX), _HEX_UPPER: (4, _HEX.upper()), _BASE64: (6, _B64), _ASCII: (7, None),
}
_ENCODING_TESTS = (  # most compact first
    (_NUMERIC, re.compile(r"[0-9]+")), (_HEX_UPPER, re.compile(r"[0-9A-F]+")),
    (_HEX_LOWER, re.compile(r"[0-9a-f]+")), (_BASE64, re.compile(r"[0-9A-Za-z_-]+")),
)
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_DIGITS = re.compile(r"[0-9]*")
_SEGMENT = re.compile(r"[0-9A-Za-z_-]+")
_URI = re.compile(r"(?P<base>(?i:https?)://[^/?#]+)(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#.*)?",
                  re.S)
_LEGACY_ALPHAS = frozenset(  # removed "convenience alphas" (URI Syntax <= 1.2), legacy input only
    "gtin itip gmn cpid cpsn gln glnx party gsrnp gsrn srin gcn sscc gdti ginc gsin grai giai "
    "cpv lot ser refno payto".split())
_MAX_PAIR = 127  # 7-bit length fields of non-GS1 pairs


def _value_bits(digits: int) -> int:
    """Bits for a number of ``digits`` decimal digits (same float formula as GS1's code)."""
    return math.ceil(digits * math.log(10) / math.log(2) + 0.01)


def _length_bits(maximum: int) -> int:
    """Bits of the length field of a variable-length field of at most ``maximum``."""
    return math.ceil(math.log(maximum) / math.log(2) + 0.01)


# --------------------------------------------------------------------------- bits

class _Reader:
    """Cursor over the decoded bit string; every short read is a CompressionError."""

    def __init__(self, bits: str) -> None:
        self.bits = bits
        self.pos = 0

    def left(self) -> int:
        return len(self.bits) - self.pos

    def take(self, width: int, what: str) -> int:
        if width > self.left():
            raise CompressionError(f"truncated {what}", self.pos)
        chunk = self.bits[self.pos:self.pos + width]
        self.pos += width
        return int(chunk, 2) if chunk else 0

    def digits(self, count: int, what: str) -> str:
        start = self.pos
        number = self.take(_value_bits(count), what)
        if number >= 10 ** count:
            raise CompressionError(f"number too large for {count} digits in {what}", start)
        return str(number).zfill(count) if count else ""  # zero-pad: keep leading zeros

    def encoding(self, what: str) -> int:
        code = self.take(3, what)
        if code != _NUMERIC and code not in _CHAR_CODES:
            raise CompressionError(f"unknown character encoding {code} in {what}", self.pos - 3)
        return code

    def text(self, encoding: int, count: int, what: str) -> str:
        if encoding == _NUMERIC:
            return self.digits(count, what)
        width, alphabet = _CHAR_CODES[encoding]
        chars = []
        for _ in range(count):
            start = self.pos
            code = self.take(width, what)
            if alphabet is None and not 0x20 <= code <= 0x7E:
                raise CompressionError(f"control character {code:#04x} in {what}", start)
            chars.append(alphabet[code] if alphabet else chr(code))
        return "".join(chars)


class _Writer:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def put(self, number: int, width: int) -> None:
        self.parts.append(format(number, f"0{width}b") if width else "")

    def digits(self, text: str) -> None:
        self.put(int(text or "0"), _value_bits(len(text)))

    def text(self, text: str, length_width: int | None) -> None:
        """Encoding bits, then the length (variable fields only), then the characters."""
        encoding = next((enc for enc, rx in _ENCODING_TESTS if rx.fullmatch(text)), _ASCII)
        self.put(encoding, 3)
        if length_width is not None:
            self.put(len(text), length_width)
        if encoding == _NUMERIC:
            self.digits(text)
            return
        width, alphabet = _CHAR_CODES[encoding]
        for ch in text:
            self.put(alphabet.index(ch) if alphabet else ord(ch), width)

    def base64(self) -> str:
        bits = "".join(self.parts)
        bits += "0" * (-len(bits) % 6)
        return "".join(_B64[int(bits[i:i + 6], 2)] for i in range(0, len(bits), 6))


# --------------------------------------------------------------------------- values

def _split(ai: str, value: str) -> list[str]:
    """Cut a value into its fields, checking lengths and characters."""
    parts: list[str] = []
    pos = 0
    for f in _FIELDS[ai]:
        part = value[pos:pos + f.length] if f.fixed else value[pos:]
        if f.fixed and len(part) < f.length:
            raise CompressionError(f"value of AI ({ai}) is too short: {value!r}")
        if len(part) > f.length:
            raise CompressionError(f"value of AI ({ai}) is too long: {value!r}")
        if not (_DIGITS if f.numeric else _PRINTABLE).fullmatch(part):
            kind = "digits" if f.numeric else "printable ASCII"
            raise CompressionError(f"value of AI ({ai}) must be {kind} here: {value!r}")
        parts.append(part)
        pos += len(part)
    if pos < len(value):
        raise CompressionError(f"value of AI ({ai}) is too long: {value!r}")
    return parts


def _write_value(w: _Writer, ai: str, value: str) -> None:
    for f, part in zip(_FIELDS[ai], _split(ai, value)):
        if f.numeric and f.fixed:
            w.digits(part)
        elif f.numeric:
            w.put(len(part), _length_bits(f.length))
            w.digits(part)
        else:
            w.text(part, None if f.fixed else _length_bits(f.length))


def _read_value(r: _Reader, ai: str) -> str:
    start = r.pos
    what = f"value of AI ({ai})"
    out = []
    for f in _FIELDS[ai]:
        if f.numeric and f.fixed:
            out.append(r.digits(f.length, what))
            continue
        encoding = _NUMERIC if f.numeric else r.encoding(what)
        count = f.length
        if not f.fixed:
            at = r.pos
            count = r.take(_length_bits(f.length), what)
            if count > f.length:
                raise CompressionError(
                    f"length {count} exceeds the maximum {f.length} of {what}", at)
        out.append(r.text(encoding, count, what))
    value = "".join(out)
    if not value:
        raise CompressionError(f"empty {what}", start)
    return value


# --------------------------------------------------------------------------- result

class Decompressed(NamedTuple):
    """Data carried by a compressed DL URI, ready to be written uncompressed."""

    stem: str  # scheme + host + any custom path before the GS1 part
    elements: tuple[tuple[str, str], ...]  # (AI, value), in encoded order
    extras: tuple[tuple[str, str], ...]  # non-GS1 (key, value) pairs, compressed ones first

    def uri(self) -> str:
        """The uncompressed DL URI: key and qualifiers in the path, the rest as query."""
        key = next((ai for ai, _ in self.elements if _ENTRY[ai].dlpkey is not None), None)
        if key is None:
            raise CompressionError("no primary key among the elements")
        values = dict(self.elements)
        qualifiers = _qualifiers(key, values)
        path = "".join(f"/{ai}/{quote(values[ai], safe='')}" for ai in (key, *qualifiers))
        query = [f"{ai}={quote_plus(v, safe='')}" for ai, v in self.elements
                 if ai != key and ai not in qualifiers]
        query += [quote_plus(k, safe="") + (f"={quote_plus(v, safe='')}" if v else "")
                  for k, v in self.extras]
        return self.stem + path + ("?" + "&".join(query) if query else "")


def _qualifiers(key: str, values: dict[str, str]) -> tuple[str, ...]:
    """Qualifiers for the path: the ``dlpkey`` alternative that keeps the URI valid
    (leftover qualifiers must be allowed as attributes) and uses most of the data."""
    alternatives = _ENTRY[key].dlpkey or ((),)
    every = {ai for alt in alternatives for ai in alt if ai in values}

    def score(alt: tuple[str, ...]) -> tuple[bool, int]:
        left = every.difference(alt)
        return all(_ENTRY[ai].dl_attr for ai in left), len(every.intersection(alt))

    best = max(alternatives, key=score)  # max() keeps the first of equals
    return tuple(ai for ai in best if ai in values)


# --------------------------------------------------------------------------- decompress

def is_compressed(uri: str) -> bool:
    """Cheap plausibility test (URI Syntax 1.2 RE3): the last path segment is 10+
    base64url characters and is not the value of a plain ``/AI/value`` pair.

    >>> is_compressed("https://id.gs1.org/01/09520123456788"), is_compressed("https://a/ARFRJydaKA")
    (False, True)
    """
    m = _URI.fullmatch(uri) if isinstance(uri, str) else None
    if not m:
        return False
    segments = _segments(m["path"])
    if not segments or len(segments[-1]) < 10 or not _SEGMENT.fullmatch(segments[-1]):
        return False
    before = segments[-2] if len(segments) > 1 else ""
    return not (re.fullmatch(r"[0-9]{2,4}", before) or before in _LEGACY_ALPHAS)


def _segments(path: str) -> list[str]:
    if path.endswith("/"):  # a resolver tolerates one trailing slash
        path = path[:-1]
    return path.split("/")[1:] if path else []


def decompress(uri: str) -> Decompressed:
    """Decode a (fully or partially) compressed DL URI.

    Partially compressed means ``…/{key AI}/{key value}/{segment}``: the primary
    key stays readable.  AIs in an uncompressed query string are merged into the
    elements; other query members become extras.
    """
    if not isinstance(uri, str):
        raise CompressionError(f"expected a URI string, got {type(uri).__name__}")
    if not uri.isascii():
        at = next(i for i, ch in enumerate(uri) if not ch.isascii())
        raise CompressionError(f"non-ASCII character at position {at} of the URI")
    m = _URI.fullmatch(uri)
    if not m:
        raise CompressionError("not an http(s) URI with a host")
    segments = _segments(m["path"])
    if not segments or not segments[-1]:
        raise CompressionError("no compressed path segment")
    segment = segments[-1]
    bad = next((i for i, ch in enumerate(segment) if ch not in _B64_INDEX), None)
    if bad is not None:
        raise CompressionError(f"{segment[bad]!r} is not a base64url character", 6 * bad)

    elements: list[tuple[str, str]] = []
    stem_segments = segments[:-1]
    if len(segments) >= 3 and segments[-3] in _ENTRY and _ENTRY[segments[-3]].dlpkey is not None:
        key, value = segments[-3], _unescape(segments[-2], plus_is_space=False)
        _split(key, value)  # the readable key must fit its AI's format too
        elements.append((key, value))
        stem_segments = segments[:-3]

    bits = "".join(format(_B64_INDEX[ch], "06b") for ch in segment)
    decoded, extras = _decode(bits)
    elements += decoded
    query_elements, query_extras = _parse_query(m["query"] or "")
    elements += query_elements
    extras += query_extras

    seen: set[str] = set()
    for ai, _ in elements:
        if ai in seen:
            raise CompressionError(f"AI ({ai}) appears twice")
        seen.add(ai)
    if not any(_ENTRY[ai].dlpkey is not None for ai in seen):
        raise CompressionError("no primary key in the compressed data")
    stem = m["base"] + "".join("/" + s for s in stem_segments)
    return Decompressed(stem, tuple(elements), tuple(extras))


def _decode(bits: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    r = _Reader(bits)
    elements: list[tuple[str, str]] = []
    extras: list[tuple[str, str]] = []
    while r.left() > 8:
        start = r.pos
        h1, h2 = r.take(4, "record header"), r.take(4, "record header")
        if h1 <= 9 and h2 <= 9:
            ai = _read_ai(r, f"{h1}{h2}", start)
            elements.append((ai, _read_value(r, ai)))
        elif (code := f"{h1:X}{h2:X}") in _OPTIMISATIONS:
            elements += [(ai, _read_value(r, ai)) for ai in _OPTIMISATIONS[code]]
        elif h1 == 0xF:
            extras.append(_read_pair(r, h2, start))
        else:
            raise CompressionError(f"unknown optimisation code {code}", start)
    if r.left() >= 6 or "1" in bits[r.pos:]:
        raise CompressionError("unexpected bits after the last record", r.pos)
    return elements, extras


def _read_ai(r: _Reader, prefix: str, start: int) -> str:
    length = _AI_LENGTH.get(prefix)
    if length is None:
        raise CompressionError(f"no AI starts with {prefix}", start)
    ai = prefix
    for _ in range(length - 2):
        digit = r.take(4, "AI key")
        if digit > 9:
            raise CompressionError(f"AI key {ai}… has a non-decimal digit", r.pos - 4)
        ai += str(digit)
    if ai not in _ENTRY:
        raise CompressionError(f"unknown AI ({ai})", start)
    return ai


def _read_pair(r: _Reader, high: int, start: int) -> tuple[str, str]:
    """Non-GS1 pair: the 7-bit key length starts in the header's low nibble."""
    size = high << 3 | r.take(3, "non-GS1 key length")
    if size == 0:
        raise CompressionError("empty non-GS1 key", start)
    key = "".join(_B64[r.take(6, "non-GS1 key")] for _ in range(size))
    if key.isdigit():
        raise CompressionError(f"non-GS1 key {key!r} is all digits (looks like an AI)", start)
    what = f"value of non-GS1 key {key!r}"
    encoding = r.encoding(what)
    return key, r.text(encoding, r.take(7, what), what)


def _unescape(text: str, *, plus_is_space: bool) -> str:
    """Strict percent-decoding: malformed escapes, NUL and bad UTF-8 are errors."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise CompressionError(f"malformed percent-escape in {text!r}")
    if plus_is_space:
        text = text.replace("+", " ")
    try:
        out = unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise CompressionError(f"percent-escapes in {text!r} are not UTF-8") from None
    if "\x00" in out:
        raise CompressionError(f"NUL character in {text!r}")
    return out


def _parse_query(query: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Numeric keys are AIs (checked like compressed ones); the rest pass through."""
    elements: list[tuple[str, str]] = []
    extras: list[tuple[str, str]] = []
    for member in re.split(r"[&;]", query):
        raw_key, _, raw_value = member.partition("=")
        if not raw_key:  # empty member, or "=value" with no key
            continue
        key = _unescape(raw_key, plus_is_space=True)
        value = _unescape(raw_value, plus_is_space=True)
        if key.isdigit():
            if key not in _ENTRY:
                raise CompressionError(f"unknown AI ({key}) in the query string")
            if not value:
                raise CompressionError(f"empty value of AI ({key}) in the query string")
            _split(key, value)
            elements.append((key, value))
        else:
            extras.append((key, value))
    return elements, extras


# --------------------------------------------------------------------------- compress

def compress(stem: str, elements: Sequence[tuple[str, str]],
             extras: Sequence[tuple[str, str]] = (), *, optimise: bool = True,
             compress_extras: bool = False) -> str:
    """Compressed DL URI ``stem/segment[?extras]`` for AI data.

    The first primary key in ``elements`` is the one :meth:`Decompressed.uri`
    puts in the path.  AIs are encoded in GS1's reference order (optimisation
    groups, then AIs in ascending order) so equal data gives an equal URI
    whatever the input order.  With ``compress_extras`` the non-GS1 pairs that the
    format can carry (base64url key, printable ASCII value, both <= 127 chars) go
    into the segment; the others, and all of them by default, stay readable in
    the query string.
    """
    stem = _check_stem(stem)
    values: dict[str, str] = {}
    for ai, value in elements:
        if ai not in _ENTRY:
            raise CompressionError(f"unknown AI ({ai})")
        if ai in values:
            raise CompressionError(f"AI ({ai}) appears twice")
        if not value:
            raise CompressionError(f"empty value of AI ({ai})")
        _split(ai, value)
        values[ai] = value
    key = next((ai for ai in values if _ENTRY[ai].dlpkey is not None), None)
    if key is None:
        raise CompressionError("no primary key among the elements")

    w = _Writer()
    for code, group in _plan(values, key, optimise):
        if code is None:
            w.parts.extend(format(int(d), "04b") for d in group[0])
        else:
            w.put(int(code, 16), 8)
        for ai in group:
            _write_value(w, ai, values[ai])

    readable: list[str] = []
    for k, v in extras:
        if not k or k.isdigit():
            raise CompressionError(f"non-GS1 key {k!r} must be non-empty and not all digits")
        if compress_extras and _packable(k, v):
            w.put(0xF, 4)
            w.put(len(k), 7)
            for ch in k:
                w.put(_B64_INDEX[ch], 6)
            w.text(v, 7)
        else:
            readable.append(quote_plus(k, safe="") + (f"={quote_plus(v, safe='')}" if v else ""))
    return f"{stem}/{w.base64()}" + ("?" + "&".join(readable) if readable else "")


def _check_stem(stem: str) -> str:
    if not isinstance(stem, str) or not stem.isascii() or not _URI.fullmatch(stem) or (
            "?" in stem or "#" in stem):
        raise CompressionError(f"stem must be an http(s) URI without query or fragment: {stem!r}")
    return stem[:-1] if stem.endswith("/") else stem


def _packable(key: str, value: str) -> bool:
    return (len(key) <= _MAX_PAIR and bool(_SEGMENT.fullmatch(key))
            and len(value) <= _MAX_PAIR and bool(_PRINTABLE.fullmatch(value)))


def _plan(values: dict[str, str], key: str,
          optimise: bool) -> list[tuple[str | None, tuple[str, ...]]]:
    """Records in encoding order: (optimisation code or None, AIs it carries)."""
    left = set(values)
    records: list[tuple[str | None, tuple[str, ...]]] = []
    while optimise:
        best, gain = None, 0
        for code, group in _OPTIMISATIONS.items():
            size = len("".join(group))
            if size > gain and left.issuperset(group):
                best, gain = code, size
        if best is None:
            break
        records.append((best, _OPTIMISATIONS[best]))
        left.difference_update(_OPTIMISATIONS[best])
    records += [(None, (ai,)) for ai in sorted(left)]
    # The decoder takes the first primary key it meets as the path key; with
    # several keys (e.g. /8004/…?01=…) make sure that is the intended one.
    first = next(ai for _, group in records for ai in group if _ENTRY[ai].dlpkey is not None)
    if first != key:
        at = next(i for i, (_, group) in enumerate(records) if key in group)
        records.insert(0, records.pop(at))
    return records
