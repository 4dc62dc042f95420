"""Resolving an SSCC (``/00/{sscc}``): what a case or pallet holds, for logistics roles only.

A consumer (no token, or one that does not reach every product inside) gets exactly what
the rules answer for an SSCC today — nothing about whether the SSCC exists, who packed
it or what it holds — so the store is not read for them. A ``manufacturer``, ``regulator``
or ``admin`` token whose product scope covers every unit inside gets the contents as an
RFC 9264 linkset: ``item`` links to the children (unit Digital Link URIs, nested SSCCs)
and ``collection`` to the SSCC it is packed in — or, to a client asking for HTML (a
browser), the same as a page in the visitor's language (resolver.pages.sscc_page); an
SSCC never packed answers 404 (a page for a browser).

Only scans without a GTIN come here (the handler asks when ``dl.gtin`` is None), so GTIN
scans pay nothing for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resolver.access.tokens import TokenError
from twin.aggregation import split_key

if TYPE_CHECKING:
    from resolver.services import Services
    from twin.aggregation import Aggregate

#: Roles that see what an SSCC holds.
LOGISTICS_ROLES = ("manufacturer", "regulator", "admin")
DL_ROOT = "https://id.gs1.org"


def logistics_claims(services: Services, token: str | None) -> Any:
    """The token's claims if it names a logistics role, else None (a consumer)."""
    if not token:
        return None
    try:
        claims = services.token_verifier.verify(token)
    except TokenError:
        return None
    return claims if claims.role in LOGISTICS_ROLES else None


def child_uri(key: str, root: str = DL_ROOT) -> str:
    parts = split_key(key)
    if isinstance(parts, str):
        return f"{root}/00/{parts}"
    from ext import escape

    return f"{root}/01/{parts[0]}/21/{escape(parts[1])}"


def covers(claims: Any, agg: Aggregate) -> bool:
    return all(claims.allows_gtin(c.key.split("/")[1]) for c in agg.children if not c.is_case)


def contents_linkset(agg: Aggregate, root: str = DL_ROOT) -> dict[str, Any]:
    entry: dict[str, Any] = {"anchor": f"{root}/00/{agg.sscc}",
                             "item": [{"href": child_uri(c.key, root)} for c in agg.children]}
    if agg.packed_in:
        entry["collection"] = [{"href": f"{root}/00/{agg.packed_in}"}]
    return {"linkset": [entry]}
