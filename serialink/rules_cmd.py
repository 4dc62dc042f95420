"""`serialink rules check | explain | diff`: what ops run before a reload.

- ``check FILE``: full validation; every problem at file:line:column; exit 1 on any error.
- ``explain URL``: the decision trace for one scan — parse result, role, state, each route
  tried and why it matched or not, the walk-up level, the chosen link.
- ``diff OLD NEW --scans FILE``: replay recorded scans against both rule sets and count
  how many would go somewhere else, by role and state.

Scans files are JSON Lines, one scan per line: ``{"uri": …}`` or ``{"gtin": …, "serial": …,
"lot": …}``, optionally with ``role``, ``state``, ``recalled``, ``stolen``, ``link_type``,
``context``, ``lang`` (Accept-Language) and ``accept``, and for moment routes the unit's
dates (``made``, ``registered``, ``installed``, ``serviced``, ``firmware_updated``,
``warranty_start``, ``warranty_end``, ``consumable_due``: YYYY-MM-DD), ``firmware`` and the
scan's time ``at`` (ISO 8601); a plain line is taken as a URI. A fault code rides in the
URI's query (``?fault=E101``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from ext import GS1Error, parse
from resolver.rules.compiler import (
    LIFECYCLE,
    ROLES,
    STATES,
    RulesInvalid,
    load_rules,
)
from resolver.rules.linktypes import normalise
from resolver.rules.moments import Moments
from resolver.scan.decide import ScanRequest, UnitFacts, decide
from resolver.scan.escapes import escape_error
from resolver.scan.negotiate import Preferences, languages, media_types
from serialink.common import CommandError
from settings import load_settings


def check(args: argparse.Namespace) -> int:
    try:
        rules = load_rules(args.file)
    except RulesInvalid as exc:
        for problem in exc.problems:
            print(problem)
        errors = sum(1 for p in exc.problems if p.severity == "error")
        print(f"serialink rules check: {args.file}: {errors} error(s); the file would be refused", file=sys.stderr)
        return 1
    for warning in rules.warnings:
        print(warning)
    products = list(rules.by_gtin.values()) + list(rules.by_prefix.values())
    print(f"{args.file}: OK — {len(products)} product(s), {sum(len(p.routes) for p in products)} route(s), "
          f"{sum(len(p.links) for p in products)} link(s), version {rules.version}")
    return 0


def _dl(uri: str):
    bad_escape = escape_error(uri)
    if bad_escape is not None:  # never read leniently: the resolver answers 400 too
        raise bad_escape
    try:
        return parse(uri), None
    except GS1Error as strict:
        try:
            return parse(uri, lenient=True), "legacy form accepted by the lenient parser: " + str(strict)
        except GS1Error:
            raise strict from None


MOMENT_DATES = ("made", "registered", "installed", "serviced", "firmware_updated", "warranty_start", "warranty_end",
                "consumable_due")


def _moments(values: Mapping[str, Any], where: str) -> Moments | None:
    """Moment facts from explain's flags (``where`` empty) or a recorded scan (None: none given).
    A wrong date is a CommandError, so it reaches the one-line error path naming the flag,
    or the file and line."""
    given: dict[str, Any] = {}
    for name in MOMENT_DATES:
        if values.get(name):
            try:
                given[name] = date.fromisoformat(str(values[name]))
            except ValueError:
                label = f"{where}: {name}" if where else f"--{name.replace('_', '-')}"
                raise CommandError(f"{label}: expected a date YYYY-MM-DD, got {values[name]!r}") from None
    if values.get("firmware"):
        given["firmware"] = str(values["firmware"])
    return Moments(**given) if given else None


def _at_ms(value: str | None, where: str) -> int:
    if not value:
        return int(time.time() * 1000)
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"{where}: expected an ISO 8601 time such as 2026-06-01T12:00:00Z, got {value!r}") from None
    if at.tzinfo is None:
        raise CommandError(f"{where}: give a time zone (Z or +01:00) in {value!r}")
    return int(at.timestamp() * 1000)


def _request(link_type: str | None, context: str | None, lang: str | None, accept: str | None,
             now_ms: int | None = None) -> ScanRequest:
    lt = None if link_type is None else ("linkset" if link_type in ("linkset", "all") else normalise(link_type))
    return ScanRequest(lt, Preferences(languages(lang), context, media_types(accept)),
                       int(time.time() * 1000) if now_ms is None else now_ms)


def explain(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules or load_settings().rules_file)
    try:
        dl, note = _dl(args.url)
    except GS1Error as exc:
        print(f"parse: INVALID — {exc}\nanswer: 400 Bad Request")
        return 1
    state = args.state or ("unserialised" if dl.serial is None else "commissioned")
    facts = UnitFacts(state, args.recalled, args.stolen, dl.lot, dl.get("17"), "command line",
                      _moments(vars(args), ""))
    link_type = args.link_type or dl.param("linkType")
    request = _request(link_type, args.context or dl.param("context"), args.lang, args.accept,
                       _at_ms(args.at, "--at"))
    decision = decide(rules, dl, args.role, facts, request, explain=True)
    if args.json:
        print(orjson.dumps({"input": args.url, "elements": dl.elements, "canonical": dl.uri(rules.root),
                            "role": args.role, "state": state, "status": decision.status, "href": decision.href,
                            "route": decision.route, "level": decision.level, "reason": decision.reason,
                            "trace": decision.trace}).decode())
        return 0
    print(f"parse: valid — {dl.element_string()}  (canonical {dl.uri(rules.root)})")
    if note:
        print(f"       {note}")
    print(f"request: role={args.role} state={state}" + (" recalled" if args.recalled else "")
          + (" stolen" if args.stolen else "") + f" linkType={request.link_type or 'none'}"
          + f" languages={','.join(request.prefs.languages) or 'none'} context={request.prefs.context or 'none'}")
    for line in decision.trace:
        print(f"  - {line}")
    if decision.status == 307:
        print(f"answer: 307 → {decision.href}  (route: {decision.route or 'none, GS1 default behaviour'}, "
              f"level: {decision.level})")
    elif decision.status == 300:
        print(f"answer: 300 Multiple Choices — {len(decision.candidates)} equally good links")
        for c in decision.candidates:
            print(f"        {c.href}")
    elif decision.status == 200:
        print("answer: 200 linkset")
    else:
        print(f"answer: {decision.status} — {decision.reason}")
    return 0


def _scan_records(path: Path):
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise CommandError(f"--scans: cannot read {path} ({exc.strerror}); give a JSON Lines file of recorded "
                           f"scans, e.g. from `serialink scans export`") from None
    with fh:
        for n, raw in enumerate(fh, 1):
            raw = raw.strip()
            if not raw:
                continue
            if raw.startswith(b"{"):
                try:
                    rec = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise CommandError(f"{path}:{n}: not JSON ({exc}); one scan per line") from None
                if not isinstance(rec, dict):
                    raise CommandError(f"{path}:{n}: expected a JSON object or a URI, got {type(rec).__name__}")
            else:
                rec = {"uri": raw.decode("utf-8", "replace")}
            if "uri" not in rec:
                if "gtin" not in rec:
                    raise CommandError(f"{path}:{n}: a scan needs 'uri' or 'gtin'")
                uri = f"https://id.gs1.org/01/{rec['gtin']}"
                if rec.get("lot") and not rec.get("serial"):
                    uri += f"/10/{rec['lot']}"
                if rec.get("serial"):
                    uri += f"/21/{rec['serial']}"
                rec["uri"] = uri
            yield n, rec


def diff(args: argparse.Namespace) -> int:
    old, new = load_rules(args.old), load_rules(args.new)
    total, changed = Counter(), Counter()
    samples = []
    invalid = 0
    for n, rec in _scan_records(Path(args.scans)):
        try:
            dl, _ = _dl(rec["uri"])
        except GS1Error:
            invalid += 1
            continue
        role = rec.get("role", "consumer")
        state = rec.get("state") or ("unserialised" if dl.serial is None else args.state)
        if role not in ROLES or state not in STATES:
            raise CommandError(f"{args.scans}:{n}: unknown role {role!r} or state {state!r}; "
                               f"roles: {', '.join(ROLES)}; states: {', '.join(STATES)}")
        facts = UnitFacts(state, bool(rec.get("recalled")), bool(rec.get("stolen")), rec.get("lot") or dl.lot,
                          dl.get("17"), "recorded scan", _moments(rec, f"{args.scans}:{n}"))
        # the scan URI's own linkType and context count, as they do for the resolver
        request = _request(rec.get("link_type") or dl.param("linkType"), rec.get("context") or dl.param("context"),
                           rec.get("lang"), rec.get("accept"), _at_ms(rec.get("at"), f"{args.scans}:{n}: at"))
        a = decide(old, dl, role, facts, request)
        b = decide(new, dl, role, facts, request)
        key = (role, state + ("+recalled" if facts.recalled else "") + ("+stolen" if facts.stolen else ""))
        total[key] += 1
        if (a.status, a.href, tuple(c.href for c in a.candidates)) != (b.status, b.href, tuple(c.href for c in b.candidates)):
            changed[key] += 1
            if len(samples) < args.samples:
                samples.append((rec["uri"], role, key[1], f"{a.status} {a.href or a.reason}", f"{b.status} {b.href or b.reason}"))
    all_total, all_changed = sum(total.values()), sum(changed.values())
    if invalid and not all_total:
        raise CommandError(f"--scans: none of the {invalid} line(s) of {args.scans} is a valid scan; give the "
                           f"output of `serialink scans export` (JSON Lines) or one DL URI per line")
    if args.json:
        print(orjson.dumps({"scans": all_total, "changed": all_changed, "invalid": invalid,
                            "by_role_state": [{"role": r, "state": s, "scans": total[(r, s)], "changed": changed[(r, s)]}
                                              for r, s in sorted(total)],
                            "samples": [dict(zip(("uri", "role", "state", "old", "new"), x)) for x in samples]}).decode())
        return 0
    print(f"{all_changed} of {all_total} scans would change destination"
          + (f" ({all_changed / all_total:.1%})" if all_total else "") + (f"; {invalid} invalid URIs skipped" if invalid else ""))
    print(f"{'role':<14}{'state':<26}{'changed':>9}{'scans':>9}")
    for role, state in sorted(total):
        print(f"{role:<14}{state:<26}{changed[(role, state)]:>9}{total[(role, state)]:>9}")
    for uri, role, state, before, after in samples:
        print(f"  {uri} [{role}, {state}]\n      old: {before}\n      new: {after}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("rules", help="check, explain and diff routing rules")
    rs = p.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    c = rs.add_parser("check", help="validate a rules file (exit 1 on any error)")
    c.add_argument("file")
    c.set_defaults(run=check)
    e = rs.add_parser("explain", help="show the decision trace for one scan")
    e.add_argument("url", metavar="URL")
    e.add_argument("--role", default="consumer", choices=ROLES)
    e.add_argument("--state", default=None, choices=STATES,
                   help="lifecycle state (default: commissioned with a serial, unserialised without)")
    e.add_argument("--recalled", action="store_true", help="the unit is under a recall overlay")
    e.add_argument("--stolen", action="store_true", help="the unit is reported stolen")
    e.add_argument("--lang", default=None, help="Accept-Language, e.g. 'de-CH, en;q=0.5'")
    e.add_argument("--accept", default=None, help="Accept header")
    e.add_argument("--link-type", default=None, help="requested linkType (default: the URL's)")
    e.add_argument("--context", default=None, help="GS1 context value (default: the URL's)")
    e.add_argument("--rules", default=None, help="rules file (default: SERIALINK_RULES_FILE, else <config>/rules.yaml)")
    e.add_argument("--json", action="store_true")
    m = e.add_argument_group("moments", "the unit's history, for routes with moment conditions (dates YYYY-MM-DD)")
    for name in MOMENT_DATES:
        m.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, metavar="DATE")
    m.add_argument("--firmware", default=None, metavar="VERSION")
    m.add_argument("--at", default=None, metavar="TIME", help="the scan's time, ISO 8601 (default: now)")
    e.set_defaults(run=explain)
    d = rs.add_parser("diff", help="replay recorded scans against two rule sets")
    d.add_argument("old")
    d.add_argument("new")
    d.add_argument("--scans", required=True, metavar="FILE", help="JSON Lines of recorded scans (or one URI per line)")
    d.add_argument("--state", default="commissioned", choices=LIFECYCLE + ("unknown",),
                   help="state of serialised scans that do not record one (default commissioned)")
    d.add_argument("--samples", type=int, default=10, help="how many changed scans to show")
    d.add_argument("--json", action="store_true")
    d.set_defaults(run=diff)
