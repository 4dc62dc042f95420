"""The Starlette application: scans at the root, APIs under /v1, health and description files.

``create_app(settings)`` builds it; ``app_factory()`` is what Granian imports in every
worker (settings from the environment, see settings). Shared services live on
``app.state.services`` (and the few names the API modules read directly on app.state).

Startup opens the store, loads the rules (refusing to start only if neither the file nor
the last good copy is valid), and starts three background tasks per worker: the scan
buffer flusher, the change-feed follower that invalidates caches, and the rules watcher
(file change or SIGHUP → validate → swap).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from resolver.ops import logs
from resolver.scan.description import description
from resolver.ops.metrics import Metrics
from resolver.rules.holder import RulesHolder
from resolver.scan.handler import CORS, ScanHandler
from resolver.access.tokens import TokenIssuer, TokenVerifier
from resolver.scan.lookup import UnitLookup
from settings import Settings, load_settings
from twin.errors import StoreError
from twin.scans import ScanBuffer
from twin.store import open_store

log = logging.getLogger("serialink.resolver")


class Services:
    """Everything a request may need, built once per worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.rules = RulesHolder(settings.rules_file, settings.data_dir, self.metrics.rules_reloaded)
        self.issuer = TokenIssuer(settings.secret())
        self.token_verifier = self.issuer.verifier()
        self.revocations: Any = None
        self.store: Any = None
        self.verifier: Any = None
        self.lookup: UnitLookup | None = None
        self.scans: ScanBuffer | None = None
        self.tasks: list[asyncio.Task] = []

    def record_scan(self, scan) -> None:
        if self.scans is not None:
            self.scans.add(scan)

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = await open_store(self.settings.store_url)
        # Revoked tokens are refused from the first request on, scans included: the list
        # lives in the store (every host sees it), each worker keeps a copy at most 1 s old.
        from resolver.access.revocation import RevocationList

        self.revocations = RevocationList(self.store)
        self.token_verifier = TokenVerifier(self.settings.secret(), revoked=self.revocations)
        self.verifier = _make_verifier(self.store, self.settings)
        self.lookup = UnitLookup(self.store, self.verifier)
        self.scans = ScanBuffer(self.store, max_events=self.settings.scan_buffer_size,
                                interval=self.settings.scan_flush_seconds, on_error=self.metrics.scan_flush_failed,
                                on_flush=self.metrics.scan_flushed)
        self.metrics.bind(self)
        # A resolver allocates many short-lived objects and keeps large caches; the default
        # cyclic-GC thresholds make it walk those caches over and over, which shows up as
        # latency spikes. Startup objects are frozen out of collection and gen-0 runs less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        self.tasks = [
            asyncio.create_task(self.scans.run(), name="scan-flusher"),
            asyncio.create_task(self.lookup.follow_changes(self.settings.changes_poll_seconds), name="change-feed"),
            asyncio.create_task(self.rules.watch(self.settings.rules_poll_seconds), name="rules-watcher"),
        ]
        shared = os.environ.get("SERIALINK_METRICS_DIR")  # set by `serialink serve`: sum every worker's numbers
        if shared:
            from resolver.ops.metrics_shared import SharedMetrics

            self.metrics.shared = SharedMetrics(shared)
            self.tasks.append(asyncio.create_task(self.metrics.shared.run(self.metrics.snapshot), name="metrics"))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.store is not None:
            await self.store.close()


def _make_verifier(store, settings: Settings):
    """The serialiser's verifier (is this serial one we issued, in which batch?), if present."""
    try:
        from serializer.verify import SerialVerifier
    except ImportError:
        log.warning("serializer.verify is not available: serials without a record are routed as 'unknown'")
        return None
    return SerialVerifier.from_settings(store, settings)


