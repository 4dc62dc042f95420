"""EPCIS 2.0 capture on Redis: at least 20k events/s, checked and applied.

A line system sends one EPCISDocument of 20,000 commissioning ObjectEvents (one unit
each, eventIDs given). Timed end to end below HTTP: GS1's JSON Schema over the whole
document (jsonschema-rs), every EPC parsed and found in its batch (the serial verifier:
permutation inverse, no store read), one line report per event, and the whole document
applied to the batch's line state in one atomic Redis write with its 20,000 eventIDs.
Peer in the same run: the same events applied one store write per event.

    python -m pytest benchmarks/bench_epcis.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resolver.journeys.epcis_line import plan_capture
from serializer.keys import KeyStore
from serializer.minting import BatchRequest, mint
from serializer.profiles import load_profiles
from serializer.verify import SerialVerifier
from settings import default_config_dir
from twin.events import Actor
from twin.store import open_store

GTIN = "09506000134352"
EVENTS = 20_000
LINE = Actor("line", "bench")
SCHEMA = default_config_dir() / "epcis" / "EPCIS-JSON-Schema.json"
_ids = itertools.count()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _document(serials: list[str], tag: str) -> dict[str, Any]:
    events = [{"type": "ObjectEvent", "eventID": f"urn:uuid:{tag}-{i}", "eventTime": "2026-03-01T08:00:00.000Z",
               "eventTimeZoneOffset": "+00:00", "action": "ADD", "bizStep": "commissioning", "disposition": "active",
               "epcList": [f"https://id.gs1.org/01/{GTIN}/21/{s}"]} for i, s in enumerate(serials)]
    return {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"], "type": "EPCISDocument",
            "schemaVersion": "2.0", "creationDate": "2026-03-01T08:00:00Z", "epcisBody": {"eventList": events}}


def test_capture_twenty_thousand_events_on_redis(benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path,
                                                 redis_url: str) -> None:
    store = loop.run_until_complete(open_store(f"{redis_url}?prefix=bepcis{os.getpid()}x{next(_ids)}"))
    keys, profiles = KeyStore(tmp_path / "keys"), load_profiles()
    verifier = SerialVerifier(store, keys, profiles)
    rounds = itertools.count()

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        n = next(rounds)
        minted = loop.run_until_complete(mint(store, keys, profiles, BatchRequest.parse(
            {"gtin": GTIN, "count": EVENTS, "profile": "default", "request_id": f"e{n}"}), LINE))
        verifier.invalidate(GTIN)  # what the change feed does for a resolver when a batch is minted
        return (_document(minted.serials(), f"r{n}"),), {}

    async def capture(document: dict[str, Any]) -> int:
        plan = await plan_capture(document, SCHEMA, verifier)
        done = 0
        for batch_id, reports in plan.reports.items():
            done += len(await store.apply_line_reports(batch_id, reports, LINE))
        return done

    benchmark.pedantic(lambda d: loop.run_until_complete(capture(d)), setup=setup, rounds=3, iterations=1)
    ours = EVENTS / benchmark.stats.stats.min

    (doc,), _ = setup()
    plan = loop.run_until_complete(plan_capture(doc, SCHEMA, verifier))
    [(batch_id, reports)] = plan.reports.items()

    async def one_by_one(n: int) -> float:
        t0 = time.perf_counter()
        for report in reports[:n]:
            await store.apply_line_reports(batch_id, [report], LINE)
        return n / (time.perf_counter() - t0)

    peer = loop.run_until_complete(one_by_one(1_000))
    benchmark.extra_info.update(events_per_second=round(ours), peer_events_per_second=round(peer))
    print(f"\ncapture: {ours:,.0f} EPCIS events/s (one write per document); one write per event {peer:,.0f}/s")
    loop.run_until_complete(store.close())
    assert ours >= 20_000, f"{ours:,.0f} events/s is under the 20k/s target"
