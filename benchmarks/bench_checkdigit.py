"""How fast a GS1 key's check digit is verified from Python, against biip.

Every scan verifies at least one key, so ``verify_check_digit`` must manage
5 million GTIN-14 or SSCC verifications a second on one core. Each round
verifies a batch of distinct real-looking keys in a plain Python loop (the way
callers use it); the rate is batch size / mean round time. biip's own
check-digit function runs in the same session on the same keys for scale.

    python -m pytest benchmarks/bench_checkdigit.py --benchmark-only
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from biip.checksums import gs1_standard_check_digit

from ext.linters import compute_check_digit, verify_check_digit

BATCH = 10_000
REQUIRED_PER_SECOND = 5_000_000


def keys(length: int, seed: int) -> list[str]:
    """`BATCH` keys of `length` digits, half with a correct check digit."""
    rng = random.Random(seed)
    out = []
    for i in range(BATCH):
        data = "".join(rng.choice("0123456789") for _ in range(length - 1))
        check = compute_check_digit(data)
        out.append(data + (check if i % 2 == 0 else str((int(check) + 1) % 10)))
    return out


GTIN14 = keys(14, seed=14)
SSCC = keys(18, seed=18)


def verify_all_serialink(batch: list[str]) -> int:
    ok = 0
    for key in batch:
        if verify_check_digit(key):
            ok += 1
    return ok


def verify_all_biip(batch: list[str]) -> int:
    ok = 0
    for key in batch:
        if str(gs1_standard_check_digit(key[:-1])) == key[-1]:
            ok += 1
    return ok


def run(benchmark, verify_all: Callable[[list[str]], int], batch: list[str]) -> float:
    """Benchmark `verify_all` over `batch`; return verifications per second."""
    ok = benchmark(verify_all, batch)
    assert ok == BATCH // 2, "half the keys carry a correct check digit"
    rate = BATCH / benchmark.stats.stats.mean
    benchmark.extra_info["verifications_per_second"] = round(rate)
    return rate


@pytest.mark.parametrize("name, batch", [("GTIN-14", GTIN14), ("SSCC", SSCC)])
def test_serialink_verify_check_digit(benchmark, name, batch):
    benchmark.group = f"verify check digit: {name}"
    rate = run(benchmark, verify_all_serialink, batch)
    assert rate >= REQUIRED_PER_SECOND, f"{rate:,.0f} {name} verifications/s"


@pytest.mark.parametrize("name, batch", [("GTIN-14", GTIN14), ("SSCC", SSCC)])
def test_biip_check_digit(benchmark, name, batch):
    benchmark.group = f"verify check digit: {name}"
    run(benchmark, verify_all_biip, batch)
