# cython: language_level=3
"""The GS1 Application Identifier table, compiled into C arrays at import.

Every AI rule the parsers enforce comes from the GS1 Barcode Syntax Dictionary
(vendored in config/gs1/, turned into ext/ai_table.py at build time): value
components with their character sets and linters, predefined lengths (FNC1),
the DL data-attribute flag, ``req=``/``ex=`` associations and the ``dlpkey``
key-qualifier sequences. Nothing here is written per AI.

>>> describe("01")["title"], describe("01")["primary_key"], describe("01")["qualifiers"]
('GTIN', True, (('22', '10', '21'), ('235',)))
>>> validate("17", "250231")
Traceback (most recent call last):
...
ext.errors.GS1Error: AI (17) at position 8: the day does not exist in that month ('31' in '250231')
"""

from libc.stdlib cimport calloc
from libc.string cimport memcmp, memset
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF

from ext.linters cimport run_linter, LINTER_CSETNUMERIC, LINTER_CSET82, LINTER_CSET39, LINTER_CSET64

from ext import linters as _linters
from ext.ai_table import ENTRIES as _ENTRIES, RELEASE
from ext.errors import GS1Error

__all__ = ["RELEASE", "describe", "validate", "known_ais", "UNSUPPORTED_LINTERS"]

cdef short INDEX2[100]
cdef short INDEX3[1000]
cdef short INDEX4[10000]

# GS1 General Specifications, figure 7.8.5-2: element strings whose length is
# predefined by their first two digits (used only to vivify unknown AIs when the
# caller explicitly permits them; 0 = variable length).
cdef unsigned char FIXED_VALUE_LEN_BY_PREFIX[100]
for _p, _n in {0: 18, 1: 14, 2: 14, 3: 14, 4: 16, 11: 6, 12: 6, 13: 6, 14: 6, 15: 6, 16: 6,
               17: 6, 18: 6, 19: 6, 20: 2, 31: 6, 32: 6, 33: 6, 34: 6, 35: 6, 36: 6,
               41: 13}.items():
    FIXED_VALUE_LEN_BY_PREFIX[_p] = _n

cdef int N_KNOWN = 0          # entries from the dictionary; pseudo entries follow
cdef int UNKNOWN_BASE = 0     # index of the first pseudo entry for unknown AIs
_keep_alive = []              # owners of the PyObject* stored in TABLE
UNSUPPORTED_LINTERS = set()


cdef unsigned char _cset_code(str cset):
    return {"N": CSET_N, "X": CSET_X, "Y": CSET_Y, "Z": CSET_Z}[cset]


cdef void _fill_pattern(Pattern* p, str text):
    cdef bytes raw = text.encode("ascii")
    cdef int i
    memset(p, 0, sizeof(Pattern))
    for i in range(len(raw)):
        p.s[i] = raw[i]
    p.n = len(raw.rstrip(b"n"))


