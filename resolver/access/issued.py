"""Tokens the operator issues from the command line, and the list of every token issued here.

Whoever runs ``serialink`` on the resolver's host holds the signing secret, so it acts as
an admin: it may issue any role but ``owner`` (owner tokens come only from a confirmed
registration or a transfer claim), for any products. Its tokens go through the same grant
check and the same store record as tokens issued over the API, so ``tokens list`` and
``tokens revoke`` (and the running resolvers' revocation list) know them all.

The list is read from the store's token log (every issuance is logged) and the records
still held (a token's record lives until it expires), so it shows every token that
could still be presented, whoever issued it, and never the token itself.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from resolver.access.grants import check_grant, sign
from resolver.access.linekeys import NEVER, iso
from resolver.access.tokens import Claims
from resolver.errors import NotFound
from twin.events import Actor

OPERATOR = Claims(principal="operator", role="admin", expires=NEVER, token_id="operator", all_products=True)
OPERATOR_ACTOR = Actor("manufacturer", "operator (serialink CLI)")
#: roles whose token may cover every product when no --gtin or --prefix is named
WHOLE_CATALOGUE = ("admin", "manufacturer", "regulator")
BRAND_ROLES = ("manufacturer", "admin")


def new_token_id() -> str:
    """A random token id that does not start with ``-``: operators pass it to
    ``serialink tokens revoke ID``, where a leading dash would read as an option."""
    while True:
        token_id = secrets.token_urlsafe(12)
        if not token_id.startswith("-"):
            return token_id


async def issue(store: Any, secret: bytes, *, role: str, ttl: int, gtins: Iterable[str] = (),
                prefixes: Iterable[str] = (), serial: str | None = None, site: str | None = None,
                line: str | None = None, subject: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """Sign and record a token: (token, token id, record). Grant errors name the field."""
    gtins, prefixes = list(gtins), list(prefixes)
    body: dict[str, Any] = {"role": role, "principal": subject or f"{role}:cli", "ttl": ttl, "gtins": gtins,
                            "prefixes": prefixes}
    if not gtins and not prefixes and role in WHOLE_CATALOGUE:
        body["all_products"] = True
    if serial is not None:
        body["unit"] = {"gtin": gtins[0] if gtins else "", "serial": serial}
    if site is not None or line is not None:
        body["sites"], body["lines"] = [site] if site else [], [line] if line else []
    record = check_grant(OPERATOR, body, int(time.time()))
    record["issued_by"] = OPERATOR_ACTOR.principal
    token_id = new_token_id()
    stored, _ = await store.record_token(token_id, record, OPERATOR_ACTOR, audit={"via": "cli"})
    return sign(secret, token_id, stored), token_id, stored


async def _live(store: Any, roles: Iterable[str] | None) -> AsyncIterator[list[tuple[str, dict[str, Any]]]]:
    """(id, record) of the tokens still held, a page of the token log at a time, oldest first."""
    wanted = set(roles) if roles is not None else None
    after = None
    while True:
        page = await store.token_log(after=after, limit=1000)
        ids = list(dict.fromkeys(e.subject for e in page if e.action == "token:issue"
                                 and (wanted is None or e.detail.get("role") in wanted)))
        records = []
        for i in range(0, len(ids), 100):
            records += await asyncio.gather(*(store.get_token(t) for t in ids[i:i + 100]))
        yield [(t, r) for t, r in zip(ids, records, strict=True) if r is not None]
        if len(page) < 1000:
            return
        after = page[-1].cursor


async def listing(store: Any, roles: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Every token still unexpired (revoked ones too, marked), oldest first; never the token."""
    revoked = await store.revoked_tokens()
    return [describe(token_id, record, token_id in revoked)
            async for page in _live(store, roles) for token_id, record in page]


def describe(token_id: str, record: dict[str, Any], revoked: bool) -> dict[str, Any]:
    return {"id": token_id, "role": record["role"], "scope": scope_text(record), "subject": record["principal"],
            "issued_by": record.get("issued_by", ""), "expires": iso(record["exp"]), "revoked": revoked}


def scope_text(record: dict[str, Any]) -> str:
    """The products (and line, and unit) a token covers, in a few words."""
    parts = []
    if record.get("all"):
        parts.append("all products")
    if record.get("gtins"):
        parts.append("GTIN " + ",".join(record["gtins"]))
    if record.get("prefixes"):
        parts.append("prefix " + ",".join(record["prefixes"]))
    if record.get("unit"):
        parts.append("unit {}/{}".format(*record["unit"]))
    if record.get("sites") or record.get("lines"):
        parts.append("site {} line {}".format(",".join(record.get("sites") or ["*"]),
                                              ",".join(record.get("lines") or ["*"])))
    return "; ".join(parts) or "nothing"


async def revoke(store: Any, token_id: str, reason: str) -> tuple[dict[str, Any], bool]:
    """Revoke by id: (record, newly revoked). NotFound for an id with no live record."""
    record = await store.get_token(token_id)
    if record is None:
        raise NotFound(f"no unexpired token {token_id!r} was issued here (see: serialink tokens list)", "id")
    newly = await store.revoke_token(token_id, datetime.fromtimestamp(record["exp"], UTC), OPERATOR_ACTOR, reason,
                                     audit={"via": "cli"})
    return record, newly


async def has_brand_credential(store: Any) -> bool:
    """Is there a manufacturer or admin token that still works (issued, unexpired, unrevoked)?
    Stops at the first one: serve asks this at every start."""
    revoked = await store.revoked_tokens()
    async for page in _live(store, BRAND_ROLES):
        if any(token_id not in revoked for token_id, _ in page):
            return True
    return False
