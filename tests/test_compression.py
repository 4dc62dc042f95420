"""Legacy DL compression (ext/compression.py) against the public vectors, plus properties.

Vectors: every case of computed-compression-prototype.jsonl (152, made with GS1's
GS1DigitalLinkCompressionPrototype) and the compress/decompress/is_compressed
cases of digital-link-js-legacy.jsonl.  The only disagreement is a documented
prototype defect: it writes JavaScript's ``undefined`` for query members that
have no value (``?singleton`` -> ``?singleton=undefined``, ``?&&&`` ->
``?=undefined``).  Those cases assert the corrected value (see ``_corrected``);
their compressed segments match the vectors bit for bit.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ext.ai_table import ENTRIES
from ext.compression import CompressionError, Decompressed, compress, decompress, is_compressed
from tests.conformance import load_vectors

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
PROTOTYPE = "computed-compression-prototype.jsonl"
DLJS = "digital-link-js-legacy.jsonl"


def _vectors(name: str) -> tuple[dict, ...]:
    return load_vectors(name)


def _params(name: str, kinds: tuple[str, ...] = ()) -> list:
    return [pytest.param(case, id=case["id"]) for case in _vectors(name)
            if not kinds or case.get("kind") in kinds]


# ---------------------------------------------------------------- test-only helpers

# Removed convenience alphas used by the legacy digital-link.js inputs (URI Syntax 1.2).
ALPHAS = {"gtin": "01", "lot": "10", "ser": "21", "cpv": "22", "sscc": "00", "gln": "414"}
KEYS = {e.ai for e in ENTRIES if e.dlpkey is not None}


def _parse_plain(uri: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """Uncompressed (legacy-tolerant) DL URI -> stem, elements, extras, for feeding compress().

    Scans path pairs from the right to the first primary key; pads short GTINs
    and maps convenience alphas, as the legacy vectors need.
    """
    m = re.fullmatch(r"([A-Za-z]+://[^/?#]+)([^?#]*)(?:\?([^#]*))?", uri)
    assert m, uri
    segments = m[2].split("/")[1:]
    start = len(segments)
    while start >= 2 and re.fullmatch(r"\d{2,4}|[a-z]+", segments[start - 2]):
        start -= 2
        if ALPHAS.get(segments[start], segments[start]) in KEYS:
            break
    stem = m[1] + "".join("/" + s for s in segments[:start])
    elements = [(ALPHAS.get(k, k), unquote(v)) for k, v in zip(segments[start::2],
                                                                segments[start + 1::2])]
    extras = []
    for member in (m[3] or "").split("&"):
        key, _, value = member.partition("=")
        if key.isdigit():
            elements.append((key, unquote(value.replace("+", " "))))
        elif key:
            extras.append((key, unquote(value.replace("+", " "))))
    elements = [(ai, v.zfill(14) if ai == "01" else v) for ai, v in elements]
    return stem, elements, extras


def _corrected(uri: str) -> str:
    """The vector with the prototype's ``undefined`` defect repaired: a member without a
    value stays a bare key, a member without a key is dropped."""
    base, sep, query = uri.partition("?")
    if "undefined" not in query:
        return uri
    members = [m.removesuffix("=undefined") for m in query.split("&")]
    members = [m for m in members if m]
    return base + ("?" + "&".join(members) if members else "")


def _from_bits(bits: str, stem: str = "https://a") -> str:
    """URI whose segment carries ``bits`` (zero-padded to whole base64url characters)."""
    bits += "0" * (-len(bits) % 6)
    return stem + "/" + "".join(B64[int(bits[i:i + 6], 2)] for i in range(0, len(bits), 6))


def _gtin(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str(-total % 10)


GTIN = "09520123456788"

# ---------------------------------------------------------------- prototype vectors


@pytest.mark.parametrize("case", _params(PROTOTYPE))
def test_prototype_compress(case):
    stem, elements, extras = _parse_plain(case["input"])
    assert stem == case["stem"]
    got = compress(stem, elements, extras, optimise=case["use_optimisations"])
    assert got == _corrected(case["expected_compressed"])


@pytest.mark.parametrize("case", _params(PROTOTYPE))
def test_prototype_decompress(case):
    d = decompress(_corrected(case["expected_compressed"]))
    assert d.stem == case["stem"]
    assert dict(d.elements) == case["expected"]
    assert len(d.elements) == len(case["expected"])
    assert d.uri() == _corrected(case["expected_decompressed"])


def test_prototype_undefined_defect_is_not_copied():
    """compress-057: the prototype turns ``?singleton`` into ``?singleton=undefined``;
    the segment is identical, the singleton stays a singleton."""
    case = next(c for c in _vectors(PROTOTYPE) if c["id"] == "compress-057")
    stem, elements, extras = _parse_plain(case["input"])
    assert case["expected_compressed"].endswith("?singleton=undefined")
    fixed = case["expected_compressed"].removesuffix("=undefined")
    assert compress(stem, elements, extras) == fixed
    assert decompress(case["expected_compressed"]).extras == (("singleton", "undefined"),)


# ---------------------------------------------------------------- digital-link.js vectors


@pytest.mark.parametrize("case", _params(DLJS, ("compress",)))
def test_dljs_compress(case):
    stem, elements, extras = _parse_plain(case["input"])
    got = compress(stem, elements, extras, optimise=case["use_optimisations"],
                   compress_extras=case.get("compress_other_key_value_pairs", False))
    assert got == case["expected"]


@pytest.mark.parametrize("case", _params(DLJS, ("decompress",)))
def test_dljs_decompress(case):
    assert decompress(case["input"]).uri() == case["expected"]


@pytest.mark.parametrize("case", _params(DLJS, ("is_compressed",)))
def test_dljs_is_compressed(case):
    assert is_compressed(case["input"]) is case["expected"]


def test_dljs_vector_count():
    """Guard against a vector file that silently lost its compression cases."""
    kinds = [c.get("kind") for c in _vectors(DLJS)]
    counts = [kinds.count(k) for k in ("compress", "decompress", "is_compressed")]
    assert counts == [5, 3, 2]
    assert len(_vectors(PROTOTYPE)) == 152


# ---------------------------------------------------------------- documented behaviour


def test_worked_example_bit_by_bit():
    """STANDARDS.md §1.9: 1F (01+10+15), GTIN, (10) "231", (15) 120820, then (21)."""
    d = decompress("https://dlnkd.tn.gg/HxHKVAdpQgZzjr-hCDKigI")
    assert d == Decompressed("https://dlnkd.tn.gg", (("01", "09780345418913"), ("10", "231"),
                                                     ("15", "120820"), ("21", "345345")), ())


@pytest.mark.parametrize("ai, value", [("3922", "0299"), ("21", "0012"), ("30", "007"),
                                       ("8019", "0000000001")])
def test_leading_zeros_survive(ai, value):
    """Prototype defect: it decodes 3922=0299 as 299.  We zero-pad to the encoded length."""
    key = ("8018", "123456789012345675") if ai == "8019" else ("01", GTIN)
    d = decompress(compress("https://a", [key, (ai, value)]))
    assert dict(d.elements)[ai] == value


def test_partially_compressed_uri_keeps_readable_key():
    # AI 10, encoding 010 (upper-case hex), length 4, "ABC1"
    bits = "00010000" + "010" + "00100" + "1010" + "1011" + "1100" + "0001"
    d = decompress(_from_bits(bits, f"https://id.gs1.org/x/01/{GTIN}"))
    assert d.stem == "https://id.gs1.org/x"
    assert d.elements == (("01", GTIN), ("10", "ABC1"))
    assert d.uri() == f"https://id.gs1.org/x/01/{GTIN}/10/ABC1"


def test_query_of_compressed_uri_is_kept():
    d = decompress(f"{compress('https://a', [('01', GTIN)])}?17=261231&linkType=gs1%3Apip&x+y=a+b")
    assert d.elements == (("01", GTIN), ("17", "261231"))
    assert d.extras == (("linkType", "gs1:pip"), ("x y", "a b"))
    assert d.uri() == f"https://a/01/{GTIN}?17=261231&linkType=gs1%3Apip&x+y=a+b"


def test_second_primary_key_is_an_attribute_not_lost():
    """/8004/…?01=…: sorted order would put 01 first; the path key must stay 8004."""
    elements = [("8004", "ABC123"), ("01", GTIN)]
    for optimise in (True, False):
        d = decompress(compress("https://a", elements, optimise=optimise))
        assert d.uri() == f"https://a/8004/ABC123?01={GTIN}"


def test_qualifier_alternative_that_keeps_the_uri_valid():
    """10 may be an attribute, 235 may not: /01/…/235/… with ?10=…"""
    d = decompress(compress("https://a", [("01", GTIN), ("10", "L1"), ("235", "T9")]))
    assert d.uri() == f"https://a/01/{GTIN}/235/T9?10=L1"


def test_extras_that_cannot_be_packed_stay_readable():
    extras = [("linkType", "gs1:pip"), ("utm source", "x"), ("lang", "é")]
    uri = compress("https://a", [("01", GTIN)], extras, compress_extras=True)
    assert uri.endswith("?utm+source=x&lang=%C3%A9")
    assert decompress(uri).extras == (("linkType", "gs1:pip"), ("utm source", "x"), ("lang", "é"))


def test_dictionary_formats_not_prototype_table():
    """8007 (IBAN) is X..34 in the dictionary (prototype table: X..24 -> 5 length bits):
    a 34-character IBAN needs 6 length bits and round-trips."""
    iban = "GB82WEST12345698765432" + "ABCDEFGHIJKL"
    elements = [("415", "9520123456788"), ("8020", "R1"), ("8007", iban)]
    d = decompress(compress("https://a", elements))
    assert dict(d.elements)["8007"] == iban


def test_is_compressed():
    assert is_compressed("https://a/ARFRJydaKA")
    assert is_compressed(f"https://a/01/{GTIN}/AAFdGUuw5W0g?x=1#f")  # partially compressed
    assert is_compressed("https://a/ARFRJydaKA/")
    assert not is_compressed(f"https://a/01/{GTIN}")  # value of a plain /AI/value pair
    assert not is_compressed("https://a/gtin/09780345418913")  # legacy alpha key
    assert not is_compressed("https://a/ARFRJyda")  # too short
    assert not is_compressed("https://a/ARFRJyda%2BKA")
    assert not is_compressed("ARFRJydaKAxx")
    assert not is_compressed(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- errors

GTIN_BITS = "00000001" + format(int(GTIN), "047b")


@pytest.mark.parametrize("uri, reason, bit", [
    ("https://a/ARZlXgDk*Gg", "'*' is not a base64url character", 48),
    ("https://a/ARZlXgDk", "truncated value of AI (01)", 8),
    (_from_bits("00000100" + "0" * 20), "no AI starts with 04", 0),
    (_from_bits("1000" "0000" "1001" "1001" + "0" * 20), "unknown AI (8099)", 0),
    (_from_bits(GTIN_BITS + "0001" "0000" "000" "11111" + "0" * 20),
     "length 31 exceeds the maximum 20 of value of AI (10)", 66),
    (_from_bits(GTIN_BITS + "0010" "0000" + "1111111"), "number too large for 2 digits", 63),
    (_from_bits("01001010" + "0" * 20), "unknown optimisation code 4A", 0),
    (_from_bits(GTIN_BITS + "0010" "0001" "101" "00001" + "0" * 8),
     "unknown character encoding 5", 63),
    (_from_bits(GTIN_BITS + "0010" "0001" "100" "00001" "0000111"), "control character 0x07", 71),
    (_from_bits(GTIN_BITS + GTIN_BITS), "AI (01) appears twice", None),
    ("https://a/ARFRJydaKB", "unexpected bits after the last record", 55),
    (_from_bits("00100000" + "0000001"), "no primary key", None),
    (_from_bits("1111" "0000" "000" + "0" * 10), "empty non-GS1 key", 0),
    (_from_bits(GTIN_BITS + "1111" "0000" "001" "110101" + "000" "0000000"),
     "non-GS1 key '1' is all digits", 55),
    ("ftp://a/ARFRJydaKA", "not an http(s) URI", None),
    ("https://a", "no compressed path segment", None),
    ("https://a/ARFRJydaKA?99=%zz", "malformed percent-escape", None),
    ("https://a/ARFRJydaKA?x=%ff", "not UTF-8", None),
    ("https://a/ARFRJydaKA?x=%00", "NUL character", None),
    ("https://a/ARFRJydaKA?89=1", "unknown AI (89) in the query string", None),
    ("https://a/ARFRJydaKAé", "non-ASCII character at position 20", None),
    (f"https://a/01/{GTIN[1:]}/AAFdGUuw5W0g", "value of AI (01) is too short", None),
])
def test_malformed_input_names_reason_and_bit(uri, reason, bit):
    with pytest.raises(CompressionError) as info:
        decompress(uri)
    assert reason in info.value.reason
    assert info.value.bit == bit
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("stem, elements, extras, reason", [
    ("https://a", [("01", GTIN[1:])], (), "too short"),
    ("https://a", [("01", GTIN + "0")], (), "too long"),
    ("https://a", [("01", "0952012345678X")], (), "must be digits"),
    ("https://a", [("01", GTIN), ("10", "A\tB")], (), "printable ASCII"),
    ("https://a", [("01", GTIN), ("10", "A" * 21)], (), "too long"),
    ("https://a", [("01", GTIN), ("01", GTIN)], (), "appears twice"),
    ("https://a", [("01", GTIN), ("89", "1")], (), "unknown AI (89)"),
    ("https://a", [("01", GTIN), ("10", "")], (), "empty value"),
    ("https://a", [("10", "ABC")], (), "no primary key"),
    ("https://a", [("01", GTIN)], [("123", "x")], "not all digits"),
    ("ftp://a", [("01", GTIN)], (), "stem must be"),
    ("https://a/x?y", [("01", GTIN)], (), "stem must be"),
])
def test_compress_rejects_what_it_cannot_encode(stem, elements, extras, reason):
    with pytest.raises(CompressionError, match=re.escape(reason)):
        compress(stem, elements, extras)


# ---------------------------------------------------------------- properties

cset82 = st.text(alphabet=CSET82, min_size=1, max_size=20)
digits = lambda n, m=None: st.text(alphabet="0123456789", min_size=n, max_size=m or n)  # noqa: E731
yymmdd = st.dates().map(lambda d: d.strftime("%y%m%d"))
ATTRIBUTES = {
    "22": cset82, "10": cset82, "21": cset82, "235": cset82,
    "11": yymmdd, "15": yymmdd, "17": yymmdd, "3103": digits(6), "3922": digits(1, 15),
    "30": digits(1, 8), "7003": digits(10), "91": st.text(alphabet=CSET82, min_size=1, max_size=90),
}


@st.composite
def dl_data(draw):
    gtin = _gtin(draw(digits(13)))
    chosen = draw(st.lists(st.sampled_from(sorted(ATTRIBUTES)), unique=True))
    rest = [(ai, draw(ATTRIBUTES[ai])) for ai in chosen]
    elements = draw(st.permutations([("01", gtin), *rest]))
    return elements


extra_key = st.text(alphabet=B64, min_size=1, max_size=12).filter(lambda k: not k.isdigit())
extra_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@settings(max_examples=300, deadline=None)
@given(dl_data(), st.lists(st.tuples(extra_key, extra_value), max_size=3), st.booleans(),
       st.booleans(), st.sampled_from(["https://id.gs1.org", "http://a.example/some/stem"]))
def test_compress_decompress_round_trip(elements, extras, optimise, pack, stem):
    uri = compress(stem, elements, extras, optimise=optimise, compress_extras=pack)
    assert is_compressed(uri)
    d = decompress(uri)
    assert d.stem == stem
    assert sorted(d.elements) == sorted(elements)
    assert d.extras == tuple(extras)
    gtin = dict(elements)["01"]
    assert d.uri().startswith(f"{stem}/01/{gtin}")
    assert compress(d.stem, d.elements, d.extras, optimise=optimise, compress_extras=pack) == uri


def _mutated(elements: list[tuple[str, str]], at: int, char: str) -> str:
    """A valid compressed URI with one segment character replaced (often still decodable)."""
    stem, _, segment = compress("https://a", elements).rpartition("/")
    at %= len(segment)
    return f"{stem}/{segment[:at]}{char}{segment[at + 1:]}"


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.text(),
    st.builds(lambda seg, q: f"https://a/{seg}{q}", st.text(alphabet=B64, max_size=40),
              st.sampled_from(["", "?x=1", "?17=261231", "?a&&b=%41"])),
    st.builds(lambda seg: f"https://a/01/{GTIN}/{seg}",
              st.text(alphabet=B64, min_size=1, max_size=30)),
    st.builds(_mutated, dl_data(), st.integers(min_value=0), st.sampled_from(B64)),
))
def test_arbitrary_text_only_raises_compression_error(text):
    assert isinstance(is_compressed(text), bool)
    try:
        d = decompress(text)
    except CompressionError as err:
        assert err.reason
        return
    assert d.uri().startswith(d.stem + "/")
