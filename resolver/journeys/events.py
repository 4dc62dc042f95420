"""Technicians, installers, owners and brands append events to a unit: a service visit,
a firmware update, an installation, end of life, a theft report — each role only its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from resolver.access.tokens import Claims
from resolver.errors import Forbidden, Invalid
from resolver.journeys import parts
from resolver.journeys.channel import Channel, actor_for, append
from resolver.journeys.reading import is_owner, known_snapshot
from twin.errors import InvalidInput
from twin.events import Event, check_event, now_utc

if TYPE_CHECKING:
    from resolver.services import Services

#: who may append which event through the generic events endpoint (registration and
#: transfers have their own endpoints; commissioning and scrapping belong to the line API)
EVENT_ROLES: dict[str, frozenset[str]] = {
    "service": frozenset({"technician", "installer", "manufacturer", "admin"}),
    "firmware": frozenset({"technician", "installer", "manufacturer", "admin"}),
    "start_service": frozenset({"installer", "technician", "manufacturer", "admin"}),
    "end_service": frozenset({"installer", "technician", "manufacturer", "admin"}),
    "end_of_life": frozenset({"owner", "technician", "installer", "manufacturer", "admin"}),
    "report_stolen": frozenset({"owner", "manufacturer", "admin"}),
    "recovered": frozenset({"owner", "manufacturer", "admin"}),
    "ship": frozenset({"manufacturer", "admin"}),
    "sell": frozenset({"manufacturer", "admin"}),
    "recall": frozenset({"manufacturer", "admin"}),
    "recall_lift": frozenset({"manufacturer", "admin"}),
    "dpp": frozenset({"manufacturer", "admin"}),
    "install": frozenset({"installer", "manufacturer", "admin"}),
}


async def record_event(services: Services, claims: Claims, gtin: str, serial: str, body: Mapping[str, Any],
                       expected_version: int | None, channel: Channel):
    """A service visit, firmware update, installation, end of life, theft report…"""
    event_type = body.get("type")
    roles = EVENT_ROLES.get(event_type) if isinstance(event_type, str) else None
    if roles is None:
        raise Invalid(f"expected one of {', '.join(EVENT_ROLES)}", "type")
    claims.require(roles, gtin, serial)
    unknown = set(body) - {"type", "reason", "where", "data", "expected_version"}
    if unknown:
        raise Invalid("unknown field", sorted(unknown)[0])
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise Invalid("expected an object", "data")
    reason = body.get("reason") or event_type.replace("_", " ")
    snap = await known_snapshot(services, gtin, serial)
    if claims.role == "owner" and not is_owner(claims, snap.unit):
        raise Forbidden("only the unit's current owner may do this")
    try:  # built whole, not from keywords: data may name anything, "where" and "at" included
        event = check_event(Event(event_type, actor_for(claims), now_utc(), reason, body.get("where"), data))
    except InvalidInput as exc:  # the twin says event.data.x / event.reason; the body calls them data.x / reason
        raise Invalid(exc.problem, exc.field.removeprefix("event.")) from None
    if event.type == "service" and event.data.get("parts"):  # parts fitted must be made for this model
        parts.check_fitted(services, snap.unit, event.data["parts"])
    return await append(services, gtin, serial, event, channel, expected_version, snap.unit)
