"""`serialink dpp export`: the records a Digital Product Passport registry needs, per unit.

For every serial of a GTIN's minted batches (or of one batch): the unit's unique
identifier as its GS1 Digital Link URI on this resolver, the resolver endpoint that
answers its passport (the URI with ``linkType=gs1:dpp``) and the JSON-LD passport API,
and the product's commodity code (``commodity_code`` in the rules' product entry).
Written as JSON Lines or CSV, streamed: memory stays flat whatever the batch size.
Voided batches are left out (their serials were never valid); imported batches are too,
with a note on stderr: their serials live in the issuer's file, not in a permutation.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from serialink.common import CommandError, require_key_dir, settings_for

FIELDS = ("uid", "gtin", "serial", "batch_id", "lot", "expiry", "product_name", "commodity_code", "resolver_endpoint",
          "dpp_api")
CHUNK = 10_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dpp", help="Digital Product Passport registry records")
    ds = p.add_subparsers(dest="dpp_command", required=True, metavar="ACTION")
    e = ds.add_parser("export", help="registry records for a GTIN's or a batch's units (JSON Lines or CSV)",
                      description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    which = e.add_mutually_exclusive_group(required=True)
    which.add_argument("--gtin", help="every minted batch of this GTIN")
    which.add_argument("--batch", metavar="BATCH_ID", help="one batch, <gtin>.<profile>.<start>")
    e.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    e.add_argument("--out", type=Path, default=None, help="file to write (default: standard output)")
    e.add_argument("--rules", type=Path, default=None, help="rules file (resolver root, product entries)")
    e.add_argument("--store", default=None, metavar="URL", help="unit store URL (default: settings)")
    e.add_argument("--key-dir", default=None, type=Path, help="per-GTIN key directory (SERIALINK_KEY_DIR)")
    e.add_argument("--config-dir", default=None, type=Path)
    e.set_defaults(run=export)


def _records(minted: Any, root: str, product: Any) -> Iterator[dict[str, Any]]:
    from ext import escape

    batch = minted.batch
    for offset in range(0, batch.count, CHUNK):
        for serial in minted.serials(offset, min(CHUNK, batch.count - offset)):
            uid = f"{root}/01/{batch.gtin}/21/{escape(serial)}"
            yield {"uid": uid, "gtin": batch.gtin, "serial": serial, "batch_id": batch.id, "lot": batch.lot,
                   "expiry": batch.expiry.isoformat() if batch.expiry else None,
                   "product_name": product.name if product else None,
                   "commodity_code": product.commodity_code if product else None,
                   "resolver_endpoint": f"{uid}?linkType=gs1:dpp",
                   "dpp_api": f"{root}/v1/units/01/{batch.gtin}/21/{escape(serial)}/dpp"}


async def _export(args: argparse.Namespace, out: IO[str]) -> int:
    from resolver.rules.compiler import RulesInvalid, load_rules
    from serializer.keys import KeyStore
    from serializer.minting import regenerate
    from serializer.profiles import load_profiles
    from twin.batch import BatchKind, BatchStatus, parse_batch_id
    from twin.errors import InvalidInput
    from twin.store import open_store

    settings = settings_for(args)
    try:
        rules = load_rules(args.rules or settings.rules_file)
    except RulesInvalid as exc:
        raise CommandError(f"rules: {exc}; fix the file or pass --rules") from None
    try:
        gtin = parse_batch_id(args.batch)[0] if args.batch else args.gtin
    except InvalidInput as exc:
        raise CommandError(f"--batch: {exc.problem}", 2) from None
    if not (isinstance(gtin, str) and len(gtin) == 14 and gtin.isdigit()):
        raise CommandError(f"--gtin: expected a 14-digit GTIN, got {gtin!r}", 2)
    product = rules.product_for(gtin)
    path = settings.config_dir / "serial-profiles.yaml"
    profiles = load_profiles(path if path.exists() else None)
    keys = KeyStore(settings.key_dir)
    written = 0
    writer = csv.DictWriter(out, FIELDS, lineterminator="\n") if args.format == "csv" else None
    if writer is not None:
        writer.writeheader()
    async with await open_store(settings.store_url) as store:
        if args.batch:
            batch = await store.get_batch(args.batch)
            if batch is None:
                raise CommandError(f"--batch: no batch {args.batch!r} in {settings.store_url}")
            batches = [batch]
        else:
            batches = await store.list_batches(gtin)
            if not batches:
                raise CommandError(f"--gtin: no batch of GTIN {gtin} in the store; mint one first")
        require_key_dir(args)  # keys are read from here on: a wrong --key-dir is named, not taken for --out
        for batch in batches:
            if batch.status is BatchStatus.VOIDED:
                continue
            if batch.kind is not BatchKind.MINTED:
                print(f"serialink dpp: batch {batch.id} is imported; export its serials from the issuer's file",
                      file=sys.stderr)
                continue
            minted = await regenerate(batch, keys, profiles)
            for record in _records(minted, rules.root, product):
                if writer is not None:
                    writer.writerow({k: "" if v is None else v for k, v in record.items()})
                else:
                    out.write(orjson.dumps(record).decode() + "\n")
                written += 1
    return written


def export(args: argparse.Namespace) -> int:
    if args.out is None:
        written = asyncio.run(_export(args, sys.stdout))
    else:
        # Only a failure to write the output is an --out problem; any other OSError (keys,
        # rules, store) goes to the shared error line, which names its own file.
        tmp = args.out.with_name(args.out.name + ".partial")
        try:
            fh = tmp.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise CommandError(f"--out: cannot write {args.out}: {exc.strerror}") from None
        try:
            with fh:
                written = asyncio.run(_export(args, fh))
            tmp.replace(args.out)
        except OSError as exc:
            if exc.filename is not None and exc.filename not in (str(tmp), str(args.out)):
                raise
            raise CommandError(f"--out: cannot write {args.out}: {exc.strerror}") from None
        finally:
            tmp.unlink(missing_ok=True)
    print(f"serialink dpp: {written} record(s)", file=sys.stderr)
    return 0
