"""Streaming output files that are either complete or absent.

Every output is written under a temporary name in its final directory, hashed (SHA-256) as
it is written, fsynced, and only then renamed to its real name; a crash, a full disk or an
exception leaves at most a ``.<name>.tmp-<pid>`` file that no reader mistakes for output
(and that the next attempt removes). Rows come out of :func:`serial_blocks`: a batch's
serials a block at a time, written by the permutation into one reused buffer, so memory stays
flat whatever the count.

>>> import tempfile, os
>>> from serializer.output import AtomicFile
>>> d = tempfile.mkdtemp()
>>> with AtomicFile(os.path.join(d, "codes.txt"), "txt") as f:
...     f.write(b"hello\\n")
>>> f.entry.name, f.entry.bytes, f.entry.sha256[:12], sorted(os.listdir(d))
('codes.txt', 6, '5891b5b522d5', ['codes.txt'])
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ext.labels import RowTemplate

#: Serials per block: big enough that per-block Python costs vanish, small enough to stay
#: in cache (64k rows of ~230 bytes is ~15 MB of output buffer).
BLOCK = 1 << 16

Progress = Callable[[int], None]


class OutputError(OSError):
    """Output could not be written; ``field`` names the input at fault (usually ``out``)."""

    def __init__(self, field: str, reason: str, status: int = 500) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One finished output file as the manifest lists it."""

    name: str
    format: str
    bytes: int
    sha256: str
    records: int

    def as_json(self) -> dict:
        return {"name": self.name, "format": self.format, "bytes": self.bytes,
                "sha256": self.sha256, "records": self.records}


class AtomicFile:
    """``with AtomicFile(path, fmt) as f: f.write(...)``; renamed into place on success."""

    def __init__(self, path: str | Path, fmt: str, records: int = 0) -> None:
        self.path = Path(path)
        self.format = fmt
        self.records = records
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self._hash = hashlib.sha256()
        self._size = 0
        self._fh = None
        self.entry: FileEntry | None = None

    def __enter__(self) -> AtomicFile:
        try:
            self._fh = open(self.tmp, "wb", buffering=0)
        except OSError as exc:
            raise _output_error(exc, self.path) from None
        return self

    def write(self, data) -> None:
        view = memoryview(data)
        self._hash.update(view)
        written = 0
        try:
            while written < len(view):
                written += self._fh.write(view[written:])
        except OSError as exc:
            raise _output_error(exc, self.path) from None
        self._size += len(view)

    def __exit__(self, kind, exc, tb) -> None:
        fh, self._fh = self._fh, None
        if kind is not None:
            fh.close()
            _unlink(self.tmp)
            return
        try:
            os.fsync(fh.fileno())
            fh.close()
            os.replace(self.tmp, self.path)
            fsync_dir(self.path.parent)
        except OSError as exc:
            fh.close()
            _unlink(self.tmp)
            raise _output_error(exc, self.path) from None
        self.entry = FileEntry(self.path.name, self.format, self._size, self._hash.hexdigest(), self.records)


def serial_blocks(permutation, start: int, count: int, block: int = BLOCK) -> Iterator[tuple[bytearray, int]]:
    """(buffer, n) for consecutive blocks of the counters [start, start+count): the buffer
    holds n serials of ``permutation.length`` ASCII bytes each (and is reused)."""
    length = permutation.length
    buffer = bytearray(min(block, max(count, 1)) * length)
    done = 0
    while done < count:
        n = min(block, count - done)
        permutation.encode_into(buffer, start + done, n)
        yield buffer, n
        done += n


def write_rows(out: AtomicFile, permutation, start: int, count: int, template: RowTemplate,
               progress: Progress | None = None, block: int = BLOCK) -> None:
    """Stream ``count`` rows of ``template`` (one per counter) into ``out``."""
    length = permutation.length
    rows = bytearray(min(block, max(count, 1)) * template.max_row_bytes(length))
    for serials, n in serial_blocks(permutation, start, count, block):
        size = template.render(serials, n, length, rows)
        out.write(memoryview(rows)[:size])
        if progress is not None:
            progress(n)


def check_free_space(directory: Path, needed: int) -> None:
    """Refuse early (507) when the disk cannot hold what is about to be written."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return
    if needed > free:
        raise OutputError("out", f"{directory} has {free:,} bytes free; this output needs about "
                                 f"{needed:,}", 507)


def remove_stale_temporaries(directory: Path, names: list[str]) -> None:
    """Temporaries of earlier attempts (killed, or out of space) for these file names."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if any(entry.name.startswith(f".{name}.tmp-") for name in names):
            _unlink(entry)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _output_error(exc: OSError, path: Path) -> OutputError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError("out", f"disk full while writing {path.name} in {path.parent}; nothing "
                                  f"was left looking complete — free space and retry with the "
                                  f"same request id", 507)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError("out", f"cannot write {path}: {exc.strerror}", 500)
    return OutputError("out", f"writing {path} failed: {exc.strerror or exc}", 500)
