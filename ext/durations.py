"""ISO 8601 durations (``P1Y6M``, ``P2W``, ``P30D``, ``PT12H``), as EPCIS and GS1 data use them.

Years and months are calendar steps (31 January + P1M is the last day of February), the
rest is exact; that is how people mean "a year after purchase" or "month 3 maintenance".
Shared by the routing rules (moments) and the twin (replacement intervals), so it lives
at the bottom of the package graph.

>>> from datetime import datetime, timezone
>>> d = parse_duration("P1Y2M10DT2H")
>>> d.months, d.days, d.seconds
(14, 10, 7200)
>>> d.after(datetime(2025, 1, 31, tzinfo=timezone.utc)).isoformat()
'2026-04-10T02:00:00+00:00'
>>> parse_duration("P1.5Y")
Traceback (most recent call last):
...
ValueError: 'P1.5Y' is not an ISO 8601 duration (PnYnMnDTnHnMnS or PnW, whole numbers)
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from typing import NamedTuple, TypeVar

_PATTERN = re.compile(r"P(?:(\d{1,4})Y)?(?:(\d{1,5})M)?(?:(\d{1,5})W)?(?:(\d{1,6})D)?"
                      r"(?:T(?=\d)(?:(\d{1,6})H)?(?:(\d{1,7})M)?(?:(\d{1,9})S)?)?")
D = TypeVar("D", date, datetime)


class Duration(NamedTuple):
    """Calendar months plus exact days and seconds; ``text`` is how it was written."""

    months: int
    days: int
    seconds: int
    text: str

    def after(self, start: D) -> D:
        """``start`` moved forward by this duration (months clamp to the month's end)."""
        moved = add_months(start, self.months) if self.months else start
        return moved + timedelta(days=self.days, seconds=self.seconds)

    def before(self, end: D) -> D:
        """``end`` moved back by this duration."""
        moved = add_months(end, -self.months) if self.months else end
        return moved - timedelta(days=self.days, seconds=self.seconds)

    def __str__(self) -> str:
        return self.text


def parse_duration(text: object) -> Duration:
    """A duration from its ISO 8601 text; ValueError saying what is wrong otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 duration such as P30D or P1Y, got {text!r}")
    match = _PATTERN.fullmatch(text)
    if match is None or text in ("P", "PT"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration (PnYnMnDTnHnMnS or PnW, whole numbers)")
    y, mo, w, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
    return Duration(y * 12 + mo, w * 7 + d, h * 3600 + mi * 60 + s, text)


def add_months(day: D, months: int) -> D:
    """Calendar months, clamping to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    m = day.month - 1 + months
    year, month = day.year + m // 12, m % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))
