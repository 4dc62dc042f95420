"""Compatible parts and consumables of one unit: which fit (model, configuration, firmware),
which are due for replacement, and the check that a service only fits parts made for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from resolver.errors import Invalid, NotFound
from resolver.journeys.reading import known_snapshot
from twin.errors import InvalidInput
from twin.parts import PartsCatalogue
from twin.unit import Unit

if TYPE_CHECKING:
    from resolver.services import Services


def catalogue(services: Services) -> PartsCatalogue | None:
    return services.parts.current if services.parts is not None else None


async def parts_answer(services: Services, gtin: str, serial: str, configuration: str | None,
                       cached: bool = True) -> dict[str, Any]:
    """The parts of the unit's model, fitting ones first, each marked due or not today."""
    if configuration is not None and not (0 < len(configuration) <= 20 and configuration.isprintable()):
        raise Invalid("expected a configuration (consumer product variant) of 1-20 characters", "configuration")
    parts = catalogue(services)
    if parts is None:
        raise NotFound("no parts catalogue is configured (parts.yaml or parts.csv)", "parts")
    unit = (await known_snapshot(services, gtin, serial, cached=cached)).unit
    today = services.today()
    answers = parts.answer(unit, today, configuration)
    return {"gtin": gtin, "serial": serial, "on": today.isoformat(), "firmware": unit.firmware,
            "configuration": configuration, "parts": [a.as_json(unit) for a in answers],
            "due": [a.part.gtin for a in answers if a.due]}


def check_fitted(services: Services, unit: Unit, fitted: Sequence[str]) -> None:
    """A service may only name parts the catalogue lists for this model (422 otherwise)."""
    parts = catalogue(services)
    if parts is None:
        return
    try:
        parts.check_fitted(unit, fitted, "data.parts")
    except InvalidInput as exc:
        raise Invalid(exc.problem, exc.field) from None
