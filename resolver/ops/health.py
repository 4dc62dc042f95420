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
    get 503; or the store may lose acknowledged writes: ``writes`` names the setting to change
    and writes get 503 until it is changed). Both are 200: taking every resolver out of a load balancer because the shared
    store is down would turn a degraded service into none. ``?strict=1`` answers 503 when
    degraded, for checks that must gate on the store (e.g. before a migration)."""
    services = services_of(request)
    checks: dict[str, Any] = {"rules": services.rules.current.version}
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
    status = 503 if not ready and request.query_params.get("strict") in ("1", "true") else 200
    return JSONResponse({"status": "ready" if ready else "degraded", **checks}, status_code=status,
                        headers={"Retry-After": "5"} if not ready else None)


async def metrics(request: Request) -> Response:
    body, content_type = services_of(request).metrics.render()
    return Response(body, media_type=content_type)
