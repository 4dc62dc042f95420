"""What every subcommand shares: settings from its flags, and one way to fail.

A subcommand raises; :func:`explain` turns any error a layer raises on purpose into the
one line ``serialink <command>: <what is wrong and what to do>`` and the exit status
(1, or 2 for usage), so no subcommand prints a traceback for a wrong input or a missing
dependency. ``--verbose`` adds the traceback for a bug report.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from settings import Settings, SettingsError, load_settings


class CommandError(Exception):
    """A subcommand's own refusal, already worded for the operator."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (``--workers 0`` is refused, not rounded up)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1-65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {value}")
    return value


def stem_url(text: str) -> str:
    """argparse type of ``parse``/``convert --stem``: an http(s) URL without query or fragment
    (``mint --stem`` is stricter: codes on labels need https)."""
    from settings import stem_problem

    problem = stem_problem(text.replace("http://", "https://", 1) if text.startswith("http://") else text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem.replace("an https URL", "an http(s) URL"))
    return text


def settings_for(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings in effect for this command: file and environment, then its flags
    (``--store``, ``--key-dir``, ``--config-dir``/``--config``, ``--data-dir``, when it has them)."""
    flags = {"store_url": getattr(args, "store", None), "key_dir": getattr(args, "key_dir", None),
             "data_dir": getattr(args, "data_dir", None)}
    config = getattr(args, "config_dir", None) or getattr(args, "config", None)
    return load_settings(config, **{k: v for k, v in {**flags, **overrides}.items() if v is not None})


def require_key_dir(args: argparse.Namespace) -> None:
    """Refuse a ``--key-dir`` that is not a directory, for commands that only read keys
    (mint and import create the directory; line, dpp and batches would otherwise fail later,
    on a key they cannot read, naming another option or none)."""
    key_dir = getattr(args, "key_dir", None)
    if key_dir is not None and not Path(key_dir).is_dir():
        raise CommandError(f"--key-dir: {key_dir} is not a directory; give the per-GTIN key directory the batches "
                           "were minted with (SERIALINK_KEY_DIR)")


def command_name(args: argparse.Namespace) -> str:
    """``mint``, ``rules explain``, ``config show``: the words the operator typed."""
    named = getattr(args, "command_words", None)
    if isinstance(named, str):
        return named
    words = [args.command]
    for attribute in sorted(vars(args)):
        if attribute.endswith("_command") and getattr(args, attribute):
            words.append(getattr(args, attribute))
    return " ".join(words)


def unexpected(exc: BaseException) -> tuple[str, int]:
    """The line for an error no layer raised on purpose: still one line, never a traceback."""
    return (f"unexpected error ({type(exc).__name__}: {str(exc)[:300]}); rerun with --verbose for the "
            f"traceback and report it"), 1


def explain(exc: BaseException) -> tuple[str, int] | None:
    """(message, exit status) for an error worth one line; None for a bug."""
    from ext import GS1Error
    from resolver.errors import ResolverError
    from resolver.rules.compiler import RulesInvalid
    from serializer.errors import ProfileError, SerializerError
    from twin.errors import InvalidInput, StoreError, TwinError

    if isinstance(exc, CommandError):
        return str(exc), exc.status
    if isinstance(exc, RulesInvalid):
        errors = [p for p in exc.problems if p.severity == "error"] or exc.problems
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"{errors[0]}{more}; run `serialink rules check` on the file for every problem", 1
    if isinstance(exc, InvalidInput) and exc.field.startswith("store_url"):
        return f"{exc}; check --store / SERIALINK_STORE_URL", 1
    if isinstance(exc, SettingsError):
        return f"{exc} (check settings.yaml and SERIALINK_* variables)", 1
    if isinstance(exc, ProfileError):
        return f"profiles: {exc}", 1
    if isinstance(exc, SerializerError):
        return f"{exc.field}: {exc.reason}", 1
    if isinstance(exc, StoreError):
        return f"the store is unavailable ({exc}); check --store / SERIALINK_STORE_URL and that it is running", 1
    if isinstance(exc, TwinError):
        return str(exc), 1
    if isinstance(exc, (ResolverError, GS1Error)):
        return str(exc), 1
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return f"{where}{exc.strerror}; check the path and its permissions", 1
    if isinstance(exc, ConnectionError):
        return f"cannot connect ({exc}); check that the service is running", 1
    return None
