"""The journeys on one unit — read, register, confirm, transfer, claim, log an event, recall —
shared by the JSON API (resolver.api.units) and the built-in pages (resolver.pages.routes), so
both refuse and accept exactly the same things.

Every write: needs a scoped credential (or, for the public steps, a rate limit and a
one-time code compared in constant time); carries an idempotency key, which the store
remembers (a retry is answered with what the first attempt did, a reuse with different
content is a 409); may name the version it expects (a stale one is a 409); is audited by
the store with who, when, what and — from here — the client address and the channel;
and invalidates this worker's caches so the next scan sees it (other workers follow the
store's change feed). Errors are domain errors (``resolver.errors`` kinds, the twin's)
with the field at fault; ``resolver.problems`` answers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hashlib
import hmac
import re
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping, NamedTuple

import orjson

from ext import escape
from resolver.errors import BadRequest, Conflict, Forbidden, Gone, Invalid, NotFound
from resolver.scan.decide import NO_STORED_LINKS, links_at
from resolver.scan.negotiate import language_rank
from resolver.access.grants import OWNER_TTL, check_grant, grant_record, sign
from resolver.access.tokens import Claims
from resolver.journeys.derived import derive, derive_text
from resolver.journeys.views import CONSUMER_LINKS, Snapshot, unknown_unit
from twin.errors import IdempotencyConflict, InvalidInput, TransferRefused, TwinError
from twin.events import Actor, Event, check_event, make_event, now_utc
from twin.lifecycle import State
from twin.overlays import CounterRange, GtinScope, LotScope, SerialRange, SerialScope, covers
from twin.ownership import PersonalData, hash_transfer_code
from twin.unit import Unit, unit_from_batch

if TYPE_CHECKING:
    from resolver.services import Services

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as twin.ownership
PENDING_TTL = timedelta(hours=24)
TRANSFER_TTL = timedelta(days=7)
MAX_CODE_ATTEMPTS = 5
REGISTRABLE = frozenset({State.COMMISSIONED, State.SHIPPED, State.SOLD})
_CONTACT = re.compile(r"[^@\s<>]{1,64}@[^@\s<>]{1,190}\.[^@\s<>]{2,63}|\+?[0-9][0-9 ()./-]{5,24}")
_JURISDICTION = re.compile(r"[A-Z]{2,3}(-[A-Z0-9]{1,3})?")

#: who may append which event through the generic events endpoint (registration and
#: transfers have their own endpoints; commissioning and scrapping belong to the line API)
EVENT_ROLES: dict[str, frozenset[str]] = {
    "service": frozenset({"technician", "installer", "manufacturer", "admin"}),
    "firmware": frozenset({"technician", "installer", "manufacturer", "admin"}),
    "start_service": frozenset({"installer", "technician", "manufacturer", "admin"}),
    "end_service": frozenset({"installer", "technician", "manufacturer", "admin"}),
    "end_of_life": frozenset({"owner", "technician", "installer", "manufacturer", "admin"}),
    "report_stolen": frozenset({"owner", "manufacturer", "admin"}),
    "recovered": frozenset({"owner", "manufacturer", "admin"}),
    "ship": frozenset({"manufacturer", "admin"}),
    "sell": frozenset({"manufacturer", "admin"}),
    "recall": frozenset({"manufacturer", "admin"}),
    "recall_lift": frozenset({"manufacturer", "admin"}),
    "dpp": frozenset({"manufacturer", "admin"}),
}
READ_ROLES = ("consumer", "owner", "installer", "technician", "regulator", "manufacturer", "admin")
RECALL_ROLES = ("manufacturer", "admin")
EXPORT_ROLES = ("regulator", "manufacturer", "admin")


class Channel(NamedTuple):
    """Where a write came from, for the audit (and the idempotency key it carries)."""

    client: str
    via: str  # "api" or "page"
    idempotency_key: str

    def audit(self, **extra: Any) -> dict[str, Any]:
        return {"client": self.client[:100], "via": self.via, "idempotency_key": self.idempotency_key, **extra}


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise BadRequest("every write needs an Idempotency-Key header (1-100 characters, no spaces)",
                       "Idempotency-Key")
    if len(key) > 100 or any(c.isspace() for c in key) or not key.isprintable():
        raise BadRequest("expected 1-100 printable characters without spaces", "Idempotency-Key")
    return key


async def rate_check(services: Services, action: str, key: str) -> None:
    """RateLimited (a TooMany) when this key tried ``action`` too often."""
    await services.limiter.check(action, key)


def _format_code(raw: bytes, groups: int) -> str:
    chars = "".join(_ALPHABET[b % 32] for b in raw[: groups * 4])
    return "-".join(chars[i:i + 4] for i in range(0, len(chars), 4))


def _hash_code(code: object, field: str = "code") -> str:
    try:
        return hash_transfer_code(code)  # type: ignore[arg-type]
    except InvalidInput:
        raise Invalid("expected the code from your message", field) from None


# -- reading -------------------------------------------------------------------------------


async def snapshot(services: Services, gtin: str, serial: str, *, cached: bool = False) -> Snapshot:
    """The unit as the store and its batch know it, with the overlays that cover it.

    ``cached``: a public read may trust the scan path's filter of units that have a record
    (most never get one) and skip the store read, seeing another worker's first write to a
    unit as late as a scan would; writes and authenticated reads always read the store.
    """
    presence = services.lookup.presence if cached else None
    unit = None if presence is not None and (gtin, serial) not in presence else await services.store.get_unit(gtin, serial)
    profile = counter = None
    known = True
    gtin_data = services.lookup.cached_gtin_data(gtin) or await services.lookup.gtin_data(gtin)
    overlays = gtin_data.overlays if gtin_data is not None else ()
    if unit is None or (overlays and any(isinstance(o.scope, CounterRange) for o in overlays)):
        match = await services.serial_verifier.issued_by(gtin, serial)
        if match is not None:
            profile, counter = match.profile, match.counter
            if unit is None:
                unit = unit_from_batch(gtin, serial, match.batch)
    if unit is None:
        unit, known = unknown_unit(gtin, serial), False
    active = tuple(o for o in overlays if o.lifted is None and covers(o.scope, serial=serial, lot=unit.lot,
                                                                      profile=profile, counter=counter))
    return Snapshot(unit, known, unit.recalled or any(o.kind == "recalled" for o in active),
                    unit.stolen or any(o.kind == "stolen" for o in active), active)


async def known_snapshot(services: Services, gtin: str, serial: str, *, cached: bool = False) -> Snapshot:
    snap = await snapshot(services, gtin, serial, cached=cached)
    if not snap.known:
        raise NotFound(f"no batch issued serial {serial!r} of GTIN {gtin}: it may not be genuine", "serial")
    return snap


async def product_links(services: Services, gtin: str, serial: str | None, lot: str | None, role: str,
                        languages: tuple[str, ...]) -> tuple[str | None, dict[str, list[dict[str, Any]]]]:
    """The product's name and its links this role may see, best language first, by type
    (the most specific level that has a type wins, as on a scan).

    Which configured links win depends on the product, role, languages and whether there
    is a lot — not on the serial — so the choice is remembered per compiled rules and only
    the hrefs are filled in per request (uploaded link data: chosen afresh every time).
    """
    rules = services.rules.current
    product = rules.product_for(gtin)
    name = product.name if product is not None else None
    values = {"01": gtin}
    if serial is not None:  # None: the product's own links (GTIN and lot level)
        values["21"] = serial
    if lot is not None:
        values["10"] = lot
    if product is not None and services.lookup.no_stored_links(gtin):
        plan = _link_plan(services, product, gtin, role, languages, lot is not None, serial is not None)
        return name, {link_type: [entry if link is None else {"href": link.href.render(values), **entry}
                                  for link, entry in links] for link_type, links in plan}
    stored = await services.lookup.stored_links(gtin, lot, serial)
    return name, {link_type: [{"href": c.href, "title": c.title, "type": link_type,
                               **({"lang": list(c.lang)} if c.lang else {})} for c in chosen]
                  for link_type, chosen in _choose_links(rules, product, stored, role, languages, values).items()}


def _choose_links(rules, product, stored, role: str, languages: tuple[str, ...], values: dict[str, str]) -> dict:
    wanted = languages + ((rules.default_language.lower(),) if rules.default_language else ())
    by_type: dict[str, list] = {}
    for level in ("serial", "lot", "gtin"):
        found: dict[str, list] = {}
        for c in links_at(product, stored, level, None, role, values):
            if c.link_type not in by_type:
                found.setdefault(c.link_type, []).append(c)
        by_type.update(found)
    out: dict[str, list] = {}
    for link_type, candidates in by_type.items():
        if link_type not in SHOWN_LINK_TYPES:
            continue
        ranked = sorted(candidates, key=lambda c: language_rank(c.lang, wanted))
        best = language_rank(ranked[0].lang, wanted)
        out[link_type] = [c for c in ranked if language_rank(c.lang, wanted) == best]
    return out


def _plan_entry(c, link_type: str, values: dict[str, str]) -> tuple:
    entry = {"title": c.title, "type": link_type, **({"lang": list(c.lang)} if c.lang else {})}
    if c.source.level == "gtin":
        return None, {"href": c.source.href.render(values), **entry}
    return c.source, entry


#: the link types views and pages show (resolver.journeys.views.CONSUMER_LINKS): no need to choose others
SHOWN_LINK_TYPES = frozenset(t for types in CONSUMER_LINKS.values() for t in types)


def _link_plan(services: Services, product, gtin: str, role: str, languages: tuple[str, ...], has_lot: bool,
               has_serial: bool = True) -> tuple:
    """The configured links chosen for (GTIN, role, languages, lot or not): remembered, with
    the links that need no serial or lot rendered once. Entries are ``(None, link dict)``
    or ``(Link, the dict without its href)``."""
    rules = services.rules.current
    key = (gtin, role, languages, has_lot, has_serial)
    plan = services.memo.link_plans.get(rules, key)
    if plan is None:
        values = {"01": gtin, **({"21": "X"} if has_serial else {}), **({"10": "L"} if has_lot else {})}
        chosen = _choose_links(rules, product, NO_STORED_LINKS, role, languages, values)
        plan = tuple((link_type, tuple(_plan_entry(c, link_type, values) for c in candidates))
                     for link_type, candidates in chosen.items() if link_type in SHOWN_LINK_TYPES)
        services.memo.link_plans.put(rules, key, plan)
    return plan


def coverage(services: Services, unit: Unit):
    from twin.warranty import coverage as compute

    return compute(services.warranty, unit, services.today()) if services.warranty is not None else None


def is_owner(claims: Claims | None, unit: Unit) -> bool:
    """An owner token speaks for the unit's *current* owner only: after a transfer the old
    owner's tokens see what anyone sees."""
    return (claims is not None and claims.role == "owner" and unit.owner is not None
            and hmac.compare_digest(claims.principal.encode(), unit.owner.encode())
            and claims.allows_unit(unit.gtin, unit.serial))


