"""Serial profiles: the shape of AI (21) serials for one market, loaded from YAML.

A profile fixes the alphabet (a subset of GS1 CSET 82), the length (1 to 20, GS1 `X..20`),
sequential or randomised minting, optional numeral bounds (no leading zero, a maximum value such
as SGTIN-96's 2**38 - 1) and an optional fixed prefix. It knows its exact `space` and builds the
permutation that turns a GTIN's counters into serials. Before a range is allocated the serialiser
calls `check_guessability`, which enforces EU 2016/161 Art. 4(c) as industry reads it: serials
issued per GTIN divided by the space stays below 1/10,000.

>>> from serializer.profiles import load_profiles, check_guessability
>>> profiles = load_profiles()
>>> default = profiles["default"]
>>> default.alphabet, default.length, default.mode, default.space == 34 ** 12
('0123456789ABCDEFGHJKLMNPQRSTUVWXYZ', 12, 'randomised', True)
>>> p = default.permutation(b"a 16+ byte secret key", "09506000134352")
>>> serial = p.encode(0)
>>> len(serial), p.decode(serial)
(12, 0)
>>> default.max_issuable                   # per GTIN, below 1/10,000 of 34**12
238642068369310
>>> print(f"{float(check_guessability(default, 10 ** 9).ratio):.2e}")
4.19e-10
>>> check_guessability(profiles["sgtin-96"], 20_000_000)
Traceback (most recent call last):
...
serializer.errors.GuessabilityError: profile 'sgtin-96': 20,000,000 serials issued of a space of 174,877,906,944 is a guess ratio of 1.144e-04, not below the limit 1/10,000 (EU 2016/161 Art. 4(c)); at most 17,487,790 serials may be issued per GTIN with this profile
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import jsonschema
import yaml

from ext.permutation import SerialPermutation
from serializer.errors import GuessabilityError, ProfileError, ProfileFieldError

# GS1 General Specifications figure 7.11-1: the 82 characters AI (21) may use
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
# 0x25-0x3F is the contiguous run % & ' ( ) * + , - . / 0-9 : ; < = > ?
CSET82_PATTERN = r'^[!"%-?A-Z_a-z]*$'
# digits and upper case without I and O: URI-, ZPL- and QR-alphanumeric-safe, hard to misread
SAFE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
MAX_LENGTH = 20
# EU 2016/161 Art. 4(c): "negligible and in any case less than one in ten thousand"
EU_GUESS_RATIO_LIMIT = Fraction(1, 10_000)
# NIST SP 800-38G Rev. 1 asks radix**minlen >= 10**6 of an FPE domain: smaller ones are
# open to known attacks on Feistel-based FPE, and could not issue 100 serials under 1/10,000
MIN_RANDOMISED_SPACE = 10 ** 6

Mode = Literal["sequential", "randomised"]

PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "alphabet", "length", "mode"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$", "maxLength": 64},
        "description": {"type": "string"},
        "alphabet": {"type": "string", "minLength": 2, "maxLength": 82, "pattern": CSET82_PATTERN},
        "length": {"type": "integer", "minimum": 1, "maximum": MAX_LENGTH},
        "mode": {"enum": ["sequential", "randomised"]},
        "no_leading_zero": {"type": "boolean"},
        "max_value": {"type": "integer", "minimum": 1},
        "prefix": {"type": "string", "maxLength": MAX_LENGTH - 1, "pattern": CSET82_PATTERN},
        "guess_ratio_limit": {"type": ["number", "string", "null"]},
    },
}

FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["profiles"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "profiles": {"type": "array", "minItems": 1, "items": PROFILE_SCHEMA},
    },
}

# jsonschema's own wording for these is a regex dump; say what the rule is instead
_SCHEMA_MESSAGES = {
    ("alphabet", "pattern"): "characters outside GS1 CSET 82: {outside}",
    ("prefix", "pattern"): "characters outside GS1 CSET 82: {outside}",
    ("length", "minimum"): "must be 1 to 20 characters (GS1 AI 21 is X..20), not {value}",
    ("length", "maximum"): "must be 1 to 20 characters (GS1 AI 21 is X..20), not {value}",
    ("mode", "enum"): "must be 'sequential' or 'randomised', not {value!r}",
    ("name", "pattern"): "must be lower-case letters, digits and '-', not {value!r}",
}


@dataclass(frozen=True, slots=True)
class SerialProfile:
    """The shape of one market's serials. Invariants are checked on construction."""

    name: str
    alphabet: str
    length: int
    mode: Mode
    no_leading_zero: bool = False
    max_value: int | None = None
    prefix: str = ""
    guess_ratio_limit: Fraction | None = EU_GUESS_RATIO_LIMIT
    description: str = ""

    def __post_init__(self) -> None:
        for field, message in _profile_problems(self):
            raise ProfileFieldError(self.name, field, message)

    @property
    def radix(self) -> int:
        return len(self.alphabet)

    @property
    def body_length(self) -> int:
        """Characters after the prefix: the part the permutation chooses."""
        return self.length - len(self.prefix)

    @property
    def low(self) -> int:
        """Smallest serial body, read as a radix numeral (alphabet[0] is digit 0)."""
        return self.radix ** (self.body_length - 1) if self.no_leading_zero else 0

    @property
    def high(self) -> int:
        """One past the largest serial body, read as a radix numeral."""
        full: int = self.radix ** self.body_length
        return full if self.max_value is None else min(full, self.max_value + 1)

    @property
    def space(self) -> int:
        """The exact number of distinct serials this profile can mint per GTIN."""
        return self.high - self.low

    @property
    def max_issuable(self) -> int:
        """The most serials one GTIN may issue: below the guess ratio limit, else the space."""
        if self.guess_ratio_limit is None:
            return self.space
        # issued / space < limit  <=>  issued < limit * space
        return min(self.space, math.ceil(self.guess_ratio_limit * self.space) - 1)

    def permutation(self, key: bytes | None, gtin: str) -> SerialPermutation:
        """The counter <-> serial bijection of this profile for one GTIN (the tweak).

        Randomised profiles need the GTIN's secret key (>= 16 bytes); sequential ones ignore it.
        """
        if not (isinstance(gtin, str) and len(gtin) == 14 and gtin.isdigit() and gtin.isascii()):
            raise ValueError(f"the tweak is the GTIN as 14 digits, not {gtin!r}")
        if self.mode == "sequential":
            return SerialPermutation.sequential(self.alphabet, self.length, low=self.low,
                                                high=self.high, prefix=self.prefix)
        if key is None:
            raise ValueError(f"profile {self.name!r} is randomised: it needs the GTIN's key")
        return SerialPermutation(key, self.alphabet, self.length, tweak=gtin.encode("ascii"),
                                 low=self.low, high=self.high, prefix=self.prefix)


