"""HTTP content negotiation for the resolver: Accept-Language, Accept, and the link that fits.

Language follows RFC 4647 lookup with q-values: the client's ranges best first, each
tried exactly and then by its primary subtag (``en-GB`` → ``en``); a link without
``hreflang`` fits any language but ranks below an explicit match. Then the GS1
``context`` value, then the media type.

>>> languages("de-CH, en-GB;q=0.8, fr;q=0")
('de-ch', 'en-gb')
>>> wants_linkset("application/linkset+json"), wants_linkset("text/html,application/json;q=0.9")
(True, False)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple


class Preferences(NamedTuple):
    """What the client would like, parsed once per request."""

    languages: tuple[str, ...]  # lower-case language tags, best first
    context: str | None
    media: tuple[str, ...]  # lower-case media ranges, best first (no wildcards)


@lru_cache(maxsize=4096)
def _weighted(header: str) -> tuple[str, ...]:
    items = []
    for position, part in enumerate(header.split(",")):
        value, _, params = part.strip().partition(";")
        value = value.strip().lower()
        if not value:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, raw = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(raw)
                except ValueError:
                    q = 0.0
        if q > 0:
            items.append((-q, position, value))
    return tuple(value for _, _, value in sorted(items))


def languages(accept_language: str | None) -> tuple[str, ...]:
    if not accept_language:
        return ()
    return tuple(tag for tag in _weighted(accept_language[:512]) if tag != "*")


def media_types(accept: str | None) -> tuple[str, ...]:
    if not accept:
        return ()
    return _weighted(accept[:512])


def wants_linkset(accept: str | None) -> bool:
    """Does the client's *first* preference ask for the linkset (linkset+json or plain JSON)?"""
    media = media_types(accept)
    return bool(media) and media[0] in ("application/linkset+json", "application/json", "application/ld+json")


def wants_html(accept: str | None) -> bool:
    media = media_types(accept)
    return bool(media) and media[0] in ("text/html", "application/xhtml+xml")


def language_rank(hreflang: Sequence[str], wanted: tuple[str, ...]) -> int:
    """Lower is better: 2k for an exact match of the k-th wanted tag, 2k+1 for its primary
    subtag; a link with no hreflang ranks after every explicit match; a non-match is 10**6."""
    if not wanted:
        return 0
    if not hreflang:
        return 2 * len(wanted)
    tags = [t.lower() for t in hreflang]
    for k, want in enumerate(wanted):
        if want in tags:
            return 2 * k
        primary = want.split("-")[0]
        if any(t.split("-")[0] == primary for t in tags):
            return 2 * k + 1
    return 10**6


def context_rank(contexts: Sequence[str], wanted: str | None) -> int:
    if wanted is None:
        return 0 if not contexts else 1
    if wanted in contexts:
        return 0
    return 1 if not contexts else 10**6


def media_rank(media: str | None, wanted: tuple[str, ...]) -> int:
    if not wanted or media is None:
        return 0
    media = media.lower()
    for k, want in enumerate(wanted):
        if want == media or want == "*/*" or (want.endswith("/*") and media.startswith(want[:-1])):
            return k
    return len(wanted)
