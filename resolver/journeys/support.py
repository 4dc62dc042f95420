"""Support by fault code: the model's fault-code catalogue for a unit, and troubleshooting
sessions logged on the unit as ``support`` events (idempotent, audited like every write).

Anyone may read what a code means and which steps to try; the sessions themselves are
the unit's support history, shown to its current owner and to service staff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from resolver.access.tokens import Claims
from resolver.errors import Forbidden, Invalid, NotFound
from resolver.journeys.channel import Channel, actor_for, append
from resolver.journeys.reading import is_owner, known_snapshot
from resolver.journeys.views import support_sessions
from twin.errors import InvalidInput
from twin.events import Event, check_event, now_utc
from twin.support import FaultCatalogue

if TYPE_CHECKING:
    from resolver.services import Services
    from twin.store import Appended

#: who may log a session (an owner only for a unit they own)
LOG_ROLES = ("owner", "installer", "technician", "manufacturer", "admin")
#: who sees the sessions besides the current owner
HISTORY_ROLES = frozenset({"installer", "technician", "manufacturer", "admin", "regulator"})
_BODY = frozenset({"fault_code", "steps", "outcome", "session", "notes", "reason", "expected_version"})


def catalogue(services: Services) -> FaultCatalogue:
    current = services.faults.current if services.faults is not None else None
    if current is None:
        raise NotFound("no fault-code catalogue is configured (fault-codes.yaml)", "fault")
    return current


async def support_answer(services: Services, claims: Claims | None, gtin: str, serial: str,
                         fault: str | None) -> dict[str, Any]:
    """The fault codes of the unit's model (or the one asked for) and, for the owner and
    service staff, the unit's support sessions."""
    snap = await known_snapshot(services, gtin, serial, cached=claims is None)
    faults = catalogue(services).faults(gtin)
    if fault is not None:
        found = [f for f in faults if f.code == fault]
        if not found:
            raise NotFound(f"fault code {fault!r} is not in the catalogue of {gtin}"
                           + (f"; known: {', '.join(f.code for f in faults)}" if faults else ""), "fault")
        faults = tuple(found)
    answer: dict[str, Any] = {"gtin": gtin, "serial": serial, "faults": [f.as_json() for f in faults]}
    if claims is not None and (claims.role in HISTORY_ROLES or is_owner(claims, snap.unit)):
        events = list(await services.store.get_events(gtin, serial)) if snap.unit.version else []
        answer["sessions"] = support_sessions(events)
    return answer


async def log_session(services: Services, claims: Claims, gtin: str, serial: str, body: Mapping[str, Any],
                      expected_version: int | None, channel: Channel) -> Appended:
    """Append one troubleshooting session; an unknown fault code is refused, nothing written."""
    claims.require(LOG_ROLES, gtin, serial)
    unknown = set(body) - _BODY
    if unknown:
        raise Invalid("unknown field", sorted(unknown)[0])
    code = body.get("fault_code")
    if not isinstance(code, str) or not code:
        raise Invalid("expected the fault code shown on the unit", "fault_code")
    known = catalogue(services).faults(gtin)
    if not any(f.code == code for f in known):
        raise Invalid(f"fault code {code!r} is not in the catalogue of {gtin}"
                      + (f"; known: {', '.join(f.code for f in known)}" if known else "; this model has none"),
                      "fault_code")
    snap = await known_snapshot(services, gtin, serial)
    if claims.role == "owner" and not is_owner(claims, snap.unit):
        raise Forbidden("only the unit's current owner may do this")
    data = {k: body[k] for k in ("fault_code", "steps", "outcome", "session", "notes") if k in body}
    reason = body.get("reason") or f"support session: {code}"
    try:
        event = check_event(Event("support", actor_for(claims), now_utc(), reason, None, data))
    except InvalidInput as exc:  # the twin says event.data.x; the body calls it x
        raise Invalid(exc.problem, exc.field.removeprefix("event.data.").removeprefix("event.")) from None
    return await append(services, gtin, serial, event, channel, expected_version, snap.unit)