@dataclass(frozen=True, slots=True)
class GuessRatio:
    """What check_guessability found: issued_total / space against the profile's limit."""

    profile: str
    issued_total: int
    space: int
    limit: Fraction | None

    @property
    def ratio(self) -> Fraction:
        return Fraction(self.issued_total, self.space)


def _fraction_text(value: Fraction) -> str:
    if value.numerator == 1:
        return f"1/{value.denominator:,}"
    return f"{float(value):.3g}"


def check_guessability(profile: SerialProfile, issued_total: int) -> GuessRatio:
    """Refuse unless issued_total / space stays below the profile's guess ratio limit.

    `issued_total` is every serial of this GTIN under this profile once the new range is
    allocated (the counter's end, not the batch size). Raises GuessabilityError with the
    figures; a profile with no limit (sequential: guessable by construction) only refuses
    more serials than its space holds.
    """
    if issued_total < 0:
        raise ValueError(f"issued_total must not be negative, not {issued_total}")
    found = GuessRatio(profile.name, issued_total, profile.space, profile.guess_ratio_limit)
    if issued_total > profile.space:
        raise GuessabilityError(
            f"profile {profile.name!r}: {issued_total:,} serials exceed its space of "
            f"{profile.space:,}: serials would repeat")
    limit = profile.guess_ratio_limit
    if limit is not None and found.ratio >= limit:
        raise GuessabilityError(
            f"profile {profile.name!r}: {issued_total:,} serials issued of a space of "
            f"{profile.space:,} is a guess ratio of {float(found.ratio):.3e}, not below the limit "
            f"{_fraction_text(limit)} (EU 2016/161 Art. 4(c)); at most {profile.max_issuable:,} "
            f"serials may be issued per GTIN with this profile")
    return found


# --- validation shared by the dataclass and the loader ----------------------------------------

