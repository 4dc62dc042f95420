"""How fast counters become randomised serials, against pure-Python FPE in the same run.

The serialiser must write 10M randomised serials with their DL URIs to CSV at >= 1M codes/s
end-to-end on one core, so the permutation itself has to stay well under 0.5 us a serial:
the bulk path (`encode_into`, no Python object per serial) must reach 2M serials/s. The
single-call path (`encode`, one str per call) and `decode` (verifying a scanned serial) are
measured too. Peers, same machine, same run:

* FF3-1 from the `ff3` package (pure Python over pycryptodome's AES), when it is installed;
  SERIALISATION.md measured ~12k serials/s for it. It is not a project dependency:
  `pip install ff3` to include it, otherwise that benchmark is skipped.
* this module's own Feistel network (SipHash-2-4, 10 rounds) re-stated in pure Python: the
  same serials, so the ratio is what Cython buys.

    python -m pytest benchmarks/bench_permutation.py --benchmark-only
"""

from __future__ import annotations

import hashlib
import hmac
import math

import pytest

from serializer.profiles import load_profiles

GTIN = "09506000134352"
KEY = b"benchmark key, 32 bytes long...."
BULK = 1_000_000
SINGLE = 100_000
PEER = 2_000
REQUIRED_BULK_PER_SECOND = 2_000_000

PROFILES = load_profiles()


def rate(benchmark, count: int) -> float:
    per_second = count / benchmark.stats.stats.mean
    benchmark.extra_info["serials_per_second"] = round(per_second)
    benchmark.extra_info["ns_per_serial"] = round(1e9 / per_second, 1)
    return per_second


@pytest.mark.parametrize("profile", ["default", "sgtin-96", "eu-fmd", "chestny-znak"])
def test_bulk_encode_into(benchmark, profile):
    """Serials written straight into a bytearray: what the CSV/ZPL writers use."""
    permutation = PROFILES[profile].permutation(KEY, GTIN)
    buffer = bytearray(BULK * permutation.length)
    benchmark.group = "permutation: serials/s"
    benchmark.extra_info["profile"] = f"{profile} ({permutation.length} chars, space {permutation.space:.3g})"
    benchmark.pedantic(permutation.encode_into, args=(buffer, 0, BULK), rounds=5, iterations=1)
    assert permutation.decode(buffer[-permutation.length:].decode()) == BULK - 1
    per_second = rate(benchmark, BULK)
    assert per_second >= REQUIRED_BULK_PER_SECOND, f"{per_second:,.0f} serials/s"


def test_bulk_encode_range_as_str(benchmark):
    """The same, returned as a list of str (one Python object per serial)."""
    permutation = PROFILES["default"].permutation(KEY, GTIN)
    benchmark.group = "permutation: serials/s"
    serials = benchmark.pedantic(permutation.encode_range, args=(0, BULK), rounds=5, iterations=1)
    assert len(set(serials)) == BULK
    rate(benchmark, BULK)


def test_single_encode(benchmark):
    permutation = PROFILES["default"].permutation(KEY, GTIN)
    counters = range(SINGLE)

    def encode_each() -> str:
        encode = permutation.encode
        last = ""
        for counter in counters:
            last = encode(counter)
        return last

    benchmark.group = "permutation: serials/s"
    last = benchmark.pedantic(encode_each, rounds=5, iterations=1)
    assert permutation.decode(last) == SINGLE - 1
    rate(benchmark, SINGLE)


def test_single_decode(benchmark):
    permutation = PROFILES["default"].permutation(KEY, GTIN)
    serials = permutation.encode_range(0, SINGLE)

    def decode_each() -> int:
        decode = permutation.decode
        total = 0
        for serial in serials:
            total += decode(serial)
        return total

    benchmark.group = "permutation: serials/s"
    assert benchmark.pedantic(decode_each, rounds=5, iterations=1) == SINGLE * (SINGLE - 1) // 2
    rate(benchmark, SINGLE)


