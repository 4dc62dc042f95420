"""The routing decision: a pure function from (rules, scan, role, unit facts, preferences) to an answer.

No I/O here: the caller has already parsed the URI, established the role, looked up the
unit's state and any stored link data. The same function answers live scans,
``serialink rules explain`` and ``serialink rules diff``, so what ops see is what runs.

>>> from ext import parse
>>> from resolver.scan.negotiate import Preferences
>>> from resolver.rules.compiler import load_rules, default_rules_file
>>> rules = load_rules(default_rules_file())
>>> dl = parse("https://id.example.com/01/09506000134352/21/A1B2C3")
>>> prefs = Preferences(("de-de",), None, ())
>>> d = decide(rules, dl, "consumer", UnitFacts("sold"), ScanRequest(None, prefs, 0))
>>> d.status, d.href, d.route
(307, 'https://www.example.com/de/registrieren/09506000134352/A1B2C3', 'unregistered units invite the owner to register')
>>> decide(rules, dl, "consumer", UnitFacts("sold", recalled=True), ScanRequest("gs1:pip", prefs, 0)).link.link_type
'gs1:recallStatus'
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple, TypeVar

from ext.dl import DigitalLink
from resolver.rules.compiler import FAULT, CompiledRules, Link, Product, Route
from resolver.rules.linktypes import DEFAULT_LINK, DEFAULT_LINK_MULTI
from resolver.rules.moments import NO_MOMENTS, Moments, describe
from resolver.scan.negotiate import Preferences, context_rank, language_rank, media_rank
from twin.links import LinkRecord

LEVELS = ("serial", "lot", "gtin")
DEFAULT_TYPES = frozenset({DEFAULT_LINK, DEFAULT_LINK_MULTI})


class UnitFacts(NamedTuple):
    """What the decision knows about the scanned unit."""

    state: str  # a lifecycle state, 'unknown' (no batch issued it) or 'unserialised' (no serial)
    recalled: bool = False
    stolen: bool = False
    lot: str | None = None  # named by the scan, or carried by the unit's batch
    expiry: str | None = None  # YYMMDD, from the scan or the batch
    source: str = "scan"  # where the facts came from: record, batch, import, none, cache…
    moments: Moments | None = None  # the unit's dates, firmware, warranty (for moment conditions)
    suspect: bool = False  # clone detection flagged the unit (a `suspect` overlay)


class StoredLinks(NamedTuple):
    serial: Sequence[LinkRecord] = ()
    lot: Sequence[LinkRecord] = ()
    gtin: Sequence[LinkRecord] = ()


NO_STORED_LINKS = StoredLinks()


def usable_links(rules: CompiledRules, stored: StoredLinks) -> StoredLinks:
    """The stored links whose href passes these rules' target check (uploads are checked
    when written; this also drops links written before the allow-list was tightened)."""
    ok = rules.target_ok
    if all(ok(rec.href) for level in stored for rec in level):
        return stored
    return StoredLinks(*(tuple(rec for rec in level if ok(rec.href)) for level in stored))


class ScanRequest(NamedTuple):
    link_type: str | None  # normalised requested linkType; 'linkset' for the linkset; None: none
    prefs: Preferences
    now_ms: int


class Candidate(NamedTuple):
    """A link ready to answer with: href filled in."""

    link_type: str
    href: str
    title: str
    lang: tuple[str, ...]
    media: str | None
    context: tuple[str, ...]
    level: str
    origin: str  # where it was configured: file:line, or 'uploaded'
    source: Link | Route | None = None  # what it was rendered from (None: uploaded link data)


class Decision(NamedTuple):
    status: int  # 307 redirect, 300 multiple choices, 404 not found, 200 linkset
    href: str | None = None
    link: Candidate | None = None
    candidates: tuple[Candidate, ...] = ()
    route: str | None = None
    level: str | None = None
    reason: str | None = None
    trace: tuple[str, ...] = ()


class Trace:
    """Why a decision went where it did: kept for ``explain``, free for live scans.

    Messages are formatted lazily, logging style, so a live scan pays one call per step
    and never builds the string.
    """

    __slots__ = ("lines",)

    def __init__(self, on: bool) -> None:
        self.lines: list[str] | None = [] if on else None

    def __bool__(self) -> bool:
        return self.lines is not None

    def add(self, message: str, *args: object) -> None:
        if self.lines is not None:
            self.lines.append(message % args if args else message)

    def done(self) -> tuple[str, ...]:
        return tuple(self.lines) if self.lines is not None else ()


OFF = Trace(False)


def template_values(elements: Sequence[tuple[str, str]], facts: UnitFacts) -> dict[str, str]:
    values = dict(elements)
    if facts.lot is not None:
        values.setdefault("10", facts.lot)
    if facts.expiry is not None:
        values.setdefault("17", facts.expiry)
    return values


def level_available(level: str, values: dict[str, str]) -> bool:
    if level == "serial":
        return "21" in values or "235" in values
    if level == "lot":
        return "10" in values
    return True


def _stored(rec: LinkRecord, level: str) -> Candidate:
    return Candidate(rec.link_type, rec.href, rec.title, tuple(rec.hreflang), rec.type, tuple(rec.context),
                     level, "uploaded")


def candidate(source: Link | Route, href: str, level: str) -> Candidate:
    """A configured link or a route's own target, rendered for one scan."""
    if isinstance(source, Link):
        return Candidate(source.link_type, href, source.title, source.lang, source.media, source.context,
                         level, source.where, source)
    return Candidate("route", href, source.title or "", (), None, (), "route", source.where, source)


