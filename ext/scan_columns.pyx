# cython: language_level=3, boundscheck=False, wraparound=False
"""Stored scan chunks (msgpack) straight into Arrow column buffers, for the analytics export.

A chunk is a msgpack array of rows ``[at_ms, serial, lot, role, link_type, state, context,
country?]`` (twin.scans.pack_chunks). Unpacking it into Python tuples and handing those to
``pyarrow.array`` costs ~1.5 µs a row, most of the export's time; reading the msgpack bytes
once, here, and writing each column's offsets, bytes and validity bits directly costs a few
nanoseconds a field. Anything that is not such a chunk raises ValueError.

>>> import msgpack
>>> n, ts, cols = decode_chunk(msgpack.packb([[5, "S1", None, "consumer", None, "sold", None, "DE"]]))
>>> n, len(ts), len(cols), bytes(cols[0][1]), bytes(cols[6][1]), cols[1][3]
(1, 8, 7, b'S1', b'DE', 1)
"""

from libc.stdint cimport int64_t, int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

cdef enum:
    NCOLS = 7  # string columns after at_ms: serial, lot, role, link_type, state, context, country


cdef class _Reader:
    cdef const uint8_t* p
    cdef Py_ssize_t pos
    cdef Py_ssize_t end

    cdef inline uint8_t byte(self) except? 0:
        if self.pos >= self.end:
            raise ValueError("truncated chunk")
        self.pos += 1
        return self.p[self.pos - 1]

    cdef inline uint64_t be(self, int width) except? 0:
        cdef uint64_t v = 0
        cdef int i
        if self.pos + width > self.end:
            raise ValueError("truncated chunk")
        for i in range(width):
            v = (v << 8) | self.p[self.pos + i]
        self.pos += width
        return v

    cdef Py_ssize_t array_len(self) except -1:
        cdef uint8_t b = self.byte()
        if 0x90 <= b <= 0x9f:
            return b & 0x0f
        if b == 0xdc:
            return <Py_ssize_t>self.be(2)
        if b == 0xdd:
            return <Py_ssize_t>self.be(4)
        raise ValueError("expected an array")

    cdef int64_t integer(self) except? -1:
        cdef uint8_t b = self.byte()
        if b <= 0x7f:
            return b
        if b == 0xcc:
            return <int64_t>self.be(1)
        if b == 0xcd:
            return <int64_t>self.be(2)
        if b == 0xce:
            return <int64_t>self.be(4)
        if b == 0xcf:
            return <int64_t>self.be(8)
        if b == 0xd3:
            return <int64_t>self.be(8)
        if b == 0xd2:
            return <int64_t><int32_t>self.be(4)
        if b == 0xd1:
            return <int64_t>(<short>self.be(2))
        if b == 0xd0:
            return <int64_t>(<signed char>self.be(1))
        if b >= 0xe0:
            return <int64_t>(<signed char>b)
        raise ValueError("expected an integer time")

    cdef Py_ssize_t string(self) except -2:
        """Length of the string at the cursor (cursor moved to its bytes), or -1 for nil."""
        cdef uint8_t b = self.byte()
        if b == 0xc0:
            return -1
        if 0xa0 <= b <= 0xbf:
            return b & 0x1f
        if b == 0xd9:
            return <Py_ssize_t>self.be(1)
        if b == 0xda:
            return <Py_ssize_t>self.be(2)
        if b == 0xdb:
            return <Py_ssize_t>self.be(4)
        raise ValueError("expected a string or nil")


def decode_chunk(const uint8_t[::1] blob):
    """``(rows, ts, columns)``: ``ts`` the int64 times (native order), ``columns`` seven
    ``(offsets, data, validity, null_count)`` buffers for Arrow's StringArray.from_buffers."""
    cdef _Reader r = _Reader()
    r.p = &blob[0] if blob.shape[0] else NULL
    r.pos = 0
    r.end = blob.shape[0]
    cdef Py_ssize_t n = r.array_len()
    cdef bytearray ts = bytearray(8 * n)
    cdef int64_t* tsp = <int64_t*><char*>ts
    offsets = [bytearray(4 * (n + 1)) for _ in range(NCOLS)]
    data = [bytearray(r.end) for _ in range(NCOLS)]
    valid = [bytearray((n + 7) // 8) for _ in range(NCOLS)]
    cdef int32_t* offp[NCOLS]
    cdef char* datap[NCOLS]
    cdef uint8_t* validp[NCOLS]
    cdef int32_t used[NCOLS]
    cdef Py_ssize_t nulls[NCOLS]
    cdef int c
    for c in range(NCOLS):
        offp[c] = <int32_t*><char*>offsets[c]
        datap[c] = <char*>data[c]
        validp[c] = <uint8_t*><char*>valid[c]
        used[c] = 0
        nulls[c] = 0
        offp[c][0] = 0
    cdef Py_ssize_t i, width, length
    for i in range(n):
        width = r.array_len()
        if width != 7 and width != 8:
            raise ValueError("expected rows of 7 or 8 values")
        tsp[i] = r.integer()
        for c in range(NCOLS):
            if c < width - 1:
                length = r.string()
            else:
                length = -1  # a row written before scans carried a country
            if length < 0:
                nulls[c] += 1
            else:
                if r.pos + length > r.end:
                    raise ValueError("truncated chunk")
                memcpy(datap[c] + used[c], r.p + r.pos, length)
                r.pos += length
                used[c] += <int32_t>length
                validp[c][i >> 3] |= <uint8_t>(1 << (i & 7))
            offp[c][i + 1] = used[c]
    if r.pos != r.end:
        raise ValueError("bytes after the chunk")
    # buffers handed over as they are (Arrow wraps them without a copy)
    columns = [(offsets[c], memoryview(data[c])[:used[c]], valid[c], nulls[c]) for c in range(NCOLS)]
    return n, ts, columns
