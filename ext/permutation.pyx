# cython: language_level=3
"""Serials as a keyed permutation of a durable counter (issue 5).

A batch reserves a counter range; each counter is turned into a serial by a keyed, format-
preserving permutation of the profile's serial space. Serials look random, are unique by
construction (a bijection: no per-serial storage, no uniqueness lookup) and are verified later
by inverting the permutation: a scanned serial either decodes to the counter that minted it,
which the store maps to its batch, or is not a serial of the profile at all.

>>> from ext.permutation import SerialPermutation
>>> safe = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
>>> p = SerialPermutation(b"sixteen byte key", safe, 12, tweak=b"09506000134352")
>>> p.encode(0), p.encode(1)
('S54NMTUX35LD', 'HMUEHJB22C31')
>>> p.decode("S54NMTUX35LD"), p.decode("HMUEHJB22C31")
(0, 1)
>>> p.decode("IOIOIOIOIOIO") is None       # I and O are not in the alphabet
True
>>> p.space == 34 ** 12
True
>>> SerialPermutation.sequential("0123456789", 6).encode(42)
'000042'

Design
------
*Domain.* A profile's serials are the strings of ``length`` characters from ``alphabet``
(radix A = len(alphabet)), optionally behind a fixed ``prefix``, whose body read as a radix-A
numeral (alphabet[0] is digit 0) lies in ``[low, high)``. A "no leading zero" rule is
``low = A**(L-1)``; an SGTIN-96 cap is ``high = 2**38``. The permutation acts on the counters
``[0, N)`` with ``N = high - low`` and the serial is ``numeral(low + P(counter))``.

*Feistel network, in the spirit of NIST SP 800-38G FF1.* ``[0, N)`` is embedded in
``Z_a x Z_b`` with ``b = ceil(sqrt(N))``, ``a = ceil(N / b)`` (so ``a <= b`` and
``a*b - N < b``); ``x = l*b + r``. Each round adds a keyed PRF of one half to the other half
modulo that half's size and swaps them, alternating the moduli exactly as FF1 alternates
``radix**u`` and ``radix**v``; FF1 is the special case ``a = A**u, b = A**v``. The default is
10 rounds (FF1's number); fewer than 8 are refused, and the count must be even so the halves
end in the order they started. Decryption runs the rounds backwards with modular subtraction.

*Cycle walking.* When ``a*b > N`` the network permutes a slightly larger set; a value that
lands outside ``[0, N)`` is encrypted again until it lands inside (Black & Rogaway, "Ciphers
with arbitrary finite domains", 2002). Decryption walks the same cycle backwards, so both stay
exact inverses. Because ``a*b - N < b ~ sqrt(N)``, the expected number of extra passes is below
``1/sqrt(N)``: essentially never for real profiles, and always for some counters of the tiny
domains the tests enumerate.

*Round function.* ``F_i(half) = SipHash-2-4(k_i, half as 8 little-endian bytes)``, written
here in C, nogil. The ten 128-bit round keys ``k_i`` are derived once per permutation with
HKDF-SHA256 (RFC 5869) from the master key (>= 16 bytes, any length), binding the tweak (the
GTIN, so one key can serve many GTINs with independent permutations) and every domain parameter
(alphabet, length, prefix, low, high, rounds): two profiles under the same key and GTIN are
independent permutations, as FF1's tweak and its P block achieve. The PRF output is mapped to
``[0, m)`` by a multiply-high (``floor(h*m / 2**w)``), which has the same bias as ``h mod m``:
at most ``m / 2**w``. Following FF1's rule of 32 spare bits, halves up to 2**32 use the 64-bit
SipHash output (bias <= 2**-32) and larger halves the 128-bit SipHash output (bias <= 2**-64).

*128-bit arithmetic.* 82**20 (CSET 82, 20 characters) is just under 2**127.2 and 34**20 already
exceeds 2**64, so whole values are ``unsigned __int128`` (a gcc/clang extension on 64-bit
targets; MSVC is not supported). The halves are below ``sqrt(2**127.2) < 2**64`` and so are plain
``uint64_t``: the round function never touches 128-bit values. Splitting a counter into halves
and the numeral conversion use 64-bit instructions whenever the value fits in 64 bits, which
is the case for every space below 2**64 (e.g. the default 34**12 ~ 2**61); only longer serials
pay for a 128-by-64 division per serial.

*Sequential profiles* use the same class with zero rounds: the identity, i.e. the counter
written as a zero-padded numeral (offset by ``low``), so the serialiser treats both alike.

Security argument and its limits
--------------------------------
EU 2016/161 Art. 4(c) asks that the probability of guessing a serial be negligible and in any
case below 1/10,000. Read as industry does (issued / space per GTIN), the guess ratio rule in
``serializer.profiles.check_guessability`` bounds the chance that a uniformly random string of
the profile's format is an issued serial. That bound holds for an adversary who cannot predict
the permutation better than a random one. If the round function is a PRF, a Feistel network
with >= 8 rounds is a strong pseudorandom permutation (Luby-Rackoff, Patarin), so from
issued serials an attacker learns nothing usable about unissued ones beyond a negligible
advantage; cycle walking preserves this (Black-Rogaway). SipHash-2-4 is designed and analysed as
a PRF for short inputs under a 128-bit key. The limits:

* This is **not** a certified FF1 implementation and has no NIST test vectors: FF1 uses AES
  (CBC-MAC) as its PRF and a numeral-string split; here SipHash is the PRF and the split is on
  integers. Where a supplier audit requires "NIST FF1", that is a different implementation.
* The security rests entirely on the key. A leaked key makes every serial computable, as bad
  as sequential serials: keep it in a KMS/HSM and never log it. Rotating a key re-maps the whole
  space, so a key must not be rotated under a range that has issued serials.
* Feistel bounds weaken on small domains (birthday-type attacks around ``sqrt(N)`` queries on
  each half, and the known message-recovery attacks on FF1/FF3 for tiny domains). NIST requires
  ``radix**minlen >= 10**6``; the profiles enforce a space of at least 10**6 for randomised
  serials, and the 1/10,000 ratio keeps issued counts far below ``N``.
* The guess ratio is about blind guessing of a valid serial. It says nothing about copying a
  real serial off a pack (cloning); that is for the verification system's scan history.
* Consecutive counters give unrelated serials, but the counter itself (recoverable only with
  the key) is sequential: the store must not expose counters to consumers.
* The mapping must never change for issued serials: a change to this module's derivation or
  round function would orphan every serial already printed. The HKDF label carries a version
  ("v1") for that reason.
"""