Option = Candidate | Link  # what a level offers: uploaded (already a Candidate) or configured
O = TypeVar("O", Candidate, Link, Option)


def _options(product: Product | None, stored: StoredLinks, level: str, link_type: str | None, role: str,
             values: dict[str, str]) -> list[Option]:
    """What one level offers — stored Candidates and configured Links, not yet rendered.

    Uploaded link data for a level replaces the configured links of the same type there.
    """
    if not level_available(level, values):
        return []
    out: list[Option] = []
    uploaded_types = set()
    for rec in getattr(stored, level):
        if link_type is None or rec.link_type == link_type:
            uploaded_types.add(rec.link_type)
            out.append(_stored(rec, level))
    if product is not None:
        if link_type is None:
            pool: Sequence[Link] = tuple(l for l in product.links if l.level == level)
        else:
            pool = product.by_type_level.get((link_type, level), ())
        for link in pool:
            if link.link_type in uploaded_types or (link.roles is not None and role not in link.roles):
                continue
            if not link.href.fits(values):
                continue
            out.append(link)
    return out


def _render(option: Option, level: str, values: dict[str, str]) -> Candidate:
    if isinstance(option, Candidate):
        return option
    # _options kept only links whose template needs no value this scan lacks
    return candidate(option, option.href.render(values) or "", level)


def links_at(product: Product | None, stored: StoredLinks, level: str, link_type: str | None, role: str,
             values: dict[str, str]) -> list[Candidate]:
    """The links one level offers (of one type, or all), rendered, as this role may see them."""
    return [_render(o, level, values) for o in _options(product, stored, level, link_type, role, values)]


def _best(options: Sequence[O], prefs: Preferences, default_language: str | None) -> tuple[O, ...]:
    """The winners by language, then context, then media type; several only if indistinguishable."""
    if len(options) == 1:
        return (options[0],)
    languages = prefs.languages + ((default_language.lower(),) if default_language else ())
    best_rank: tuple[int, int, int] | None = None
    winners: list[O] = []
    for option in options:
        rank = (language_rank(option.lang, languages) if languages else 0,
                context_rank(option.context, prefs.context),
                media_rank(option.media, prefs.media) if prefs.media else 0)
        if best_rank is None or rank < best_rank:
            best_rank, winners = rank, [option]
        elif rank == best_rank:
            winners.append(option)
    first = winners[0]
    if len(winners) > 1:
        key = (frozenset(first.lang), frozenset(first.context), first.media)
        same = tuple(w for w in winners if (frozenset(w.lang), frozenset(w.context), w.media) == key)
        if len(same) > 1:
            return same
    return (first,)


