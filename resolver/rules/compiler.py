"""Routing rules: YAML in, a compiled decision structure out (never interpreted per request).

Loading validates the whole file — JSON Schema (config/rules.schema.json), then the
checks a schema cannot express (known GS1 link types, template variables, allowed
target hosts, a GTIN-level default link, impossible routes) — and reports every problem
at file:line:column. A file with any error is refused as a whole.

Compiling turns each product's ordered routes into a dictionary keyed by
(role, state, recalled, stolen, suspect): a scan looks up its few candidate routes in O(1) and
checks only what is left (requested link type, language, context, date window).

>>> rules = load_rules(default_rules_file())
>>> product = rules.product_for("09506000134352")
>>> [r.name for r in product.candidates("consumer", "sold", False, False)][:2]
['a fault code on the scan goes to troubleshooting for that code', 'unregistered units invite the owner to register']
>>> rules.product_for("09506000999997").name
'Example Boilers Ltd product'
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
import jsonschema_rs
from jsonschema.exceptions import best_match

from ext import escape, verify_check_digit
from ext.durations import Duration, parse_duration
from resolver.rules import moments
from resolver.rules.dates import FORMAT_CHECKER, timestamp_ms
from resolver.rules.linktypes import RESOLVER_ONLY, normalise, vocabulary
from resolver.rules.targets import DEFAULT_SCHEMES, check_target
from resolver.rules.yaml_source import Positions, Problem, SourceError, load
from settings import default_config_dir

FAULT = "fault"  # the template value (and query parameter) of a fault code, not an AI
ROLES = ("consumer", "owner", "installer", "technician", "regulator", "manufacturer")
LIFECYCLE = ("commissioned", "shipped", "sold", "registered", "in_service", "end_of_life", "decommissioned")
STATES = LIFECYCLE + ("unknown", "unserialised", "not_commissioned")
FLAGS = ("recalled", "stolen", "suspect")
TEMPLATE_VARIABLES = {"gtin": "01", "serial": "21", "lot": "10", "cpv": "22", "tpx": "235", "expiry": "17",
                      "fault": FAULT}
NO_LINK_TYPE = "none"
Allowed = tuple[tuple[str, ...], tuple[str, ...]]  # (allowed_target_hosts, allowed_target_schemes)


class RulesInvalid(Exception):
    """The rules file was refused; ``problems`` lists every error (and warning) found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__("; ".join(str(p) for p in errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""))


#: Path segments WHATWG URL parsing treats as "." and ".." (percent-encoded dots included)
DOT_SEGMENTS = frozenset({".", "%2e", "..", ".%2e", "%2e.", "%2e%2e"})
_DOTS_ONLY = ("", ".", "..")  # the only values escape() leaves able to form a dot segment


