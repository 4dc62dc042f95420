"""Conformance bookkeeping: tests record each public GS1 vector they run, and the
run ends with a table (file, passed/total, deliberate divergences).

Registered as a pytest plugin from the root conftest.py. Vector files are read
from ../shared/gs1 (the reference material beside the repository).
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

SHARED_GS1 = Path(__file__).resolve().parents[2] / "shared" / "gs1"
# The reference copy beside the repository when present (it may be newer); else the copy
# vendored in tests/gs1-vectors with its licences, so CI runs wherever the clone lands.
VECTORS = SHARED_GS1 / "vectors" if (SHARED_GS1 / "vectors").is_dir() else Path(__file__).parent / "gs1-vectors"


@cache
def load_vectors(name: str) -> tuple[dict, ...]:
    path = VECTORS / name
    if not path.exists():
        raise FileNotFoundError(
            f"GS1 test vectors not found at {path}: the tests read ../shared/gs1/vectors beside the "
            "repository, else tests/gs1-vectors"
        )
    with path.open(encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def vector_params(name: str, keep=lambda case: True) -> list:
    """pytest parameters (one per case, id = the vector's id) for a vector file."""
    return [pytest.param(case, id=case["id"]) for case in load_vectors(name) if keep(case)]


class Conformance:
    def __init__(self) -> None:
        self.results: dict[str, dict[str, str]] = defaultdict(dict)
        # GS1's own resolver test suite, run headless: URI label → check id → status
        self.suite: dict[str, dict[str, str]] = defaultdict(dict)
        self.suite_faults: dict[str, str] = {}  # check id → why its warn is the suite's fault

    def record_suite(self, label: str, check_id: str, status: str) -> None:
        """status: GS1's 'pass', 'warn' or 'fail', or 'known' (a warn that is a known fault of the suite)."""
        self.suite[label][check_id] = status

    def record(self, source: str, case_id: str, outcome: str) -> None:
        """outcome: 'pass', 'fail' or 'divergent' (a deliberate, documented difference)."""
        self.results[source][case_id] = outcome

    def table(self) -> list[tuple[str, int, int, int, int]]:
        rows = []
        for source in sorted(self.results):
            outcomes = list(self.results[source].values())
            rows.append((source, outcomes.count("pass"), outcomes.count("divergent"),
                         outcomes.count("fail"), len(outcomes)))
        return rows


_CONFORMANCE = Conformance()


@pytest.fixture(scope="session")
def conformance() -> Conformance:
    return _CONFORMANCE


def suite_table(suite: dict[str, dict[str, str]]) -> list[str]:
    """The per-check table of GS1's suite: one row per check id, one column per URI run."""
    labels = list(suite)
    checks = sorted({check for results in suite.values() for check in results}, key=str.lower)
    width = max(len("check"), *(len(c) for c in checks))
    lines = [f"{'check'.ljust(width)}  " + "  ".join(f"{label:>7}" for label in labels)]
    for check in checks:
        lines.append(f"{check.ljust(width)}  " + "  ".join(f"{suite[label].get(check, '-'):>7}" for label in labels))
    totals = []
    for label in labels:
        outcomes = list(suite[label].values())
        totals.append(f"{outcomes.count('pass')}/{len(outcomes)}")
    lines.append(f"{'passed'.ljust(width)}  " + "  ".join(f"{t:>7}" for t in totals))
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tr = terminalreporter
    if _CONFORMANCE.suite:
        tr.section("GS1 resolver test suite (GS1's JavaScript, headless)")
        for line in suite_table(_CONFORMANCE.suite):
            tr.write_line(line)
        for check, why in sorted(_CONFORMANCE.suite_faults.items()):
            tr.write_line(f"known: {check}: {why}")
    rows = _CONFORMANCE.table()
    if not rows:
        return
    tr.section("GS1 conformance (public vectors)")
    width = max(len(r[0]) for r in rows)
    tr.write_line(f"{'source'.ljust(width)}  {'passed':>7}  {'divergent':>9}  {'failed':>6}  {'total':>6}")
    for source, passed, divergent, failed, total in rows:
        tr.write_line(f"{source.ljust(width)}  {passed:>7}  {divergent:>9}  {failed:>6}  {total:>6}")
    totals = [sum(r[i] for r in rows) for i in range(1, 5)]
    tr.write_line(f"{'all'.ljust(width)}  {totals[0]:>7}  {totals[1]:>9}  {totals[2]:>6}  {totals[3]:>6}")
