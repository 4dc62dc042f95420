"""The serial permutation is a bijection between counters and the serials of a format, keyed,
invertible, and indistinguishable in its output from uniformly drawn serials.

The Cython module is checked against the SipHash authors' reference vectors and against a
plain-Python re-statement of the same construction (big-integer arithmetic, no 128-bit tricks),
over formats up to 20 characters of CSET 82, whose spaces exceed 2**64.
"""

import hashlib
import hmac
import math
from itertools import product

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ext.permutation import SerialPermutation, siphash24

CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
SAFE = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"
KEY = b"a test key, not a production one"
GTIN = b"09506000134352"


# --- a plain-Python statement of the construction ------------------------------------------

MASK = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & MASK


def reference_siphash24(key: bytes, message: bytes, wide: bool = False) -> int:
    """SipHash-2-4 of any message, after the authors' description (64- or 128-bit tag)."""
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:16], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]
    if wide:
        v[1] ^= 0xEE

    def sipround() -> None:
        v[0] = (v[0] + v[1]) & MASK; v[1] = _rotl(v[1], 13) ^ v[0]; v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & MASK; v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & MASK; v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & MASK; v[1] = _rotl(v[1], 17) ^ v[2]; v[2] = _rotl(v[2], 32)

    tail = len(message) % 8
    blocks = [int.from_bytes(message[i:i + 8], "little") for i in range(0, len(message) - tail, 8)]
    blocks.append(int.from_bytes(message[len(message) - tail:], "little") | (len(message) & 0xFF) << 56)
    for m in blocks:
        v[3] ^= m
        sipround(); sipround()
        v[0] ^= m
    v[2] ^= 0xEE if wide else 0xFF
    for _ in range(4):
        sipround()
    tag = v[0] ^ v[1] ^ v[2] ^ v[3]
    if not wide:
        return tag
    v[1] ^= 0xDD
    for _ in range(4):
        sipround()
    return tag | (v[0] ^ v[1] ^ v[2] ^ v[3]) << 64


