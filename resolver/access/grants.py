"""Which tokens a caller may issue, and tokens signed so that a retried request gets the same one.

Manufacturers hand out tokens to their installers, technicians, regulators and lines,
never wider than their own product scope; per-visit technician tokens name one unit and
last hours, not months. Admins may issue any role but ``owner``: owner tokens only come
from a confirmed registration or a transfer claim.

A token's id is derived from the issuer and the request's idempotency key, and its
times come from the stored record, so signing the record again gives the very same
token (HS256 is deterministic): an idempotent retry returns the token the first attempt
made, and revoking that id revokes it wherever it went.

>>> from resolver.access.tokens import TokenVerifier
>>> record = grant_record("tech:ana", "technician", issued=1_750_000_000, ttl=4 * 3600,
...                       gtins=["09506000134352"], unit=("09506000134352", "ABC"), issued_by="mfr:qa")
>>> token = sign(b"s" * 32, "tok-1", record)
>>> claims = TokenVerifier(b"s" * 32).verify(token, now=1_750_000_060)
>>> claims.role, claims.unit, claims.token_id, token == sign(b"s" * 32, "tok-1", record)
('technician', ('09506000134352', 'ABC'), 'tok-1', True)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jwt

from ext import verify_check_digit
from resolver.access.tokens import ALGORITHM, MAX_TTL, Claims, claims_payload
from resolver.errors import Forbidden, Invalid

#: role a caller has -> roles it may issue tokens for
ISSUABLE = {
    "manufacturer": frozenset({"installer", "technician", "regulator", "line"}),
    "admin": frozenset({"installer", "technician", "regulator", "line", "manufacturer", "admin"}),
}
#: per-visit tokens (naming one unit) last at most this long
MAX_VISIT_TTL = 24 * 3600
OWNER_TTL = 365 * 24 * 3600


class GrantRefused(Invalid):
    """A token request that is malformed or names something that cannot be granted."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason, field)


class GrantForbidden(Forbidden):
    """A token request beyond what the caller may hand out (a wider role or scope)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason, field)


def grant_record(principal: str, role: str, *, issued: int, ttl: int, gtins: Iterable[str] = (),
                 prefixes: Iterable[str] = (), all_products: bool = False, sites: Iterable[str] = (),
                 lines: Iterable[str] = (), unit: tuple[str, str] | None = None, issued_by: str = "") -> dict[str, Any]:
    """What the store keeps about an issued token (never the token itself)."""
    return {"principal": principal, "role": role, "iat": int(issued), "exp": int(issued) + int(ttl),
            "gtins": sorted(set(gtins)), "prefixes": sorted(set(prefixes)), "all": bool(all_products),
            "sites": sorted(set(sites)), "lines": sorted(set(lines)), "unit": list(unit) if unit else None,
            "issued_by": issued_by}


def sign(secret: bytes, token_id: str, record: Mapping[str, Any]) -> str:
    """The token of a grant record: the payload resolver.access.tokens.TokenIssuer.issue makes,
    with the id and times taken from the record instead of chosen afresh."""
    payload = claims_payload(record["principal"], record["role"], record["iat"], record["exp"], token_id,
                             gtins=record["gtins"], prefixes=record["prefixes"], all_products=record["all"],
                             sites=record["sites"], lines=record["lines"], unit=record.get("unit"))
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def _strings(value: Any, field: str, limit: int = 100) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit or not all(isinstance(v, str) and 0 < len(v) <= 40 for v in value):
        raise GrantRefused(field, f"expected a list of up to {limit} short strings")
    return value


def check_grant(caller: Claims, body: Mapping[str, Any], issued: int) -> dict[str, Any]:
    """Validate a token request from ``caller``; the grant record to store, or GrantRefused."""
    allowed = ISSUABLE.get(caller.role)
    if allowed is None:
        raise GrantForbidden("role", f"role {caller.role!r} may not issue tokens")
    unknown = set(body) - {"role", "principal", "ttl", "gtins", "prefixes", "all_products", "sites", "lines", "unit"}
    if unknown:
        raise GrantRefused(sorted(unknown)[0], "unknown field")
    role = body.get("role")
    if not isinstance(role, str) or role not in allowed:
        refusal = GrantForbidden if isinstance(role, str) and role in ISSUABLE["admin"] | {"owner"} else GrantRefused
        raise refusal("role", f"may issue tokens for {', '.join(sorted(allowed))}")
    principal = body.get("principal")
    if not isinstance(principal, str) or not 0 < len(principal) <= 200 or any(ord(c) < 32 for c in principal):
        raise GrantRefused("principal", "expected 1-200 printable characters naming who the token is for")
    ttl = body.get("ttl", 8 * 3600)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 60 <= ttl <= MAX_TTL:
        raise GrantRefused("ttl", f"expected seconds, 60..{MAX_TTL}")
    gtins = _strings(body.get("gtins"), "gtins")
    prefixes = _strings(body.get("prefixes"), "prefixes")
    sites, lines = _strings(body.get("sites"), "sites"), _strings(body.get("lines"), "lines")
    for i, g in enumerate(gtins):
        if not (len(g) == 14 and g.isdigit() and verify_check_digit(g)):
            raise GrantRefused(f"gtins[{i}]", "expected a 14-digit GTIN with its check digit")
    for i, p in enumerate(prefixes):
        if not (p.isdigit() and 4 <= len(p) <= 12):
            raise GrantRefused(f"prefixes[{i}]", "expected a GS1 company prefix of 4-12 digits")
    all_products = body.get("all_products", False)
    if not isinstance(all_products, bool):
        raise GrantRefused("all_products", "expected true or false")
    unit = body.get("unit")
    if unit is not None:
        if not (isinstance(unit, dict) and set(unit) == {"gtin", "serial"} and isinstance(unit["gtin"], str)
                and isinstance(unit["serial"], str) and len(unit["gtin"]) == 14 and unit["gtin"].isdigit()
                and 0 < len(unit["serial"]) <= 20):
            raise GrantRefused("unit", 'expected {"gtin": 14 digits, "serial": 1-20 characters}')
        if role not in ("technician", "installer"):
            raise GrantRefused("unit", "only technician and installer tokens are per-visit (one unit)")
        if ttl > MAX_VISIT_TTL:
            raise GrantRefused("ttl", f"a per-visit token lasts at most {MAX_VISIT_TTL} s")
        gtins = sorted(set(gtins) | {unit["gtin"]})
    if not (gtins or prefixes or all_products):
        raise GrantRefused("gtins", "name the products: gtins, prefixes or (admins) all_products")
    if caller.role != "admin":
        if all_products:
            raise GrantForbidden("all_products", "only admins issue tokens for every product")
        for i, g in enumerate(gtins):
            if not caller.allows_gtin(g):
                raise GrantForbidden(f"gtins[{i}]", f"GTIN {g} is outside your own scope")
        for i, p in enumerate(prefixes):
            if not (caller.all_products or any(p.startswith(mine) for mine in caller.prefixes)):
                raise GrantForbidden(f"prefixes[{i}]", f"prefix {p} is outside your own scope")
        if caller.unit is not None:
            raise GrantForbidden("unit", "a per-visit token cannot issue tokens")
    return grant_record(principal, role, issued=issued, ttl=ttl, gtins=gtins, prefixes=prefixes,
                        all_products=all_products, sites=sites, lines=lines,
                        unit=(unit["gtin"], unit["serial"]) if unit else None, issued_by=caller.principal)
