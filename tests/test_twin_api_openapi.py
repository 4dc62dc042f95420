"""The OpenAPI document: valid OpenAPI 3.1, served, and covering every route the app mounts under /v1."""

from __future__ import annotations

from openapi_spec_validator import validate

from resolver.api import openapi


def test_the_served_document_is_valid_and_documents_every_v1_route(resolver):
    served = resolver.client.get("/openapi.json")
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    doc = served.json()
    validate(doc)
    mounted = openapi.api_paths(resolver.app)
    assert len(mounted) >= 24
    for path, method, name in mounted:  # each mounted route, each method: an operation
        operation = doc["paths"][path][method.lower()]
        assert operation["responses"] and operation["summary"] and operation["operationId"] == f"{name}_{method.lower()}"
    documented = {(p, m.upper()) for p, item in doc["paths"].items() for m in item}
    assert documented == {(p, m) for p, m, _ in mounted}
    assert {"/v1/links", "/v1/units/01/{gtin}/21/{serial}", "/v1/recalls", "/v1/tokens"} <= set(doc["paths"])
    assert any("/batches/{batch_id}" in p for p in doc["paths"])


def test_an_undocumented_route_fails_the_build_of_the_document():
    import pytest

    with pytest.raises(KeyError, match="not documented"):
        openapi.document_for([("/v1/secret", "GET", "secret_endpoint")])


def test_the_docs_page_lists_the_operations(resolver):
    page = resolver.client.get("/docs")
    assert page.status_code == 200 and "/v1/units/01/{gtin}/21/{serial}/transfer/claim" in page.text
    assert "<script" not in page.text
