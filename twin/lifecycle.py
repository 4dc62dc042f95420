"""The lifecycle state machine: which event may happen in which state, and where it leads.

``commissioned → shipped → sold → registered ⇄ in_service → end_of_life``, with
``decommissioned`` for labels scrapped before they left the plant. Recalled and stolen are
flags (overlays), not states: a stolen unit is still, say, ``sold``.

>>> from twin.lifecycle import State, next_state
>>> next_state(None, "commission")
<State.COMMISSIONED: 'commissioned'>
>>> next_state(State.REGISTERED, "start_service")
<State.IN_SERVICE: 'in_service'>
>>> next_state(State.SOLD, "ship")
Traceback (most recent call last):
...
twin.errors.IllegalTransition: cannot ship a unit that is sold; ship needs commissioned

Skipping forward is allowed where the step before is often not recorded per unit (a batch
is shipped as a whole, a sale happens at a till that reports nothing): ``sell`` from
``commissioned``, ``register`` from ``commissioned`` or ``shipped``. Nothing goes backwards
except ``in_service → registered``, and nothing leaves a terminal state.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from twin.errors import IllegalTransition


class State(StrEnum):
    COMMISSIONED = "commissioned"
    SHIPPED = "shipped"
    SOLD = "sold"
    REGISTERED = "registered"
    IN_SERVICE = "in_service"
    END_OF_LIFE = "end_of_life"
    DECOMMISSIONED = "decommissioned"


#: Stable small codes for the stored record (never renumber; append new states).
STATE_CODES: dict[State, int] = {s: i for i, s in enumerate(State)}
STATES_BY_CODE: tuple[State, ...] = tuple(State)

TERMINAL = frozenset({State.END_OF_LIFE, State.DECOMMISSIONED})
LIVE = frozenset(State) - TERMINAL
_ALL = frozenset(State)


class Rule(NamedTuple):
    """``from_states``: where the event may happen (``None`` in it: the unit has no record);
    ``to``: the state it leads to, ``None`` to stay put."""

    from_states: frozenset[State | None]
    to: State | None


C, SH, SO, R, IS = State.COMMISSIONED, State.SHIPPED, State.SOLD, State.REGISTERED, State.IN_SERVICE

RULES: dict[str, Rule] = {
    "commission": Rule(frozenset({None}), C),
    "decommission": Rule(frozenset({C, SH}), State.DECOMMISSIONED),
    "ship": Rule(frozenset({C}), SH),
    "sell": Rule(frozenset({C, SH}), SO),
    "register": Rule(frozenset({C, SH, SO}), R),
    "start_service": Rule(frozenset({R}), IS),
    "end_service": Rule(frozenset({IS}), R),
    "service": Rule(frozenset({SO, R, IS}), None),
    "firmware": Rule(LIVE, None),
    "transfer_offer": Rule(frozenset({R}), None),
    "transfer_cancel": Rule(frozenset({R}), None),
    "transfer_claim": Rule(frozenset({R}), None),
    "end_of_life": Rule(LIVE, State.END_OF_LIFE),
    "report_stolen": Rule(LIVE, None),
    "recovered": Rule(LIVE, None),
    "recall": Rule(_ALL, None),
    "recall_lift": Rule(_ALL, None),
    # The DPP must outlive the product: recyclers read it after end of life.
    "dpp": Rule(_ALL, None),
    # Installing records facts (site, date, installer) without moving the state: a unit is
    # often fitted before anyone registers it, and may be refitted after a move.
    "install": Rule(frozenset({C, SH, SO, R, IS}), None),
    # Support sessions happen to units in use: an unregistered one too (the owner calls first).
    "support": Rule(LIVE, None),
}

_ORDER = {s: i for i, s in enumerate(State)}


def _names(states: frozenset[State | None]) -> str:
    named = sorted((s for s in states if s is not None), key=_ORDER.__getitem__)
    parts = [str(s) for s in named] + (["no record"] if None in states else [])
    return " or ".join(parts)


def next_state(state: State | None, event_type: str) -> State:
    """The state after ``event_type`` happens in ``state`` (``None``: no record yet).

    Raises IllegalTransition with a sentence a person can act on. Callers validate the
    event type first (twin.events); an unknown type here is a programming error.
    """
    rule = RULES[event_type]
    if state not in rule.from_states:
        where = "that has no record" if state is None else f"that is {state}"
        raise IllegalTransition(
            event_type, state, f"cannot {event_type} a unit {where}; {event_type} needs {_names(rule.from_states)}"
        )
    if rule.to is not None:
        return rule.to
    # A rule that stays put never starts from "no record": only commission does, and it leads to a state.
    assert state is not None, f"RULES[{event_type!r}] stays put but allows a unit with no record"
    return state
