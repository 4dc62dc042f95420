"""YAML that remembers where everything came from, so errors can say file:line:column.

PyYAML composes a node tree whose nodes carry marks; this module turns it into plain
Python data plus a map from each value's path (as jsonschema reports it) to its
position. Duplicate keys — silently merged by most loaders — are errors here.

>>> data, where = load("a:\\n  b: [1, 2]\\n", "x.yaml")
>>> data, where.at(("a", "b", 1))
({'a': {'b': [1, 2]}}, 'x.yaml:2:10')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


class SourceError(Exception):
    """A problem at file:line:column, with the reason in plain words."""

    def __init__(self, file: str, line: int, column: int, reason: str) -> None:
        super().__init__(f"{file}:{line}:{column}: {reason}")
        self.file, self.line, self.column, self.reason = file, line, column, reason


Path_ = tuple[str | int | float, ...]  # keys and indexes from the document root to a node


class Positions:
    """Path → (line, column), 1-based, for a loaded document."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._marks: dict[Path_, tuple[int, int]] = {}
        self.count = 0  # values constructed (aliases count every time they are used)

    def add(self, path: Path_, node: Node) -> None:
        self._marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def lookup(self, path: Sequence[str | int | float]) -> tuple[int, int]:
        """The closest known position: the path itself, else its nearest ancestor."""
        path = tuple(path)
        while path not in self._marks and path:
            path = path[:-1]
        return self._marks.get(path, (1, 1))

    def at(self, path: Sequence[str | int | float]) -> str:
        line, column = self.lookup(path)
        return f"{self.file}:{line}:{column}"

    def error(self, path: Sequence[str | int | float], reason: str) -> SourceError:
        line, column = self.lookup(path)
        return SourceError(self.file, line, column, reason)


MAX_VALUES = 200_000  # at least this many values; stops aliases that expand exponentially


def _construct(node: Node, path: Path_, positions: Positions, loader: yaml.SafeLoader,
               inside: frozenset[int] = frozenset(), limit: int = MAX_VALUES) -> Any:
    positions.add(path, node)
    if len(positions) > limit:
        raise positions.error(path, f"more than {limit} values: do aliases (*name) expand without end?")
    if isinstance(node, (MappingNode, SequenceNode)):
        if id(node) in inside:
            raise positions.error(path, "an alias (*name) refers to the collection it is in")
        inside = inside | {id(node)}
    if isinstance(node, MappingNode):
        out: dict[Any, Any] = {}
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SourceError(positions.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                  "mapping keys must be plain scalars")
            if key in out:
                raise SourceError(positions.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                  f"duplicate key {key!r}")
            out[key] = _construct(value_node, path + (key,), positions, loader, inside, limit)
        return out
    if isinstance(node, SequenceNode):
        return [_construct(item, path + (i,), positions, loader, inside, limit) for i, item in enumerate(node.value)]
    assert isinstance(node, ScalarNode)
    return loader.construct_object(node, deep=True)


def load(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one YAML document; SourceError (with position) on any syntax problem.

    A file of 100k products is parsed by libyaml (PyYAML's C parser, when built with it:
    about 6x faster); should it find anything wrong, the file is parsed again by the
    pure-Python parser, whose messages and positions the errors have always carried.
    The value limit grows with the text (a value takes at least one character and a
    separator unless an alias repeats it), so only alias expansion can reach it.
    """
    limit = max(MAX_VALUES, len(text))
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return _load(fast, text, file, limit)
        except Exception:  # noqa: BLE001 - any refusal is reported by the pure-Python parser below
            pass
    return _load(yaml.SafeLoader, text, file, limit)


def _load(loader_class: Any, text: str, file: str, limit: int) -> tuple[Any, Positions]:
    positions = Positions(file)
    try:
        loader = loader_class(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, found before parsing
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise SourceError(file, line, column, f"YAML does not allow the character U+{exc.character:04X} here "
                                              f"({exc.reason})") from None
    try:
        root = loader.get_single_node()
        if root is None:
            raise SourceError(file, 1, 1, "the file is empty")
        return _construct(root, (), positions, loader, limit=limit), positions
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SourceError(file, line, column, f"YAML syntax: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SourceError(file, 1, 1, f"YAML: {exc}") from None
    except RecursionError:
        raise SourceError(file, 1, 1, "nested too deeply") from None
    finally:
        loader.dispose()


class Problem(NamedTuple):
    """A validation finding. ``severity`` is 'error' (the file is refused) or 'warning'."""

    where: str
    reason: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.reason}"