import hashlib
import hmac
import math
import operator

from cpython.unicode cimport PyUnicode_1BYTE_DATA
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy, memset

cdef extern from *:
    """
    #include <stdint.h>
    typedef unsigned __int128 sl_u128;

    #define SL_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
    #define SL_SIPROUND                                                          \\
        do {                                                                     \\
            v0 += v1; v1 = SL_ROTL(v1, 13); v1 ^= v0; v0 = SL_ROTL(v0, 32);      \\
            v2 += v3; v3 = SL_ROTL(v3, 16); v3 ^= v2;                            \\
            v0 += v3; v3 = SL_ROTL(v3, 21); v3 ^= v0;                            \\
            v2 += v1; v1 = SL_ROTL(v1, 17); v1 ^= v2; v2 = SL_ROTL(v2, 32);      \\
        } while (0)

    /* SipHash-2-4 (Aumasson & Bernstein, 2012) of one 8-byte message m (read little-endian),
       key (k0, k1) as two little-endian words. Returns the 64-bit tag; when hi is not NULL,
       computes the 128-bit variant instead and stores its second word in *hi. */
    static inline uint64_t sl_siphash24(uint64_t k0, uint64_t k1, uint64_t m, uint64_t *hi) {
        uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
        uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
        uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
        uint64_t v3 = k1 ^ 0x7465646279746573ULL;
        const uint64_t last = ((uint64_t)8) << 56;   /* message length 8, no tail bytes */
        uint64_t lo;
        if (hi) v1 ^= 0xee;
        v3 ^= m; SL_SIPROUND; SL_SIPROUND; v0 ^= m;
        v3 ^= last; SL_SIPROUND; SL_SIPROUND; v0 ^= last;
        v2 ^= hi ? 0xee : 0xff;
        SL_SIPROUND; SL_SIPROUND; SL_SIPROUND; SL_SIPROUND;
        lo = v0 ^ v1 ^ v2 ^ v3;
        if (hi) {
            v1 ^= 0xdd;
            SL_SIPROUND; SL_SIPROUND; SL_SIPROUND; SL_SIPROUND;
            *hi = v0 ^ v1 ^ v2 ^ v3;
        }
        return lo;
    }
    """
    # Declared to Cython as a 64-bit type, but it is unsigned __int128 in C. Cython only ever
    # passes it through C expressions; conversions to and from Python ints are written by hand
    # (_to_u128 / _from_u128), never left to Cython.
    ctypedef unsigned long long sl_u128
    uint64_t sl_siphash24(uint64_t k0, uint64_t k1, uint64_t m, uint64_t* hi) noexcept nogil

