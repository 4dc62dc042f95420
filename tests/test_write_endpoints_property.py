"""Every write endpoint of the OpenAPI document, given fields of the wrong JSON type, answers
4xx problem+json — never a 5xx, never a success.

The endpoints and their body schemas come from the running app's ``/openapi.json``, so an
endpoint added later is driven too. Each example keeps the body an object of the schema's
properties, with at least one of them (or the whole body) of a type the schema does not allow;
the caller holds a token that gets past authentication where a role can.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.resolver_fixtures import running_resolver

GTIN = "09506000134352"
WRITE_METHODS = ("post", "put", "patch", "delete")

_JSON_TYPES = {
    "string": st.text(max_size=8),
    "integer": st.integers(-3, 10**12),
    "number": st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "array": st.lists(st.integers(0, 9) | st.text(max_size=3), max_size=3),
    "object": st.dictionaries(st.text(max_size=3), st.integers(0, 9), max_size=2),
    "null": st.none(),
}


def _allowed(schema: dict) -> set[str]:
    """The JSON types a schema accepts (``number`` includes ``integer``); empty: any."""
    kinds = schema.get("type")
    if kinds is None:
        out: set[str] = set()
        for alternative in schema.get("oneOf", []) + schema.get("anyOf", []):
            out |= _allowed(alternative) or set(_JSON_TYPES)
        if "enum" in schema:
            out |= {"string"} if all(isinstance(v, str) for v in schema["enum"]) else set(_JSON_TYPES)
        return out
    kinds = {kinds} if isinstance(kinds, str) else set(kinds)
    if "number" in kinds:
        kinds.add("integer")
    if schema.get("nullable"):
        kinds.add("null")
    return kinds


def _wrong_value(schema: dict) -> st.SearchStrategy:
    allowed = _allowed(schema)
    wrong = [kind for kind in _JSON_TYPES if kind not in allowed and allowed]
    if "integer" in allowed and "number" not in allowed:
        wrong = [w for w in wrong if w != "number"] + ["number"]
        return st.one_of([_JSON_TYPES[w] for w in wrong if w != "number"]
                         + [st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())])
    return st.one_of([_JSON_TYPES[w] for w in wrong]) if wrong else st.nothing()


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
    return schema


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_resolver(tmp_path_factory.mktemp("wrong-types")) as r:
        yield r


@pytest.fixture(scope="module")
def world(app):
    """Real things for the path parameters: a minted batch, its unit, tokens of each role."""
    admin = app.auth("admin", all_products=True)
    made = app.client.post("/v1/batches", json={"gtin": GTIN, "count": 3, "request_id": f"wt-{time.time_ns()}"},
                           headers=admin)
    assert made.status_code == 201, made.text
    batch = made.json()["batch"]["id"]
    serial = app.client.get(f"/v1/batches/{batch}/files/codes.csv", headers=admin).text.splitlines()[1].split(",")[1]
    params = {"gtin": GTIN, "serial": serial, "batch_id": batch, "token_id": "t" * 16, "overlay_id": "o" * 16, "key_id": "k" * 16, "visit_id": "v" * 16, "session_id": "s" * 16}
    headers = [admin, app.auth("manufacturer", all_products=True), app.auth("line", gtins=[GTIN]),
               app.auth("regulator", all_products=True), {}]
    return params, headers


def _write_operations(app) -> list[tuple[str, str, dict]]:
    spec = app.client.get("/openapi.json").json()
    out = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in WRITE_METHODS:
                continue
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            schema = _resolve(spec, content["schema"]) if content else {"type": "object", "properties": {}}
            properties = {k: _resolve(spec, v) for k, v in schema.get("properties", {}).items()}
            out.append((method.upper(), path, properties))
    return out


def test_every_write_endpoint_is_driven(app):
    operations = _write_operations(app)
    assert {"/v1/batches", "/v1/links", "/v1/recalls", "/v1/tokens"} <= {p for _, p, _ in operations}
    assert len(operations) >= 15


def test_mistyped_fields_get_4xx_problem_json_never_5xx(app, world):
    params, headers = world
    operations = _write_operations(app)

    @st.composite
    def requests(draw):
        method, path, properties = draw(st.sampled_from(operations))
        whole = draw(st.booleans()) if properties else True
        if whole:  # the body itself of the wrong type
            body = draw(st.one_of(_JSON_TYPES["string"], _JSON_TYPES["integer"], _JSON_TYPES["array"],
                                  _JSON_TYPES["boolean"], st.none()))
        else:
            mistyped = [k for k, s in properties.items() if _allowed(s)]
            wrong = draw(st.lists(st.sampled_from(mistyped), min_size=1, max_size=3, unique=True))
            body = {k: draw(_wrong_value(properties[k])) for k in wrong}
        return method, path.format(**params), body, draw(st.sampled_from(headers)), properties

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(requests())
    def check(request):
        method, path, body, auth, properties = request
        answer = app.client.request(method, path, json=body, headers=auth)
        assert 400 <= answer.status_code < 500, (method, path, body, answer.status_code, answer.text[:300])
        assert answer.headers["content-type"] == "application/problem+json", (method, path, body, answer.text[:300])
        problem = answer.json()
        assert problem["status"] == answer.status_code and problem["detail"]
        if path.startswith("/v1/batches") and isinstance(body, dict) and answer.status_code not in (401, 403, 404):
            # the line API answers 422 naming a field of the schema (a mistyped one, or one required and absent)
            assert answer.status_code == 422 and problem["field"].split("[")[0] in properties, (path, body, problem)

    check()


@pytest.mark.parametrize("field,value", [
    ("formats", 5), ("formats", [5]), ("formats", {"csv": True}), ("format", 1.5),
    ("gtin", 9506000134352.0), ("gtin", ["09506000134352"]), ("count", "ten"), ("count", 2.5), ("count", True),
    ("count", None), ("profile", 5), ("profile", []), ("request_id", 7), ("lot", 0), ("lot", ["L"]),
    ("expiry", 20271231), ("expiry", "271231"), ("expiry", "2027-W52-5"), ("expiry", "2080-06-30"),
    ("expiry", "\u0662\u0660\u0662\u0667-\u0661\u0662-\u0663\u0661"), ("site", 3), ("line", {"a": 1}),
])
def test_the_line_api_names_each_mistyped_field_with_422(app, world, field, value):
    params, headers = world
    body = {"gtin": GTIN, "count": 2, "request_id": f"typed-{time.time_ns()}", field: value}
    answer = app.client.post("/v1/batches", json=body, headers=headers[0])
    assert answer.status_code == 422, (field, value, answer.text)
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == field, answer.json()
