"""EPC URNs split at the company prefix the configuration knows (resolver.journeys.epc_names):
the rules' ``company_prefix`` products and the prefixes SSCCs were minted under; 7 digits
only when nothing matches. URNs read back whatever their split. Real app, real stores."""

from __future__ import annotations

import pytest

from resolver.journeys.aggregation import parse_sscc
from resolver.journeys.epc_names import DEFAULT_GCP_LENGTH, EpcNames
from resolver.journeys.epcis_line import parse_epc
from tests.test_aggregation import GTIN, _mint, _report, sscc
from tests.test_aggregation_query import official  # noqa: F401  (a fixture)


def _uri(serial):
    return f"https://id.gs1.org/01/{GTIN}/21/{serial}"


@pytest.fixture(params=["sqlite", "redis"])
def store_of(request):
    if request.param == "sqlite":
        return None
    from tests.redis_fixtures import fresh_namespace

    return f"{request.getfixturevalue('redis_url')}?prefix={fresh_namespace()}"


def _rules_with_prefix(r_default_text: str, prefix: str) -> str:
    assert 'company_prefix: "9506000"' in r_default_text
    return r_default_text.replace('company_prefix: "9506000"', f'company_prefix: "{prefix}"')


def _default_rules() -> str:
    from settings import default_config_dir

    return (default_config_dir() / "rules.yaml").read_text()


def test_urns_read_back_for_every_prefix_length():
    gtin, case = GTIN, sscc(7)
    for length in range(6, 13):
        names = EpcNames.of([gtin[1:1 + length], case[1:1 + length]])
        urn = names.sgtin_urn(gtin, "A/1 x")
        assert urn.split(":")[4].split(".")[0] == gtin[1:1 + length]
        assert parse_epc(urn, "epc") == (gtin, "A/1 x")
        sscc_urn = names.sscc_urn(case)
        assert len(sscc_urn.split(":")[4].split(".")[0]) == length and parse_sscc(sscc_urn, "parent") == case
    # nothing configured matches: 7 digits; a prefix too short for a URN is not used
    assert EpcNames.of(["4012345", "9506"]).gcp_length(gtin[1:]) == DEFAULT_GCP_LENGTH == 7
    assert EpcNames.of(["95060001", "9506000"]).gcp_length(gtin[1:]) == 8  # the longest that matches


def test_event_urns_follow_the_rules_company_prefix(store_of, resolver_factory, official):  # noqa: F811
    from tests.test_aggregation import valid

    r = resolver_factory(store_of, rules_text=_rules_with_prefix(_default_rules(), "950600013"))
    batch_id, serials, headers = _mint(r)
    _report(r, batch_id, headers, "v1", "verified", 0, 40, result="pass", grade="A")
    case = sscc(301)  # 0 9506000 000000301 …: no configured prefix matches it
    done = r.client.post("/v1/aggregations", headers=headers, json={
        "action": "pack", "parent": case, "children": [_uri(s) for s in serials[:2]], "eventID": "p9"})
    assert done.status_code == 201, done.text
    event = done.json()["event"]
    assert event["childEPCs"] == [f"urn:epc:id:sgtin:950600013.0435.{s}" for s in serials[:2]]
    assert event["parentID"] == f"urn:epc:id:sscc:9506000.0{case[8:17]}"
    valid(official, [event])
    contents = r.client.get(f"/v1/aggregations/{case}", headers=headers).json()
    assert sorted(c["epc"] for c in contents["children"]) == sorted(event["childEPCs"])
    # the URN written is the URN read: query and capture take it back
    found = r.client.get("/v1/epcis/events", headers=headers, params={"MATCH_epc": event["childEPCs"][0]}).json()
    assert [e["eventID"] for e in found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            if e["type"] == "AggregationEvent"] == [event["eventID"]]
    doc = {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"], "type": "EPCISDocument",
           "schemaVersion": "2.0", "creationDate": "2026-03-01T08:00:00Z", "epcisBody": {"eventList": [
               {**event, "eventID": "urn:uuid:6a1c2d3e-0000-4000-8000-000000000009", "action": "DELETE",
                "bizStep": "unpacking", "eventTime": "2099-01-01T00:00:00Z"}]}}
    out = r.client.post("/v1/epcis/capture", json=doc, headers=headers)
    assert out.status_code == 201, out.text
    assert r.client.get(f"/v1/aggregations/{case}", headers=headers).json()["children"] == []


def test_event_urns_follow_the_prefix_sscc_were_minted_under(store_of, resolver_factory):
    r = resolver_factory(store_of)  # the shipped rules: company prefix 9506000
    batch_id, serials, headers = _mint(r)
    _report(r, batch_id, headers, "v1", "verified", 0, 40, result="pass", grade="A")
    minted = r.client.post("/v1/ssccs", headers=r.auth("manufacturer", all_products=True), json={
        "prefix": "95060001", "extension": "0", "count": 2, "request_id": "cases-1", "formats": "csv"})
    assert minted.status_code == 201, minted.text
    case = minted.json()["sscc_range"]["first"]
    done = r.client.post("/v1/aggregations", headers=headers, json={
        "action": "pack", "parent": case, "children": [_uri(serials[0])]})
    assert done.status_code == 201, done.text
    event = done.json()["event"]
    # 95060001 (minted SSCCs) is longer than 9506000 (the rules): it wins, for the GTIN too
    assert event["parentID"] == f"urn:epc:id:sscc:95060001.0{case[9:17]}"
    assert event["childEPCs"] == [f"urn:epc:id:sgtin:95060001.03435.{serials[0]}"]
    other = sscc(302)  # an SSCC of prefix 9506000: the rules' prefix
    assert r.client.post("/v1/aggregations", headers=headers, json={
        "action": "pack", "parent": other, "children": [_uri(serials[1])]}).json()["event"]["parentID"] \
        == f"urn:epc:id:sscc:9506000.0{other[8:17]}"
