"""The one error type of Serialink's GS1 core.

Every rejection — a malformed URI, a bad check digit, a date that does not
exist, an AI in the wrong place — is a :class:`GS1Error` that names the AI
involved (when there is one), where in the input the problem starts, and the
reason in plain words, so a 400 response or a CLI line can show it as is.

>>> err = GS1Error("the check digit is wrong", ai="01", position=36, code="INCORRECT_CHECK_DIGIT")
>>> str(err)
'AI (01) at position 36: the check digit is wrong'
>>> err.ai, err.position, err.code
('01', 36, 'INCORRECT_CHECK_DIGIT')
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["GS1Error"]


class GS1Error(ValueError):
    """A GS1 syntax or validation failure.

    ``reason`` is plain words; ``ai`` the Application Identifier concerned (or
    None); ``position`` the 0-based index in the input where the problem starts
    (or None); ``code`` a stable machine-readable name (GS1's linter error name
    where a linter failed, otherwise one of ours such as
    ``INVALID_KEY_QUALIFIER_SEQUENCE``).
    """

    def __init__(self, reason: str, *, ai: str | None = None, position: int | None = None,
                 code: str = "INVALID") -> None:
        self.reason = reason
        self.ai = ai
        self.position = position
        self.code = code
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.ai is not None:
            where.append(f"AI ({self.ai})")
        if self.position is not None:
            where.append(f"at position {self.position}")
        return f"{' '.join(where)}: {self.reason}" if where else self.reason

    def __reduce__(  # keep attributes across processes (worker pools)
        self,
    ) -> tuple[Callable[[str, str | None, int | None, str], GS1Error], tuple[str, str | None, int | None, str]]:
        return (_rebuild, (self.reason, self.ai, self.position, self.code))


def _rebuild(reason: str, ai: str | None, position: int | None, code: str) -> GS1Error:
    return GS1Error(reason, ai=ai, position=position, code=code)