def dpp_path(gtin: str, serial: str) -> str:
    return f"/v1/units/01/{gtin}/21/{escape(serial)}/dpp"


async def unit_view(services: Services, claims: Claims | None, gtin: str, serial: str,
                    languages: tuple[str, ...]) -> dict[str, Any]:
    """The view of the unit ``claims`` entitle to (None: anonymous, the consumer view)."""
    return await view_of(services, claims, await known_snapshot(services, gtin, serial, cached=claims is None), languages)


async def public_view(services: Services, gtin: str, serial: str, languages: tuple[str, ...]) -> dict[str, Any]:
    """The consumer view of a unit, for anyone — the API's most frequent read.

    A unit without a record of its own is described by its batch, so its view differs from
    its batch-mates' only in the serial and the hrefs of its links: the rest is remembered
    per (product, state, flags, lot or not, languages, day) for the compiled rules, like
    the resolver remembers its decision plans.
    """
    from resolver.journeys.views import link_groups

    snap = await known_snapshot(services, gtin, serial, cached=True)
    unit = snap.unit
    if unit.version:
        return await view_of(services, None, snap, languages)
    rules = services.rules.current
    key = (gtin, unit.state, snap.recalled, snap.stolen, unit.lot is not None, languages, services.today())
    base = services.memo.views.get(rules, key)
    if base is None:
        view = await view_of(services, None, snap, languages)
        services.memo.views.put(rules, key, {k: v for k, v in view.items() if k not in ("serial", "links")})
        return view
    _, links = await product_links(services, gtin, serial, unit.lot, "consumer", languages)
    return {**base, "serial": serial, "links": link_groups(links)}


