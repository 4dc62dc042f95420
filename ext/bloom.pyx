# cython: language_level=3
"""A Bloom filter over Python hashes: "certainly absent" or "maybe present", in C.

The resolver keeps one of the units that have a record of their own. Most scanned units
never get one (they take their batch's state), so a scan whose unit is certainly absent
skips the store round trip; a false positive (about 0.2 % at 16 bits per key) only costs
the read it would have made anyway. Keys are hashed with Python's ``hash`` — per process,
which is all an in-process filter needs.

>>> f = BloomFilter.for_capacity(1000)
>>> f.add(("09506000134352", "A1"))
>>> ("09506000134352", "A1") in f, ("09506000134352", "B2") in f, len(f)
(True, False, 1)
>>> from array import array
>>> f.add_hashes(array("q", [hash(("09506000134352", "C3"))]))
>>> ("09506000134352", "C3") in f, len(f)
(True, 2)
"""

from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport calloc, free


cdef inline uint64_t _mix(uint64_t x) noexcept nogil:
    # splitmix64 finaliser: a second, independent-looking hash from the first
    x ^= x >> 30
    x *= 0xbf58476d1ce4e5b9ULL
    x ^= x >> 27
    x *= 0x94d049bb133111ebULL
    x ^= x >> 31
    return x


cdef class BloomFilter:
    cdef unsigned char* bits
    cdef readonly uint64_t size_bits
    cdef readonly int hashes
    cdef readonly Py_ssize_t count

    def __cinit__(self, uint64_t size_bits, int hashes=7):
        if size_bits < 64 or hashes < 1 or hashes > 32:
            raise ValueError("need at least 64 bits and 1-32 hash functions")
        self.size_bits = size_bits
        self.hashes = hashes
        self.count = 0
        self.bits = <unsigned char*>calloc((size_bits + 7) // 8, 1)
        if self.bits == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.bits)

    @classmethod
    def for_capacity(cls, Py_ssize_t keys, int bits_per_key=16):
        """Sized for ``keys`` entries (at least 1 Mibit): 16 bits per key, 7 hashes → ~0.2 % false positives."""
        return cls(max(1 << 20, keys * bits_per_key), 7)

    cdef inline void _set(self, uint64_t h) noexcept nogil:
        cdef uint64_t h2 = _mix(h) | 1
        cdef uint64_t i, bit
        for i in range(<uint64_t>self.hashes):
            bit = (h + i * h2) % self.size_bits
            self.bits[bit >> 3] |= <unsigned char>(1 << (bit & 7))

    cdef inline bint _get(self, uint64_t h) noexcept nogil:
        cdef uint64_t h2 = _mix(h) | 1
        cdef uint64_t i, bit
        for i in range(<uint64_t>self.hashes):
            bit = (h + i * h2) % self.size_bits
            if not (self.bits[bit >> 3] & (1 << (bit & 7))):
                return False
        return True

    def add(self, key):
        self._set(<uint64_t>hash(key))
        self.count += 1

    def add_hashes(self, const int64_t[:] hashes):
        """Add keys by their ``hash()`` values (an ``array('q')`` of them), without the GIL.

        A worker building the filter for millions of units keeps 8 bytes per key instead
        of the keys themselves, and can set the bits in a thread while its event loop
        keeps answering scans (the new filter is not shared until it is swapped in).
        """
        cdef Py_ssize_t i, n = hashes.shape[0]
        with nogil:
            for i in range(n):
                self._set(<uint64_t>hashes[i])
        self.count += n

    def __contains__(self, key):
        return self._get(<uint64_t>hash(key))

    def __len__(self):
        return self.count

    @property
    def load(self) -> float:
        """Keys per bit: rebuild bigger when it passes 1/16."""
        return self.count / <double>self.size_bits
