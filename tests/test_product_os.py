"""Product OS on the twin through the real app: support by fault code, compatible parts,
the role-scoped DPP, scans routed by moments and fault codes, catalogues reloaded live."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.test_journeys import mint_units
from twin.codec import decode_unit, encode_unit
from twin.lifecycle import State
from twin.unit import Unit

GTIN = "09506000134352"
_keys = iter(range(10**9))


def key() -> dict[str, str]:
    return {"idempotency-key": f"pos-{time.time_ns()}-{next(_keys)}"}


def path(serial: str, suffix: str = "") -> str:
    return f"/v1/units/01/{GTIN}/21/{serial}{suffix}"


@pytest.fixture(scope="module")
def r(tmp_path_factory):
    from tests.resolver_fixtures import running_resolver

    with running_resolver(tmp_path_factory.mktemp("product-os")) as resolver:
        yield resolver


def test_support_catalogue_sessions_and_their_visibility(r):
    r.unit(GTIN, "PS1", "sell", sell={"purchase_date": "2025-03-01"})
    tech = r.auth("technician", gtins=[GTIN])
    catalogue = r.get(path("PS1", "/support")).json()
    assert [f["code"] for f in catalogue["faults"]] == ["E101", "E119", "E133"] and "sessions" not in catalogue
    one = r.get(path("PS1", "/support?fault=E133")).json()["faults"]
    assert one == [{"code": "E133", "title": "No ignition", "steps": one[0]["steps"], "parts": ["09506000134383"],
                    "technician": True}]
    missing = r.get(path("PS1", "/support?fault=E999"))
    assert missing.status_code == 404 and missing.json()["field"] == "fault"
    body = {"fault_code": "E119", "steps": ["emptied the trap"], "outcome": "technician_booked", "session": "c-1"}
    idem = key()
    first = r.client.post(path("PS1", "/support"), headers={**tech, **idem}, json=body)
    again = r.client.post(path("PS1", "/support"), headers={**tech, **idem}, json=body)
    assert (first.status_code, again.status_code, again.headers["idempotent-replayed"]) == (201, 200, "true")
    assert first.json()["version"] == again.json()["version"] == 3
    sessions = r.get(path("PS1", "/support"), headers=tech).json()["sessions"]
    assert [(s["fault_code"], s["outcome"], s["role"]) for s in sessions] == [("E119", "technician_booked", "technician")]
    view = r.get(path("PS1"), headers=tech).json()
    assert view["support"] == sessions and "E119" in view["fault_codes"]
    epcis = r.get(path("PS1", "/epcis"), headers=r.auth("manufacturer", gtins=[GTIN])).json()
    assert any(e.get("serialink:faultCode") == "E119" for e in epcis["epcisBody"]["eventList"])


@pytest.mark.parametrize(("body", "field", "status"), [
    ({"fault_code": "E999", "outcome": "resolved"}, "fault_code", 422),
    ({"fault_code": "E101", "outcome": "maybe"}, "outcome", 422),
    ({"fault_code": "E101"}, "outcome", 422),
    ({"outcome": "resolved"}, "fault_code", 422),
    ({"fault_code": "E101", "outcome": "resolved", "colour": "red"}, "colour", 422),
    ({"fault_code": "E101", "outcome": "resolved", "steps": "one"}, "steps", 422),
])
def test_bad_support_sessions_are_refused_with_the_field_and_write_nothing(r, body, field, status):
    serial = f"PS2-{next(_keys)}"
    r.unit(GTIN, serial)
    before = r.client.portal.call(r.services.store.get_unit, GTIN, serial)
    answer = r.client.post(path(serial, "/support"), headers={**r.auth("technician", gtins=[GTIN]), **key()}, json=body)
    assert (answer.status_code, answer.json()["field"]) == (status, field), answer.json()
    assert r.client.portal.call(r.services.store.get_unit, GTIN, serial) == before


def test_support_writes_need_a_role_that_may_log_them(r):
    r.unit(GTIN, "PS3")
    body = {"fault_code": "E101", "outcome": "resolved"}
    assert r.client.post(path("PS3", "/support"), headers=key(), json=body).status_code == 401
    assert r.client.post(path("PS3", "/support"), headers={**r.auth("regulator", gtins=[GTIN]), **key()},
                         json=body).status_code == 403


def test_parts_fit_by_model_and_firmware_and_are_due_from_their_interval(r):
    long_ago = datetime.now(UTC) - timedelta(days=800)
    r.unit(GTIN, "PP1", "register", "start_service", "service", "firmware", commission={"at": long_ago},
           register={"owner": "owner-00000009", "purchase_date": long_ago.date().isoformat(), "at": long_ago},
           start_service={"at": long_ago + timedelta(days=1)},
           service={"summary": "filter", "parts": ["09506000134376"], "at": datetime.now(UTC) - timedelta(days=30)},
           firmware={"version": "3.2"})
    answer = r.get(path("PP1", "/parts")).json()
    by_gtin = {p["gtin"]: p for p in answer["parts"]}
    assert by_gtin["09506000134376"]["due"] is False  # fitted a month ago, due in a year
    assert by_gtin["09506000134376"]["fitted_on"] == (date.today() - timedelta(days=30)).isoformat()
    assert by_gtin["09506000134383"]["due"] is True  # never fitted: 24 months since installation ran out
    assert by_gtin["09506000134390"]["fits"] is True  # firmware 3.2 ≥ 3.0
    assert answer["due"] == ["09506000134383"]
    r.unit(GTIN, "PP2")
    old_firmware = {p["gtin"]: p for p in r.get(path("PP2", "/parts")).json()["parts"]}
    assert old_firmware["09506000134390"]["fits"] is False and "firmware" in old_firmware["09506000134390"]["why_not"]


def test_a_service_cannot_fit_parts_made_for_another_model(r):
    r.unit(GTIN, "PP3", "sell", sell={"purchase_date": "2025-03-01"})
    tech = {**r.auth("technician", gtins=[GTIN]), **key()}
    wrong = r.client.post(path("PP3", "/events"), headers=tech,
                          json={"type": "service", "data": {"summary": "x", "parts": ["X-1", "09506000134369"]}})
    assert wrong.status_code == 422 and wrong.json()["field"] == "data.parts[1]"
    assert r.client.portal.call(r.services.store.get_unit, GTIN, "PP3").services == 0


def test_the_dpp_is_role_scoped_and_carries_the_repair_history(r):
    r.unit(GTIN, "PD1", "sell", "service", "dpp", sell={"purchase_date": "2025-03-01"},
           service={"summary": "trap cleaned", "fault_codes": ["E119"]},
           dpp={"document": {"gs1:netWeight": "41 kg", "serialink:restricted": {
               "repairer": {"serialink:torqueSpecs": "12 Nm"}, "recycler": {"serialink:materials": ["steel"]},
               "regulator": {"serialink:conformity": "EU 2024/1781"}}}})
    public = r.get(path("PD1", "/dpp")).json()
    assert public["gs1:netWeight"] == "41 kg" and public["serialink:repairCount"] == 1
    assert not {"serialink:torqueSpecs", "serialink:materials", "serialink:conformity", "serialink:repairHistory",
                "serialink:restricted"} & public.keys()
    repairer = r.get(path("PD1", "/dpp"), headers=r.auth("technician", gtins=[GTIN])).json()
    assert repairer["serialink:torqueSpecs"] == "12 Nm" and "serialink:materials" not in repairer
    assert repairer["serialink:repairHistory"][0]["serialink:faultCodes"] == ["E119"]
    regulator = r.get(path("PD1", "/dpp"), headers=r.auth("regulator", gtins=[GTIN])).json()
    assert {"serialink:torqueSpecs", "serialink:materials", "serialink:conformity"} <= regulator.keys()
    assert r.get(path("PD1", "/dpp"), headers=r.auth("line", gtins=[GTIN])).status_code == 403


def test_scans_route_by_fault_code_and_by_moment(r):
    serial = mint_units(r, 3, "LPOS", "pos-batch")[0]
    fault = r.get(f"/01/{GTIN}/21/{serial}?fault=E119")
    assert fault.headers["location"] == "https://www.example.com/support/x100/faults/E119?fault=E119"
    assert r.get(f"/01/{GTIN}/21/{serial}").headers["location"].startswith("https://www.example.com/register/")
    two_years = datetime.now(UTC) - timedelta(days=730)
    r.unit(GTIN, "PM1", "register", commission={"at": two_years},
           register={"owner": "owner-00000001", "purchase_date": two_years.date().isoformat(), "at": two_years})
    assert r.get(f"/01/{GTIN}/21/PM1").headers["location"] == f"https://service.example.com/book/{GTIN}/PM1"
    r.unit(GTIN, "PM2", "register", register={"owner": "owner-00000002", "purchase_date": date.today().isoformat()})
    assert r.get(f"/01/{GTIN}/21/PM2").headers["location"] == "https://www.example.com/boilers/x100"


def test_catalogues_reload_live_and_a_bad_edit_keeps_the_old_one(r):
    faults = r.services.faults
    original = faults.path.read_text()
    try:
        faults.path.write_text(original.replace("code: E101", "code: E102"))
        assert faults.check() and faults.current.fault(GTIN, "E102") is not None
        faults.path.write_text(original.replace("title: No ignition", "title: 42\n        bogus: x"))
        assert not faults.check() and faults.current.fault(GTIN, "E102") is not None
    finally:
        faults.path.write_text(original)
        faults.check()
    assert faults.current.fault(GTIN, "E101") is not None


def test_a_record_written_before_the_new_fields_still_reads():
    unit = Unit(GTIN, "OLD", State.SOLD, 2, made_on=date(2025, 1, 1), parts=(("P1", date(2025, 2, 1)),))
    blob = encode_unit(unit)
    import msgpack

    fields = msgpack.unpackb(blob[1:])[:20]
    old = decode_unit(bytes((1,)) + msgpack.packb(fields), GTIN, "OLD", "k")
    assert old == unit._replace(made_on=None, parts=())
