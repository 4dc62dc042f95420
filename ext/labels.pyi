"""Type stub for ext/labels.pyx: row templates for label writers, and QR symbol finishing.

The ``const unsigned char[::1]`` parameters take any C-contiguous buffer of bytes
(``bytes``, ``bytearray``, ``memoryview``…); ``out`` must be writable.
"""

from collections.abc import Collection, Iterable, Mapping

from _typeshed import ReadableBuffer, SupportsGetItem, WriteableBuffer
from typing_extensions import disjoint_base

def escape_table(mapping: Mapping[int, bytes]) -> bytes: ...

@disjoint_base
class RowTemplate:
    """``parts[0] slot0 parts[1] slot1 … parts[n]``: n + 1 literals around n serial slots."""

    def __init__(self, parts: Iterable[ReadableBuffer], tables: Iterable[bytes | None]) -> None: ...
    @property
    def literal_bytes(self) -> int: ...
    @property
    def slots(self) -> int: ...
    def max_row_bytes(self, serial_length: int) -> int: ...
    def render(self, serials: ReadableBuffer, count: int, serial_length: int, out: WriteableBuffer) -> int: ...

def qr_message(
    databits: ReadableBuffer,
    ec_infos: Iterable[tuple[int, int, int]],
    gen_polys: SupportsGetItem[int, ReadableBuffer],
    gf_log: ReadableBuffer,
    gf_exp: ReadableBuffer,
    remainder: int,
) -> bytes: ...

@disjoint_base
class QrShape:
    """One QR version and error level, ready to finish any number of symbols."""

    def __init__(
        self, template: bytes, size: int, format_info: Collection[int], version_info: Iterable[tuple[int, int]] = ()
    ) -> None: ...
    @property
    def size(self) -> int: ...
    def finish(self, bits: ReadableBuffer, proposed_mask: int = -1) -> tuple[int, bytes]:
        """(the mask used, size*size bytes of 0/1 modules)."""

def svg_path(modules: ReadableBuffer, size: int, scale: int = 4, border: int = 4, dark: bytes = b"#000") -> bytes: ...
