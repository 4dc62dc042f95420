"""The growth load script's arguments parse as its README commands write them (the script
itself is a benchmark, run by hand; this only keeps its command line from rotting)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "loadtests"))

import growth  # noqa: E402


def test_counts_take_k_and_m_suffixes_and_sections_are_checked() -> None:
    args = growth.parse_args(["--registered", "0,1M,10M", "--batches", "10,10k,100k", "--products", "1k,100k",
                              "--only", "startup,products", "--counters", "2.5M"])
    assert args.registered == [0, 1_000_000, 10_000_000]
    assert args.batches == [10, 10_000, 100_000]
    assert args.products == [1_000, 100_000]
    assert args.only == ["startup", "products"]
    assert args.counters == 2_500_000
    assert growth.parse_args([]).only == list(growth.SECTIONS)
    for bad in (["--only", "startup,nonsense"], ["--registered", "1G"]):
        with pytest.raises(SystemExit):
            growth.parse_args(bad)


def test_generated_products_have_valid_distinct_keys() -> None:
    from ext import verify_check_digit

    gtins = [growth.product_gtin(i) for i in range(1, 2001)]
    assert all(len(g) == 14 and verify_check_digit(g) for g in gtins)
    assert len({growth.company_prefix(i) for i in range(10, 100_000, 10)}) == 9_999
