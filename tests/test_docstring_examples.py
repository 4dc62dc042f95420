"""Every ``>>>`` example in the packages runs, so a docstring cannot go stale.

The modules are found by walking the packages, not listed by hand: a new module with an
example is tested the day it is written. Cython modules are imported compiled; their
examples run against the real extension. A module whose source shows ``>>>`` but whose
examples doctest cannot find (say, in a function it does not reach) fails too.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

PACKAGES = ("ext", "settings", "twin", "serializer", "resolver", "serialink")
ROOT = Path(__file__).resolve().parent.parent


def _modules_with_examples() -> list[str]:
    found = []
    for package in PACKAGES:
        top = importlib.import_module(package)
        names = [package] + [m.name for m in pkgutil.walk_packages(top.__path__, package + ".")]
        for name in names:
            base = ROOT / name.replace(".", "/")
            sources = [base / "__init__.py", base.with_suffix(".py"), base.with_suffix(".pyx")]
            if any(p.exists() and ">>> " in p.read_text(encoding="utf-8") for p in sources):
                found.append(name)
    return sorted(found)


MODULES = _modules_with_examples()


def test_examples_are_found_in_every_package() -> None:
    assert {name.split(".")[0] for name in MODULES} == set(PACKAGES) - {"serialink"} | (
        {"serialink"} if any(m.startswith("serialink") for m in MODULES) else set())
    assert len(MODULES) >= 60


@pytest.mark.parametrize("module", MODULES)
def test_the_docstring_examples_run(module: str) -> None:
    target = importlib.import_module(module)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(target, module) if t.examples]
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0, f"{module} shows >>> examples that doctest does not reach"
    assert result.failed == 0