def choose(rules: CompiledRules, product: Product | None, stored: StoredLinks, link_type: str, role: str,
           values: dict[str, str], prefs: Preferences, trace: Trace = OFF) -> tuple[str | None, tuple[Candidate, ...]]:
    """Walk up serial → lot → GTIN for the first level with a link of this type."""
    for level in LEVELS:
        found = _options(product, stored, level, link_type, role, values)
        if found:
            best = tuple(_render(o, level, values) for o in _best(found, prefs, rules.default_language))
            trace.add("%s at %s level: %d link(s), chose %s", link_type, level, len(found),
                      f"{best[0].href} ({best[0].origin})" if len(best) == 1 else f"{len(best)} equal ones")
            return level, best
        trace.add("%s: nothing at %s level%s", link_type, level,
                  "" if level_available(level, values) else f" (the scan has no {level})")
    return None, ()


def _answer(level: str | None, best: tuple[Candidate, ...], route: str | None, trace: Trace) -> Decision:
    tr = trace.done()
    if len(best) > 1:
        return Decision(300, candidates=best, route=route, level=level, trace=tr,
                        reason="several equally good links")
    return Decision(307, href=best[0].href, link=best[0], route=route, level=level, trace=tr)


def default_link(rules: CompiledRules, product: Product | None, stored: StoredLinks, role: str,
                 values: dict[str, str], prefs: Preferences,
                 trace: Trace = OFF) -> tuple[str | None, tuple[Candidate, ...]]:
    """The product's default link type (stored gs1:defaultLink records stand in without rules)."""
    link_type = product.default if product is not None else DEFAULT_LINK
    trace.add("default link type: %s", link_type)
    return choose(rules, product, stored, link_type, role, values, prefs, trace)


MEMO_LIMIT = 50_000


Plan = tuple[Decision, tuple[Link | Route, ...]]


