"""Route date windows (``when.from`` / ``when.until``): one parser, used by the schema's
``date-time`` format check *and* by the compiler, so a value the check accepts always compiles.

jsonschema only checks ``format: date-time`` when an optional package happens to be
installed, and Python's ``datetime.fromisoformat`` accepts things RFC 3339 does not (no
time zone, week dates) and refuses some it does (lower-case ``t``/``z``, leap seconds).
Here a date-time is RFC 3339 with a time zone, nothing else; a leap second (``:60``) is
read as the last instant of its minute.

>>> timestamp_ms("2026-12-01T00:00:00Z")
1796083200000
>>> timestamp_ms("2026-12-01T01:00:00+01:00") == timestamp_ms("2026-12-01t00:00:00z")
True
>>> timestamp_ms("2026-12-01T00:00:00")
Traceback (most recent call last):
...
ValueError: '2026-12-01T00:00:00' has no time zone; add Z (UTC) or an offset such as +01:00
"""

from __future__ import annotations

import datetime as dt
import re

import jsonschema

EXAMPLE = '"2026-12-01T00:00:00Z"'
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)?", re.ASCII)


def timestamp_ms(text: str) -> int:
    """Milliseconds since the epoch; ValueError saying what is wrong (and how to write it)."""
    m = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not a date-time; write it as {EXAMPLE} (ISO 8601 with a time zone)")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zone = m.group(7), m.group(8)
    if zone is None:
        raise ValueError(f"{text!r} has no time zone; add Z (UTC) or an offset such as +01:00")
    if zone in ("Z", "z"):
        offset = dt.timedelta(0)
    else:
        oh, om = int(zone[1:3]), int(zone[4:6])
        if oh > 23 or om > 59:
            raise ValueError(f"{text!r}: the offset {zone} is out of range")
        offset = (1 if zone[0] == "+" else -1) * dt.timedelta(hours=oh, minutes=om)
    micros = int((fraction[1:] + "000000")[:6]) if fraction else 0
    leap = second == 60
    try:
        moment = dt.datetime(year, month, day, hour, minute, 59 if leap else second, 999_999 if leap else micros,
                             tzinfo=dt.timezone(offset))
        return int(moment.timestamp() * 1000)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{text!r} is not a real date and time ({exc}); write it as {EXAMPLE}") from None


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # 'type' reports non-strings
    timestamp_ms(value)
    return True


#: The only format the rules schema uses, checked the same way whatever is installed.
FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
FORMAT_CHECKER.checks("date-time", raises=ValueError)(_is_date_time)
