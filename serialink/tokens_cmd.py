"""`serialink tokens issue | list | revoke`: the operator's door to every role's credential.

``issue`` signs with the secret and store ``serialink serve`` uses (same settings, same
flags) and prints the token alone on stdout, so ``T=$(serialink tokens issue --role
manufacturer)`` works; what it issued goes to stderr. ``list`` shows id, role, scope,
subject, expiry and whether it is revoked, never a token. ``revoke ID`` takes effect on
every running resolver within a second.

Without ``--gtin``/``--prefix`` an admin, manufacturer or regulator token covers every
product; the other roles must name theirs. See docs/access.md for what each role sees.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import Any

import orjson

from resolver.access.durations import format_duration, parse_duration
from resolver.access.grants import MAX_VISIT_TTL
from resolver.access.linekeys import iso
from resolver.access.tokens import MAX_TTL
from resolver.errors import ResolverError
from serialink.common import CommandError, settings_for

ROLES = ("admin", "manufacturer", "regulator", "installer", "technician", "line")
DEFAULT_TTL = {"technician": 8 * 3600, "installer": 8 * 3600}  # others: 30 days
LONG_TTL = 30 * 86400
ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: grant fields -> the flag that sets them, so a refusal names what the operator typed
FLAGS = {"role": "--role", "principal": "--subject", "ttl": "--ttl", "gtins": "--gtin", "prefixes": "--prefix",
         "unit": "--serial", "sites": "--site", "lines": "--line", "all_products": "--gtin"}


def duration(text: str, flag: str, *, low: int, high: int) -> int:
    """Seconds of a --ttl/--overlap value; a usage error (exit 2) when it is not one."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise CommandError(f"{flag}: {exc}", 2) from None
    if not low <= seconds <= high:
        raise CommandError(f"{flag}: {text!r} is out of range: {format_duration(low)} to {format_duration(high)}", 2)
    return seconds


def flag_error(exc: ResolverError) -> CommandError:
    """A grant refusal, worded with the flag the operator typed."""
    field = (exc.field or "").split("[")[0]
    return CommandError(f"{FLAGS.get(field, field)}: {exc.reason}", 1)


