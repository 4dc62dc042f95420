"""`serialink import`: externally issued codes (a national issuer's list) into a batch.

The file holds one code per line — ``GTIN,serial``, ``GTIN<TAB>serial``, an element string
or a DL URI (see serializer.imports). Every line is checked before anything is stored; a
bad one is refused by its line number. The imported batch then behaves like a minted one:
the resolver verifies its serials, it can be voided, scrapped labels decommissioned. The
same ``--request-id`` with the same file is a retry and returns the same batch.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import socket
from pathlib import Path

import orjson

from serialink.common import CommandError, settings_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import externally issued GTIN + serial codes into a batch",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="the list: one code per line (GTIN,serial / element string / DL URI)")
    p.add_argument("--gtin", required=True, help="the GTIN every code must carry")
    p.add_argument("--request-id", default=None, help="idempotency key (default: derived from the file's content)")
    p.add_argument("--lot", default=None, help="batch/lot, AI (10)")
    p.add_argument("--expiry", default=None, help="expiry date YYYY-MM-DD, AI (17)")
    p.add_argument("--site", default=None)
    p.add_argument("--line", default=None)
    p.add_argument("--store", default=None, metavar="URL", help="unit store URL (default: settings)")
    p.add_argument("--key-dir", default=None, type=Path, help="per-GTIN key directory (SERIALINK_KEY_DIR)")
    p.set_defaults(run=run)


async def _import(args: argparse.Namespace, lines: list[str]) -> dict:
    from serializer.imports import import_codes
    from serializer.keys import KeyStore
    from twin.events import Actor
    from twin.store import open_store

    request_id = args.request_id or "import-" + hashlib.sha256("\n".join(lines).encode()).hexdigest()[:24]
    actor = Actor("manufacturer", f"cli:{getpass.getuser()}@{socket.gethostname()}"[:200])
    settings = settings_for(args)
    async with await open_store(settings.store_url) as store:
        batch = await import_codes(store, KeyStore(settings.key_dir), args.gtin, lines, request_id, actor,
                                   lot=args.lot, expiry=args.expiry, site=args.site, line=args.line)
    return {"batch_id": batch.id, "request_id": batch.request_id, "gtin": batch.gtin, "count": batch.count,
            "status": str(batch.status)}


def run(args: argparse.Namespace) -> int:
    try:
        lines = args.file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"file: cannot read {args.file}: {exc}") from None
    result = asyncio.run(_import(args, lines))
    print(orjson.dumps(result).decode())
    return 0
