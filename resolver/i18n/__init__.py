"""Texts of the built-in pages, per language, chosen from Accept-Language like a scan's links,
and the visitor's way of writing dates, times, numbers and plurals (Babel, CLDR data).

The same negotiation as the resolver (resolver.scan.negotiate): the client's language ranges
best first, each tried exactly, then by its primary subtag; the rules' default language
when nothing matches. Texts live in ``resolver/i18n/catalogues/<language>.json``: one key per
text, a string with ``{named}`` placeholders, or — for a text that depends on a count — a
map from CLDR plural category (``one``, ``few``, ``many``, ``other``…) to string, so a
language with more forms than English gets them all. Every language has every key with the
same placeholders and every plural category its CLDR rules name (tests/test_pages_brand.py
keeps them in step; docs/pages.md says how to add a language).

>>> negotiate("fr;q=1, de-CH;q=0.9, en;q=0.1"), negotiate("es"), negotiate(None)
('de', 'en', 'en')
>>> texts("de")["register_button"]
'Produkt registrieren'
>>> plural("de", "service_summary", 1, "de", date="1. März 2026")
'1 Wartungsbesuch, zuletzt am 1. März 2026.'
>>> format_date("2026-03-01", "de"), format_date("2026-03-01", "en-GB"), format_date("2026-03-01", "en-US")
('1. März 2026', '1 March 2026', 'March 1, 2026')
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers

from resolver.scan.negotiate import language_rank, languages

DIRECTORY = Path(__file__).resolve().parent / "catalogues"
DEFAULT = "en"

Text = str | dict[str, str]


@cache
def available() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in DIRECTORY.glob("*.json")))


@cache
def catalogue(language: str) -> dict[str, Text]:
    """One language's catalogue exactly as written (no fallback): what the tests compare."""
    loaded: dict[str, Text] = json.loads((DIRECTORY / f"{language}.json").read_text(encoding="utf-8"))
    return loaded


@cache
def texts(language: str) -> dict[str, Any]:
    """Every text of the pages in ``language`` (the default language's where it has none)."""
    base = dict(catalogue(DEFAULT))
    if language != DEFAULT and language in available():
        base.update(catalogue(language))
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


@cache
def _locale(tag: str) -> Locale:
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(tag.split("-")[0]) if "-" in tag else Locale.parse(DEFAULT)


def locale_for(language: str, wanted: tuple[str, ...]) -> str:
    """The visitor's own variant of the page's language for dates and numbers: a page in
    English for ``en-GB`` writes "1 March 2026", for ``en-US`` "March 1, 2026"."""
    for tag in wanted:
        if tag.split("-")[0] == language and tag != "*":
            try:
                Locale.parse(tag.replace("-", "_"))
                return tag
            except (UnknownLocaleError, ValueError):
                continue
    return language


def _day(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value[:10])


def format_date(value: date | datetime | str | None, locale: str, style: str = "long") -> str:
    """A day as the visitor writes it ("1. März 2026"); ISO text, dates and datetimes alike."""
    if value is None or value == "":
        return ""
    return babel_dates.format_date(_day(value), style, locale=_locale(locale))


def format_datetime(value: datetime | float | str, locale: str) -> str:
    """A moment as the visitor writes it, in UTC and saying so ("1. März 2026, 17:00 UTC")."""
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        moment = value
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    loc = _locale(locale)
    return (f"{babel_dates.format_date(moment.date(), 'long', locale=loc)}, "
            f"{babel_dates.format_time(moment, 'short', tzinfo=UTC, locale=loc)} UTC")


def format_number(value: int | float, locale: str) -> str:
    return babel_numbers.format_decimal(value, locale=_locale(locale))


def plural_categories(language: str) -> frozenset[str]:
    """The CLDR plural categories a catalogue of ``language`` must give (``other`` always)."""
    return frozenset(_locale(language).plural_form.tags) | {"other"}


def plural_form(language: str, count: int) -> str:
    """The CLDR plural category of ``count`` in ``language`` (``one``, ``few``, ``other``…)."""
    return str(_locale(language).plural_form(count))


def plural(language: str, key: str, count: int, locale: str | None = None, **values: Any) -> str:
    """The text ``key`` for ``count`` in the language's plural form; ``{count}`` is the
    number written the visitor's way."""
    forms = texts(language)[key]
    text = forms if isinstance(forms, str) else forms.get(plural_form(language, count), forms["other"])
    return text.format(count=format_number(count, locale or language), **values)
