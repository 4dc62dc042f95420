# cython: language_level=3
"""GS1 Syntax Dictionary linters (component validators), in Cython.

Each linter checks one format component of an AI value and, on failure, names
the GS1 error code and the offending span, exactly like GS1's reference
linters (their unit tests are the vectors in gs1-syntax-dictionary-linters.jsonl).

>>> lint("csum", "09506000134352")
(None, 0, 0)
>>> lint("csum", "09506000134353")
('INCORRECT_CHECK_DIGIT', 13, 1)
"""

# NOTE: work in progress — the character-set and check-digit linters are here;
# the remaining dictionary linters are being added (tracked in issue 2).

ERROR_NAMES = (
    "OK",
    "NON_DIGIT_CHARACTER",
    "INVALID_CSET82_CHARACTER",
    "INVALID_CSET39_CHARACTER",
    "INVALID_CSET64_CHARACTER",
    "INVALID_CSET64_PADDING",
    "TOO_SHORT_FOR_CHECK_DIGIT",
    "INCORRECT_CHECK_DIGIT",
)

ERROR_MESSAGES = (
    "ok",
    "a non-digit character where only digits are allowed",
    "a character outside GS1 character set 82",
    "a character outside GS1 character set 39",
    "a character outside GS1 character set 64 (base64url)",
    "misplaced '=' padding in a character set 64 value",
    "too short to carry a check digit",
    "the check digit is wrong",
)

LINTERS = ("", "csetnumeric", "cset82", "cset39", "cset64", "csum")
_IDS = {name: i for i, name in enumerate(LINTERS) if name}

cdef enum:
    E_OK = 0
    E_NON_DIGIT = 1
    E_CSET82 = 2
    E_CSET39 = 3
    E_CSET64 = 4
    E_CSET64_PADDING = 5
    E_TOO_SHORT_CSUM = 6
    E_CSUM = 7

cdef enum:
    LINTER_CSUM = 5

# 256-entry membership tables, filled once at import
cdef unsigned char CSET82[256]
cdef unsigned char CSET39[256]
cdef unsigned char CSET64[256]


cdef void _fill(unsigned char* table, bytes chars):
    cdef Py_ssize_t i
    for i in range(256):
        table[i] = 0
    for i in range(len(chars)):
        table[<unsigned char>chars[i]] = 1


_fill(CSET82, b"!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
_fill(CSET39, b"#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_fill(CSET64, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


cdef inline int _digits(const unsigned char* s, Py_ssize_t n, Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] < 48 or s[i] > 57:
            pos[0] = i
            ln[0] = 1
            return E_NON_DIGIT
    return E_OK


cdef inline int _in_table(const unsigned char* table, int err, const unsigned char* s, Py_ssize_t n,
                          Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not table[s[i]]:
            pos[0] = i
            ln[0] = 1
            return err
    return E_OK


cdef int _cset64(const unsigned char* s, Py_ssize_t n, Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # base64url; '=' only as final padding, at most two, total length a multiple of 3
    cdef Py_ssize_t i, end = n
    while end > 0 and s[end - 1] == 61:
        end -= 1
    for i in range(end):
        if not CSET64[s[i]]:
            pos[0] = i
            ln[0] = 1
            return E_CSET64
    if end < n:
        if n - end > 2 or n % 3 != 0:
            pos[0] = end
            ln[0] = n - end
            return E_CSET64_PADDING
    return E_OK


cdef int _csum(const unsigned char* s, Py_ssize_t n, Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef Py_ssize_t i
    cdef int total = 0, weight = 3
    cdef int err = _digits(s, n, pos, ln)
    if err:
        return err
    if n < 2:
        pos[0] = 0
        ln[0] = n
        return E_TOO_SHORT_CSUM
    for i in range(n - 2, -1, -1):
        total += (s[i] - 48) * weight
        weight = 4 - weight
    if (10 - total % 10) % 10 != s[n - 1] - 48:
        pos[0] = n - 1
        ln[0] = 1
        return E_CSUM
    return E_OK


cdef int run_linter(int linter_id, const unsigned char* s, Py_ssize_t n,
                    Py_ssize_t* err_pos, Py_ssize_t* err_len) noexcept nogil:
    err_pos[0] = 0
    err_len[0] = 0
    if linter_id == LINTER_CSETNUMERIC:
        return _digits(s, n, err_pos, err_len)
    if linter_id == LINTER_CSET82:
        return _in_table(CSET82, E_CSET82, s, n, err_pos, err_len)
    if linter_id == LINTER_CSET39:
        return _in_table(CSET39, E_CSET39, s, n, err_pos, err_len)
    if linter_id == LINTER_CSET64:
        return _cset64(s, n, err_pos, err_len)
    if linter_id == LINTER_CSUM:
        return _csum(s, n, err_pos, err_len)
    return E_OK


def linter_id(str name) -> int:
    """Number of the linter called `name` in the Syntax Dictionary (KeyError if unknown)."""
    return _IDS[name]


def lint(str name, str value):
    """Run one linter on `value`: (error code name or None, error position, error length)."""
    cdef bytes raw = value.encode("latin-1", "replace")
    cdef Py_ssize_t pos = 0, ln = 0
    cdef int err = run_linter(_IDS[name], raw, len(raw), &pos, &ln)
    if err == E_OK:
        return (None, 0, 0)
    return (ERROR_NAMES[err], pos, ln)


def error_name(int code) -> str:
    return ERROR_NAMES[code]


def error_message(int code) -> str:
    """The reason in plain words, for error messages shown to people."""
    return ERROR_MESSAGES[code]
