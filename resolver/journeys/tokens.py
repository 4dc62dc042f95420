"""Scoped tokens issued and revoked through the API: a retried request returns the very
same token (its id and times are derived from the idempotency key and the stored record).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from resolver.access.grants import check_grant, sign
from resolver.access.tokens import Claims
from resolver.errors import Conflict, Forbidden, Invalid, NotFound
from resolver.journeys.channel import Channel, actor_for
from resolver.journeys.derived import derive_text
from twin.events import Actor

if TYPE_CHECKING:
    from resolver.services import Services

async def issue_token(services: Services, claims: Claims, body: Mapping[str, Any], channel: Channel) -> dict[str, Any]:
    record = check_grant(claims, body, int(time.time()))
    token_id = derive_text(services.secret, "token", claims.principal, channel.idempotency_key, length=16)
    digest = hashlib.sha256(orjson.dumps({k: v for k, v in record.items() if k not in ("iat", "exp")}
                                         | {"ttl": record["exp"] - record["iat"]},
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    stored, replayed = await services.store.record_token(token_id, {**record, "digest": digest}, actor_for(claims),
                                                  audit=channel.audit(role=record["role"]))
    if replayed and stored.get("digest") != digest:
        raise Conflict("this Idempotency-Key was used to issue another token", "Idempotency-Key")
    return {"token": sign(services.secret, token_id, stored), "token_id": token_id, "role": stored["role"],
            "principal": stored["principal"], "expires_at": _epoch_iso(stored["exp"]), "replayed": replayed,
            "scope": {"gtins": stored["gtins"], "prefixes": stored["prefixes"], "all_products": stored["all"],
                      "sites": stored["sites"], "lines": stored["lines"],
                      "unit": {"gtin": stored["unit"][0], "serial": stored["unit"][1]} if stored["unit"] else None}}


def _epoch_iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


async def revoke_token(services: Services, claims: Claims, token_id: str, reason: object, channel: Channel) -> dict[str, Any]:
    """Revoke a token by id: admins any, others the tokens they issued, anyone their own."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000:
        raise Invalid("say why (1-1000 characters)", "reason")
    record = await services.store.get_token(token_id)
    own = hmac.compare_digest(claims.token_id.encode(), token_id.encode())
    if record is None and not own:
        raise NotFound(f"no token {token_id!r} was issued here", "token_id")
    if not (own or claims.role == "admin" or record.get("issued_by") == claims.principal):
        raise Forbidden("only its issuer, its holder or an admin may revoke a token", "token_id")
    expires = record["exp"] if record is not None else claims.expires
    newly = await services.store.revoke_token(token_id, datetime.fromtimestamp(expires, UTC),
                                       actor_for(claims) if claims.role != "owner" else Actor("owner", claims.principal),
                                       reason, audit=channel.audit())
    services.revocations.add(token_id, float(expires))
    return {"token_id": token_id, "revoked": True, "replayed": not newly}
