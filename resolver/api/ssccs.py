"""SSCCs for cases and pallets over the line API: mint (idempotent), look up, download labels.

===========================================  ================================================
``POST /v1/ssccs``                           mint ``count`` SSCCs (idempotent by ``request_id``)
                                             and write their labels; 201, or 200 for a retry
``GET  /v1/ssccs/{id}``                      the range, its first/last SSCC and manifest
``GET  /v1/ssccs/{id}/files/{name}``         one label file, streamed
===========================================  ================================================

Credentials as ``POST /v1/batches``: a line key, a ``line`` token, ``manufacturer`` or
``admin``; the product scope must cover the company prefix (the allocator key is
``serializer.sscc.scope_key``: extension + prefix + zeros + check digit). Body: ``prefix``, ``extension``, ``count``, ``request_id``, optional
``site``, ``line``, ``formats`` (csv, zpl; default both). The DL QR on each label points at
``<dl_stem or this resolver's root>/00/<sscc>``. Files live in ``data_dir/ssccs/<id>``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from resolver.api.batches import READ_ROLES, WRITE_ROLES, _actor, _check_line, _stem
from resolver.api.common import authorize, json_response, object_body
from resolver.errors import NotFound
from resolver.services import services_of
from twin.batch import BatchStatus, parse_batch_id
from twin.errors import InvalidInput


def _dir(request: Request, batch_id: str) -> Path:
    return services_of(request).settings.data_dir / "ssccs" / batch_id


def _json(ssccs, manifest: dict | None) -> dict:
    batch = ssccs.batch
    body = {"sscc_range": {"id": batch.id, "prefix": ssccs.prefix, "extension": ssccs.extension,
                           "count": batch.count, "first": ssccs.sscc(0), "last": ssccs.sscc(batch.count - 1),
                           "status": str(batch.status), "request_id": batch.request_id, "site": batch.site,
                           "line": batch.line, "created_at": batch.created_at.isoformat().replace("+00:00", "Z")},
            "manifest": manifest, "links": {"self": f"/v1/ssccs/{batch.id}"}}
    if manifest is not None:
        body["links"]["files"] = {f["name"]: f"/v1/ssccs/{batch.id}/files/{f['name']}" for f in manifest["files"]}
    return body


def _produce_locked(ssccs, stem: str, formats: tuple[str, ...], directory: Path) -> dict:
    from serializer.logistic_labels import produce

    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".producing.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return produce(ssccs, stem, formats, directory)
    finally:
        os.close(fd)


async def create_ssccs(request: Request) -> Response:
    from serializer.logistic_labels import parse_formats
    from serializer.manifest import read_manifest
    from serializer.sscc import SsccRequest, mint_ssccs

    body = await object_body(request)
    sscc_request = SsccRequest.parse(body)
    field = "formats" if "formats" in body else "format"
    formats = parse_formats(body.get(field), field)
    claim = await authorize(request, WRITE_ROLES, sscc_request.scope)
    _check_line(claim, sscc_request.site, sscc_request.line)
    services = services_of(request)
    try:
        ssccs = await mint_ssccs(services.store, sscc_request, _actor(claim))
    except InvalidInput as exc:
        from resolver.errors import BadRequest

        raise BadRequest(exc.problem, exc.field) from None
    directory = _dir(request, ssccs.batch.id)
    manifest = read_manifest(directory) if directory.is_dir() else None
    listed = {f["format"] for f in (manifest or {}).get("files", ())}
    status = 200
    if manifest is None or not all(f in listed for f in formats):
        manifest = await asyncio.to_thread(_produce_locked, ssccs, _stem(request), formats, directory)
        status = 201 if ssccs.batch.status is BatchStatus.ALLOCATED else 200
    if ssccs.batch.status is BatchStatus.ALLOCATED:
        batch = await services.store.set_batch_status(ssccs.batch.id, BatchStatus.COMMITTED, _actor(claim),
                                                      "labels delivered by the line API")
        ssccs = type(ssccs)(batch, ssccs.prefix, ssccs.extension)
    return json_response(_json(ssccs, manifest), status, {"Location": f"/v1/ssccs/{ssccs.batch.id}"})


async def _load(request: Request):
    from serializer.errors import MintError
    from serializer.sscc import is_sscc_batch, range_owner, scope_key, sscc_batch

    batch_id = request.path_params["batch_id"]
    try:
        parse_batch_id(batch_id)
    except InvalidInput as exc:
        raise NotFound(f"no SSCC range {batch_id!r}: {exc.problem}", "batch_id") from None
    try:
        prefix, extension = range_owner(batch_id)
    except MintError as exc:
        raise NotFound(exc.reason, "batch_id") from None
    claim = await authorize(request, READ_ROLES, scope_key(extension, prefix))
    batch = await services_of(request).store.get_batch(batch_id)
    if batch is None or not is_sscc_batch(batch):
        raise NotFound(f"no SSCC range {batch_id!r}", "batch_id")
    _check_line(claim, batch.site, batch.line)
    return sscc_batch(batch)


async def get_ssccs(request: Request) -> Response:
    from serializer.manifest import read_manifest

    ssccs = await _load(request)
    directory = _dir(request, ssccs.batch.id)
    return json_response(_json(ssccs, read_manifest(directory) if directory.is_dir() else None))


async def get_sscc_file(request: Request) -> Response:
    from serializer.manifest import read_manifest

    ssccs = await _load(request)
    name = request.path_params["name"]
    directory = _dir(request, ssccs.batch.id)
    manifest = read_manifest(directory) if directory.is_dir() else None
    entry = next((f for f in (manifest or {}).get("files", ()) if f["name"] == name), None)
    if entry is None:
        raise NotFound(f"SSCC range {ssccs.batch.id} has no file {name!r}", "name")
    media = {"csv": "text/csv; charset=utf-8", "zpl": "text/plain; charset=utf-8"}.get(entry["format"],
                                                                                      "application/octet-stream")
    return FileResponse(directory / name, media_type=media, filename=name,
                        headers={"Digest": f"sha-256={entry['sha256']}", "ETag": f'"{entry["sha256"]}"'})


routes: list[BaseRoute] = [
    Route("/v1/ssccs", create_ssccs, methods=["POST"]),
    Route("/v1/ssccs/{batch_id}", get_ssccs, methods=["GET"]),
    Route("/v1/ssccs/{batch_id}/files/{name}", get_sscc_file, methods=["GET"]),
]
