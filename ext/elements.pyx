# cython: language_level=3
"""GS1 element strings: bracketed ``(01)…(21)…``, unbracketed with FNC1, and barcode scan data.

>>> es = parse_element_string("(01)09506000134352(17)271231(10)ABC(21)X1")
>>> es.elements
(('01', '09506000134352'), ('17', '271231'), ('10', 'ABC'), ('21', 'X1'))
>>> es.element_string(brackets=False)
'^01095060001343521727123110ABC^21X1'
>>> es.to_digital_link().uri()
'https://id.gs1.org/01/09506000134352/10/ABC/21/X1?17=271231'
>>> parse_element_string("]d2010950600013435221X1\\x1d17271231").elements
(('01', '09506000134352'), ('21', 'X1'), ('17', '271231'))

Scan data is what a scanner transmits: a symbology identifier (``]C1`` GS1-128,
``]e0`` GS1 DataBar, ``]d2`` GS1 DataMatrix, ``]Q3`` GS1 QR Code, ``]J1`` GS1
DotCode) then the data with ASCII GS (0x1D) as the FNC1 separator; ``]Q1``/``]d1``
followed by a URL is a Digital Link, returned by :func:`parse_scan`.
"""

from libc.string cimport memset
from cpython.unicode cimport PyUnicode_DecodeASCII

from ext.ai cimport (TABLE, Element, Failure, MAX_ELEMENTS, FAIL_CARET, lookup_ai, lookup_ai_prefix,
                     vivify_unknown_ai, check_length, validate_all, failure_to_error, validate_value)
from ext.errors import GS1Error

__all__ = ["ElementString", "parse_element_string", "parse_scan", "validate_elements", "SYMBOLOGIES"]

SYMBOLOGIES = {"]C1": "GS1-128", "]e0": "GS1 DataBar", "]d2": "GS1 DataMatrix", "]Q3": "GS1 QR Code",
               "]J1": "GS1 DotCode"}

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    bint PyUnicode_IS_ASCII(object s)


cdef class ElementString:
    """An immutable, validated set of GS1 AI data in the order given."""

    cdef readonly tuple elements

    def __init__(self, *args, **kwargs):
        raise TypeError("use ext.elements.parse_element_string()")

    def get(self, str ai, default=None):
        for element in self.elements:
            if element[0] == ai:
                return element[1]
        return default

    def element_string(self, bint brackets=True, str fnc1="^") -> str:
        from ext.dl import element_string
        return element_string(self.elements, brackets, fnc1)

    def scan_data(self, str symbology="]d2") -> str:
        """What a scanner would transmit for this data in the given symbology."""
        if symbology not in SYMBOLOGIES:
            raise GS1Error(f"unknown GS1 symbology identifier {symbology!r}", code="UNKNOWN_SYMBOLOGY")
        return symbology + self.element_string(False, "\x1d")[1:]

    def hri(self, bint titles=False) -> tuple:
        from ext.dl import hri
        return hri(self.elements, titles)

    def to_digital_link(self, str stem=None):
        """The Digital Link carrying this data (GS1's generator rules; see ext.dl.build)."""
        from ext.dl import build
        return build(self.elements, stem)

    def __eq__(self, other):
        if not isinstance(other, ElementString):
            return NotImplemented
        return self.elements == (<ElementString>other).elements

    def __hash__(self):
        return hash(self.elements)

    def __repr__(self):
        return f"<ElementString {self.element_string()}>"


cdef ElementString _make(tuple elements):
    cdef ElementString es = ElementString.__new__(ElementString)
    es.elements = elements
    return es


cdef int _entry_for(const unsigned char* ai, Py_ssize_t n, bint permit_unknown) noexcept:
    cdef int entry = lookup_ai(ai, n)
    if entry < 0 and permit_unknown:
        entry = vivify_unknown_ai(ai, n, True)
    return entry


cdef int _check_value(Element* els, int i) except -1:
    cdef Failure f
    cdef Py_ssize_t k
    memset(&f, 0, sizeof(Failure))
    f.element = i
    f.kind = check_length(els[i].entry, els[i].value_len)
    if f.kind == 0:
        for k in range(els[i].value_len):
            if els[i].value[k] == 94:
                f.kind = FAIL_CARET
                f.offset = k
                break
    if f.kind:
        raise failure_to_error(&f, els, None, 0)
    return 0


cdef tuple _pairs(Element* els, int count):
    out = []
    for i in range(count):
        entry = els[i].entry
        ai = PyUnicode_DecodeASCII(<const char*>els[i].ai, els[i].ai_len, NULL)
        out.append((ai, PyUnicode_DecodeASCII(<const char*>els[i].value, els[i].value_len, "replace")))
    return tuple(out)


