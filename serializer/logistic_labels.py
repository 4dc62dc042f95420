"""Case and pallet labels: one per SSCC, as ZPL (GS1-128 + DL QR) and CSV, then a manifest.

The same design as a batch's unit files (``serializer.produce``): every file is written to a
temporary name and renamed into place (``AtomicFile``), the manifest is written last and
lists each file's size and SHA-256, and everything in it comes from the stored range, so a
retry with the same request id rewrites identical bytes.

ZPL template placeholders (``config/zpl/sscc-label.zpl``): ``{{sscc}}``, ``{{gs1_128}}``
(``(00)`` + SSCC for a ``^BC`` in mode D, where the printer writes FNC1 itself),
``{{dl_uri}}`` (``<resolver>/00/<sscc>``, after ``^FDMA,`` in a ``^BQ``), ``{{hri}}``,
``{{element_string}}`` (FNC1 as ``^``).

>>> label = LogisticLabel("106141411234567897", "https://id.example.com")
>>> label.dl_uri, label.element_string, label.hri, label.gs1_128
('https://id.example.com/00/106141411234567897', '^00106141411234567897', '(00) 106141411234567897', '(00)106141411234567897')
>>> parse_formats("zpl,csv")
('zpl', 'csv')
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import orjson

from ext import build, element_string, hri
from serializer.codes import FNC1_TOKEN
from serializer.errors import MintError, OutputTaken, TemplateError
from serializer.manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    claim_directory,
    read_manifest,
    write_manifest,
)
from serializer.output import AtomicFile, FileEntry, check_free_space, remove_stale_temporaries
from serializer.sscc import SsccBatch
from serializer.zpl import read_template

CSV_NAME = "ssccs.csv"
ZPL_NAME = "sscc-labels.zpl"
FILES = {"csv": CSV_NAME, "zpl": ZPL_NAME}
COLUMNS = ("sscc", "element_string", "dl_uri")
PLACEHOLDERS = ("sscc", "gs1_128", "dl_uri", "hri", "element_string")
_TOKEN = re.compile(r"\{\{\s*([a-z_0-9]+)\s*\}\}")
BYTES_PER_LABEL = 400
_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class LogisticLabel:
    """What one case/pallet label carries, each form from the GS1 core."""

    sscc: str
    stem: str

    @property
    def dl_uri(self) -> str:
        return build((("00", self.sscc),)).uri(self.stem)

    @property
    def element_string(self) -> str:
        return element_string((("00", self.sscc),), False, FNC1_TOKEN)

    @property
    def hri(self) -> str:
        return " ".join(hri((("00", self.sscc),)))

    @property
    def gs1_128(self) -> str:
        return f"(00){self.sscc}"


def parse_formats(value: object, field: str = "format") -> tuple[str, ...]:
    """``"csv,zpl"`` or a list (None: csv and zpl); unknown names refused naming ``field``."""
    if value is None:
        return ("csv", "zpl")
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise MintError(field, f"expected format names (csv, zpl) as a list or comma-separated text, got {value!r:.40}")
    out: list[str] = []
    for item in items:
        name = item.strip().lower()
        if name and name not in FILES:
            raise MintError(field, f"unknown format {name!r} for SSCC labels; known: {', '.join(FILES)}")
        if name and name not in out:
            out.append(name)
    if not out:
        raise MintError(field, "name at least one format")
    return tuple(out)


def default_template_path() -> Path:
    from settings import default_config_dir

    return default_config_dir() / "zpl" / "sscc-label.zpl"  # the checkout's config/ or the wheel's copy


@dataclass(frozen=True)
class SsccTemplate:
    text: str
    path: str = "<template>"

    @classmethod
    def load(cls, path: Path | None = None) -> SsccTemplate:
        path = Path(path) if path is not None else default_template_path()
        return cls.parse(read_template(path), str(path))

    @classmethod
    def parse(cls, text: str, path: str = "<template>") -> SsccTemplate:
        if "^XA" not in text or "^XZ" not in text:
            raise TemplateError(path, 1, "a label format starts with ^XA and ends with ^XZ")
        for m in _TOKEN.finditer(text):
            if m.group(1) not in PLACEHOLDERS:
                line = text.count("\n", 0, m.start()) + 1
                raise TemplateError(path, line, f"unknown placeholder {{{{{m.group(1)}}}}}; known: "
                                                f"{', '.join(PLACEHOLDERS)}")
        if "{{gs1_128}}" in text.replace(" ", "") and not re.search(r"\^BC[A-Z]?(,[^,\^~]*){4},D", text):
            raise TemplateError(path, 1, "{{gs1_128}} needs a ^BC field in mode D (6th parameter D), "
                                         "where the printer writes FNC1 for the (00)")
        return cls(text if text.endswith("\n") else text + "\n", path)

    def render(self, label: LogisticLabel) -> str:
        """One label, each value from the GS1 core (the reference the fast path must equal)."""
        return _TOKEN.sub(lambda m: str(getattr(label, m.group(1))), self.text)

    def renderer(self, stem: str):
        """``sscc -> label`` by joining the template's pieces around the SSCC: the forms of AI
        (00) are fixed text around 18 digits that need no escaping anywhere."""
        pieces = _TOKEN.split(self.text)  # literal, name, literal, name, …
        literals, names = pieces[0::2], pieces[1::2]
        forms = _fast_forms(stem)

        def render(sscc: str) -> str:
            out = [literals[0]]
            for name, literal in zip(names, literals[1:]):
                before, after = forms[name]
                out += (before, sscc, after, literal)
            return "".join(out)

        return render


def csv_row(label: LogisticLabel) -> str:
    """The reference row through the csv module and the GS1 core."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([label.sscc, label.element_string, label.dl_uri])
    return out.getvalue()


