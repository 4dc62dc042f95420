"""A YAML/CSV catalogue on disk, parsed once and swapped in when the file changes.

Fault codes and parts catalogues change while the resolver runs. :class:`Reloading`
keeps the last good parse: a file that does not validate is logged (file:line, field)
and the old catalogue keeps serving, like the routing rules. A worker's background task
calls :meth:`Reloading.watch`; readers only ever read ``current`` (one attribute).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "words.txt"
>>> _ = path.write_text("a b")
>>> words = Reloading(path, lambda text, source: tuple(text.split()))
>>> words.current
('a', 'b')
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import jsonschema
import yaml

from twin.errors import TwinError
from twin.warranty import _line_of

log = logging.getLogger("serialink.twin.catalogue")
T = TypeVar("T")


class CatalogueError(TwinError):
    """A catalogue file that does not validate; the message says file:line and the field."""


def validated_yaml(text: str, source: str, schema: dict[str, Any]) -> tuple[Any, yaml.Node | None]:
    """The YAML document, checked against ``schema``; CatalogueError at file:line otherwise.
    Also returns the node tree, so later checks can name lines too (:func:`line_of`)."""
    try:
        doc = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise CatalogueError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return validated(doc, root, source, schema), root


def validated(doc: Any, root: yaml.Node | None, source: str, schema: dict[str, Any]) -> Any:
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    if error is not None:
        path = list(error.absolute_path)
        dotted = ".".join(str(p) for p in path) or "(top level)"
        raise CatalogueError(f"{source}:{line_of(root, path)}: {dotted}: {error.message}")
    return doc


def line_of(root: yaml.Node | None, path: list[Any]) -> int:
    """1-based line of the YAML node at ``path`` (1 when unknown, e.g. a CSV row)."""
    return _line_of(root, path) or 1


class Reloading(Generic[T]):
    """``current``: the parsed file (None while there is no file). A file that is invalid
    at start raises its error; later, a bad edit is logged and ignored."""

    def __init__(self, path: Path, parse: Callable[[str, str], T]) -> None:
        self.path = Path(path)
        self._parse = parse
        self._stamp: tuple[int, int] | None = None
        self.listeners: list[Callable[[], None]] = []  # told after every swap (caches built on the old one)
        self.current: T | None = None
        self.check(strict=True)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def check(self, strict: bool = False) -> bool:
        """Reload if the file changed; True when a new catalogue was swapped in."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None:
            self.current = None
        else:
            try:
                self.current = self._parse(self.path.read_text(encoding="utf-8"), str(self.path))
            except (TwinError, OSError, UnicodeDecodeError) as exc:
                if strict:
                    raise
                log.error("%s rejected, the previous catalogue keeps serving: %s", self.path, exc)
                return False
        for listener in self.listeners:
            listener()
        return True

    async def watch(self, interval: float) -> None:
        """Poll the file for changes forever (a worker's background task)."""
        while True:
            await asyncio.sleep(interval)
            self.check()