async def view_of(services: Services, claims: Claims | None, snap: Snapshot, languages: tuple[str, ...]) -> dict[str, Any]:
    from resolver.journeys import views

    unit = snap.unit
    gtin, serial = unit.gtin, unit.serial
    role = "consumer" if claims is None else claims.role
    if role == "owner" and not is_owner(claims, unit):
        raise Forbidden("this token belongs to someone who does not own the unit (any more)")
    kind = views.VIEW_OF_ROLE.get(role)
    if kind is None:
        raise Forbidden(f"role {role!r} has no view of units")
    name, links = await product_links(services, gtin, serial, unit.lot, "manufacturer" if role == "admin" else role, languages)
    cover = coverage(services, unit) if snap.known else None
    if kind == "consumer":
        return views.consumer_view(snap, name, links, cover)
    if kind == "owner":
        events = await services.store.get_events(gtin, serial)
        personal = (await services.store.get_personal_data(gtin, serial)).get(unit.owner)
        return views.owner_view(snap, name, links, cover, events, unit.owner, personal)
    if kind == "technician":
        return views.technician_view(snap, name, links, cover, await services.store.get_events(gtin, serial))
    dpp_href = services.rules.current.root + dpp_path(gtin, serial)
    if kind == "regulator":
        return views.regulator_view(snap, name, links, cover, dpp_href)
    events = await services.store.get_events(gtin, serial)
    scans = await services.store.scan_history(gtin, serial, limit=1000)
    return views.manufacturer_view(snap, name, links, cover, events, scans, dpp_href)