def decide(rules: CompiledRules, dl: DigitalLink, role: str, facts: UnitFacts, request: ScanRequest,
           stored: StoredLinks = NO_STORED_LINKS, explain: bool = False) -> Decision:
    """Where this scan goes, and (with ``explain``) why.

    Scans of one product that agree on role, state, requested link type, preferences
    and which identifiers they carry get the same *plan* — which route, which link —
    and differ only in the values filled into its href. So plans are remembered per
    compiled rules (a reload starts afresh) and only the href is rendered per scan.
    Not remembered: traces, uploaded link data, products with date-windowed routes.

    Asking for ``gs1:defaultLink`` (or ``gs1:defaultLinkMulti``) is asking for the default:
    the linkset lists those relations, so a client may request them, and they answer what a
    scan without a link type gets.

    Products whose routes test moments or fault codes add the outcome of each distinct
    test (and the fault code) to the key; other products pay nothing for them.
    """
    if request.link_type in DEFAULT_TYPES:
        request = request._replace(link_type=None)
    gtin = dl.gtin
    product = rules.product_for(gtin) if gtin is not None else None
    if explain or stored is not NO_STORED_LINKS or product is None or product.windowed:
        return _decide(rules, dl, role, facts, request, stored, explain)
    shape = tuple(ai for ai, _ in dl.elements)
    key: tuple[object, ...] = (product, role, facts.state, facts.recalled, facts.stolen, facts.suspect, request.link_type,
                               request.prefs, shape, facts.lot is not None, facts.expiry is not None)
    if product.moment_tests:
        # the outcomes of the product's moment tests, remembered per moment facts and second:
        # a batch's units share one Moments object, so most scans check nothing
        unit_moments = facts.moments or NO_MOMENTS
        outcomes_key = (product, unit_moments, request.now_ms // 1000)
        outcomes = rules.memo.get(outcomes_key)
        if outcomes is None:
            now = _now(request)
            outcomes = rules.memo[outcomes_key] = tuple(test.holds(unit_moments, now) for test in product.moment_tests)
        key += outcomes
    if product.uses_fault:
        key += (dl.param(FAULT),)
    memo = rules.memo
    plan = memo.get(key)
    if plan is not None:
        decision = _replay(plan, _values(dl, facts, product))
        if decision is not None:
            return decision
    decision = _decide(rules, dl, role, facts, request, stored, False)
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    chosen = decision.candidates or ((decision.link,) if decision.link is not None else ())
    sources = tuple(c.source for c in chosen if c.source is not None)
    if len(sources) == len(chosen):
        memo[key] = (decision, sources)
    return decision


def _replay(plan: Plan, values: dict[str, str]) -> Decision | None:
    decision, sources = plan
    rendered = []
    for source in sources:
        href = source.href.render(values) if source.href is not None else None
        if href is None:
            return None
        rendered.append(candidate(source, href, decision.level or "gtin"))
    if not rendered:
        return decision
    if decision.status == 300:
        return Decision(300, None, None, tuple(rendered), decision.route, decision.level, decision.reason)
    first = rendered[0]
    return Decision(decision.status, first.href, first, (), decision.route, decision.level)


def _now(request: ScanRequest) -> datetime:
    return datetime.fromtimestamp(request.now_ms / 1000, UTC)


def _values(dl: DigitalLink, facts: UnitFacts, product: Product | None) -> dict[str, str]:
    """Template values: the scan's AIs, the batch's lot/expiry, and a fault code from the query."""
    values = template_values(dl.elements, facts)
    if product is not None and product.uses_fault:
        fault = dl.param(FAULT)
        if fault:
            values[FAULT] = fault
    return values


def _decide(rules: CompiledRules, dl: DigitalLink, role: str, facts: UnitFacts, request: ScanRequest,
            stored: StoredLinks, explain: bool) -> Decision:
    trace = Trace(explain)
    gtin = dl.gtin
    product = rules.product_for(gtin) if gtin is not None else None
    if trace:
        trace.add(f"product: {product.name} ({'prefix ' if product.by_prefix else 'GTIN '}{product.key}, "
                  f"{product.where})" if product else f"product: none configured for {gtin or dl.primary_key}")
        trace.add(f"role: {role}; state: {facts.state}" + (" +recalled" if facts.recalled else "")
                  + (" +stolen" if facts.stolen else "") + (" +suspect" if facts.suspect else "")
                  + f" (from {facts.source})")
    if product is None and not (stored.gtin or stored.lot or stored.serial):
        return Decision(404, reason="no links are known for this identifier", trace=trace.done())
    if request.link_type == "linkset":
        return Decision(200, reason="linkset", trace=trace.done())
    values = _values(dl, facts, product)
    prefs = request.prefs
    if product is not None:
        now = _now(request)
        unit_moments = facts.moments or NO_MOMENTS
        if trace and product.moment_tests:
            trace.add("%s", describe(unit_moments, now, product.service_interval))
        for route in product.candidates(role, facts.state, facts.recalled, facts.stolen, facts.suspect):
            why = route.residual(request.link_type, prefs.languages, prefs.context, request.now_ms)
            if why is None and route.faults is not None:
                fault = values.get(FAULT)
                if fault is None:
                    why = "the scan names no fault code"
                elif route.faults and fault not in route.faults:
                    why = f"fault {fault} is not {', '.join(sorted(route.faults))}"
            if why is None and route.moment is not None:
                why = route.moment.why_not(unit_moments, now)
            if why is not None:
                trace.add("route %r (%s): skipped, %s", route.name, route.where, why)
                continue
            if route.href is not None:
                href = route.href.render(values)
                if href is None:
                    trace.add("route %r (%s): skipped, its target needs data this scan lacks",
                              route.name, route.where)
                    continue
                trace.add("route %r (%s): matched, target %s", route.name, route.where, href)
                return Decision(307, href=href, link=candidate(route, href, "route"), route=route.name,
                                level="route", trace=trace.done())
            trace.add("route %r (%s): matched, wants %s", route.name, route.where, route.link_type)
            level, best = choose(rules, product, stored, route.link_type or DEFAULT_LINK, role, values, prefs,
                                 trace)
            if best:
                return _answer(level, best, route.name, trace)
        trace.add("no route chose a link")
    if request.link_type is not None:
        level, best = choose(rules, product, stored, request.link_type, role, values, prefs, trace)
        if best:
            return _answer(level, best, None, trace)
        return Decision(404, reason=f"no {request.link_type} link for this item", trace=trace.done())
    level, best = default_link(rules, product, stored, role, values, prefs, trace)
    if best:
        return _answer(level, best, None, trace)
    return Decision(404, reason="no default link for this item", trace=trace.done())
