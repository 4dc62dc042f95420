"""Element strings (bracketed and FNC1) against GS1 Syntax Engine's AI tests.

The engine's plain parse checks syntax and linters without the req=/ex= rules;
the association checks (repeats, ex=, req=, 8030) apply the whole-message rules.
"""

import pytest

from ext.elements import parse_element_string
from ext.errors import GS1Error
from tests.conformance import vector_params

ASSOCIATION_CHECKS = ("repeated AIs", "mutually exclusive", "requisite AIs", "AI 8030")


@pytest.mark.parametrize("case", vector_params("gs1-syntax-engine-ai-element-strings.jsonl"))
def test_engine_element_strings(case, conformance):
    associations = case["check"].startswith(ASSOCIATION_CHECKS)
    unknown = bool(case.get("options", {}).get("permitUnknownAIs"))
    try:
        if case["valid"]:
            es = parse_element_string(case["input"], associations=associations, permit_unknown_ais=unknown)
            if "expected" in case:
                assert [list(e) for e in es.elements] == [list(kv) for kv in case["expected"].items()]
            if "expected_element_string" in case:
                assert es.element_string(brackets=False) == case["expected_element_string"]
        else:
            with pytest.raises(GS1Error) as info:
                parse_element_string(case["input"], associations=associations, permit_unknown_ais=unknown)
            if case["check"] == "linter" and "error" in case:
                assert info.value.code == case["error"], info.value
    except (AssertionError, pytest.fail.Exception):
        conformance.record("gs1-syntax-engine-ai-element-strings", case["id"], "fail")
        raise
    conformance.record("gs1-syntax-engine-ai-element-strings", case["id"], "pass")
