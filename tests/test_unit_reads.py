"""Anonymous unit reads, answered before Starlette's router (resolver.api.units.read_anonymously)
and, for units their batch speaks for, from the remembered view (resolver.journeys.reading):
the same answer as the full route, the request id and problem+json kept, and a write seen
by the very next read."""

from __future__ import annotations

import time

import pytest

from tests.test_journeys import key, mint_units, unit_path
from tests.test_resolver_units import wait_for

GTIN = "09506000134352"
#: a serialink_* cookie that is no token: it takes the full route (a credential may change the
#: answer), which answers it as anonymous — the reference the fast path must match
FULL_ROUTE = {"cookie": "serialink_pref=1"}


@pytest.fixture
def minted(resolver_factory):
    r = resolver_factory()
    serials = mint_units(r, 5, "LR1", f"reads-{time.time_ns()}")
    wait_for(lambda: r.services.lookup.presence is not None)
    r.get(f"/01/{GTIN}/21/{serials[0]}")  # the scan path caches the GTIN's data, as in service
    return r, serials


def test_the_anonymous_read_answers_as_the_full_route_does(minted):
    r, serials = minted
    for serial in serials[:3]:  # the first fills the remembered view, the others are answered from it
        fast = r.client.get(unit_path(serial), headers={"x-request-id": f"read-{serial}"})
        full = r.client.get(unit_path(serial), headers=FULL_ROUTE)
        assert fast.status_code == full.status_code == 200
        assert fast.json() == full.json() and fast.content == full.content
        assert fast.json()["serial"] == serial and fast.json()["links"]["manuals"]
        assert fast.headers["x-request-id"] == f"read-{serial}" and full.headers["x-request-id"]
        for header in ("etag", "vary", "content-type"):
            assert fast.headers[header] == full.headers[header], header
        assert fast.headers["cache-control"].startswith("public, max-age=")
        assert full.headers["cache-control"] == "private, no-store"
    head = r.client.head(unit_path(serials[1]))
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == '"0"'


def test_errors_are_problems_with_the_request_id(minted):
    r, _ = minted
    unknown = r.client.get(unit_path("NOBODYISSUED"), headers={"x-request-id": "lb-404"})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["field"] == "serial" and unknown.headers["x-request-id"] == "lb-404"
    bad = r.client.get(f"/v1/units/01/{GTIN[:-1]}9/21/ABC")
    assert bad.status_code == 400 and bad.json()["field"] == "path" and bad.headers["x-request-id"]
    # a sub-resource, a write and a credential are not the anonymous read: their routes answer
    assert r.client.get(unit_path("NOBODYISSUED", "/events")).status_code == 405
    assert r.client.get(unit_path("NOBODYISSUED"), headers={"authorization": "Bearer nonsense"}).status_code == 401


def test_writes_reach_the_next_anonymous_read(minted):
    r, serials = minted
    for serial in serials[:2]:
        assert r.client.get(unit_path(serial)).json()["recalled"] is False
    recall = r.client.post("/v1/recalls", headers={**r.auth("manufacturer", gtins=[GTIN]), **key()},
                           json={"gtin": GTIN, "lot": "LR1", "reason": "Burner seal may leak"})
    assert recall.status_code == 201, recall.text
    for serial in serials:
        view = r.client.get(unit_path(serial)).json()
        assert view["recalled"] is True and view == r.client.get(unit_path(serial), headers=FULL_ROUTE).json()
    r.unit(GTIN, serials[3], "sell", commission={"lot": "LR1"}, sell={"purchase_date": "2026-01-02"})  # its own record
    view = r.client.get(unit_path(serials[3])).json()
    assert view["version"] == 2 and view["state"] == "sold" and view["recalled"] is True
    assert view == r.client.get(unit_path(serials[3]), headers=FULL_ROUTE).json()


def test_another_workers_write_reaches_the_anonymous_read_within_the_feed_poll(minted):
    """The read takes a record as scans do (the worker's cache, kept fresh by the change
    feed): a write elsewhere shows within ``changes_poll_seconds`` (0.05 s here)."""
    from twin.events import Actor, make_event
    from twin.store import open_store

    r, serials = minted
    serial = serials[4]
    r.unit(GTIN, serial, commission={"lot": "LR1"})
    assert r.client.get(unit_path(serial)).json()["version"] == 1  # cached now

    async def other_worker_sells():
        async with await open_store(r.services.settings.store_url) as other:
            await other.append_event(GTIN, serial, make_event("sell", Actor("manufacturer", "elsewhere"), "test",
                                                              purchase_date="2026-01-02"))

    r.client.portal.call(other_worker_sells)
    wait_for(lambda: r.client.get(unit_path(serial)).json()["state"] == "sold", timeout=2.0)
    assert r.client.get(unit_path(serial)).json() == r.client.get(unit_path(serial), headers=FULL_ROUTE).json()
