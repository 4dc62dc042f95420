"""Health, readiness, metrics and the resolver description: what load balancers, Prometheus
and GS1 clients ask a worker about itself."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from resolver.scan.description import description
from resolver.scan.handler import CORS
from resolver.services import services_of
from twin.errors import UnsafeDurability


async def well_known(request: Request) -> Response:
    services = services_of(request)
    return JSONResponse(description(services.rules.current), headers={k.decode(): v.decode() for k, v in CORS})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """``ready`` or ``degraded`` (store unreachable: scans are answered from caches, writes
    get 503; or the rules file is refused and older rules serve: ``rules_status`` says
    since when and why; or the store may lose acknowledged writes: ``writes`` names the
    setting to change and writes get 503 until it is changed). All are 200: taking every
    resolver out of a load balancer because the shared store is down would turn a degraded
    service into none. ``?strict=1`` answers 503 when degraded, for checks that must gate on
    it (e.g. before a migration, after a rules rollout)."""
    services = services_of(request)
    stale = services.rules.stale
    checks: dict[str, Any] = {"rules": services.rules.current.version,
                              "rules_status": "current" if stale is None else str(stale)}
    try:
        await asyncio.wait_for(services.store.gtin_version("00000000000000"), 2.0)
        checks["store"] = "ok"
        ready = True
    except Exception as exc:
        checks["store"] = f"unavailable: {type(exc).__name__}"
        ready = False
    try:
        await services.store.check_durable()
        checks["writes"] = "ok"
    except UnsafeDurability as exc:
        checks["writes"] = f"degraded: {exc}"
        ready = False
    except Exception:
        checks["writes"] = "unknown: the store is unavailable"
    stats = services.scans.stats()
    checks["scan_buffer"] = {"buffered": stats.buffered, "dropped": stats.dropped,
                             "failed_flushes": stats.failed_flushes}
    store_ready = ready
    ready = ready and stale is None
    status = 503 if not ready and request.query_params.get("strict") in ("1", "true") else 200
    return JSONResponse({"status": "ready" if ready else "degraded", **checks}, status_code=status,
                        headers={"Retry-After": "5"} if not store_ready else None)


async def metrics(request: Request) -> Response:
    body, content_type = services_of(request).metrics.render()
    return Response(body, media_type=content_type)
