"""What an operator must change when the store may lose writes it acknowledged.

A Redis without ``appendonly yes`` + ``appendfsync always`` answers a write before it is
on disk: a crash can take back an allocated counter range, and serials would be issued
twice. The store then refuses writes (``UnsafeDurability``), ``/readyz`` says writes are
degraded, and ``serialink serve`` warns at startup, all with this one sentence, so the
setting to change is named the same way everywhere.

>>> durability_advice("redis://db:6379/0", "everysec")[:60]
"redis://db:6379/0 reports AOF fsync 'everysec': writes are r"
"""

from __future__ import annotations

#: The Redis setting the advice names (also the ``field`` of the 503 problem).
SETTING = "appendfsync"


def durability_advice(url: str, mode: str) -> str:
    """The one sentence: what the server reports, what is refused, what to change."""
    return (f"{url} reports AOF fsync {mode!r}: writes are refused until the Redis server runs "
            f"appendonly yes and {SETTING} always (CONFIG SET appendonly yes; CONFIG SET {SETTING} always; "
            f"no restart needed), or the store URL says ?durability=relaxed to accept that a crash may "
            f"lose acknowledged writes and re-issue serials")
