"""Signed, expiring, scoped tokens: who is scanning or writing, and over which products.

A token asserts a role (``installer``, ``technician``, ``regulator``, ``manufacturer``,
``owner``, ``line`` for factory lines, ``admin``) for a principal, limited to GTINs
and/or GS1 company prefixes (and, for lines, sites/lines), until it expires. It is a
compact JWS (HS256, PyJWT) carried in ``Authorization: Bearer …`` or the
``serialink_token`` cookie. Anonymous requests are ``consumer``.

>>> issuer = TokenIssuer(b"0" * 32)
>>> token = issuer.issue("tech:alice", "technician", prefixes=["950600"], ttl=3600)
>>> claims = issuer.verifier().verify(token)
>>> claims.role, claims.allows_gtin("09506000134352"), claims.allows_gtin("04012345000007")
('technician', True, False)

Scans never fail on a bad token: they fall back to ``consumer`` (see
:meth:`TokenVerifier.role_for_scan`). Write APIs refuse: 401 for a missing, forged or
expired token, 403 for one that is valid but not for this role, product or site.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt

from resolver.errors import Forbidden, Unauthenticated

ROLES = ("consumer", "owner", "installer", "technician", "regulator", "manufacturer", "line", "admin")
SCAN_ROLES = ("consumer", "owner", "installer", "technician", "regulator", "manufacturer")
COOKIE = "serialink_token"
ALGORITHM = "HS256"
ISSUER = "serialink"
MAX_TTL = 366 * 24 * 3600


class TokenError(Unauthenticated):
    """A token that proves nothing: malformed, forged, expired or revoked."""


class OutOfScope(Forbidden):
    """A valid token whose role or product scope does not reach what was asked."""


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token asserts. Empty ``gtins`` and ``prefixes`` with ``all_products``
    False means no product at all: scopes are explicit, never implied."""

    principal: str
    role: str
    expires: int
    token_id: str
    gtins: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    all_products: bool = False
    sites: frozenset[str] = frozenset()
    lines: frozenset[str] = frozenset()
    unit: tuple[str, str] | None = None  # a per-visit technician token names one unit
    units: frozenset[tuple[str, str]] = frozenset()  # a visit session names a set of units
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # sessions: what they were issued for

    def allows_gtin(self, gtin: str) -> bool:
        """Is this GTIN inside the token's product scope? (prefix = GCP digits after the indicator)"""
        if self.all_products or gtin in self.gtins:
            return True
        body = gtin[1:]
        return any(body.startswith(p) for p in self.prefixes)

    def allows_unit(self, gtin: str, serial: str | None) -> bool:
        if not self.allows_gtin(gtin):
            return False
        if self.units:
            return serial is not None and (gtin, serial) in self.units
        return self.unit is None or (serial is not None and self.unit == (gtin, serial))

    def allows_line(self, site: str | None, line: str | None) -> bool:
        return (not self.sites or site in self.sites) and (not self.lines or line in self.lines)

    def require(self, roles: Iterable[str], gtin: str | None = None, serial: str | None = None) -> Claims:
        """Refuse (OutOfScope) unless the role is one of ``roles`` and the scope covers the unit."""
        roles = tuple(roles)
        if self.role not in roles:
            raise OutOfScope(f"role {self.role!r} may not do this (needs {' or '.join(roles)})")
        if gtin is not None and not self.allows_unit(gtin, serial):
            raise OutOfScope(f"token for {self.principal!r} does not cover GTIN {gtin}"
                             + (f" serial {serial}" if serial else ""))
        return self


def claims_payload(principal: str, role: str, issued: int, expires: int, token_id: str, *, gtins: Iterable[str] = (),
                   prefixes: Iterable[str] = (), all_products: bool = False, sites: Iterable[str] = (),
                   lines: Iterable[str] = (), unit: Iterable[str] | None = None) -> dict[str, Any]:
    """The JWS payload of a token: the one place its shape is defined (issuing and
    re-signing a stored grant both use it)."""
    payload = {
        "iss": ISSUER, "sub": principal, "role": role, "iat": issued, "exp": expires, "jti": token_id,
        "scope": {"gtins": sorted(set(gtins)), "prefixes": sorted(set(prefixes)), "all": all_products,
                  "sites": sorted(set(sites)), "lines": sorted(set(lines))},
    }
    if unit:
        payload["unit"] = list(unit)
    return payload