class Template:
    """An href with {variables}, compiled to literal and variable parts once.

    Variables may only follow the host (a value must never be able to change it), and
    each value is percent-encoded, so it cannot add ``/``, ``?`` or ``#``. A value that
    would make a whole path segment ``.`` or ``..`` (``/21/%2E%2E`` scans as serial
    ``..``) cannot be encoded so that browsers do not climb the path: the template then
    does not render at all, as if the value were missing.
    """

    __slots__ = ("text", "parts", "needs", "path_slots", "path_needs")

    def __init__(self, text: str) -> None:
        self.text = text
        parts: list[tuple[bool, str]] = []
        needs: set[str] = set()
        rest = text
        while rest:
            start = rest.find("{")
            if start < 0:
                parts.append((False, rest))
                break
            end = rest.find("}", start)
            if end < 0:
                raise ValueError("'{' without a closing '}'")
            if start:
                parts.append((False, rest[:start]))
            name = rest[start + 1:end]
            if name in TEMPLATE_VARIABLES:
                ai = TEMPLATE_VARIABLES[name]
            elif name.startswith("ai:") and name[3:].isdigit() and 2 <= len(name) - 3 <= 4:
                ai = name[3:]
            else:
                raise ValueError(f"unknown template variable {{{name}}}; use "
                                 + ", ".join(f"{{{v}}}" for v in TEMPLATE_VARIABLES) + " or {ai:NN}")
            parts.append((True, ai))
            needs.add(ai)
            rest = rest[end + 1:]
        if "}" in "".join(p for is_var, p in parts if not is_var):
            raise ValueError("'}' without an opening '{'")
        if needs:
            prefix = text[:text.find("{")]
            after_scheme = prefix.split("://", 1)[1] if "://" in prefix else ""
            if not any(c in after_scheme for c in "/?#"):
                raise ValueError("template variables may only come after the host and its '/' "
                                 "(a value must never be able to change where the link goes)")
        self.parts = tuple(parts)
        self.needs = frozenset(needs)
        # the variables in the path (before any literal ? or #): only they can form dot segments
        slots, literal = set(), ""
        for i, (is_var, part) in enumerate(parts):
            if not is_var:
                literal += part
            elif "?" not in literal and "#" not in literal:
                slots.add(i)
        self.path_slots = frozenset(slots)
        self.path_needs = frozenset(parts[i][1] for i in slots)

    def render(self, values: Mapping[str, str]) -> str | None:
        """The URL with each variable percent-encoded; None if a needed value is missing
        or would make a ``.``/``..`` path segment."""
        out = []
        risky = False
        for i, (is_var, text) in enumerate(self.parts):
            if is_var:
                value = values.get(text)
                if value is None:
                    return None
                if value in _DOTS_ONLY and i in self.path_slots:
                    risky = True
                out.append(escape(value))
            else:
                out.append(text)
        if risky and self._makes_dot_segment(out):
            return None
        return "".join(out)

    def fits(self, values: Mapping[str, str]) -> bool:
        """Would :meth:`render` give a URL for these values? (Cheap unless a value is dots.)"""
        if not self.needs.issubset(values.keys()):
            return False
        if any(values[ai] in _DOTS_ONLY for ai in self.path_needs):
            return self.render(values) is not None
        return True

    def _makes_dot_segment(self, out: list[str]) -> bool:
        joined = "".join(out)
        offset = 0
        for i, piece in enumerate(out):
            if i in self.path_slots and piece in _DOTS_ONLY:
                start = joined.rfind("/", 0, offset) + 1
                ends = [e for e in (joined.find(c, offset + len(piece)) for c in "/?#") if e >= 0]
                if joined[start:min(ends, default=len(joined))].lower() in DOT_SEGMENTS:
                    return True
            offset += len(piece)
        return False


class Link(NamedTuple):
    """A configured link. ``level``: 'serial' if its href needs the serial, 'lot' if it
    needs the lot, else 'gtin' — the anchor it belongs to in a linkset."""

    link_type: str
    href: Template
    title: str
    lang: tuple[str, ...]
    media: str | None
    context: tuple[str, ...]
    roles: frozenset[str] | None
    level: str
    where: str


class Route(NamedTuple):
    index: int  # type: ignore[assignment]  # a field may shadow tuple.index
    name: str
    where: str
    roles: frozenset[str] | None
    states: frozenset[str] | None
    link_types: frozenset[str] | None  # None: any requested link type; {"none"}: only none
    langs: tuple[str, ...] | None
    contexts: frozenset[str] | None
    start_ms: int | None
    end_ms: int | None
    link_type: str | None  # action: pick a link of this type…
    href: Template | None  # …or go to this configured target
    title: str | None
    moment: moments.MomentTest | None = None  # conditions on the unit's own history
    faults: frozenset[str] | None = None  # None: any scan; empty: one with a fault code; else these codes

    def matches_state(self, state: str, recalled: bool, stolen: bool, suspect: bool = False) -> bool:
        if self.states is None:
            return True
        return (state in self.states or (recalled and "recalled" in self.states) or (stolen and "stolen" in self.states)
                or (suspect and "suspect" in self.states))

    def residual(self, link_type: str | None, languages: tuple[str, ...], context: str | None,
                 now_ms: int) -> str | None:
        """Why the route does not match beyond role/state (None: it matches)."""
        if self.link_types is not None and (link_type or NO_LINK_TYPE) not in self.link_types:
            return f"requested link type {link_type or 'none'} is not {', '.join(sorted(self.link_types))}"
        if self.langs is not None and not any(
                lang == want or lang == want.split("-")[0] for want in languages for lang in self.langs):
            return f"language {languages[0] if languages else 'none'} is not {', '.join(self.langs)}"
        if self.contexts is not None and context not in self.contexts:
            return f"context {context or 'none'} is not {', '.join(sorted(self.contexts))}"
        if self.start_ms is not None and now_ms < self.start_ms:
            return "before its date window"
        if self.end_ms is not None and now_ms >= self.end_ms:
            return "after its date window"
        return None