ctypedef sl_u128 u128

cdef enum:
    MAX_LENGTH = 20
    MAX_RADIX = 82
    MAX_ROUNDS = 32

MIN_ROUNDS = 8
DEFAULT_ROUNDS = 10
_KDF_LABEL = b"serialink/serial-permutation/v1"
_U64_MAX = (1 << 64) - 1


cdef struct Codec:
    # the serial's shape
    int radix
    int length            # whole serial, prefix included
    int prefix_len
    int body_len
    uint8_t prefix[MAX_LENGTH]
    uint8_t alphabet[MAX_RADIX]
    uint8_t digit_of[256]  # character -> digit, 0xFF outside the alphabet
    u128 low               # body numeral range [low, high)
    u128 high
    u128 n                 # high - low: the number of serials (the space)
    int chunk_digits       # the largest k with radix**k < 2**64
    uint64_t chunk         # radix**chunk_digits
    # the permutation
    int rounds             # 0: identity (sequential profiles)
    uint64_t a             # left half modulus
    uint64_t b             # right half modulus; a*b >= n
    bint wide_prf          # a or b above 2**32: use the 128-bit PRF output
    uint64_t keys[2 * MAX_ROUNDS]


# ---------------------------------------------------------------------------------------------
# The Feistel network (all nogil, no Python objects)

cdef inline uint64_t _prf(const Codec* c, int i, uint64_t half, uint64_t m) noexcept nogil:
    """Round i's PRF of a half, mapped to [0, m) by a multiply-high."""
    cdef uint64_t hi
    cdef uint64_t lo
    cdef u128 t
    if c.wide_prf:
        lo = sl_siphash24(c.keys[2 * i], c.keys[2 * i + 1], half, &hi)
        # floor((hi*2**64 + lo) * m / 2**128), exact
        t = (<u128>lo * m) >> 64
        t = <u128>hi * m + t
        return <uint64_t>(t >> 64)
    lo = sl_siphash24(c.keys[2 * i], c.keys[2 * i + 1], half, NULL)
    return <uint64_t>((<u128>lo * m) >> 64)


cdef inline uint64_t _addmod(uint64_t x, uint64_t y, uint64_t m) noexcept nogil:
    # x, y < m <= 2**64 - 1; x + y may wrap around 2**64
    cdef uint64_t s = x + y
    if s < x or s >= m:
        s -= m
    return s


cdef inline uint64_t _submod(uint64_t x, uint64_t y, uint64_t m) noexcept nogil:
    # x, y < m; unsigned wrap-around makes x - y + m exact modulo 2**64
    if x >= y:
        return x - y
    return x - y + m


