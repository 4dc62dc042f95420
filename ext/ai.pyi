"""Type stub for ext/ai.pyx: the GS1 Application Identifier table."""

from typing import TypedDict, type_check_only

from ext.syntax_dictionary import Component

__all__ = ["RELEASE", "UNSUPPORTED_LINTERS", "describe", "known_ais", "validate"]

#: Release date of the vendored GS1 Barcode Syntax Dictionary (from the generated ext/ai_table.py).
RELEASE: str

#: Linter names the dictionary uses that ext.linters does not implement (filled at import).
UNSUPPORTED_LINTERS: set[str]

@type_check_only
class _AIDescription(TypedDict):
    """What describe() returns (a plain dict at runtime; this name exists only for typing)."""

    ai: str
    title: str
    predefined_length: bool
    dl_attribute: bool
    min_length: int
    max_length: int
    components: tuple[Component, ...]
    requires: tuple[tuple[tuple[str, ...], ...], ...]
    excludes: tuple[str, ...]
    primary_key: bool
    qualifiers: tuple[tuple[str, ...], ...]

def known_ais() -> tuple[str, ...]: ...
def describe(ai: str) -> _AIDescription: ...
def validate(ai: str, value: str) -> None: ...