class Product:
    """One product entry (a GTIN or a company prefix), compiled."""

    __slots__ = ("key", "by_prefix", "name", "default", "links", "links_by_type", "by_type_level", "routes",
                 "_index", "where", "windowed", "moment_tests", "moments", "service_interval", "commodity_code",
                 "uses_fault")

    def __init__(self, key: str, by_prefix: bool, name: str, default: str, links: tuple[Link, ...],
                 routes: tuple[Route, ...], where: str, named_moments: Mapping[str, moments.MomentTest] | None = None,
                 service_interval: Duration | None = None, commodity_code: str | None = None) -> None:
        self.key, self.by_prefix, self.name, self.default, self.where = key, by_prefix, name, default, where
        self.links = links
        by_type: dict[str, list[Link]] = {}
        for link in links:
            by_type.setdefault(link.link_type, []).append(link)
        self.links_by_type = {k: tuple(v) for k, v in by_type.items()}
        self.by_type_level = {(k, level): tuple(l for l in v if l.level == level)
                              for k, v in by_type.items() for level in ("serial", "lot", "gtin")}
        self.routes = routes
        self.windowed = any(r.start_ms is not None or r.end_ms is not None for r in routes)
        # the distinct moment tests of the routes: a decision depends on their outcomes only
        self.moment_tests = tuple(dict.fromkeys(r.moment for r in routes if r.moment is not None))
        self.moments = dict(named_moments or {})  # named moments, for pages and views
        self.service_interval = service_interval
        self.commodity_code = commodity_code
        self.uses_fault = any(r.faults is not None or (r.href is not None and FAULT in r.href.needs) for r in routes) \
            or any(FAULT in link.href.needs for link in links)
        self._index: dict[tuple[str, str, bool, bool, bool], tuple[Route, ...]] = {}
        for role in ROLES:
            for state in STATES:
                for recalled in (False, True):
                    for stolen in (False, True):
                        for suspect in (False, True):
                            self._index[(role, state, recalled, stolen, suspect)] = tuple(
                                r for r in routes if (r.roles is None or role in r.roles)
                                and r.matches_state(state, recalled, stolen, suspect))

    def candidates(self, role: str, state: str, recalled: bool, stolen: bool,
                   suspect: bool = False) -> tuple[Route, ...]:
        """The routes whose role and state conditions hold, in order (one dict lookup)."""
        return self._index.get((role, state, recalled, stolen, suspect), ())


class CompiledRules:
    """Everything a scan needs from the rules file, ready to answer."""

    def __init__(self, resolver: Mapping[str, Any], products: Iterable[Product], source: str, text: str,
                 warnings: list[Problem]) -> None:
        self.root = resolver["root"].rstrip("/")
        self.name = resolver.get("name", "Serialink resolver")
        self.cache_max_age = int(resolver.get("cache_max_age", 30))
        # Cache-Control of scan answers, by "does the request carry a credential?": shared
        # caches may keep an anonymous scan's answer briefly, never a credentialed one, and
        # no cache keeps a role's answer past the credential (a visit ends, a token is revoked)
        self.cache_control = (f"public, max-age={self.cache_max_age}".encode(), b"private, no-store")
        self.default_language = resolver.get("default_language")
        self.context_values = tuple(resolver.get("context_values", ()))
        self.allowed_hosts = tuple(h.lower() for h in resolver.get("allowed_target_hosts", ()))
        self.allowed_schemes = tuple(resolver.get("allowed_target_schemes", DEFAULT_SCHEMES))
        self._target_ok: dict[str, bool] = {}
        self.contact = resolver.get("contact")
        self.source = source
        self.version = hashlib.sha256(text.encode()).hexdigest()[:12]
        self.warnings = warnings
        self.memo: dict[object, Any] = {}  # decision plans (resolver.scan.decide), valid for these rules only
        self.by_gtin: dict[str, Product] = {}
        self.by_prefix: dict[str, Product] = {}
        for product in products:
            (self.by_prefix if product.by_prefix else self.by_gtin)[product.key] = product
        self._prefix_lengths = sorted({len(p) for p in self.by_prefix}, reverse=True)

    def product_for(self, gtin: str) -> Product | None:
        """Exact GTIN first, then the longest company prefix (digits after the indicator)."""
        product = self.by_gtin.get(gtin)
        if product is not None:
            return product
        for length in self._prefix_lengths:
            product = self.by_prefix.get(gtin[1:1 + length])
            if product is not None:
                return product
        return None

    def target_problem(self, url: str) -> str | None:
        """Why ``url`` may not be a redirect target under these rules (None: it may)."""
        return check_target(url, self.allowed_hosts, self.allowed_schemes)

    def target_ok(self, url: str) -> bool:
        """:meth:`target_problem` is None, remembered per URL (stored link data is checked on
        every scan, so links uploaded before a tighter allow-list never redirect off it)."""
        ok = self._target_ok.get(url)
        if ok is None:
            if len(self._target_ok) >= 10_000:
                self._target_ok.clear()
            ok = self._target_ok[url] = check_target(url, self.allowed_hosts, self.allowed_schemes) is None
        return ok

    def link_types(self) -> set[str]:
        return {t for p in list(self.by_gtin.values()) + list(self.by_prefix.values()) for t in p.links_by_type}


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((default_config_dir() / "rules.schema.json").read_text(encoding="utf-8"))
    return schema