def reference_encode(key: bytes, alphabet: str, length: int, counter: int, *, tweak: bytes = b"",
                     low: int = 0, high: int | None = None, prefix: str = "", rounds: int = 10) -> str:
    """The permutation as the module docstring describes it, in big-integer Python."""
    radix, body_len = len(alphabet), length - len(prefix)
    high = radix ** body_len if high is None else high
    n = high - low
    fields = [alphabet.encode(), str(length).encode(), prefix.encode(), str(low).encode(),
              str(high).encode(), str(rounds).encode(), tweak]
    info = b"".join(len(f).to_bytes(2, "big") + f for f in fields)
    prk = hmac.new(b"serialink/serial-permutation/v1", key, hashlib.sha256).digest()
    okm, block = b"", b""
    for i in range(1, 1 + math.ceil(16 * rounds / 32)):
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        okm += block
    round_keys = [okm[16 * i:16 * i + 16] for i in range(rounds)]
    b = math.isqrt(n - 1) + 1 if n > 1 else 1
    a = -(-n // b)
    wide = b > 2 ** 32

    def encrypt(x: int) -> int:
        left, right = divmod(x, b)
        for i in range(rounds):
            m = a if i % 2 == 0 else b
            h = reference_siphash24(round_keys[i], right.to_bytes(8, "little"), wide)
            left, right = right, (left + (h * m >> (128 if wide else 64))) % m
        return left * b + right

    y = encrypt(counter)
    while y >= n:
        y = encrypt(y)
    value, digits = low + y, []
    for _ in range(body_len):
        value, d = divmod(value, radix)
        digits.append(alphabet[d])
    return prefix + "".join(reversed(digits))


def numeral(serial: str, alphabet: str) -> int:
    value = 0
    for ch in serial:
        value = value * len(alphabet) + alphabet.index(ch)
    return value


# --- strategies -----------------------------------------------------------------------------

keys = st.binary(min_size=16, max_size=40)
tweaks = st.binary(max_size=14)


@st.composite
def formats(draw, max_radix: int = 82, max_length: int = 20, max_space: int | None = None):
    """(alphabet, length, low, high, prefix) of a serial format, ranges drawn inside it."""
    radix = draw(st.integers(2, max_radix))
    alphabet = "".join(draw(st.permutations(CSET82))[:radix])
    length = draw(st.integers(1, max_length))
    prefix_len = draw(st.integers(0, min(2, length - 1)))
    prefix = "".join(draw(st.lists(st.sampled_from(CSET82), min_size=prefix_len, max_size=prefix_len)))
    full = radix ** (length - prefix_len)
    if max_space is not None:
        assume(full <= max_space)
    low = draw(st.integers(0, full - 1) | st.just(0))
    high = draw(st.integers(low + 1, full) | st.just(full))
    return alphabet, length, low, high, prefix


def permutation(key: bytes, fmt, tweak: bytes = GTIN) -> SerialPermutation:
    alphabet, length, low, high, prefix = fmt
    return SerialPermutation(key, alphabet, length, tweak=tweak, low=low, high=high, prefix=prefix)


# --- the round function ----------------------------------------------------------------------

def test_siphash_matches_the_authors_reference_vectors():
    # vectors.h of the SipHash reference code: key 00..0f, message 00..07 (entry 8)
    key, message = bytes(range(16)), bytes(range(8))
    block = int.from_bytes(message, "little")
    assert siphash24(key, block) == int.from_bytes(bytes.fromhex("6224939a79f5f593"), "little")
    assert siphash24(key, block, wide=True) == int.from_bytes(
        bytes.fromhex("3b62a9ba6258f5610f83e264f31497b4"), "little")
    assert reference_siphash24(key, message) == siphash24(key, block)
    assert reference_siphash24(key, b"") == int.from_bytes(bytes.fromhex("310e0edd47db6f72"), "little")


@given(st.binary(min_size=16, max_size=16), st.integers(0, 2 ** 64 - 1), st.booleans())
def test_the_c_siphash_agrees_with_the_python_statement(key, block, wide):
    assert siphash24(key, block, wide) == reference_siphash24(key, block.to_bytes(8, "little"), wide)


# --- bijection ---------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(keys, formats(max_radix=5, max_length=5, max_space=700), st.sampled_from([8, 10, 12]))
def test_every_serial_of_a_small_format_is_the_image_of_exactly_one_counter(key, fmt, rounds):
    alphabet, length, low, high, prefix = fmt
    p = SerialPermutation(key, alphabet, length, tweak=GTIN, low=low, high=high, prefix=prefix,
                          rounds=rounds)
    serials = p.encode_range(0, p.space)
    every_serial = {prefix + "".join(t) for t in product(alphabet, repeat=length - len(prefix))
                    if low <= numeral("".join(t), alphabet) < high}
    assert len(set(serials)) == p.space == len(every_serial)
    assert set(serials) == every_serial
    assert [p.decode(s) for s in serials] == list(range(p.space))
    assert serials == [p.encode(c) for c in range(p.space)]


@pytest.mark.parametrize("alphabet,length,low,high", [
    ("01", 3, 0, 7),            # 7 = prime: halves 3 x 3
    ("012", 3, 1, 27),          # 26 of 27
    ("0123456789", 4, 1000, 10000),  # no leading zero: 9000 in 95 x 95
    ("0123456789", 4, 1000, 1013),
    ("ABCDEFGHJK", 2, 0, 83),
])
def test_spaces_that_are_not_a_square_are_covered_by_cycle_walking(alphabet, length, low, high):
    p = SerialPermutation(KEY, alphabet, length, low=low, high=high, tweak=GTIN)
    a, b = p.halves
    assert a * b > p.space, "this case is meant to need cycle walking"
    serials = p.encode_range(0, p.space)
    assert len(set(serials)) == p.space
    assert all(low <= numeral(s, alphabet) < high for s in serials)
    assert [p.decode(s) for s in serials] == list(range(p.space))


@settings(max_examples=150, deadline=None)
@given(keys, tweaks, formats(), st.data())
def test_the_cython_permutation_is_the_documented_construction(key, tweak, fmt, data):
    p = permutation(key, fmt, tweak)
    counter = data.draw(st.integers(0, p.space - 1) | st.sampled_from([0, p.space - 1]))
    alphabet, length, low, high, prefix = fmt
    expected = reference_encode(key, alphabet, length, counter, tweak=tweak, low=low, high=high,
                                prefix=prefix)
    assert p.encode(counter) == expected
    assert p.decode(expected) == counter


@settings(max_examples=200, deadline=None)
@given(keys, formats(), st.data())
def test_decode_inverts_encode(key, fmt, data):
    p = permutation(key, fmt)
    counter = data.draw(st.integers(0, p.space - 1))
    serial = p.encode(counter)
    assert len(serial) == p.length
    assert serial.startswith(p.prefix)
    assert set(serial[len(p.prefix):]) <= set(p.alphabet)
    assert p.low <= numeral(serial[len(p.prefix):], p.alphabet) < p.high
    assert p.decode(serial) == counter


@settings(max_examples=200, deadline=None)
@given(keys, formats(), st.data())
def test_encode_inverts_decode_on_every_string_of_the_format(key, fmt, data):
    p = permutation(key, fmt)
    body = data.draw(st.text(alphabet=p.alphabet, min_size=p.length - len(p.prefix),
                             max_size=p.length - len(p.prefix)))
    serial = p.prefix + body
    counter = p.decode(serial)
    if p.low <= numeral(body, p.alphabet) < p.high:
        assert counter is not None and 0 <= counter < p.space
        assert p.encode(counter) == serial
    else:
        assert counter is None


def test_the_largest_formats_use_128_bit_values_end_to_end():
    # 82**20 ~ 2**127.2 and 34**20 ~ 2**101.7: both halves above 2**32, values above 2**64
    for alphabet in (CSET82, SAFE):
        p = SerialPermutation(KEY, alphabet, 20, tweak=GTIN)
        assert p.space == len(alphabet) ** 20 > 2 ** 64
        assert min(p.halves) > 2 ** 32
        for counter in (0, 1, 2 ** 64 - 1, 2 ** 64, 2 ** 64 + 1, p.space // 3, p.space - 1):
            serial = p.encode(counter)
            assert serial == reference_encode(KEY, alphabet, 20, counter, tweak=GTIN)
            assert p.decode(serial) == counter
        top = p.prefix + alphabet[-1] * 20
        assert p.encode(p.decode(top)) == top


# --- keyed, tweaked ---------------------------------------------------------------------------

def _agreements(p: SerialPermutation, q: SerialPermutation, count: int = 2000) -> int:
    return sum(s == t for s, t in zip(p.encode_range(0, count), q.encode_range(0, count)))


@settings(max_examples=25, deadline=None)
@given(keys, keys)
def test_different_keys_give_different_permutations(k1, k2):
    assume(k1 != k2)
    p, q = (SerialPermutation(k, SAFE, 12, tweak=GTIN) for k in (k1, k2))
    # two independent permutations of 34**12 agree on a given counter with probability 34**-12
    assert _agreements(p, q) == 0


@settings(max_examples=25, deadline=None)
@given(tweaks, tweaks)
def test_different_tweaks_give_different_permutations(t1, t2):
    assume(t1 != t2)
    p, q = (SerialPermutation(KEY, SAFE, 12, tweak=t) for t in (t1, t2))
    assert _agreements(p, q) == 0


def test_different_formats_under_one_key_and_gtin_are_independent():
    # the numeral range is bound into the round keys, not only into the output
    p = SerialPermutation(KEY, DIGITS, 12, tweak=GTIN)
    q = SerialPermutation(KEY, DIGITS, 12, tweak=GTIN, high=10 ** 12 - 1)
    assert _agreements(p, q) == 0


def test_the_same_key_tweak_and_format_give_the_same_permutation():
    # the serialiser rebuilds the permutation to verify serials: it must be reproducible
    p, q = (SerialPermutation(KEY, SAFE, 12, tweak=GTIN) for _ in range(2))
    assert p.encode_range(0, 1000) == q.encode_range(0, 1000)


# --- randomness of the output ----------------------------------------------------------------

def _chi_square_limit(df: int, p: float) -> float:
    """Upper p-quantile of chi-square(df), Wilson-Hilferty approximation."""
    z = {1e-6: 4.753424, 1e-7: 5.199338}[p]
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@pytest.mark.parametrize("alphabet,length", [(SAFE, 12), (DIGITS, 13), (CSET82, 20)])
def test_each_position_is_uniform_over_the_alphabet(alphabet, length):
    p = SerialPermutation(KEY, alphabet, length, tweak=GTIN)
    count = 300_000
    buf = bytearray(count * length)
    p.encode_into(buf, 12_345, count)
    expected = count / len(alphabet)
    limit = _chi_square_limit(len(alphabet) - 1, 1e-7)
    for position in range(length):
        column = bytes(buf[position::length])
        chi2 = sum((column.count(ch) - expected) ** 2 / expected for ch in alphabet.encode())
        assert chi2 < limit, f"position {position}: chi-square {chi2:.1f} >= {limit:.1f}"


def test_consecutive_counters_give_unrelated_serials():
    p = SerialPermutation(KEY, SAFE, 12, tweak=GTIN)
    serials = p.encode_range(10 ** 6, 5001)
    differing = [sum(x != y for x, y in zip(s, t)) for s, t in zip(serials, serials[1:])]
    # independent uniform serials differ in 12 * 33/34 = 11.65 positions on average
    assert abs(sum(differing) / len(differing) - 12 * 33 / 34) < 0.05


def test_sequential_serials_are_the_counter_as_a_padded_numeral():
    p = SerialPermutation.sequential(DIGITS, 12, low=10 ** 11, high=2 ** 38)
    assert not p.randomised
    for counter in (0, 1, 99, p.space - 1):
        assert p.encode(counter) == str(10 ** 11 + counter)
        assert p.decode(str(10 ** 11 + counter)) == counter
    q = SerialPermutation.sequential(SAFE, 6, prefix="R")   # the length counts the prefix
    assert q.encode_range(33, 3) == ["R0000Z", "R00010", "R00011"]


# --- rejection ---------------------------------------------------------------------------------

def test_decode_rejects_strings_that_are_not_serials_of_the_format():
    p = SerialPermutation(KEY, DIGITS, 12, tweak=GTIN, low=10 ** 11, high=2 ** 38, prefix="")
    good = p.encode(7)
    assert p.decode(good) == 7
    assert p.decode(good[:-1]) is None                 # too short
    assert p.decode(good + "1") is None                # too long
    assert p.decode("A" + good[1:]) is None            # outside the alphabet
    assert p.decode("012345678901") is None            # a leading zero: below low
    assert p.decode(str(2 ** 38)) is None              # at the cap
    assert p.decode(str(2 ** 38 - 1)) is not None      # just under it
    assert p.decode("１２３４５６７８９０１２") is None   # full-width digits
    assert p.decode("") is None
    assert "012345678901" not in p and good in p
    with pytest.raises(TypeError):
        p.decode(good.encode())
    q = SerialPermutation(KEY, SAFE, 12, tweak=GTIN, prefix="PL")
    assert q.decode(q.encode(5)) == 5
    assert q.decode("QL" + q.encode(5)[2:]) is None    # wrong prefix


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=24))
def test_decode_never_accepts_a_string_outside_the_format(text):
    p = SerialPermutation(KEY, SAFE, 12, tweak=GTIN)
    if len(text) == 12 and set(text) <= set(SAFE):
        assert p.encode(p.decode(text)) == text
    else:
        assert p.decode(text) is None


