"""The first owner registers: step 1 keeps the request for a day and sends a one-time
code to the contact; step 2, the code comes back and the unit is registered. Nothing
is registered before; the personal data waits in the pending record, which expires with it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from ext import escape
from resolver import i18n
from resolver.access.grants import OWNER_TTL, grant_record, sign
from resolver.errors import Conflict, Gone, Invalid, NotFound
from resolver.journeys.channel import Channel, format_code, hash_code, rate_check
from resolver.journeys.derived import derive, derive_text
from resolver.journeys.notify import Notification
from resolver.journeys.reading import known_snapshot
from twin.events import Actor, make_event
from twin.lifecycle import State
from twin.ownership import PersonalData
from twin.unit import Unit

if TYPE_CHECKING:
    from resolver.services import Services

PENDING_TTL = timedelta(hours=24)


MAX_CODE_ATTEMPTS = 5


REGISTRABLE = frozenset({State.COMMISSIONED, State.SHIPPED, State.SOLD})


_CONTACT = re.compile(r"[^@\s<>]{1,64}@[^@\s<>]{1,190}\.[^@\s<>]{2,63}|\+?[0-9][0-9 ()./-]{5,24}")


_JURISDICTION = re.compile(r"[A-Z]{2,3}(-[A-Z0-9]{1,3})?")


def personal_data(name: object, contact: object) -> PersonalData:
    for field, value in (("name", name), ("contact", contact)):
        if not isinstance(value, str) or not value.strip():
            raise Invalid("required", field)
        if len(value) > 200 or not value.isprintable():
            raise Invalid("at most 200 printable characters", field)
    if not _CONTACT.fullmatch(contact.strip()):  # type: ignore[union-attr]
        raise Invalid("expected an e-mail address or a phone number", "contact")
    return PersonalData(name.strip(), contact.strip())  # type: ignore[union-attr]


def check_purchase_date(value: object, today: date) -> str | None:
    """A purchase date as given (None when left out): a past day, YYYY-MM-DD."""
    if value in (None, ""):
        return None
    try:
        day = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise Invalid("expected a date YYYY-MM-DD", "purchase_date")
    if day > today or day.year < 1990:
        raise Invalid("the purchase date must be a past date", "purchase_date")
    return day.isoformat()


def _jurisdiction(value: object) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _JURISDICTION.fullmatch(value):
        raise Invalid("expected a code like EU, DE or US", "jurisdiction")
    return value


def mask_contact(contact: str) -> str:
    """Enough to recognise one's own address, not to read someone else's."""
    if "@" in contact:
        local, _, domain = contact.partition("@")
        return f"{local[:1]}***@{domain}"
    return "***" + contact[-3:]


def unit_page(root: str, gtin: str, serial: str) -> str:
    return f"{root}/u/01/{gtin}/21/{escape(serial)}"


async def refuse_uncommissioned(services: Services, unit: Unit) -> None:
    """A unit with no record of its own, of a line-tracked batch, is registrable only once
    the line commissioned it: a label never verified, rejected or never used is not a
    product anyone owns (409 naming why). A unit with a record: its record speaks."""
    if unit.version:
        return
    match = await services.serial_verifier.issued_by(unit.gtin, unit.serial)
    if match is None or match.counter is None:
        return
    view = await services.lookup.lines.get(match.batch.id)
    if view is None:
        return
    state = view.state_of(match.counter - match.batch.start)
    if state == "not_commissioned":
        raise Conflict("the unit is not_commissioned: the line never reported its label verified, so it cannot "
                       "be registered", "state")
    if state == "decommissioned":
        raise Conflict("the unit is decommissioned: its label was rejected or scrapped at the line, so it cannot "
                       "be registered", "state")


async def request_registration(services: Services, gtin: str, serial: str, form: Mapping[str, Any], channel: Channel,
                               language: str) -> dict[str, Any]:
    """First owner, step 1: keep the request for a day and send a one-time code to the contact.

    Nothing is registered until the code comes back (step 2, :func:`confirm_registration`).
    The personal data waits in the pending record, which expires with it.
    """
    unknown = set(form) - {"name", "contact", "purchase_date", "jurisdiction"}
    if unknown:
        raise Invalid("unknown field", sorted(unknown)[0])
    person = personal_data(form.get("name"), form.get("contact"))
    purchase = check_purchase_date(form.get("purchase_date"), services.today())
    jurisdiction = _jurisdiction(form.get("jurisdiction"))
    await rate_check(services, "register", channel.client)
    await rate_check(services, "register-unit", f"{gtin}/{serial}")
    snap = await known_snapshot(services, gtin, serial)
    unit = snap.unit
    await refuse_uncommissioned(services, unit)
    if unit.state not in REGISTRABLE:
        reason = "the unit is already registered; ask its owner to transfer it" if unit.owner else \
            f"a unit that is {unit.state} cannot be registered"
        raise Conflict(reason, "state")
    if purchase is None and unit.purchase_date is None:
        raise Invalid("required: no sale is recorded for this unit", "purchase_date")
    pending_id = derive_text(services.secret, "pending", gtin, serial, channel.idempotency_key, length=16)
    digest = hashlib.sha256(orjson.dumps([person.name, person.contact, purchase, jurisdiction])).hexdigest()[:32]
    code = format_code(derive(services.secret, "registration-code", pending_id), 2)
    existing = await services.store.get_pending(gtin, serial, pending_id)
    if existing is not None:
        if existing["digest"] != digest:
            raise Conflict("this Idempotency-Key was used for another registration", "Idempotency-Key")
        expires = datetime.fromisoformat(existing["expires_at"])
    else:
        expires = datetime.now(UTC).replace(microsecond=0) + PENDING_TTL
        record = {"owner": "o_" + derive_text(services.secret, "owner-id", gtin, serial, pending_id),
                  "name": person.name, "contact": person.contact, "purchase_date": purchase,
                  "jurisdiction": jurisdiction, "code_hash": hash_code(code), "digest": digest,
                  "expires_at": expires.isoformat(), "used_by": None}
        await services.store.put_pending(gtin, serial, pending_id, record, expires, Actor("consumer", "anonymous"),
                                  audit=channel.audit(pending=pending_id, step="registration:requested"))
    link = f"{unit_page(services.rules.current.root, gtin, serial)}/confirm?p={pending_id}&code={code}"
    texts = i18n.texts(language)
    product = services.rules.current.product_for(gtin)
    name = product.name if product is not None else None
    await services.notifier.send(Notification("registration", person.contact, language, texts["mail_subject"],
                                        texts["mail_body"].format(product=name or gtin, serial=serial, code=code,
                                                                  link=link, hours=int(PENDING_TTL.total_seconds() // 3600)),
                                        code, link, gtin, serial))
    return {"confirmation": pending_id, "expires_at": expires.isoformat().replace("+00:00", "Z"),
            "sent_to": mask_contact(person.contact), "replayed": existing is not None}


class OwnerGrant(NamedTuple):
    owner: str
    token: str
    token_id: str
    expires_at: int
    unit: Unit
    replayed: bool


async def owner_token(services: Services, owner: str, gtin: str, serial: str, channel: Channel) -> tuple[str, str, int]:
    token_id = derive_text(services.secret, "owner-token", owner, channel.idempotency_key, length=16)
    record = grant_record(owner, "owner", issued=int(time.time()), ttl=OWNER_TTL, gtins=[gtin], unit=(gtin, serial),
                          issued_by="serialink")
    stored, _ = await services.store.record_token(token_id, record, Actor("system", "serialink"),
                                          audit=channel.audit(step="owner-token"))
    return sign(services.secret, token_id, stored), token_id, stored["exp"]


async def confirm_registration(services: Services, gtin: str, serial: str, pending_id: object, code: object,
                               channel: Channel) -> OwnerGrant:
    """First owner, step 2: the code from the message makes the registration happen."""
    if not isinstance(pending_id, str) or not 8 <= len(pending_id) <= 40:
        raise Invalid("expected the confirmation id the registration answered with", "confirmation")
    code_hash = hash_code(code)
    await rate_check(services, "confirm", channel.client)
    pending = await services.store.get_pending(gtin, serial, pending_id)
    if pending is None:
        raise NotFound("no registration is waiting for this confirmation: it expired or the link is wrong",
                       "confirmation")
    if pending["used_by"] is not None and pending["used_by"] != channel.idempotency_key:
        raise Conflict("this code was already used: the unit is registered", "code")
    if pending["attempts"] >= MAX_CODE_ATTEMPTS:
        raise Gone("too many wrong codes: start the registration again", "code")
    if not hmac.compare_digest(pending["code_hash"], code_hash):
        attempts = await services.store.fail_pending(gtin, serial, pending_id)
        left = MAX_CODE_ATTEMPTS - attempts
        if left <= 0:
            raise Gone("too many wrong codes: start the registration again", "code")
        raise Invalid(f"the code does not match ({left} tries left)", "code")
    snap = await known_snapshot(services, gtin, serial)
    await refuse_uncommissioned(services, snap.unit)
    owner = pending["owner"]
    data = {"owner": owner, "purchase_date": pending["purchase_date"], "jurisdiction": pending["jurisdiction"]}
    event = make_event("register", Actor("owner", owner), "registered by the owner", **data)
    appended = await services.store.append_event(
        gtin, serial, event, idempotency_key=channel.idempotency_key,
        origin=snap.unit if snap.unit.version == 0 else None,
        personal=PersonalData(pending["name"], pending["contact"]), audit=channel.audit(pending=pending_id))
    services.lookup.invalidate(gtin, "unit", serial)
    if pending["used_by"] is None:
        await services.store.put_pending(gtin, serial, pending_id, {**pending, "used_by": channel.idempotency_key},
                                  datetime.fromisoformat(pending["expires_at"]), Actor("owner", owner),
                                  audit=channel.audit(pending=pending_id, step="registration:confirmed"))
    token, token_id, expires = await owner_token(services, owner, gtin, serial, channel)
    return OwnerGrant(owner, token, token_id, expires, appended.unit, appended.replayed)
