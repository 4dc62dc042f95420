"""Ownership: pseudonymous owner ids, personal data kept apart, two-step transfer codes.

The public unit record knows its owner only by an opaque id; name and contact live in a
separate personal-data record that scanners never see and that can be erased on request
without rewriting a single event. A transfer is a hand-over: the current owner gets a
one-time code, the new owner claims with it; the store keeps only the code's hash.

>>> from datetime import datetime, timedelta, timezone
>>> from twin.ownership import issue_transfer_code, hash_transfer_code, check_claim
>>> now = datetime(2025, 6, 1, tzinfo=timezone.utc)
>>> code, offer = issue_transfer_code(now, ttl=timedelta(days=7))
>>> len(code), offer.code_hash == hash_transfer_code(code.lower())
(19, True)
>>> check_claim(offer, hash_transfer_code(code), now + timedelta(days=1))
>>> check_claim(offer, hash_transfer_code(code), now + timedelta(days=8))
Traceback (most recent call last):
...
twin.errors.TransferRefused: the transfer code expired at 2025-06-08T00:00:00+00:00
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from twin.errors import InvalidInput, TransferRefused
from twin.identity import check_text

# Crockford base32 without I, L, O, U: codes are read aloud and retyped.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DEFAULT_TRANSFER_TTL = timedelta(days=7)
MAX_PERSONAL_FIELD = 200


class TransferOffer(NamedTuple):
    """A pending hand-over: the SHA-256 of the code and when it stops working."""

    code_hash: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PersonalData:
    """Who an owner is. Stored apart from the unit; never part of what a scan reads."""

    name: str
    contact: str  # e-mail address or phone number, as the owner gave it

    def __post_init__(self) -> None:
        check_text(self.name, "personal.name", max_len=MAX_PERSONAL_FIELD)
        check_text(self.contact, "personal.contact", max_len=MAX_PERSONAL_FIELD)


def new_owner_id() -> str:
    """An opaque, unguessable owner id (128 bits); the public record carries only this."""
    return "o_" + secrets.token_urlsafe(16)


def issue_transfer_code(now: datetime, ttl: timedelta = DEFAULT_TRANSFER_TTL) -> tuple[str, TransferOffer]:
    """A fresh 80-bit code ``XXXX-XXXX-XXXX-XXXX`` and the offer to record (hash only).

    80 random bits make a plain SHA-256 safe to store: there is nothing to brute-force
    that a slow KDF would protect. The code itself is shown to the owner once.
    """
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    code = "-".join(raw[i : i + 4] for i in range(0, 16, 4))
    return code, TransferOffer(hash_transfer_code(code), now + ttl)


def hash_transfer_code(code: str) -> str:
    """SHA-256 of the code, ignoring case, spaces and dashes (people retype codes)."""
    if not isinstance(code, str):
        raise InvalidInput("transfer_code", "expected a string")
    norm = "".join(code.split()).replace("-", "").upper()
    if not norm or len(norm) > 64:
        raise InvalidInput("transfer_code", "expected the code the current owner was given")
    return hashlib.sha256(norm.encode()).hexdigest()


def check_claim(offer: TransferOffer | None, code_hash: str, at: datetime) -> None:
    """Refuse a claim with no pending offer, a wrong code, or after expiry."""
    if offer is None:
        raise TransferRefused("transfer_claim", None, "no transfer is pending for this unit")
    if not hmac.compare_digest(offer.code_hash, code_hash):
        raise TransferRefused("transfer_claim", None, "the transfer code does not match")
    if at > offer.expires_at:
        raise TransferRefused("transfer_claim", None, f"the transfer code expired at {offer.expires_at.isoformat()}")
