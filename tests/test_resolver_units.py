"""Unit facts on the scan path: the presence filter skips the store only for units that
certainly have no record, and learns of records written by other processes from the feed."""

from __future__ import annotations

import time

from twin.events import Actor, make_event

GTIN = "09506000134352"


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_presence_filter_skips_reads_and_learns_from_other_writers(resolver_factory):
    r = resolver_factory()
    r.unit(GTIN, "EARLY1", "sell", sell={"purchase_date": "2026-01-02"})  # recorded before the filter is built
    lookup = r.services.lookup
    wait_for(lambda: lookup.presence is not None)
    before = lookup.stats.unit_skips
    assert r.get(f"/01/{GTIN}/21/NEVER1").status_code == 307
    assert lookup.stats.unit_skips == before + 1
    early = r.get(f"/01/{GTIN}/21/EARLY1")
    assert early.headers["location"].startswith("https://www.example.com/register/")  # sold → register

    # another process writes a unit: this worker must see its record after the feed moves on
    from twin.store import open_store

    async def other_worker_writes():
        async with await open_store(r.services.settings.store_url) as other:
            actor = Actor("manufacturer", "elsewhere")
            for kind in ("commission", "sell", "register"):
                data = {"sell": {"purchase_date": "2026-01-02"}, "register": {"owner": "owner-0001-x"}}.get(kind, {})
                await other.append_event(GTIN, "LATE1", make_event(kind, actor, "test", **data))

    assert r.get(f"/01/{GTIN}/21/LATE1").headers["location"].startswith("https://www.example.com/verify/")
    r.client.portal.call(other_worker_writes)
    wait_for(lambda: r.get(f"/01/{GTIN}/21/LATE1").headers["location"] == "https://www.example.com/boilers/x100")


def test_a_unit_written_through_this_worker_is_seen_at_once(resolver_factory):
    r = resolver_factory()
    lookup = r.services.lookup
    wait_for(lambda: lookup.presence is not None)
    assert r.get(f"/01/{GTIN}/21/NOW1").headers["location"].startswith("https://www.example.com/verify/")
    r.unit(GTIN, "NOW1", "sell", "register", sell={"purchase_date": "2026-01-02"},
           register={"owner": "owner-0002-x"})  # invalidates like the API does
    assert r.get(f"/01/{GTIN}/21/NOW1").headers["location"] == "https://www.example.com/boilers/x100"
