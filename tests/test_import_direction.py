"""The packages import one way, as docs/architecture.md draws them.

Checked on the source (every ``import`` and ``from … import`` that runs, at module level
or inside a function; imports under ``if TYPE_CHECKING:`` are only for the type checker
and may point anywhere). A rule is a package prefix and the prefixes it must not import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ext", "twin", "settings", "serializer", "resolver", "serialink")

# importer prefix -> prefixes it may not import (first matching importer rule wins)
FORBIDDEN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ext", ("twin", "settings", "serializer", "resolver", "serialink")),
    ("settings", ("ext", "twin", "serializer", "resolver", "serialink")),
    ("twin", ("settings", "serializer", "resolver", "serialink")),
    ("serializer", ("resolver", "serialink")),
    ("resolver.rules", ("twin", "serializer", "resolver.scan", "resolver.journeys", "resolver.api",
                        "resolver.pages", "resolver.access", "resolver.services", "resolver.app", "serialink")),
    ("resolver.analytics", ("resolver.journeys", "resolver.api", "resolver.pages", "resolver.app", "serialink")),
    ("resolver.scan", ("resolver.journeys", "resolver.api", "resolver.pages", "resolver.app", "serialink")),
    ("resolver.journeys", ("resolver.api", "resolver.pages", "resolver.app", "serialink")),
    ("resolver.api", ("resolver.pages", "resolver.app", "serialink")),
    ("resolver.pages", ("resolver.api", "resolver.app", "serialink")),
    ("resolver", ("serialink",)),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import that executes."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield child.lineno, alias.name
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".")
                    base = base[: len(base) - child.level + (1 if is_package else 0)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                yield child.lineno, target
                for alias in child.names:  # from resolver import i18n imports resolver.i18n
                    yield child.lineno, f"{target}.{alias.name}"
            stack.append(child)


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "build" not in p.parts)


def violations() -> list[str]:
    found = []
    for path in _sources():
        module = _module_name(path)
        owner, rule = next(((prefix, banned) for prefix, banned in FORBIDDEN if _under(module, prefix)), ("", ()))
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, target in runtime_imports(tree, module, path.name == "__init__.py"):
            for banned in rule:
                if _under(target, banned):
                    found.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {target}, "
                                 f"and {owner} may not use {banned} (docs/architecture.md)")
    return found


def test_every_package_imports_only_downstream() -> None:
    checked = _sources()
    assert len(checked) > 100, "the walk found too few modules: is ROOT right?"
    problems = violations()
    print(f"\nimport direction: {len(checked)} modules checked, {len(problems)} violations")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(("importer", "imported", "allowed"), [
    ("resolver.scan.handler", "resolver.journeys.reading", False),
    ("resolver.scan.handler", "resolver.rules.compiler", True),
    ("twin.store", "resolver.errors", False),
    ("serialink.cli", "resolver.app", True),
    ("ext.dl", "twin", False),
])
def test_the_rules_catch_what_they_name(importer: str, imported: str, allowed: bool) -> None:
    """The checker itself: a forbidden edge written into a module is reported."""
    tree = ast.parse(f"import os\nif True:\n    from {imported} import x\n")
    rule = next((banned for prefix, banned in FORBIDDEN if _under(importer, prefix)), ())
    hits = [t for _, t in runtime_imports(tree, importer, False) if any(_under(t, b) for b in rule)]
    assert (hits == []) is allowed, hits


def test_type_checking_imports_are_exempt() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from resolver.services import S\n")
    assert [t for _, t in runtime_imports(tree, "resolver.scan.x", False)] == ["typing", "typing.TYPE_CHECKING"]