def test_counters_outside_the_space_are_refused_rather_than_wrapped():
    p = SerialPermutation(KEY, DIGITS, 6, tweak=GTIN)
    for bad in (-1, 10 ** 6):
        with pytest.raises(ValueError):
            p.encode(bad)
    with pytest.raises(TypeError):
        p.encode(5.0)
    with pytest.raises(ValueError, match="serials would repeat"):
        p.encode_range(10 ** 6 - 5, 6)
    assert len(p.encode_range(10 ** 6 - 5, 5)) == 5


@pytest.mark.parametrize("kwargs,message", [
    (dict(key=b"short"), "at least 16 bytes"),
    (dict(rounds=6), "rounds"),
    (dict(rounds=9), "rounds"),
    (dict(alphabet="0"), "2 to 82"),
    (dict(alphabet="0120"), "repeats"),
    (dict(alphabet="01 2"), "printable"),
    (dict(length=0), "length"),
    (dict(length=21), "length"),
    (dict(low=10, high=10), "empty"),
    (dict(high=10 ** 13), "outside"),
    (dict(prefix="123456789012"), "no room"),
])
def test_malformed_permutations_are_refused(kwargs, message):
    args = dict(key=KEY, alphabet=DIGITS, length=12) | kwargs
    with pytest.raises(ValueError, match=message):
        SerialPermutation(args.pop("key"), args.pop("alphabet"), args.pop("length"), **args)


