"""`serialink scans export --since WHEN`: recorded scans as the JSON Lines `rules diff` replays.

One object per scan, oldest first within a GTIN::

    {"uri": "https://id.gs1.org/01/09506000134352/21/ABC", "role": "consumer", "state": "sold",
     "context": null, "at": "2026-01-02T10:00:00.123Z", "answered_link_type": "gs1:pip"}

``uri`` carries the identity (GTIN, lot, serial), ``role`` and ``state`` what the resolver
routed on, ``context`` the GS1 context the scan asked for; ``rules diff --scans`` reads all
three. The store keeps the link type a scan was *answered* with, not whether the client asked
for one, so it is exported as ``answered_link_type`` (informational) and the replay lets the
rules choose, as they did for the original scan unless it named a linkType.

``WHEN`` is a date or date-time (ISO 8601; UTC unless it says otherwise) or a span back
from now: ``90m``, ``24h``, ``7d``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from datetime import UTC, date, datetime

import orjson

from serialink.common import CommandError, settings_for

_SPAN = re.compile(r"([0-9]{1,6})([mhd])", re.ASCII)
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_since(text: str, now_ms: int | None = None) -> int:
    """Epoch milliseconds of ``--since``.

    >>> parse_since("2026-01-01"), parse_since("2026-01-01T01:00:00+01:00"), parse_since("2h", 10_000_000)
    (1767225600000, 1767225600000, 2800000)
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    span = _SPAN.fullmatch(text.strip())
    if span:
        return now_ms - int(span.group(1)) * _UNIT_MS[span.group(2)]
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text, re.ASCII):
            at = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        elif re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?", text, re.ASCII):
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
            at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        else:
            raise ValueError(text)
    except ValueError:
        raise CommandError(f"--since: expected a date (2026-01-31), a date-time (2026-01-31T08:00:00Z) or a "
                           f"span back from now (90m, 24h, 7d), got {text!r}", 2) from None
    return int(at.timestamp() * 1000)


def export_line(scan, stem: str = "https://id.gs1.org") -> bytes:
    """One recorded scan as a line `rules diff --scans` reads."""
    from ext import build

    elements = [("01", scan.gtin)]
    if scan.serial is not None:
        elements.append(("21", scan.serial))
    elif scan.lot is not None:
        elements.append(("10", scan.lot))
    record = {"uri": build(elements).uri(stem), "role": scan.role, "state": scan.state or "unserialised",
              "context": scan.context,
              "at": datetime.fromtimestamp(scan.at_ms / 1000, UTC).isoformat(timespec="milliseconds")
              .replace("+00:00", "Z"),
              "answered_link_type": scan.link_type}
    if scan.serial is not None and scan.lot is not None:
        record["lot"] = scan.lot
    return orjson.dumps(record) + b"\n"


async def _export(args: argparse.Namespace, since_ms: int, out) -> int:
    from twin.store import open_store

    settings = settings_for(args)
    written = 0
    async with await open_store(settings.store_url) as store:
        async for chunk in store.scans_since(since_ms):
            out.write(b"".join(export_line(scan) for scan in chunk))
            written += len(chunk)
    return written


def export(args: argparse.Namespace) -> int:
    since_ms = parse_since(args.since)
    if args.out is None or args.out == "-":
        written = asyncio.run(_export(args, since_ms, sys.stdout.buffer))
        sys.stdout.buffer.flush()
    else:
        try:
            out = open(args.out, "wb")  # noqa: SIM115 (closed below, also on error)
        except OSError as exc:
            raise CommandError(f"--out: cannot write {args.out} ({exc.strerror})") from None
        with out:
            written = asyncio.run(_export(args, since_ms, out))
    print(f"serialink scans export: {written} scan(s) since "
          f"{datetime.fromtimestamp(since_ms / 1000, UTC).isoformat()}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scans", help="export recorded scans (for `rules diff --scans`)")
    ss = p.add_subparsers(dest="scans_command", required=True, metavar="ACTION")
    e = ss.add_parser("export", help="recorded scans since a time, as JSON Lines",
                      description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--since", required=True, metavar="WHEN", help="date, date-time or span (24h, 7d)")
    e.add_argument("--out", default=None, metavar="FILE", help="write here (default: stdout)")
    e.add_argument("--store", default=None, metavar="URL", help="unit store URL (default: settings)")
    e.set_defaults(run=export)
