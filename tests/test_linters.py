"""The GS1 Syntax Dictionary linters against GS1's own linter unit tests.

Every case of ``gs1-syntax-dictionary-linters.jsonl`` (read from ../shared/gs1
beside the repository) must give the same verdict, the same GS1 error code and
the same error span, written the way GS1 writes it: the offending characters
between ``*…*``. Each case is recorded in the project's conformance table, one
row per linter. Property tests cover what a finite list of vectors cannot.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from biip.checksums import gs1_standard_check_digit
from hypothesis import given, settings
from hypothesis import strategies as st

import ext.codelists
import ext.linters
from ext.linters import (
    ERROR_MESSAGES,
    ERROR_NAMES,
    LINTERS,
    compute_check_digit,
    compute_check_pair,
    error_message,
    error_name,
    lint,
    linter_id,
    set_reference_year,
    verify_check_digit,
    verify_check_pair,
)
from ext.syntax_dictionary import parse_dictionary
from tests.conformance import vector_params

ROOT = Path(__file__).resolve().parents[1]
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


def marked(value: str, pos: int, length: int) -> str:
    """A value with its error span starred, as GS1's unit tests write it."""
    return f"{value[:pos]}*{value[pos:pos + length]}*{value[pos + length:]}"


def check_case(conformance, linter: str, case_id: str, value: str,
               error: str | None, markup: str | None) -> None:
    """Lint `value`; it must pass (error None) or fail with `error` over the
    span `markup` shows. Records the outcome under the linter's name."""
    got, pos, length = lint(linter, value)
    try:
        if error is None:
            assert (got, pos, length) == (None, 0, 0), f"{linter} rejects valid {value!r}"
        else:
            assert got == error, f"{linter}({value!r})"
            assert marked(value, pos, length) == markup, f"{linter}({value!r}) span"
    except AssertionError:
        conformance.record(f"linter {linter}", case_id, "fail")
        raise
    conformance.record(f"linter {linter}", case_id, "pass")


@pytest.mark.parametrize("case", vector_params("gs1-syntax-dictionary-linters.jsonl"))
def test_gs1_linter_vector(case, conformance):
    check_case(conformance, case["linter"], case["id"], case["input"],
               None if case["valid"] else case["error"], case.get("error_markup"))


def gcppos_cases() -> list[tuple[str, str, str | None, str | None]]:
    """GS1's loop-generated unit tests for gcppos1/gcppos2 (test_lint_gcppos1/2
    in the reference sources), written out: the vector file could not carry
    them. The shortest GS1 Company Prefix has four digits."""
    cases = [("gcppos1", "01234", None, None), ("gcppos1", "0123", None, None),
             ("gcppos1", "0123A", None, None),
             ("gcppos2", "I01234", None, None), ("gcppos2", "I0123", None, None),
             ("gcppos2", "I0123A", None, None)]
    for short in ("012", "01", "0", ""):
        cases.append(("gcppos1", short, "TOO_SHORT_FOR_GCP", f"*{short}*"))
    for short in ("012", "01", "0"):
        cases.append(("gcppos2", "I" + short, "TOO_SHORT_FOR_GCP", f"I*{short}*"))
    for short in ("I", ""):
        cases.append(("gcppos2", short, "TOO_SHORT_FOR_GCP", f"*{short}*"))
    for bad in range(4):  # the first non-digit inside the minimum-length GCP is marked
        gcp = "0123"[:bad] + "A" * (5 - bad)
        cases.append(("gcppos1", gcp, "INVALID_GCP_PREFIX", marked(gcp, bad, 1)))
        cases.append(("gcppos2", "I" + gcp, "INVALID_GCP_PREFIX", marked("I" + gcp, bad + 1, 1)))
    return cases


@pytest.mark.parametrize("linter, value, error, markup", gcppos_cases())
def test_gs1_gcppos_loop_cases(linter, value, error, markup, conformance):
    check_case(conformance, linter, f"{linter}:{value!r}", value, error, markup)


# ---------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------

def test_every_linter_the_dictionary_names_is_implemented():
    text = (ROOT / "config" / "gs1" / "gs1-syntax-dictionary.txt").read_text(encoding="utf-8")
    named = {name for entry in parse_dictionary(text)
             for component in entry.components for name in component.linters}
    assert named, "the dictionary names linters"
    assert named <= set(LINTERS), f"not implemented: {sorted(named - set(LINTERS))}"


def test_a_linter_id_is_its_index_in_LINTERS():
    assert LINTERS[0] == ""
    for i, name in enumerate(LINTERS[1:], 1):
        assert linter_id(name) == i
    with pytest.raises(KeyError):
        linter_id("nosuchlinter")
    with pytest.raises(KeyError):
        lint("nosuchlinter", "1")


def test_every_error_code_has_a_gs1_name_and_a_message_in_plain_words():
    assert len(ERROR_NAMES) == len(ERROR_MESSAGES) == len(set(ERROR_NAMES))
    assert ERROR_NAMES[0] == "OK"
    for code, name in enumerate(ERROR_NAMES):
        assert error_name(code) == name and name.isupper()
        message = error_message(code)
        assert message and message != name and message == message.strip()


def test_every_error_code_a_vector_expects_is_known():
    expected = {case.values[0]["error"]
                for case in vector_params("gs1-syntax-dictionary-linters.jsonl")
                if not case.values[0]["valid"]}
    assert expected <= set(ERROR_NAMES)


def test_the_code_lists_hold_no_duplicates():
    for name in ext.codelists.__all__:
        values = getattr(ext.codelists, name)
        assert len(values) == len(set(values)), name
    assert list(ext.codelists.PACKAGE_TYPES) == sorted(ext.codelists.PACKAGE_TYPES)


