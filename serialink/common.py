"""What every subcommand shares: settings from its flags, and one way to fail.

A subcommand raises; :func:`explain` turns any error a layer raises on purpose into the
one line ``serialink <command>: <what is wrong and what to do>`` and the exit status
(1, or 2 for usage), so no subcommand prints a traceback for a wrong input or a missing
dependency. ``--verbose`` adds the traceback for a bug report.
"""

from __future__ import annotations

import argparse
from typing import Any

from settings import Settings, SettingsError, load_settings


class CommandError(Exception):
    """A subcommand's own refusal, already worded for the operator."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def settings_for(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings in effect for this command: file and environment, then its flags
    (``--store``, ``--key-dir``, ``--config-dir``/``--config``, ``--data-dir``, when it has them)."""
    flags = {"store_url": getattr(args, "store", None), "key_dir": getattr(args, "key_dir", None),
             "data_dir": getattr(args, "data_dir", None)}
    config = getattr(args, "config_dir", None) or getattr(args, "config", None)
    return load_settings(config, **{k: v for k, v in {**flags, **overrides}.items() if v is not None})


def explain(exc: BaseException) -> tuple[str, int] | None:
    """(message, exit status) for an error worth one line; None for a bug."""
    from ext import GS1Error
    from resolver.errors import ResolverError
    from serializer.errors import ProfileError, SerializerError
    from twin.errors import StoreError, TwinError

    if isinstance(exc, CommandError):
        return str(exc), exc.status
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
    return None
