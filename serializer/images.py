"""QR proofs: SVG and PNG (one per unit, in a zip) and PDF label sheets, for small runs.

Printers and label software render the codes of real runs from CSV or ZPL; images are for
proofs, samples and e-commerce. Symbols come from :class:`serializer.qr.QrEncoder` — segno's
encoder with the mask choice and placement done in C, module-for-module what
``segno.make_qr(uri, error="m")`` makes — and are rendered in worker processes, in order, a
chunk at a time (memory stays flat). PNG files are written by segno's own PNG writer; PDF
sheets by reportlab (A4, 3 x 8 labels: QR Code and the HRI lines), with invariant metadata
so the same batch gives the same bytes.

>>> from serializer.images import zip_name
>>> zip_name("7Y4KQ2M9XW3R", "svg"), zip_name("A/B%C", "png")
('7Y4KQ2M9XW3R.svg', 'A%2FB%25C.png')
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ext import escape
from serializer.codes import CodeShape
from serializer.output import AtomicFile, FileEntry, Progress
from serializer.qr import QrEncoder, QrSymbol

ERROR_LEVEL = "m"
SCALE = 4
CHUNK = 256

_worker: dict = {}


def zip_name(serial: str, ext: str) -> str:
    """A file name per unit: the serial, percent-encoded where a file system could object."""
    return f"{escape(serial)}.{ext}"


def _init(alphabet, length, prefix, low, high, mode, key, gtin, shape) -> None:
    from ext.permutation import SerialPermutation

    if mode == "sequential":
        perm = SerialPermutation.sequential(alphabet, length, low=low, high=high, prefix=prefix)
    else:
        perm = SerialPermutation(key, alphabet, length, tweak=gtin.encode(), low=low, high=high, prefix=prefix)
    _worker.update(perm=perm, shape=shape, encoder=QrEncoder(ERROR_LEVEL))


def _render(task: tuple[int, int, str]) -> list[tuple[str, bytes]]:
    start, n, kind = task
    perm, shape, encoder = _worker["perm"], _worker["shape"], _worker["encoder"]
    out = []
    for serial in perm.encode_range(start, n):
        symbol = encoder.encode(shape.dl_uri(serial))
        out.append((serial, symbol_bytes(symbol, kind)))
    return out


def symbol_bytes(symbol: QrSymbol, kind: str) -> bytes:
    if kind == "svg":
        return symbol.svg(SCALE)
    import segno.writers

    buffer = io.BytesIO()
    segno.writers.write_png(symbol.matrix(), (symbol.size, symbol.size), buffer, scale=SCALE, border=4)
    return buffer.getvalue()


def _init_args(minted, shape: CodeShape) -> tuple:
    p = minted.profile
    key = None
    perm = minted.permutation
    if perm.randomised:
        key = _key_of(minted)
    return (p.alphabet, p.length, p.prefix, p.low, p.high, p.mode, key, minted.batch.gtin, shape)


def _key_of(minted) -> bytes:
    key = getattr(minted, "key", None)
    if key is None:
        raise ValueError("rendering in worker processes needs the batch's key (MintedBatch.key)")
    return key


def rendered(minted, shape: CodeShape, kind: str, workers: int | None = None) -> Iterator[tuple[str, bytes]]:
    """(serial, image bytes) of every unit, in counter order."""
    batch = minted.batch
    tasks = [(batch.start + i, min(CHUNK, batch.count - i), kind) for i in range(0, batch.count, CHUNK)]
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(tasks) <= 1:
        _init(*_init_args(minted, shape))
        for task in tasks:
            yield from _render(task)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_init, initargs=_init_args(minted, shape)) as pool:
        # bounded look-ahead: at most 2 chunks per worker in flight
        pending = []
        it = iter(tasks)
        for task in it:
            pending.append(pool.submit(_render, task))
            if len(pending) >= 2 * workers:
                break
        while pending:
            result = pending.pop(0).result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(_render, nxt))
            yield from result


class _ZipSink(io.RawIOBase):
    """A write-only, non-seekable stream onto an AtomicFile (zipfile then streams)."""

    def __init__(self, out: AtomicFile) -> None:
        self._out = out
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        n = len(data)
        self._out.write(data)
        self._pos += n
        return n

    def tell(self) -> int:
        return self._pos


def _write_zip(minted, shape, directory: Path, kind: str, name: str, progress, workers) -> FileEntry:
    batch = minted.batch
    when = batch.created_at.timetuple()[:6]
    compress = zipfile.ZIP_DEFLATED if kind == "svg" else zipfile.ZIP_STORED
    with AtomicFile(directory / name, kind, batch.count) as out:
        with zipfile.ZipFile(_ZipSink(out), "w", compression=compress) as archive:
            for serial, data in rendered(minted, shape, kind, workers):
                info = zipfile.ZipInfo(zip_name(serial, kind), date_time=when)
                info.compress_type = compress
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
                if progress is not None:
                    progress(1)
    return out.entry


def write_svg(minted, shape: CodeShape, directory: Path, progress: Progress | None = None, *,
              workers: int | None = None) -> FileEntry:
    return _write_zip(minted, shape, directory, "svg", "qr-svg.zip", progress, workers)


def write_png(minted, shape: CodeShape, directory: Path, progress: Progress | None = None, *,
              workers: int | None = None) -> FileEntry:
    return _write_zip(minted, shape, directory, "png", "qr-png.zip", progress, workers)


# -- PDF label sheets ------------------------------------------------------------------------

COLUMNS, ROWS = 3, 8


def write_pdf(minted, shape: CodeShape, directory: Path, progress: Progress | None = None, *,
              workers: int | None = None) -> FileEntry:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    batch = minted.batch
    width, height = A4
    margin = 8 * mm
    cell_w = (width - 2 * margin) / COLUMNS
    cell_h = (height - 2 * margin) / ROWS
    quiet = 4
    with AtomicFile(directory / "labels.pdf", "pdf", batch.count) as out:
        sink = io.BytesIO()
        pdf = canvas.Canvas(sink, pagesize=A4, invariant=1, pageCompression=1)
        pdf.setTitle(f"Serialink batch {batch.id}")
        pdf.setAuthor("Serialink")
        pdf.setCreator("Serialink")
        pdf.setSubject(f"request {batch.request_id}")
        per_page = COLUMNS * ROWS
        encoder = QrEncoder(ERROR_LEVEL)
        for i in range(batch.count):
            slot = i % per_page
            if i and slot == 0:
                pdf.showPage()
            serial = minted.serial(i)
            symbol = encoder.encode(shape.dl_uri(serial))
            col, row = slot % COLUMNS, slot // COLUMNS
            x0 = margin + col * cell_w
            y_top = height - margin - row * cell_h
            side = cell_h - 4 * mm
            module = side / (symbol.size + 2 * quiet)
            qx, qy = x0 + 2 * mm + quiet * module, y_top - 2 * mm - quiet * module
            path = pdf.beginPath()
            modules = symbol.modules
            n = symbol.size
            for r in range(n):
                c = 0
                while c < n:
                    if modules[r * n + c]:
                        run = 1
                        while c + run < n and modules[r * n + c + run]:
                            run += 1
                        path.rect(qx + c * module, qy - (r + 1) * module, run * module, module)
                        c += run
                    else:
                        c += 1
            pdf.drawPath(path, stroke=0, fill=1)
            text = pdf.beginText(x0 + side + 3 * mm, y_top - 6 * mm)
            text.setFont("Helvetica", 6.5)
            for line in shape.hri_lines[:-1] + (f"(21) {serial}",):
                text.textLine(line)
            pdf.drawText(text)
            if progress is not None:
                progress(1)
        pdf.save()
        out.write(sink.getbuffer())
    return out.entry
