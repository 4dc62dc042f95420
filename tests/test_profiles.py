"""Serial profiles: what the shipped markets look like, how a bad profile file is refused
(file, line, field), and the EU 2016/161 Art. 4(c) guess ratio refusal."""

import dataclasses
import textwrap
from fractions import Fraction
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serializer.profiles import (
    CSET82,
    SAFE_ALPHABET,
    GuessabilityError,
    ProfileError,
    ProfileFieldError,
    SerialProfile,
    check_guessability,
    load_profiles,
    parse_profiles,
)

GTIN = "09506000134352"
KEY = b"a test key, not a production one"


@pytest.fixture(scope="module")
def shipped():
    return load_profiles()


def numeral(text: str, alphabet: str) -> int:
    value = 0
    for ch in text:
        value = value * len(alphabet) + alphabet.index(ch)
    return value


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line of `text` containing `needle`."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[occurrence - 1]


def write(tmp_path, body: str) -> tuple[str, str]:
    text = textwrap.dedent(body).lstrip("\n")
    path = tmp_path / "serial-profiles.yaml"
    path.write_text(text)
    return str(path), text


def refusal(tmp_path, body: str) -> tuple[ProfileError, str, str]:
    path, text = write(tmp_path, body)
    with pytest.raises(ProfileError) as caught:
        load_profiles(path)
    return caught.value, path, text


# --- the shipped profiles ------------------------------------------------------------------

def test_the_default_profile_is_12_safe_characters_randomised(shipped):
    default = shipped["default"]
    assert (default.alphabet, default.length, default.mode) == (SAFE_ALPHABET, 12, "randomised")
    assert SAFE_ALPHABET == "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    assert default.space == 34 ** 12


def test_the_market_profiles_are_shipped(shipped):
    assert {"default", "eu-fmd", "dscsa-numeric", "chestny-znak", "sgtin-96"} <= set(shipped)
    assert shipped["eu-fmd"].mode == "randomised"
    assert shipped["eu-fmd"].guess_ratio_limit == Fraction(1, 10_000)
    assert set(shipped["dscsa-numeric"].alphabet) == set("0123456789")
    assert shipped["chestny-znak"].length == 13
    sgtin = shipped["sgtin-96"]
    assert set(sgtin.alphabet) == set("0123456789") and sgtin.no_leading_zero
    assert sgtin.space == 2 ** 38 - 10 ** (sgtin.length - 1)


def test_every_shipped_profile_stays_inside_gs1_ai_21(shipped):
    for profile in shipped.values():
        assert set(profile.alphabet + profile.prefix) <= set(CSET82)
        assert 1 <= profile.length <= 20
        if profile.mode == "randomised":
            assert profile.guess_ratio_limit is not None
            assert profile.guess_ratio_limit <= Fraction(1, 10_000)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_serials_of_every_shipped_profile_obey_its_rules(shipped, data):
    profile = data.draw(st.sampled_from(sorted(shipped.values(), key=lambda p: p.name)))
    permutation = profile.permutation(KEY, GTIN)
    counter = data.draw(st.integers(0, profile.space - 1))
    serial = permutation.encode(counter)
    body = serial[len(profile.prefix):]
    assert len(serial) == profile.length and serial.startswith(profile.prefix)
    assert set(body) <= set(profile.alphabet)
    if profile.no_leading_zero:
        assert body[0] != profile.alphabet[0]
    if profile.max_value is not None:
        assert numeral(body, profile.alphabet) <= profile.max_value
    assert permutation.decode(serial) == counter


def test_sgtin_96_serials_fit_the_tag(shipped):
    sgtin = shipped["sgtin-96"].permutation(KEY, GTIN)
    serials = sgtin.encode_range(0, 20_000) + [sgtin.encode(sgtin.space - 1)]
    assert all(10 ** 11 <= int(s) < 2 ** 38 and s[0] != "0" for s in serials)
    assert sgtin.decode(str(2 ** 38)) is None and sgtin.decode("0" + "9" * 11) is None


@settings(max_examples=40, deadline=None)
@given(alphabet=st.sampled_from(["01", "012", "0123456789", "AB9"]), length=st.integers(1, 4),
       no_leading_zero=st.booleans(), max_value=st.none() | st.integers(0, 300))
def test_the_space_counts_exactly_the_strings_the_rules_allow(alphabet, length, no_leading_zero,
                                                                max_value):
    allowed = [t for t in product(alphabet, repeat=length)
               if not (no_leading_zero and t[0] == alphabet[0])
               and (max_value is None or numeral("".join(t), alphabet) <= max_value)]
    fields = dict(name="tiny", alphabet=alphabet, length=length, mode="sequential",
                  no_leading_zero=no_leading_zero, max_value=max_value, guess_ratio_limit=None)
    if not allowed:
        with pytest.raises(ProfileFieldError, match="no serials"):
            SerialProfile(**fields)
        return
    profile = SerialProfile(**fields)
    assert profile.space == len(allowed)
    permutation = profile.permutation(None, GTIN)
    assert permutation.encode_range(0, profile.space) == ["".join(t) for t in allowed]


