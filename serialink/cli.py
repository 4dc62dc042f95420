"""The `serialink` command line.

Each subcommand lives in its own module and registers itself here; this file only
wires argparse. Usage errors exit with status 2 (argparse's convention), invalid
input with 1, success with 0.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from serialink.common import command_name, explain, stem_url, unexpected

Command = Callable[[argparse.Namespace], int]


def _add_parse(sub: argparse._SubParsersAction) -> None:
    from serialink import parse_cmd

    p = sub.add_parser(
        "parse",
        help="parse and validate GS1 Digital Link URIs",
        description="Parse and validate GS1 Digital Link URIs. '-' reads one URI per line from stdin "
                    "(streamed: any number of lines in bounded memory). Exit 0 when every input is "
                    "valid, 1 otherwise.",
    )
    p.add_argument("uris", nargs="+", metavar="URI", help="a DL URI, or '-' for stdin")
    p.add_argument("--json", action="store_true", help="one JSON object per input line")
    p.add_argument("--lenient", action="store_true",
                   help="accept legacy labels (GTIN-8/12/13, /gtin/ …, trailing slash); output stays canonical")
    p.add_argument("--stem", default=None, metavar="URL", type=stem_url,
                   help="stem of the canonical URI (default https://id.gs1.org)")
    p.set_defaults(run=parse_cmd.run)


def _add_convert(sub: argparse._SubParsersAction) -> None:
    from serialink import convert_cmd

    p = sub.add_parser(
        "convert",
        help="convert between element strings, scan data and DL URIs",
        description="Convert GS1 data between forms. Inputs starting with http(s):// are DL URIs; "
                    "others are element strings ('(01)…' bracketed, '^01…' with FNC1) or scan data "
                    "(']d2…' with GS separators). Default target: DL URI for element strings, "
                    "bracketed element string for DL URIs.",
    )
    p.add_argument("inputs", nargs="+", metavar="DATA", help="DL URI, element string or scan data; '-' for stdin")
    p.add_argument("--to", choices=convert_cmd.TARGETS, default=None, help="target form")
    p.add_argument("--stem", default=None, metavar="URL", type=stem_url,
                   help="stem for DL URIs (default https://id.gs1.org)")
    p.add_argument("--lenient", action="store_true", help="accept legacy DL URIs")
    p.add_argument("--json", action="store_true", help="one JSON object per input")
    p.set_defaults(run=convert_cmd.run)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from serialink import serve_cmd

    serve_cmd.register(sub)


def _add_rules(sub: argparse._SubParsersAction) -> None:
    from serialink import rules_cmd

    rules_cmd.register(sub)


def _add_mint(sub: argparse._SubParsersAction) -> None:
    from serialink import mint_cmd

    mint_cmd.register(sub)


def _add_import(sub: argparse._SubParsersAction) -> None:
    from serialink import import_cmd

    import_cmd.register(sub)


def _add_config(sub: argparse._SubParsersAction) -> None:
    from serialink import config_cmd

    config_cmd.register(sub)


def _add_tokens(sub: argparse._SubParsersAction) -> None:
    from serialink import tokens_cmd

    tokens_cmd.register(sub)


def _add_lines(sub: argparse._SubParsersAction) -> None:
    from serialink import lines_cmd

    lines_cmd.register(sub)


def _add_dpp(sub: argparse._SubParsersAction) -> None:
    from serialink import dpp_cmd

    dpp_cmd.register(sub)


def _add_line(sub: argparse._SubParsersAction) -> None:
    from serialink import line_cmd

    line_cmd.register(sub)


def _add_pack(sub: argparse._SubParsersAction) -> None:
    from serialink import pack_cmd

    pack_cmd.register(sub)


def _add_analytics(sub: argparse._SubParsersAction) -> None:
    from serialink import analytics_cmd

    analytics_cmd.register(sub)


def _add_batches(sub: argparse._SubParsersAction) -> None:
    from serialink import batches_cmd

    batches_cmd.register(sub)


def _add_sscc(sub: argparse._SubParsersAction) -> None:
    from serialink import sscc_cmd

    sscc_cmd.register(sub)


def _add_scans(sub: argparse._SubParsersAction) -> None:
    from serialink import scans_cmd

    scans_cmd.register(sub)


REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_parse, _add_convert, _add_serve, _add_rules, _add_mint, _add_import, _add_batches, _add_sscc, _add_scans,
    _add_config, _add_tokens, _add_lines, _add_dpp, _add_line, _add_pack, _add_analytics,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="serialink", description="GS1 Digital Link resolver and serialisation engine")
    parser.add_argument("--verbose", action="store_true", help="on an error, print the traceback too")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(sub)
    _name_commands(parser)
    return parser


def _name_commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> None:
    """Give every parser the words that reach it (``line report``), so an error names the
    command as typed whatever its modules call their subcommand dests."""
    if words:
        parser.set_defaults(command_words=" ".join(words))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                _name_commands(child, (*words, name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # `serialink parse - | head` is fine
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        message, status = explain(exc) or unexpected(exc)
        print(f"serialink {command_name(args)}: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    raise SystemExit(main())
