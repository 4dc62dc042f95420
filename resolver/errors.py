"""The resolver's errors: one root, a few kinds, no HTTP.

Everything the resolver refuses on purpose raises a :class:`ResolverError` of the kind
that says what went wrong — the caller's input is malformed, the credential is missing or
does not reach this far, the thing asked for does not exist, it conflicts with what is
there, or the caller must slow down — with the ``field`` at fault and a plain ``reason``.
Domain code picks the kind; ``resolver.problems`` turns any kind (and the twin's, the
serialiser's and the GS1 parser's errors) into problem+json or a page, once, at the edge.

>>> err = Invalid("expected the code from your message", "code")
>>> str(err), err.field, isinstance(err, ResolverError)
('code: expected the code from your message', 'code', True)
"""

from __future__ import annotations


class ResolverError(Exception):
    """Root of every error the resolver raises on purpose."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


class BadRequest(ResolverError):
    """The request itself is malformed: a header, the body's syntax, the path."""


class Unauthenticated(ResolverError):
    """No credential where one is needed, or one that is forged, expired or revoked."""


class Forbidden(ResolverError):
    """A valid credential that does not reach this role, product or unit."""


class NotFound(ResolverError):
    """Nothing of that name: a unit nobody issued, a batch, a file, a pending step."""


class MethodNotAllowed(ResolverError):
    """The resource exists but does not answer this method."""


class Conflict(ResolverError):
    """Refused by what is already there: a stale version, a reused key, a finished step."""


class Gone(ResolverError):
    """It existed and has expired: a code, an offer."""


class PayloadTooLarge(ResolverError):
    """More than a request may carry."""


class UnsupportedMediaType(ResolverError):
    """A body of a type this endpoint does not read."""


class Invalid(ResolverError):
    """Well-formed but not acceptable: a value out of range, an unknown name."""


class TooMany(ResolverError):
    """Over a rate limit; try again in ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: int, field: str | None = None) -> None:
        super().__init__(reason, field)
        self.retry_after = retry_after


class Unavailable(ResolverError):
    """A dependency cannot serve right now; try again in ``retry_after`` seconds."""

    def __init__(self, reason: str, field: str | None = None, retry_after: int = 2) -> None:
        super().__init__(reason, field)
        self.retry_after = retry_after
