"""Millions of registered units in a SQLite store, fast enough for a benchmark.

``store.append_event`` writes one unit's event per transaction, with its checks, an audit
row and a change-feed entry: about 3,000 units a second here, an hour for 10M. This
loader writes the same records in bulk instead:

  * each unit's three events (commission, sell, register) are folded by the store's own
    write plan (``twin.store.next_unit``, so the transitions are checked once, on a
    template unit) and encoded with the store's own codec (``twin.codec``): the ``units``
    rows (the record a scan reads) and the ``events`` rows hold exactly the bytes
    ``append_event`` would write;
  * rows go in with ``executemany`` in transactions of 100k units, in key order, with
    ``synchronous=OFF`` (a crash mid-load loses the load, nothing else).

What it bypasses, and why that does not change what is measured: no audit rows, no
change-feed entries, no ``gtin_versions`` bump, no idempotency rows, no personal-data
rows. A worker starting on the store reads none of them to build its presence filter
(``SELECT gtin, serial FROM units``), and a scan reads only ``units``. The feed would be
trimmed to its last 100,000 entries anyway. The event timestamps are the template's
(all units were "registered" at the same instant); the owner differs per unit.

>>> import tempfile, asyncio
>>> d = tempfile.mkdtemp()
>>> load_registered(f"{d}/t.db", 1000)
1000
>>> from twin.store import open_store
>>> async def read(url):
...     async with await open_store(url) as store:
...         unit = await store.get_unit(GTINS[0], serial_of(0))
...         return str(unit.state), unit.version, len(await store.get_events(GTINS[0], serial_of(0)))
>>> asyncio.run(read(f"sqlite:///{d}/t.db"))
('registered', 3, 3)
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from types import MappingProxyType

from twin import codec
from twin.events import Actor, Event, make_event
from twin.store import next_unit, open_store
from twin.unit import Unit


def _gtin(body: str) -> str:
    """A valid GTIN-14 from 13 digits (the GS1 mod-10 check digit appended)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


#: The installed base is spread over 100 GTINs (one company prefix, 100 item references).
GTINS = tuple(_gtin(f"0950600099{i:03d}") for i in range(100))
CHUNK = 100_000


def serial_of(i: int) -> str:
    """The serial of bulk unit ``i`` (outside every minted profile's alphabet and length)."""
    return f"B{i:011d}"


def key_of(i: int) -> tuple[str, str]:
    return GTINS[i % len(GTINS)], serial_of(i // len(GTINS))


def _template() -> tuple[Unit, bytes, bytes, Event]:
    actor = Actor("manufacturer", "bulkload")
    commission = make_event("commission", actor, "bulk load")
    sell = make_event("sell", actor, "bulk load", purchase_date="2026-01-02")
    register = make_event("register", actor, "bulk load", owner="owner-template")
    unit = None
    for event in (commission, sell, register):
        unit = next_unit(unit, None, event, GTINS[0], serial_of(0), None)
    assert unit is not None and str(unit.state) == "registered"
    return unit, codec.encode_event(commission), codec.encode_event(sell), register


def _rows(start: int, stop: int, template: Unit, commission: bytes, sell: bytes,
          register: Event) -> tuple[list[tuple[str, str, bytes]], list[tuple[str, str, int, bytes]]]:
    units, events = [], []
    encode_unit, encode_event = codec.encode_unit, codec.encode_event
    for i in range(start, stop):
        gtin, serial = key_of(i)
        owner = f"owner-{i:012d}"
        # the template's register event, validated once, with this unit's owner
        units.append((gtin, serial, encode_unit(template._replace(gtin=gtin, serial=serial, owner=owner))))
        events.append((gtin, serial, 1, commission))
        events.append((gtin, serial, 2, sell))
        events.append((gtin, serial, 3, encode_event(replace(register, data=MappingProxyType({"owner": owner})))))
    return units, events


def _chunks(count: int) -> Iterator[tuple[int, int]]:
    for start in range(0, count, CHUNK):
        yield start, min(count, start + CHUNK)


def load_registered(path: str, count: int, *, first: int = 0) -> int:
    """Add ``count`` registered units (numbers ``first`` … ``first + count - 1``) to the
    SQLite store at ``path`` (created with the store's schema if absent); returns ``count``."""

    async def create() -> None:  # the schema, WAL mode and meta rows exactly as the store makes them
        async with await open_store(f"sqlite:///{path}"):
            pass

    asyncio.run(create())
    template, commission, sell, register = _template()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        for start, stop in _chunks(count):
            units, events = _rows(first + start, first + stop, template, commission, sell, register)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO units VALUES (?, ?, ?)", units)
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", events)
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return count
