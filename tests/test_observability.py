"""What operators watch, on a real `serialink serve`: /metrics summed over workers, JSON log
lines with request ids, X-Request-Id echoed, the store's coalescing visible."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.fault_harness import GTIN, Serve, token, wait_until

LINE = {"authorization": f"Bearer {token('line', sites=['s1'], lines=['l1'])}"}


@pytest.fixture
def two_workers(tmp_path: Path, redis_factory):
    serve = Serve(tmp_path, redis_factory().url, workers=2).start()
    yield serve
    serve.close()


def test_metrics_sum_every_worker_whichever_is_scraped(two_workers: Serve):
    serve = two_workers
    body = {"gtin": GTIN, "count": 300, "profile": "default", "request_id": "obs-1", "site": "s1", "line": "l1"}
    assert serve.client.post("/v1/batches", json=body, headers=LINE).status_code == 201
    n = 400
    for i in range(n):
        assert serve.client.get(f"/01/{GTIN}/21/NOPE{i}").status_code == 307
    time.sleep(1.5)  # every worker has written a snapshot since
    totals = {serve.metric("serialink_scans_total") for _ in range(10)}
    assert totals == {n}, f"each scrape must count every worker's scans: {totals}"
    assert serve.metric("serialink_workers") == 2
    assert serve.metric("serialink_batches_minted_total", profile="default") == 1
    assert serve.metric("serialink_units_minted_total", profile="default") == 300
    assert serve.metric("serialink_store_up") == 1
    assert serve.metric("serialink_store_round_trips_total", op="allocate") >= 1
    assert serve.metric("serialink_store_batch_size_count", op="allocate") >= 1
    wait_until(lambda: serve.metric("serialink_scan_flush_seconds_count") >= 1, 5, "a scan flush is timed")
    text = serve.client.get("/metrics").text
    assert text.count("# TYPE serialink_scans_total counter") == 1 or text.count("# TYPE serialink_scans counter") == 1


def test_logs_are_json_lines_with_request_ids_that_responses_echo(two_workers: Serve):
    serve = two_workers
    r = serve.client.get(f"/01/{GTIN}", headers={"x-request-id": "lb-7f3a.1"})
    assert r.headers["x-request-id"] == "lb-7f3a.1"
    generated = serve.client.get(f"/01/{GTIN}", headers={"x-request-id": "bad id\twith tab"}).headers["x-request-id"]
    assert generated != "bad id\twith tab" and len(generated) < 40
    api = serve.client.post("/v1/batches", json={"gtin": GTIN}, headers={**LINE, "x-request-id": "api-42"})
    assert api.status_code == 422 and api.headers["x-request-id"] == "api-42"
    assert serve.stop() == 0
    lines = [l for l in serve.log_text().splitlines() if l.startswith("{")]
    entries = [json.loads(l) for l in lines]  # every JSON-looking line parses on its own
    assert entries and all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    access = [e for e in entries if e["logger"] == "serialink.access" and e.get("request_id") == "api-42"]
    assert access and access[0]["status"] == 422 and access[0]["path"] == "/v1/batches"
    assert not [e for e in entries if e["logger"] == "serialink.access" and e.get("path", "").startswith("/01/")], \
        "scans are not access-logged at info"
