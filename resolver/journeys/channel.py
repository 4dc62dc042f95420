"""How a write is carried: where it came from, its idempotency key, the actor it is
audited as, and the one way journeys append an event (and tell this worker's caches).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from resolver.access.tokens import Claims
from resolver.errors import BadRequest, Invalid
from twin.errors import InvalidInput
from twin.events import Actor
from twin.ownership import hash_transfer_code
from twin.unit import Unit

if TYPE_CHECKING:
    from resolver.services import Services

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as twin.ownership


class Channel(NamedTuple):
    """Where a write came from, for the audit (and the idempotency key it carries)."""

    client: str
    via: str  # "api" or "page"
    idempotency_key: str

    def audit(self, **extra: Any) -> dict[str, Any]:
        return {"client": self.client[:100], "via": self.via, "idempotency_key": self.idempotency_key, **extra}


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise BadRequest("every write needs an Idempotency-Key header (1-100 characters, no spaces)",
                       "Idempotency-Key")
    if len(key) > 100 or any(c.isspace() for c in key) or not key.isprintable():
        raise BadRequest("expected 1-100 printable characters without spaces", "Idempotency-Key")
    return key


async def rate_check(services: Services, action: str, key: str) -> None:
    """RateLimited (a TooMany) when this key tried ``action`` too often."""
    await services.limiter.check(action, key)


def format_code(raw: bytes, groups: int) -> str:
    chars = "".join(_ALPHABET[b % 32] for b in raw[: groups * 4])
    return "-".join(chars[i:i + 4] for i in range(0, len(chars), 4))


def hash_code(code: object, field: str = "code") -> str:
    try:
        return hash_transfer_code(code)  # type: ignore[arg-type]
    except InvalidInput:
        raise Invalid("expected the code from your message", field) from None


def actor_for(claims: Claims) -> Actor:
    role = "manufacturer" if claims.role == "admin" else claims.role
    return Actor(role, claims.principal[:200])


async def append(services: Services, gtin: str, serial: str, event, channel: Channel, expected_version: int | None,
                  unit: Unit):
    appended = await services.store.append_event(gtin, serial, event, expected_version=expected_version,
                                          idempotency_key=channel.idempotency_key,
                                          origin=unit if unit.version == 0 else None, audit=channel.audit())
    services.lookup.invalidate(gtin, "unit", serial)
    return appended
