"""The factory line API: mint batches, poll them, download their files, void and scrap.

===========================================  ================================================
``POST /v1/batches``                         mint (idempotent by ``request_id``); 201 with the
                                             manifest when small, 202 + polling when large
``GET  /v1/batches/{id}``                    batch status, output status, manifest
``GET  /v1/batches/{id}/files/{name}``       one file of the manifest, streamed
``POST /v1/batches/{id}/void``               void a batch (its serials are never valid again)
``POST /v1/batches/{id}/decommission``       scrapped labels: ``{"serials": […], "reason": …}``
===========================================  ================================================

Credentials: a line key (``serialink lines add``; scoped to one site, one line and
GTINs/prefixes), a token of role ``line`` (scoped to sites/lines and GTINs/prefixes),
``manufacturer`` or ``admin``. The body of ``POST /v1/batches``: ``gtin``, ``count``, ``profile``, ``request_id``,
optional ``lot``, ``expiry`` (YYYY-MM-DD), ``site``, ``line``, ``formats`` (list or
comma-separated; default csv), ``line_tracking`` (true: the batch's serials resolve as
``not_commissioned`` until the line reports them, see ``resolver.api.line``). Files live in ``settings.data_dir / "batches" / <batch id>``.
Errors: ``{"error": {"field": …, "reason": …}}``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from resolver.api.common import authorize, json_body, json_response, object_body
from resolver.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge
from resolver.services import services_of
from twin.batch import BatchKind, BatchStatus, parse_batch_id
from twin.errors import IllegalTransition, InvalidInput
from twin.events import Actor, make_event
from twin.unit import unit_from_batch

WRITE_ROLES = ("line", "manufacturer", "admin")
READ_ROLES = ("line", "manufacturer", "admin", "regulator")
#: Batches up to this size are written before the POST answers; larger ones in the background.
SYNC_UNITS = 200_000
MAX_DECOMMISSION = 10_000


def _count_minted(request: Request, batch) -> None:
    """serialink_batches_minted_total / serialink_units_minted_total, by profile (retries included:
    a replayed request id counts again, so the rate is what lines asked for)."""
    metrics = services_of(request).metrics
    metrics.inc("serialink_batches_minted", profile=batch.profile)
    metrics.inc("serialink_units_minted", profile=batch.profile, by=batch.count)


def _batch_dir(request: Request, batch_id: str) -> Path:
    return services_of(request).settings.data_dir / "batches" / batch_id


def _jobs(request: Request) -> dict[str, asyncio.Task]:
    return services_of(request).jobs


def _check_line(claim, site: str | None, line: str | None) -> None:
    if claim.role == "line" and (claim.sites or claim.lines) and not claim.allows_line(site, line):
        covers = f"site {', '.join(sorted(claim.sites)) or 'any'} line {', '.join(sorted(claim.lines)) or 'any'}"
        if site is None or line is None:
            raise Forbidden(f"name the site and line in the body: {claim.principal!r} covers {covers}", "line")
        raise Forbidden(f"token for {claim.principal!r} does not cover site {site!r} line {line!r} "
                        f"(it covers {covers})", "line")


def _actor(claim) -> Actor:
    role = claim.role if claim.role in ("line", "manufacturer") else "manufacturer"
    return Actor(role, claim.principal[:200])


def _producing(directory: Path) -> bool:
    """Is some process (this one or another worker) writing this batch's files now?"""
    lock = directory / ".producing.lock"
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _produce_locked(minted, shape, formats, directory: Path) -> dict:
    from serializer.produce import produce

    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".producing.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return produce(minted, shape, formats, directory)
    finally:
        os.close(fd)


def _output_state(directory: Path, formats: tuple[str, ...] | None = None) -> tuple[str, dict | None]:
    from serializer.manifest import read_manifest

    manifest = read_manifest(directory) if directory.is_dir() else None
    if manifest is not None:
        listed = {f["format"] for f in manifest.get("files", ())}
        if formats is None or all(f in listed for f in formats):
            return "ready", manifest
        # fall through: more formats were asked than the manifest lists
    if directory.is_dir() and _producing(directory):
        return "producing", manifest
    return "pending", manifest


