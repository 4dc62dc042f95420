"""`serialink serve`: the resolver on Granian, N worker processes, each its own event loop.

Flags override settings; settings travel to the workers through SERIALINK_* environment
variables (every worker builds its app from the environment, see resolver.app.app_factory).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import sys
import tempfile
from pathlib import Path

from ext.hot_modules import stale
from serialink.common import CommandError, port_number, positive_int
from settings import load_settings
from twin.durability import durability_advice


def run(args: argparse.Namespace) -> int:
    if bool(args.ssl_cert) != bool(args.ssl_key):
        raise CommandError("--ssl-cert and --ssl-key go together; give both or neither", 2)
    for flag, path in (("--ssl-cert", args.ssl_cert), ("--ssl-key", args.ssl_key)):
        if path and not os.access(path, os.R_OK):
            raise CommandError(f"{flag}: cannot read {path}; give a readable PEM file")
    if args.config and not Path(args.config).is_dir():
        raise CommandError(f"--config: {args.config} is not a directory; give the directory that holds "
                           f"rules.yaml and settings.yaml")
    if stale_modules := stale():
        raise CommandError(f"the compiled copy of {stale_modules[0]} is older than its source (and "
                           f"{len(stale_modules) - 1} more); rebuild with `pip install -e .` or "
                           f"`python setup.py build_ext --inplace`")
    env = {}
    if args.store:
        env["SERIALINK_STORE_URL"] = args.store
    if args.config:
        env["SERIALINK_CONFIG_DIR"] = os.path.abspath(args.config)
    if args.data_dir:
        env["SERIALINK_DATA_DIR"] = os.path.abspath(args.data_dir)
    if args.rules:
        env["SERIALINK_RULES_FILE"] = os.path.abspath(args.rules)
    os.environ.update(env)
    settings = load_settings(host=args.host, port=args.port, workers=args.workers)
    _check_data_dir(settings.data_dir)
    # validate the rules before forking workers: a broken file with no last good copy is fatal here
    from resolver.rules.compiler import RulesInvalid, load_rules

    try:
        load_rules(settings.rules_file, hand_over=True)  # the workers take these instead of compiling again
    except RulesInvalid as exc:
        last_good = settings.data_dir / "rules.last-good.yaml"
        if not last_good.exists():
            raise
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"serialink serve: serving the last good rules from {last_good}", file=sys.stderr)
    durability = asyncio.run(_check_store(settings.store_url))
    if durability not in ("always", "relaxed"):
        print(f"serialink serve: warning: {durability_advice(settings.store_url, durability)}", file=sys.stderr)
    if not args.reuse_port:
        _check_port(settings.host, settings.port)
    settings.secret()  # create the token secret once, before workers race for it
    hint = first_run_hint(args, settings)
    if hint:
        print(hint, file=sys.stderr)
    os.environ["SERIALINK_DATA_DIR"] = str(settings.data_dir.resolve())
    # every worker writes its metrics snapshot here; /metrics on any worker sums them all
    os.environ["SERIALINK_METRICS_DIR"] = str(_fresh_metrics_dir(settings.data_dir.resolve() / "metrics"))

    from granian import Granian
    from granian.constants import Interfaces, Loops

    scheme = "https" if args.ssl_cert else "http"
    print(f"serialink: resolving on {scheme}://{settings.host}:{settings.port} with {settings.workers} worker(s), "
          f"store {load_settings().masked()['store_url']}, rules {settings.rules_file}", file=sys.stderr)
    Granian(
        "resolver.app:app_factory",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.auto,
        log_level=settings.log_level,
        respawn_failed_workers=True,
        backlog=2048,
        **({"ssl_cert": Path(args.ssl_cert), "ssl_key": Path(args.ssl_key)} if args.ssl_cert else {}),
    ).serve()
    return 0


def first_run_hint(args: argparse.Namespace, settings) -> str | None:
    """On a resolver nobody can administer yet (no manufacturer or admin token that still
    works), the one line that says how to get the first brand credential; else None."""
    import asyncio

    from resolver.access.issued import has_brand_credential
    from twin.errors import TwinError
    from twin.store import open_store

    async def check() -> bool:
        store = await open_store(settings.store_url)
        try:
            return await has_brand_credential(store)
        finally:
            await store.close()

    try:
        if asyncio.run(check()):
            return None
    except (TwinError, OSError):  # the store is down: serving reports that on its own
        return None
    flags = "".join(f" --{name} {value}" for name, value in (
        ("store", load_settings().masked()["store_url"] if args.store else None), ("config", args.config),
        ("data-dir", args.data_dir)) if value)
    return (f"serialink: no brand credential yet; get the first one with: T=$(serialink tokens issue --role "
            f"manufacturer{flags}) (see docs/access.md)")


def _check_data_dir(data_dir: Path) -> None:
    """The data directory exists (created) and this user may write in it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-probe-")
        probe.close()
    except OSError as exc:
        raise CommandError(f"--data-dir: cannot write in {data_dir} ({exc.strerror}); give a directory this "
                           f"user may write (SERIALINK_DATA_DIR)") from None


