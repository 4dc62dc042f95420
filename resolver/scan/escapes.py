"""Malformed percent-escapes are a 400, never a job for the lenient parser.

The resolver reads legacy labels (short GTINs, old short names, a trailing slash) through
the lenient parser, but a ``%`` not followed by two hex digits is not a legacy form: RFC 3986
forbids it, GS1's URI syntax and BWIPP reject it, and reading it leniently would route a
garbled URI as an unknown (counterfeit) serial. So both the scan path and ``rules explain``
answer 400 with the strict parser's reason when the URI has one.

>>> escape_error("/21/A%2FB") is None
True
>>> str(escape_error("/21/AB%2x"))
"at position 6: malformed percent-escape ('%' must be followed by two hex digits; write %25 for '%')"
"""

from __future__ import annotations

import re

from ext import GS1Error

_MALFORMED = re.compile(r"%(?![0-9A-Fa-f]{2})")


def escape_error(uri: str) -> GS1Error | None:
    """The 400's reason for the first malformed escape of ``uri`` (path or query), or None."""
    if "%" not in uri:
        return None
    found = _MALFORMED.search(uri)
    if found is None:
        return None
    return GS1Error("malformed percent-escape ('%' must be followed by two hex digits; write %25 for '%')",
                    position=found.start(), code="MALFORMED_PERCENT_ESCAPE")
