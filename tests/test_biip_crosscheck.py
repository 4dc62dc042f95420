"""Cross-check against biip (an independent Python GS1 library) on the DL vector set.

Where both accept a URI, the extracted (AI, value) pairs must be identical. Where
they disagree on validity, the public vector (GS1's reference engine) must side
with us: biip does not verify check digits, association rules, data-attribute
permissions, duplicates or key-qualifier order, pads short GTINs and drops unknown
query AIs, and cannot read a custom stem containing an AI-like segment.
"""

import warnings

import pytest
from biip import gs1_digital_link_uris as biip_dl

from ext.dl import parse
from ext.errors import GS1Error
from tests.conformance import load_vectors

FILES = ("gs1-syntax-engine-dl-parse.jsonl", "computed-gs1-syntax-engine-matrix.jsonl",
         "bwipp-gs1processdl.jsonl", "gs1-dl-uri-simple-parser.jsonl")


def _engine_valid(case: dict) -> bool:
    if case["id"] in ("bwipp-dl-040", "bwipp-dl-041"):
        return False  # malformed %-escapes: BWIPP and RFC 3986 reject (our documented choice)
    return case.get("strict_engine_valid", case["valid"])


def _cases():
    return [pytest.param(c, id=c["id"]) for f in FILES for c in load_vectors(f) if not c.get("options")]


@pytest.mark.parametrize("case", _cases())
def test_agrees_with_biip_or_the_engine_explains_why(case, conformance):
    try:
        ours = parse(case["input"]).elements
    except GS1Error:
        ours = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            theirs = tuple((e.ai.ai, e.value) for e in biip_dl.GS1DigitalLinkURI.parse(case["input"]).element_strings)
        except Exception:  # biip signals rejection with several exception types
            theirs = None
    if ours is not None and theirs is not None:
        outcome = "pass" if tuple(ours) == theirs else "fail"
        conformance.record("biip cross-check: same values", case["id"], outcome)
        assert tuple(ours) == theirs
    elif ours is None and theirs is None:
        conformance.record("biip cross-check: both reject", case["id"], "pass")
    else:
        # they disagree on validity: the reference engine must agree with us
        conformance.record("biip cross-check: engine sides with us", case["id"],
                           "pass" if (ours is not None) == _engine_valid(case) else "fail")
        assert (ours is not None) == _engine_valid(case), (case["input"], ours, theirs)
