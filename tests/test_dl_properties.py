"""Properties of the GS1 core that must hold for every input, found by hypothesis.

A valid identity survives identity → URI → parse and identity → element string →
parse unchanged; arbitrary text or bytes only ever produce GS1Error.
"""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ext.dl import build, escape, parse, unescape
from ext.elements import parse_element_string, parse_scan
from ext.errors import GS1Error
from ext.linters import compute_check_digit, verify_check_digit

CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

digits = st.text(string.digits, min_size=1, max_size=1)
cset82_value = st.text(CSET82, min_size=1, max_size=20)


@st.composite
def gtins(draw):
    body = draw(st.text(string.digits, min_size=13, max_size=13))
    # the first four digits after the indicator are the start of a GS1 company prefix
    return body + compute_check_digit(body)


@st.composite
def dates(draw, day_zero=True):
    yy = draw(st.integers(0, 99))
    mm = draw(st.integers(1, 12))
    dd = draw(st.integers(0 if day_zero else 1, 28))
    return f"{yy:02d}{mm:02d}{dd:02d}"


@st.composite
def identities(draw):
    """A GTIN-based identity with optional qualifiers and data attributes, as AI pairs."""
    elements = [("01", draw(gtins()))]
    use_tpx = draw(st.booleans()) and draw(st.booleans())
    if use_tpx:
        elements.append(("235", draw(st.text(CSET82, min_size=1, max_size=28))))
    else:
        for ai in ("22", "10", "21"):
            if draw(st.booleans()):
                elements.append((ai, draw(cset82_value)))
    if draw(st.booleans()):
        elements.append(("17", draw(dates())))
    if draw(st.booleans()):
        elements.append(("3103", draw(st.text(string.digits, min_size=6, max_size=6))))
    if draw(st.booleans()):
        elements.append(("99", draw(st.text(CSET82, min_size=1, max_size=90))))
    return elements


@given(identities(), st.sampled_from([None, "https://example.com", "https://brand.example/a/b"]))
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_identity_uri_round_trip(elements, stem):
    dl = build(elements, stem)
    parsed = parse(dl.uri(stem))
    assert dict(parsed.elements) == dict(elements)
    assert parsed.primary_key == elements[0]
    assert parsed.uri(stem) == dl.uri(stem)


@given(identities())
@settings(max_examples=300)
def test_identity_element_string_round_trip(elements):
    dl = build(elements)
    for brackets in (True, False):
        es = parse_element_string(dl.element_string(brackets=brackets))
        assert dict(es.elements) == dict(elements)
    assert parse_scan(parse_element_string(dl.element_string()).scan_data()).elements == dl.elements


@given(st.text(max_size=300))
@settings(max_examples=1500)
def test_arbitrary_text_only_raises_gs1_error(text):
    for fn in (parse, parse_element_string, parse_scan):
        try:
            fn(text)
        except GS1Error:
            pass
    try:
        parse(text, lenient=True)
    except GS1Error:
        pass


@given(st.binary(max_size=300))
@settings(max_examples=1000)
def test_arbitrary_bytes_only_raise_gs1_error(raw):
    text = raw.decode("latin-1")
    for candidate in (text, "https://a/01/" + text, "https://a/01/09506000134352?" + text, "(01)" + text):
        for fn in (parse, parse_element_string):
            try:
                fn(candidate)
            except GS1Error:
                pass


_segments = st.sampled_from(["01", "21", "10", "17", "00", "8004", "99", "235", "22", "gtin", "ser", "",
                             "09506000134352", "ABC", "%2F", "%00", "%zz", "+", "..", "3103"])


@given(st.lists(_segments, max_size=10), st.lists(st.tuples(_segments, _segments), max_size=6),
       st.booleans())
@settings(max_examples=1500)
def test_uri_shaped_garbage_only_raises_gs1_error(path, query, lenient):
    uri = "https://example.com/" + "/".join(path)
    if query:
        uri += "?" + "&".join(f"{k}={v}" for k, v in query)
    try:
        dl = parse(uri, lenient=lenient)
    except GS1Error as exc:
        assert exc.reason
    else:
        assert parse(dl.uri()).elements == dl.elements      # whatever parses is canonical-stable


@given(st.text(max_size=60).filter(lambda t: "\x00" not in t))
def test_escape_unescape_round_trip(text):
    # escape() writes UTF-8 escapes; unescape() gives back bytes as latin-1 code points
    for query in (False, True):
        assert unescape(escape(text, query), query).encode("latin-1").decode("utf-8") == text


@given(st.text(string.digits, min_size=1, max_size=17), st.integers(0, 9))
def test_check_digit_catches_every_single_digit_change(body, wrong):
    key = body + compute_check_digit(body)
    assert verify_check_digit(key)
    last = int(key[-1])
    if wrong != last:
        assert not verify_check_digit(key[:-1] + str(wrong))
