"""Doors for people in the field: a technician's visit and an installer's standing session,
each opened on a phone by a one-time sign-in link (also given as a QR code).

A brand (a manufacturer token, or its dispatch system through ``POST /v1/visits``) names
the units and the time window of a visit; an installer company gets a longer session over
the GTINs or company prefixes it may install (``POST /v1/installer-sessions``). Both are
stored as token grants under a session id derived from the request's idempotency key, so
a retried request returns the same link, ``serialink tokens list`` shows them, and
revoking the id ends the session wherever it was opened. Opening the link
(:func:`redeem`) sets the session cookie once; see :mod:`resolver.access.sessions`.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
import segno

from resolver.access import sessions
from resolver.access.grants import GrantForbidden, GrantRefused, grant_record
from resolver.access.tokens import MAX_TTL, Claims
from resolver.errors import Conflict, NotFound
from resolver.journeys.channel import Channel, actor_for, rate_check
from resolver.journeys.derived import derive_text

if TYPE_CHECKING:
    from resolver.services import Services

MAX_UNITS = 50  # the units travel in the cookie's token: a visit is a job, not a fleet
MAX_VISIT_SECONDS = 7 * 24 * 3600
DEFAULT_VISIT_SECONDS = 8 * 3600
DEFAULT_INSTALLER_SECONDS = 90 * 24 * 3600
ISSUERS = ("manufacturer", "admin")


class LinkRefused(NotFound):
    """A sign-in link that opens nothing: ``why`` is invalid, used, ended or withdrawn."""

    def __init__(self, why: str, reason: str) -> None:
        super().__init__(reason, "link")
        self.why = why


def _text(body: Mapping[str, Any], name: str, limit: int, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value.strip()) <= limit or not value.isprintable():
        raise GrantRefused(name, f"expected 1-{limit} printable characters")
    return value.strip()


def _instant(value: object, name: str) -> int:
    if not isinstance(value, str):
        raise GrantRefused(name, "expected an ISO 8601 date-time with a time zone, e.g. 2026-03-01T08:00:00Z")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise GrantRefused(name, "expected an ISO 8601 date-time with a time zone, e.g. 2026-03-01T08:00:00Z")
    return int(at.timestamp())


def _seconds(body: Mapping[str, Any], default: int, maximum: int) -> int:
    ttl = body.get("ttl", default)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 60 <= ttl <= maximum:
        raise GrantRefused("ttl", f"expected seconds, 60..{maximum}")
    return ttl


def _issuer(caller: Claims) -> None:
    if caller.role not in ISSUERS:
        raise GrantForbidden("role", f"role {caller.role!r} may not open visits or installer sessions")
    if caller.unit is not None or caller.units:
        raise GrantForbidden("role", "a per-visit credential cannot open sessions")


def check_visit(caller: Claims, body: Mapping[str, Any], now: int) -> dict[str, Any]:
    """A visit request from ``caller``: the grant record to store, or GrantRefused/GrantForbidden."""
    _issuer(caller)
    unknown = set(body) - {"units", "principal", "reference", "starts_at", "ends_at", "ttl"}
    if unknown:
        raise GrantRefused(sorted(unknown)[0], "unknown field")
    units = body.get("units")
    if not isinstance(units, list) or not 0 < len(units) <= MAX_UNITS:
        raise GrantRefused("units", f'expected a list of 1-{MAX_UNITS} units {{"gtin": …, "serial": …}}')
    pairs: list[tuple[str, str]] = []
    for i, unit in enumerate(units):
        if not (isinstance(unit, dict) and set(unit) == {"gtin", "serial"} and isinstance(unit["gtin"], str)
                and isinstance(unit["serial"], str) and len(unit["gtin"]) == 14 and unit["gtin"].isdigit()
                and 0 < len(unit["serial"]) <= 20):
            raise GrantRefused(f"units[{i}]", 'expected {"gtin": 14 digits, "serial": 1-20 characters}')
        if not caller.allows_gtin(unit["gtin"]):
            raise GrantForbidden(f"units[{i}]", f"GTIN {unit['gtin']} is outside your own scope")
        pairs.append((unit["gtin"], unit["serial"]))
    principal = _text(body, "principal", 200) or ""
    reference = _text(body, "reference", 60, required=False)
    starts = _instant(body["starts_at"], "starts_at") if "starts_at" in body else now
    if "ends_at" in body and "ttl" in body:
        raise GrantRefused("ends_at", "give ends_at or ttl, not both")
    ends = _instant(body["ends_at"], "ends_at") if "ends_at" in body else \
        max(now, starts) + _seconds(body, DEFAULT_VISIT_SECONDS, MAX_VISIT_SECONDS)
    if ends <= max(now, starts):
        raise GrantRefused("ends_at", "the visit must end after it starts, and in the future")
    if ends - starts > MAX_VISIT_SECONDS:
        raise GrantRefused("ends_at", f"a visit lasts at most {MAX_VISIT_SECONDS // 86400} days")
    record = grant_record(principal, "technician", issued=now, ttl=ends - now, gtins=[g for g, _ in pairs],
                          issued_by=caller.principal)
    unique = sorted(set(pairs))
    return {**record, "units": [list(u) for u in unique], "nbf": starts,
            "ext": {"kind": "visit", "visit": reference or ""}}


def check_installer(caller: Claims, body: Mapping[str, Any], now: int) -> dict[str, Any]:
    """An installer session request: the company, its certification and the products it fits."""
    _issuer(caller)
    unknown = set(body) - {"certification", "company", "gtins", "prefixes", "ttl", "principal"}
    if unknown:
        raise GrantRefused(sorted(unknown)[0], "unknown field")
    certification = _text(body, "certification", 100) or ""
    company = _text(body, "company", 200) or ""
    principal = _text(body, "principal", 200, required=False) or f"installer:{certification}"
    ttl = _seconds(body, DEFAULT_INSTALLER_SECONDS, MAX_TTL)
    gtins, prefixes = body.get("gtins") or [], body.get("prefixes") or []
    if not isinstance(gtins, list) or not isinstance(prefixes, list) or len(gtins) + len(prefixes) > 100:
        raise GrantRefused("gtins", "expected lists of up to 100 GTINs and company prefixes")
    for i, g in enumerate(gtins):
        if not (isinstance(g, str) and len(g) == 14 and g.isdigit()):
            raise GrantRefused(f"gtins[{i}]", "expected a 14-digit GTIN")
        if not caller.allows_gtin(g):
            raise GrantForbidden(f"gtins[{i}]", f"GTIN {g} is outside your own scope")
    for i, p in enumerate(prefixes):
        if not (isinstance(p, str) and p.isdigit() and 4 <= len(p) <= 12):
            raise GrantRefused(f"prefixes[{i}]", "expected a GS1 company prefix of 4-12 digits")
        if not (caller.all_products or any(p.startswith(mine) for mine in caller.prefixes)):
            raise GrantForbidden(f"prefixes[{i}]", f"prefix {p} is outside your own scope")
    if not (gtins or prefixes):
        raise GrantRefused("gtins", "name the products the installer may fit: gtins or prefixes")
    record = grant_record(principal, "installer", issued=now, ttl=ttl, gtins=gtins, prefixes=prefixes,
                          issued_by=caller.principal)
    return {**record, "ext": {"kind": "installer", "company": company, "certification": certification}}


def qr_svg(link: str) -> str:
    """The sign-in link as a QR code, an SVG document a dispatch system can show or print."""
    out = io.BytesIO()
    segno.make_qr(link, error="m").save(out, kind="svg", scale=4, border=4, xmldecl=False, svgclass=None,
                                        lineclass=None, title="Sign-in link")
    return out.getvalue().decode()


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


async def open_session(services: Services, caller: Claims, body: Mapping[str, Any], channel: Channel,
                       kind: str) -> dict[str, Any]:
    """Store a visit or installer grant; its one-time sign-in link (and QR). Retries replay."""
    now = int(time.time())
    record = check_visit(caller, body, now) if kind == "visit" else check_installer(caller, body, now)
    session_id = derive_text(services.secret, "session", caller.principal, channel.idempotency_key, length=16)
    # what the request asked for, not when it arrived: a retry a second later is the same request
    window = [body.get("starts_at"), body.get("ends_at"), body.get("ttl")]
    digest = hashlib.sha256(orjson.dumps({k: v for k, v in record.items() if k not in ("iat", "exp", "nbf")}
                                         | {"window": window}, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    stored, replayed = await services.store.record_token(session_id, {**record, "digest": digest}, actor_for(caller),
                                                         audit=channel.audit(role=record["role"], session=kind))
    if replayed and stored.get("digest") != digest:
        raise Conflict("this Idempotency-Key was used to open another session", "Idempotency-Key")
    link = f"{services.rules.current.root}/u/signin/{sessions.link_code(services.secret, session_id)}"
    answer: dict[str, Any] = {"session_id": session_id, "role": stored["role"], "principal": stored["principal"],
                              "sign_in_link": link, "qr_svg": qr_svg(link), "expires_at": _iso(stored["exp"]),
                              "replayed": replayed}
    ext = stored.get("ext") or {}
    if kind == "visit":
        answer.update(visit_id=session_id, reference=ext.get("visit") or None, starts_at=_iso(stored["nbf"]),
                      ends_at=_iso(stored["exp"]),
                      units=[{"gtin": g, "serial": s} for g, s in stored["units"]])
    else:
        answer.update(company=ext.get("company"), certification=ext.get("certification"),
                      scope={"gtins": stored["gtins"], "prefixes": stored["prefixes"]})
    return answer


class Redeemed(NamedTuple):
    token: str
    session_id: str
    expires: int


async def redeem(services: Services, code: str, client: str) -> Redeemed:
    """Open a sign-in link: the session token for the cookie, once; LinkRefused otherwise."""
    await rate_check(services, "signin", client)
    session_id = sessions.link_id(services.secret, code)
    if session_id is None:
        raise LinkRefused("invalid", "this sign-in link is not valid here")
    record = await services.store.get_token(session_id)
    if record is None or (record.get("ext") or {}).get("kind") not in sessions.SESSION_KINDS:
        raise LinkRefused("invalid", "this sign-in link is not valid here")
    now = int(time.time())
    await services.revocations.fresh()
    if services.revocations(session_id):
        raise LinkRefused("withdrawn", "this sign-in link was withdrawn")
    if record["exp"] <= now:
        raise LinkRefused("ended", "the visit this link opens has ended")
    if await services.store.count_hit(f"signin-once:{session_id}", max(1, record["exp"] - now)) > 1:
        raise LinkRefused("used", "this sign-in link was already used")
    return Redeemed(sessions.session_token(services.secret, session_id, record, now), session_id, record["exp"])

