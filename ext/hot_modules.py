"""The pure-Python modules on a scan's path that the build also compiles with Cython.

They stay ordinary Python (typed, linted, readable, importable without a build); when the
build has run, Python imports the compiled copy beside each (an extension module takes
precedence over the ``.py`` of the same name). Compiled, the same code runs a scan in
about 15 % fewer µs (measured with loadtests/throughput.py; see docs/performance.md),
without the hot path being written in a second language.

The cost is a trap: a compiled copy older than its source would silently run the old
code. :func:`stale` finds those; the test session and ``serialink serve`` refuse to run
with any (rebuild with ``python setup.py build_ext --inplace`` or ``pip install -e .``).

>>> "resolver/scan/handler.py" in HOT_MODULES
True
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

#: Paths relative to the repository root. Every one is exercised by the full test suite
#: compiled (CI builds them), and each module is also valid uncompiled Python.
HOT_MODULES: tuple[str, ...] = (
    "resolver/app.py",  # ScansFirst: every request
    "resolver/scan/handler.py",
    "resolver/scan/decide.py",
    "resolver/scan/lookup.py",
    "resolver/scan/line_views.py",
    "resolver/scan/negotiate.py",
    "resolver/scan/memo.py",  # anonymous GTIN-level answers
    "resolver/rules/compiler.py",  # href rendering of remembered plans
    "resolver/ops/logs.py",  # request ids
    "resolver/ops/metrics.py",
    "resolver/analytics/clones.py",  # judges every scan, behind the buffer
    "serializer/verify.py",  # which batch issued a serial
    "twin/scans.py",  # the scan buffer and its flush
    "twin/batch.py",
    "twin/overlays.py",
)

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: str) -> str:
    return path[: -len(".py")].replace("/", ".")


def stale(root: Path = ROOT) -> list[str]:
    """Hot modules whose compiled copy is older than their source (empty: none, or not
    built). Only in a source checkout: an installed wheel's files are not edited."""
    if not (root / "setup.py").exists():
        return []
    found = []
    for rel in HOT_MODULES:
        source = root / rel
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            built = source.with_name(source.stem + suffix)
            if built.exists() and source.exists() and built.stat().st_mtime < source.stat().st_mtime:
                found.append(rel)
    return found