def test_peer_ff3_1_pure_python(benchmark):
    ff3 = pytest.importorskip("ff3", reason="the ff3 package is not installed (pip install ff3)")
    alphabet = PROFILES["default"].alphabet
    # FF3-1: 128-bit AES key, 56-bit tweak (the GTIN's last 7 bytes would do as well)
    cipher = ff3.FF3Cipher.withCustomAlphabet(KEY[:16].hex(), bytes(7).hex(), alphabet)

    def numeral(counter: int) -> str:
        digits = []
        for _ in range(12):
            counter, d = divmod(counter, 34)
            digits.append(alphabet[d])
        return "".join(reversed(digits))

    plaintexts = [numeral(c) for c in range(PEER)]

    def encrypt_each() -> list[str]:
        return [cipher.encrypt(p) for p in plaintexts]

    benchmark.group = "permutation: serials/s"
    serials = benchmark.pedantic(encrypt_each, rounds=3, iterations=1)
    assert len(set(serials)) == PEER and cipher.decrypt(serials[7]) == plaintexts[7]
    rate(benchmark, PEER)


# --- the module's Feistel in pure Python (the same serials) ----------------------------------

MASK = (1 << 64) - 1


def _siphash24(k0: int, k1: int, m: int) -> int:
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573
    for block, rounds in ((m, 2), (8 << 56, 2), (None, 4)):
        if block is None:
            v2 ^= 0xFF
        else:
            v3 ^= block
        for _ in range(rounds):
            v0 = (v0 + v1) & MASK; v1 = ((v1 << 13) | (v1 >> 51)) & MASK; v1 ^= v0
            v0 = ((v0 << 32) | (v0 >> 32)) & MASK
            v2 = (v2 + v3) & MASK; v3 = ((v3 << 16) | (v3 >> 48)) & MASK; v3 ^= v2
            v0 = (v0 + v3) & MASK; v3 = ((v3 << 21) | (v3 >> 43)) & MASK; v3 ^= v0
            v2 = (v2 + v1) & MASK; v1 = ((v1 << 17) | (v1 >> 47)) & MASK; v1 ^= v2
            v2 = ((v2 << 32) | (v2 >> 32)) & MASK
        if block is not None:
            v0 ^= block
    return v0 ^ v1 ^ v2 ^ v3


class PurePythonFeistel:
    """SerialPermutation for a full space below 2**64 (the 64-bit PRF path), in Python."""

    def __init__(self, key: bytes, alphabet: str, length: int, tweak: bytes, rounds: int = 10):
        self.alphabet, self.length, self.rounds = alphabet, length, rounds
        self.n = len(alphabet) ** length
        fields = [alphabet.encode(), str(length).encode(), b"", b"0", str(self.n).encode(),
                  str(rounds).encode(), tweak]
        info = b"".join(len(f).to_bytes(2, "big") + f for f in fields)
        prk = hmac.new(b"serialink/serial-permutation/v1", key, hashlib.sha256).digest()
        okm, block = b"", b""
        for i in range(1, 1 + math.ceil(16 * rounds / 32)):
            block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
            okm += block
        self.keys = [(int.from_bytes(okm[16 * i:16 * i + 8], "little"),
                      int.from_bytes(okm[16 * i + 8:16 * i + 16], "little")) for i in range(rounds)]
        self.b = math.isqrt(self.n - 1) + 1
        self.a = -(-self.n // self.b)
        assert self.b <= 2 ** 32, "only the 64-bit PRF path is re-stated here"

    def encode(self, counter: int) -> str:
        x = counter
        while True:
            left, right = divmod(x, self.b)
            for i, (k0, k1) in enumerate(self.keys):
                m = self.a if i % 2 == 0 else self.b
                left, right = right, (left + (_siphash24(k0, k1, right) * m >> 64)) % m
            x = left * self.b + right
            if x < self.n:
                break
        digits = []
        for _ in range(self.length):
            x, d = divmod(x, len(self.alphabet))
            digits.append(self.alphabet[d])
        return "".join(reversed(digits))


def test_peer_same_feistel_pure_python(benchmark):
    default = PROFILES["default"]
    peer = PurePythonFeistel(KEY, default.alphabet, default.length, GTIN.encode())
    cython = default.permutation(KEY, GTIN)
    assert [peer.encode(c) for c in range(50)] == cython.encode_range(0, 50), "same construction"

    benchmark.group = "permutation: serials/s"
    serials = benchmark.pedantic(lambda: [peer.encode(c) for c in range(PEER)], rounds=3, iterations=1)
    assert len(set(serials)) == PEER
    rate(benchmark, PEER)