cdef _finish(Element* els, int count, bint associations):
    cdef Failure f
    memset(&f, 0, sizeof(Failure))
    if validate_all(els, count, associations, &f) < 0:
        raise failure_to_error(&f, els, None, 0)
    return _make(_pairs(els, count))


cdef _parse_bracketed(bytes raw, Py_ssize_t offset, bint associations, bint permit_unknown):
    """(AI)value… — a '(' inside data is written '\\(' and becomes '('."""
    cdef Element els[MAX_ELEMENTS]
    cdef int count = 0
    cdef const unsigned char* s = raw
    cdef Py_ssize_t n = len(raw), p = 0, close, vstart, k
    cdef bytearray values = bytearray(n)
    cdef unsigned char* out = values
    cdef Py_ssize_t used = 0
    cdef int entry
    while p < n:
        if s[p] != 40:
            raise GS1Error("expected '(' to start an AI", position=offset + p, code="BRACKET_EXPECTED")
        close = p + 1
        while close < n and s[close] != 41:
            close += 1
        if close >= n:
            raise GS1Error("an AI is not closed with ')'", position=offset + p, code="BRACKET_UNCLOSED")
        entry = _entry_for(s + p + 1, close - p - 1, permit_unknown)
        if entry < 0:
            raise GS1Error(f"unknown AI ({raw[p + 1:close].decode('ascii', 'replace')})",
                           ai=raw[p + 1:close].decode("ascii", "replace"), position=offset + p + 1,
                           code="UNKNOWN_AI")
        if count >= MAX_ELEMENTS:
            raise GS1Error(f"too many AIs (more than {MAX_ELEMENTS})", position=offset + p, code="TOO_MANY_AIS")
        vstart = close + 1
        if vstart >= n:
            raise GS1Error("the value is empty", ai=raw[p + 1:close].decode(), position=offset + vstart,
                           code="VALUE_EMPTY")
        els[count].entry = entry
        els[count].ai = s + p + 1
        els[count].ai_len = <unsigned char>(close - p - 1)
        els[count].value = out + used
        els[count].position = offset + vstart
        k = vstart
        while k < n:
            if s[k] == 40:
                if k > vstart and s[k - 1] == 92:      # "\(" is a data bracket
                    out[used - 1] = 40
                    k += 1
                    continue
                break
            out[used] = s[k]
            used += 1
            k += 1
        els[count].value_len = (out + used) - els[count].value
        count += 1
        _check_value(els, count - 1)
        p = k
    if count == 0:
        raise GS1Error("the AI data is empty", position=offset, code="EMPTY")
    return _finish(els, count, associations)


cdef _parse_unbracketed(bytes raw, Py_ssize_t offset, unsigned char fnc1, bint associations,
                        bint permit_unknown):
    """FNC1-separated AI data (first FNC1 already removed): AIs are found by prefix."""
    cdef Element els[MAX_ELEMENTS]
    cdef int count = 0, entry
    cdef const unsigned char* s = raw
    cdef Py_ssize_t n = len(raw), p = 0, r, consumed, ai_len
    cdef Failure f
    if n == 0:
        raise GS1Error("the AI data is empty", position=offset, code="EMPTY")
    while p < n:
        entry = lookup_ai_prefix(s + p, n - p)
        if entry < 0 and permit_unknown:
            entry = vivify_unknown_ai(s + p, n - p, False)
            if entry >= 0 and TABLE[entry].ai_len == 0:
                entry = -1          # an AI of unknown length cannot be split from its data
        if entry < 0:
            raise GS1Error(f"no known AI starts here: {raw[p:p + 4].decode('ascii', 'replace')}…",
                           position=offset + p, code="UNKNOWN_AI")
        if count >= MAX_ELEMENTS:
            raise GS1Error(f"too many AIs (more than {MAX_ELEMENTS})", position=offset + p, code="TOO_MANY_AIS")
        ai_len = TABLE[entry].ai_len if TABLE[entry].ai_len else 2
        if entry >= 0 and TABLE[entry].ai[0] == 88:   # pseudo entry "XX…": AI length from prefix
            ai_len = TABLE[entry].ai_len
        r = p + ai_len
        while r < n and s[r] != fnc1:
            r += 1
        els[count].entry = entry
        els[count].ai = s + p
        els[count].ai_len = <unsigned char>ai_len
        els[count].value = s + p + ai_len
        els[count].position = offset + p + ai_len
        memset(&f, 0, sizeof(Failure))
        consumed = validate_value(entry, s + p + ai_len, r - p - ai_len, &f)
        if consumed < 0:
            f.element = count
            els[count].value_len = r - p - ai_len
            raise failure_to_error(&f, els, None, 0)
        els[count].value_len = consumed
        count += 1
        p = p + ai_len + consumed
        if not TABLE[entry].predefined and p < n and s[p] != fnc1:
            raise GS1Error("the value is too long (no FNC1 separator where it should end)",
                           ai=raw[p - consumed - ai_len:p - consumed].decode("ascii"),
                           position=offset + p, code="VALUE_TOO_LONG")
        if p < n and s[p] == fnc1:
            p += 1
    return _finish(els, count, associations)


