"""Type stub for ext/bloom.pyx: a Bloom filter over Python hashes."""

from collections.abc import Hashable
from typing import Self

from _typeshed import ReadableBuffer
from typing_extensions import disjoint_base

@disjoint_base
class BloomFilter:
    def __new__(cls, size_bits: int, hashes: int = 7) -> Self: ...  # __cinit__ takes the arguments
    @classmethod
    def for_capacity(cls, keys: int, bits_per_key: int = 16) -> Self: ...
    @property
    def size_bits(self) -> int: ...
    @property
    def hashes(self) -> int: ...
    @property
    def count(self) -> int: ...
    def add(self, key: Hashable) -> None: ...
    def add_hashes(self, hashes: ReadableBuffer) -> None:
        """Add keys by their ``hash()`` values (an ``array('q')``), releasing the GIL."""
    def __contains__(self, key: Hashable, /) -> bool: ...
    def __len__(self) -> int: ...
    @property
    def load(self) -> float:
        """Keys per bit: rebuild bigger when it passes 1/16."""