def default_rules_file() -> Path:
    return default_config_dir() / "rules.yaml"


def _as_set(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset([value] if isinstance(value, str) else value)


def _ms(text: str | None) -> int | None:
    return None if text is None else timestamp_ms(text)


def _message(error: jsonschema.ValidationError) -> str:
    """The validator's message, in the words a rules author needs."""
    if error.validator == "format" and error.cause is not None:
        return str(error.cause)
    value = error.instance
    if error.validator == "type" and isinstance(value, (date, datetime)):
        shown = value.isoformat()
        example = shown if isinstance(value, datetime) and value.tzinfo else f"{shown[:10]}T00:00:00Z"
        return (f"YAML read the unquoted {shown} as a date, not text: quote this date and give it a time zone, "
                f'e.g. "{example}"')
    return str(error.message)


def _date_time_ok(value: str) -> bool:
    try:
        return bool(FORMAT_CHECKER.conforms(value, "date-time"))
    except Exception:
        return False


@cache
def _fast_validator() -> Any:
    """The same schema and date-time check in jsonschema-rs: ~40× faster on a valid file,
    which is nearly every file (a rules file of 100k products spent 60 % of its compile
    here). Only what it rejects goes through jsonschema, whose errors carry the paths
    and context the messages need."""
    return jsonschema_rs.Draft7Validator(_schema(), formats={"date-time": _date_time_ok}, validate_formats=True)


def _schema_problems(data: Any, positions: Positions) -> list[Problem]:
    try:
        if _fast_validator().is_valid(data):
            return []
    except Exception:  # values JSON has no type for (an unquoted YAML date): the full check says which
        pass
    validator = jsonschema.Draft7Validator(_schema(), format_checker=FORMAT_CHECKER)
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: positions.lookup(e.absolute_path)):
        specific = best_match(error.context) if error.context else error
        path = list(specific.absolute_path) if specific is not error else list(error.absolute_path)
        field = ".".join(str(p) for p in path) or "(top level)"
        problems.append(Problem(positions.at(path), f"{field}: {_message(specific)}"))
    return problems


def _link_type_problem(link_type: str) -> str | None:
    curie = normalise(link_type)
    if curie in RESOLVER_ONLY:
        return f"{curie} is set by the resolver itself; name the descriptive link type instead"
    if curie.startswith("gs1:") and curie not in vocabulary():
        close = difflib.get_close_matches(curie, list(vocabulary()), n=1)
        return f"unknown GS1 link type {curie}" + (f" (did you mean {close[0]}?)" if close else "")
    return None


def _target(text: str, where: str, allowed: Allowed, problems: list[Problem]) -> Template | None:
    """A configured href, compiled; its template errors and any reason the target check
    (resolver.rules.targets) refuses it are problems."""
    try:
        href = Template(text)
    except ValueError as exc:
        problems.append(Problem(where, str(exc)))
        return None
    sample = "".join("x" if is_var else part for is_var, part in href.parts)
    if (why := check_target(sample, *allowed)) is not None:
        problems.append(Problem(where, f"{text}: {why}"))
    return href


