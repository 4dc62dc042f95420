"""Remembered answers to anonymous GTIN-level scans (resolver.scan.memo): reused only while
the rules and the GTIN's cached data are the ones they were decided with, each reuse still
recorded as a scan with its own request id, and never for a credentialed or debug scan.

Real parts: the real ASGI app on a SQLite file, the example rules, the recall API.
"""

from __future__ import annotations

import time

from tests.resolver_fixtures import running_resolver

GTIN = "09506000134352"


def _scans_counted(r) -> float:
    text = r.get("/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("serialink_scans_total{") and 'role="consumer"' in line and 'status="307"' in line)


def wait_for(fetch, done, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_a_repeated_product_scan_is_answered_again_recorded_and_with_its_own_request_id(tmp_path):
    with running_resolver(tmp_path) as r:
        memo = r.app.state.scan_handler.memo
        r.get(f"/01/{GTIN}")  # the GTIN's data is read (and cached) by the first scan of it
        before = _scans_counted(r)
        first = r.get(f"/01/{GTIN}", headers={"x-request-id": "scan-one"})
        hits = memo.hits
        second = r.get(f"/01/{GTIN}", headers={"x-request-id": "scan-two"})
        assert first.status_code == second.status_code == 307
        assert memo.hits == hits + 1
        assert {k: v for k, v in first.headers.items() if k != "x-request-id"} == \
               {k: v for k, v in second.headers.items() if k != "x-request-id"}
        assert (first.headers["x-request-id"], second.headers["x-request-id"]) == ("scan-one", "scan-two")
        assert _scans_counted(r) == before + 2
        assert memo.hits == hits + 1
        # another question (Accept-Language, query, lot) is its own entry, not the first one's answer
        third = r.get(f"/01/{GTIN}?linkType=gs1:pip")
        assert third.status_code in (307, 404) and memo.hits == hits + 1


def test_a_recall_reaches_the_next_product_scan(tmp_path):
    with running_resolver(tmp_path) as r:
        memo = r.app.state.scan_handler.memo
        path = f"/01/{GTIN}/10/LJ1"
        before = r.get(path).headers["location"]
        assert r.get(path).headers["location"] == r.get(path).headers["location"] == before and memo.hits >= 1
        recall = r.client.post("/v1/recalls", headers={**r.auth("manufacturer", gtins=[GTIN]), "idempotency-key": "rc-1"},
                               json={"gtin": GTIN, "lot": "LJ1", "reason": "Burner seal may leak"})
        assert recall.status_code == 201, recall.text
        after = r.get(path)
        assert after.status_code == 307 and after.headers["location"].startswith("https://www.example.com/recalls/")
        assert after.headers["location"] != before


def test_a_rules_reload_reaches_the_next_product_scan(tmp_path):
    with running_resolver(tmp_path) as r:
        path = f"/01/{GTIN}"
        before = r.get(path).headers["location"]
        r.get(path)
        text = r.rules_file.read_text()
        host = before.split("/")[2]
        assert host in text
        r.rules_file.write_text(text.replace(host, "moved.example.com"))
        after = wait_for(lambda: r.get(path).headers["location"], lambda loc: "moved.example.com" in loc)
        assert after == before.replace(host, "moved.example.com")


def test_credentialed_and_debug_scans_are_never_answered_from_memory(tmp_path):
    with running_resolver(tmp_path) as r:
        memo = r.app.state.scan_handler.memo
        path = f"/01/{GTIN}"
        anonymous = r.get(path)
        r.get(path)
        token = r.auth("manufacturer", gtins=[GTIN])
        hits = memo.hits
        for _ in range(2):
            credentialed = r.get(path, headers=token)
            debug = r.get(path, headers={**token, "x-serialink-debug": "1"})
            assert credentialed.headers["cache-control"] == debug.headers["cache-control"] == "private, no-store"
            assert "x-serialink-trace" in debug.headers
        assert memo.hits == hits
        assert "private" not in anonymous.headers["cache-control"]
        assert r.get(path).headers["cache-control"] == anonymous.headers["cache-control"] and memo.hits == hits + 1