def _profile_problems(p: SerialProfile) -> Iterator[tuple[str, str]]:
    """(field, message) for each broken invariant; types are assumed right (the schema)."""
    if p.name.startswith("sscc-"):  # serializer.sscc.PROFILE_PREFIX: the allocator's SSCC ranges
        yield "name", "names starting with 'sscc-' are kept for SSCC ranges (serializer.sscc)"
        return
    outside = sorted(set(p.alphabet) - set(CSET82))
    if outside:
        yield "alphabet", f"characters outside GS1 CSET 82: {_chars(outside)}"
        return
    if len(p.alphabet) < 2:
        yield "alphabet", "needs at least 2 characters"
        return
    repeated = sorted({ch for ch in p.alphabet if p.alphabet.count(ch) > 1})
    if repeated:
        yield "alphabet", f"repeats {_chars(repeated)}: each character is one digit value"
        return
    if not 1 <= p.length <= MAX_LENGTH:
        yield "length", f"must be 1 to 20 characters (GS1 AI 21 is X..20), not {p.length}"
        return
    if p.mode not in ("sequential", "randomised"):
        yield "mode", f"must be 'sequential' or 'randomised', not {p.mode!r}"
        return
    if set(p.prefix) - set(CSET82):
        yield "prefix", f"characters outside GS1 CSET 82: {_chars(sorted(set(p.prefix) - set(CSET82)))}"
        return
    if len(p.prefix) >= p.length:
        yield "prefix", f"{p.prefix!r} leaves no characters of the {p.length} to serialise"
        return
    if p.prefix and (p.no_leading_zero or p.max_value is not None):
        yield "prefix", ("cannot be combined with no_leading_zero or max_value, which read the "
                         "whole serial as a number")
        return
    if p.max_value is not None and p.max_value < p.low:
        yield "max_value", (f"{p.max_value:,} is below the smallest {p.length}-character serial "
                            f"({p.low:,}): the profile would have no serials")
        return
    if p.mode == "randomised" and p.space < MIN_RANDOMISED_SPACE:
        yield "length", (f"a randomised profile needs at least {MIN_RANDOMISED_SPACE:,} serials "
                         f"(NIST SP 800-38G domain minimum); this one has {p.space:,}")
        return
    limit = p.guess_ratio_limit
    if p.mode == "sequential" and limit is not None:
        yield "guess_ratio_limit", ("sequential serials are guessable by construction and "
                                    "cannot meet a guess ratio limit: set it to null to say so, "
                                    "or make the profile randomised")
    elif limit is not None and not 0 < limit <= EU_GUESS_RATIO_LIMIT:
        yield "guess_ratio_limit", (f"must be above 0 and at most 1/10,000 (EU 2016/161 Art. 4(c)), "
                                    f"not {_fraction_text(limit)}")


def _chars(chars: list[str]) -> str:
    return ", ".join(repr(ch) for ch in chars)


# --- loading --------------------------------------------------------------------------------

