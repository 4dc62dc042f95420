"""What the twin API and the built-in pages share per worker, built on first use.

The app's services (store, unit lookup, rules, serial verifier, token issuer) come from
``resolver.app``; on top of them the journeys need a revocation list every host sees
(wired into the token verifier, so scans honour it too), the rate limiter, the notifier,
the warranty rules and keys derived from the token secret. They are made lazily, on the
first API or page request of a worker; the revocation list itself is built by the app at
startup so scans honour it from the first request.

>>> derive_text(b"k" * 32, "owner-id", "09506000134352", "ABC", "key-1") == derive_text(
...     b"k" * 32, "owner-id", "09506000134352", "ABC", "key-1")
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from starlette.requests import Request

from resolver.journeys import notify
from resolver.access.ratelimit import RateLimiter, limits_from_env
from resolver.access.revocation import RevocationList
from resolver.access.tokens import TokenVerifier

log = logging.getLogger("serialink.resolver.twin")


def derive(secret: bytes, purpose: str, *parts: str) -> bytes:
    """A value only this deployment can compute: HMAC-SHA256 of the parts, per purpose.

    Retries of a write carry the same idempotency key, so anything random a write makes
    (owner ids, transfer codes, token ids) is derived from it instead: the retry makes
    the same thing, and the store's idempotency check sees the same event.
    """
    message = "\x1f".join((purpose, *parts)).encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def derive_text(secret: bytes, purpose: str, *parts: str, length: int = 22) -> str:
    return base64.urlsafe_b64encode(derive(secret, purpose, *parts)).decode().rstrip("=")[:length]


class TwinServices:
    """Per-worker state of the journeys (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        services = app.state.services
        settings = app.state.settings
        self.app = app
        self.services = services
        self.settings = settings
        self.store = services.store
        self.secret = settings.secret()
        self.revocations = getattr(services, "revocations", None) or RevocationList(services.store)
        self.limiter = RateLimiter(services.store, limits_from_env())
        self.notifier = notify.from_settings(settings)
        self.warranty = _warranty_rules(Path(settings.config_dir))
        self.link_plans: dict = {}  # resolver.journeys.actions._link_plan, for one compiled rules object
        self.link_plans_for: Any = None
        self.view_memo: dict = {}  # resolver.journeys.actions.public_view, for one compiled rules object
        self.view_memo_for: Any = None
        if getattr(services, "revocations", None) is None:  # an app without the startup hook
            install(app, TokenVerifier(self.secret, revoked=self.revocations))

    @property
    def lookup(self):
        return self.services.lookup

    @property
    def rules(self):
        return self.services.rules.current

    @property
    def verifier(self):
        return self.services.verifier

    @property
    def issuer(self):
        return self.services.issuer

    def today(self) -> date:
        return datetime.now(timezone.utc).date()


def install(app: Any, verifier: TokenVerifier) -> None:
    """Put the revocation-aware verifier where the scan path and the APIs look for it.

    ``resolver.app`` builds it at startup; this covers an app that does not.
    """
    app.state.services.token_verifier = verifier
    app.state.token_verifier = verifier


def _warranty_rules(config_dir: Path):
    from twin.warranty import load_rules

    path = config_dir / "warranty.yaml"
    if not path.exists():
        log.warning("%s not found: warranty status is not shown", path)
        return None
    return load_rules(path)


def twin(request: Request) -> TwinServices:
    """This worker's TwinServices, made on first use (after the app's lifespan started)."""
    return twin_of(request.app)


def twin_of(app: Any) -> TwinServices:
    current = getattr(app.state, "twin", None)
    if current is None or current.store is not app.state.services.store:
        current = TwinServices(app)
        app.state.twin = current
    return current


def client_address(request: Request) -> str:
    """Where a write came from, for the audit: the peer address as the server saw it."""
    return request.client.host if request.client is not None else "unknown"