async def _with_store(args: argparse.Namespace, work):
    from twin.store import open_store

    settings = settings_for(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await open_store(settings.store_url)
    try:
        return await work(store, settings)
    finally:
        await store.close()


def issue(args: argparse.Namespace) -> int:
    from resolver.access import issued

    gtins, prefixes = args.gtin or [], args.prefix or []
    if args.serial is not None and len(gtins) != 1:
        raise CommandError("--serial names one unit: give exactly one --gtin with it", 2)
    if (args.site is None) != (args.line is None):
        raise CommandError("--site and --line go together", 2)
    if args.site is not None and args.role != "line":
        raise CommandError("--site and --line scope a factory line's token: use them with --role line", 2)
    if not gtins and not prefixes and args.role not in issued.WHOLE_CATALOGUE:
        raise CommandError(f"--gtin: a {args.role} token names its products (--gtin or --prefix)", 2)
    high = MAX_VISIT_TTL if args.serial is not None else MAX_TTL
    ttl = duration(args.ttl, "--ttl", low=60, high=high) if args.ttl else min(DEFAULT_TTL.get(args.role, LONG_TTL), high)

    async def work(store, settings) -> tuple[str, str, dict[str, Any]]:
        return await issued.issue(store, settings.secret(), role=args.role, ttl=ttl, gtins=gtins, prefixes=prefixes,
                                  serial=args.serial, site=args.site, line=args.line, subject=args.subject)

    try:
        token, token_id, record = asyncio.run(_with_store(args, work))
    except ResolverError as exc:
        raise flag_error(exc) from None
    print(token)
    print(f"serialink tokens: issued {token_id} ({record['role']}, {issued.scope_text(record)}) "
          f"until {iso(record['exp'])}; revoke with: serialink tokens revoke {token_id}", file=sys.stderr)
    return 0


def list_tokens(args: argparse.Namespace) -> int:
    from resolver.access import issued

    async def work(store, settings):
        return await issued.listing(store, [args.role] if args.role else None)

    rows = asyncio.run(_with_store(args, work))
    if args.json:
        for row in rows:
            print(orjson.dumps(row).decode())
        return 0
    print_table(rows, ("id", "role", "scope", "subject", "expires", "revoked"))
    return 0


def print_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """A plain aligned table (a header, one line per row); an empty list says so on stderr."""
    if not rows:
        print("(none)", file=sys.stderr)
        return
    cells = [[("yes" if v is True else "no" if v is False else "" if v is None else str(v))
              for v in (row.get(c) for c in columns)] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def revoke(args: argparse.Namespace) -> int:
    from resolver.access import issued

    if not ID.fullmatch(args.id):
        raise CommandError(f"ID: {args.id!r} is not a token id (1-64 of [A-Za-z0-9_-]; see serialink tokens list)", 2)

    async def work(store, settings):
        return await issued.revoke(store, args.id, args.reason)

    try:
        record, newly = asyncio.run(_with_store(args, work))
    except ResolverError as exc:
        raise CommandError(exc.reason, 1) from None
    state = "revoked" if newly else "was already revoked"
    print(f"serialink tokens: {args.id} ({record['role']}, {record['principal']}) {state}; "
          "running resolvers refuse it within a second", file=sys.stderr)
    return 0


def _store_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="URL", help="store URL (default: as serialink serve: settings, then ./var)")
    p.add_argument("--config", metavar="DIR", help="configuration directory (settings.yaml)")
    p.add_argument("--data-dir", metavar="DIR", help="where local data lives, the token secret too (default ./var)")


def register(sub) -> None:
    p = sub.add_parser("tokens", help="issue, list and revoke scoped tokens",
                       description="Issue, list and revoke the scoped tokens every role signs in with "
                                   "(docs/access.md). Uses the same settings as `serialink serve`.")
    ts = p.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    i = ts.add_parser("issue", help="sign a token and print it alone on stdout",
                      description="Sign a token with the configured secret, record it in the store and print it "
                                  "alone on stdout: T=$(serialink tokens issue --role manufacturer).")
    i.add_argument("--role", required=True, choices=ROLES)
    i.add_argument("--gtin", action="append", metavar="GTIN", help="a GTIN-14 the token covers (repeatable)")
    i.add_argument("--prefix", action="append", metavar="GCP", help="a GS1 company prefix it covers (repeatable)")
    i.add_argument("--serial", metavar="S", help="one unit (with one --gtin): a per-visit token, at most 24 h")
    i.add_argument("--site", metavar="SITE", help="factory site (--role line, with --line)")
    i.add_argument("--line", metavar="LINE", help="factory line (--role line, with --site)")
    i.add_argument("--ttl", metavar="DURATION", help="lifetime: 8h, 30d, PT8H … (default 8h for technician and "
                                                     "installer, 30d otherwise)")
    i.add_argument("--subject", metavar="TEXT", help="who the token is for (default <role>:cli)")
    _store_flags(i)
    i.set_defaults(run=issue)
    ls = ts.add_parser("list", help="tokens that have not expired (never the tokens themselves)")
    ls.add_argument("--role", choices=ROLES + ("owner",), help="only this role")
    ls.add_argument("--json", action="store_true", help="one JSON object per token")
    _store_flags(ls)
    ls.set_defaults(run=list_tokens)
    r = ts.add_parser("revoke", help="revoke a token by id")
    r.add_argument("id", metavar="ID", help="the token id (from `tokens list` or `tokens issue`)")
    r.add_argument("--reason", default="revoked by the operator", help="recorded in the token log")
    _store_flags(r)
    r.set_defaults(run=revoke)
