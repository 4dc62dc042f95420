"""Static proof that every store backend satisfies :class:`twin.store.UnitStore`.

mypy checks the functions below (``python -m mypy``, see pyproject.toml): each returns a
backend where the protocol is expected, so a method whose name, parameters (names, kinds,
defaults) or return type drift from the protocol is a type error. Nothing here runs: the
module is empty at run time. ``RedisStore`` is both the single-node and the Cluster
backend (``redis://`` and ``redis+cluster://``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin.redis_store import RedisStore
    from twin.sqlite_store import SQLiteStore
    from twin.store import UnitStore

    def _redis(store: RedisStore) -> UnitStore:
        return store

    def _sqlite(store: SQLiteStore) -> UnitStore:
        return store
