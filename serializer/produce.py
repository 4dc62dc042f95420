"""Writing a batch's files: the formats a line asked for, then the manifest.

>>> from serializer.produce import parse_formats
>>> parse_formats("csv,zpl,jsonl")
('csv', 'zpl', 'jsonl')
>>> parse_formats("csv,gif")
Traceback (most recent call last):
...
serializer.errors.MintError: format: unknown format 'gif'; known: csv, zpl, jsonl, epcis, svg, png, pdf
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from serializer import csv_writer, epcis, images, jsonl, zpl
from serializer.codes import CodeShape
from serializer.errors import MintError, MintTooLarge, OutputError, OutputTaken
from serializer.manifest import (
    MANIFEST_NAME,
    claim_directory,
    manifest_body,
    read_manifest,
    write_manifest,
)
from serializer.minting import MintedBatch
from serializer.output import FileEntry, Progress, check_free_space, remove_stale_temporaries


@dataclass(frozen=True, slots=True)
class OutputOptions:
    zpl_template: Path | None = None
    image_workers: int | None = None  # None: one per CPU


Writer = Callable[[MintedBatch, CodeShape, Path, "Progress | None", OutputOptions], FileEntry]


class Format(NamedTuple):
    file: str  # the output file's name in the batch directory
    bytes_per_unit: int  # rough, for the free-space check before writing
    write: Writer


def _plain(write: Callable[..., FileEntry]) -> Writer:
    return lambda minted, shape, directory, progress, options: write(minted, shape, directory, progress)


def _image(write: Callable[..., Any]) -> Writer:
    return lambda minted, shape, directory, progress, options: write(minted, shape, directory, progress,
                                                                     workers=options.image_workers)


FORMATS: dict[str, Format] = {
    "csv": Format("codes.csv", 260, _plain(csv_writer.write)),
    "zpl": Format("labels.zpl", 460, lambda minted, shape, directory, progress, options: zpl.write(
        minted, shape, directory, progress, template_path=options.zpl_template)),
    "jsonl": Format("codes.jsonl", 300, _plain(jsonl.write)),
    "epcis": Format("epcis.jsonld", 70, _plain(epcis.write)),
    "svg": Format("qr-svg.zip", 3000, _image(images.write_svg)),
    "png": Format("qr-png.zip", 1200, _image(images.write_png)),
    "pdf": Format("labels.pdf", 4000, _image(images.write_pdf)),
}
IMAGE_FORMATS = ("svg", "png", "pdf")
#: Images are for proofs and small runs: printers and label software render the rest.
MAX_IMAGE_UNITS = 100_000


def parse_formats(value: object, field: str = "format") -> tuple[str, ...]:
    """``"csv,zpl"`` or ``["csv", "zpl"]`` (None: csv); anything else is refused naming ``field``."""
    if value is None:
        return ("csv",)
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise MintError(field, f"expected a list of format names or a comma-separated text, got "
                               f"{type(value).__name__} {value!r:.40}")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise MintError(field, f"expected format names as text, got {type(item).__name__} {item!r:.40}")
        name = item.strip().lower()
        if not name:
            continue
        if name not in FORMATS:
            raise MintError(field, f"unknown format {name!r}; known: {', '.join(FORMATS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise MintError(field, "name at least one format")
    return tuple(out)


def check_request_formats(formats: tuple[str, ...], count: int) -> None:
    images = [f for f in formats if f in IMAGE_FORMATS]
    if images and count > MAX_IMAGE_UNITS:
        raise MintTooLarge("format", f"{', '.join(images)} images are for proofs and small runs (at most "
                                  f"{MAX_IMAGE_UNITS:,} units); {count:,} units go to printers as "
                                  f"csv or zpl")


def check_output(directory: Path, formats: tuple[str, ...], shape: CodeShape, count: int, request_id: str,
                 options: OutputOptions = OutputOptions()) -> None:
    """Everything about the output that can be checked before a serial is allocated.

    A batch whose files cannot be delivered still holds serials that resolve as genuine, so
    the directory (created, writable, not holding another batch), the free space, the formats
    and the ZPL template are checked first; what is left to fail after allocation is what no
    check can foresee (a disk filling up meanwhile), and a retry with the same request id
    finishes that batch.
    """
    check_request_formats(formats, count)
    directory = Path(directory)
    claim_directory(directory, request_id, each="batch", files_of="batch ")
    check_free_space(directory, sum(FORMATS[f].bytes_per_unit for f in formats) * count + (1 << 20))
    if "zpl" in formats:
        from serializer.zpl import LabelTemplate

        LabelTemplate.load(options.zpl_template).row(shape)


def produce(minted: MintedBatch, shape: CodeShape, formats: tuple[str, ...], directory: Path,
            progress: Progress | None = None, options: OutputOptions = OutputOptions()) -> dict:
    """Write ``formats`` of the batch into ``directory`` (created), then the manifest.
    Returns the manifest. Regenerating an existing batch rewrites identical bytes."""
    check_request_formats(formats, minted.batch.count)
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError("out", f"cannot create {directory}: {exc.strerror}") from None
    existing = read_manifest(directory)
    if existing is not None and existing.get("batch_id") != minted.batch.id:
        raise OutputTaken("out", f"{directory} holds the files of batch {existing.get('batch_id')}; "
                                 f"give each batch its own directory")
    names = [FORMATS[f].file for f in formats] + [MANIFEST_NAME]
    remove_stale_temporaries(directory, names)
    check_free_space(directory, sum(FORMATS[f].bytes_per_unit for f in formats) * minted.batch.count + (1 << 20))
    files: list[FileEntry] = []
    try:
        for fmt in formats:
            files.append(FORMATS[fmt].write(minted, shape, directory, progress, options))
        body = manifest_body(minted, shape.stem, files)
        write_manifest(directory, body)
    except BaseException:
        # no manifest, no files: a half set under real names would look deliverable
        if existing is None:
            for entry in files:
                (directory / entry.name).unlink(missing_ok=True)
        raise
    return body