def _batch_json(batch) -> dict:
    return {"id": batch.id, "gtin": batch.gtin, "profile": batch.profile, "status": str(batch.status),
            "kind": str(batch.kind), "count": batch.count, "range": {"start": batch.start, "end": batch.end},
            "request_id": batch.request_id, "lot": batch.lot,
            "expiry": batch.expiry.isoformat() if batch.expiry else None, "site": batch.site,
            "line": batch.line, "status_reason": batch.status_reason,
            "created_at": batch.created_at.isoformat().replace("+00:00", "Z")}


def _answer(request: Request, batch, state: str, manifest: dict | None, status: int) -> Response:
    body = {"batch": _batch_json(batch), "output": state, "manifest": manifest,
            "links": {"self": f"/v1/batches/{batch.id}"}}
    if manifest is not None:
        body["links"]["files"] = {f["name"]: f"/v1/batches/{batch.id}/files/{f['name']}" for f in manifest["files"]}
    headers = {"Location": f"/v1/batches/{batch.id}"}
    if state != "ready":
        headers["Retry-After"] = "2"
    return json_response(body, status, headers)


def _stem(request: Request) -> str:
    """``dl_stem`` if set, else this resolver's root: the codes must lead back here."""
    services = services_of(request)
    return (services.settings.dl_stem or services.current_rules.root).rstrip("/")


async def _commit(request: Request, batch, claim):
    """Files delivered: the batch leaves ``allocated`` (what ``serialink batches list`` flags)."""
    if batch.status is not BatchStatus.ALLOCATED:
        return batch
    return await services_of(request).store.set_batch_status(batch.id, BatchStatus.COMMITTED, _actor(claim),
                                                             "files delivered by the line API")


async def create_batch(request: Request) -> Response:
    from serializer.codes import CodeShape
    from serializer.minting import BatchRequest, mint
    from serializer.produce import check_request_formats, parse_formats

    body = await object_body(request)
    batch_request = BatchRequest.parse(body)
    field = "formats" if "formats" in body else "format"
    formats = parse_formats(body.get(field), field)
    check_request_formats(formats, batch_request.count)
    claim = await authorize(request, WRITE_ROLES, batch_request.gtin)
    _check_line(claim, batch_request.site, batch_request.line)
    services = services_of(request)
    try:
        minted = await mint(services.store, services.keys, services.profiles, batch_request, _actor(claim))
    except InvalidInput as exc:
        raise BadRequest(exc.problem, exc.field) from None
    batch = minted.batch
    _count_minted(request, batch)
    if body.get("line_tracking") is True:  # opt in before anything is printed: nothing resolves as genuine yet
        from serializer.line_reports import submit

        await submit(services.store, services.keys, services.profiles, batch.id,
                     {"report_id": "open", "step": "open"}, _actor(claim), batch)
        services.lookup.invalidate(batch.gtin, "line", batch.id)
    directory = _batch_dir(request, batch.id)
    output, manifest = _output_state(directory, formats)
    if output == "ready":
        batch = await _commit(request, batch, claim)
        return _answer(request, batch, output, manifest, 200)
    shape = CodeShape(batch.gtin, batch.lot, batch.expiry, _stem(request))
    jobs = _jobs(request)
    if batch.count <= SYNC_UNITS:
        manifest = await asyncio.to_thread(_produce_locked, minted, shape, formats, directory)
        batch = await _commit(request, batch, claim)
        return _answer(request, batch, "ready", manifest, 201)
    job = jobs.get(batch.id)
    if job is None or job.done():
        async def produce_then_commit() -> None:
            await asyncio.to_thread(_produce_locked, minted, shape, formats, directory)
            await _commit(request, minted.batch, claim)

        jobs[batch.id] = asyncio.get_running_loop().create_task(produce_then_commit(), name=f"batch {batch.id}")
    return _answer(request, batch, "producing", None, 202)


async def _load_batch(request: Request, roles=READ_ROLES):
    batch_id = request.path_params["batch_id"]
    try:
        parse_batch_id(batch_id)
    except InvalidInput as exc:
        raise NotFound(f"no batch {batch_id!r}: {exc.problem}", "batch_id") from None
    # authenticate before saying whether the batch exists
    claim = await authorize(request, roles, batch_id.split(".", 1)[0])
    batch = await services_of(request).store.get_batch(batch_id)
    if batch is None:
        raise NotFound(f"no batch {batch_id!r}", "batch_id")
    _check_line(claim, batch.site, batch.line)
    return claim, batch