def test_the_gtin_is_the_tweak(shipped):
    default = shipped["default"]
    first = default.permutation(KEY, GTIN).encode_range(0, 100)
    other = default.permutation(KEY, "00614141123452").encode_range(0, 100)
    assert not set(first) & set(other)
    assert default.permutation(KEY, GTIN).encode_range(0, 100) == first
    with pytest.raises(ValueError, match="14 digits"):
        default.permutation(KEY, "9506000134352")
    with pytest.raises(ValueError, match="needs the GTIN's key"):
        default.permutation(None, GTIN)


def test_a_sequential_profile_issues_the_counter(shipped):
    sequential = shipped["sequential-numeric"].permutation(None, GTIN)
    assert sequential.encode_range(41, 2) == ["000000000041", "000000000042"]


def test_profiles_are_immutable(shipped):
    with pytest.raises(dataclasses.FrozenInstanceError):
        shipped["default"].length = 20
    with pytest.raises(TypeError):
        shipped["new"] = shipped["default"]


# --- a bad profile file is refused with its file, line and field ---------------------------

GOOD = """
version: 1
profiles:
  - name: first
    alphabet: "0123456789"
    length: 12
    mode: randomised
  - name: second
    alphabet: "{alphabet}"
    length: {length}
    mode: randomised
"""


@pytest.mark.parametrize("alphabet,outside", [
    ("0123456789#", "'#'"), ("ABC DEF", "' '"), ("0123~^", "'^', '~'"), ("abcé", "'é'"),
])
def test_an_alphabet_outside_cset_82_is_refused(tmp_path, alphabet, outside):
    error, path, text = refusal(tmp_path, GOOD.format(alphabet=alphabet, length=12))
    assert error.path == path
    assert error.line == line_of(text, "alphabet:", 2)
    assert error.field == "profile 'second'.alphabet"
    assert str(error) == f"{path}:{error.line}: profile 'second'.alphabet: characters outside GS1 CSET 82: {outside}"


@pytest.mark.parametrize("length", [0, 21, -3])
def test_a_length_outside_1_to_20_is_refused(tmp_path, length):
    error, path, text = refusal(tmp_path, GOOD.format(alphabet="0123456789", length=length))
    assert (error.line, error.field) == (line_of(text, "length:", 2), "profile 'second'.length")
    assert f"not {length}" in str(error) and "X..20" in str(error)
    assert str(error).startswith(f"{path}:{error.line}: ")


def test_a_yaml_syntax_error_names_the_line(tmp_path):
    error, path, text = refusal(tmp_path, """
        profiles:
          - name: broken
            alphabet: "0123456789
            length: 12
          - name: next
            mode: randomised
        """)
    assert error.field == "(YAML)" and "syntax error" in str(error)
    assert str(error).startswith(f"{path}:")
    # an unclosed quote is reported where it opens, not at the end of the file
    assert error.line == line_of(text, "alphabet:")

    error, path, text = refusal(tmp_path, """
        profiles:
          - name: a
            alphabet: "01"
           length: 3
        """)
    assert error.line == line_of(text, "length:")


def test_a_misspelt_field_is_refused_at_its_line(tmp_path):
    error, path, text = refusal(tmp_path, """
        profiles:
          - name: typo
            alphabet: "0123456789"
            length: 12
            mode: randomised
            no_leading_zeros: true
        """)
    assert (error.line, error.field) == (line_of(text, "no_leading_zeros"),
                                         "profile 'typo'.no_leading_zeros")
    assert "unknown field" in str(error)


def test_a_missing_field_is_refused_at_the_profile(tmp_path):
    error, path, text = refusal(tmp_path, """
        profiles:
          - name: partial
            alphabet: "0123456789"
            mode: randomised
        """)
    assert error.line == line_of(text, "name: partial") and "missing: 'length'" in str(error)


def test_every_problem_is_reported_at_once(tmp_path):
    error, path, text = refusal(tmp_path, """
        profiles:
          - name: one
            alphabet: "0123#"
            length: 12
            mode: randomised
          - name: two
            alphabet: "0123456789"
            length: 40
            mode: shuffled
        """)
    assert [p[0] for p in error.problems] == [line_of(text, "0123#"), line_of(text, "length: 40"),
                                              line_of(text, "shuffled")]
    assert len(str(error).splitlines()) == 3


@pytest.mark.parametrize("extra,field,needle", [
    ('    guess_ratio_limit: 0.001', "guess_ratio_limit", "at most 1/10,000"),
    ('    guess_ratio_limit: 0', "guess_ratio_limit", "above 0"),
    ('    guess_ratio_limit: lots', "guess_ratio_limit", "a number"),
    ('    prefix: "AB"\n    no_leading_zero: true', "prefix", "cannot be combined"),
    ('    no_leading_zero: true\n    max_value: 99', "max_value", "no serials"),
])
def test_profiles_that_break_a_rule_are_refused_at_the_field(tmp_path, extra, field, needle):
    body = GOOD.format(alphabet="0123456789", length=12).rstrip("\n") + "\n" + extra + "\n"
    error, path, text = refusal(tmp_path, body)
    assert error.field == f"profile 'second'.{field}"
    assert error.line == line_of(text, field + ":")
    assert needle in str(error)


