"""``/00/{sscc}`` for a browser: what a case or pallet holds, as a page in the visitor's language.

The scan handler answers an SSCC to a logistics role whose token covers every product inside
(resolver.scan.sscc decides who may see it); a client that asks for HTML (``Accept:
text/html``) gets this page instead of the linkset: the SSCC, the line and site its goods
came from, when it was first packed, its children (each a link to its Digital Link URI on
this resolver: units ``/01/…/21/…``, cases ``/00/…``) and the SSCC it is packed in. Anyone
else gets what they get today (the scan error page, 404). The handler may not import the
pages: the app hands it :func:`renderer`'s function, as for the scan error pages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from resolver import i18n
from resolver.pages.brand import BrandHolder, pick
from resolver.pages.routes import page_headers, render_html
from resolver.rules.holder import RulesHolder
from resolver.scan.negotiate import languages
from resolver.scan.sscc import child_uri
from twin.aggregation import split_key

if TYPE_CHECKING:
    from twin.aggregation import Aggregate

#: Children listed on the page; past this, the page says how many more the linkset lists
#: (a pallet of 100,000 units is not one page).
MAX_LISTED = 500

SsccPage = Callable[["Aggregate", str | None], tuple[bytes, list[tuple[bytes, bytes]]]]


def page_context(agg: Aggregate, root: str, product_name: Callable[[str], str | None]) -> dict[str, Any]:
    """What the template shows of ``agg``; pure."""
    children = []
    for c in agg.children[:MAX_LISTED]:
        parts = split_key(c.key)
        href = child_uri(c.key, root)
        if isinstance(parts, str):
            children.append({"sscc": parts, "href": href})
        else:
            children.append({"gtin": parts[0], "serial": parts[1], "href": href, "name": product_name(parts[0])})
    return {"sscc": agg.sscc, "line": agg.meta.line or None, "site": agg.meta.site or None,
            "packed_at": datetime.fromtimestamp(agg.meta.created_ms / 1000, UTC).isoformat(timespec="seconds"),
            "children": children, "total": len(agg.children),
            "more": max(0, len(agg.children) - MAX_LISTED),
            "packed_in": {"sscc": agg.packed_in, "href": f"{root}/00/{agg.packed_in}"} if agg.packed_in else None}


def renderer(brand: BrandHolder, rules: RulesHolder) -> SsccPage:
    def render(agg: Aggregate, accept_language: str | None) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        current = rules.current
        lang = i18n.negotiate(accept_language, current.default_language)
        locale = i18n.locale_for(lang, languages(accept_language))
        theme = brand.current

        def product_name(gtin: str) -> str | None:  # the brand's model name in the page's language first
            product = current.product_for(gtin)
            return pick(theme.product(gtin).model, lang) or (product.name if product is not None else None)

        html = render_html("sscc.html", theme, lang, locale, **page_context(agg, current.root, product_name))
        csp = page_headers(theme)["Content-Security-Policy"]
        return html.encode(), [(b"content-language", lang.encode()), (b"content-security-policy", csp.encode()),
                               (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
    return render
