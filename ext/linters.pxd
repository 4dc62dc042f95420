# C-level interface of the GS1 Syntax Dictionary linters (see linters.pyx).
#
# run_linter() validates one format component `s[0:n]` (ASCII bytes) with the
# linter numbered `linter_id` (see linter_id() in linters.pyx). It returns 0 when
# the value passes, otherwise an error code (an index into ERROR_NAMES) and sets
# err_pos/err_len to the offending span, as GS1's reference linters do.

cdef int run_linter(int linter_id, const unsigned char* s, Py_ssize_t n,
                    Py_ssize_t* err_pos, Py_ssize_t* err_len) noexcept nogil

# Numeric ids of the four character-set linters, used for every component.
cdef enum:
    LINTER_CSETNUMERIC = 1
    LINTER_CSET82 = 2
    LINTER_CSET39 = 3
    LINTER_CSET64 = 4
