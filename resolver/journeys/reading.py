"""What a caller sees of one unit: the snapshot (record, batch, overlays), the product's
links for its role and language, and the role-scoped view — the API's most frequent read.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from ext import escape
from resolver.access.tokens import Claims
from resolver.errors import Forbidden, NotFound
from resolver.journeys import views
from resolver.journeys.views import CONSUMER_LINKS, Snapshot, link_groups, unknown_unit
from resolver.scan.decide import NO_STORED_LINKS, links_at, usable_links
from resolver.scan.negotiate import language_rank
from twin.overlays import CounterRange, Overlay, covers
from twin.unit import Unit, state_from_batch, unit_from_batch
from twin.warranty import Coverage
from twin.warranty import coverage as warranty_coverage

if TYPE_CHECKING:
    from resolver.services import Services
    from serializer.verify import IssuedMatch

READ_ROLES = ("consumer", "owner", "installer", "technician", "regulator", "manufacturer", "admin")


EXPORT_ROLES = ("regulator", "manufacturer", "admin")


async def snapshot(services: Services, gtin: str, serial: str, *, cached: bool = False) -> Snapshot:
    """The unit as the store and its batch know it, with the overlays that cover it.

    ``cached``: a public read takes the unit's record as the scan path knows it (its
    filter of units that have a record — most never get one — and its cache of records),
    seeing another worker's write to a unit as late as a scan would (the change feed's
    poll, ``changes_poll_seconds``); writes and authenticated reads always read the store.
    """
    unit = await services.lookup.unit(gtin, serial) if cached else await services.store.get_unit(gtin, serial)
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
        return name, {link_type: [entry if link is None else {"href": href, **entry}
                                  for link, entry in links
                                  if link is None or (href := link.href.render(values)) is not None]
                      for link_type, links in plan}
    stored = usable_links(rules, await services.lookup.stored_links(gtin, lot, serial))
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


def coverage(services: Services, unit: Unit) -> Coverage | None:
    return warranty_coverage(services.warranty, unit, services.today()) if services.warranty is not None else None


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
    the resolver remembers its decision plans. When the scan path's filter says the unit
    has no record and the GTIN has no uploaded link data, the view is put together from
    that memo and the batch the serial verifier names, with no store read and no unit
    record built (:func:`_batch_view`); the first such read of a key takes the full way.
    """
    lookup = services.lookup
    presence = lookup.presence
    if presence is not None and (gtin, serial) not in presence:
        data = lookup.cached_gtin_data(gtin)
        if data is not None and not (data.gtin_links or data.lot_links or data.serial_anchors):
            match = await services.serial_verifier.issued_by(gtin, serial)
            if match is not None:
                view = _batch_view(services, data.overlays, match, languages)
                if view is not None:
                    return view
    snap = await known_snapshot(services, gtin, serial, cached=True)
    unit = snap.unit
    if unit.version:
        return await view_of(services, None, snap, languages)
    rules = services.rules.current
    key = (gtin, unit.state, snap.recalled, snap.stolen, unit.lot is not None, languages, services.today())
    remembered = services.memo.views.get(rules, key)
    if remembered is None:
        view = await view_of(services, None, snap, languages)
        base = {**view, "serial": None, "links": None}  # filled per read, in the consumer view's key order
        product = rules.product_for(gtin)
        groups = None
        if product is not None and lookup.no_stored_links(gtin):
            plan = dict(_link_plan(services, product, gtin, "consumer", languages, unit.lot is not None))
            groups = tuple((group, tuple(entry for t in types for entry in plan.get(t, ())))
                           for group, types in CONSUMER_LINKS.items())
        services.memo.views.put(rules, key, (base, groups))
        return view
    _, links = await product_links(services, gtin, serial, unit.lot, "consumer", languages)
    view = remembered[0].copy()
    view["serial"], view["links"] = serial, link_groups(links)
    return view


def _batch_view(services: Services, overlays: tuple[Overlay, ...], match: IssuedMatch,
                languages: tuple[str, ...]) -> dict[str, Any] | None:
    """The consumer view of a unit its batch speaks for, from the memo :func:`public_view`
    fills (None: not remembered yet). The same facts as :func:`snapshot` reads for such a
    unit — the batch's state and lot, the overlays covering the serial — without the
    snapshot; the links chosen once per key (:func:`_link_plan`, grouped as
    :func:`link_groups` lists them), only their hrefs rendered for this serial."""
    gtin, serial, batch = match.gtin, match.serial, match.batch
    lot = batch.lot
    recalled = stolen = False
    for overlay in overlays:
        if overlay.lifted is None and covers(overlay.scope, serial=serial, lot=lot, profile=match.profile,
                                             counter=match.counter):
            recalled = recalled or overlay.kind == "recalled"
            stolen = stolen or overlay.kind == "stolen"
    key = (gtin, state_from_batch(batch), recalled, stolen, lot is not None, languages, services.today())
    remembered = services.memo.views.get(services.rules.current, key)
    if remembered is None or remembered[1] is None:
        return None
    base, groups = remembered
    values = {"01": gtin, "21": serial} if lot is None else {"01": gtin, "21": serial, "10": lot}
    view = base.copy()
    view["serial"] = serial
    view["links"] = {group: [entry if link is None else {"href": href, **entry} for link, entry in plan
                             if link is None or (href := link.href.render(values)) is not None]
                     for group, plan in groups}
    return view


async def view_of(services: Services, claims: Claims | None, snap: Snapshot, languages: tuple[str, ...]) -> dict[str, Any]:
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
