"""Malformed percent-escapes are a 400, never a job for the lenient parser.

The resolver reads legacy labels (short GTINs, old short names, a trailing slash) through
the lenient parser, but a ``%`` not followed by two hex digits is not a legacy form: RFC 3986
forbids it, GS1's URI syntax and BWIPP reject it, and reading it leniently would route a
garbled URI as an unknown (counterfeit) serial. So both the scan path and ``rules explain``
answer 400 with the strict parser's reason when the URI has one.

>>> malformed_escape("https://id.gs1.org/01/09506000134352/21/AB%2x"), malformed_escape("/21/A%2FB")
(True, False)
"""

from __future__ import annotations

import re

_MALFORMED = re.compile(r"%(?![0-9A-Fa-f]{2})")


def malformed_escape(uri: str) -> bool:
    """Does ``uri`` hold a ``%`` that does not start a two-hex-digit escape?"""
    return "%" in uri and _MALFORMED.search(uri) is not None
