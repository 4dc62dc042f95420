"""`serialink line report | close | status`: the line's bulk reports, from a shell or a line PC.

    serialink line report --batch 09506000134352.default.0 --report-id cam3-000172 \\
        --step verified --result pass --grade A --serials passed.txt --range 5000:9000
    serialink line close --batch 09506000134352.default.0 --report-id close-1
    serialink line status --batch 09506000134352.default.0

``--serials FILE`` reads one serial per line ('-': stdin); ``--range START:END`` names
batch indices START … END-1 (repeatable). Steps: open, printed, verified (with --result
pass|fail, optional --grade A-F), commissioned, rejected, unused, decommissioned, close.
The same --report-id again changes nothing (a line repeating a report after a crash is
safe); a report any serial refuses changes nothing and the message names the element.
Prints one JSON line: what the report did and the batch's counts per state.
Exit status: 0 done, 1 refused, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
import sys
from typing import Any

import orjson

from serialink.common import CommandError, require_key_dir, settings_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("line", help="report printed, verified, commissioned and scrapped serials of a batch",
                       description=__doc__.split("\n\n", 2)[2] if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = actions.add_parser("report", help="apply one bulk report")
    report.add_argument("--step", required=True, help="open, printed, verified, commissioned, rejected, unused, "
                                                      "decommissioned or close")
    report.add_argument("--result", choices=("pass", "fail"), default=None, help="verified: the inspection result")
    report.add_argument("--grade", choices=("A", "B", "C", "D", "F"), default=None, help="verified: the symbol grade")
    report.add_argument("--serials", default=None, metavar="FILE", help="serials, one per line ('-': stdin)")
    report.add_argument("--range", dest="ranges", action="append", default=[], metavar="START:END",
                        help="batch indices START..END-1 (repeatable)")
    report.add_argument("--at", default=None, help="when it happened, ISO 8601 with zone (default: now)")
    close = actions.add_parser("close", help="close the batch: decommission every serial never commissioned")
    status = actions.add_parser("status", help="the batch's counts per state")
    for q in (report, close, status):
        q.add_argument("--batch", required=True, metavar="ID", help="batch id (<gtin>.<profile>.<start>)")
        q.add_argument("--store", default=None, metavar="URL", help="unit store URL (default: settings)")
        q.add_argument("--key-dir", default=None, help="per-GTIN key directory (SERIALINK_KEY_DIR)")
    for q in (report, close):
        q.add_argument("--report-id", required=True, help="the line's id for this report (idempotency key)")
        q.add_argument("--reason", default=None, help="why (kept with the report)")
    p.set_defaults(run=run)


def _ranges(values: list[str]) -> list[dict[str, int]]:
    out = []
    for value in values:
        start, sep, end = value.partition(":")
        if not sep or not start.isdigit() or not end.isdigit() or int(end) <= int(start):
            raise CommandError(f"--range {value!r}: expected START:END with END > START", 2)
        out.append({"start": int(start), "count": int(end) - int(start)})
    return out


def _serials(path: str | None) -> list[str] | None:
    if path is None:
        return None
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as exc:
        raise CommandError(f"--serials {path}: {exc.strerror}; give a readable file") from None
    except UnicodeDecodeError:
        raise CommandError(f"--serials {path}: not UTF-8 text; give one serial per line") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _body(args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "close":
        body: dict[str, Any] = {"step": "close"}
    else:
        body = {"step": args.step, "result": args.result, "grade": args.grade, "at": args.at}
        serials, ranges = _serials(args.serials), _ranges(args.ranges)
        if serials is not None:
            body["serials"] = serials
        if ranges:
            body["ranges"] = ranges
    if args.reason is not None and not args.reason.strip():
        raise CommandError("--reason: blank; say why, or leave --reason out", 2)
    body.update(report_id=args.report_id, reason=args.reason)
    return {k: v for k, v in body.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(orjson.dumps(asyncio.run(_run(args))).decode() + "\n")
    return 0


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from serializer.keys import KeyStore
    from serializer.line_reports import submit
    from serializer.profiles import load_profiles
    from twin.batch import parse_batch_id
    from twin.events import Actor
    from twin.store import open_store

    parse_batch_id(args.batch)
    require_key_dir(args)
    settings = settings_for(args)
    async with await open_store(settings.store_url) as store:
        if args.action == "status":
            if await store.get_batch(args.batch) is None:
                raise CommandError(f"no batch {args.batch}; list them with the batch API or check --store")
            state = await store.get_line_state(args.batch)
            return {"batch": args.batch, "tracked": state is not None,
                    "line": state.counts() if state is not None else None}
        path = settings.config_dir / "serial-profiles.yaml"
        profiles = load_profiles(path if path.exists() else None)
        actor = Actor("line", f"cli:{getpass.getuser()}@{socket.gethostname()}"[:200])
        summary = await submit(store, KeyStore(settings.key_dir), profiles, args.batch, _body(args), actor)
        state = await store.get_line_state(args.batch)
        return {"batch": args.batch, "report": summary.as_json(), "line": state.counts() if state else None}