async def well_known(request: Request) -> Response:
    services: Services = request.app.state.services
    return JSONResponse(description(services.rules.current), headers=dict((k.decode(), v.decode()) for k, v in CORS))


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """``ready`` or ``degraded`` (store unreachable: scans are answered from caches, writes
    get 503). Both are 200: taking every resolver out of a load balancer because the shared
    store is down would turn a degraded service into none. ``?strict=1`` answers 503 when
    degraded, for checks that must gate on the store (e.g. before a migration)."""
    services: Services = request.app.state.services
    checks: dict[str, Any] = {"rules": services.rules.current.version}
    try:
        await asyncio.wait_for(services.store.gtin_version("00000000000000"), 2.0)
        checks["store"] = "ok"
        ready = True
    except Exception as exc:
        checks["store"] = f"unavailable: {type(exc).__name__}"
        ready = False
    stats = services.scans.stats() if services.scans else None
    if stats is not None:
        checks["scan_buffer"] = {"buffered": stats.buffered, "dropped": stats.dropped,
                                 "failed_flushes": stats.failed_flushes}
    status = 503 if not ready and request.query_params.get("strict") in ("1", "true") else 200
    return JSONResponse({"status": "ready" if ready else "degraded", **checks}, status_code=status,
                        headers={"Retry-After": "5"} if not ready else None)


async def store_unavailable(request: Request, exc: Exception) -> Response:
    """Any API or page whose store call failed: 503 + Retry-After, never a 500."""
    log.warning("store unavailable: %s", exc)
    return JSONResponse({"error": {"reason": "the store is unavailable; try again shortly"}}, status_code=503,
                        headers={"Retry-After": "2"})


async def metrics_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)


def api_routes() -> list[BaseRoute]:
    """The /v1 APIs, from every module that provides them."""
    from resolver.api import links as links_api

    routes: list[BaseRoute] = list(links_api.routes)
    for module_name in ("resolver.api.units",):
        try:
            module = __import__(module_name, fromlist=["routes"])
        except ImportError:
            continue
        routes.extend(module.routes)
    return routes


def line_routes() -> list[BaseRoute]:
    """The factory line API: its routes carry their /v1 prefix (they are not mounted)."""
    try:
        from resolver.api import batches as batch_api
    except ImportError:
        return []
    return list(batch_api.routes)


def page_routes() -> list[BaseRoute]:
    """Built-in web pages (owner and service journeys), when that module is present."""
    try:
        from resolver.pages import routes as pages
    except ImportError:
        return []
    return list(pages.routes)


#: Paths that belong to the application, not to GS1 Digital Link resolution.
APP_PREFIXES = ("/v1/", "/v1", "/.well-known/", "/healthz", "/readyz", "/metrics", "/u/", "/static/", "/docs",
                "/openapi.json")


class ScansFirst:
    """Send scans straight to the scan handler; everything else through Starlette's router.

    Scans are nearly all the traffic, and resolving one needs none of the router's
    matching (~15 µs of it per request): any path outside APP_PREFIXES is a Digital Link.
    """

    def __init__(self, app, scans: ScanHandler) -> None:
        self.app = app
        self.scans = scans

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(APP_PREFIXES):
            await self.scans(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    services = Services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await services.start()
        app.state.store = services.store
        app.state.token_verifier = services.token_verifier
        app.state.profiles = getattr(services.verifier, "profiles", None)
        app.state.keys = getattr(services.verifier, "keys", None)
        try:
            yield
        finally:
            await services.stop()

    scans = ScanHandler(services)
    routes: list[BaseRoute] = [
        Route("/.well-known/gs1resolver", well_known, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *line_routes(),
        Mount("/v1", routes=api_routes()),
        *page_routes(),
        Mount("/", app=scans),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={StoreError: store_unavailable},
                    middleware=[Middleware(ScansFirst, scans=scans), Middleware(logs.RequestIds)])
    app.state.services = services
    app.state.scan_handler = scans
    app.state.settings = settings
    app.state.token_verifier = services.token_verifier
    app.state.token_issuer = services.issuer
    return app


def app_factory() -> Starlette:
    """Granian entry point (factory=True): one app per worker process."""
    settings = load_settings()
    from urllib.parse import urlsplit

    logs.configure(settings.log_level, secrets=[settings.secret().decode(), urlsplit(settings.store_url).password or ""])
    app = create_app(settings)
    # In front of Starlette's own middleware stack as well: scans skip even its error
    # middleware's per-message wrapper (~2 µs a request); the scan handler answers its
    # own errors. Everything else, lifespan included, goes through Starlette unchanged.
    return ScansFirst(app, app.state.scan_handler)
