"""An owner hands the unit over: a one-time code, shown once, that the new owner claims
with; the previous owner's tokens stop counting the moment the claim is appended.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from resolver.access.tokens import Claims
from resolver.errors import Forbidden, Invalid
from resolver.journeys.channel import Channel, append, format_code, hash_code, rate_check
from resolver.journeys.derived import derive, derive_text
from resolver.journeys.reading import is_owner, known_snapshot
from resolver.journeys.registration import OwnerGrant, owner_token, personal_data
from resolver.journeys.views import Snapshot
from twin.errors import TransferRefused
from twin.events import Actor, make_event
from twin.unit import Unit

if TYPE_CHECKING:
    from resolver.services import Services

TRANSFER_TTL = timedelta(days=7)


def offer_code(services: Services, gtin: str, serial: str, idempotency_key: str) -> str:
    """The transfer code an offer made with this idempotency key carries (a retry: the same)."""
    return format_code(derive(services.secret, "transfer-code", gtin, serial, idempotency_key), 4)


async def _owned(services: Services, claims: Claims, gtin: str, serial: str) -> Snapshot:
    claims.require(("owner",), gtin, serial)
    snap = await known_snapshot(services, gtin, serial)
    if not is_owner(claims, snap.unit):
        raise Forbidden("only the unit's current owner may do this")
    return snap


async def offer_transfer(services: Services, claims: Claims, gtin: str, serial: str, expected_version: int | None,
                         channel: Channel) -> tuple[str, datetime, Unit, bool]:
    """The owner hands over: a one-time code (shown once) that the new owner claims with."""
    snap = await _owned(services, claims, gtin, serial)
    code = offer_code(services, gtin, serial, channel.idempotency_key)
    code_hash = hash_code(code)
    offer = snap.unit.transfer_offer
    if offer is not None and hmac.compare_digest(offer.code_hash, code_hash):
        return code, offer.expires_at, snap.unit, True  # a retry of the offer that is pending
    expires = datetime.now(UTC).replace(microsecond=0) + TRANSFER_TTL
    event = make_event("transfer_offer", Actor("owner", claims.principal), "the owner offered a transfer",
                       code_hash=code_hash, expires_at=expires)
    appended = await append(services, gtin, serial, event, channel, expected_version, snap.unit)
    return code, expires, appended.unit, appended.replayed


async def cancel_transfer(services: Services, claims: Claims, gtin: str, serial: str, expected_version: int | None,
                          channel: Channel):
    snap = await _owned(services, claims, gtin, serial)
    event = make_event("transfer_cancel", Actor("owner", claims.principal), "the owner cancelled the transfer")
    return await append(services, gtin, serial, event, channel, expected_version, snap.unit)


async def claim_transfer(services: Services, gtin: str, serial: str, form: Mapping[str, Any],
                         channel: Channel) -> OwnerGrant:
    """The new owner takes over with the code; the previous owner's tokens stop counting."""
    unknown = set(form) - {"code", "name", "contact"}
    if unknown:
        raise Invalid("unknown field", sorted(unknown)[0])
    code_hash = hash_code(form.get("code"))
    person = personal_data(form.get("name"), form.get("contact"))
    await rate_check(services, "claim", channel.client)
    await rate_check(services, "claim-unit", f"{gtin}/{serial}")
    await known_snapshot(services, gtin, serial)  # a 404 for serials nobody issued
    owner = "o_" + derive_text(services.secret, "owner-id", gtin, serial, "claim", channel.idempotency_key)
    event = make_event("transfer_claim", Actor("owner", owner), "the new owner claimed the unit",
                       code_hash=code_hash, owner=owner)
    try:
        appended = await services.store.append_event(gtin, serial, event, idempotency_key=channel.idempotency_key,
                                              personal=person, audit=channel.audit())
    except TransferRefused as exc:
        raise Invalid(exc.reason, "code") from None
    services.lookup.invalidate(gtin, "unit", serial)
    token, token_id, expires = await owner_token(services, owner, gtin, serial, channel)
    return OwnerGrant(owner, token, token_id, expires, appended.unit, appended.replayed)
