"""Lifetimes as people write them: ``90s``, ``15m``, ``8h``, ``30d``, ``2w`` or ISO 8601 ``PT8H``, ``P30D``.

Token lifetimes and rotation overlaps are exact numbers of seconds, so only units of fixed
length are accepted: ISO 8601 years and months (``P1Y``, ``P1M``) are refused rather than
guessed at (which month?). A plain number is seconds. This small grammar is all the
operators need, which is why it is a regular expression and not a date library.

>>> [parse_duration(text) for text in ("8h", "30d", "PT8H", "P1DT12H", "PT1H30M", "3600", "2w")]
[28800, 2592000, 28800, 129600, 5400, 3600, 1209600]
>>> parse_duration("P1M")
Traceback (most recent call last):
...
ValueError: 'P1M': months and years have no fixed length; write days (P30D, 30d)
>>> format_duration(129600), format_duration(28800), format_duration(45)
('1d12h', '8h', '45s')
"""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SHORT = re.compile(r"(\d{1,9})\s*([smhdw]?)", re.IGNORECASE)
_ISO = re.compile(r"P(?:(?P<w>\d{1,9})W)?(?:(?P<d>\d{1,9})D)?"
                  r"(?:T(?:(?P<h>\d{1,9})H)?(?:(?P<m>\d{1,9})M)?(?:(?P<s>\d{1,9})S)?)?", re.IGNORECASE)
_HINT = "expected e.g. 8h, 30d, 90m or ISO 8601 PT8H, P30D"


def parse_duration(text: str) -> int:
    """Seconds in ``text``; ValueError with a plain reason for anything else."""
    raw = text.strip()
    short = _SHORT.fullmatch(raw)
    if short:
        return int(short.group(1)) * _UNITS[(short.group(2) or "s").lower()]
    if raw[:1] in "pP":
        if re.search(r"\d[YM]", re.split("T", raw, maxsplit=1, flags=re.IGNORECASE)[0], re.IGNORECASE):
            raise ValueError(f"{text!r}: months and years have no fixed length; write days (P30D, 30d)")
        iso = _ISO.fullmatch(raw)
        if iso and any(iso.groupdict().values()) and not raw.upper().endswith("T"):
            return sum(int(v) * _UNITS[k] for k, v in iso.groupdict().items() if v)
    raise ValueError(f"{text!r}: {_HINT}")


def format_duration(seconds: int) -> str:
    """The short form of a number of seconds (the largest units first)."""
    if seconds <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out)
