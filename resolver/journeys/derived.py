"""Values only this deployment can compute, and the same ones again on a retried request.

Retries of a write carry the same idempotency key, so anything random a write makes
(owner ids, transfer codes, token ids) is derived from it instead: the retry makes the
same thing, and the store's idempotency check sees the same event.

>>> derive_text(b"k" * 32, "owner-id", "09506000134352", "ABC", "key-1") == derive_text(
...     b"k" * 32, "owner-id", "09506000134352", "ABC", "key-1")
True
>>> len(derive_text(b"k" * 32, "csrf", "token-1"))
22
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def derive(secret: bytes, purpose: str, *parts: str) -> bytes:
    """HMAC-SHA256 of the parts, keyed by the deployment's secret, separated per purpose."""
    message = "\x1f".join((purpose, *parts)).encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def derive_text(secret: bytes, purpose: str, *parts: str, length: int = 22) -> str:
    return base64.urlsafe_b64encode(derive(secret, purpose, *parts)).decode().rstrip("=")[:length]
