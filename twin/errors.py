"""Errors raised by the twin: each names the field or record at fault.

Callers (the resolver, the serialiser, the owner API) map these onto HTTP answers, so
each class says *what kind* of failure it is and carries the detail a client can act on:

>>> from twin.errors import InvalidInput
>>> err = InvalidInput("event.reason", "must not be empty")
>>> str(err), err.field
('event.reason: must not be empty', 'event.reason')
"""

from __future__ import annotations


class TwinError(Exception):
    """Base class of every error the twin raises on purpose."""


class InvalidInput(TwinError, ValueError):
    """A value given by a caller is malformed; ``field`` names it (dotted path)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class DuplicateSerial(InvalidInput):
    """A serial that is already issued (imported in another batch): it cannot be issued again."""


class UnknownEventType(InvalidInput):
    """An event type the twin does not know; nothing was written."""


class PayloadTooLarge(InvalidInput):
    """An encoded payload exceeds its limit; the twin stores documents up to a bound."""


class IllegalTransition(TwinError):
    """The lifecycle refuses this event in the unit's current state; ``reason`` says why."""

    def __init__(self, event_type: str, state: str | None, reason: str) -> None:
        super().__init__(reason)
        self.event_type = event_type
        self.state = state
        self.reason = reason


class TransferRefused(IllegalTransition):
    """A transfer claim whose code is wrong, expired, or with no offer pending."""


class StaleVersion(TwinError):
    """Optimistic concurrency: the record moved on since the caller read it."""

    def __init__(self, subject: str, expected: int, actual: int) -> None:
        super().__init__(f"{subject}: expected version {expected}, store has {actual}")
        self.subject = subject
        self.expected = expected
        self.actual = actual


class IdempotencyConflict(TwinError):
    """The same request id or idempotency key came back with different parameters."""


class NotFound(TwinError, LookupError):
    """A batch, overlay or unit the caller named does not exist."""


class CorruptRecord(TwinError):
    """A stored record cannot be decoded; ``key`` names it. Other records are unaffected."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"record {key!r} is unreadable: {problem}")
        self.key = key
        self.problem = problem


class UnsafeDurability(TwinError):
    """The backend is configured so that an acknowledged write may be lost in a crash."""


class StoreError(TwinError):
    """The backend failed (connection lost, disk full, …); the write may not have happened."""