def test_a_randomised_profile_below_a_million_serials_is_refused(tmp_path):
    error, path, text = refusal(tmp_path, GOOD.format(alphabet="0123456789", length=5))
    assert error.field == "profile 'second'.length"
    assert "1,000,000" in str(error) and "100,000" in str(error)


def test_a_sequential_profile_must_say_it_has_no_guess_ratio(tmp_path):
    body = """
        profiles:
          - name: counter
            alphabet: "0123456789"
            length: 12
            mode: sequential
        """
    error, path, text = refusal(tmp_path, body)
    assert error.field == "profile 'counter'.guess_ratio_limit"
    assert "guessable by construction" in str(error)
    path, text = write(tmp_path, body.rstrip() + "\n            guess_ratio_limit: null\n")
    assert load_profiles(path)["counter"].guess_ratio_limit is None


def test_repeated_names_characters_and_keys_are_refused(tmp_path):
    error, path, text = refusal(tmp_path, GOOD.format(alphabet="0123456789", length=12)
                                .replace("name: second", "name: first"))
    assert error.line == line_of(text, "name: first", 2) and "already defined" in str(error)

    error, path, text = refusal(tmp_path, GOOD.format(alphabet="01234567890", length=12))
    assert error.field == "profile 'second'.alphabet" and "repeats '0'" in str(error)

    error, path, text = refusal(tmp_path, GOOD.format(alphabet="0123456789", length=12)
                                + "    length: 14\n")
    assert error.line == line_of(text, "length: 14") and "defined twice" in str(error)
    assert error.field == "profiles[1].length"


def test_an_empty_file_is_refused(tmp_path):
    error, path, text = refusal(tmp_path, "# nothing here\n")
    assert "empty" in str(error)


def test_a_profile_built_in_code_is_validated_too():
    with pytest.raises(ProfileFieldError, match="CSET 82"):
        SerialProfile(name="x", alphabet="01#", length=12, mode="randomised")
    with pytest.raises(ProfileFieldError) as caught:
        SerialProfile(name="x", alphabet="01", length=21, mode="randomised")
    assert caught.value.field == "length"


def test_parse_profiles_names_the_given_path():
    with pytest.raises(ProfileError, match=r"^inline\.yaml:1: "):
        parse_profiles("profiles: [", "inline.yaml")


# --- guessability -----------------------------------------------------------------------------

def test_the_guess_ratio_refusal_gives_the_figures(shipped):
    sgtin = shipped["sgtin-96"]
    space = 2 ** 38 - 10 ** 11
    limit_count = -(-space // 10_000) - 1           # the largest count with count/space < 1/10,000
    assert sgtin.max_issuable == limit_count
    assert check_guessability(sgtin, limit_count).ratio < Fraction(1, 10_000)
    with pytest.raises(GuessabilityError) as caught:
        check_guessability(sgtin, limit_count + 1)
    message = str(caught.value)
    for figure in (f"{limit_count + 1:,}", f"{space:,}", "1/10,000", f"at most {limit_count:,}",
                   "2016/161", f"{(limit_count + 1) / space:.3e}", "'sgtin-96'"):
        assert figure in message


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_refusal_is_the_exact_rational_comparison(shipped, data):
    profile = data.draw(st.sampled_from([p for p in shipped.values() if p.guess_ratio_limit]))
    edge = profile.max_issuable
    issued = data.draw(st.integers(0, 2 * edge) | st.sampled_from([edge, edge + 1]))
    if issued * 10_000 >= profile.space:
        with pytest.raises(GuessabilityError):
            check_guessability(profile, issued)
    else:
        found = check_guessability(profile, issued)
        assert (found.issued_total, found.space) == (issued, profile.space)


def test_a_profile_without_a_limit_refuses_only_an_exhausted_space(shipped):
    sequential = shipped["sequential-numeric"]
    assert check_guessability(sequential, sequential.space).ratio == 1
    with pytest.raises(GuessabilityError, match="would repeat"):
        check_guessability(sequential, sequential.space + 1)
    with pytest.raises(ValueError):
        check_guessability(sequential, -1)


def test_a_stricter_limit_is_honoured(tmp_path):
    path, text = write(tmp_path, GOOD.format(alphabet="0123456789", length=12)
                       + "    guess_ratio_limit: 1/1000000\n")
    strict = load_profiles(path)["second"]
    assert strict.guess_ratio_limit == Fraction(1, 10 ** 6)
    assert strict.max_issuable == 10 ** 6 - 1
    with pytest.raises(GuessabilityError, match="1/1,000,000"):
        check_guessability(strict, 10 ** 6)
