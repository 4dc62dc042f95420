"""The default link of one level — what a scan of that level's DL URI without a link type gets.

A linkset carries, per level, a ``gs1:defaultLink`` and, when the default's link type has
variants a client can pick by language, context or media type, ``gs1:defaultLinkMulti``
entries for them. GS1's resolver standard says a request without a link type goes to the
default unless it carries information that matches a ``gs1:defaultLinkMulti`` better, so the
linkset must say exactly what the redirect does: here both come from the one routing decision
(``decide``), made for the level's own DL URI, role and unit facts. The variants are not
assumed: each is kept only if a request that asks for its language, context and media type
is in fact redirected to it, so the linkset cannot promise a redirect the rules do not make.

A lot or serial whose rules choose another default (say an unregistered unit sent to
registration) publishes its own default and its own variants; it does not inherit the
GTIN's. Readers of a linkset take each link type from the most granular level that has it
(GS1's suite does, for ``gs1:defaultLinkMulti`` too), so a level whose new default has no
variants of its own while a level above publishes some lists its default once for each of
those language/context/media choices: they shadow the inherited ones, and each says where
the resolver really sends that choice. A level whose default is the same as the one above
inherits it and publishes nothing (see README, "Linksets and default links").

>>> from ext import parse
>>> from resolver.rules.compiler import load_rules, default_rules_file
>>> from resolver.scan.negotiate import Preferences
>>> rules = load_rules(default_rules_file())
>>> dl = parse("https://id.example.com/01/09506000134352/21/A1")
>>> d = level_default(rules, dl, "consumer", UnitFacts("sold"), Preferences((), None, ()), 0)
>>> d.link.href, [(v.lang, v.href) for v in d.variants]
('https://www.example.com/register/09506000134352/A1', [(('en',), 'https://www.example.com/register/09506000134352/A1'), (('de',), 'https://www.example.com/de/registrieren/09506000134352/A1')])
>>> level_default(rules, dl, "technician", UnitFacts("sold"), Preferences((), None, ()), 0).variants
()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ext.dl import DigitalLink
from resolver.rules.compiler import CompiledRules
from resolver.scan.decide import (
    LEVELS,
    NO_STORED_LINKS,
    Candidate,
    ScanRequest,
    StoredLinks,
    UnitFacts,
    decide,
    links_at,
    template_values,
)
from resolver.scan.negotiate import Preferences


class LevelDefault(NamedTuple):
    """Where a plain scan of one level goes, and the variants a client's preferences pick among."""

    link: Candidate
    variants: tuple[Candidate, ...] = ()  # two or more, each reached by asking for its attributes; else ()
    published: bool = True  # False: the same as the level above, which the linkset lets it inherit

    def same_as(self, other: LevelDefault | None) -> bool:
        """Does this level describe the same redirects as ``other`` (so it may inherit them)?"""
        if other is None or self.link.href != other.link.href:
            return False
        return [_attributes(v) for v in self.variants] == [_attributes(v) for v in other.variants]


def _attributes(c: Candidate) -> tuple[object, ...]:
    return c.href, c.lang, c.context, c.media


def probe(c: Candidate) -> Preferences:
    """The preferences of a client that asks for exactly this link's language, context and media type."""
    return Preferences(tuple(t.lower() for t in c.lang[:1]), c.context[0] if c.context else None,
                       (c.media.lower(),) if c.media else ())


def level_default(rules: CompiledRules, dl: DigitalLink, role: str, facts: UnitFacts, prefs: Preferences, now_ms: int,
                  stored: StoredLinks = NO_STORED_LINKS) -> LevelDefault | None:
    """The default of the level ``dl`` names (its most granular one), for this role and these facts.

    None when a plain scan of it is not redirected (nothing known, or several equal links).
    """
    product = rules.product_for(dl.gtin) if dl.gtin is not None else None
    decision = decide(rules, dl, role, facts, ScanRequest(None, prefs, now_ms), stored)
    if decision.status != 307 or decision.link is None:
        return None
    link = decision.link
    if link.level not in LEVELS:  # a route with its own target: no variants
        return LevelDefault(link)
    options = links_at(product, stored, link.level, link.link_type, role, template_values(dl.elements, facts))
    if len(options) < 2:
        return LevelDefault(link)
    reached = tuple(c for c in options
                    if decide(rules, dl, role, facts, ScanRequest(None, probe(c), now_ms), stored).href == c.href)
    return LevelDefault(link, reached if len(reached) > 1 else ())


def for_levels(rules: CompiledRules, scans: Sequence[tuple[str, DigitalLink, UnitFacts]], role: str, prefs: Preferences,
               now_ms: int, stored: StoredLinks = NO_STORED_LINKS) -> dict[str, LevelDefault | None]:
    """The default each level of a linkset publishes, least granular level first.

    ``scans`` holds per level its DL URI and the facts a scan of it routes on. A level
    inherits (``published`` False) when its redirects are those of the level above; a level
    with a new single-target default shadows the variants above it (see the module's text).
    """
    out: dict[str, LevelDefault | None] = {}
    above: LevelDefault | None = None
    for level, dl, facts in scans:
        own = level_default(rules, dl, role, facts, prefs, now_ms, stored)
        if own is None:
            out[level] = None
            continue
        if above is not None and own.same_as(above):
            out[level] = own._replace(published=False)
            continue
        if not own.variants and above is not None and above.variants:
            own = own._replace(variants=_shadows(rules, dl, role, facts, now_ms, stored, above.variants))
        out[level] = above = own
    return out


def _shadows(rules: CompiledRules, dl: DigitalLink, role: str, facts: UnitFacts, now_ms: int, stored: StoredLinks,
             inherited: Sequence[Candidate]) -> tuple[Candidate, ...]:
    """For each inherited variant's choice, where this level sends a client that makes it."""
    out = []
    for v in inherited:
        d = decide(rules, dl, role, facts, ScanRequest(None, probe(v), now_ms), stored)
        if d.status == 307 and d.link is not None and d.href is not None:
            out.append(d.link._replace(lang=v.lang, context=v.context, media=v.media))
    return tuple(out) if len(out) > 1 else ()
