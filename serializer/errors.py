"""The serialiser's errors: one root, each naming the input at fault, none carrying HTTP.

The line API and the CLI both report them: ``resolver.problems`` maps each class to a
status once, the CLI prints ``serialink <command>: <field>: <reason>``.

>>> err = MintConflict("request_id", "'l7-0001' was already used for a batch with other parameters")
>>> isinstance(err, MintError), isinstance(err, SerializerError), err.field
(True, True, 'request_id')
"""

from __future__ import annotations


class SerializerError(Exception):
    """Root of every error the serialiser raises on purpose; ``field`` names the input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class MintError(SerializerError):
    """A batch request that cannot be served as asked: a malformed or missing value."""


class MintRefused(MintError):
    """A well-formed request the policy refuses: an unknown profile, a guess ratio broken."""


class MintConflict(MintError):
    """A request that clashes with what exists: a reused request id, two sources of one serial."""


class MintTooLarge(MintError):
    """More than one request may ask for."""


class OutputError(SerializerError):
    """Label files could not be written; nothing half-written is left under a final name."""


class OutputTaken(OutputError):
    """The output directory already holds another batch's files."""


class DiskFull(OutputError):
    """Not enough space for the output (checked before writing, or hit while writing)."""


class KeyStoreError(SerializerError):
    """A key store problem (an unreadable or malformed key record)."""


class SourceConflict(KeyStoreError):
    """Two sources of serials for one GTIN could produce the same serial."""


class KeyRotationRefused(KeyStoreError):
    """The GTIN's key already underlies issued serials."""


class KeyMissing(KeyStoreError):
    """No record for the GTIN and this store may not create one."""


class TemplateError(SerializerError):
    """A ZPL template that cannot be used; ``reason`` says where (file:line) and why."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__("zpl_template", f"{path}:{line}: {reason}")


class ProfileFieldError(SerializerError):
    """A SerialProfile invariant broken by one field (the loader maps it to a line)."""

    def __init__(self, profile: str, field: str, message: str) -> None:
        super().__init__(field, message)
        self.args = (f"profile {profile!r}: {field}: {message}",)

    def __str__(self) -> str:
        return str(self.args[0])


class GuessabilityError(SerializerError):
    """Issuing the requested serials would break the profile's guess ratio limit."""

    def __init__(self, reason: str) -> None:
        super().__init__("count", reason)
        self.args = (reason,)

    def __str__(self) -> str:
        return str(self.args[0])


class ProfileError(SerializerError):
    """A profile file that cannot be used, with every problem's file, line and field."""

    def __init__(self, path: str, problems: list[tuple[int, str, str]]) -> None:
        self.path = path
        self.problems = tuple(sorted(problems))
        text = "\n".join(f"{path}:{line}: {field}: {message}" for line, field, message in self.problems)
        super().__init__(self.problems[0][1] if self.problems else "profiles", text)
        self.args = (text,)

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def line(self) -> int:
        return self.problems[0][0]
