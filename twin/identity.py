"""Identity of a unit: GTIN (AI 01) + serial (AI 21), and the names that hang off it.

The twin takes GTINs as 14-digit strings (the GS1 Digital Link form) and checks them
minimally itself, so that a malformed identity can never become a store key:

>>> from twin.identity import check_gtin, check_serial, UnitKey
>>> check_gtin("09506000134352")
'09506000134352'
>>> check_serial("ABC-123")
'ABC-123'
>>> UnitKey("09506000134352", "ABC-123")
UnitKey(gtin='09506000134352', serial='ABC-123')
>>> check_gtin("09506000134353")
Traceback (most recent call last):
...
twin.errors.InvalidInput: gtin: check digit is 2, not 3 ('09506000134353')
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple, overload

from twin.errors import InvalidInput

# GS1 AI encodable character set 82 (GenSpecs figure 7.11-1): serials (AI 21) and lots
# (AI 10) are X..20 over it. It has no braces, so a serial can never break a Redis hash tag.
_CSET82 = r"""!"%&'()*+,\-./0-9:;<=>?A-Z_a-z"""
_X20 = re.compile(f"[{_CSET82}]{{1,20}}")
_GTIN = re.compile(r"[0-9]{14}")
# Serial profiles and batch lines are our own names: keep them URL- and key-safe.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")


class UnitKey(NamedTuple):
    """GTIN + serial: the identity of one trade item instance."""

    gtin: str
    serial: str


#: GTINs already found valid (bounded): checking is pure, so a repeat costs one set lookup.
_GOOD_GTINS: set[str] = set()


def gtin_check_digit(body: str) -> int:
    """GS1 mod-10 check digit of the 13 digits before it (weights 3,1,3,… from the right)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        total += (ord(ch) - 48) * (3 if i % 2 == 0 else 1)
    return (10 - total % 10) % 10


def check_gtin(gtin: object, field: str = "gtin") -> str:
    """Return ``gtin`` if it is 14 digits with a valid check digit, else raise InvalidInput."""
    if isinstance(gtin, str) and gtin in _GOOD_GTINS:  # a pack or report names one GTIN thousands of times
        return gtin
    if not isinstance(gtin, str) or not _GTIN.fullmatch(gtin):
        raise InvalidInput(field, f"expected 14 digits, got {gtin!r}")
    expected = gtin_check_digit(gtin[:13])
    if ord(gtin[13]) - 48 != expected:
        raise InvalidInput(field, f"check digit is {expected}, not {gtin[13]} ({gtin!r})")
    if len(_GOOD_GTINS) >= 4096:
        _GOOD_GTINS.clear()
    _GOOD_GTINS.add(gtin)
    return gtin


def check_serial(serial: object, field: str = "serial") -> str:
    """Return ``serial`` if it is 1-20 characters of CSET 82 (AI 21), else raise."""
    if not isinstance(serial, str) or not _X20.fullmatch(serial):
        raise InvalidInput(field, f"expected 1-20 characters of GS1 CSET 82, got {serial!r}")
    return serial


def check_lot(lot: object, field: str = "lot") -> str:
    """Return ``lot`` if it is 1-20 characters of CSET 82 (AI 10), else raise."""
    if not isinstance(lot, str) or not _X20.fullmatch(lot):
        raise InvalidInput(field, f"expected 1-20 characters of GS1 CSET 82, got {lot!r}")
    return lot


def check_name(name: object, field: str) -> str:
    """Return a profile/line/site name if it is 1-40 of ``[A-Za-z0-9_-]``, else raise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(field, f"expected 1-40 characters of [A-Za-z0-9_-], got {name!r}")
    return name


@overload
def check_text(value: object, field: str, *, max_len: int, required: Literal[True] = True) -> str: ...
@overload
def check_text(value: object, field: str, *, max_len: int, required: bool) -> str | None: ...
def check_text(value: object, field: str, *, max_len: int, required: bool = True) -> str | None:
    """Free text (reasons, titles): a string of bounded length without control characters."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"expected a string, got {type(value).__name__}")
    if required and not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > max_len:
        raise InvalidInput(field, f"is {len(value)} characters, the limit is {max_len}")
    if any(ord(c) < 32 and c not in "\t\n" for c in value):
        raise InvalidInput(field, "contains control characters")
    return value