def _compile_product(raw: dict[str, Any], pi: int, positions: Positions, allowed: Allowed,
                     problems: list[Problem]) -> Product | None:
    base = ("products", pi)
    links: list[Link] = []
    for li, item in enumerate(raw["links"]):
        where = positions.at(base + ("links", li))
        link_type = normalise(item["type"])
        if (why := _link_type_problem(link_type)) is not None:
            problems.append(Problem(positions.at(base + ("links", li, "type")), why))
        href = _target(item["href"], positions.at(base + ("links", li, "href")), allowed, problems)
        if href is None:
            continue
        level = "serial" if "21" in href.needs or "235" in href.needs else ("lot" if "10" in href.needs else "gtin")
        links.append(Link(link_type, href, item["title"], tuple(item.get("lang", ())), item.get("media"),
                          tuple(item.get("context", ())), _as_set(item.get("roles")), level, where))
    default = normalise(raw["default"])
    if (why := _link_type_problem(default)) is not None:
        problems.append(Problem(positions.at(base + ("default",)), why))
    elif not any(l.link_type == default and l.level == "gtin" and l.roles is None for l in links):
        problems.append(Problem(positions.at(base + ("default",)),
                                f"default {default} needs a link of that type for everyone at GTIN level "
                                "(no {serial}/{lot} in its href, no roles): every scan must have a default link"))
    interval = None
    if "service_interval" in raw:
        try:
            interval = parse_duration(raw["service_interval"])
        except ValueError as exc:
            problems.append(Problem(positions.at(base + ("service_interval",)), str(exc)))
    named: dict[str, moments.MomentTest] = {}
    for name, conditions in (raw.get("moments") or {}).items():
        def at_moment(*path: str | int, _name: str = name) -> str:
            return positions.at(base + ("moments", _name) + path)
        named[name] = moments.MomentTest(tuple(moments.compile_conditions(conditions, at_moment, problems)),
                                         interval, (name,))
    routes: list[Route] = []
    seen_unconditional: dict[tuple[object, ...], str] = {}
    for ri, item in enumerate(raw.get("routes", ())):
        where = positions.at(base + ("routes", ri))
        when = item.get("when", {})
        link_types = when.get("link_type", NO_LINK_TYPE)
        if link_types == "any":
            link_types_set = None
        else:
            link_types_set = frozenset(normalise(t) if t != NO_LINK_TYPE else t for t in
                                       ([link_types] if isinstance(link_types, str) else link_types))
        target: Template | None = None
        if "href" in item:
            target = _target(item["href"], positions.at(base + ("routes", ri, "href")), allowed, problems)
            if target is None:
                continue
        wanted = normalise(item["link"]) if "link" in item else None
        if wanted is not None:
            if (why := _link_type_problem(wanted)) is not None:
                problems.append(Problem(positions.at(base + ("routes", ri, "link")), why))
            elif wanted not in {l.link_type for l in links}:
                problems.append(Problem(positions.at(base + ("routes", ri, "link")),
                                        f"no {wanted} link is configured for this product; the route only "
                                        "works where uploaded link data has one", "warning"))
        def at_when(*path: str | int, _ri: int = ri) -> str:
            return positions.at(base + ("routes", _ri, "when") + path)
        moment = moments.compile_test(when, at_when, named, interval, problems) if moments.uses_moments(when) else None
        faults = None
        if "fault" in when:
            fault = when["fault"]
            faults = frozenset() if fault is True else frozenset([fault] if isinstance(fault, str) else fault)
        start, end = _ms(when.get("from")), _ms(when.get("until"))
        if start is not None and end is not None and start >= end:
            problems.append(Problem(positions.at(base + ("routes", ri, "when", "until")), "until must be after from"))
        route = Route(ri, item.get("name", f"route {ri + 1}"), where, _as_set(when.get("role")),
                      _as_set(when.get("state")), link_types_set,
                      tuple(x.lower() for x in ([when["lang"]] if isinstance(when.get("lang"), str) else when["lang"]))
                      if "lang" in when else None,
                      _as_set(when.get("context")), start, end, wanted, target, item.get("title"), moment, faults)
        shape = (route.roles, route.states, route.link_types)
        if route.langs is None and route.contexts is None and start is None and end is None and moment is None \
                and faults is None:
            if shape in seen_unconditional:
                problems.append(Problem(where, f"never used: route {seen_unconditional[shape]!r} above matches "
                                               "every scan this one would", "warning"))
            seen_unconditional.setdefault(shape, route.name)
        routes.append(route)
    key, by_prefix = (raw["gtin"], False) if "gtin" in raw else (raw["company_prefix"], True)
    return Product(key, by_prefix, raw["name"], default, tuple(links), tuple(routes), positions.at(base), named,
                   interval, raw.get("commodity_code"))


