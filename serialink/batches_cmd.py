"""`serialink batches list | void`: the batches in the store, and what became of their files.

A batch is ``allocated`` from the moment its serials are reserved until its files are
delivered complete (``serialink mint`` and the line API then mark it ``committed``). One
still ``allocated`` after its run ended never delivered its files, yet its serials resolve
as genuine: finish it by running the same ``serialink mint`` again (same ``--request-id``,
or the same flags and ``--out``), or void it so its serials are never valid::

    serialink batches list [--gtin G] [--status allocated] [--json]
    serialink batches void 09506000134352.default.0 --reason "labels never printed"

Without ``--gtin`` the list covers every GTIN this installation holds a key for.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
from pathlib import Path

import orjson

from serialink.common import CommandError, settings_for

STATUSES = ("allocated", "committed", "voided")


def _gtins(args: argparse.Namespace, key_dir: Path) -> list[str]:
    if args.gtin:
        from serializer.minting import normalise_gtin

        return [normalise_gtin(g, "--gtin") for g in args.gtin]
    if not key_dir.is_dir():
        if args.key_dir is not None:
            raise CommandError(f"--key-dir: {key_dir} is not a directory; give the key directory mint uses "
                               f"(SERIALINK_KEY_DIR), or --gtin")
        return []
    return sorted(p.stem for p in key_dir.glob("*.json") if p.stem.isdigit() and len(p.stem) == 14)


def _row(batch) -> dict:
    return {"id": batch.id, "gtin": batch.gtin, "profile": batch.profile, "kind": str(batch.kind),
            "status": str(batch.status), "count": batch.count, "request_id": batch.request_id,
            "lot": batch.lot, "expiry": batch.expiry.isoformat() if batch.expiry else None,
            "created_at": batch.created_at.isoformat().replace("+00:00", "Z"),
            "status_reason": batch.status_reason,
            "delivered": None if str(batch.kind) != "minted" else str(batch.status) == "committed"}


async def _list(args: argparse.Namespace) -> list[dict]:
    from twin.store import open_store

    settings = settings_for(args)
    gtins = _gtins(args, Path(settings.key_dir))
    rows = []
    async with await open_store(settings.store_url) as store:
        for gtin in gtins:
            for batch in await store.list_batches(gtin):
                if args.status is None or str(batch.status) == args.status:
                    rows.append(_row(batch))
    return rows


def list_batches(args: argparse.Namespace) -> int:
    rows = asyncio.run(_list(args))
    if args.json:
        for row in rows:
            print(orjson.dumps(row).decode())
        return 0
    print(f"{'batch':<40}{'status':<11}{'count':>10}  request id / note")
    undelivered = 0
    for row in rows:
        note = row["request_id"]
        if row["status"] == "allocated" and row["kind"] == "minted":
            undelivered += 1
            note += "  UNDELIVERED: rerun the same mint, or `serialink batches void ID --reason …`"
        elif row["status_reason"]:
            note += f"  ({row['status_reason']})"
        print(f"{row['id']:<40}{row['status']:<11}{row['count']:>10}  {note}")
    print(f"{len(rows)} batch(es), {undelivered} allocated without delivered files")
    return 0


async def _void(args: argparse.Namespace) -> dict:
    from twin.batch import BatchStatus, parse_batch_id
    from twin.errors import IllegalTransition, InvalidInput
    from twin.events import Actor
    from twin.store import open_store

    try:
        parse_batch_id(args.batch_id)
    except InvalidInput as exc:
        raise CommandError(f"batch id: {exc.problem}; take it from `serialink batches list`") from None
    if not args.reason.strip():
        raise CommandError("--reason: say why the batch is voided", 2)
    actor = Actor("manufacturer", f"cli:{getpass.getuser()}@{socket.gethostname()}"[:200])
    settings = settings_for(args)
    async with await open_store(settings.store_url) as store:
        batch = await store.get_batch(args.batch_id)
        if batch is None:
            raise CommandError(f"no batch {args.batch_id!r} in {store.url}; take the id from `serialink batches list`")
        try:
            batch = await store.set_batch_status(batch.id, BatchStatus.VOIDED, actor, args.reason.strip())
        except IllegalTransition as exc:
            raise CommandError(f"{batch.id}: {exc.reason}") from None
    return _row(batch)


def void(args: argparse.Namespace) -> int:
    print(orjson.dumps(asyncio.run(_void(args))).decode())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batches", help="list batches (undelivered ones flagged) and void them",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    bs = p.add_subparsers(dest="batches_command", required=True, metavar="ACTION")
    ls = bs.add_parser("list", help="batches of every GTIN with a key (or --gtin), with their status")
    ls.add_argument("--gtin", action="append", default=None, help="only this GTIN (repeatable)")
    ls.add_argument("--status", choices=STATUSES, default=None, help="only batches in this status")
    ls.add_argument("--json", action="store_true", help="one JSON object per batch")
    ls.add_argument("--store", default=None, metavar="URL", help="unit store URL (default: settings)")
    ls.add_argument("--key-dir", default=None, type=Path, help="per-GTIN key directory (SERIALINK_KEY_DIR)")
    ls.set_defaults(run=list_batches)
    v = bs.add_parser("void", help="void a batch: its serials are never valid again")
    v.add_argument("batch_id", metavar="BATCH_ID")
    v.add_argument("--reason", required=True, help="why (kept in the batch's audit trail)")
    v.add_argument("--store", default=None, metavar="URL", help="unit store URL (default: settings)")
    v.set_defaults(run=void)
