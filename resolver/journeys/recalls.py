"""Brands recall a lot, a serial or counter range, one serial or a whole GTIN (effective
on the next scan, on every worker), and lift a recall with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from resolver.access.tokens import Claims
from resolver.errors import Conflict, Invalid, NotFound
from resolver.journeys.channel import Channel, actor_for
from twin.errors import IdempotencyConflict, InvalidInput
from twin.overlays import CounterRange, GtinScope, LotScope, Overlay, SerialRange, SerialScope

if TYPE_CHECKING:
    from resolver.services import Services

RECALL_ROLES = ("manufacturer", "admin")


def recall_scope(body: Mapping[str, Any]):
    """``lot``, ``serials`` {first, last}, ``counters`` {profile, first, last}, ``serial`` or ``all``."""
    given = [k for k in ("lot", "serials", "counters", "serial", "all") if body.get(k) not in (None, False)]
    if len(given) != 1:
        raise Invalid("name exactly one of lot, serials, counters, serial or all", "scope")
    kind = given[0]
    value = body[kind]
    try:
        if kind == "lot" and isinstance(value, str):
            return LotScope(value)
        if kind == "serial" and isinstance(value, str):
            return SerialScope(value)
        if kind == "serials" and isinstance(value, dict) and set(value) == {"first", "last"}:
            return SerialRange(value["first"], value["last"])
        if kind == "counters" and isinstance(value, dict) and set(value) == {"profile", "first", "last"}:
            return CounterRange(value["profile"], value["first"], value["last"])
        if kind == "all" and value is True:
            return GtinScope()
    except TypeError:
        pass
    raise Invalid({"lot": "expected a lot", "serial": "expected a serial",
                         "serials": "expected {first, last}", "counters": "expected {profile, first, last}",
                         "all": "expected true"}[kind], kind)


async def put_recall(services: Services, claims: Claims, body: Mapping[str, Any], channel: Channel):
    """Recall a lot, a serial or counter range, one serial or a whole GTIN: effective on the next scan."""
    gtin = body.get("gtin")
    if not (isinstance(gtin, str) and len(gtin) == 14 and gtin.isdigit()):
        raise Invalid("expected a 14-digit GTIN", "gtin")
    unknown = set(body) - {"gtin", "lot", "serials", "counters", "serial", "all", "reason"}
    if unknown:
        raise Invalid("unknown field", sorted(unknown)[0])
    claims.require(RECALL_ROLES, gtin)
    scope = recall_scope(body)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("say why (it is shown to people who scan a recalled unit)", "reason")
    try:
        overlay = await services.store.put_overlay(gtin, "recalled", scope, actor_for(claims), reason,
                                            idempotency_key=channel.idempotency_key, audit=channel.audit())
    except IdempotencyConflict as exc:
        raise Conflict(str(exc), "Idempotency-Key") from None
    except InvalidInput as exc:
        raise Invalid(exc.problem, "scope" if exc.field.startswith("overlay.scope") else exc.field) from None
    services.lookup.invalidate(gtin, "overlay", overlay.id)
    return overlay


async def affected_ssccs(services: Services, overlay: Overlay) -> list[str]:
    """The SSCCs (cases, and the pallets they are on) holding units a lot or GTIN recall
    covers: what logistics must pull back. Other scopes name no batches: an empty list."""
    scope = overlay.scope
    if not isinstance(scope, (LotScope, GtinScope)):
        return []
    batches = await services.store.list_batches(overlay.gtin)
    ids = [b.id for b in batches if isinstance(scope, GtinScope) or b.lot == scope.lot]
    return await services.store.aggregation_parents(ids) if ids else []


async def lift_recall(services: Services, claims: Claims, gtin: str, overlay_id: str, reason: object, channel: Channel):
    claims.require(RECALL_ROLES, gtin)
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("say why the recall ends", "reason")
    overlays = {o.id: o for o in await services.store.get_overlays(gtin, include_lifted=True)}
    overlay = overlays.get(overlay_id)
    if overlay is None or overlay.kind != "recalled":
        raise NotFound(f"no recall {overlay_id!r} on GTIN {gtin}", "overlay_id")
    if overlay.lifted is not None:
        if overlay.lifted.reason == reason and overlay.lifted.actor == actor_for(claims):
            return overlay, True  # a retry
        raise Conflict(f"the recall was lifted at {overlay.lifted.at.isoformat()}", "overlay_id")
    lifted = await services.store.lift_overlay(gtin, overlay_id, actor_for(claims), reason, audit=channel.audit())
    services.lookup.invalidate(gtin, "overlay", overlay_id)
    return lifted, False
