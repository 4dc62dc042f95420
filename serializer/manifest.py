"""The batch manifest: what a directory of batch files is, written last.

``manifest.json`` lists every file of the batch with its size, record count and SHA-256, and
says which batch it is (request id, range, profile). It is renamed into place after every
file it lists, so its presence means the set is complete; every field comes from the stored
batch (no clock reads), so a retry with the same request id writes the same bytes.

>>> from serializer.manifest import MANIFEST_NAME, read_manifest
>>> MANIFEST_NAME
'manifest.json'
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson

from serializer.errors import OutputError, OutputTaken
from serializer.output import AtomicFile, FileEntry

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def manifest_body(minted, stem: str, files: list[FileEntry]) -> dict:
    batch, profile = minted.batch, minted.profile
    return {
        "manifest_version": MANIFEST_VERSION,
        "batch_id": batch.id,
        "request_id": batch.request_id,
        "kind": str(batch.kind),
        "gtin": batch.gtin,
        "lot": batch.lot,
        "expiry": batch.expiry.isoformat() if batch.expiry else None,
        "site": batch.site,
        "line": batch.line,
        "created_at": batch.created_at.isoformat().replace("+00:00", "Z"),
        "profile": {"name": profile.name, "alphabet": profile.alphabet, "length": profile.length,
                    "mode": profile.mode, "prefix": profile.prefix, "space": str(profile.space)},
        "range": {"start": batch.start, "end": batch.end, "count": batch.count},
        "stem": stem,
        "counts": {"units": batch.count, "files": len(files)},
        "files": [f.as_json() for f in files],
    }


def write_manifest(directory: Path, body: dict) -> FileEntry:
    with AtomicFile(directory / MANIFEST_NAME, "manifest") as out:
        out.write(orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return out.entry


def read_manifest(directory: Path) -> dict | None:
    try:
        return orjson.loads((Path(directory) / MANIFEST_NAME).read_bytes())
    except FileNotFoundError:
        return None


def claim_directory(directory: Path, request_id: str, *, each: str, files_of: str = "") -> None:
    """Before anything is allocated: the output directory exists, this user may write in
    it, and it holds no other request's files (its manifest names this request, or there is
    none). ``each`` names what gets its own directory in the messages ("batch", "request");
    ``files_of`` prefixes the other request's id ("batch ")."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=directory, prefix=".write-probe-").close()
    except OSError as exc:
        raise OutputError("out", f"cannot write in {directory} ({exc.strerror}); give a directory this user "
                                 f"may write") from None
    try:
        existing = read_manifest(directory)
    except (OSError, ValueError):
        raise OutputTaken("out", f"{directory}/{MANIFEST_NAME} is unreadable; give each {each} its own, empty "
                                 f"directory") from None
    if existing is not None and existing.get("request_id") != request_id:
        raise OutputTaken("out", f"{directory} holds the files of {files_of}{existing.get('batch_id')}; "
                                 f"give each {each} its own directory")
