"""`serialink config show`: the settings in effect (file + environment), secrets masked."""

from __future__ import annotations

import argparse

import orjson
import yaml

from settings import load_settings


def show(args: argparse.Namespace) -> int:
    settings = load_settings(args.config_dir)
    masked = settings.masked()
    if args.json:
        print(orjson.dumps(masked, option=orjson.OPT_INDENT_2).decode())
    else:
        print(yaml.safe_dump(masked, sort_keys=False).rstrip())
    return 0


def register(sub) -> None:
    p = sub.add_parser("config", help="show the configuration in effect")
    cs = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    s = cs.add_parser("show", help="print every setting (file + SERIALINK_* environment), secrets masked")
    s.add_argument("--config-dir", default=None, help="configuration directory (default: SERIALINK_CONFIG_DIR or config/)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=show)