def default_profiles_path() -> Path:
    """config/serial-profiles.yaml of a source checkout, else the installed copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "config" / "serial-profiles.yaml",
                      here.parent / "serialink" / "_config" / "serial-profiles.yaml"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("serial-profiles.yaml is neither in config/ nor in serialink/_config/")


def load_profiles(path: str | Path | None = None) -> Mapping[str, SerialProfile]:
    """The profiles of a YAML file by name, in file order; ProfileError names file:line:field."""
    path = Path(path) if path is not None else default_profiles_path()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(str(path), [(0, "(file)", f"cannot read it: {getattr(exc, 'strerror', None) or exc}")]) from None
    return parse_profiles(text, str(path))


def parse_profiles(text: str, path: str = "<string>") -> Mapping[str, SerialProfile]:
    """Like load_profiles, from the text of a file (`path` names it in errors)."""
    root, data = _compose(text, path)
    problems: list[tuple[int, str, str]] = list(_duplicate_keys(root))
    validator = jsonschema.Draft202012Validator(FILE_SCHEMA)
    broken: set[int] = set()
    for error in validator.iter_errors(data):
        location = list(error.absolute_path)
        if location[:1] == ["profiles"] and len(location) >= 2:
            broken.add(location[1])
        problems.append(_schema_problem(root, data, error))
    if problems:
        raise ProfileError(path, problems)

    profiles: dict[str, SerialProfile] = {}
    for index, entry in enumerate(data["profiles"]):
        if index in broken:
            continue
        where = ["profiles", index]
        label = f"profile {entry['name']!r}"
        if entry["name"] in profiles:
            problems.append((_line(root, where + ["name"]), f"{label}.name",
                             "a profile of this name is already defined above"))
            continue
        try:
            limit = _limit(entry)
        except ValueError as exc:
            problems.append((_line(root, where + ["guess_ratio_limit"]),
                             f"{label}.guess_ratio_limit", str(exc)))
            continue
        fields = dict(
            name=entry["name"], alphabet=entry["alphabet"], length=int(entry["length"]),
            mode=entry["mode"], no_leading_zero=entry.get("no_leading_zero", False),
            max_value=entry.get("max_value"), prefix=entry.get("prefix", ""),
            guess_ratio_limit=limit, description=entry.get("description", ""))
        try:
            profiles[entry["name"]] = SerialProfile(**fields)
        except ProfileFieldError as exc:
            problems.append((_line(root, where + [exc.field]), f"{label}.{exc.field}", exc.reason))
    if problems:
        raise ProfileError(path, problems)
    return MappingProxyType(profiles)


def _limit(entry: dict[str, Any]) -> Fraction | None:
    if "guess_ratio_limit" not in entry:
        # also for sequential profiles, which must then say null explicitly (see the check)
        return EU_GUESS_RATIO_LIMIT
    value = entry["guess_ratio_limit"]
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"must be a number such as 1/10000 or null, not {value!r}")
    try:
        # through str so that 0.0001 is exactly 1/10000 and "1/10000" is accepted too
        return Fraction(str(value).replace("_", "").replace(",", ""))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"must be a number such as 1/10000 or null, not {value!r}") from None


def _compose(text: str, path: str) -> tuple[yaml.Node, Any]:
    """The node tree (for line numbers) and the plain data of a YAML document."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise ProfileError(path, [(1, "(file)", "is empty: expected a 'profiles:' list")])
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        message = f"syntax error: {exc.problem or exc}"
        mark = exc.problem_mark or exc.context_mark
        if exc.context and exc.context_mark:
            message += f" ({exc.context} on line {exc.context_mark.line + 1})"
            if mark is not None and mark is exc.problem_mark and mark.index >= len(text.rstrip()):
                # "unexpected end of stream": where the unclosed construct began says more
                mark = exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ProfileError(path, [(line, "(YAML)", message)]) from None
    finally:
        loader.dispose()
    return root, data


def _node_at(root: yaml.Node, location: list[Any]) -> yaml.Node:
    """The deepest node along a jsonschema path (the key node for a mapping's last step)."""
    node = root
    for depth, step in enumerate(location):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == step:
                    node = key if depth == len(location) - 1 else value
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            return node
    return node


def _line(root: yaml.Node, location: list[Any]) -> int:
    return _node_at(root, location).start_mark.line + 1


def _field_name(data: Any, location: list[Any]) -> str:
    if location[:1] == ["profiles"] and len(location) >= 2:
        try:
            name = data["profiles"][location[1]]["name"]
            head = f"profile {name!r}" if isinstance(name, str) else f"profiles[{location[1]}]"
        except (KeyError, TypeError, IndexError):
            head = f"profiles[{location[1]}]"
        return ".".join([head, *map(str, location[2:])])
    return ".".join(map(str, location)) or "(file)"


def _schema_problem(root: yaml.Node, data: Any, error: jsonschema.ValidationError) -> tuple[int, str, str]:
    location = list(error.absolute_path)
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            location = location + [extra[0]]
            message = f"unknown field (known: {', '.join(sorted(allowed))})"
    elif error.validator == "required":
        message = f"missing: {error.message.split(' ')[0]}"
    elif location:
        template = _SCHEMA_MESSAGES.get((location[-1], error.validator))
        if template:
            value = error.instance
            outside = _chars(sorted(set(value) - set(CSET82))) if isinstance(value, str) else ""
            message = template.format(value=value, outside=outside)
    return _line(root, location), _field_name(data, location), message


def _duplicate_keys(node: yaml.Node, where: str = "", seen: set[int] | None = None
                    ) -> Iterator[tuple[int, str, str]]:
    """PyYAML keeps the last of two equal keys silently; a profile file must not."""
    seen = set() if seen is None else seen
    if id(node) in seen:   # an alias: already walked where its anchor is
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[Any] = set()
        for key, value in node.value:
            label = f"{where}.{key.value}" if where else str(key.value)
            if isinstance(key, yaml.ScalarNode):
                if key.value in keys:
                    yield key.start_mark.line + 1, label, "defined twice in the same mapping"
                keys.add(key.value)
            yield from _duplicate_keys(value, label, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{where}[{index}]", seen)
