"""Both store backends take exactly the parameters of twin.store.UnitStore.

mypy proves that each backend satisfies the protocol (twin/_protocol_check.py), but it
does not compare the names of positional parameters, and a caller may pass any of them by
keyword through the protocol (``store.get_batch(batch_id=…)``). This compares names,
kinds and defaults; a backend may only add optional parameters after the protocol's.
"""

from __future__ import annotations

import inspect

import pytest

from twin.redis_store import RedisStore
from twin.sqlite_store import SQLiteStore
from twin.store import UnitStore

MEMBERS = sorted(
    name
    for name, value in vars(UnitStore).items()
    if inspect.isfunction(value) and (not name.startswith("_") or name in ("__aenter__", "__aexit__"))
)
OPTIONAL = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _shape(parameters: list[inspect.Parameter]) -> list[tuple[str, inspect._ParameterKind, object]]:
    return [(p.name, p.kind, p.default) for p in parameters]


@pytest.mark.parametrize("backend", [RedisStore, SQLiteStore], ids=lambda b: b.__name__)
@pytest.mark.parametrize("name", MEMBERS)
def test_backend_parameters_match_the_protocol(backend: type, name: str) -> None:
    expected = list(inspect.signature(getattr(UnitStore, name)).parameters.values())
    # inspect.signature follows functools.wraps, so a method behind RedisStore's _guard
    # shows its own parameters
    actual = list(inspect.signature(getattr(backend, name)).parameters.values())
    assert _shape(actual[: len(expected)]) == _shape(expected)
    extra = actual[len(expected):]
    assert all(p.default is not inspect.Parameter.empty or p.kind in OPTIONAL for p in extra), extra


def test_the_protocol_lists_every_method() -> None:
    assert {"get_unit", "append_event", "allocate_range", "scan_history", "changes", "close"} <= set(MEMBERS)