# ---------------------------------------------------------------------------
# Check digits and check-character pairs
# ---------------------------------------------------------------------------

digits = st.text(alphabet="0123456789", min_size=1, max_size=40)


@given(digits)
def test_appending_the_computed_check_digit_always_verifies(data):
    key = data + compute_check_digit(data)
    assert verify_check_digit(key)
    assert verify_check_digit(key.encode())
    assert lint("csum", key) == (None, 0, 0)


@given(digits, st.data())
def test_any_single_digit_change_is_caught(data, draw):
    key = data + compute_check_digit(data)
    at = draw.draw(st.integers(0, len(key) - 1))
    other = draw.draw(st.sampled_from([d for d in "0123456789" if d != key[at]]))
    broken = key[:at] + other + key[at + 1:]
    assert not verify_check_digit(broken)
    assert lint("csum", broken) == ("INCORRECT_CHECK_DIGIT", len(key) - 1, 1)


@given(digits)
def test_the_check_digit_agrees_with_biip(data):
    assert compute_check_digit(data) == str(gs1_standard_check_digit(data))


@given(st.text(max_size=30))
def test_verify_check_digit_is_a_plain_yes_or_no_for_any_text(text):
    verdict = verify_check_digit(text)
    assert verdict is True or verdict is False
    if verdict:
        assert text.isascii() and text.isdigit()


@pytest.mark.parametrize("bad", ["", "12a4", "１２３", "12 3"])
def test_compute_check_digit_refuses_what_is_not_digits(bad):
    with pytest.raises(ValueError):
        compute_check_digit(bad)


cset82_text = st.text(alphabet=CSET82, max_size=97)


@given(cset82_text)
def test_appending_the_computed_check_pair_always_verifies(data):
    gmn = data + compute_check_pair(data)
    assert verify_check_pair(gmn)
    assert lint("csumalpha", gmn) == (None, 0, 0)


@given(cset82_text.filter(bool), st.data())
def test_any_single_character_change_breaks_the_check_pair(data, draw):
    # Each character is weighted by a different prime below 1021 and values
    # differ by less than 82, so one substitution always changes the sum.
    gmn = data + compute_check_pair(data)
    at = draw.draw(st.integers(0, len(data) - 1))
    other = draw.draw(st.sampled_from([c for c in CSET82 if c != data[at]]))
    broken = gmn[:at] + other + gmn[at + 1:]
    assert not verify_check_pair(broken)
    assert lint("csumalpha", broken) == ("INCORRECT_CHECK_PAIR", len(gmn) - 2, 2)


def test_compute_check_pair_refuses_what_it_cannot_weigh():
    with pytest.raises(ValueError):
        compute_check_pair("ABC DEF")
    with pytest.raises(ValueError):
        compute_check_pair("1" * 98)


# ---------------------------------------------------------------------------
# Dates: the two-digit-year century window
# ---------------------------------------------------------------------------

@pytest.fixture
def reference_year():
    """Lets a test move "now"; puts the real year back afterwards."""
    yield set_reference_year
    set_reference_year(None)


def window_year(yy: int, now: int) -> int:
    """GS1 General Specifications: a two-digit year is at most 49 years in the
    past and 50 in the future of the current year."""
    candidates = [now - now % 100 + delta + yy for delta in (-100, 0, 100)]
    return next(year for year in candidates if now - 49 <= year <= now + 50)


@settings(max_examples=400)
@given(st.integers(1950, 2250), st.integers(0, 99), st.integers(0, 13), st.integers(0, 32))
def test_six_digit_dates_exist_exactly_when_the_calendar_says_so(now, yy, mm, dd):
    set_reference_year(now)
    try:
        value = f"{yy:02d}{mm:02d}{dd:02d}"
        try:
            datetime.date(window_year(yy, now), mm, dd or 1)
            real = 1 <= mm <= 12
        except ValueError:
            real = False
        assert (lint("yymmd0", value)[0] is None) == real
        assert (lint("yymmdd", value)[0] is None) == (real and dd != 0)
    finally:
        set_reference_year(None)


@given(st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32))
def test_eight_digit_dates_exist_exactly_when_the_calendar_says_so(year, mm, dd):
    value = f"{year:04d}{mm:02d}{dd:02d}"
    try:
        datetime.date(year or 2000, mm, dd or 1)  # year 0 is a leap year, like 2000
        real = 1 <= mm <= 12
    except ValueError:
        real = False
    assert (lint("yyyymmd0", value)[0] is None) == real
    assert (lint("yyyymmdd", value)[0] is None) == (real and dd != 0)


def test_the_window_follows_the_reference_year(reference_year):
    assert reference_year(2061) == 2061
    assert reference_year(None) == datetime.datetime.now(datetime.UTC).year


# ---------------------------------------------------------------------------
# Robustness: any input, any linter
# ---------------------------------------------------------------------------

@settings(max_examples=300)
@given(st.sampled_from(LINTERS[1:]), st.binary(max_size=120))
def test_linters_never_crash_and_mark_a_span_inside_the_value(name, value):
    error, pos, length = lint(name, value)
    if error is None:
        assert (pos, length) == (0, 0)
    else:
        assert error in ERROR_NAMES[1:]
        assert 0 <= pos and 0 <= length and pos + length <= len(value)


@given(st.sampled_from(["csetnumeric", "cset82", "cset39", "cset64"]),
       st.text(alphabet="0123456789", max_size=20), st.characters(min_codepoint=0x100))
def test_characters_beyond_latin1_are_rejected_where_they_stand(name, prefix, wide):
    # They reach the C code as byte 0xFF, which no GS1 character set holds, so
    # the error points at the character itself.
    error, pos, length = lint(name, prefix + wide)
    assert error is not None and (pos, length) == (len(prefix), 1)