cdef void _fill_entry(AIEntry* e, object spec, bint unknown):
    cdef int i, j
    cdef bytes ai = spec.ai.encode("ascii")
    memset(e, 0, sizeof(AIEntry))
    for i in range(len(ai)):
        e.ai[i] = ai[i]
    e.ai_len = len(ai)
    e.predefined = spec.predefined
    e.dl_attr = DL_ATTR_UNKNOWN_AI if unknown else (DL_ATTR_YES if spec.dl_attr else DL_ATTR_NO)
    e.n_components = len(spec.components)
    if e.n_components > MAX_COMPONENTS:
        raise ValueError(f"AI {spec.ai}: too many components")
    for i, comp in enumerate(spec.components):
        e.components[i].cset = _cset_code(comp.cset)
        e.components[i].min_len = comp.min_len
        e.components[i].max_len = comp.max_len
        e.components[i].optional = comp.optional
        e.max_len += comp.max_len
        if not comp.optional:
            e.min_len += comp.min_len
        j = 0
        for name in comp.linters:
            try:
                e.components[i].linters[j] = _linters.linter_id(name)
                j += 1
            except KeyError:
                UNSUPPORTED_LINTERS.add(name)
        e.components[i].n_linters = j
    rules = [(1, groups) for groups in spec.requires]
    if spec.excludes:
        rules.append((0, tuple((p,) for p in spec.excludes)))
    e.n_rules = len(rules)
    e.rules = <Rule*>calloc(max(1, len(rules)), sizeof(Rule))
    for i, (is_req, groups) in enumerate(rules):
        e.rules[i].is_req = is_req
        e.rules[i].n_groups = len(groups)
        e.rules[i].groups = <Group*>calloc(len(groups), sizeof(Group))
        for j, group in enumerate(groups):
            e.rules[i].groups[j].n = len(group)
            for k, pat in enumerate(group):
                _fill_pattern(&e.rules[i].groups[j].pats[k], pat)
    e.n_alts = -1
    title = spec.title
    ai_str = spec.ai
    _keep_alive.append((ai_str, title))
    e.ai_str = <PyObject*>ai_str
    e.title = <PyObject*>title


def _build_table():
    global TABLE, N_ENTRIES, N_KNOWN, UNKNOWN_BASE
    from ext.syntax_dictionary import Entry, Component
    # Pseudo entries that stand in for unassigned AIs when a caller permits them,
    # keyed by (AI length or 0 if unknown, predefined value length or 0).
    unknown_specs = [
        (0, 0, Entry("", False, False, (Component("X", 1, 90, False, ()),), (), (), None, "UNKNOWN")),
    ]
    for ai_len, fixed in ((2, 0), (2, 2), (2, 14), (2, 16), (2, 18), (3, 0), (3, 13), (4, 0), (4, 6)):
        comp = Component("X", fixed or 1, fixed or 90, False, ())
        unknown_specs.append((ai_len, fixed, Entry("X" * ai_len, bool(fixed), False, (comp,), (), (), None, "UNKNOWN")))
    N_KNOWN = len(_ENTRIES)
    UNKNOWN_BASE = N_KNOWN
    N_ENTRIES = N_KNOWN + len(unknown_specs)
    TABLE = <AIEntry*>calloc(N_ENTRIES, sizeof(AIEntry))
    for i in range(100):
        INDEX2[i] = -1
        AI_LEN_BY_PREFIX[i] = 0
    for i in range(1000):
        INDEX3[i] = -1
    for i in range(10000):
        INDEX4[i] = -1
    by_ai = {}
    for i, spec in enumerate(_ENTRIES):
        _fill_entry(&TABLE[i], spec, False)
        by_ai[spec.ai] = i
        n = len(spec.ai)
        if n == 2:
            INDEX2[int(spec.ai)] = i
        elif n == 3:
            INDEX3[int(spec.ai)] = i
        elif n == 4:
            INDEX4[int(spec.ai)] = i
        else:
            raise ValueError(f"AI {spec.ai!r}: AIs have 2 to 4 digits")
        prefix = int(spec.ai[:2])
        if AI_LEN_BY_PREFIX[prefix] not in (0, n):
            raise ValueError(f"AIs starting {spec.ai[:2]} have different lengths")
        AI_LEN_BY_PREFIX[prefix] = n
    for i, spec in enumerate(_ENTRIES):
        if spec.dlpkey is None:
            continue
        if len(spec.dlpkey) > MAX_ALTS:
            raise ValueError(f"AI {spec.ai}: too many qualifier alternatives")
        TABLE[i].n_alts = len(spec.dlpkey)
        for a, alt in enumerate(spec.dlpkey):
            if len(alt) > MAX_QUALS:
                raise ValueError(f"AI {spec.ai}: too many qualifiers")
            TABLE[i].alt_len[a] = len(alt)
            for q, qai in enumerate(alt):
                TABLE[i].alts[a][q] = by_ai[qai]
    for k, (ai_len, fixed, spec) in enumerate(unknown_specs):
        _fill_entry(&TABLE[UNKNOWN_BASE + k], spec, True)