# -- owners: registration --------------------------------------------------------------------


def personal_data(name: object, contact: object) -> PersonalData:
    for field, value in (("name", name), ("contact", contact)):
        if not isinstance(value, str) or not value.strip():
            raise Invalid("required", field)
        if len(value) > 200 or not value.isprintable():
            raise Invalid("at most 200 printable characters", field)
    if not _CONTACT.fullmatch(contact.strip()):  # type: ignore[union-attr]
        raise Invalid("expected an e-mail address or a phone number", "contact")
    return PersonalData(name.strip(), contact.strip())  # type: ignore[union-attr]


def _purchase_date(value: object, today: date) -> str | None:
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
    purchase = _purchase_date(form.get("purchase_date"), services.today())
    jurisdiction = _jurisdiction(form.get("jurisdiction"))
    await rate_check(services, "register", channel.client)
    await rate_check(services, "register-unit", f"{gtin}/{serial}")
    snap = await known_snapshot(services, gtin, serial)
    unit = snap.unit
    if unit.state not in REGISTRABLE:
        reason = "the unit is already registered; ask its owner to transfer it" if unit.owner else \
            f"a unit that is {unit.state} cannot be registered"
        raise Conflict(reason, "state")
    if purchase is None and unit.purchase_date is None:
        raise Invalid("required: no sale is recorded for this unit", "purchase_date")
    pending_id = derive_text(services.secret, "pending", gtin, serial, channel.idempotency_key, length=16)
    digest = hashlib.sha256(orjson.dumps([person.name, person.contact, purchase, jurisdiction])).hexdigest()[:32]
    code = _format_code(derive(services.secret, "registration-code", pending_id), 2)
    existing = await services.store.get_pending(gtin, serial, pending_id)
    if existing is not None:
        if existing["digest"] != digest:
            raise Conflict("this Idempotency-Key was used for another registration", "Idempotency-Key")
        expires = datetime.fromisoformat(existing["expires_at"])
    else:
        expires = datetime.now(timezone.utc).replace(microsecond=0) + PENDING_TTL
        record = {"owner": "o_" + derive_text(services.secret, "owner-id", gtin, serial, pending_id),
                  "name": person.name, "contact": person.contact, "purchase_date": purchase,
                  "jurisdiction": jurisdiction, "code_hash": _hash_code(code), "digest": digest,
                  "expires_at": expires.isoformat(), "used_by": None}
        await services.store.put_pending(gtin, serial, pending_id, record, expires, Actor("consumer", "anonymous"),
                                  audit=channel.audit(pending=pending_id, step="registration:requested"))
    link = f"{unit_page(services.rules.current.root, gtin, serial)}/confirm?p={pending_id}&code={code}"
    from resolver.pages import i18n

    texts = i18n.texts(language)
    product = services.rules.current.product_for(gtin)
    name = product.name if product is not None else None
    await services.notifier.send(_notification("registration", person.contact, language, texts["mail_subject"],
                                        texts["mail_body"].format(product=name or gtin, serial=serial, code=code,
                                                                  link=link, hours=int(PENDING_TTL.total_seconds() // 3600)),
                                        code, link, gtin, serial))
    return {"confirmation": pending_id, "expires_at": expires.isoformat().replace("+00:00", "Z"),
            "sent_to": mask_contact(person.contact), "replayed": existing is not None}


def _notification(*args: Any):
    from resolver.journeys.notify import Notification

    return Notification(*args)


class OwnerGrant(NamedTuple):
    owner: str
    token: str
    token_id: str
    expires_at: int
    unit: Unit
    replayed: bool


async def _owner_token(services: Services, owner: str, gtin: str, serial: str, channel: Channel) -> tuple[str, str, int]:
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
    code_hash = _hash_code(code)
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
    token, token_id, expires = await _owner_token(services, owner, gtin, serial, channel)
    return OwnerGrant(owner, token, token_id, expires, appended.unit, appended.replayed)


# -- owners: transfer ------------------------------------------------------------------------


async def _owned(services: Services, claims: Claims, gtin: str, serial: str) -> Snapshot:
    claims.require(("owner",), gtin, serial)
    snap = await known_snapshot(services, gtin, serial)
    if not is_owner(claims, snap.unit):
        raise Forbidden("only the unit's current owner may do this")
    return snap


async def offer_transfer(services: Services, claims: Claims, gtin: str, serial: str, expected_version: int | None,
                         channel: Channel) -> tuple[str, datetime, Unit, bool]:
    """The owner hands over: a one-time code (shown once) that the new owner claims with."""
    snap = await _owned(services, claims, gtin, serial)
    code = _format_code(derive(services.secret, "transfer-code", gtin, serial, channel.idempotency_key), 4)
    code_hash = _hash_code(code)
    offer = snap.unit.transfer_offer
    if offer is not None and hmac.compare_digest(offer.code_hash, code_hash):
        return code, offer.expires_at, snap.unit, True  # a retry of the offer that is pending
    expires = datetime.now(timezone.utc).replace(microsecond=0) + TRANSFER_TTL
    event = make_event("transfer_offer", Actor("owner", claims.principal), "the owner offered a transfer",
                       code_hash=code_hash, expires_at=expires)
    appended = await _append(services, gtin, serial, event, channel, expected_version, snap.unit)
    return code, expires, appended.unit, appended.replayed


async def cancel_transfer(services: Services, claims: Claims, gtin: str, serial: str, expected_version: int | None,
                          channel: Channel):
    snap = await _owned(services, claims, gtin, serial)
    event = make_event("transfer_cancel", Actor("owner", claims.principal), "the owner cancelled the transfer")
    return await _append(services, gtin, serial, event, channel, expected_version, snap.unit)


async def claim_transfer(services: Services, gtin: str, serial: str, form: Mapping[str, Any],
                         channel: Channel) -> OwnerGrant:
    """The new owner takes over with the code; the previous owner's tokens stop counting."""
    unknown = set(form) - {"code", "name", "contact"}
    if unknown:
        raise Invalid("unknown field", sorted(unknown)[0])
    code_hash = _hash_code(form.get("code"))
    person = personal_data(form.get("name"), form.get("contact"))
    await rate_check(services, "claim", channel.client)
    await rate_check(services, "claim-unit", f"{gtin}/{serial}")
    await known_snapshot(services, gtin, serial)  # a 404 for serials nobody issued
    owner = "o_" + derive_text(services.secret, "owner-id", gtin, serial, "claim", channel.idempotency_key)
    event = make_event("transfer_claim", Actor("owner", owner), "the new owner claimed the unit",
                       code_hash=code_hash, owner=owner)
    try:
        appended = await services.store.append_event(gtin, serial, event, idempotency_key=channel.idempotency_key,
                                              personal=person, audit=channel.audit())
    except TransferRefused as exc:
        raise Invalid(exc.reason, "code") from None
    services.lookup.invalidate(gtin, "unit", serial)
    token, token_id, expires = await _owner_token(services, owner, gtin, serial, channel)
    return OwnerGrant(owner, token, token_id, expires, appended.unit, appended.replayed)


# -- technicians, installers, owners, brands: events ---------------------------------------


def actor_for(claims: Claims) -> Actor:
    role = "manufacturer" if claims.role == "admin" else claims.role
    return Actor(role, claims.principal[:200])


async def _append(services: Services, gtin: str, serial: str, event, channel: Channel, expected_version: int | None,
                  unit: Unit):
    appended = await services.store.append_event(gtin, serial, event, expected_version=expected_version,
                                          idempotency_key=channel.idempotency_key,
                                          origin=unit if unit.version == 0 else None, audit=channel.audit())
    services.lookup.invalidate(gtin, "unit", serial)
    return appended


async def record_event(services: Services, claims: Claims, gtin: str, serial: str, body: Mapping[str, Any],
                       expected_version: int | None, channel: Channel):
    """A service visit, firmware update, installation, end of life, theft report…"""
    event_type = body.get("type")
    roles = EVENT_ROLES.get(event_type) if isinstance(event_type, str) else None
    if roles is None:
        raise Invalid(f"expected one of {', '.join(EVENT_ROLES)}", "type")
    claims.require(roles, gtin, serial)
    unknown = set(body) - {"type", "reason", "where", "data", "expected_version"}
    if unknown:
        raise Invalid("unknown field", sorted(unknown)[0])
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise Invalid("expected an object", "data")
    reason = body.get("reason") or event_type.replace("_", " ")
    snap = await known_snapshot(services, gtin, serial)
    if claims.role == "owner" and not is_owner(claims, snap.unit):
        raise Forbidden("only the unit's current owner may do this")
    try:  # built whole, not from keywords: data may name anything, "where" and "at" included
        event = check_event(Event(event_type, actor_for(claims), now_utc(), reason, body.get("where"), data))
    except InvalidInput as exc:  # the twin says event.data.x / event.reason; the body calls them data.x / reason
        raise Invalid(exc.problem, exc.field.removeprefix("event.")) from None
    return await _append(services, gtin, serial, event, channel, expected_version, snap.unit)


# -- brands: recalls ------------------------------------------------------------------------


def recall_scope(body: Mapping[str, Any]):
    """``lot``, ``serials`` {first, last}, ``counters`` {profile, first, last}, ``serial`` or ``all``."""
    given = [k for k in ("lot", "serials", "counters", "serial", "all") if body.get(k) not in (None, False)]
    if len(given) != 1:
        raise Invalid("name exactly one of lot, serials, counters, serial or all", "scope")
    kind = given[0]
    value = body[kind]
    try:
        if kind == "lot" and isinstance(value, str):
            return LotScope(value)
        if kind == "serial" and isinstance(value, str):
            return SerialScope(value)
        if kind == "serials" and isinstance(value, dict) and set(value) == {"first", "last"}:
            return SerialRange(value["first"], value["last"])
        if kind == "counters" and isinstance(value, dict) and set(value) == {"profile", "first", "last"}:
            return CounterRange(value["profile"], value["first"], value["last"])
        if kind == "all" and value is True:
            return GtinScope()
    except TypeError:
        pass
    raise Invalid({"lot": "expected a lot", "serial": "expected a serial",
                         "serials": "expected {first, last}", "counters": "expected {profile, first, last}",
                         "all": "expected true"}[kind], kind)


async def put_recall(services: Services, claims: Claims, body: Mapping[str, Any], channel: Channel):
    """Recall a lot, a serial or counter range, one serial or a whole GTIN: effective on the next scan."""
    gtin = body.get("gtin")
    if not (isinstance(gtin, str) and len(gtin) == 14 and gtin.isdigit()):
        raise Invalid("expected a 14-digit GTIN", "gtin")
    unknown = set(body) - {"gtin", "lot", "serials", "counters", "serial", "all", "reason"}
    if unknown:
        raise Invalid("unknown field", sorted(unknown)[0])
    claims.require(RECALL_ROLES, gtin)
    scope = recall_scope(body)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("say why (it is shown to people who scan a recalled unit)", "reason")
    try:
        overlay = await services.store.put_overlay(gtin, "recalled", scope, actor_for(claims), reason,
                                            idempotency_key=channel.idempotency_key, audit=channel.audit())
    except IdempotencyConflict as exc:
        raise Conflict(str(exc), "Idempotency-Key") from None
    except InvalidInput as exc:
        raise Invalid(exc.problem, "scope" if exc.field.startswith("overlay.scope") else exc.field) from None
    services.lookup.invalidate(gtin, "overlay", overlay.id)
    return overlay


async def lift_recall(services: Services, claims: Claims, gtin: str, overlay_id: str, reason: object, channel: Channel):
    claims.require(RECALL_ROLES, gtin)
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("say why the recall ends", "reason")
    overlays = {o.id: o for o in await services.store.get_overlays(gtin, include_lifted=True)}
    overlay = overlays.get(overlay_id)
    if overlay is None or overlay.kind != "recalled":
        raise NotFound(f"no recall {overlay_id!r} on GTIN {gtin}", "overlay_id")
    if overlay.lifted is not None:
        if overlay.lifted.reason == reason and overlay.lifted.actor == actor_for(claims):
            return overlay, True  # a retry
        raise Conflict(f"the recall was lifted at {overlay.lifted.at.isoformat()}", "overlay_id")
    lifted = await services.store.lift_overlay(gtin, overlay_id, actor_for(claims), reason, audit=channel.audit())
    services.lookup.invalidate(gtin, "overlay", overlay_id)
    return lifted, False


# -- tokens -----------------------------------------------------------------------------------


async def issue_token(services: Services, claims: Claims, body: Mapping[str, Any], channel: Channel) -> dict[str, Any]:
    record = check_grant(claims, body, int(time.time()))
    token_id = derive_text(services.secret, "token", claims.principal, channel.idempotency_key, length=16)
    digest = hashlib.sha256(orjson.dumps({k: v for k, v in record.items() if k not in ("iat", "exp")}
                                         | {"ttl": record["exp"] - record["iat"]},
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    stored, replayed = await services.store.record_token(token_id, {**record, "digest": digest}, actor_for(claims),
                                                  audit=channel.audit(role=record["role"]))
    if replayed and stored.get("digest") != digest:
        raise Conflict("this Idempotency-Key was used to issue another token", "Idempotency-Key")
    return {"token": sign(services.secret, token_id, stored), "token_id": token_id, "role": stored["role"],
            "principal": stored["principal"], "expires_at": _epoch_iso(stored["exp"]), "replayed": replayed,
            "scope": {"gtins": stored["gtins"], "prefixes": stored["prefixes"], "all_products": stored["all"],
                      "sites": stored["sites"], "lines": stored["lines"],
                      "unit": {"gtin": stored["unit"][0], "serial": stored["unit"][1]} if stored["unit"] else None}}


def _epoch_iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


async def revoke_token(services: Services, claims: Claims, token_id: str, reason: object, channel: Channel) -> dict[str, Any]:
    """Revoke a token by id: admins any, others the tokens they issued, anyone their own."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000:
        raise Invalid("say why (1-1000 characters)", "reason")
    record = await services.store.get_token(token_id)
    own = hmac.compare_digest(claims.token_id.encode(), token_id.encode())
    if record is None and not own:
        raise NotFound(f"no token {token_id!r} was issued here", "token_id")
    if not (own or claims.role == "admin" or record.get("issued_by") == claims.principal):
        raise Forbidden("only its issuer, its holder or an admin may revoke a token", "token_id")
    expires = record["exp"] if record is not None else claims.expires
    newly = await services.store.revoke_token(token_id, datetime.fromtimestamp(expires, timezone.utc),
                                       actor_for(claims) if claims.role != "owner" else Actor("owner", claims.principal),
                                       reason, audit=channel.audit())
    services.revocations.add(token_id, float(expires))
    return {"token_id": token_id, "revoked": True, "replayed": not newly}
