"""`serialink lines add | list | rotate | revoke`: long-lived API keys for factory lines.

A line key is scoped to one site, one line and the products the line makes; the store keeps
only its hash, so ``add`` and ``rotate`` print the key once, alone on stdout (configure the
line with it right away). ``rotate`` keeps the old key working for an overlap window so the
line can switch over without stopping; ``revoke`` stops a key at once. The same operations
are under ``/v1/lines`` for a manufacturer token. See resolver.access.linekeys.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from resolver.access import linekeys
from resolver.access.issued import OPERATOR_ACTOR
from resolver.errors import ResolverError
from serialink.common import CommandError
from serialink.tokens_cmd import _store_flags, _with_store, duration, print_table

FLAGS = {"site": "--site", "line": "--line", "gtins": "--gtin", "prefixes": "--prefix", "subject": "--subject",
         "ttl": "--ttl", "overlap": "--overlap", "key_id": "ID", "reason": "--reason"}


def _run(args: argparse.Namespace, work):
    try:
        return asyncio.run(_with_store(args, work))
    except ResolverError as exc:
        field = (exc.field or "").split("[")[0]
        raise CommandError(f"{FLAGS.get(field, field)}: {exc.reason}" if field else exc.reason, 1) from None


def add(args: argparse.Namespace) -> int:
    if not args.gtin and not args.prefix:
        raise CommandError("--gtin: name the products the line makes (--gtin or --prefix)", 2)
    ttl = duration(args.ttl, "--ttl", low=3600, high=10 * 366 * 86400) if args.ttl else None

    async def work(store, settings):
        return await linekeys.add(store, OPERATOR_ACTOR, site=args.site, line=args.line, gtins=args.gtin or [],
                                  prefixes=args.prefix or [], subject=args.subject or "", ttl=ttl,
                                  audit={"via": "cli"})

    key, record, _ = _run(args, work)
    print(key)
    print(f"serialink lines: key {record['id']} for site {record['site']} line {record['line']} "
          f"({_scope(record)}); shown only now: configure the line with it "
          "(Authorization: Bearer <key>)", file=sys.stderr)
    return 0


def _scope(record) -> str:
    return "; ".join(filter(None, ("GTIN " + ",".join(record["gtins"]) if record["gtins"] else "",
                                   "prefix " + ",".join(record["prefixes"]) if record["prefixes"] else "")))


def list_keys(args: argparse.Namespace) -> int:
    async def work(store, settings):
        return await linekeys.listing(store)

    rows = _run(args, work)
    if args.json:
        for row in rows:
            print(orjson.dumps(row).decode())
        return 0
    for row in rows:
        row["scope"] = _scope(row)
        row["until"] = row.get("retires") or row.get("expires") or ""
    print_table(rows, ("id", "site", "line", "scope", "subject", "state", "created", "until"))
    return 0


def rotate(args: argparse.Namespace) -> int:
    overlap = duration(args.overlap, "--overlap", low=0, high=linekeys.MAX_OVERLAP)

    async def work(store, settings):
        return await linekeys.rotate(store, OPERATOR_ACTOR, args.id, overlap, audit={"via": "cli"})

    key, record, old, _ = _run(args, work)
    print(key)
    print(f"serialink lines: key {record['id']} replaces {old['id']} (site {record['site']} line {record['line']}), "
          f"shown only now; {old['id']} keeps working until {linekeys.iso(old['retires'])}", file=sys.stderr)
    return 0


def revoke(args: argparse.Namespace) -> int:
    async def work(store, settings):
        return await linekeys.revoke(store, OPERATOR_ACTOR, args.id, args.reason, audit={"via": "cli"})

    record, before = _run(args, work)
    print(f"serialink lines: key {record['id']} (site {record['site']} line {record['line']}) "
          + ("was already revoked" if before else "revoked; it is refused from now on"), file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("lines", help="API keys for factory lines: add, list, rotate, revoke",
                       description="Long-lived API keys for factory lines, scoped to a site, a line and GTINs; "
                                   "stored only as a hash and shown once. Uses the same settings as `serialink serve`.")
    ls = p.add_subparsers(dest="lines_command", required=True, metavar="ACTION")
    a = ls.add_parser("add", help="make a line key and print it alone on stdout (shown once)")
    a.add_argument("--site", required=True, help="factory site, 1-40 of [A-Za-z0-9_-]")
    a.add_argument("--line", required=True, help="line at that site, 1-40 of [A-Za-z0-9_-]")
    a.add_argument("--gtin", action="append", metavar="GTIN", help="a GTIN-14 the line makes (repeatable)")
    a.add_argument("--prefix", action="append", metavar="GCP", help="a GS1 company prefix it makes (repeatable)")
    a.add_argument("--subject", metavar="TEXT", help="a note: who or what holds the key")
    a.add_argument("--ttl", metavar="DURATION", help="lifetime, e.g. 365d (default: until revoked)")
    _store_flags(a)
    a.set_defaults(run=add)
    li = ls.add_parser("list", help="every line key: scope, state (active, retiring, retired, revoked); never a key")
    li.add_argument("--json", action="store_true", help="one JSON object per key")
    _store_flags(li)
    li.set_defaults(run=list_keys)
    r = ls.add_parser("rotate", help="a new key with the same scope; the old one works for --overlap more")
    r.add_argument("id", metavar="ID", help="the key id (from `lines list`)")
    r.add_argument("--overlap", default="24h", metavar="DURATION", help="how long the old key keeps working "
                                                                        "(default 24h; 0 stops it now)")
    _store_flags(r)
    r.set_defaults(run=rotate)
    v = ls.add_parser("revoke", help="stop a key now")
    v.add_argument("id", metavar="ID")
    v.add_argument("--reason", default="revoked by the operator", help="recorded in the token log")
    _store_flags(v)
    v.set_defaults(run=revoke)
