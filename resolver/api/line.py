"""The line's closed loop over HTTP: bulk state reports for a batch's serials.

===========================================  ================================================
``POST /v1/batches/{id}/reports``            one bulk report (serials and/or index ranges):
                                             printed, verified pass/fail + grade,
                                             commissioned, rejected, unused, decommissioned,
                                             open, close; idempotent by ``report_id``
``POST /v1/batches/{id}/close``              close the batch: everything never commissioned
                                             is decommissioned (``{"report_id", "reason"}``)
``GET  /v1/batches/{id}/line``               the batch's line state: counts per state
``GET  /v1/batches/{id}/reports``            the reports applied, in order (what each did)
===========================================  ================================================

The body is described in ``serializer.line_reports``. A new report answers 201 with what
it did and the batch's counts; the same report id again answers 200 with ``replayed: true``
and changes nothing. A report that any serial refuses (of another batch, already
commissioned, scrapped, a closed batch) changes nothing and answers problem+json naming
the element (``serials[12]``, ``ranges[0]``). Bodies may be up to
``settings.max_report_bytes`` (a shift's serials in one report). Credentials: what the
batch API accepts (role ``line`` scoped to the batch's site/line, ``manufacturer``, ``admin``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from resolver.api.batches import READ_ROLES, WRITE_ROLES, _actor, _load_batch
from resolver.api.common import json_response, object_body
from resolver.services import services_of
from serializer.line_reports import submit
from twin.line_state import LineStep


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _submit(request: Request, body: dict[str, Any]) -> Response:
    claim, batch = await _load_batch(request, WRITE_ROLES)
    services = services_of(request)
    summary = await submit(services.store, services.keys, services.profiles, batch.id, body, _actor(claim), batch)
    services.lookup.invalidate(batch.gtin, "line", batch.id)  # this worker sees its own report at once
    state = await services.store.get_line_state(batch.id)
    return json_response({"batch": batch.id, "report": summary.as_json(),
                          "line": state.counts() if state is not None else None},
                         200 if summary.replayed else 201)


async def post_report(request: Request) -> Response:
    body = await object_body(request, services_of(request).settings.max_report_bytes)
    return await _submit(request, body)


async def close_batch(request: Request) -> Response:
    body = await object_body(request)
    return await _submit(request, {**body, "step": str(LineStep.CLOSE)})


async def get_line(request: Request) -> Response:
    _, batch = await _load_batch(request, READ_ROLES)
    state = await services_of(request).store.get_line_state(batch.id)
    return json_response({"batch": batch.id, "tracked": state is not None,
                          "line": state.counts() if state is not None else None})


async def get_reports(request: Request) -> Response:
    _, batch = await _load_batch(request, READ_ROLES)
    reports = await services_of(request).store.line_reports(batch.id)
    return json_response({"batch": batch.id, "reports": [
        {**r.summary.as_json(), "seq": r.seq, "at": _iso(r.at_ms), "result": r.result, "grade": r.grade, "reason": r.reason,
         "by": {"role": r.actor[0], "principal": r.actor[1]}} for r in reports]})


routes: list[BaseRoute] = [
    Route("/v1/batches/{batch_id}/reports", post_report, methods=["POST"]),
    Route("/v1/batches/{batch_id}/reports", get_reports, methods=["GET"]),
    Route("/v1/batches/{batch_id}/close", close_batch, methods=["POST"]),
    Route("/v1/batches/{batch_id}/line", get_line, methods=["GET"]),
]