def _fast_forms(stem: str) -> dict[str, tuple[str, str]]:
    """Each placeholder's text as (before, after) the SSCC, split from the GS1 core's own
    output for a sample SSCC (digits only: no escaping, no quoting)."""
    sample = LogisticLabel("106141411234567897", stem)
    return {name: tuple(str(getattr(sample, name)).split(sample.sscc))  # type: ignore[misc]
            for name in PLACEHOLDERS}


def _check_fast(fast, reference, samples: list[str], what: str) -> None:
    """The fast rows must equal the reference for the first and last SSCC, or nothing is written."""
    for sscc in samples:
        if fast(sscc) != reference(sscc):
            raise AssertionError(f"{what}: fast row {fast(sscc)!r} differs from the reference {reference(sscc)!r}")


def check_output(directory: Path, request_id: str, formats: tuple[str, ...], count: int,
                 template_path: Path | None = None) -> None:
    """What can be checked before any SSCC is allocated: directory, space, template."""
    directory = Path(directory)
    claim_directory(directory, request_id, each="request")
    check_free_space(directory, BYTES_PER_LABEL * len(formats) * count + (1 << 20))
    if "zpl" in formats:
        SsccTemplate.load(template_path)


def produce(ssccs: SsccBatch, stem: str, formats: tuple[str, ...], directory: Path,
            template_path: Path | None = None) -> dict:
    """Write the label files of an SSCC range, then its manifest; returns the manifest."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    existing = read_manifest(directory)
    if existing is not None and existing.get("batch_id") != ssccs.batch.id:
        raise OutputTaken("out", f"{directory} holds the files of {existing.get('batch_id')}; give each "
                                 f"request its own directory")
    remove_stale_temporaries(directory, [FILES[f] for f in formats] + [MANIFEST_NAME])
    stem = stem.rstrip("/")
    template = SsccTemplate.load(template_path) if "zpl" in formats else None
    count = ssccs.batch.count
    samples = [ssccs.sscc(0), ssccs.sscc(count - 1)]
    forms = _fast_forms(stem)
    element, uri = forms["element_string"], forms["dl_uri"]

    def fast_csv(sscc: str) -> str:
        return f"{sscc},{element[0]}{sscc}{element[1]},{uri[0]}{sscc}{uri[1]}\r\n"

    files: list[FileEntry] = []
    try:
        for fmt in formats:
            if fmt == "csv":
                row = fast_csv
                _check_fast(row, lambda x: csv_row(LogisticLabel(x, stem)), samples, CSV_NAME)
            else:
                assert template is not None
                row = template.renderer(stem)
                _check_fast(row, lambda x: template.render(LogisticLabel(x, stem)), samples, ZPL_NAME)
            with AtomicFile(directory / FILES[fmt], fmt, count) as out:
                if fmt == "csv":
                    out.write((",".join(COLUMNS) + "\r\n").encode())
                for start in range(0, count, _CHUNK):  # bounded memory for a million labels
                    out.write("".join(row(ssccs.sscc(i)) for i in range(start, min(start + _CHUNK, count))).encode())
            assert out.entry is not None
            files.append(out.entry)
        body = manifest_body(ssccs, stem, files)
        write_manifest(directory, body)
    except BaseException:
        if existing is None:  # no manifest, no files: a half set would look deliverable
            for entry in files:
                (directory / entry.name).unlink(missing_ok=True)
        raise
    return body


def manifest_body(ssccs: SsccBatch, stem: str, files: list[FileEntry]) -> dict:
    batch = ssccs.batch
    return {
        "manifest_version": MANIFEST_VERSION,
        "kind": "sscc",
        "batch_id": batch.id,
        "request_id": batch.request_id,
        "prefix": ssccs.prefix,
        "extension": ssccs.extension,
        "site": batch.site,
        "line": batch.line,
        "created_at": batch.created_at.isoformat().replace("+00:00", "Z"),
        "range": {"start": batch.start, "end": batch.end, "count": batch.count},
        "first": ssccs.sscc(0),
        "last": ssccs.sscc(batch.count - 1),
        "stem": stem,
        "counts": {"ssccs": batch.count, "files": len(files)},
        "files": [f.as_json() for f in files],
    }


def manifest_json(body: dict) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
