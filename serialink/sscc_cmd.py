"""`serialink sscc mint | list`: SSCCs (AI 00) for cases and pallets, and their labels.

    serialink sscc mint --prefix 9506000 --extension 3 --count 500 --out DIR \\
        [--request-id ID] [--format csv,zpl] [--store URL] [--stem URL]
    serialink sscc list --prefix 9506000 --extension 3

SSCCs come from the same durable allocator as serial batches: the range is recorded in the
store before any file is written, the same --request-id returns the same SSCCs (and
rewrites identical files), and no SSCC is ever issued twice. Without --request-id one is
derived from the parameters and the output directory, so an identical re-run is a retry.
Files: ssccs.csv (sscc, element_string, dl_uri), sscc-labels.zpl (GS1-128 + DL QR per
label, template config/zpl/sscc-label.zpl), manifest.json last.
Exit status: 0 done, 1 refused (the message names the field), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import socket
import sys
from pathlib import Path

import orjson

from serialink.common import settings_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sscc", help="mint SSCCs for cases and pallets and write their labels",
                       description=__doc__.split("\n\n", 2)[2] if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    mint = actions.add_parser("mint", help="allocate SSCCs and write their label files")
    mint.add_argument("--count", required=True, help="number of SSCCs, 1 to 1,000,000")
    mint.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory for the label files")
    mint.add_argument("--request-id", default=None, help="the line's own request id (idempotency key)")
    mint.add_argument("--format", default="csv,zpl", metavar="LIST", help="comma-separated: csv, zpl (default both)")
    mint.add_argument("--site", default=None, help="site name")
    mint.add_argument("--line", default=None, help="line name")
    mint.add_argument("--stem", default=None,
                      help="DL URI stem, an https URL (default: SERIALINK_DL_STEM, else the rules' resolver.root)")
    mint.add_argument("--zpl-template", default=None, type=Path,
                      help="ZPL label template (default config/zpl/sscc-label.zpl)")
    listing = actions.add_parser("list", help="the SSCC ranges issued under a prefix and extension digit")
    for q in (mint, listing):
        q.add_argument("--prefix", required=True, help="GS1 company prefix, 4-12 digits")
        q.add_argument("--extension", required=True, help="extension digit 0-9")
        q.add_argument("--store", default=None, metavar="URL", help="unit store URL (default: settings)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "mint":
        manifest = asyncio.run(_mint(args))
        out = {"batch_id": manifest["batch_id"], "request_id": manifest["request_id"], "out": str(args.out),
               "first": manifest["first"], "last": manifest["last"], "count": manifest["range"]["count"],
               "files": [{k: f[k] for k in ("name", "bytes", "sha256")} for f in manifest["files"]]}
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
    else:
        for row in asyncio.run(_list(args)):
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
    return 0


def _default_request_id(args: argparse.Namespace) -> str:
    body = ["sscc", args.prefix, str(args.extension), str(args.count), args.site, args.line,
            str(Path(args.out).resolve())]
    return "cli-" + hashlib.sha256(orjson.dumps(body)).hexdigest()[:24]


async def _mint(args: argparse.Namespace) -> dict:
    from serialink.mint_cmd import default_stem
    from serializer.codes import check_stem
    from serializer.logistic_labels import check_output, parse_formats, produce
    from serializer.sscc import SsccRequest, mint_ssccs
    from twin.batch import BatchStatus
    from twin.events import Actor
    from twin.store import open_store

    # everything that can be refused is refused before an SSCC is allocated
    formats = parse_formats(args.format)
    request = SsccRequest.parse({"prefix": args.prefix, "extension": args.extension, "count": args.count,
                                 "request_id": args.request_id or _default_request_id(args),
                                 "site": args.site, "line": args.line})
    settings = settings_for(args)
    stem = check_stem(args.stem) if args.stem is not None else default_stem(settings)
    await asyncio.to_thread(check_output, args.out, request.request_id, formats, request.count, args.zpl_template)
    actor = Actor("manufacturer", f"cli:{getpass.getuser()}@{socket.gethostname()}"[:200])
    async with await open_store(settings.store_url) as store:
        ssccs = await mint_ssccs(store, request, actor)
        manifest = await asyncio.to_thread(produce, ssccs, stem, formats, args.out, args.zpl_template)
        if ssccs.batch.status is BatchStatus.ALLOCATED:
            await store.set_batch_status(ssccs.batch.id, BatchStatus.COMMITTED, actor,
                                         f"labels delivered to {Path(args.out).resolve()}"[:500])
    return manifest


async def _list(args: argparse.Namespace) -> list[dict]:
    from serializer.sscc import check_extension, check_prefix, list_ssccs
    from twin.store import open_store

    prefix, extension = check_prefix(args.prefix), check_extension(args.extension)
    settings = settings_for(args)
    async with await open_store(settings.store_url) as store:
        ranges = await list_ssccs(store, prefix, extension)
    return [{"batch_id": r.batch.id, "request_id": r.batch.request_id, "status": str(r.batch.status),
             "count": r.batch.count, "first": r.sscc(0), "last": r.sscc(r.batch.count - 1),
             "site": r.batch.site, "line": r.batch.line,
             "created_at": r.batch.created_at.isoformat().replace("+00:00", "Z")} for r in ranges]
