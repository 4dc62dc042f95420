# C-level view of the GS1 Application Identifier table (see ai.pyx).
#
# The table is built once at import from the generated ext/ai_table.py (itself
# generated from the Syntax Dictionary at build time), so every rule the parsers
# enforce comes from the dictionary, not from per-AI code.

from cpython.object cimport PyObject

cdef enum:
    MAX_COMPONENTS = 6
    MAX_LINTERS = 4
    MAX_PATTERNS = 4
    MAX_ALTS = 4
    MAX_QUALS = 4
    MAX_ELEMENTS = 64

cdef enum:
    CSET_N = 1
    CSET_X = 2
    CSET_Y = 3
    CSET_Z = 4

# dl_attr values
cdef enum:
    DL_ATTR_NO = 0
    DL_ATTR_YES = 1
    DL_ATTR_UNKNOWN_AI = 2

cdef struct Component:
    unsigned char cset
    unsigned char min_len
    unsigned char max_len
    unsigned char optional
    unsigned char n_linters
    unsigned char linters[MAX_LINTERS]

cdef struct Pattern:
    char s[4]
    unsigned char n            # digits that must match (the "nn" wildcards are not counted)

cdef struct Group:                 # all patterns of a group must be present ("01+21")
    unsigned char n
    Pattern pats[MAX_PATTERNS]

cdef struct Rule:                  # one req= (any group satisfies it) or the ex= list
    unsigned char is_req
    unsigned short n_groups
    Group* groups

cdef struct AIEntry:
    char ai[5]
    unsigned char ai_len
    unsigned char predefined       # no FNC1 separator needed after it
    unsigned char dl_attr          # DL_ATTR_*
    unsigned char n_components
    unsigned short min_len
    unsigned short max_len
    Component components[MAX_COMPONENTS]
    unsigned short n_rules
    Rule* rules
    signed char n_alts             # -1: not a DL primary key
    unsigned char alt_len[MAX_ALTS]
    short alts[MAX_ALTS][MAX_QUALS]
    PyObject* ai_str               # interned Python str of the AI
    PyObject* title

# One AI occurrence in a message being validated.
cdef struct Element:
    int entry
    const unsigned char* ai        # the AI digits as given (unknown AIs keep their own)
    unsigned char ai_len
    const unsigned char* value     # decoded value
    Py_ssize_t value_len
    Py_ssize_t position            # where the value starts in the input (for errors)

# A validation failure, turned into ext.errors.GS1Error by the caller.
cdef struct Failure:
    int kind                       # FAIL_* below
    int element                    # index into the element array, or -1
    int other                      # second element (pairings), or -1
    int lint_error                 # linter error code for FAIL_LINT
    Py_ssize_t offset              # offset of the problem inside the value
    Py_ssize_t length
    int rule_entry                 # entry whose req= failed
    int rule_index

cdef enum:
    FAIL_NONE = 0
    FAIL_TOO_SHORT = 1
    FAIL_TOO_LONG = 2
    FAIL_LINT = 3
    FAIL_CARET = 4
    FAIL_EXCLUDED = 5
    FAIL_REQUIRED = 6
    FAIL_REPEATED_DIFFERENT = 7
    FAIL_DIGSIG_NEEDS_SERIAL = 8
    FAIL_EMPTY = 9

cdef AIEntry* TABLE
cdef int N_ENTRIES
cdef unsigned char AI_LEN_BY_PREFIX[100]

cdef int lookup_ai(const unsigned char* s, Py_ssize_t n) noexcept nogil
cdef int lookup_ai_prefix(const unsigned char* s, Py_ssize_t n) noexcept nogil
cdef int vivify_unknown_ai(const unsigned char* s, Py_ssize_t n, bint exact) noexcept nogil
cdef int check_length(int entry, Py_ssize_t n) noexcept nogil
cdef Py_ssize_t validate_value(int entry, const unsigned char* v, Py_ssize_t n, Failure* f) noexcept nogil
cdef bint check_associations(Element* elements, int count, Failure* f) noexcept nogil
cdef int validate_all(Element* elements, int count, bint associations, Failure* f) noexcept nogil
cdef bint is_primary_key(int entry) noexcept nogil
cdef bint valid_key_path(int* path, int count) noexcept nogil
cdef object failure_to_error(Failure* f, Element* elements, object text, Py_ssize_t base)