cdef inline void _split(const Codec* c, u128 x, uint64_t* l, uint64_t* r) noexcept nogil:
    cdef uint64_t x64
    if (x >> 64) == 0:
        x64 = <uint64_t>x
        l[0] = x64 // c.b
        r[0] = x64 % c.b
    else:
        l[0] = <uint64_t>(x // c.b)
        r[0] = <uint64_t>(x % c.b)


cdef inline u128 _feistel_encrypt(const Codec* c, uint64_t l, uint64_t r) noexcept nogil:
    cdef int i
    cdef uint64_t m, t
    for i in range(c.rounds):
        m = c.a if (i & 1) == 0 else c.b
        t = _addmod(l, _prf(c, i, r, m), m)
        l = r
        r = t
    return <u128>l * c.b + r


cdef inline u128 _feistel_decrypt(const Codec* c, uint64_t l, uint64_t r) noexcept nogil:
    cdef int i
    cdef uint64_t m, t
    for i in range(c.rounds - 1, -1, -1):
        m = c.a if (i & 1) == 0 else c.b
        t = _submod(r, _prf(c, i, l, m), m)
        r = l
        l = t
    return <u128>l * c.b + r


cdef inline u128 _forward(const Codec* c, u128 x) noexcept nogil:
    """The permutation of [0, n): Feistel, cycle-walked back into the domain."""
    cdef uint64_t l, r
    if c.rounds == 0:
        return x
    _split(c, x, &l, &r)
    x = _feistel_encrypt(c, l, r)
    while x >= c.n:
        _split(c, x, &l, &r)
        x = _feistel_encrypt(c, l, r)
    return x


cdef inline u128 _backward(const Codec* c, u128 y) noexcept nogil:
    cdef uint64_t l, r
    if c.rounds == 0:
        return y
    _split(c, y, &l, &r)
    y = _feistel_decrypt(c, l, r)
    while y >= c.n:
        _split(c, y, &l, &r)
        y = _feistel_decrypt(c, l, r)
    return y


# ---------------------------------------------------------------------------------------------
# Numerals

cdef inline void _digits64(const Codec* c, uint64_t v, uint8_t* out, int count) noexcept nogil:
    """Write v as `count` radix digits, most significant first, zero-padded."""
    cdef int j
    cdef uint64_t q
    cdef uint64_t radix = <uint64_t>c.radix
    for j in range(count - 1, -1, -1):
        q = v // radix
        out[j] = c.alphabet[v - q * radix]
        v = q


cdef inline void _write_body(const Codec* c, u128 v, uint8_t* out) noexcept nogil:
    cdef u128 q
    cdef int k
    if (v >> 64) == 0:
        _digits64(c, <uint64_t>v, out, c.body_len)
    else:
        # one 128-by-64 division, then two 64-bit digit runs
        k = c.chunk_digits
        q = v // c.chunk
        _digits64(c, <uint64_t>(v - q * c.chunk), out + c.body_len - k, k)
        _digits64(c, <uint64_t>q, out, c.body_len - k)


cdef inline void _write_serial(const Codec* c, u128 counter, uint8_t* out) noexcept nogil:
    if c.prefix_len:
        memcpy(out, c.prefix, c.prefix_len)
    _write_body(c, c.low + _forward(c, counter), out + c.prefix_len)


cdef inline bint _read_serial(const Codec* c, const uint8_t* s, u128* counter) noexcept nogil:
    """The counter of serial s (exactly c.length bytes); False if s is not a serial."""
    cdef int j
    cdef uint8_t d
    cdef u128 v = 0
    for j in range(c.prefix_len):
        if s[j] != c.prefix[j]:
            return False
    for j in range(c.prefix_len, c.length):
        d = c.digit_of[s[j]]
        if d == 0xFF:
            return False
        v = v * <uint64_t>c.radix + d
    if v < c.low or v >= c.high:
        return False
    counter[0] = _backward(c, v - c.low)
    return True


# ---------------------------------------------------------------------------------------------
# Python <-> 128-bit

cdef inline u128 _to_u128(object value):
    cdef uint64_t lo = value & _U64_MAX
    cdef uint64_t hi = value >> 64
    return (<u128>hi << 64) | lo


cdef inline object _from_u128(u128 value):
    cdef uint64_t hi = <uint64_t>(value >> 64)
    cdef uint64_t lo = <uint64_t>value
    if hi == 0:
        return lo
    return (<object>hi << 64) | lo


def _hkdf_sha256(key: bytes, info: bytes, size: int) -> bytes:
    """RFC 5869 HKDF-Extract-then-Expand, salt = the versioned label."""
    prk = hmac.new(_KDF_LABEL, key, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < size:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:size]


def _field(value: bytes) -> bytes:
    """Length-prefixed, so that no two parameter lists encode alike."""
    return len(value).to_bytes(2, "big") + value


def siphash24(key: bytes, block: int, wide: bool = False) -> int:
    """SipHash-2-4 of one 8-byte message (`block`, little-endian) under a 16-byte key: the
    round function's PRF, exposed for known-answer tests against the reference vectors.
    With wide=True, the 128-bit variant (its tag read as a little-endian integer)."""
    if len(key) != 16:
        raise ValueError("SipHash takes a 16-byte key")
    cdef uint64_t k0 = int.from_bytes(key[:8], "little")
    cdef uint64_t k1 = int.from_bytes(key[8:], "little")
    cdef uint64_t m = block
    cdef uint64_t hi = 0
    cdef uint64_t lo
    if wide:
        lo = sl_siphash24(k0, k1, m, &hi)
        return (<object>hi << 64) | lo
    return sl_siphash24(k0, k1, m, NULL)


cdef class SerialPermutation:
    """A bijection between counters [0, space) and the serials of one profile.

    SerialPermutation(key, alphabet, length, *, tweak=b"", low=0, high=None, prefix="",
    rounds=10) is randomised (a keyed Feistel network); SerialPermutation.sequential(...)
    is the identity over the same serial format. `low`/`high` bound the serial body read as
    a radix-len(alphabet) numeral (default: every string of the length); `prefix` is a fixed
    leading part counted in `length`.
    """

    cdef Codec c
    cdef readonly str alphabet
    cdef readonly int length
    cdef readonly str prefix
    cdef readonly object space
    cdef readonly object low
    cdef readonly object high
    cdef readonly int rounds
    cdef readonly bytes tweak

    def __init__(self, key, str alphabet, int length, *, tweak=b"", low=0, high=None,
                 str prefix="", int rounds=DEFAULT_ROUNDS):
        self._set_format(alphabet, length, prefix, low, high)
        if isinstance(tweak, str):
            tweak = tweak.encode("ascii")
        self.tweak = bytes(tweak)
        if key is None:
            if rounds != 0:
                raise ValueError("a randomised permutation needs a key; use "
                                 "SerialPermutation.sequential() for sequential serials")
        else:
            key = bytes(key)
            if len(key) < 16:
                raise ValueError(f"the key must have at least 16 bytes (128 bits), not {len(key)}")
            if rounds < MIN_ROUNDS or rounds > MAX_ROUNDS or rounds % 2:
                raise ValueError(f"rounds must be even and between {MIN_ROUNDS} and {MAX_ROUNDS}, "
                                 f"not {rounds}")
        self.rounds = rounds
        self.c.rounds = rounds
        if rounds:
            self._set_keys(key)

    @classmethod
    def sequential(cls, str alphabet, int length, *, low=0, high=None, str prefix=""):
        """The identity: counter c is the numeral low + c, zero-padded to the length."""
        return cls(None, alphabet, length, low=low, high=high, prefix=prefix, rounds=0)

    cdef _set_format(self, str alphabet, int length, str prefix, low, high):
        if not (2 <= len(alphabet) <= MAX_RADIX):
            raise ValueError(f"the alphabet must have 2 to {MAX_RADIX} characters, "
                             f"not {len(alphabet)}")
        if not (alphabet.isascii() and alphabet.isprintable()) or " " in alphabet:
            raise ValueError("the alphabet must be printable ASCII without spaces")
        if len(set(alphabet)) != len(alphabet):
            raise ValueError(f"the alphabet repeats a character: {alphabet!r}")
        if not (prefix.isascii() and prefix.isprintable()) or " " in prefix:
            raise ValueError("the prefix must be printable ASCII without spaces")
        if not (1 <= length <= MAX_LENGTH):
            raise ValueError(f"the length must be 1 to {MAX_LENGTH}, not {length}")
        if len(prefix) >= length:
            raise ValueError(f"the prefix {prefix!r} leaves no room in {length} characters")
        radix = len(alphabet)
        body_len = length - len(prefix)
        full = radix ** body_len
        high = full if high is None else int(high)
        low = int(low)
        if not (0 <= low < high <= full):
            raise ValueError(f"the numeral range [{low}, {high}) is empty or outside "
                             f"[0, {radix}**{body_len})")
        self.alphabet, self.length, self.prefix = alphabet, length, prefix
        self.low, self.high, self.space = low, high, high - low

        cdef Codec* c = &self.c
        memset(c, 0, sizeof(Codec))
        c.radix, c.length, c.prefix_len, c.body_len = radix, length, len(prefix), body_len
        raw = alphabet.encode("ascii")
        memset(c.digit_of, 0xFF, 256)
        for d in range(radix):
            c.alphabet[d] = raw[d]
            c.digit_of[raw[d]] = d
        raw = prefix.encode("ascii")
        for j in range(len(raw)):
            c.prefix[j] = raw[j]
        c.low, c.high, c.n = _to_u128(low), _to_u128(high), _to_u128(high - low)
        k = 1
        while radix ** (k + 1) <= _U64_MAX:
            k += 1
        c.chunk_digits, c.chunk = k, radix ** k
        # near-square halves: b = ceil(sqrt(n)), a = ceil(n / b); both < 2**64 since n < 2**128
        n = high - low
        b = math.isqrt(n - 1) + 1 if n > 1 else 1
        a = -(-n // b)
        c.a, c.b = a, b
        c.wide_prf = b > (1 << 32)

    cdef _set_keys(self, bytes key):
        info = b"".join(_field(x) for x in (
            self.alphabet.encode("ascii"), str(self.length).encode(), self.prefix.encode("ascii"),
            str(self.low).encode(), str(self.high).encode(), str(self.rounds).encode(),
            self.tweak))
        material = _hkdf_sha256(key, info, 16 * self.rounds)
        for i in range(2 * self.rounds):
            self.c.keys[i] = int.from_bytes(material[8 * i:8 * i + 8], "little")

    @property
    def randomised(self) -> bool:
        return self.c.rounds != 0

    @property
    def halves(self) -> tuple:
        """(a, b): the Feistel halves' moduli; a*b - space is what cycle walking skips."""
        return (self.c.a, self.c.b)

    def __repr__(self):
        kind = f"randomised, {self.rounds} rounds" if self.rounds else "sequential"
        return (f"SerialPermutation({self.alphabet!r}, length={self.length}, "
                f"prefix={self.prefix!r}, space={self.space}, {kind})")

    cdef inline u128 _counter(self, counter) except? 0:
        cdef uint64_t small
        if not isinstance(counter, int):
            counter = operator.index(counter)   # numpy integers yes, 5.0 no
        try:
            small = counter          # C conversion: no Python arithmetic on the common path
        except OverflowError:        # negative, or above 2**64 - 1
            if not (0 <= counter < self.space):
                raise ValueError(f"counter {counter} is outside [0, {self.space})") from None
            return _to_u128(counter)
        if small >= self.c.n:
            raise ValueError(f"counter {counter} is outside [0, {self.space})")
        return small

    def encode(self, counter) -> str:
        """The serial of a counter in [0, space)."""
        cdef u128 x = self._counter(counter)
        cdef uint8_t buf[MAX_LENGTH]
        _write_serial(&self.c, x, buf)
        return buf[:self.c.length].decode("ascii")

    def decode(self, serial) -> object:
        """The counter of a serial, or None when the string is not a serial of this
        permutation's format (length, prefix, alphabet, numeral range)."""
        cdef u128 counter = 0
        if not isinstance(serial, str):
            raise TypeError(f"a serial is a str, not {type(serial).__name__}")
        if len(<str>serial) != self.c.length or not (<str>serial).isascii():
            return None
        # an ASCII str stores one byte per character: read it in place
        if not _read_serial(&self.c, <const uint8_t*>PyUnicode_1BYTE_DATA(serial), &counter):
            return None
        return _from_u128(counter)

    def __contains__(self, serial) -> bool:
        return isinstance(serial, str) and self.decode(serial) is not None

    cdef _check_range(self, start, count):
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        if not (0 <= start and start + count <= self.space):
            raise ValueError(f"counters [{start}, {start + count}) exceed the space "
                             f"[0, {self.space}): serials would repeat")

    def encode_into(self, unsigned char[::1] buffer not None, start, Py_ssize_t count,
                    Py_ssize_t offset=0, Py_ssize_t stride=0) -> int:
        """Write the serials of counters [start, start+count) as ASCII into `buffer`, the i-th
        at offset + i*stride (stride defaults to the length). Bytes between serials are left
        as they are, so a caller can pre-fill fixed-width rows (a DL URI template, a CSV line)
        and let this fill in the serials. Runs without the GIL. Returns count."""
        cdef u128 x
        cdef uint64_t l, r
        cdef Py_ssize_t i
        cdef uint8_t* out
        cdef const Codec* c = &self.c
        self._check_range(start, count)
        if stride == 0:
            stride = c.length
        if stride < c.length or offset < 0:
            raise ValueError(f"stride {stride} is shorter than a serial ({c.length}) "
                             f"or offset {offset} is negative")
        if count and offset + (count - 1) * stride + c.length > buffer.shape[0]:
            raise ValueError(f"{count} serials at offset {offset}, stride {stride} need "
                             f"{offset + (count - 1) * stride + c.length} bytes; the buffer "
                             f"has {buffer.shape[0]}")
        if count == 0:
            return 0
        x = _to_u128(start)
        out = &buffer[offset]
        with nogil:
            if c.rounds == 0:
                for i in range(count):
                    if c.prefix_len:
                        memcpy(out, c.prefix, c.prefix_len)
                    _write_body(c, c.low + x, out + c.prefix_len)
                    x += 1
                    out += stride
            else:
                # consecutive counters: step the halves instead of dividing per serial
                _split(c, x, &l, &r)
                for i in range(count):
                    x = _feistel_encrypt(c, l, r)
                    if x >= c.n:
                        # cycle walking: _forward encrypts again until x is in [0, n)
                        x = _forward(c, x)
                    if c.prefix_len:
                        memcpy(out, c.prefix, c.prefix_len)
                    _write_body(c, c.low + x, out + c.prefix_len)
                    out += stride
                    r += 1
                    if r == c.b:
                        r = 0
                        l += 1
        return count

    def encode_range(self, start, Py_ssize_t count) -> list:
        """The serials of counters [start, start+count), as a list of str."""
        self._check_range(start, count)
        buf = bytearray(count * self.c.length)
        self.encode_into(buf, start, count)
        n = self.c.length
        text = buf.decode("ascii")
        return [text[i:i + n] for i in range(0, len(text), n)]

    def decode_many(self, serials) -> list:
        """decode() over an iterable; None for each string that is not a serial."""
        return [self.decode(s) for s in serials]
