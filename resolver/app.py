"""The Starlette application: scans at the root, APIs under /v1, pages under /u, health.

``create_app(settings)`` builds it; ``app_factory()`` is what Granian imports in every
worker (settings from the environment, see the ``settings`` package). The rules are loaded
here, before any request (refusing to start only if neither the file nor the last good
copy is valid); the lifespan opens the store, builds the worker's one
:class:`resolver.services.Services` and starts its background tasks.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from resolver import problems
from resolver.api import (
    aggregations,
    analytics,
    batches,
    epcis,
    line,
    lines,
    links,
    ssccs,
    support,
    units,
    visits,
)
from resolver.api.cache_policy import PrivateWhenCredentialed
from resolver.api.durable_writes import DurableWrites
from resolver.api.openapi import routes as openapi_routes
from resolver.ops import health, logs
from resolver.ops.metrics import Metrics
from resolver.pages import analytics as analytics_page
from resolver.pages import people
from resolver.pages import routes as pages
from resolver.pages.brand import BrandHolder
from resolver.pages.scan_errors import renderer as scan_error_page
from resolver.pages.sscc_page import renderer as sscc_page
from resolver.rules.holder import RulesHolder
from resolver.scan.handler import ScanHandler
from resolver.services import Services
from settings import Settings, load_settings

#: Paths that belong to the application, not to GS1 Digital Link resolution.
APP_PREFIXES = ("/v1/", "/v1", "/.well-known/", "/healthz", "/readyz", "/metrics", "/u/", "/static/", "/docs",
                "/openapi.json", "/favicon.ico")

#: Where anonymous unit reads are answered before the router (resolver.api.units.read_anonymously).
UNIT_READS = "/v1/units/"


class ScansFirst:
    """Send scans straight to the scan handler, and anonymous unit reads straight to their
    answer; everything else through Starlette's router.

    Scans are nearly all the traffic, and resolving one needs none of the router's
    matching (~15 µs of it per request): any path outside APP_PREFIXES is a Digital Link.
    The consumer view of a unit (``GET /v1/units/01/{gtin}/21/{serial}`` without a
    credential) is the API's most frequent read and needs none of it either.
    """

    def __init__(self, app: ASGIApp, scans: ScanHandler) -> None:
        self.app = app
        self.scans = scans

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if not path.startswith(APP_PREFIXES):
                await self.scans(scope, receive, send)
                return
            services = self.scans.services
            if (path.startswith(UNIT_READS) and services is not None
                    and await units.read_anonymously(services, scope, send)):
                return  # an anonymous unit read: answered like a scan, past the router and middleware
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    metrics = Metrics()
    rules = RulesHolder(settings.rules_file, settings.data_dir, metrics.rules_reloaded)
    scans = ScanHandler(rules, metrics)
    brand = BrandHolder(settings.brand_file, settings.rules_poll_seconds)  # the pages' theme, reloaded like the rules
    scans.error_page = scan_error_page(brand, rules)
    scans.sscc_page = sscc_page(brand, rules)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await Services.open(settings, metrics, rules)
        app.state.services = services
        scans.services = services
        services.start()
        try:
            yield
        finally:
            await services.stop()

    units.add_unit_routes(support.routes)
    routes: list[BaseRoute] = [
        Route("/.well-known/gs1resolver", health.well_known, methods=["GET", "HEAD"]),
        Route("/healthz", health.healthz, methods=["GET", "HEAD"]),
        Route("/readyz", health.readyz, methods=["GET", "HEAD"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        *batches.routes,  # the line API: its routes carry their /v1 prefix
        *lines.routes,  # line keys, also with their /v1 prefix
        *ssccs.routes,  # SSCCs and case/pallet labels (same credentials as the batch API)
        *line.routes,  # line reports on a batch's serials (same credentials as the batch API)
        *epcis.routes,  # EPCIS 2.0 capture and query for line systems
        *aggregations.routes,  # packing units and cases into SSCCs
        Mount("/v1", routes=[*links.routes, *units.routes, *visits.routes, *analytics.routes]),
        *openapi_routes,
        *people.routes,  # before the unit page, which would take …/signin as part of a serial
        *analytics_page.routes,
        *pages.routes,
        Mount("/", app=scans),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(ScansFirst, scans=scans), Middleware(logs.RequestIds),
                                Middleware(PrivateWhenCredentialed),
                                Middleware(DurableWrites)])
    problems.install(app)
    app.state.scan_handler = scans
    app.state.brand = brand
    return app


def app_factory() -> ScansFirst:
    """Granian entry point (factory=True): one app per worker process."""
    settings = load_settings()
    logs.configure(settings.log_level, secrets=[settings.secret().decode(), urlsplit(settings.store_url).password or ""])
    app = create_app(settings)
    # In front of Starlette's own middleware stack as well: scans skip even its error
    # middleware's per-message wrapper (~2 µs a request); the scan handler answers its
    # own errors. Everything else, lifespan included, goes through Starlette unchanged.
    return ScansFirst(app, app.state.scan_handler)
