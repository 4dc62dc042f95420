"""EPCIS 2.0 against GS1's official schema (read from ../shared/gs1/epcis beside the repository).

* GS1's examples are the corpus: the schema Serialink ships (config/epcis) is GS1's, and its
  verdicts on the 46 examples are the ones GS1's README records (42 valid, 4 errata).
* Every EPCIS document Serialink writes validates: the mint-time file, a unit's and a
  batch's export, the events of line reports, query results.
* Capture applies commissioning/decommissioning ObjectEvents to the twin, idempotent by
  eventID (given or the CBV 2.0 hash), refuses bad documents naming the element, and
  applies nothing of a refused document.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from resolver.journeys.epcis_line import event_hash_id

SHARED_EPCIS = Path(__file__).resolve().parents[2] / "shared" / "gs1" / "epcis"
GTIN = "09506000134352"
ERRATA = {"Example-TransactionEvents-2020_07_03y.jsonld", "WithFullCombinationOfFields--object_event_all_possible_fields.jsonld",
          "WithSensorData--SensorDataExample12.jsonld", "WithSensorData--SensorDataExample17.jsonld"}


@pytest.fixture(scope="module")
def official():
    path = SHARED_EPCIS / "EPCIS-JSON-Schema.json"
    assert path.exists(), f"GS1's EPCIS schema not found at {path}: the tests read ../shared/gs1/epcis"
    schema = json.loads(path.read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def valid(validator, doc) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]
    assert not errors, errors[:3]


def test_the_shipped_schema_is_gs1s_and_judges_gs1s_examples_as_gs1_does(official):
    from resolver.errors import Invalid
    from resolver.journeys.epcis_line import check_schema
    from settings import default_config_dir

    shipped = default_config_dir() / "epcis" / "EPCIS-JSON-Schema.json"
    assert json.loads(shipped.read_text()) == official.schema
    examples = sorted(SHARED_EPCIS.glob("examples/*.jsonld"))
    assert len(examples) == 46
    refused = set()
    for path in examples:
        doc = json.loads(path.read_text())
        reference_ok = not list(official.iter_errors(doc))
        try:
            check_schema(doc, shipped)
            ours_ok = True
        except Invalid as exc:
            ours_ok = False
            assert exc.field, path.name
        assert ours_ok == reference_ok, path.name
        if not ours_ok:
            refused.add(path.name)
    assert refused == ERRATA


def test_event_hash_ids_are_stable_and_tell_events_apart():
    base = {"type": "ObjectEvent", "eventTime": "2026-03-01T08:00:00Z", "eventTimeZoneOffset": "+00:00",
            "action": "ADD", "bizStep": "commissioning", "epcList": [f"https://id.gs1.org/01/{GTIN}/21/A"]}
    same = [dict(base, eventTime="2026-03-01T09:00:00.000+01:00"), dict(base, bizStep="https://ref.gs1.org/cbv/BizStep-commissioning"),
            dict(base, epcList=["urn:epc:id:sgtin:9506000.013435.A"])]
    other = [dict(base, action="OBSERVE"), dict(base, eventTime="2026-03-01T08:00:00.001Z"),
             dict(base, epcList=[f"https://id.gs1.org/01/{GTIN}/21/B"]), dict(base, disposition="active"),
             dict(base, readPoint={"id": "urn:epc:id:sgln:9506000.00000.0"})]
    h = event_hash_id(base)
    assert h.startswith("ni:///sha-256;") and h.endswith("?ver=CBV2.0")
    assert all(event_hash_id(e) == h for e in same)
    assert len({event_hash_id(e) for e in other} | {h}) == len(other) + 1


def _mint(r, count=200, request_id="m1"):
    headers = r.auth("manufacturer", gtins=[GTIN])
    made = r.client.post("/v1/batches", json={"gtin": GTIN, "count": count, "profile": "default", "lot": "L7",
                                              "expiry": "2028-01-31", "request_id": request_id,
                                              "formats": "csv,epcis", "line_tracking": True}, headers=headers)
    assert made.status_code == 201, made.text
    batch_id = made.json()["batch"]["id"]
    header, *rows = r.client.get(f"/v1/batches/{batch_id}/files/codes.csv", headers=headers).text.splitlines()
    return batch_id, [row.split(",")[1] for row in rows], headers


def _doc(*events):
    return {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"], "type": "EPCISDocument",
            "schemaVersion": "2.0", "creationDate": "2026-03-01T08:00:00Z", "epcisBody": {"eventList": list(events)}}


def _event(serials, action="ADD", biz_step="commissioning", at="2026-03-01T08:00:00Z", **extra):
    return {"type": "ObjectEvent", "eventTime": at, "eventTimeZoneOffset": "+00:00", "action": action,
            "bizStep": biz_step, "epcList": [f"https://id.gs1.org/01/{GTIN}/21/{s}" for s in serials], **extra}


def test_capture_applies_events_idempotently_and_every_document_we_write_validates(resolver_factory, official):
    r = resolver_factory()
    batch_id, serials, headers = _mint(r)
    other_id, other, _ = _mint(r, count=30, request_id="m2")
    valid(official, json.loads(r.client.get(f"/v1/batches/{batch_id}/files/epcis.jsonld", headers=headers).content))

    doc = _doc(_event(serials[:50], eventID="urn:uuid:5f1b0e7a-0d6e-4c2f-9a53-4b0c1d2e3f40"),
               _event(serials[50:60], at="2026-03-01T09:00:00Z"),  # no eventID: the CBV 2.0 hash is its id
               _event(serials[55:57], action="DELETE", biz_step="decommissioning", at="2026-03-01T10:00:00Z"),
               _event(other[:5]))
    first = r.client.post("/v1/epcis/capture", json=doc, headers=headers)
    assert first.status_code == 201 and first.json()["captured"] == 4, first.text
    ids = first.json()["eventIDs"]
    assert ids[1] == event_hash_id(doc["epcisBody"]["eventList"][1])
    again = r.client.post("/v1/epcis/capture", json=doc, headers=headers)
    assert again.status_code == 200 and again.json() == {"captured": 0, "replayed": 4, "eventIDs": ids}
    line = r.client.get(f"/v1/batches/{batch_id}/line", headers=headers).json()["line"]
    assert (line["commissioned"], line["decommissioned"], line["reports"]) == (58, 2, 4)
    assert r.get(f"/01/{GTIN}/21/{serials[3]}").headers["location"].startswith("https://www.example.com/register/")
    assert r.get(f"/01/{GTIN}/21/{serials[56]}").headers["location"].startswith("https://www.example.com/verify/")

    # the line's own reports are EPCIS events at the step they describe
    r.client.post(f"/v1/batches/{batch_id}/reports", headers=headers, json={
        "report_id": "cam-9", "step": "verified", "result": "fail", "grade": "D", "serials": serials[100:103]})
    r.client.post(f"/v1/batches/{batch_id}/close", headers=headers, json={"report_id": "close"})
    by_batch = r.client.get("/v1/epcis/events", params={"batch": batch_id}, headers=headers)
    assert by_batch.status_code == 200
    valid(official, by_batch.json())
    steps = [(e["action"], e["bizStep"], len(e["epcList"])) for e in by_batch.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]
    assert steps == [("ADD", "commissioning", 50), ("ADD", "commissioning", 10), ("DELETE", "decommissioning", 2),
                     ("OBSERVE", "inspecting", 3), ("DELETE", "decommissioning", 140)]
    one = r.client.get("/v1/epcis/events", headers=headers, params={
        "MATCH_epc": f"urn:epc:id:sgtin:9506000.013435.{serials[56]}", "EQ_bizStep": "decommissioning"}).json()
    valid(official, one)
    [event] = one["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert event["epcList"] == [f"https://id.gs1.org/01/{GTIN}/21/{serials[56]}"] and event["eventID"] == ids[2]
    window = r.client.get("/v1/epcis/events", headers=headers, params={
        "batch": batch_id, "GE_eventTime": "2026-03-01T08:30:00Z", "LT_eventTime": "2026-03-01T09:30:00Z"}).json()
    assert [e["eventID"] for e in window["epcisBody"]["queryResults"]["resultsBody"]["eventList"]] == [ids[1]]

    # the journeys' exports validate too
    r.unit(GTIN, "EXPORTED1", "ship", "sell", sell={"purchase_date": "2026-03-02"})
    regulator = r.auth("regulator", gtins=[GTIN])
    valid(official, r.client.get(f"/v1/units/01/{GTIN}/21/EXPORTED1/epcis", headers=regulator).json())


def test_bad_capture_documents_are_refused_naming_the_element_and_apply_nothing(resolver_factory):
    r = resolver_factory()
    batch_id, serials, headers = _mint(r, count=50)
    other_id, other, _ = _mint(r, count=10, request_id="m2")
    r.client.post("/v1/epcis/capture", json=_doc(_event(serials[:5], eventID="urn:uuid:00000000-0000-4000-8000-000000000001")),
                  headers=headers)
    before = [r.client.get(f"/v1/batches/{b}/line", headers=headers).json() for b in (batch_id, other_id)]
    cases = [
        (_doc(_event(serials[10:12], action="MAYBE")), 422, "epcisBody.eventList[0].action"),
        (dict(_doc(_event(serials[10:12])), schemaVersion=None), 422, "schemaVersion"),
        (_doc(_event(serials[10:12]), _event([serials[12], "NOSUCHSERIAL"])), 422, "epcisBody.eventList[1].epcList[1]"),
        (_doc(_event(serials[10:12]), _event(["A"], epcList=["https://id.gs1.org/01/09506000134369/21/A"])), 422,
         "epcisBody.eventList[1].epcList[0]"),
        (_doc(_event([serials[10], other[1]])), 422, "epcisBody.eventList[0].epcList[1]"),
        (_doc(_event(serials[10:12]), _event([serials[3]])), 409, "epcisBody.eventList[1].epcList[0]"),
        (_doc(_event(other[2:4]), _event(serials[20:22]), _event([serials[4]], at="2026-03-02T00:00:00Z")), 409,
         "epcisBody.eventList[2].epcList[0]"),
        (_doc(_event(serials[10:12], action="OBSERVE", biz_step="shipping")), 422, "epcisBody.eventList[0].bizStep"),
        (_doc(_event(serials[10:12], eventID="urn:uuid:00000000-0000-4000-8000-000000000001")), 409, "eventID"),
        (_doc(_event(serials[30:31]), _event(serials[30:31])), 422, "epcisBody.eventList[1].eventID"),
        (_doc(_event([serials[40], serials[40]])), 422, "epcisBody.eventList[0].epcList"),  # uniqueItems
        ({"type": "ObjectEvent"}, 422, None),
    ]
    for n, (doc, status, field) in enumerate(cases):
        got = r.client.post("/v1/epcis/capture", json=doc, headers=headers)
        assert got.status_code == status, (n, got.text)
        assert got.headers["content-type"] == "application/problem+json"
        if field is not None:
            assert got.json()["field"] == field, (n, got.text)
    after = [r.client.get(f"/v1/batches/{b}/line", headers=headers).json() for b in (batch_id, other_id)]
    assert after == before
    foreign = r.auth("line", gtins=["09506000134369"])
    assert r.client.post("/v1/epcis/capture", json=_doc(_event(serials[45:46])), headers=foreign).status_code == 403
    assert r.client.get("/v1/epcis/events", headers=headers).json()["field"] == "MATCH_epc"


def test_report_events_are_dated_when_the_line_says_it_happened():
    from pyroaring import BitMap

    from resolver.journeys.epcis_line import report_events
    from twin.batch import Batch, BatchKind, BatchStatus
    from twin.events import Actor
    from twin.line_state import LineSummary, StoredReport

    at = datetime(2026, 3, 1, tzinfo=UTC)
    batch = Batch(f"{GTIN}.default.0", GTIN, "default", 0, 25_000, BatchStatus.ALLOCATED, BatchKind.MINTED, "r", "d",
                  at, at, Actor("line", "l"), "L1")
    report = StoredReport(1, "cam-1", "d", "verified", "pass", "A", None, 1_772_323_200_000, BitMap(range(25_000)),
                          LineSummary("cam-1", "verified", 25_000, 25_000, 0, 0), ("line", "l"))
    events = report_events(batch, report, lambda i: f"S{i}")
    assert [len(e["epcList"]) for e in events] == [10_000, 10_000, 5_000]
    assert len({e["eventID"] for e in events}) == 3 and events[0]["eventTime"] == "2026-03-01T00:00:00.000Z"
    assert events[0]["ilmd"] == {"cbvmda:lotNumber": "L1"}
