"""Moments: `when` conditions on where a unit is in its own life, compiled once, checked per scan.

A route may ask how long ago the unit was made, registered, installed, last serviced or
last updated (``since_registration: {at_most: P7D}``), about its warranty (``warranty:
active``, ``expired``, ``none`` or ``{ending_within: P60D}``), its firmware
(``firmware: {at_least: "2.0", below: "3.0"}``) and whether a service is due
(``service_due: true``: the product's ``service_interval`` since the last service, or a
consumable's replacement interval, has run out). A product names moments once
(``moments: {first_week: {...}}``) and routes use them (``moment: first_week``).

The facts come from what the scan already holds — the batch (manufacture date) or the
unit's record — as a :class:`Moments`; the clock is the scan's ``now``. Pure: no I/O.

>>> from datetime import date, datetime, timezone
>>> problems = []
>>> test = compile_test({"since_registration": {"at_most": "P7D"}, "warranty": "active"},
...                     lambda *path: "rules.yaml:9:7", {}, None, problems)
>>> facts = Moments(made=date(2025, 1, 10), registered=date(2025, 3, 1),
...                 warranty_start=date(2025, 2, 20), warranty_end=date(2027, 2, 19))
>>> test.why_not(facts, datetime(2025, 3, 5, tzinfo=timezone.utc)) is None
True
>>> test.why_not(facts, datetime(2025, 3, 20, tzinfo=timezone.utc))
'since registration at most P7D: registered 2025-03-01, 19 days ago'
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, NamedTuple

from packaging.version import InvalidVersion, Version

from ext.durations import Duration, parse_duration
from resolver.rules.yaml_source import Problem

#: ``since_<event>`` → the Moments field it reads and how explanations name it
EVENTS: dict[str, tuple[str, str]] = {
    "manufacture": ("made", "made"),
    "registration": ("registered", "registered"),
    "installation": ("installed", "installed"),
    "service": ("serviced", "last serviced"),
    "firmware_update": ("firmware_updated", "firmware updated"),
}
WARRANTY_STATES = ("active", "expired", "none")
#: the `when` keys this module compiles (the rest belong to the compiler)
KEYS = frozenset({"warranty", "firmware", "service_due", "moment"} | {f"since_{e}" for e in EVENTS})


def uses_moments(when: Mapping[str, Any]) -> bool:
    """Does this `when` test moments (a since_* key counts even if its event is unknown)?"""
    return any(key in KEYS or key.startswith("since_") for key in when)


class Moments(NamedTuple):
    """What the moment conditions read about one unit (None: not recorded)."""

    made: date | None = None
    registered: date | None = None
    installed: date | None = None
    serviced: date | None = None  # the last service
    firmware_updated: date | None = None
    firmware: str | None = None
    warranty_start: date | None = None  # None: no warranty (no purchase recorded, no rules)
    warranty_end: date | None = None  # the last covered day
    consumable_due: date | None = None  # the earliest day a consumable's replacement is due


NO_MOMENTS = Moments()


def _at(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _ago(day: date, now: datetime) -> str:
    days = (now.date() - day).days
    return f"{days} day{'s' if days != 1 else ''} ago" if days >= 0 else f"in {-days} days"


class Since(NamedTuple):
    event: str
    at_least: Duration | None
    at_most: Duration | None

    def why_not(self, m: Moments, now: datetime, interval: Duration | None) -> str | None:
        attr, label = EVENTS[self.event]
        day: date | None = getattr(m, attr)
        bounds = " ".join(f"{k} {v}" for k, v in (("at least", self.at_least), ("at most", self.at_most)) if v)
        if day is None:
            return f"since {self.event.replace('_', ' ')} {bounds}: no {self.event.replace('_', ' ')} is recorded"
        start = _at(day)
        if (self.at_least is not None and now < self.at_least.after(start)) or \
                (self.at_most is not None and now > self.at_most.after(start)):
            return f"since {self.event.replace('_', ' ')} {bounds}: {label} {day}, {_ago(day, now)}"
        return None


class Warranty(NamedTuple):
    state: str  # active | expired | none | ending
    within: Duration | None = None

    def why_not(self, m: Moments, now: datetime, interval: Duration | None) -> str | None:
        actual = warranty_state(m, now.date())
        if self.state == "ending":
            assert self.within is not None
            if actual == "active" and m.warranty_end is not None and \
                    _at(m.warranty_end) <= self.within.after(_at(now.date())):
                return None
            return f"warranty ending within {self.within}: it is {actual}" + \
                (f" until {m.warranty_end}" if actual == "active" else "")
        if actual == self.state:
            return None
        return f"warranty {self.state}: it is {actual}" + (f" (ends {m.warranty_end})" if m.warranty_end else "")


class Firmware(NamedTuple):
    at_least: Version | None
    below: Version | None
    text: str

    def why_not(self, m: Moments, now: datetime, interval: Duration | None) -> str | None:
        if m.firmware is None:
            return f"firmware {self.text}: no firmware version is recorded"
        try:
            version = Version(m.firmware)
        except InvalidVersion:
            return f"firmware {self.text}: {m.firmware!r} is not a version number"
        if (self.at_least is not None and version < self.at_least) or (self.below is not None and version >= self.below):
            return f"firmware {self.text}: it is {m.firmware}"
        return None


class ServiceDue(NamedTuple):
    due: bool

    def why_not(self, m: Moments, now: datetime, interval: Duration | None) -> str | None:
        due_on = service_due_on(m, interval)
        is_due = due_on is not None and due_on <= now.date()
        if is_due == self.due:
            return None
        if due_on is None:
            return f"service due {str(self.due).lower()}: nothing to count from (no interval, dates or consumables)"
        return f"service due {str(self.due).lower()}: next due {due_on}"


Condition = Since | Warranty | Firmware | ServiceDue


class MomentTest(NamedTuple):
    """All of these conditions hold (a named moment, or a route's own conditions)."""

    conditions: tuple[Condition, ...]
    interval: Duration | None  # the product's service interval (for service_due)
    names: tuple[str, ...] = ()  # the named moments it came from, for explanations

    def why_not(self, m: Moments, now: datetime) -> str | None:
        for condition in self.conditions:
            why = condition.why_not(m, now, self.interval)
            if why is not None:
                return f"moment {'/'.join(self.names)}: {why}" if self.names else why
        return None

    def holds(self, m: Moments, now: datetime) -> bool:
        return all(c.why_not(m, now, self.interval) is None for c in self.conditions)


def warranty_state(m: Moments, today: date) -> str:
    if m.warranty_start is None or m.warranty_end is None or m.warranty_end < m.warranty_start:
        return "none"
    return "active" if m.warranty_start <= today <= m.warranty_end else ("expired" if today > m.warranty_end else "none")


def service_due_on(m: Moments, interval: Duration | None) -> date | None:
    """When the next service is due: the interval after the last service (or installation,
    registration, manufacture), or a consumable's due day if that comes first."""
    due: date | None = None
    base = m.serviced or m.installed or m.registered or m.made
    if interval is not None and base is not None:
        due = interval.after(base)
    if m.consumable_due is not None and (due is None or m.consumable_due < due):
        due = m.consumable_due
    return due


def describe(m: Moments, now: datetime, interval: Duration | None) -> str:
    """The values the conditions use, as `rules explain` shows them."""
    parts = []
    for attr, label in EVENTS.values():
        day = getattr(m, attr)
        parts.append(f"{label} {day} ({_ago(day, now)})" if day else f"{label} never")
    parts.append(f"firmware {m.firmware or 'unknown'}")
    state = warranty_state(m, now.date())
    parts.append(f"warranty {state}" + (f" until {m.warranty_end}" if m.warranty_end and state != "none" else ""))
    due = service_due_on(m, interval)
    parts.append(f"service due {due}" if due else "service due: unknown")
    return f"moments at {now.date()}: " + "; ".join(parts)


Where = Callable[..., str]


def _duration(value: Any, where: str, problems: list[Problem]) -> Duration | None:
    try:
        return parse_duration(value)
    except ValueError as exc:
        problems.append(Problem(where, str(exc)))
        return None


def _version(value: Any, where: str, problems: list[Problem]) -> Version | None:
    try:
        return Version(str(value))
    except InvalidVersion:
        problems.append(Problem(where, f"{value!r} is not a version number (PEP 440, e.g. 2.1.0)"))
        return None


def compile_conditions(when: Mapping[str, Any], at: Where, problems: list[Problem]) -> list[Condition]:
    """The moment conditions of one `when` (or named moment); problems at their place."""
    out: list[Condition] = []
    for key, value in when.items():
        if key.startswith("since_"):
            event = key[len("since_"):]
            if event not in EVENTS:
                close = difflib.get_close_matches(event, list(EVENTS), n=1)
                problems.append(Problem(at(key), f"{key}: no event {event!r} to count from; known: "
                                        + ", ".join(f"since_{e}" for e in EVENTS)
                                        + (f" (did you mean since_{close[0]}?)" if close else "")))
                continue
            least = _duration(value["at_least"], at(key, "at_least"), problems) if "at_least" in value else None
            most = _duration(value["at_most"], at(key, "at_most"), problems) if "at_most" in value else None
            if least is not None and most is not None and least.after(datetime(2000, 1, 1)) > most.after(datetime(2000, 1, 1)):
                problems.append(Problem(at(key), f"{key}: at_least {least} is longer than at_most {most}: never true"))
            out.append(Since(event, least, most))
        elif key == "warranty":
            if isinstance(value, str):
                out.append(Warranty(value))
            elif (within := _duration(value["ending_within"], at(key, "ending_within"), problems)) is not None:
                out.append(Warranty("ending", within))
        elif key == "firmware":
            least_v = _version(value["at_least"], at(key, "at_least"), problems) if "at_least" in value else None
            below_v = _version(value["below"], at(key, "below"), problems) if "below" in value else None
            if least_v is not None and below_v is not None and least_v >= below_v:
                problems.append(Problem(at(key, "below"), "firmware: below must be above at_least"))
            text = " ".join(f"{k} {value[k]}" for k in ("at_least", "below") if k in value)
            out.append(Firmware(least_v, below_v, text))
        elif key == "service_due":
            out.append(ServiceDue(bool(value)))
    return out


def compile_test(when: Mapping[str, Any], at: Where, named: Mapping[str, MomentTest], interval: Duration | None,
                 problems: list[Problem]) -> MomentTest | None:
    """A route's moment test: its named moments and its own conditions (None: it has none)."""
    conditions: list[Condition] = []
    names: list[str] = []
    if "moment" in when:
        wanted = [when["moment"]] if isinstance(when["moment"], str) else list(when["moment"])
        for name in wanted:
            if name not in named:
                close = difflib.get_close_matches(name, list(named), n=1)
                problems.append(Problem(at("moment"), f"moment {name!r} is not defined for this product"
                                        + (f" (did you mean {close[0]!r}?)" if close else "")
                                        + (f"; defined: {', '.join(named)}" if named else "; define it under moments:")))
                continue
            names.append(name)
            conditions.extend(named[name].conditions)
    conditions.extend(compile_conditions({k: v for k, v in when.items() if k != "moment"}, at, problems))
    if not conditions:
        return None
    if any(isinstance(c, ServiceDue) for c in conditions) and interval is None:
        problems.append(Problem(at("service_due") if "service_due" in when else at("moment"),
                                "service_due without a service_interval on the product counts consumables only",
                                "warning"))
    return MomentTest(tuple(conditions), interval, tuple(names))
