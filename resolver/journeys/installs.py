"""A certified installer records that a unit was fitted: where, when and by whom.

The company and its certification come from the installer's session (what the brand
issued it for), never from the form, so a signed-in installer cannot record work in
another company's name. The event starts the warranty by the rules of the market it
names (``starts: installation`` in config/warranty.yaml), and the owner's next look at
the unit shows who installed it and when.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from resolver.access.tokens import Claims
from resolver.errors import Invalid
from resolver.journeys.channel import Channel, actor_for, append
from resolver.journeys.reading import known_snapshot
from twin.errors import InvalidInput
from twin.events import make_event

if TYPE_CHECKING:
    from resolver.services import Services

INSTALLER_ROLES = ("installer",)


def installed_on(value: object, today: date) -> str:
    if not isinstance(value, str) or len(value) != 10:
        raise Invalid("expected a date YYYY-MM-DD", "installed_on")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid("expected a date YYYY-MM-DD", "installed_on") from None
    if day > today or day.year < 1990:
        raise Invalid("the installation date must be today or a past date", "installed_on")
    return day.isoformat()


def markets(services: Services) -> tuple[str, ...]:
    """The markets the warranty rules know (the form offers these)."""
    return tuple(services.warranty.jurisdictions) if services.warranty is not None else ()


async def record_installation(services: Services, claims: Claims, gtin: str, serial: str, form: Mapping[str, Any],
                              expected_version: int | None, channel: Channel):
    """Append the ``install`` event for a signed-in installer whose session covers the unit."""
    claims.require(INSTALLER_ROLES, gtin, serial)
    site = form.get("site")
    if not isinstance(site, str) or not site.strip():
        raise Invalid("required", "site")
    if len(site) > 300:
        raise Invalid("at most 300 characters", "site")
    day = installed_on(form.get("installed_on"), services.today())
    market = form.get("jurisdiction") or None
    if market is not None and market not in markets(services):
        raise Invalid(f"expected one of {', '.join(markets(services)) or 'none'}", "jurisdiction")
    company = claims.extra.get("company") or claims.principal
    certification = claims.extra.get("certification")
    if not certification:
        raise Invalid("this credential names no installer certification; sign in with your installer link",
                      "certification")
    snap = await known_snapshot(services, gtin, serial)
    try:
        event = make_event("install", actor_for(claims), "installed by a certified installer",
                           site=" ".join(site.split()), installed_on=day, certification=certification,
                           company=company, jurisdiction=market)
    except InvalidInput as exc:
        raise Invalid(exc.problem, exc.field.removeprefix("event.data.")) from None
    return await append(services, gtin, serial, event, channel, expected_version, snap.unit)