cdef _parse_composite(bytes raw, unsigned char fnc1, bint associations, bint permit_unknown):
    """Linear|2D composite data ("^…|^…"): both parts are one message."""
    cdef list elements = []
    cdef Py_ssize_t offset = 0
    for part in raw.split(b"|"):
        if not part.startswith(bytes([fnc1])):
            raise GS1Error("each part of composite data starts with FNC1", position=offset, code="NOT_AI_DATA")
        elements.extend(_parse_unbracketed(part[1:], offset + 1, fnc1, False, permit_unknown).elements)
        offset += len(part) + 1
    return validate_elements(elements, associations=associations, permit_unknown_ais=permit_unknown)


cdef bytes _ascii_bytes(str data, str what):
    if not PyUnicode_IS_ASCII(data):
        for i, ch in enumerate(data):
            if ord(ch) > 127:
                raise GS1Error(f"character {ch!r} cannot appear in {what}", position=i,
                               code="ILLEGAL_CHARACTER")
    return data.encode("ascii")


def parse_element_string(str data, *, bint associations=True, bint permit_unknown_ais=False,
                         str fnc1="^") -> ElementString:
    """Parse and validate bracketed (``(01)…``) or unbracketed (``^01…``) AI data, or scan data.

    ``associations=False`` checks syntax and linters only (no req=/ex= rules), as
    GS1's engine does when it merely parses AI data.
    """
    cdef bytes raw = _ascii_bytes(data, "GS1 AI data")
    if raw.startswith(b"("):
        return _parse_bracketed(raw, 0, associations, permit_unknown_ais)
    if raw.startswith(fnc1.encode("ascii")):
        if b"|" in raw:
            return _parse_composite(raw, ord(fnc1), associations, permit_unknown_ais)
        return _parse_unbracketed(raw[1:], 1, ord(fnc1), associations, permit_unknown_ais)
    if raw[:3].decode("ascii") in SYMBOLOGIES:
        return _parse_unbracketed(raw[3:], 3, 0x1d, associations, permit_unknown_ais)
    raise GS1Error("GS1 AI data starts with '(' (bracketed), FNC1 ('^') or a symbology identifier",
                   position=0, code="NOT_AI_DATA")


def parse_scan(str data, *, bint lenient=False):
    """What a scanner sent → a DigitalLink (URL payloads) or an ElementString (AI data)."""
    from ext.dl import parse
    if data.startswith(("]Q1", "]d1", "]J0")) and "://" in data[3:12]:
        return parse(data[3:], lenient=lenient)
    if "://" in data[:12]:
        return parse(data, lenient=lenient)
    return parse_element_string(data)


def validate_elements(elements, *, bint associations=True, bint permit_unknown_ais=False) -> ElementString:
    """Validate (AI, value) pairs as one message: formats, linters and associations."""
    cdef Element els[MAX_ELEMENTS]
    cdef int count = 0, entry
    cdef list keep = []
    cdef bytes ai_raw, value_raw
    cdef Py_ssize_t position = 0
    for ai, value in elements:
        if count >= MAX_ELEMENTS:
            raise GS1Error(f"too many AIs (more than {MAX_ELEMENTS})", code="TOO_MANY_AIS")
        ai_raw = _ascii_bytes(ai, "an AI")
        value_raw = _ascii_bytes(value, f"the value of AI ({ai})")
        keep.append((ai_raw, value_raw))
        entry = _entry_for(ai_raw, len(ai_raw), permit_unknown_ais)
        if entry < 0:
            raise GS1Error("unknown AI", ai=ai, code="UNKNOWN_AI")
        els[count].entry = entry
        els[count].ai = ai_raw
        els[count].ai_len = len(ai_raw)
        els[count].value = value_raw
        els[count].value_len = len(value_raw)
        els[count].position = position + len(ai_raw) + 2
        position += len(ai_raw) + 2 + len(value_raw)
        count += 1
        _check_value(els, count - 1)
    return _finish(els, count, associations)
