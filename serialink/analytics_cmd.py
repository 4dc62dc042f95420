"""`serialink analytics`: export scans and twin events as Parquet, and ask the reports.

``serialink analytics export [--since …] [--until …] --out DIR`` writes the period's scan
events and twin events under DIR, partitioned by day (``scans/day=YYYY-MM-DD/…``,
``events/day=…``), plus snapshots of batches and overlays. Append-only and idempotent per
period: only what no earlier export covered is written (DIR/_periods.json), so running it
from cron every few minutes, or twice, is safe. ``--since`` defaults to the end of the
last export, ``--until`` to now less ``--settle`` seconds (scans still in a worker's
buffer). Point SERIALINK_ANALYTICS_DIR at DIR and /v1/analytics and /u/analytics answer
from it.

``serialink analytics report NAME [--since …] [--until …] [--gtin …] [--by …] --dir DIR``
prints one report as CSV (the same numbers the API and page serve).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from serialink.common import CommandError, settings_for


def _time(value: str, flag: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"{flag}: expected an ISO 8601 date or time (2025-03-01 or 2025-03-01T12:00Z), "
                           f"got {value!r}", 2) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _check_gtin(value: str) -> None:
    from ext import verify_check_digit

    if not (len(value) == 14 and value.isdigit() and verify_check_digit(value)):
        raise CommandError(f"--gtin: expected a 14-digit GTIN with its check digit, got {value!r:.40}", 2)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def register(sub: argparse._SubParsersAction) -> None:
    from resolver.analytics.reports import DIMENSIONS, REPORTS

    p = sub.add_parser("analytics", help="export scans and events as Parquet; print analytics reports",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    e = verbs.add_parser("export", help="scan and twin events as day-partitioned Parquet (append-only)")
    e.add_argument("--since", default=None, help="start (ISO 8601, UTC if no offset); default: the last export's end")
    e.add_argument("--until", default=None, help="end, exclusive; default: now less --settle")
    e.add_argument("--settle", type=float, default=60.0, metavar="SECONDS",
                   help="how far behind now an export may end: scans still buffered by workers (default 60)")
    e.add_argument("--out", required=True, type=Path, help="the export directory")
    e.add_argument("--store", default=None, metavar="URL", help="unit store URL (default: settings)")
    e.set_defaults(run=run_export)
    r = verbs.add_parser("report", help="one report as CSV, from an export directory")
    r.add_argument("name", choices=REPORTS)
    r.add_argument("--dir", type=Path, default=None, help="the export directory (default: settings.analytics_dir)")
    r.add_argument("--since", default="1970-01-01T00:00:00Z")
    r.add_argument("--until", default=None, help="default: now")
    r.add_argument("--gtin", default=None)
    r.add_argument("--by", default="role", choices=DIMENSIONS, help="scans-per-day: the dimension")
    r.set_defaults(run=run_report)


def run_export(args: argparse.Namespace) -> int:
    from resolver.analytics.export import export
    from twin.store import open_store

    if not 0 <= args.settle < 86_400 * 365:  # also refuses nan
        raise CommandError(f"--settle: {args.settle:g} is not a number of seconds from 0 to a year; give how "
                           "long scans may stay buffered in the workers, e.g. 60")
    latest = _ms(datetime.now(UTC)) - int(args.settle * 1000)
    until = _ms(_time(args.until, "--until")) if args.until else latest
    if until > latest:
        raise CommandError(f"--until: at most now less --settle ({args.settle:g} s): scans of a later time may "
                           "still be buffered by a worker, and an exported period is never written again")
    since = _ms(_time(args.since, "--since")) if args.since else None
    if since is not None and since >= until:
        raise CommandError("--since: must be before --until")

    async def go():
        settings = settings_for(args)
        async with await open_store(settings.store_url) as store:
            return await export(store, args.out, since, until)

    started = time.perf_counter()
    report = asyncio.run(go())
    print(orjson.dumps({"out": str(args.out), "periods": report.periods, "scans": report.scans,
                        "events": report.events, "files": report.files,
                        "seconds": round(time.perf_counter() - started, 3)}).decode())
    return 0


def run_report(args: argparse.Namespace) -> int:
    from resolver.analytics.reports import Analytics

    root = args.dir or settings_for(args).analytics_dir
    if not Path(root).is_dir():
        raise CommandError(f"--dir: {root} is not an export directory; write one first with "
                           f"`serialink analytics export --out {root}`")
    since = _time(args.since, "--since")
    until = _time(args.until, "--until") if args.until else datetime.now(UTC)
    if since >= until:
        raise CommandError("--since: must be before --until")
    if args.gtin is not None:
        _check_gtin(args.gtin)
    analytics = Analytics(root)
    try:
        result = analytics.run(args.name, since=since, until=until, gtin=args.gtin, by=args.by)
    finally:
        analytics.close()
    print(result.as_csv(), end="")
    return 0
