"""Linksets (RFC 9264, GS1-Conformant Resolver 1.2) and the HTML page of the same links.

One object per level — GTIN, then lot, then serial — each anchored at its own DL URI on
the resolver root, with full link-type URIs as keys. Every level describes the redirects
the resolver makes for a scan of that level's DL URI without a link type, for the caller's
role and the unit's state (resolver.scan.defaults): the GTIN level always carries its one
title-only ``gs1:defaultLink`` and, when the default has language, context or media
variants, the ``gs1:defaultLinkMulti`` entries for them; a lot or serial level whose
default differs (an unregistered unit sent to registration, a regulator sent to the unit's
passport) carries its own default and its own variants; one whose default is the same
inherits them and repeats nothing, as GS1 asks.

Only links the caller's role may see are listed: technicians' service records stay out
of a consumer's linkset.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ext import escape
from ext.dl import DigitalLink
from resolver.rules.compiler import CompiledRules, Product
from resolver.rules.linktypes import DEFAULT_LINK, DEFAULT_LINK_MULTI, label, relation_uri
from resolver.scan.decide import (
    LEVELS,
    Candidate,
    StoredLinks,
    UnitFacts,
    level_available,
    links_at,
    template_values,
)
from resolver.scan.defaults import LevelDefault

CONTEXT_URL = "https://ref.gs1.org/standards/resolver/linkset-context"
CONTEXT_LINK = f'<{CONTEXT_URL}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
MEDIA_TYPE = "application/linkset+json"


def anchor_for(rules: CompiledRules, dl: DigitalLink, level: str, values: dict[str, str]) -> str:
    key_ai, key_value = dl.primary_key
    base = f"{rules.root}/{key_ai}/{escape(key_value)}"
    if level == "lot":
        return f"{base}/10/{escape(values['10'])}"
    if level == "serial":
        if "235" in values and "21" not in values:
            return f"{base}/235/{escape(values['235'])}"
        return f"{base}/21/{escape(values['21'])}"
    return base


def _link_object(c: Candidate) -> dict[str, Any]:
    obj: dict[str, Any] = {"href": c.href, "title": c.title}
    if c.media:
        obj["type"] = c.media
    if c.lang:
        obj["hreflang"] = list(c.lang)
    if c.context:
        obj["context"] = list(c.context)
    return obj


def _description(product: Product | None, dl: DigitalLink, level: str, values: dict[str, str]) -> str:
    name = product.name if product is not None else f"GS1 {dl.primary_key[0]} {dl.primary_key[1]}"
    if level == "lot":
        return f"{name}, lot {values['10']}"
    if level == "serial":
        return f"{name}, serial {values.get('21') or values.get('235')}"
    return name


def levels(rules: CompiledRules, dl: DigitalLink, facts: UnitFacts) -> list[tuple[str, str]]:
    """The levels of this scan, least granular first, each with its anchor (the level's DL URI)."""
    values = template_values(dl.elements, facts)
    return [(level, anchor_for(rules, dl, level, values)) for level in reversed(LEVELS)
            if level_available(level, values)]


def default_title(c: Candidate) -> str:
    return c.title or (label(c.link_type) if c.link_type != "route" else "Default link")


def build(rules: CompiledRules, dl: DigitalLink, product: Product | None, stored: StoredLinks, role: str,
          facts: UnitFacts, defaults: Mapping[str, LevelDefault | None]) -> dict[str, Any]:
    """The linkset of one request: every level of the scanned identity up to the primary key.

    ``defaults`` holds, per level, where a scan of that level's DL URI without a link type
    goes for this caller and whether the level publishes it (resolver.scan.defaults.for_levels).
    """
    values = template_values(dl.elements, facts)
    objects: list[dict[str, Any]] = []
    for level, anchor in levels(rules, dl, facts):
        obj: dict[str, Any] = {"anchor": anchor, "itemDescription": _description(product, dl, level, values)}
        for c in links_at(product, stored, level, None, role, values):
            if c.link_type not in (DEFAULT_LINK, DEFAULT_LINK_MULTI):  # stored stand-ins: published below
                obj.setdefault(relation_uri(c.link_type), []).append(_link_object(c))
        own = defaults.get(level)
        if own is not None and own.published:
            obj[relation_uri(DEFAULT_LINK)] = [{"href": own.link.href, "title": default_title(own.link)}]
            if own.variants:
                obj[relation_uri(DEFAULT_LINK_MULTI)] = [_link_object(c) for c in own.variants]
        objects.append(obj)
    return {"linkset": objects}


def dumps(linkset: dict[str, Any]) -> bytes:
    return orjson.dumps(linkset)


def multiple_choices(rules: CompiledRules, dl: DigitalLink, product: Product | None, candidates: Sequence[Candidate],
                     facts: UnitFacts) -> dict[str, Any]:
    """The body of a 300: the equally good links, as a one-level linkset."""
    values = template_values(dl.elements, facts)
    level = candidates[0].level if candidates[0].level in LEVELS else "gtin"
    obj: dict[str, Any] = {"anchor": anchor_for(rules, dl, level, values),
                           "itemDescription": _description(product, dl, level, values)}
    for c in candidates:
        obj.setdefault(relation_uri(c.link_type), []).append(_link_object(c))
    return {"linkset": [obj]}


_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:40rem;padding:1rem}}
h1{{font-size:1.3rem}}h2{{font-size:1.05rem;margin-top:1.5rem}}li{{margin:.4rem 0}}
small{{color:#555}}a{{color:#0645ad}}</style>
<script type="application/linkset+json">{json}</script>
</head><body><main><h1>{title}</h1>{sections}</main></body></html>"""


def page(linkset: dict[str, Any], heading: str, lang: str = "en") -> str:
    """A readable, accessible page of the linkset's links (the linkset itself embedded)."""
    sections = []
    for obj in linkset["linkset"]:
        items = []
        for key, links in obj.items():
            if key in ("anchor", "itemDescription"):
                continue
            for link in links:
                meta = ", ".join(filter(None, [label(key), link.get("type"), " ".join(link.get("hreflang", ()))]))
                items.append(f'<li><a href="{html.escape(link["href"], quote=True)}">{html.escape(link["title"])}</a> '
                             f"<small>{html.escape(meta)}</small></li>")
        sections.append(f"<h2>{html.escape(obj['itemDescription'])}</h2>"
                        f"<p><small>{html.escape(obj['anchor'])}</small></p><ul>{''.join(items)}</ul>")
    body = orjson.dumps(linkset).decode().replace("</", "<\\/")
    return _PAGE.format(lang=html.escape(lang), title=html.escape(heading), json=body, sections="".join(sections))
