"""`serialink mint`: allocate a batch of serials and write the files a line prints from.

    serialink mint --gtin 09506000134352 --count 1000000 --profile default \\
        --format csv,zpl,jsonl,epcis,svg --out DIR [--request-id ID] [--lot L] [--expiry D]

Everything that can be checked (output directory, formats, template, stem, expiry) is
checked before a serial is allocated. The batch is recorded in the store before any file
is written; files appear under their real names only when complete, ``manifest.json``
last, and then the batch is marked committed. A batch left allocated (files never
delivered) shows in ``serialink batches list``: finish it by running the same command
again, or void it with ``serialink batches void``. Running the same command again with
the same ``--request-id`` returns the same batch and rewrites byte-identical files (that is
how a run killed half-way is finished). Without ``--request-id`` one is derived from the
parameters and the output directory, so an identical re-run is also a retry.
Exit status: 0 done, 1 refused (the message names the field), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import socket
import sys
import time
from pathlib import Path

import orjson

from serialink.common import positive_int, settings_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mint",
        help="mint a batch of GTIN + serial codes and write label files",
        description=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--gtin", required=True, help="GTIN-8/12/13/14 (check digit verified)")
    p.add_argument("--count", required=True, help="number of serials, 1 to 10,000,000")
    p.add_argument("--profile", default="default", help="serial profile name (config/serial-profiles.yaml)")
    p.add_argument("--format", default="csv", metavar="LIST",
                   help="comma-separated: csv, zpl, jsonl, epcis, svg, png, pdf (default csv)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory for the batch files")
    p.add_argument("--request-id", default=None, help="the line's own request id (idempotency key)")
    p.add_argument("--lot", default=None, help="batch/lot, AI (10)")
    p.add_argument("--expiry", default=None, help="expiry date YYYY-MM-DD, AI (17)")
    p.add_argument("--site", default=None, help="site name")
    p.add_argument("--line", default=None, help="line name")
    p.add_argument("--line-tracking", action="store_true",
                   help="its serials resolve as not_commissioned until `serialink line report` commissions them")
    p.add_argument("--stem", default=None,
                   help="DL URI stem, an https URL (default: SERIALINK_DL_STEM, else the rules' resolver.root)")
    p.add_argument("--store", default=None, metavar="URL", help="unit store URL (default: settings)")
    p.add_argument("--key-dir", default=None, type=Path, help="per-GTIN key directory (SERIALINK_KEY_DIR)")
    p.add_argument("--profiles", default=None, type=Path, help="serial profiles YAML")
    p.add_argument("--zpl-template", default=None, type=Path, help="ZPL label template (default config/zpl/label.zpl)")
    p.add_argument("--workers", default=None, type=positive_int, help="image worker processes (default: one per CPU)")
    p.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="show a progress bar (default: when stderr is a terminal)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(run=run)


def _default_request_id(args: argparse.Namespace) -> str:
    body = [args.gtin, str(args.count), args.profile, args.lot, args.expiry, args.site, args.line,
            str(Path(args.out).resolve())]
    return "cli-" + hashlib.sha256(orjson.dumps(body)).hexdigest()[:24]


def run(args: argparse.Namespace) -> int:
    manifest = asyncio.run(_mint(args))
    sys.stdout.write(orjson.dumps({
        "batch_id": manifest["batch_id"], "request_id": manifest["request_id"],
        "out": str(args.out), "range": manifest["range"],
        "files": [{k: f[k] for k in ("name", "bytes", "sha256")} for f in manifest["files"]],
    }).decode() + "\n")
    return 0


def default_stem(settings) -> str:
    """Where minted codes point unless told otherwise: ``dl_stem``, else this resolver's
    ``resolver.root`` from the rules, so a QR printed with the defaults reaches the resolver
    that knows its serials (not id.gs1.org, which does not)."""
    from resolver.rules.compiler import load_rules
    from serializer.codes import check_stem

    if settings.dl_stem:
        return check_stem(settings.dl_stem, "dl_stem")
    return str(load_rules(settings.rules_file).root).rstrip("/")


async def _mint(args: argparse.Namespace) -> dict:
    from serializer.codes import CodeShape, check_stem
    from serializer.keys import KeyStore
    from serializer.minting import BatchRequest, mint
    from serializer.produce import OutputOptions, check_output, parse_formats, produce
    from serializer.profiles import load_profiles
    from twin.batch import BatchStatus
    from twin.events import Actor
    from twin.store import open_store

    # everything that can be refused is refused before a serial is allocated
    formats = parse_formats(args.format)
    request = BatchRequest.parse({
        "gtin": args.gtin, "count": args.count, "profile": args.profile,
        "request_id": args.request_id or _default_request_id(args), "lot": args.lot,
        "expiry": args.expiry, "site": args.site, "line": args.line})
    settings = settings_for(args)
    stem = check_stem(args.stem) if args.stem is not None else default_stem(settings)
    profiles = load_profiles(args.profiles)
    options = OutputOptions(args.zpl_template, args.workers)
    shape = CodeShape(request.gtin, request.lot, request.expiry, stem)
    await asyncio.to_thread(check_output, args.out, formats, shape, request.count, request.request_id, options)
    keys = KeyStore(settings.key_dir)
    actor = Actor("manufacturer", f"cli:{getpass.getuser()}@{socket.gethostname()}"[:200])
    async with await open_store(settings.store_url) as store:
        minted = await mint(store, keys, profiles, request, actor)
        if args.line_tracking:
            from serializer.line_reports import submit

            await submit(store, keys, profiles, minted.batch.id, {"report_id": "open", "step": "open"}, actor,
                         minted.batch)
        show = sys.stderr.isatty() if args.progress is None else args.progress
        if not show:
            manifest = await asyncio.to_thread(produce, minted, shape, formats, args.out, None, options)
        else:
            manifest = await asyncio.to_thread(_with_progress, minted, shape, formats, args.out, options)
        if minted.batch.status is BatchStatus.ALLOCATED:  # delivered: `serialink batches list` says so
            await store.set_batch_status(minted.batch.id, BatchStatus.COMMITTED, actor,
                                         f"files delivered to {Path(args.out).resolve()}"[:500])
    return manifest


def _with_progress(minted, shape, formats, out, options) -> dict:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from serializer.produce import produce

    total = minted.batch.count * len(formats)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, transient=False, redirect_stdout=False) as bar:
        task = bar.add_task(f"minting {minted.batch.id}", total=total, rate="")
        started = time.perf_counter()
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.update(task, advance=n, rate=f"{done / elapsed:,.0f} codes/s")

        return produce(minted, shape, formats, out, advance, options)
