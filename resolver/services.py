"""One worker's services: everything a request may need, opened once in the app's lifespan.

``await Services.open(settings)`` opens the store and builds the rest on it; the app puts
the result on ``app.state.services`` and hands it to the scan handler, and every endpoint
reaches it one way, ``services_of(request)``. Nothing else holds a copy.

``start()`` runs the background tasks of a worker: the scan buffer's flusher, the change
feed that invalidates caches, the rules watcher and, under ``serialink serve``, the
metrics snapshot that lets any worker answer /metrics for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from starlette.requests import Request

from resolver.access.ratelimit import RateLimiter, parse_limits
from resolver.access.revocation import RevocationList
from resolver.access.tokens import TokenIssuer, TokenVerifier
from resolver.analytics.clones import CloneDetector, CloneWatch, load_rules
from resolver.journeys import notify
from resolver.journeys.memo import JourneyMemo
from resolver.ops.metrics import Metrics
from resolver.ops.metrics_shared import SharedMetrics
from resolver.rules.compiler import CompiledRules
from resolver.rules.holder import RulesHolder
from resolver.scan.lookup import UnitLookup
from resolver.scan.unit_moments import UnitMoments
from serializer.keys import KeyStore
from serializer.profiles import SerialProfile
from serializer.verify import SerialVerifier
from settings import Settings
from twin import parts as parts_catalogue
from twin import support as fault_catalogue
from twin.catalogue_file import Reloading
from twin.errors import UnsafeDurability
from twin.scans import ScanBuffer
from twin.store import UnitStore, open_store
from twin.warranty import WarrantyRules
from twin.warranty import load_rules as load_warranty

log = logging.getLogger("serialink.resolver")


@dataclass(eq=False)
class Services:
    """Built by :meth:`open`; see the module docstring."""

    settings: Settings
    metrics: Metrics
    rules: RulesHolder
    store: UnitStore
    issuer: TokenIssuer
    revocations: RevocationList
    token_verifier: TokenVerifier  # revocation-aware: scans and APIs refuse revoked tokens alike
    serial_verifier: SerialVerifier
    lookup: UnitLookup
    scans: ScanBuffer
    limiter: RateLimiter
    notifier: notify.Notifier
    warranty: WarrantyRules | None
    secret: bytes
    faults: Reloading[fault_catalogue.FaultCatalogue] | None = None  # fault codes per model, hot-reloaded
    parts: Reloading[parts_catalogue.PartsCatalogue] | None = None  # compatible parts, hot-reloaded
    clones: CloneWatch | None = None  # clone detection behind the scan buffer (when rules exist)
    #: the trusted country header as the ASGI server names it (lower-case bytes), or None
    country_header: bytes | None = None
    memo: JourneyMemo = field(default_factory=JourneyMemo)
    jobs: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # batch files being produced
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings, metrics: Metrics | None = None, rules: RulesHolder | None = None) -> Services:
        """Open the store and build every service on it (no background task yet)."""
        metrics = metrics or Metrics()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        assert settings.rules_file is not None  # Settings fills in its default
        rules = rules or RulesHolder(settings.rules_file, settings.data_dir, metrics.rules_reloaded)
        secret = settings.secret()
        store = await open_store(settings.store_url)
        # Revoked tokens are refused from the first request on, scans included: the list
        # lives in the store (every host sees it), each worker keeps a copy at most 1 s old.
        revocations = RevocationList(store)
        serial_verifier = SerialVerifier.from_settings(store, settings)
        assert settings.fault_codes_file is not None and settings.parts_file is not None  # Settings fills them in
        faults = Reloading(settings.fault_codes_file, fault_catalogue.parse_catalogue)
        parts = Reloading(settings.parts_file, parts_catalogue.parse_catalogue)
        warranty = _warranty_rules(settings)
        services = cls(
            settings=settings, metrics=metrics, rules=rules, store=store, issuer=TokenIssuer(secret),
            revocations=revocations, token_verifier=TokenVerifier(secret, revoked=revocations),
            serial_verifier=serial_verifier,
            lookup=UnitLookup(store, serial_verifier, moments=UnitMoments(warranty, parts)),
            scans=ScanBuffer(store, max_events=settings.scan_buffer_size, interval=settings.scan_flush_seconds,
                             on_error=metrics.scan_flush_failed, on_flush=metrics.scan_flushed),
            limiter=RateLimiter(store, parse_limits(settings.rate_limits)),
            notifier=notify.from_settings(settings), warranty=warranty, secret=secret, faults=faults, parts=parts,
            country_header=settings.country_header.encode("latin-1") or None,
        )
        if settings.clone_rules is not None and settings.clone_rules.exists():
            lookup = services.lookup
            services.clones = CloneWatch(CloneDetector(load_rules(settings.clone_rules)), store,
                                         on_flag=lambda o: lookup.invalidate(o.gtin, "overlay", o.id))
            services.scans.on_batch = services.clones.offer
        metrics.bind(services)
        try:
            await store.check_durable()
        except UnsafeDurability as exc:
            log.warning("%s", exc)
        return services

    @property
    def profiles(self) -> Mapping[str, SerialProfile]:
        return self.serial_verifier.profiles

    @property
    def keys(self) -> KeyStore:
        return self.serial_verifier.keys

    @property
    def current_rules(self) -> CompiledRules:
        return self.rules.current

    def today(self) -> date:
        return datetime.now(UTC).date()

    def start(self) -> None:
        """The worker's background tasks (see the module docstring)."""
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
        for name, catalogue in (("fault-codes", self.faults), ("parts", self.parts)):
            if catalogue is not None:
                self.tasks.append(asyncio.create_task(catalogue.watch(self.settings.rules_poll_seconds),
                                                      name=f"{name}-watcher"))
        if self.clones is not None:
            self.tasks.append(asyncio.create_task(self.clones.run(), name="clone-detection"))
        if self.settings.metrics_dir is not None:  # `serialink serve`: sum every worker's numbers
            self.metrics.shared = SharedMetrics(self.settings.metrics_dir)
            self.tasks.append(asyncio.create_task(self.metrics.shared.run(self.metrics.snapshot), name="metrics"))

    async def stop(self) -> None:
        for task in [*self.tasks, *self.jobs.values()]:
            task.cancel()
        for task in [*self.tasks, *self.jobs.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.store.close()


def services_of(request: Request) -> Services:
    """This worker's services (the app's lifespan built them before any request)."""
    services: Services = request.app.state.services
    return services


def _warranty_rules(settings: Settings) -> WarrantyRules | None:
    path = settings.config_dir / "warranty.yaml"
    if not path.exists():
        log.warning("%s not found: warranty status is not shown", path)
        return None
    return load_warranty(path)
