"""Texts of the built-in pages, per language, chosen from Accept-Language like a scan's links.

The same negotiation as the resolver (resolver.scan.negotiate): the client's language ranges
best first, each tried exactly, then by its primary subtag; the rules' default language
when nothing matches. Texts live in ``resolver/i18n/catalogues/<language>.json``; every language has
every key (a test keeps them in step).

>>> negotiate("fr;q=1, de-CH;q=0.9, en;q=0.1"), negotiate("es"), negotiate(None)
('de', 'en', 'en')
>>> texts("de")["register_button"]
'Produkt registrieren'
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from resolver.scan.negotiate import language_rank, languages

DIRECTORY = Path(__file__).resolve().parent / "catalogues"
DEFAULT = "en"


@cache
def available() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in DIRECTORY.glob("*.json")))


@cache
def texts(language: str) -> dict[str, str]:
    """Every text of the pages in ``language`` (the default language's where it has none)."""
    base = json.loads((DIRECTORY / f"{DEFAULT}.json").read_text(encoding="utf-8"))
    if language != DEFAULT and language in available():
        base.update(json.loads((DIRECTORY / f"{language}.json").read_text(encoding="utf-8")))
    return base


def negotiate(accept_language: str | None, default: str | None = None) -> str:
    """The best language we have texts in for this Accept-Language header."""
    wanted = languages(accept_language)
    fallback = (default or DEFAULT).lower().split("-")[0]
    if not wanted:
        return fallback if fallback in available() else DEFAULT
    ranked = sorted(available(), key=lambda lang: (language_rank((lang,), wanted), lang != fallback))
    best = ranked[0]
    if language_rank((best,), wanted) >= 10**6:
        return fallback if fallback in available() else DEFAULT
    return best
