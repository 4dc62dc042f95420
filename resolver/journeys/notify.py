"""Notifiers: how a registration code (or link) reaches the owner's contact.

Serialink does not send e-mail or SMS itself: a deployment plugs in what it uses. A
notifier is any object with ``async send(notification)``. Chosen by ``SERIALINK_NOTIFIER``:

=====================  ==============================================================
(unset) / ``file``     one JSON line per message in ``<data_dir>/notifications.jsonl``
                       (0600), and a log line without the code — the development default
``console``            the whole message on the ``serialink.notify`` logger (stderr)
``module:callable``    ``callable(settings)`` returns your notifier (e-mail, SMS gateway…)
=====================  ==============================================================

The file and console notifiers write codes in clear: they are for development, tests and
single-box installations where the operator relays messages by hand.

>>> import asyncio, json, tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     notifier = FileNotifier(pathlib.Path(d) / "n.jsonl")
...     asyncio.run(notifier.send(Notification("registration", "ana@example.com", "en", "Your code",
...                                            "Code: 1234-5678", code="1234-5678")))
...     json.loads((pathlib.Path(d) / "n.jsonl").read_text())["code"]
'1234-5678'
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from pathlib import Path
from typing import NamedTuple, Protocol

import orjson

from settings import Settings

log = logging.getLogger("serialink.notify")


class Notification(NamedTuple):
    kind: str  # registration | transfer
    to: str  # the contact as the owner gave it
    language: str
    subject: str
    text: str
    code: str | None = None
    link: str | None = None
    gtin: str | None = None
    serial: str | None = None


class Notifier(Protocol):
    async def send(self, notification: Notification) -> None: ...


class FileNotifier:
    """Appends each message as a JSON line to a file only its owner can read."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    async def send(self, notification: Notification) -> None:
        await asyncio.to_thread(self._append, orjson.dumps(notification._asdict()) + b"\n")
        log.info("notification %s for %s/%s written to %s", notification.kind, notification.gtin,
                 notification.serial, self.path)


class ConsoleNotifier:
    """Logs the whole message (code included): for development on a terminal."""

    async def send(self, notification: Notification) -> None:
        log.warning("to %s: %s\n%s", notification.to, notification.subject, notification.text)


def from_settings(settings: Settings) -> Notifier:
    """The notifier ``settings.notifier`` (``SERIALINK_NOTIFIER``) names (default: the file notifier)."""
    choice = settings.notifier.strip()
    if choice in ("", "file"):
        return FileNotifier(Path(settings.data_dir) / "notifications.jsonl")
    if choice == "console":
        return ConsoleNotifier()
    module_name, _, attribute = choice.partition(":")
    if not attribute:
        raise ValueError(f"SERIALINK_NOTIFIER={choice!r}: expected file, console or module:callable")
    factory = getattr(importlib.import_module(module_name), attribute)
    notifier: Notifier = factory(settings)
    return notifier
