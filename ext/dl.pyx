# cython: language_level=3
"""GS1 Digital Link URIs (URI Syntax 1.6): parse, validate and build, in one pass of C.

>>> dl = parse("https://example.com/01/09506000134352/10/LOT%2F7/21/ABC?17=271231&linkType=gs1:pip")
>>> dl.primary_key, dl.qualifiers, dl.attributes
(('01', '09506000134352'), (('10', 'LOT/7'), ('21', 'ABC')), (('17', '271231'),))
>>> dl.params, dl.stem
((('linkType', 'gs1:pip'),), 'https://example.com')
>>> dl.uri()
'https://id.gs1.org/01/09506000134352/10/LOT%2F7/21/ABC?17=271231'
>>> dl.element_string()
'(01)09506000134352(10)LOT/7(21)ABC(17)271231'
>>> parse("https://example.com/01/9506000134352", lenient=True).uri("https://example.com")
'https://example.com/01/09506000134352'

Strict mode (the default) follows GS1's reference engine; ``lenient=True`` is for
labels already in the field: GTIN-8/12/13 padded to 14 digits, the removed
convenience names (``/gtin/``, ``/ser/``…), ``;`` between query parameters, one
trailing slash, and malformed percent-escapes kept literally. Either way the result is canonical.
"""

from libc.string cimport memcmp, memcpy, memset
from libc.stdlib cimport malloc, free
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8

from ext.ai cimport (TABLE, AIEntry, Element, Failure, MAX_ELEMENTS, DL_ATTR_YES, DL_ATTR_UNKNOWN_AI,
                     FAIL_TOO_SHORT, FAIL_TOO_LONG, FAIL_CARET, lookup_ai, vivify_unknown_ai,
                     check_length, validate_all, is_primary_key, valid_key_path, failure_to_error)
from ext.errors import GS1Error

__all__ = ["DigitalLink", "parse", "build", "escape", "unescape", "CANONICAL_STEM"]

CANONICAL_STEM = "https://id.gs1.org"

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    bint PyUnicode_IS_ASCII(object s)

cdef enum:
    PAD_GTIN = 1                 # GTIN-8/12/13 in /01/ padded to 14 digits
    ALPHAS = 2                   # /gtin/, /ser/ … (removed in URI Syntax 1.3.0)
    SEMICOLON = 4                # ';' separates query parameters (URI Syntax 1.2 ABNF)
    LITERAL_PERCENT = 8          # a malformed %-escape stays as text (GS1 engine behaviour)
    UNKNOWN_AIS = 16             # unassigned AIs accepted (engine option permitUnknownAIs)
    UNKNOWN_AI_ATTRS = 32        # … and accepted as data attributes (unknownAInotDLattr=false)
    TRAILING_SLASH = 64          # one trailing '/' after the last path value is ignored
    LENIENT = PAD_GTIN | ALPHAS | SEMICOLON | LITERAL_PERCENT | TRAILING_SLASH

cdef enum:
    IN_PATH = 0
    IN_QUERY = 1
    MAX_PARAMS = 64

# RFC 3986 characters a DL URI may contain at all; and those a host may not.
cdef unsigned char URI_CHARS[256]
cdef unsigned char BAD_HOST_CHARS[256]
cdef unsigned char UNRESERVED[256]
cdef signed char HEX[256]


cdef void _fill(unsigned char* table, bytes chars):
    cdef Py_ssize_t i
    for i in range(256):
        table[i] = 0
    for i in range(len(chars)):
        table[<unsigned char>chars[i]] = 1


