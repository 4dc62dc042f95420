"""A scan that fails — a mistyped check digit, a product nobody published — answered to a
browser as a page in the visitor's language, under the brand's theme.

The scan handler (resolver.scan.handler) may not import the pages, so the app hands it
:func:`renderer`'s function; the handler calls it only on an error for a client that asks
for HTML (``Accept: text/html``). API clients keep getting problem+json. Nothing of this
runs for a redirect.
"""

from __future__ import annotations

from collections.abc import Callable

from resolver import i18n
from resolver.pages.brand import BrandHolder
from resolver.pages.routes import page_headers, render_html
from resolver.rules.holder import RulesHolder
from resolver.scan.negotiate import languages


def scan_error_text(texts: dict, status: int, code: str | None) -> tuple[str, str]:
    """(title, text) from the catalogue: the GS1 error's own text where there is one."""
    key = f"scan_{status}" if f"scan_{status}" in texts else ("scan_400" if status < 500 else "scan_500")
    return str(texts[f"{key}_title"]), str(texts.get(f"scan_{code}") or texts[key])


def renderer(brand: BrandHolder, rules: RulesHolder) -> Callable[[int, str | None, str | None],
                                                                  tuple[bytes, list[tuple[bytes, bytes]]]]:
    def render(status: int, code: str | None, accept_language: str | None) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        lang = i18n.negotiate(accept_language, rules.current.default_language)
        locale = i18n.locale_for(lang, languages(accept_language))
        theme = brand.current
        title, text = scan_error_text(i18n.texts(lang), status, code)
        html = render_html("scan_error.html", theme, lang, locale, title=title, text=text, status=status, code=code)
        csp = page_headers(theme)["Content-Security-Policy"]
        return html.encode(), [(b"content-language", lang.encode()), (b"content-security-policy", csp.encode()),
                               (b"x-content-type-options", b"nosniff")]
    return render
