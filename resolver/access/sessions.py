"""Sessions on the resolver's own domain: a one-time sign-in link becomes a cookie, and a
plain camera scan then carries the person's role.

A session is a signed token (:mod:`resolver.access.tokens`) in the ``serialink_token``
cookie, bound to one grant: a technician's visit (a set of units and a time window), an
installer's standing door (company, certification, GTINs or prefixes) or an owner's unit.
Because it is the same signed token the scan path already reads, a scan with a session
costs one cached verification and a scan without a cookie costs nothing more than before.

The grant is stored (``record_token``) under the session id; the link that opens it is
``/u/signin/<id>.<mac>``, the mac an HMAC of the id under the deployment's secret, so a
link cannot be guessed or forged and needs no stored code. It works once: the first
opening counts a hit in the store's shared counters, and only the first gets the cookie.

>>> secret = b"s" * 32
>>> code = link_code(secret, "v-123")
>>> link_id(secret, code), link_id(secret, code[:-1] + "x"), link_id(secret, "nonsense")
('v-123', None, None)

Notices ("registered to you", "installation recorded") travel in a second cookie, signed
and bound to the session's token id and the unit, so that no URL can make a page claim
something happened:

>>> value = notice_value(secret, "registered", "09506000134352", "S1", "tok-1", now=1000)
>>> read_notice(secret, value, "09506000134352", "S1", "tok-1", now=1010)
('registered', '')
>>> read_notice(secret, value, "09506000134352", "S1", "someone-else", now=1010) is None
True
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import jwt
import orjson
from starlette.requests import Request
from starlette.responses import Response

from resolver.access.tokens import (
    ALGORITHM,
    COOKIE,
    Claims,
    TokenError,
    TokenVerifier,
    claims_payload,
)
from resolver.journeys.derived import derive_text

NOTICE_COOKIE = "serialink_notice"
NOTICE_TTL = 120
#: an ended session's cookie stays this long after its end, so the next scan can say it ended
ENDED_GRACE = 24 * 3600
SESSION_KINDS = ("visit", "installer")


def link_code(secret: bytes, session_id: str) -> str:
    """The path segment of a sign-in link: the session id and its mac."""
    return f"{session_id}.{derive_text(secret, 'signin-link', session_id)}"


def link_id(secret: bytes, code: str) -> str | None:
    """The session id a sign-in link names, or None if the link was not made here."""
    session_id, dot, mac = code.partition(".")
    if not dot or not 0 < len(session_id) <= 64 or len(mac) != 22:
        return None
    expected = derive_text(secret, "signin-link", session_id)
    return session_id if hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace")) else None


def session_token(secret: bytes, session_id: str, record: Mapping[str, Any], now: int) -> str:
    """The cookie's token for a stored session grant (see resolver.journeys.visits)."""
    payload = claims_payload(record["principal"], record["role"], now, record["exp"], session_id,
                             gtins=record["gtins"], prefixes=record["prefixes"])
    if record.get("units"):
        payload["units"] = [list(u) for u in record["units"]]
    payload["ext"] = dict(record.get("ext") or {})
    if record.get("nbf", 0) > now:  # a visit that has not started: the token counts from its start
        payload["nbf"] = record["nbf"]
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def cookie_max_age(expires: int, now: float | None = None) -> int:
    return max(1, int(expires - (time.time() if now is None else now)) + ENDED_GRACE)


def set_session(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(COOKIE, token, max_age=max_age, path="/", secure=request.url.scheme == "https",
                        httponly=True, samesite="lax")


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", secure=request.url.scheme == "https", httponly=True, samesite="lax")


class Session(NamedTuple):
    """The visitor's session: ``claims`` while it counts; ``ended`` once a visit or an
    installer session this deployment signed has expired or been revoked (for a notice)."""

    claims: Claims | None
    ended: Claims | None = None

    @property
    def kind(self) -> str | None:
        claims = self.claims or self.ended
        return claims.extra.get("kind") if claims is not None else None


NO_SESSION = Session(None)


def cookie_token(request: Request) -> str | None:
    """The session cookie's value (pages only: the scan path reads headers itself)."""
    return request.cookies.get(COOKIE) or None


def current(verifier: TokenVerifier, request: Request, now: float | None = None) -> Session:
    """The session the request's cookie carries. Never raises: a forged cookie is no session."""
    token = cookie_token(request)
    if token is None:
        return NO_SESSION
    try:
        return Session(verifier.verify(token, now))
    except TokenError:
        claims = verifier.signed_claims(token)
        if claims is not None and claims.extra.get("kind") in SESSION_KINDS:
            return Session(None, claims)
        return NO_SESSION


# -- notices ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def notice_value(secret: bytes, kind: str, gtin: str, serial: str, binding: str, now: float | None = None,
                 data: str = "") -> str:
    """A notice for one unit's page, for the holder of session ``binding`` (a token id)."""
    expires = int((time.time() if now is None else now) + NOTICE_TTL)
    body = _b64(orjson.dumps([kind, gtin, serial, binding, expires, data]))
    return f"{body}.{derive_text(secret, 'notice', body)}"


def read_notice(secret: bytes, value: str | None, gtin: str, serial: str, binding: str,
                now: float | None = None) -> tuple[str, str] | None:
    """(kind, data) of a notice meant for this unit and this session, else None."""
    if not value or len(value) > 1000:
        return None
    body, _, mac = value.partition(".")
    if not hmac.compare_digest(derive_text(secret, "notice", body).encode(), mac.encode("utf-8", "replace")):
        return None
    try:
        kind, n_gtin, n_serial, n_binding, expires, data = orjson.loads(base64.urlsafe_b64decode(body + "=="))
    except (ValueError, TypeError):
        return None
    if (n_gtin, n_serial) != (gtin, serial) or not hmac.compare_digest(str(n_binding), binding):
        return None
    if expires < (time.time() if now is None else now):
        return None
    return str(kind), str(data)


def set_notice(response: Response, request: Request, value: str) -> None:
    response.set_cookie(NOTICE_COOKIE, value, max_age=NOTICE_TTL, path="/u/", secure=request.url.scheme == "https",
                        httponly=True, samesite="lax")


def clear_notice(response: Response, request: Request) -> None:
    response.delete_cookie(NOTICE_COOKIE, path="/u/", secure=request.url.scheme == "https", httponly=True,
                           samesite="lax")