_build_table()
del _p, _n


cdef int _digits_value(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    cdef int v = 0
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] < 48 or s[i] > 57:
            return -1
        v = v * 10 + (s[i] - 48)
    return v


cdef int lookup_ai(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """Index of the AI spelt by exactly s[0:n] (2 to 4 digits), or -1."""
    cdef int v
    if n < 2 or n > 4:
        return -1
    v = _digits_value(s, n)
    if v < 0:
        return -1
    if n == 2:
        return INDEX2[v]
    if n == 3:
        return INDEX3[v]
    return INDEX4[v]


cdef int lookup_ai_prefix(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """Index of the known AI that starts s (its length follows from its first two digits)."""
    cdef int prefix
    cdef unsigned char length
    if n < 2:
        return -1
    prefix = _digits_value(s, 2)
    if prefix < 0:
        return -1
    length = AI_LEN_BY_PREFIX[prefix]
    if length == 0 or length > n:
        return -1
    return lookup_ai(s, length)


cdef inline int lookup_ai_by_value(int v, unsigned char length) noexcept nogil:
    if length == 2:
        return INDEX2[v]
    if length == 3:
        return INDEX3[v]
    if length == 4:
        return INDEX4[v]
    return -1


cdef bint _is_prefix_of_known(const unsigned char* s, Py_ssize_t n, unsigned char length) noexcept nogil:
    # does some known AI of `length` digits start with s[0:n]?
    cdef int base = _digits_value(s, n)
    cdef int span = 1, i
    cdef Py_ssize_t k
    for k in range(length - n):
        span *= 10
    base *= span
    for i in range(span):
        if lookup_ai_by_value(base + i, length) >= 0:
            return True
    return False


cdef int vivify_unknown_ai(const unsigned char* s, Py_ssize_t n, bint exact) noexcept nogil:
    """A pseudo entry for an unassigned AI (only when the caller permits unknown AIs).

    With `exact`, s[0:n] is the whole AI (bracketed data, DL URIs); otherwise the AI
    length must follow from its first two digits (raw element strings).
    """
    cdef int prefix, fixed
    cdef unsigned char by_prefix
    if n < 2 or _digits_value(s, 2) < 0:
        return -1
    prefix = _digits_value(s, 2)
    by_prefix = AI_LEN_BY_PREFIX[prefix]
    if exact:
        if n > 4 or _digits_value(s, n) < 0:
            return -1
        if by_prefix != 0 and by_prefix != n:
            return -1          # known AIs starting like this have another length
        if by_prefix != 0 and _is_prefix_of_known(s, n, by_prefix):
            return -1
    else:
        if by_prefix == 0 or by_prefix > n or _digits_value(s, by_prefix) < 0:
            return -1
        n = by_prefix
    fixed = FIXED_VALUE_LEN_BY_PREFIX[prefix]
    if by_prefix == 0:
        return UNKNOWN_BASE          # X..90, length of AI unknown
    if by_prefix == 2:
        if fixed == 2:
            return UNKNOWN_BASE + 2
        if fixed == 14:
            return UNKNOWN_BASE + 3
        if fixed == 16:
            return UNKNOWN_BASE + 4
        if fixed == 18:
            return UNKNOWN_BASE + 5
        return UNKNOWN_BASE + 1
    if by_prefix == 3:
        return UNKNOWN_BASE + (7 if fixed == 13 else 6)
    return UNKNOWN_BASE + (9 if fixed == 6 else 8)


cdef int check_length(int entry, Py_ssize_t n) noexcept nogil:
    """0 when n fits the AI's total length, FAIL_TOO_SHORT or FAIL_TOO_LONG."""
    if n < TABLE[entry].min_len:
        return FAIL_TOO_SHORT
    if n > TABLE[entry].max_len:
        return FAIL_TOO_LONG
    return FAIL_NONE


cdef inline int _cset_linter(unsigned char cset) noexcept nogil:
    if cset == CSET_N:
        return LINTER_CSETNUMERIC
    if cset == CSET_X:
        return LINTER_CSET82
    if cset == CSET_Y:
        return LINTER_CSET39
    return LINTER_CSET64


cdef Py_ssize_t validate_value(int entry, const unsigned char* v, Py_ssize_t n, Failure* f) noexcept nogil:
    """Validate a value component by component; returns how much it consumed, -1 on failure.

    Components consume fixed prefixes of the value; trailing optional components
    may be absent. Each runs its character-set linter, then its own linters.
    """
    cdef AIEntry* e = &TABLE[entry]
    cdef Py_ssize_t p = 0, complen, pos = 0, ln = 0
    cdef int c, k, err
    cdef Component* comp
    if n == 0:
        f.kind = FAIL_EMPTY
        return -1
    for c in range(e.n_components):
        comp = &e.components[c]
        complen = n - p
        if complen > comp.max_len:
            complen = comp.max_len
        if comp.optional and complen == 0:
            continue
        if complen < comp.min_len:
            f.kind = FAIL_TOO_SHORT
            f.offset = p
            f.length = complen
            return -1
        err = run_linter(_cset_linter(comp.cset), v + p, complen, &pos, &ln)
        k = 0
        while err == 0 and k < comp.n_linters:
            err = run_linter(comp.linters[k], v + p, complen, &pos, &ln)
            k += 1
        if err:
            f.kind = FAIL_LINT
            f.lint_error = err
            f.offset = p + pos
            f.length = ln
            return -1
        p += complen
    return p


cdef inline bint _matches(const Element* el, const Pattern* pat) noexcept nogil:
    return el.ai_len >= pat.n and memcmp(el.ai, pat.s, pat.n) == 0


cdef int _find(Element* elements, int count, const Pattern* pat, const Element* owner) noexcept nogil:
    # an element matching the pattern that is not an instance of the owner's own AI
    cdef int i
    for i in range(count):
        if not _matches(&elements[i], pat):
            continue
        if elements[i].ai_len == owner.ai_len and memcmp(elements[i].ai, owner.ai, owner.ai_len) == 0:
            continue
        return i
    return -1


cdef bint check_associations(Element* elements, int count, Failure* f) noexcept nogil:
    """Repeated AIs must agree; every req= must be met and no ex= pairing present."""
    cdef int i, j, r, g, k, hit
    cdef AIEntry* e
    cdef Rule* rule
    cdef Group* group
    cdef bint ok
    for i in range(count):
        for j in range(i + 1, count):
            if (elements[i].ai_len == elements[j].ai_len
                    and memcmp(elements[i].ai, elements[j].ai, elements[i].ai_len) == 0
                    and (elements[i].value_len != elements[j].value_len
                         or memcmp(elements[i].value, elements[j].value, elements[i].value_len) != 0)):
                f.kind = FAIL_REPEATED_DIFFERENT
                f.element = j
                f.other = i
                return False
    for i in range(count):
        e = &TABLE[elements[i].entry]
        for r in range(e.n_rules):
            rule = &e.rules[r]
            if rule.is_req:
                ok = False
                for g in range(rule.n_groups):
                    group = &rule.groups[g]
                    ok = True
                    for k in range(group.n):
                        if _find(elements, count, &group.pats[k], &elements[i]) < 0:
                            ok = False
                            break
                    if ok:
                        break
                if not ok:
                    f.kind = FAIL_REQUIRED
                    f.element = i
                    f.rule_entry = elements[i].entry
                    f.rule_index = r
                    return False
            else:
                for g in range(rule.n_groups):
                    hit = _find(elements, count, &rule.groups[g].pats[0], &elements[i])
                    if hit >= 0:
                        f.kind = FAIL_EXCLUDED
                        f.element = i
                        f.other = hit
                        return False
    return _check_digital_signature(elements, count, f)


cdef bint _check_digital_signature(Element* elements, int count, Failure* f) noexcept nogil:
    # GenSpecs: a digital signature (8030) signs a serialised key, so a key whose
    # serial component is optional (GDTI, GCN, GRAI) must carry it beside 8030.
    cdef int i, j, sig = -1
    cdef AIEntry* e
    for i in range(count):
        if elements[i].ai_len == 4 and memcmp(elements[i].ai, b"8030", 4) == 0:
            sig = i
            break
    if sig < 0:
        return True
    for i in range(count):
        e = &TABLE[elements[i].entry]
        if e.n_alts < 0 or e.n_components < 2 or not e.components[e.n_components - 1].optional:
            continue
        if elements[i].value_len <= e.min_len:
            f.kind = FAIL_DIGSIG_NEEDS_SERIAL
            f.element = i
            f.other = sig
            return False
    return True


cdef int validate_all(Element* elements, int count, bint associations, Failure* f) noexcept nogil:
    """Validate every value, then (optionally) the association rules; -1 with f filled on failure."""
    cdef int i
    for i in range(count):
        if validate_value(elements[i].entry, elements[i].value, elements[i].value_len, f) < 0:
            f.element = i
            return -1
    if associations and not check_associations(elements, count, f):
        return -1
    return 0


cdef bint is_primary_key(int entry) noexcept nogil:
    return entry >= 0 and TABLE[entry].n_alts >= 0


cdef bint valid_key_path(int* path, int count) noexcept nogil:
    """Is path[0] a primary key followed by an ordered subset of one of its qualifier lists?"""
    cdef AIEntry* key
    cdef int a, q, pos
    if count < 1 or not is_primary_key(path[0]):
        return False
    key = &TABLE[path[0]]
    if count == 1:
        return True
    for a in range(key.n_alts):
        pos = 1
        for q in range(key.alt_len[a]):
            if pos < count and key.alts[a][q] == path[pos]:
                pos += 1
        if pos == count:
            return True
    return False


cdef str _ai_text(Element* el):
    return (<bytes>el.ai[:el.ai_len]).decode("ascii")


cdef str _rule_text(int entry, int r):
    cdef Rule* rule = &TABLE[entry].rules[r]
    groups = []
    for g in range(rule.n_groups):
        pats = []
        for k in range(rule.groups[g].n):
            pats.append(f"({(<bytes>rule.groups[g].pats[k].s[:4]).rstrip(b'\0').decode()})")
        groups.append("+".join(pats))
    if len(groups) == 1:
        return groups[0]
    last = groups.pop()
    return ", ".join(groups) + " or " + last


cdef object failure_to_error(Failure* f, Element* elements, object text, Py_ssize_t base):
    """Turn a C-level Failure into a GS1Error naming the AI, position and reason."""
    cdef Element* el = &elements[f.element] if f.element >= 0 else NULL
    cdef AIEntry* entry
    ai = _ai_text(el) if el != NULL else None
    position = (el.position + f.offset) if el != NULL else None
    if f.kind == FAIL_TOO_SHORT:
        entry = &TABLE[el.entry]
        return GS1Error(f"the value is too short (at least {entry.min_len} characters)",
                        ai=ai, position=el.position, code="VALUE_TOO_SHORT")
    if f.kind == FAIL_TOO_LONG:
        entry = &TABLE[el.entry]
        return GS1Error(f"the value is too long (at most {entry.max_len} characters)",
                        ai=ai, position=el.position, code="VALUE_TOO_LONG")
    if f.kind == FAIL_EMPTY:
        return GS1Error("the value is empty", ai=ai, position=el.position, code="VALUE_EMPTY")
    if f.kind == FAIL_CARET:
        return GS1Error("'^' is not allowed in data (it stands for FNC1)", ai=ai,
                        position=position, code="ILLEGAL_CARET")
    if f.kind == FAIL_LINT:
        value = (<bytes>el.value[:el.value_len]).decode("ascii", "replace")
        bad = value[f.offset:f.offset + f.length]
        detail = f" ({bad!r} in {value!r})" if bad and bad != value else (f" ({value!r})" if value else "")
        return GS1Error(_linters.error_message(f.lint_error) + detail, ai=ai, position=position,
                        code=_linters.error_name(f.lint_error))
    if f.kind == FAIL_EXCLUDED:
        other = _ai_text(&elements[f.other])
        return GS1Error(f"AI ({ai}) cannot be used together with AI ({other})", ai=ai,
                        position=el.position, code="INVALID_PAIRING")
    if f.kind == FAIL_REQUIRED:
        return GS1Error(f"AI ({ai}) needs {_rule_text(f.rule_entry, f.rule_index)} to be present too",
                        ai=ai, position=el.position, code="REQUIRED_AI_MISSING")
    if f.kind == FAIL_REPEATED_DIFFERENT:
        return GS1Error(f"AI ({ai}) appears more than once with different values", ai=ai,
                        position=el.position, code="REPEATED_AI_DIFFERENT_VALUES")
    if f.kind == FAIL_DIGSIG_NEEDS_SERIAL:
        return GS1Error(f"AI ({ai}) must carry its serial component when used with AI (8030)",
                        ai=ai, position=el.position, code="DIGSIG_NEEDS_SERIAL")
    return GS1Error("invalid GS1 data", ai=ai, position=position)


def known_ais():
    """Every AI the dictionary defines, in dictionary order."""
    return tuple(<object>TABLE[i].ai_str for i in range(N_KNOWN))


def describe(str ai):
    """The dictionary's rules for one AI, as plain data (for docs, HRI and tools)."""
    cdef bytes raw = ai.encode("ascii", "replace")
    cdef int i = lookup_ai(raw, len(raw))
    if i < 0:
        raise GS1Error("unknown AI", ai=ai, code="UNKNOWN_AI")
    cdef AIEntry* e = &TABLE[i]
    spec = _ENTRIES[i]
    return {
        "ai": ai,
        "title": <object>e.title,
        "predefined_length": bool(e.predefined),
        "dl_attribute": e.dl_attr == DL_ATTR_YES,
        "min_length": e.min_len,
        "max_length": e.max_len,
        "components": spec.components,
        "requires": spec.requires,
        "excludes": spec.excludes,
        "primary_key": e.n_alts >= 0,
        "qualifiers": spec.dlpkey if spec.dlpkey and spec.dlpkey != ((),) else (),
    }


def validate(str ai, str value):
    """Validate one AI value on its own (format, character set, linters); raise GS1Error."""
    cdef bytes raw_ai = ai.encode("ascii", "replace")
    cdef int i = lookup_ai(raw_ai, len(raw_ai))
    if i < 0:
        raise GS1Error("unknown AI", ai=ai, code="UNKNOWN_AI")
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError as exc:
        raise GS1Error("a character outside GS1 character set 82", ai=ai,
                       position=len(ai) + 2 + exc.start, code="INVALID_CSET82_CHARACTER") from None
    cdef Element el
    cdef Failure f
    memset(&f, 0, sizeof(Failure))
    el.entry = i
    el.ai = raw_ai
    el.ai_len = len(raw_ai)
    el.value = raw
    el.value_len = len(raw)
    el.position = len(ai) + 2           # as in "(ai)value"
    f.element = 0
    cdef int bad = check_length(i, len(raw))
    if bad:
        f.kind = bad
        raise failure_to_error(&f, &el, None, 0)
    if validate_value(i, raw, len(raw), &f) < 0:
        raise failure_to_error(&f, &el, None, 0)
