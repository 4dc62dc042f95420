"""The routing decision for distinct serials, with and without moment routes, in one run.

A live scan of a unit without a record of its own gets its moment facts from its batch
(built once per batch), so the decision is all that moments could slow down: a product
without moment routes must cost what it did (its memo key is unchanged), and one with
them pays one check per distinct moment test on top of a memo hit.

    python -m pytest benchmarks/bench_decide.py --benchmark-only
"""

from __future__ import annotations

import itertools
import time
from datetime import date

import pytest

from ext import parse
from resolver.rules.compiler import default_rules_file, load_rules
from resolver.rules.moments import Moments
from resolver.scan.decide import ScanRequest, UnitFacts, decide
from resolver.scan.negotiate import Preferences

RULES = load_rules(default_rules_file())
REQUEST = ScanRequest(None, Preferences(("en",), None, ()), int(time.time() * 1000))
BATCH_MOMENTS = Moments(made=date(2025, 1, 10))
RECORD_MOMENTS = Moments(made=date(2024, 1, 10), registered=date(2024, 2, 1), serviced=date(2025, 3, 1),
                         warranty_start=date(2024, 2, 1), warranty_end=date(2027, 1, 31))
CASES = {
    # a product whose routes use no moments (the company-prefix entry)
    "no moment routes": ("09506000134369", "commissioned", BATCH_MOMENTS),
    # the X100: fault and service-due routes; a batch unit and a registered unit with a record
    "moment routes, batch unit": ("09506000134352", "commissioned", BATCH_MOMENTS),
    "moment routes, registered unit": ("09506000134352", "registered", RECORD_MOMENTS),
}


@pytest.mark.parametrize("case", list(CASES))
def test_decide_distinct_serials(benchmark, case):
    gtin, state, moments = CASES[case]
    uris = [parse(f"https://id.example.com/01/{gtin}/21/S{n:07d}") for n in range(20_000)]
    facts = UnitFacts(state, source="batch", moments=moments)
    cycle = itertools.cycle(uris)

    def one() -> str | None:
        return decide(RULES, next(cycle), "consumer" if state != "registered" else "owner", facts, REQUEST).href

    assert one() is not None
    benchmark.pedantic(lambda: [one() for _ in range(1000)], rounds=30, iterations=1, warmup_rounds=2)
