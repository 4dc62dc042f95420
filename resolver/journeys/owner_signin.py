"""An owner signs in on any device: a one-time code goes to the contact registered for the
unit, and typing it here starts an owner session for that unit on this device.

The visitor types the contact they registered with. Whether it matches or not, the answer
is the same ("if this is the registered contact, a code is on its way"), a pending record
is kept and the code page behaves the same, so nobody learns whether a contact is
registered; the message is sent off the request path, so the answer takes as long either
way. Codes last 15 minutes, lock after five wrong tries, and both steps are rate-limited
per client address (and, for sending, per unit) in the store's shared counters.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from resolver import i18n
from resolver.errors import Conflict, Gone, Invalid, NotFound
from resolver.journeys.channel import Channel, format_code, hash_code, rate_check
from resolver.journeys.derived import derive_text
from resolver.journeys.notify import Notification
from resolver.journeys.reading import known_snapshot
from resolver.journeys.registration import OwnerGrant, owner_token, unit_page
from twin.events import Actor

if TYPE_CHECKING:
    from resolver.services import Services

log = logging.getLogger("serialink.resolver.signin")

CODE_TTL = timedelta(minutes=15)
MAX_TRIES = 5
KIND = "owner-signin"
_sending: set[asyncio.Task[None]] = set()  # messages on their way (kept so they are not collected)


def same_contact(given: str, registered: str) -> bool:
    """E-mail addresses compare without case, phone numbers by their digits."""
    a, b = given.strip(), registered.strip()
    if "@" in a or "@" in b:
        return hmac.compare_digest(a.lower().encode(), b.lower().encode())
    digits_a, digits_b = "".join(c for c in a if c.isdigit()), "".join(c for c in b if c.isdigit())
    return len(digits_a) >= 6 and hmac.compare_digest(digits_a.encode(), digits_b.encode())


def _contact(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("required", "contact")
    if len(value) > 200 or not value.isprintable():
        raise Invalid("at most 200 printable characters", "contact")
    return value.strip()


async def _send(services: Services, notification: Notification) -> None:
    try:
        await services.notifier.send(notification)
    except Exception:  # the visitor's answer does not depend on it; the operator's log does
        log.exception("could not send an owner sign-in code for %s/%s", notification.gtin, notification.serial)


async def request_code(services: Services, gtin: str, serial: str, contact: object, channel: Channel,
                       language: str) -> str:
    """Keep a sign-in attempt for 15 minutes and, if ``contact`` is the registered one, send
    it a code. The pending id, the same answer in every case."""
    given = _contact(contact)
    await rate_check(services, "owner-signin", channel.client)
    await rate_check(services, "owner-signin-unit", f"{gtin}/{serial}")
    snap = await known_snapshot(services, gtin, serial)
    unit = snap.unit
    if unit.owner is None:  # public on the unit page already: nothing to enumerate
        raise Conflict("this product is not registered yet; register it first", "state")
    pending_id = derive_text(services.secret, KIND, gtin, serial, channel.idempotency_key, length=22)
    if await services.store.get_pending(gtin, serial, pending_id) is not None:
        return pending_id  # a repeated form: one code, one message
    personal = (await services.store.get_personal_data(gtin, serial)).get(unit.owner)
    match = personal is not None and same_contact(given, personal.contact)
    code = format_code(secrets.token_bytes(8), 2)
    expires = datetime.now(UTC).replace(microsecond=0) + CODE_TTL
    record = {"kind": KIND, "owner": unit.owner if match else None, "code_hash": hash_code(code),
              "expires_at": expires.isoformat(), "used_by": None}
    await services.store.put_pending(gtin, serial, pending_id, record, expires, Actor("consumer", "anonymous"),
                                     audit=channel.audit(pending=pending_id, step="owner-signin:requested"))
    if match and personal is not None:
        texts = i18n.texts(language)
        product = services.rules.current.product_for(gtin)
        link = unit_page(services.rules.current.root, gtin, serial) + f"/signin/code?p={pending_id}"
        text = texts["signin_mail_body"].format(product=product.name if product else gtin, serial=serial, code=code,
                                                minutes=int(CODE_TTL.total_seconds() // 60))
        task = asyncio.create_task(_send(services, Notification("owner-signin", personal.contact, language,
                                                                texts["signin_mail_subject"], text, code, link,
                                                                gtin, serial)))
        _sending.add(task)
        task.add_done_callback(_sending.discard)
    return pending_id


async def confirm_code(services: Services, gtin: str, serial: str, pending_id: object, code: object,
                       channel: Channel) -> OwnerGrant:
    """The code from the message: an owner session for this unit, or a refusal that says
    only that the code does not match (never whether a contact was registered)."""
    if not isinstance(pending_id, str) or not 8 <= len(pending_id) <= 40:
        raise NotFound("no sign-in is waiting here: ask for a new code", "code")
    code_hash = hash_code(code)
    await rate_check(services, "owner-code", channel.client)
    pending = await services.store.get_pending(gtin, serial, pending_id)
    if pending is None or pending.get("kind") != KIND:
        raise Gone("the code has expired: ask for a new one", "code")
    if pending["used_by"] is not None and pending["used_by"] != channel.idempotency_key:
        raise Gone("this code was already used: ask for a new one", "code")
    if pending["attempts"] >= MAX_TRIES:
        raise Gone("too many wrong codes: ask for a new one", "code")
    snap = await known_snapshot(services, gtin, serial)
    owner = pending["owner"]
    if owner is None or owner != snap.unit.owner or not hmac.compare_digest(pending["code_hash"], code_hash):
        attempts = await services.store.fail_pending(gtin, serial, pending_id)
        left = MAX_TRIES - attempts
        if left <= 0:
            raise Gone("too many wrong codes: ask for a new one", "code")
        raise Invalid(f"the code does not match ({left} tries left)", "code")
    if pending["used_by"] is None:
        await services.store.put_pending(gtin, serial, pending_id, {**pending, "used_by": channel.idempotency_key},
                                         datetime.fromisoformat(pending["expires_at"]), Actor("owner", owner),
                                         audit=channel.audit(pending=pending_id, step="owner-signin:confirmed"))
    token, token_id, expires = await owner_token(services, owner, gtin, serial, channel)
    return OwnerGrant(owner, token, token_id, expires, snap.unit, False)


def transferred_on(events: Any, principal: str) -> datetime | None:
    """When ``principal`` last stopped owning the unit (the claim that took it over)."""
    owner, when = None, None
    for event in events:
        if event.type in ("register", "transfer_claim"):
            new = event.data.get("owner")
            if owner == principal and new != principal:
                when = event.at
            owner = new
    return when