def test_a_randomised_permutation_needs_a_key():
    with pytest.raises(ValueError, match="needs a key"):
        SerialPermutation(None, SAFE, 12)


# --- the bulk path -----------------------------------------------------------------------------

def test_encode_into_fills_fixed_width_rows_and_leaves_the_rest_alone():
    p = SerialPermutation(KEY, SAFE, 12, tweak=GTIN)
    row = b"https://id.example.com/01/09506000134352/21/" + b"#" * 12 + b"\n"
    start = row.index(b"#")
    count = 1000
    buf = bytearray(row * count)
    assert p.encode_into(buf, 500, count, offset=start, stride=len(row)) == count
    lines = buf.decode().splitlines()
    assert lines == [f"https://id.example.com/01/09506000134352/21/{p.encode(500 + i)}"
                     for i in range(count)]


def test_encode_into_refuses_a_buffer_too_small():
    p = SerialPermutation(KEY, SAFE, 12, tweak=GTIN)
    with pytest.raises(ValueError, match="bytes"):
        p.encode_into(bytearray(12 * 10 - 1), 0, 10)
    with pytest.raises(ValueError, match="stride"):
        p.encode_into(bytearray(1000), 0, 10, stride=11)
    with pytest.raises((TypeError, ValueError, BufferError)):
        p.encode_into(bytes(1000), 0, 10)   # read-only


@settings(max_examples=40, deadline=None)
@given(keys, formats(max_radix=40, max_length=20), st.data())
def test_the_bulk_path_agrees_with_single_calls_across_half_boundaries(key, fmt, data):
    p = permutation(key, fmt)
    _, b = p.halves
    # start just before a multiple of b so that the stepped halves carry
    near = data.draw(st.integers(0, max(0, (p.space - 1) // b))) * b
    start = data.draw(st.integers(max(0, near - 3), min(near + 3, p.space - 1)))
    count = data.draw(st.integers(0, min(8, p.space - start)))
    assert p.encode_range(start, count) == [p.encode(c) for c in range(start, start + count)]