_fill(URI_CHARS, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%")
_fill(BAD_HOST_CHARS, b"_~?#@!$&'()*+,;=%")
_fill(UNRESERVED, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
for _i in range(256):
    HEX[_i] = -1
for _i in range(16):
    HEX[ord("0123456789ABCDEF"[_i])] = _i
    HEX[ord("0123456789abcdef"[_i])] = _i
del _i

cdef const char* HEXDIGITS = b"0123456789ABCDEF"

# URI Syntax 1.2 convenience names, accepted only in lenient mode.
_ALPHA_AIS = {
    b"cpid": b"8010", b"cpsn": b"8011", b"cpv": b"22", b"gcn": b"255", b"gdti": b"253",
    b"giai": b"8004", b"ginc": b"401", b"gln": b"414", b"glnx": b"254", b"gmn": b"8013",
    b"grai": b"8003", b"gsin": b"402", b"gsrn": b"8018", b"gsrnp": b"8017", b"gtin": b"01",
    b"itip": b"8006", b"lot": b"10", b"party": b"417", b"refno": b"8020", b"ser": b"21",
    b"srin": b"8019", b"sscc": b"00",
}

cdef int GTIN_ENTRY = lookup_ai(b"01", 2)


cdef struct Param:                 # a non-GS1 query parameter, as raw spans of the input
    Py_ssize_t key_start
    Py_ssize_t key_len
    Py_ssize_t val_start           # -1 for a singleton ("?flag")
    Py_ssize_t val_len


cdef struct ParseState:
    const unsigned char* s
    Py_ssize_t n
    int flags
    int count                      # elements
    int path_count
    int n_params
    Element elements[MAX_ELEMENTS]
    Param params[MAX_PARAMS]
    unsigned char* buf             # decoded values live here
    Py_ssize_t buf_used
    Py_ssize_t stem_end            # index of the '/' that starts the GS1 path
    Py_ssize_t query_start         # index after '?', or -1
    Py_ssize_t query_end


cdef Py_ssize_t _find(const unsigned char* s, Py_ssize_t start, Py_ssize_t end, unsigned char c) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, end):
        if s[i] == c:
            return i
    return -1


cdef Py_ssize_t _rfind(const unsigned char* s, Py_ssize_t start, Py_ssize_t end, unsigned char c) noexcept nogil:
    cdef Py_ssize_t i = end - 1
    while i >= start:
        if s[i] == c:
            return i
        i -= 1
    return -1


cdef Py_ssize_t _unescape(const unsigned char* s, Py_ssize_t n, unsigned char* out, bint query,
                          bint literal_percent, Py_ssize_t* bad) noexcept nogil:
    """Percent-decode s[0:n] into out; -1 with *bad = offset on a malformed escape or NUL."""
    cdef Py_ssize_t i = 0, j = 0
    cdef int hi, lo
    cdef unsigned char c
    while i < n:
        c = s[i]
        if c == 37:  # '%'
            hi = HEX[s[i + 1]] if i + 1 < n else -1
            lo = HEX[s[i + 2]] if i + 2 < n else -1
            if hi >= 0 and lo >= 0:
                c = <unsigned char>(hi * 16 + lo)
                if c == 0:
                    bad[0] = i
                    return -2
                out[j] = c
                j += 1
                i += 3
                continue
            if not literal_percent:
                bad[0] = i
                return -1
            out[j] = c
        elif c == 43 and query:  # '+'
            out[j] = 32
        else:
            out[j] = c
        j += 1
        i += 1
    return j


def _fail(str reason, Py_ssize_t position, ai=None, str code="INVALID_URI"):
    raise GS1Error(reason, ai=ai, position=position, code=code)


cdef str _ascii(const unsigned char* s, Py_ssize_t n):
    return PyUnicode_DecodeASCII(<const char*>s, n, "replace")


cdef int _lookup(ParseState* st, const unsigned char* ai, Py_ssize_t n, bint in_path) noexcept:
    cdef int entry = lookup_ai(ai, n)
    if entry < 0 and (st.flags & UNKNOWN_AIS):
        entry = vivify_unknown_ai(ai, n, True)
    return entry


cdef int _add_element(ParseState* st, int entry, const unsigned char* ai, Py_ssize_t ai_len,
                      Py_ssize_t raw_start, Py_ssize_t raw_end, bint query) except -1:
    """Decode one value into the buffer, pad a short GTIN if allowed, check its length."""
    cdef Py_ssize_t bad = 0, vlen, k
    cdef unsigned char* out = st.buf + st.buf_used
    cdef Element* el
    cdef Failure f
    if st.count >= MAX_ELEMENTS:
        _fail(f"too many AIs (more than {MAX_ELEMENTS})", raw_start, code="TOO_MANY_AIS")
    if raw_end == raw_start:
        _fail("the value is empty", raw_start, _ascii(ai, ai_len), "VALUE_EMPTY")
    vlen = _unescape(st.s + raw_start, raw_end - raw_start, out + 6, query,
                     st.flags & LITERAL_PERCENT, &bad)
    if vlen == -2:
        _fail("a percent-escape decodes to NUL (%00), which is never allowed",
              raw_start + bad, _ascii(ai, ai_len), "ILLEGAL_NUL")
    if vlen < 0:
        _fail("malformed percent-escape ('%' must be followed by two hex digits; write %25 for '%')",
              raw_start + bad, _ascii(ai, ai_len), "MALFORMED_PERCENT_ESCAPE")
    if (entry == GTIN_ENTRY and (st.flags & PAD_GTIN) and (vlen == 8 or vlen == 12 or vlen == 13)):
        # the value was decoded at out+6: start earlier and fill the gap with zeros
        out = out + 6 - (14 - vlen)
        for k in range(14 - vlen):
            out[k] = 48
        vlen = 14
    else:
        out = out + 6
    st.buf_used += 6 + (raw_end - raw_start)
    el = &st.elements[st.count]
    el.entry = entry
    el.ai = ai
    el.ai_len = <unsigned char>ai_len
    el.value = out
    el.value_len = vlen
    el.position = raw_start
    st.count += 1
    memset(&f, 0, sizeof(Failure))
    f.element = st.count - 1
    f.kind = check_length(entry, vlen)
    if f.kind == 0:
        for k in range(vlen):
            if out[k] == 94:  # '^' would be read as FNC1
                f.kind = FAIL_CARET
                f.offset = k
                break
    if f.kind:
        raise failure_to_error(&f, st.elements, None, 0)
    return 0


cdef int _parse_path(ParseState* st, Py_ssize_t host_end, Py_ssize_t path_end) except -1:
    cdef const unsigned char* s = st.s
    cdef Py_ssize_t r = path_end, v, a, p, a_end, v_end
    cdef Py_ssize_t dp = -1
    cdef int entry
    cdef bytes alias
    cdef const unsigned char* ai
    cdef Py_ssize_t ai_len
    # Walk back over "/AI/value" pairs until a primary key; anything before it is stem.
    while True:
        v = _rfind(s, host_end, r, 47)
        if v < 0:
            break
        a = _rfind(s, host_end, v, 47)
        if a < 0:
            break
        entry = _lookup(st, s + a + 1, v - a - 1, True)
        if entry < 0 and (st.flags & ALPHAS):
            alias = _ALPHA_AIS.get(bytes(s[a + 1:v]))
            if alias is not None:
                entry = lookup_ai(alias, len(alias))
        if entry < 0:
            break
        if is_primary_key(entry):
            dp = a
            break
        r = a
    if dp < 0:
        _fail("no GS1 primary key (such as /01/ for a GTIN) found in the path", host_end,
              code="NO_PRIMARY_KEY")
    st.stem_end = dp
    p = dp
    while p < path_end:
        a_end = _find(s, p + 1, path_end, 47)
        ai = s + p + 1
        ai_len = a_end - p - 1
        entry = _lookup(st, ai, ai_len, True)
        if entry < 0:
            alias = _ALPHA_AIS[bytes(s[p + 1:a_end])]
            entry = lookup_ai(alias, len(alias))
            ai = <const unsigned char*>TABLE[entry].ai
            ai_len = TABLE[entry].ai_len
        v_end = _find(s, a_end + 1, path_end, 47)
        if v_end < 0:
            v_end = path_end
        _add_element(st, entry, ai, ai_len, a_end + 1, v_end, False)
        p = v_end
    st.path_count = st.count
    return 0


cdef bint _all_digits(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    if n == 0:
        return False
    for i in range(n):
        if s[i] < 48 or s[i] > 57:
            return False
    return True


cdef int _parse_query(ParseState* st, Py_ssize_t start, Py_ssize_t end) except -1:
    cdef const unsigned char* s = st.s
    cdef Py_ssize_t m = start, m_end, eq, i
    cdef int entry
    cdef Param* prm
    while m < end:
        m_end = m
        while m_end < end and s[m_end] != 38 and not (s[m_end] == 59 and (st.flags & SEMICOLON)):
            m_end += 1
        if m_end > m:
            eq = _find(s, m, m_end, 61)
            if eq >= 0 and _all_digits(s + m, eq - m):
                entry = _lookup(st, s + m, eq - m, False)
                if entry < 0:
                    _fail(f"unknown AI ({_ascii(s + m, eq - m)}) in the query string", m,
                          _ascii(s + m, eq - m), "UNKNOWN_AI_IN_QUERY")
                _add_element(st, entry, s + m, eq - m, eq + 1, m_end, True)
            else:
                if st.n_params >= MAX_PARAMS:
                    _fail(f"too many query parameters (more than {MAX_PARAMS})", m, code="TOO_MANY_PARAMS")
                prm = &st.params[st.n_params]
                st.n_params += 1
                prm.key_start = m
                if eq < 0:
                    prm.key_len = m_end - m
                    prm.val_start = -1
                    prm.val_len = 0
                else:
                    prm.key_len = eq - m
                    prm.val_start = eq + 1
                    prm.val_len = m_end - eq - 1
        m = m_end + 1
    return 0


cdef str _qualifier_text(int key):
    cdef AIEntry* e = &TABLE[key]
    alts = []
    for a in range(e.n_alts):
        alts.append("/".join(f"({(<object>TABLE[e.alts[a][q]].ai_str)})" for q in range(e.alt_len[a])))
    alts = [x for x in alts if x]
    if not alts:
        return f"AI ({<object>e.ai_str}) takes no qualifiers"
    return f"AI ({<object>e.ai_str}) takes " + " or ".join(alts) + " in that order"


cdef int _check_structure(ParseState* st) except -1:
    """Key-qualifier order, attributes allowed in the query, duplicates, what belongs in the path."""
    cdef int path[MAX_ELEMENTS + 1]
    cdef int trial[MAX_ELEMENTS + 1]
    cdef int i, j, k
    cdef Element* el
    cdef Element* other
    for i in range(st.path_count):
        path[i] = st.elements[i].entry
    if not valid_key_path(path, st.path_count):
        el = &st.elements[st.path_count - 1]
        _fail("the path is not a valid key-qualifier sequence: " + _qualifier_text(path[0]),
              el.position - el.ai_len - 1, <object>TABLE[el.entry].ai_str if el.ai_len else None,
              "INVALID_KEY_QUALIFIER_SEQUENCE")
    for i in range(st.count):
        el = &st.elements[i]
        for j in range(i):
            other = &st.elements[j]
            if other.ai_len == el.ai_len and memcmp(other.ai, el.ai, el.ai_len) == 0:
                _fail("the AI appears more than once", el.position - el.ai_len - 1,
                      _ascii(el.ai, el.ai_len), "DUPLICATE_AI")
        if i < st.path_count:
            continue
        if not (TABLE[el.entry].dl_attr == DL_ATTR_YES
                or (TABLE[el.entry].dl_attr == DL_ATTR_UNKNOWN_AI and (st.flags & UNKNOWN_AI_ATTRS))):
            _fail("this AI is not permitted as a Digital Link data attribute", el.position - el.ai_len - 1,
                  _ascii(el.ai, el.ai_len), "NOT_A_DATA_ATTRIBUTE")
        for j in range(1, st.path_count + 1):
            for k in range(j):
                trial[k] = path[k]
            trial[j] = el.entry
            for k in range(j, st.path_count):
                trial[k + 1] = path[k]
            if valid_key_path(trial, st.path_count + 1):
                _fail("this AI is a key qualifier here and must be in the path, not the query",
                      el.position - el.ai_len - 1, _ascii(el.ai, el.ai_len), "QUALIFIER_IN_QUERY")
    return 0


cdef inline const unsigned char* _utf8(object text, Py_ssize_t* n) except NULL:
    return <const unsigned char*>PyUnicode_AsUTF8AndSize(text, n)


cdef inline Py_ssize_t _put(unsigned char* o, Py_ssize_t j, const unsigned char* s, Py_ssize_t n) noexcept nogil:
    memcpy(o + j, s, n)
    return j + n


cdef inline Py_ssize_t _put_escaped(unsigned char* o, Py_ssize_t j, const unsigned char* s, Py_ssize_t n,
                                    bint query) noexcept nogil:
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(n):
        c = s[i]
        if UNRESERVED[c]:
            o[j] = c
            j += 1
        elif c == 32 and query:
            o[j] = 43
            j += 1
        else:
            o[j] = 37
            o[j + 1] = HEXDIGITS[c >> 4]
            o[j + 2] = HEXDIGITS[c & 15]
            j += 3
    return j


cdef inline bint _predefined(const unsigned char* ai, Py_ssize_t n) noexcept nogil:
    cdef int entry = lookup_ai(ai, n)
    return entry >= 0 and TABLE[entry].predefined


cdef str _write_uri(DigitalLink dl, str stem, bint with_query):
    """stem + /AI/value path (+ ?attributes, fixed-length AIs first), escaped, built in one buffer."""
    cdef unsigned char stack[512]
    cdef unsigned char* o = stack
    cdef Py_ssize_t bound, j = 0, sn, an, vn, k
    cdef const unsigned char* sp
    cdef const unsigned char* ap
    cdef const unsigned char* vp
    cdef tuple pair
    cdef int rounds
    cdef bint first = True
    sp = _utf8(stem, &sn)
    while sn > 0 and sp[sn - 1] == 47:
        sn -= 1
    bound = sn + 2
    path = (dl.primary_key,) + dl.qualifiers
    for pair in path:
        bound += 2 + len(<str>pair[0]) + 12 * len(<str>pair[1])
    if with_query:
        for pair in dl.attributes:
            bound += 2 + len(<str>pair[0]) + 12 * len(<str>pair[1])
    if bound > sizeof(stack):
        o = <unsigned char*>malloc(bound)
        if o == NULL:
            raise MemoryError()
    try:
        j = _put(o, j, sp, sn)
        for pair in path:
            ap = _utf8(pair[0], &an)
            vp = _utf8(pair[1], &vn)
            o[j] = 47
            j = _put(o, j + 1, ap, an)
            o[j] = 47
            j = _put_escaped(o, j + 1, vp, vn, False)
        if with_query:
            for rounds in range(2):          # fixed-length AIs first, then the others
                for pair in dl.attributes:
                    ap = _utf8(pair[0], &an)
                    if _predefined(ap, an) != (rounds == 0):
                        continue
                    vp = _utf8(pair[1], &vn)
                    o[j] = 63 if first else 38
                    first = False
                    j = _put(o, j + 1, ap, an)
                    o[j] = 61
                    j = _put_escaped(o, j + 1, vp, vn, True)
        return PyUnicode_DecodeUTF8(<const char*>o, j, NULL)
    finally:
        if o != stack:
            free(o)


cdef str _write_element_string(tuple elements, bint brackets, str fnc1):
    cdef unsigned char stack[512]
    cdef unsigned char* o = stack
    cdef Py_ssize_t bound, j = 0, an, vn, fn, i, k, count = len(elements)
    cdef const unsigned char* ap
    cdef const unsigned char* vp
    cdef const unsigned char* fp = _utf8(fnc1, &fn)
    bound = 1 + fn
    for pair in elements:
        bound += 2 + fn + len(<str>pair[0]) + 8 * len(<str>pair[1])
    if bound > sizeof(stack):
        o = <unsigned char*>malloc(bound)
        if o == NULL:
            raise MemoryError()
    try:
        if not brackets:
            j = _put(o, j, fp, fn)
        for i in range(count):
            pair = elements[i]
            ap = _utf8(pair[0], &an)
            vp = _utf8(pair[1], &vn)
            if brackets:
                o[j] = 40
                j = _put(o, j + 1, ap, an)
                o[j] = 41
                j += 1
                for k in range(vn):
                    if vp[k] == 40:
                        o[j] = 92
                        j += 1
                    o[j] = vp[k]
                    j += 1
            else:
                j = _put(o, j, ap, an)
                j = _put(o, j, vp, vn)
                if i < count - 1 and not _predefined(ap, an):
                    j = _put(o, j, fp, fn)
        return PyUnicode_DecodeUTF8(<const char*>o, j, NULL)
    finally:
        if o != stack:
            free(o)


cdef class DigitalLink:
    """An immutable, validated GS1 Digital Link.

    ``primary_key`` is an (AI, value) pair; ``qualifiers`` the key qualifiers in
    path order; ``attributes`` the GS1 data attributes from the query string in
    their order; ``params`` the other query parameters — ``linkType``,
    ``context``, ``utm_*`` … — as (key, value) pairs (value None for a bare key),
    kept aside for the resolver; ``stem`` the scheme, host and any custom path
    before the primary key.
    """

    cdef readonly str stem
    cdef readonly tuple primary_key
    cdef readonly tuple qualifiers
    cdef readonly tuple attributes
    cdef readonly tuple params

    def __init__(self, *args, **kwargs):
        raise TypeError("use ext.dl.parse() or ext.dl.build() to make a DigitalLink")

    @property
    def elements(self) -> tuple:
        """Path AIs then query AIs, as they appear: ((AI, value), …)."""
        return (self.primary_key,) + self.qualifiers + self.attributes

    @property
    def identity(self) -> str:
        """The identifier path, primary key and qualifiers: '/01/…/21/…' (no stem, no query)."""
        return _write_uri(self, "", False)

    def anchor(self, str stem=CANONICAL_STEM) -> str:
        """The URI of the identified thing (no data attributes): linkset anchors, cache keys."""
        return stem.rstrip("/") + self.identity

    def get(self, str ai, default=None):
        """The value of `ai` wherever it appears (path or query), else `default`."""
        for element in self.elements:
            if element[0] == ai:
                return element[1]
        return default

    @property
    def gtin(self):
        return self.primary_key[1] if self.primary_key[0] == "01" else self.get("01")

    @property
    def serial(self):
        return self.get("21")

    @property
    def lot(self):
        return self.get("10")

    def param(self, str key, default=None):
        for k, v in self.params:
            if k == key:
                return v
        return default

    def uri(self, str stem=None) -> str:
        """The canonical DL URI on `stem` (default https://id.gs1.org).

        Path: primary key then qualifiers; query: the data attributes, fixed-length
        AIs first, then variable-length ones, each in their original order (as GS1's
        generator does); non-GS1 parameters are not part of the identifier.
        """
        return _write_uri(self, CANONICAL_STEM if stem is None else stem, True)

    def element_string(self, bint brackets=True, str fnc1="^") -> str:
        """``(01)…(21)…`` or, without brackets, FNC1-in-first ``^01…21…^17…`` form."""
        return element_string(self.elements, brackets, fnc1)

    def hri(self, bint titles=False) -> tuple:
        """Human-readable interpretation, one line per AI: '(01) 09506000134352'."""
        return hri(self.elements, titles)

    def to_dict(self) -> dict:
        return {
            "stem": self.stem,
            "primary_key": list(self.primary_key),
            "qualifiers": [list(x) for x in self.qualifiers],
            "attributes": [list(x) for x in self.attributes],
            "params": [list(x) for x in self.params],
            "element_string": self.element_string(),
            "canonical": self.uri(),
        }

    def __eq__(self, other):
        if not isinstance(other, DigitalLink):
            return NotImplemented
        return (self.stem, self.elements, self.params) == (other.stem, other.elements, other.params)

    def __hash__(self):
        return hash((self.stem, self.elements, self.params))

    def __repr__(self):
        return f"<DigitalLink {self.uri(self.stem)}>"

    def __reduce__(self):
        return (_rebuild, (self.stem, self.primary_key, self.qualifiers, self.attributes, self.params))


def _rebuild(stem, primary_key, qualifiers, attributes, params):
    return _make(stem, primary_key, qualifiers, attributes, params)


cdef DigitalLink _make(str stem, tuple primary_key, tuple qualifiers, tuple attributes, tuple params):
    cdef DigitalLink dl = DigitalLink.__new__(DigitalLink)
    dl.stem = stem
    dl.primary_key = primary_key
    dl.qualifiers = qualifiers
    dl.attributes = attributes
    dl.params = params
    return dl


cdef str _param_text(const unsigned char* s, Py_ssize_t n):
    cdef bytearray out
    cdef Py_ssize_t bad = 0, m
    cdef unsigned char* buf
    if _find(s, 0, n, 37) < 0 and _find(s, 0, n, 43) < 0:
        return _ascii(s, n)
    out = bytearray(n)
    buf = out
    m = _unescape(s, n, buf, True, True, &bad)
    if m < 0:  # a decoded NUL in a non-GS1 parameter: keep the text as given
        return _ascii(s, n)
    return bytes(out[:m]).decode("utf-8", "replace")


cdef DigitalLink _result(ParseState* st, str uri):
    cdef int i
    cdef Element* el
    cdef list path = []
    cdef list attrs = []
    cdef list params = []
    cdef Param* prm
    for i in range(st.count):
        el = &st.elements[i]
        if el.ai_len == TABLE[el.entry].ai_len and TABLE[el.entry].ai[0] == el.ai[0]:
            ai = <object>TABLE[el.entry].ai_str
        else:
            ai = _ascii(el.ai, el.ai_len)
        pair = (ai, PyUnicode_DecodeASCII(<const char*>el.value, el.value_len, NULL))
        if i < st.path_count:
            path.append(pair)
        else:
            attrs.append(pair)
    for i in range(st.n_params):
        prm = &st.params[i]
        key = _param_text(st.s + prm.key_start, prm.key_len)
        value = None if prm.val_start < 0 else _param_text(st.s + prm.val_start, prm.val_len)
        params.append((key, value))
    return _make(uri[:st.stem_end], path[0], tuple(path[1:]), tuple(attrs), tuple(params))


cdef DigitalLink _parse(str uri, int flags):
    cdef ParseState st
    cdef Py_ssize_t n, i, scheme, host_end, end, q, path_end
    cdef const unsigned char* s
    cdef unsigned char stack_buf[1024]
    cdef Failure f
    if not PyUnicode_IS_ASCII(uri):
        for i, ch in enumerate(uri):
            if ord(ch) > 127:
                _fail(f"character {ch!r} is not allowed in a URI (percent-encode it)", i,
                      code="ILLEGAL_URI_CHARACTER")
    s = <const unsigned char*>PyUnicode_AsUTF8AndSize(uri, &n)
    for i in range(n):
        if not URI_CHARS[s[i]]:
            _fail(f"character {chr(s[i])!r} is not allowed in a URI (percent-encode it)", i,
                  code="ILLEGAL_URI_CHARACTER")
    if n >= 8 and (memcmp(s, b"https://", 8) == 0 or memcmp(s, b"HTTPS://", 8) == 0):
        scheme = 8
    elif n >= 7 and (memcmp(s, b"http://", 7) == 0 or memcmp(s, b"HTTP://", 7) == 0):
        scheme = 7
    else:
        _fail("a Digital Link URI starts with https:// or http://", 0, code="ILLEGAL_SCHEME")
    host_end = _find(s, scheme, n, 47)
    if host_end <= scheme:
        _fail("the URI must have a domain and a path", scheme, code="MISSING_DOMAIN_OR_PATH")
    for i in range(scheme, host_end):
        if BAD_HOST_CHARS[s[i]]:
            _fail(f"character {chr(s[i])!r} is not allowed in a domain name", i, code="ILLEGAL_DOMAIN_CHARACTER")
    end = _find(s, host_end, n, 35)         # '#': the fragment is not data
    if end < 0:
        end = n
    q = _find(s, host_end, end, 63)         # '?'
    path_end = q if q >= 0 else end
    if (flags & TRAILING_SLASH) and path_end > host_end + 1 and s[path_end - 1] == 47:
        path_end -= 1                        # resolvers SHOULD tolerate one trailing '/'

    st.s = s
    st.n = n
    st.flags = flags
    st.count = 0
    st.n_params = 0
    st.buf_used = 0
    st.path_count = 0
    st.stem_end = 0
    # each value is decoded into its own slot: raw length + 6 (room to pad a GTIN-8)
    if 7 * n + 16 <= sizeof(stack_buf):
        st.buf = stack_buf
    else:
        st.buf = <unsigned char*>malloc(7 * n + 16)
        if st.buf == NULL:
            raise MemoryError()
    try:
        _parse_path(&st, host_end, path_end)
        if q >= 0:
            _parse_query(&st, q + 1, end)
        _check_structure(&st)
        memset(&f, 0, sizeof(Failure))
        if validate_all(st.elements, st.count, True, &f) < 0:
            raise failure_to_error(&f, st.elements, uri, 0)
        return _result(&st, uri)
    finally:
        if st.buf != stack_buf:
            free(st.buf)


def parse(str uri, *, bint lenient=False, bint permit_unknown_ais=False,
          bint unknown_ais_as_attributes=False) -> DigitalLink:
    """Parse and fully validate a GS1 Digital Link URI; raise GS1Error with the reason.

    ``permit_unknown_ais`` mirrors GS1's engine option of the same name (accept
    unassigned AIs); it exists for conformance testing, not for production scans.
    """
    cdef int flags = LENIENT if lenient else 0
    if permit_unknown_ais:
        flags |= UNKNOWN_AIS
        if unknown_ais_as_attributes:
            flags |= UNKNOWN_AI_ATTRS
    return _parse(uri, flags)


def escape(str value, bint query=False) -> str:
    """Percent-encode a value for a DL URI: unreserved characters kept, others %HH.

    In the query a space becomes '+'; '+' itself is always %2B (GS1's preference).
    """
    cdef bytes raw = value.encode("utf-8")
    cdef const unsigned char* s = raw
    cdef Py_ssize_t n = len(raw), i, j = 0
    for i in range(n):
        if not UNRESERVED[s[i]]:
            break
    else:
        return value
    out = bytearray(3 * n)
    cdef unsigned char* o = out
    j = _put_escaped(o, 0, s, n, query)
    return PyUnicode_DecodeASCII(<const char*>o, j, NULL)


def unescape(str value, bint query=False, bint strict=True) -> str:
    """Percent-decode one path segment or query value ('+' is a space only in the query).

    Strict: a malformed escape or %00 raises GS1Error. Not strict: a malformed
    escape stays as text (GS1 engine behaviour); %00 still raises. Like GS1's
    engine this works on bytes: each decoded byte becomes the code point of the
    same number (latin-1), so nothing is lost or guessed.
    """
    cdef bytes raw = value.encode("latin-1")
    cdef Py_ssize_t bad = 0
    out = bytearray(len(raw))
    cdef Py_ssize_t m = _unescape(raw, len(raw), out, query, not strict, &bad)
    if m == -2:
        _fail("a percent-escape decodes to NUL (%00), which is never allowed", bad, code="ILLEGAL_NUL")
    if m < 0:
        _fail("malformed percent-escape", bad, code="MALFORMED_PERCENT_ESCAPE")
    return bytes(out[:m]).decode("latin-1")


def element_string(elements, bint brackets=True, str fnc1="^") -> str:
    """Element string of (AI, value) pairs: bracketed, or unbracketed with FNC1.

    Unbracketed: FNC1 first, then each AI and value, with FNC1 after every value
    whose AI is not of predefined length unless it is the last. In bracketed form
    a '(' inside data is written '\\('.
    """
    return _write_element_string(elements if type(elements) is tuple else tuple(elements), brackets, fnc1)


def hri(elements, bint titles=False) -> tuple:
    """Human-readable interpretation lines, e.g. '(17) 271231' or 'USE BY OR EXPIRY (17) 271231'."""
    cdef list lines = []
    cdef bytes raw
    cdef int entry
    for ai, value in elements:
        if titles:
            raw = ai.encode("ascii")
            entry = lookup_ai(raw, len(raw))
            title = <object>TABLE[entry].title if entry >= 0 else "UNKNOWN"
            lines.append(f"{title} ({ai}) {value}")
        else:
            lines.append(f"({ai}) {value}")
    return tuple(lines)


def build(elements, str stem=None, params=(), *, bint permit_unknown_ais=False,
          bint unknown_ais_as_attributes=False) -> DigitalLink:
    """Make a DigitalLink from AI data, as GS1's generator does.

    The first AI that is a primary key becomes the key; it takes the longest of
    its qualifier sequences whose AIs are all present (in that sequence's order);
    every other AI becomes a data attribute, which must be permitted as one.
    Identical repeated AIs collapse; the whole set is validated first.
    """
    from ext.elements import validate_elements
    cdef list unique = []
    seen = {}
    for ai, value in elements:
        if ai in seen:
            if seen[ai] != value:
                raise GS1Error("the AI appears more than once with different values", ai=ai,
                               code="REPEATED_AI_DIFFERENT_VALUES")
            continue
        seen[ai] = value
        unique.append((ai, value))
    validate_elements(unique, permit_unknown_ais=permit_unknown_ais)
    cdef int entry, key = -1, best_alt = -1, best = 0, a, q, hits
    cdef bytes raw
    key_ai = None
    for ai, value in unique:
        raw = ai.encode("ascii")
        entry = lookup_ai(raw, len(raw))
        if is_primary_key(entry):
            key = entry
            key_ai = ai
            break
    if key < 0:
        raise GS1Error("a Digital Link needs a primary key AI (such as (01) GTIN or (00) SSCC)",
                       code="NO_PRIMARY_KEY")
    cdef AIEntry* e = &TABLE[key]
    for a in range(e.n_alts):
        hits = 0
        for q in range(e.alt_len[a]):
            if <object>TABLE[e.alts[a][q]].ai_str in seen:
                hits += 1
        if hits > best:
            best = hits
            best_alt = a
    qualifier_ais = []
    if best_alt >= 0:
        qualifier_ais = [<object>TABLE[e.alts[best_alt][q]].ai_str for q in range(e.alt_len[best_alt])
                         if <object>TABLE[e.alts[best_alt][q]].ai_str in seen]
    qualifiers = tuple((ai, seen[ai]) for ai in qualifier_ais)
    attributes = []
    for ai, value in unique:
        if ai == key_ai or ai in qualifier_ais:
            continue
        raw = ai.encode("ascii")
        entry = lookup_ai(raw, len(raw))
        if entry < 0:
            if not (permit_unknown_ais and unknown_ais_as_attributes):
                raise GS1Error("this AI is not permitted as a Digital Link data attribute", ai=ai,
                               code="NOT_A_DATA_ATTRIBUTE")
        elif TABLE[entry].dl_attr != DL_ATTR_YES:
            raise GS1Error("this AI is not permitted as a Digital Link data attribute", ai=ai,
                           code="NOT_A_DATA_ATTRIBUTE")
        attributes.append((ai, value))
    return _make((CANONICAL_STEM if stem is None else stem).rstrip("/"), (key_ai, seen[key_ai]),
                 qualifiers, tuple(attributes), tuple(params))