async def get_batch(request: Request) -> Response:
    _, batch = await _load_batch(request)
    directory = _batch_dir(request, batch.id)
    job = _jobs(request).get(batch.id)
    if job is not None and job.done() and job.exception() is not None:
        exc = job.exception()
        return json_response({"batch": _batch_json(batch), "output": "failed", "manifest": None,
                              "error": {"field": getattr(exc, "field", "out"),
                                        "reason": getattr(exc, "reason", str(exc))}}, 200)
    output, manifest = _output_state(directory)
    if output == "pending" and job is not None and not job.done():
        output = "producing"
    return _answer(request, batch, output, manifest, 200)


async def get_file(request: Request) -> Response:
    from serializer.manifest import read_manifest

    _, batch = await _load_batch(request)
    name = request.path_params["name"]
    directory = _batch_dir(request, batch.id)
    manifest = read_manifest(directory) if directory.is_dir() else None
    if name == "manifest.json" and manifest is not None:
        return FileResponse(directory / name, media_type="application/json")
    entry = next((f for f in (manifest or {}).get("files", ()) if f["name"] == name), None)
    if entry is None:
        raise NotFound(f"batch {batch.id} has no file {name!r} (yet)", "name")
    media = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson", "zpl": "text/plain; charset=utf-8",
             "epcis": "application/ld+json", "svg": "application/zip", "png": "application/zip",
             "pdf": "application/pdf"}.get(entry["format"], "application/octet-stream")
    return FileResponse(directory / name, media_type=media, filename=name,
                        headers={"Digest": f"sha-256={entry['sha256']}", "ETag": f'"{entry["sha256"]}"'})


async def void_batch(request: Request) -> Response:
    claim, batch = await _load_batch(request, WRITE_ROLES)
    body = await json_body(request)
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("say why the batch is voided (text)", "reason")
    try:
        batch = await services_of(request).store.set_batch_status(batch.id, BatchStatus.VOIDED, _actor(claim), reason)
    except IllegalTransition as exc:
        raise Conflict(exc.reason, "status") from None
    except InvalidInput as exc:
        raise BadRequest(exc.problem, exc.field) from None
    return json_response({"batch": _batch_json(batch)})


async def decommission(request: Request) -> Response:
    """Printed-and-scrapped labels: each serial gets a ``decommission`` event (never reused)."""
    claim, batch = await _load_batch(request, WRITE_ROLES)
    body = await object_body(request)
    serials, reason = body.get("serials"), body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("say why the labels were scrapped (text)", "reason")
    if not isinstance(serials, list) or not serials or not all(isinstance(s, str) for s in serials):
        raise Invalid("expected a non-empty list of serials", "serials")
    if len(serials) > MAX_DECOMMISSION:
        raise PayloadTooLarge(f"at most {MAX_DECOMMISSION} serials per request", "serials")
    services = services_of(request)
    if batch.kind is BatchKind.MINTED:
        from serializer.minting import regenerate

        minted = await regenerate(batch, services.keys, services.profiles)
        for i, serial in enumerate(serials):
            counter = minted.permutation.decode(serial)
            if counter is None or counter not in batch:
                raise Invalid(f"{serial!r} is not a serial of batch {batch.id}", f"serials[{i}]")
    else:
        for i, serial in enumerate(serials):
            if await services.store.find_imported(batch.gtin, serial) != batch.id:
                raise Invalid(f"{serial!r} is not a serial of batch {batch.id}", f"serials[{i}]")
    actor = _actor(claim)
    done = []
    for serial in serials:
        event = make_event("decommission", actor, reason, where=batch.line)
        try:
            appended = await services.store.append_event(
                batch.gtin, serial, event, origin=unit_from_batch(batch.gtin, serial, batch),
                idempotency_key=f"decommission-{batch.id}-{serial}"[:100])
        except IllegalTransition as exc:
            raise Conflict(f"{serial}: {exc.reason}", "serials") from None
        except InvalidInput as exc:
            raise BadRequest(exc.problem, exc.field) from None
        done.append({"serial": serial, "state": str(appended.unit.state)})
    return json_response({"batch": batch.id, "decommissioned": done})


routes: list[BaseRoute] = [
    Route("/v1/batches", create_batch, methods=["POST"]),
    Route("/v1/batches/{batch_id}", get_batch, methods=["GET"]),
    Route("/v1/batches/{batch_id}/files/{name}", get_file, methods=["GET"]),
    Route("/v1/batches/{batch_id}/void", void_batch, methods=["POST"]),
    Route("/v1/batches/{batch_id}/decommission", decommission, methods=["POST"]),
]
