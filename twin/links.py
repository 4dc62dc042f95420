"""Link data: GS1 linkset-style link records anchored at a GTIN, a GTIN + lot or a GTIN + serial.

The resolver walks serial → lot → GTIN for the first level that has a link of the wanted
type; the store returns all three levels in one read (a :class:`LinkChain`).

>>> from twin.links import Anchor, LinkRecord, check_links
>>> pip = LinkRecord("gs1:pip", "https://example.com/p/123", "Product page", "text/html", ("en", "de"))
>>> check_links(Anchor("09506000134352"), [pip])[0].hreflang
('en', 'de')
>>> Anchor("09506000134352", lot="L42").subject
'lot:L42'
>>> check_links(Anchor("09506000134352"), [pip._replace(href="ftp://x")])
Traceback (most recent call last):
...
twin.errors.InvalidInput: links[0].href: expected an absolute http(s) URL, got 'ftp://x'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from twin.errors import InvalidInput
from twin.identity import check_gtin, check_lot, check_serial, check_text

MAX_LINKS_PER_ANCHOR = 200
_LINK_TYPE = re.compile(r"[a-z][a-z0-9]{0,15}:[A-Za-z][A-Za-z0-9_.-]{0,63}|https?://\S{1,200}")
_URL = re.compile(r"https?://\S{1,2040}")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}")
_LANG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}")
_CONTEXT = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class LinkRecord(NamedTuple):
    """One link of a linkset (RFC 9264 / GS1 resolver standard)."""

    link_type: str  # a CURIE such as ``gs1:pip`` or an absolute URI
    href: str
    title: str
    type: str | None = None  # media type of the target
    hreflang: tuple[str, ...] = ()
    context: tuple[str, ...] = ()  # GS1 ``context`` values the link is meant for


class Anchor(NamedTuple):
    """Where links hang: a GTIN, or a GTIN + lot, or a GTIN + serial (not lot and serial)."""

    gtin: str
    lot: str | None = None
    serial: str | None = None

    @property
    def subject(self) -> str:
        """The anchor within its GTIN: ``""``, ``lot:<lot>`` or ``ser:<serial>``."""
        if self.serial is not None:
            return f"ser:{self.serial}"
        if self.lot is not None:
            return f"lot:{self.lot}"
        return ""


class LinkChain(NamedTuple):
    """The links of one scan's three levels, most specific first (empty: none stored)."""

    serial: tuple[LinkRecord, ...]
    lot: tuple[LinkRecord, ...]
    gtin: tuple[LinkRecord, ...]


def anchor_from_subject(gtin: str, subject: str) -> Anchor:
    if subject.startswith("ser:"):
        return Anchor(gtin, serial=subject[4:])
    if subject.startswith("lot:"):
        return Anchor(gtin, lot=subject[4:])
    return Anchor(gtin)


def check_anchor(anchor: object) -> Anchor:
    if not isinstance(anchor, Anchor):
        raise InvalidInput("anchor", f"expected an Anchor, got {type(anchor).__name__}")
    check_gtin(anchor.gtin, "anchor.gtin")
    if anchor.lot is not None and anchor.serial is not None:
        raise InvalidInput("anchor", "a link anchor is a lot or a serial, not both")
    if anchor.lot is not None:
        check_lot(anchor.lot, "anchor.lot")
    if anchor.serial is not None:
        check_serial(anchor.serial, "anchor.serial")
    return anchor


def _check_tuple(values: object, pattern: re.Pattern[str], field: str, what: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, (tuple, list)):
        raise InvalidInput(field, f"expected a list of {what}")
    for i, v in enumerate(values):
        if not isinstance(v, str) or not pattern.fullmatch(v):
            raise InvalidInput(f"{field}[{i}]", f"expected {what}, got {v!r}")
    return tuple(values)


def check_link(link: object, field: str) -> LinkRecord:
    if not isinstance(link, LinkRecord):
        raise InvalidInput(field, f"expected a LinkRecord, got {type(link).__name__}")
    if not isinstance(link.link_type, str) or not _LINK_TYPE.fullmatch(link.link_type):
        raise InvalidInput(f"{field}.link_type", f"expected a CURIE like gs1:pip or a URI, got {link.link_type!r}")
    if not isinstance(link.href, str) or not _URL.fullmatch(link.href):
        raise InvalidInput(f"{field}.href", f"expected an absolute http(s) URL, got {link.href!r:.80}")
    check_text(link.title, f"{field}.title", max_len=300)
    if link.type is not None and (not isinstance(link.type, str) or not _MEDIA_TYPE.fullmatch(link.type)):
        raise InvalidInput(f"{field}.type", f"expected a media type like text/html, got {link.type!r}")
    return LinkRecord(
        link.link_type,
        link.href,
        link.title,
        link.type,
        _check_tuple(link.hreflang, _LANG, f"{field}.hreflang", "language tags like en or de-CH"),
        _check_tuple(link.context, _CONTEXT, f"{field}.context", "context values"),
    )


def check_links(anchor: Anchor, links: Iterable[LinkRecord]) -> tuple[LinkRecord, ...]:
    """Validate a whole linkset for one anchor; InvalidInput names ``links[i].field``."""
    check_anchor(anchor)
    checked = tuple(check_link(link, f"links[{i}]") for i, link in enumerate(links))
    if len(checked) > MAX_LINKS_PER_ANCHOR:
        raise InvalidInput("links", f"{len(checked)} links, the limit per anchor is {MAX_LINKS_PER_ANCHOR}")
    return checked
