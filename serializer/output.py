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
import fcntl
import hashlib
import mmap
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ext.labels import RowTemplate
from serializer.errors import DiskFull, OutputError

#: Serials per block: big enough that per-block Python costs vanish, small enough to stay
#: in cache (64k rows of ~230 bytes is ~15 MB of output buffer).
BLOCK = 1 << 16

Progress = Callable[[int], None]
#: O_DIRECT transfers are whole multiples of this (the logical block size on Linux filesystems).
DIRECT_ALIGN = 4096


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
    """``with AtomicFile(path, fmt) as f: f.write(...)``; renamed into place on success.

    Bulk output bypasses the page cache (O_DIRECT) where the filesystem allows it: data is
    staged in page-aligned buffers and a writer thread hashes and writes one buffer while the
    caller fills the next, so the disk's DMA overlaps the CPU work and millions of rows do
    not first have to be copied into, and flushed out of, the kernel's cache. Elsewhere
    (tmpfs, some network filesystems) it falls back to ordinary buffered writes + fsync.
    """

    STAGE = 8 << 20  # bytes per staging buffer (a multiple of the 4 KiB direct I/O unit)

    def __init__(self, path: str | Path, fmt: str, records: int = 0) -> None:
        self.path = Path(path)
        self.format = fmt
        self.records = records
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self._hash = hashlib.sha256()
        self._size = 0
        self._fd = -1
        self._direct = False
        self._stage: mmap.mmap | None = None
        self._spare: mmap.mmap | None = None
        self._used = 0
        self._pending: threading.Thread | None = None
        self._error: BaseException | None = None
        self.entry: FileEntry | None = None

    def __enter__(self) -> AtomicFile:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            try:
                self._fd = os.open(self.tmp, flags | getattr(os, "O_DIRECT", 0), 0o644)
                self._direct = hasattr(os, "O_DIRECT")
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._fd = os.open(self.tmp, flags, 0o644)
        except OSError as exc:
            raise _output_error(exc, self.path) from None
        self._stage = mmap.mmap(-1, self.STAGE)
        self._spare = mmap.mmap(-1, self.STAGE)
        return self

    def write(self, data) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            n = min(len(view), self.STAGE - self._used)
            self._stage[self._used:self._used + n] = view[:n]
            self._used += n
            view = view[n:]
            if self._used == self.STAGE:
                self._flush_stage()

    def _flush_stage(self) -> None:
        """Hand the full stage to the writer thread; continue in the spare buffer."""
        self._wait()
        stage, used = self._stage, self._used
        self._stage, self._spare, self._used = self._spare, stage, 0
        self._pending = threading.Thread(target=self._write_out, args=(stage, used), daemon=True)
        self._pending.start()

    def _write_out(self, stage: mmap.mmap, used: int) -> None:
        try:
            with memoryview(stage) as whole, whole[:used] as view:
                self._hash.update(view)
                written = 0
                while written < used:
                    with view[written:] as rest:
                        written += os.write(self._fd, rest)
            self._size += used
        except BaseException as exc:  # reported by _wait() in the caller's thread
            self._error = exc

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.join()
            self._pending = None
        if self._error is not None:
            exc, self._error = self._error, None
            if isinstance(exc, OSError):
                raise _output_error(exc, self.path) from None
            raise exc

    def _finish(self) -> None:
        self._wait()
        used = self._used
        aligned = used - used % DIRECT_ALIGN if self._direct else used
        if aligned:
            self._write_out(self._stage, aligned)
            self._wait()
        if used > aligned:
            # the tail is not a whole direct-I/O unit: write it through the page cache
            fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~os.O_DIRECT)
            with memoryview(self._stage) as whole, whole[aligned:used] as tail:
                self._hash.update(tail)
                written = 0
                while written < len(tail):
                    with tail[written:] as rest:
                        written += os.write(self._fd, rest)
                self._size += len(tail)
        self._used = 0
        os.fsync(self._fd)

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        for buf in (self._stage, self._spare):
            if buf is not None:
                try:
                    buf.close()
                except BufferError:  # a view is still alive: the buffer goes with it
                    pass
        self._stage = self._spare = None

    def __exit__(self, kind, exc, tb) -> None:
        if kind is not None:
            try:
                self._wait()
            except Exception:
                pass
            self._close()
            _unlink(self.tmp)
            return
        try:
            self._finish()
            self._close()
            os.replace(self.tmp, self.path)
            fsync_dir(self.path.parent)
        except OSError as exc:
            self._close()
            _unlink(self.tmp)
            if isinstance(exc, OutputError):
                raise
            raise _output_error(exc, self.path) from None
        except BaseException:
            self._close()
            _unlink(self.tmp)
            raise
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
        raise DiskFull("out", f"{directory} has {free:,} bytes free; this output needs about "
                                 f"{needed:,}")


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
        return DiskFull("out", f"disk full while writing {path.name} in {path.parent}; nothing "
                                  f"was left looking complete — free space and retry with the "
                                  f"same request id")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError("out", f"cannot write {path}: {exc.strerror}")
    return OutputError("out", f"writing {path} failed: {exc.strerror or exc}")