def _position(problem: Problem) -> tuple[int, int]:
    try:
        line, column = problem.where.rsplit(":", 2)[-2:]
        return int(line), int(column)
    except ValueError:
        return (0, 0)


def compile_rules(text: str, source: str) -> CompiledRules:
    """Validate and compile rules text; RulesInvalid listing every problem if anything is wrong.

    Nothing else escapes: every value the schema accepts is meant to compile (a property
    test holds us to it), and should one not, the file is refused with the place it
    failed rather than a traceback — a rules file must never be able to stop a server.
    """
    try:
        return _compile(text, source)
    except RulesInvalid:
        raise
    except Exception as exc:  # a bug, reported as a refusal: see the docstring
        raise RulesInvalid([Problem(f"{source}:1:1", f"could not compile the rules ({type(exc).__name__}: {exc}); "
                                                     "please report this")]) from exc


def _compile(text: str, source: str) -> CompiledRules:
    try:
        data, positions = load(text, source)
    except SourceError as exc:
        raise RulesInvalid([Problem(f"{exc.file}:{exc.line}:{exc.column}", exc.reason)]) from None
    problems = _schema_problems(data, positions)
    if problems:
        raise RulesInvalid(problems)
    allowed = (tuple(h.lower() for h in data["resolver"].get("allowed_target_hosts", ())),
               tuple(data["resolver"].get("allowed_target_schemes", DEFAULT_SCHEMES)))
    products: list[Product] = []
    seen: dict[tuple[bool, str], str] = {}
    for pi, raw in enumerate(data["products"]):
        try:
            product = _compile_product(raw, pi, positions, allowed, problems)
        except Exception as exc:  # see compile_rules: refused at the product, never a crash
            problems.append(Problem(positions.at(("products", pi)),
                                    f"could not compile this product ({type(exc).__name__}: {exc}); please report this"))
            continue
        if product is None:
            continue
        ident = (product.by_prefix, product.key)
        if ident in seen:
            problems.append(Problem(positions.at(("products", pi)),
                                    f"{'company prefix' if product.by_prefix else 'GTIN'} {product.key} is already "
                                    f"configured at {seen[ident]}"))
        seen[ident] = product.where
        if not product.by_prefix:
            if not verify_check_digit(product.key):
                problems.append(Problem(positions.at(("products", pi, "gtin")), f"GTIN {product.key}: wrong check digit"))
        products.append(product)
    problems.sort(key=_position)
    if any(p.severity == "error" for p in problems):
        raise RulesInvalid(problems)
    return CompiledRules(data["resolver"], products, source, text, [p for p in problems if p.severity == "warning"])


#: Rules compiled by ``serialink serve`` before it starts its workers: (file, text, rules).
#: Granian forks the workers, so each inherits them and a worker whose file still holds
#: the same text takes them instead of compiling again (a file of 100k products takes
#: minutes to compile). Taken once per process; any other load compiles.
_handed_over: tuple[str, str, CompiledRules] | None = None


def load_rules(path: Path | str, *, hand_over: bool = False) -> CompiledRules:
    """Compile a rules file. ``hand_over``: keep the result for the next load of the same
    file with the same text in this process or a process forked from it (serve's check,
    then each worker's start)."""
    global _handed_over
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesInvalid([Problem(f"{path}:1:1", f"cannot read the file: {exc}")]) from None
    kept, _handed_over = _handed_over, None
    if kept is not None and kept[0] == str(path) and kept[1] == text:
        rules = kept[2]
    else:
        rules = compile_rules(text, str(path))
    if hand_over:
        _handed_over = (str(path), text, rules)
    return rules