class TokenIssuer:
    """Mints tokens with the deployment's secret (settings: SERIALINK_TOKEN_SECRET)."""

    def __init__(self, secret: bytes, *, revoked: Callable[[str], bool] | None = None) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 bytes")
        self._secret = secret
        self._revoked = revoked

    def issue(self, principal: str, role: str, *, ttl: int, gtins: Iterable[str] = (),
              prefixes: Iterable[str] = (), all_products: bool = False, sites: Iterable[str] = (),
              lines: Iterable[str] = (), unit: tuple[str, str] | None = None, now: int | None = None) -> str:
        if role not in ROLES or role == "consumer":
            raise ValueError(f"role must be one of {', '.join(r for r in ROLES if r != 'consumer')}")
        if not 0 < ttl <= MAX_TTL:
            raise ValueError(f"ttl must be 1..{MAX_TTL} seconds")
        if not principal or len(principal) > 200:
            raise ValueError("principal must be 1-200 characters")
        issued = int(time.time() if now is None else now)
        payload = claims_payload(principal, role, issued, issued + ttl, secrets.token_urlsafe(12), gtins=gtins,
                                 prefixes=prefixes, all_products=all_products, sites=sites, lines=lines, unit=unit)
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(self._secret, revoked=self._revoked)


class TokenVerifier:
    """Verifies tokens, remembering recent ones so a busy technician's scans stay cheap."""

    def __init__(self, secret: bytes, *, revoked: Callable[[str], bool] | None = None,
                 cache_size: int = 10_000) -> None:
        self._secret = secret
        self._revoked = revoked
        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, token: str, now: float | None = None) -> Claims:
        """The token's claims; TokenError if malformed, forged, expired or revoked."""
        now = time.time() if now is None else now
        claims = self._cache.get(token)
        if claims is None:
            claims = self._decode(token)
            self._cache[token] = claims
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        if claims.expires <= now:
            raise TokenError("the token has expired")
        if self._revoked is not None and self._revoked(claims.token_id):
            raise TokenError("the token has been revoked")
        return claims

    def signed_claims(self, token: str) -> Claims | None:
        """What a token this deployment signed asserts, expired or revoked or not (None:
        forged or malformed): for telling a visitor *why* a session stopped counting, never
        for granting anything."""
        claims = self._cache.get(token)
        if claims is not None:
            return claims
        try:
            return self._decode(token)
        except TokenError:
            return None

    def _decode(self, token: str) -> Claims:
        if len(token) > 4096:
            raise TokenError("the token is too long")
        try:
            payload = jwt.decode(token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER,
                                 options={"require": ["exp", "iat", "sub", "jti"], "verify_exp": False})
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid token: {exc}") from None
        role = payload.get("role")
        scope = payload.get("scope") or {}
        if role not in ROLES or not isinstance(scope, dict):
            raise TokenError("invalid token: bad role or scope")
        unit = payload.get("unit")
        units = payload.get("units") or ()
        extra = payload.get("ext")
        try:
            return Claims(
                principal=str(payload["sub"]), role=role, expires=int(payload["exp"]), token_id=str(payload["jti"]),
                gtins=frozenset(map(str, scope.get("gtins", ()))), prefixes=tuple(map(str, scope.get("prefixes", ()))),
                all_products=bool(scope.get("all", False)), sites=frozenset(map(str, scope.get("sites", ()))),
                lines=frozenset(map(str, scope.get("lines", ()))),
                unit=(str(unit[0]), str(unit[1])) if isinstance(unit, list) and len(unit) == 2 else None,
                units=frozenset((str(g), str(s)) for g, s in units),
                extra=dict(extra) if isinstance(extra, dict) else {},
            )
        except (TypeError, ValueError):
            raise TokenError("invalid token: malformed claims") from None

    def role_for_scan(self, token: str | None, gtin: str, serial: str | None) -> tuple[str, Claims | None]:
        """The role a scan routes on: the token's if valid and in scope, else ``consumer``."""
        if not token:
            return "consumer", None
        try:
            claims = self.verify(token)
        except TokenError:
            return "consumer", None
        if claims.role not in SCAN_ROLES or not claims.allows_unit(gtin, serial):
            return "consumer", None
        return claims.role, claims


def token_from_headers(authorization: str | None, cookie_header: str | None) -> str | None:
    """The bearer token, else the serialink_token cookie, else None."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    if cookie_header and COOKIE in cookie_header:
        for part in cookie_header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value:
                return value
    return None


def carries_credential(authorization: str | None, cookie_header: str | None) -> bool:
    """Does a request carry something that may change its answer: an Authorization header, or
    any ``serialink_*`` cookie (tokens, sessions)? Its answer is then ``private, no-store``:
    a shared cache must neither keep it nor answer it from an anonymous copy.

    >>> carries_credential(None, "_ga=1"), carries_credential(None, "serialink_token=x"), carries_credential("Bearer x", None)
    (False, True, True)
    """
    return authorization is not None or (cookie_header is not None and "serialink_" in cookie_header)
