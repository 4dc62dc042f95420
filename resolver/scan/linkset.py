"""Linksets (RFC 9264, GS1-Conformant Resolver 1.2) and the HTML page of the same links.

One object per level — GTIN, then lot, then serial — each anchored at its own DL URI on
the resolver root, with full link-type URIs as keys. The GTIN level always carries one
title-only ``gs1:defaultLink``; when the rules send this very request somewhere else
(say, an unregistered unit to registration) the most specific level carries that target
as its own default, so a client that follows the linkset lands where a redirect would.

Only links the caller's role may see are listed: technicians' service records stay out
of a consumer's linkset.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import orjson

from ext import escape
from ext.dl import DigitalLink
from resolver.rules.compiler import CompiledRules, Product
from resolver.rules.linktypes import DEFAULT_LINK, DEFAULT_LINK_MULTI, label, relation_uri
from resolver.scan.decide import (
    LEVELS,
    Candidate,
    Decision,
    StoredLinks,
    UnitFacts,
    _best,
    level_available,
    links_at,
    template_values,
)
from resolver.scan.negotiate import Preferences

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


def build(rules: CompiledRules, dl: DigitalLink, product: Product | None, stored: StoredLinks, role: str, facts: UnitFacts,
          prefs: Preferences, routed: Decision | None) -> dict[str, Any]:
    """The linkset of one request: every level of the scanned identity up to the primary key.

    ``routed`` is the decision the rules make for this request without a link type: the
    request-level default link.
    """
    values = template_values(dl.elements, facts)
    objects: list[dict[str, Any]] = []
    for level in reversed(LEVELS):  # gtin, lot, serial
        if not level_available(level, values):
            continue
        obj: dict[str, Any] = {"anchor": anchor_for(rules, dl, level, values),
                               "itemDescription": _description(product, dl, level, values)}
        for c in links_at(product, stored, level, None, role, values):
            obj.setdefault(relation_uri(c.link_type), []).append(_link_object(c))
        if level == "gtin":
            default_type = product.default if product is not None else DEFAULT_LINK
            defaults = links_at(product, stored, "gtin", default_type, role, values)
            if defaults:
                best = _best(defaults, prefs, rules.default_language)[0]
                obj[relation_uri(DEFAULT_LINK)] = [{"href": best.href, "title": best.title}]
                if len(defaults) > 1:
                    obj[relation_uri(DEFAULT_LINK_MULTI)] = [_link_object(c) for c in defaults]
        objects.append(obj)
    if routed is not None and routed.link is not None and objects:
        gtin_default = objects[0].get(relation_uri(DEFAULT_LINK), [{}])[0].get("href")
        if routed.href != gtin_default and len(objects) > 1:
            objects[-1][relation_uri(DEFAULT_LINK)] = [{"href": routed.href, "title": routed.link.title or label(routed.link.link_type)}]
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
