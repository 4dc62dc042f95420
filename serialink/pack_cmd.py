"""`serialink pack` / `serialink unpack`: units and cases into an SSCC, and back out.

    serialink pack --parent 095060001343520017 --children units.txt --event-id pack-l3-000172
    serialink pack --parent 195060001343520014 --child 095060001343520017 --child 095060001343520024
    serialink unpack --parent 195060001343520014 --child 095060001343520017
    serialink unpack --parent 195060001343520014          # everything out

``--children FILE`` reads one child per line ('-': stdin), or the ``codes.csv`` a mint
wrote (its gtin and serial columns); ``--child`` names one
(repeatable). A child is a unit (Digital Link URI, SGTIN URN) or a case (SSCC, its URN
or Digital Link URI). The same --event-id again changes nothing; without one the id is
the CBV 2.0 hash of the event (with --at, its time too). A pack any child refuses (not
ours, not commissioned, packed elsewhere, another line's goods without
--allow-cross-site, a wrong SSCC check digit) changes nothing, and the message names it.
Prints one JSON line: what the pack did and its EPCIS AggregationEvent.
Exit status: 0 done, 1 refused, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import os
import socket
import sys
from typing import Any

import orjson

from serialink.common import CommandError, settings_for


def register(sub: argparse._SubParsersAction) -> None:
    for name, helptext in (("pack", "pack units or cases into an SSCC (case or pallet)"),
                           ("unpack", "take some or all children out of an SSCC")):
        p = sub.add_parser(name, help=helptext, description=__doc__.split("\n\n", 2)[2] if __doc__ else None,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--parent", required=True, metavar="SSCC", help="the case or pallet SSCC (18 digits)")
        p.add_argument("--children", default=None, metavar="FILE", help="children, one per line ('-': stdin)")
        p.add_argument("--child", dest="child", action="append", default=[], metavar="CHILD",
                       help="one child: unit DL URI / SGTIN URN, or SSCC (repeatable)")
        p.add_argument("--event-id", default=None, help="the line's id for this event (idempotency key)")
        p.add_argument("--at", default=None, help="when it happened, ISO 8601 with zone (default: now)")
        if name == "pack":
            p.add_argument("--allow-cross-site", action="store_true", help="mix goods of several lines or sites")
        p.add_argument("--store", default=None, metavar="URL", help="unit store URL (default: settings)")
        p.add_argument("--key-dir", default=None, help="per-GTIN key directory (SERIALINK_KEY_DIR)")
        p.set_defaults(run=run, action=name)


def _children(args: argparse.Namespace) -> list[Any]:
    out: list[Any] = list(args.child)
    if args.children is not None:
        try:
            text = sys.stdin.read() if args.children == "-" else open(args.children, encoding="utf-8").read()
        except OSError as exc:
            raise CommandError(f"--children {args.children}: {exc.strerror}; give a readable file") from None
        except UnicodeDecodeError:
            raise CommandError(f"--children {args.children}: not UTF-8 text; give one child per line") from None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines and lines[0].startswith("gtin,serial"):  # the codes.csv a mint wrote: pack what was minted
            out += [{"gtin": row["gtin"], "serial": row["serial"]} for row in csv.DictReader(lines)]
        else:
            out += lines
    if args.action == "pack" and not out:
        raise CommandError("name the children: --children FILE or --child CHILD (repeatable)", 2)
    return out


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(orjson.dumps(asyncio.run(_run(args))).decode() + "\n")
    return 0


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from resolver.journeys.aggregation import aggregation_event, apply
    from resolver.journeys.epc_names import names_for_events
    from serializer.keys import KeyStore
    from serializer.profiles import load_profiles
    from serializer.verify import SerialVerifier
    from twin.aggregation import AggregationConflict
    from twin.errors import InvalidInput
    from twin.events import Actor
    from twin.store import open_store

    if args.key_dir is not None and not os.path.isdir(args.key_dir):
        raise CommandError(f"--key-dir: {args.key_dir} is not a directory; give the per-GTIN key directory "
                           "the batches were minted with")
    body: dict[str, Any] = {"action": args.action, "parent": args.parent, "children": _children(args)}
    if args.event_id is not None:
        body["eventID"] = args.event_id
    if args.at is not None:
        body["at"] = args.at
    if getattr(args, "allow_cross_site", False):
        body["allow_cross_site"] = True
    settings = settings_for(args)
    names = {"parent": "--parent", "eventID": "--event-id", "at": "--at"}
    async with await open_store(settings.store_url) as store:
        path = settings.config_dir / "serial-profiles.yaml"
        profiles = load_profiles(path if path.exists() else None)
        verifier = SerialVerifier(store, KeyStore(settings.key_dir), profiles)
        actor = Actor("line", f"cli:{getpass.getuser()}@{socket.gethostname()}"[:200])
        try:
            summary = (await apply(store, verifier, [(body, "", ("parent", "children"))], actor))[0]
        except (InvalidInput, AggregationConflict) as exc:
            field = exc.field
            where = names.get(field) or (f"child {int(field[9:-1]) + 1} ({body['children'][int(field[9:-1])]})"
                                         if field.startswith("children[") else field)
            reason = exc.problem if isinstance(exc, InvalidInput) else exc.reason
            raise CommandError(f"{where}: {reason}") from None
        events = [e for e in await store.aggregation_events(summary.parent) if e.event_id == summary.event_id]
        names = await names_for_events(store, _configured_prefixes(settings.rules_file), events)
        return {**summary.as_json(), "event": aggregation_event(events[0], names) if events else None}


def _configured_prefixes(rules_file: Any) -> list[str]:
    """The rules' company prefixes, for the event's URNs (none if the rules do not load: the
    pack is done, its URNs then fall back to the SSCC registry and 7 digits)."""
    from resolver.rules.compiler import RulesInvalid, load_rules

    try:
        return list(load_rules(rules_file).by_prefix) if rules_file is not None else []
    except RulesInvalid:
        return []