async def _check_store(url: str) -> str:
    """Open the store once before forking workers: a wrong or unreachable store is one line
    here, not a crash loop of workers. Returns its durability."""
    from twin.store import open_store

    store = await open_store(url)
    try:
        return str(store.durability)
    finally:
        await store.close()


def _check_port(host: str, port: int) -> None:
    """Refuse a port another process listens on. Granian binds with SO_REUSEPORT, so a second
    server on the same port would start and take half the scans; a plain bind (no
    SO_REUSEPORT) fails while any socket listens there."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CommandError(f"--host: cannot listen on {host!r} ({exc.strerror}); give an address of this "
                           f"machine") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(f"--port: {host}:{port} is already in use (another serialink serve?); stop "
                                   f"it, pick another port, or pass --reuse-port to share it on purpose") from None
            raise CommandError(f"--host/--port: cannot listen on {host}:{port} ({exc.strerror})") from None


def _fresh_metrics_dir(root: Path) -> Path:
    """``<root>/<this pid>``, after removing the directories of runs that are gone."""
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        if old.name.isdigit() and int(old.name) != os.getpid():
            try:
                os.kill(int(old.name), 0)
            except ProcessLookupError:
                shutil.rmtree(old, ignore_errors=True)
            except PermissionError:
                pass
    mine = root / str(os.getpid())
    shutil.rmtree(mine, ignore_errors=True)
    mine.mkdir()
    return mine


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the resolver (Granian, ASGI)",
                       description="Serve GS1 Digital Link resolution, the APIs and the built-in pages. With no "
                                   "configuration: the example rules in config/ on an embedded SQLite store in ./var.")
    p.add_argument("--store", metavar="URL", help="sqlite:///path, redis://host:port/db or redis+cluster://h1:p1,h2:p2")
    p.add_argument("--config", metavar="DIR", help="configuration directory (rules.yaml, settings.yaml, profiles)")
    p.add_argument("--rules", metavar="FILE", help="rules file (default: <config>/rules.yaml)")
    p.add_argument("--data-dir", metavar="DIR", help="where local data lives (default ./var)")
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=None, help="port (default 8080)")
    p.add_argument("--workers", type=positive_int, default=None, help="worker processes (default 1)")
    p.add_argument("--reuse-port", action="store_true",
                   help="share the port with servers already listening on it (SO_REUSEPORT); "
                        "without it, a taken port is refused")
    p.add_argument("--ssl-cert", metavar="PEM", help="serve HTTPS with this certificate (with --ssl-key)")
    p.add_argument("--ssl-key", metavar="PEM", help="private key of --ssl-cert")
    p.set_defaults(run=run)
