"""Which moment of its life a unit is in, for the unit page: pure, from the unit's record.

The same QR code serves unboxing, the first weeks, maintenance, warranty, problems, parts,
resale and end of life; the page leads with what matters now and says what to do next.
Everything here is computed from facts the page already read (the twin's unit record, its
warranty coverage, the recall flag) and the product's moments in the brand theme
(config/brand.yaml): no store read, no clock but ``today``.

Precedence of the lead (the card at the top): recall, end of life, register (a unit nobody
registered yet), unboxing (the first days), maintenance due, warranty ending soon.

Maintenance intervals count from the last service visit, else the installation, else the
purchase, else the registration. The first days count from the earliest of purchase,
installation and registration.

>>> from twin.lifecycle import State
>>> from twin.unit import Unit
>>> unit = Unit("09506000134352", "A", State.REGISTERED, 3, owner="o", purchase_date=date(2025, 1, 5),
...             registered_on=date(2026, 2, 20))
>>> moments = {"maintenance": [{"task": "Annual service", "every_days": 365, "notice_days": 30}]}
>>> life = life_of(unit, True, False, None, moments, date(2026, 3, 1))
>>> life.lead, [m["due"] for m in life.maintenance], life.overdue
('maintenance', [datetime.date(2026, 1, 5)], True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple

from twin.lifecycle import State
from twin.unit import Unit
from twin.warranty import Coverage

REGISTRABLE = frozenset({State.COMMISSIONED, State.SHIPPED, State.SOLD})
ENDED = frozenset({State.END_OF_LIFE, State.DECOMMISSIONED})
UNBOXING_DAYS = 30
NOTICE_DAYS = 30
ENDING_SOON_DAYS = 60


class Life(NamedTuple):
    lead: str | None  # recall | end_of_life | register | unboxing | maintenance | warranty_ending | None
    registrable: bool  # offer "Register this product" (never for a recalled or ended unit)
    transferable: bool  # offer a hand-over (never for a recalled or ended unit)
    unboxing: bool
    maintenance: tuple[Mapping[str, Any], ...]  # tasks due soon or overdue: task, due, overdue, part
    overdue: bool
    warranty: str  # active | ending | expired | not_started | unknown
    ended: bool


def _start_of_use(unit: Unit) -> date | None:
    days = [d for d in (unit.purchase_date, unit.installed_on, unit.registered_on) if d is not None]
    return min(days) if days else None


def maintenance_base(unit: Unit) -> date | None:
    """What a maintenance interval counts from."""
    return unit.last_service_on or unit.installed_on or unit.purchase_date or unit.registered_on


def due_tasks(unit: Unit, tasks: Sequence[Mapping[str, Any]], today: date) -> tuple[dict[str, Any], ...]:
    base = maintenance_base(unit)
    if base is None:
        return ()
    out = []
    for task in tasks:
        due = base + timedelta(days=task["every_days"])
        if today >= due - timedelta(days=task.get("notice_days", NOTICE_DAYS)):
            out.append({**task, "due": due, "overdue": today > due})
    return tuple(sorted(out, key=lambda t: t["due"]))


def warranty_state(coverage: Coverage | None, today: date, ending_soon_days: int) -> str:
    if coverage is None:
        return "unknown"
    if coverage.start is None:
        return "not_started"
    if coverage.covered:
        if coverage.end is not None and coverage.end - today <= timedelta(days=ending_soon_days):
            return "ending"
        return "active"
    return "expired"


def life_of(unit: Unit, known: bool, recalled: bool, coverage: Coverage | None,
            moments: Mapping[str, Any], today: date) -> Life:
    """The unit's moments (see the module docstring)."""
    ended = known and unit.state in ENDED
    registrable = known and not recalled and unit.owner is None and unit.state in REGISTRABLE
    active = known and not recalled and not ended
    start = _start_of_use(unit)
    days = (moments.get("unboxing") or {}).get("days", UNBOXING_DAYS)
    unboxing = active and (registrable or (start is not None and (today - start).days < days))
    tasks = due_tasks(unit, moments.get("maintenance", ()), today) if active and not registrable else ()
    ending_days = (moments.get("warranty") or {}).get("ending_soon_days", ENDING_SOON_DAYS)
    warranty = warranty_state(coverage, today, ending_days)
    if not known:
        lead = None
    elif recalled:
        lead = "recall"
    elif ended:
        lead = "end_of_life"
    elif registrable:
        lead = "register"
    elif unboxing:
        lead = "unboxing"
    elif tasks:
        lead = "maintenance"
    elif warranty == "ending":
        lead = "warranty_ending"
    else:
        lead = None
    return Life(lead, registrable, active and unit.owner is not None, unboxing, tasks,
                any(t["overdue"] for t in tasks), warranty, ended)
