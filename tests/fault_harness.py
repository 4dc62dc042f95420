"""What the fault tests drive: a real `serialink serve`, a bounded HTTP load beside it, and
the report every fault ends with.

``Serve`` runs the resolver as operators do (the CLI, Granian workers, its own process
group so a test can SIGKILL all of it). ``Load`` is an asyncio client in a thread: a few
dozen concurrent requests drawn from a scenario, until stopped or its time bound passes,
counting every answer by kind and status. ``FaultReport`` is one row of the table the
issue asks for: load held, faults injected, requests failed, acknowledged writes lost.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import httpx
from prometheus_client.parser import text_string_to_metric_families

from resolver.access.tokens import TokenIssuer
from settings import default_config_dir
from tests.redis_fixtures import free_port

SECRET = "fault-tests-" + "k" * 40
GTIN = "09506000134352"
REPORTS: list[FaultReport] = []


def token(role: str, **scope) -> str:
    scope.setdefault("gtins", [GTIN])
    return TokenIssuer(SECRET.encode()).issue(f"fault:{role}", role, ttl=3600, **scope)


class Serve:
    """`serialink serve` on loopback in its own process group; restartable on the same data."""

    def __init__(self, tmp: Path, store_url: str, *, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.store_url = store_url
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.rules = tmp / "rules.yaml"
        if not self.rules.exists():
            self.rules.write_text((default_config_dir() / "rules.yaml").read_text())
        self.env = {**os.environ, "SERIALINK_TOKEN_SECRET": SECRET, "SERIALINK_KEY_DIR": str(tmp / "keys"),
                    "SERIALINK_RULES_POLL_SECONDS": "0.2", "SERIALINK_CHANGES_POLL_SECONDS": "0.2",
                    "SERIALINK_SCAN_FLUSH_SECONDS": "0.1", **(env or {})}
        self.log_path = tmp / "serve.log"
        self.proc: subprocess.Popen | None = None
        self.client = httpx.Client(base_url=self.base, timeout=10)

    def start(self, timeout: float = 30) -> Serve:
        args = [sys.executable, "-m", "serialink", "serve", "--port", str(self.port), "--data-dir",
                str(self.tmp / "var"), "--rules", str(self.rules), "--store", self.store_url,
                "--workers", str(self.workers)]
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.client.get("/healthz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start:\n{self.log_path.read_text()[-4000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole process group: the Granian main process and every worker."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def close(self) -> None:
        self.stop()
        self.client.close()

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """Every sample of /metrics: (name, sorted labels) → value."""
        text = self.client.get("/metrics").text
        out: dict[tuple[str, tuple], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples named ``name`` whose labels include ``labels``."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.metrics().items() if n == name and want <= set(ls))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


class Request(NamedTuple):
    kind: str  # "scan", "write", …: how the answers are counted
    method: str
    path: str
    headers: dict | None = None
    json: dict | None = None
    expect: tuple[int, ...] = (307,)  # statuses that are a success


@dataclass
class KindStats:
    statuses: Counter = field(default_factory=Counter)
    transport_errors: int = 0
    transport_kinds: Counter = field(default_factory=Counter)  # ConnectError (nobody listening), ReadError, …
    max_seconds: float = 0.0
    retry_after_missing: int = 0  # 503s without Retry-After
    failures: list[str] = field(default_factory=list)  # first few, for the assertion message

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + self.transport_errors


class Load:
    """``concurrency`` clients sending ``scenario(rng)`` requests until ``stop()`` (or ``limit`` seconds).

    ``on_answer(request, response)`` sees every response (e.g. to record acknowledged writes).
    """

    def __init__(self, base: str, scenario: Callable[[random.Random], Request], *, concurrency: int = 16,
                 limit: float = 60.0, on_answer: Callable[[Request, httpx.Response], None] | None = None,
                 pace: float = 0.0) -> None:
        self.base, self.scenario, self.concurrency, self.limit = base, scenario, concurrency, limit
        self.on_answer = on_answer
        self.pace = pace
        self.stats: dict[str, KindStats] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="load", daemon=True)
        self.started = self.ended = 0.0

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.limit + 30)
        self.ended = self.ended or time.monotonic()

    def kind(self, name: str) -> KindStats:
        return self.stats.setdefault(name, KindStats())

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base, timeout=10, limits=limits) as client:
            await asyncio.gather(*(self._client(client, random.Random(i)) for i in range(self.concurrency)))
        self.ended = time.monotonic()

    async def _client(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            req = self.scenario(rng)
            stats = self.kind(req.kind)
            t0 = time.monotonic()
            try:
                r = await client.request(req.method, req.path, headers=req.headers, json=req.json)
            except httpx.TransportError as exc:
                stats.transport_errors += 1
                stats.transport_kinds[type(exc).__name__] += 1
                if len(stats.failures) < 5:
                    stats.failures.append(f"{req.method} {req.path}: {type(exc).__name__}")
                await asyncio.sleep(max(self.pace, 0.05))  # a dead server: do not spin
                continue
            stats.max_seconds = max(stats.max_seconds, time.monotonic() - t0)
            stats.statuses[r.status_code] += 1
            if r.status_code == 503 and "retry-after" not in r.headers:
                stats.retry_after_missing += 1
            if r.status_code not in req.expect and len(stats.failures) < 5:
                stats.failures.append(f"{req.method} {req.path} -> {r.status_code} {r.text[:200]}")
            if self.on_answer is not None:
                self.on_answer(req, r)
            if self.pace:
                await asyncio.sleep(self.pace)

    def failed(self, kind: str, allowed: tuple[int, ...]) -> int:
        """Answers of ``kind`` that are neither a success nor an allowed refusal, plus transport errors."""
        s = self.stats.get(kind)
        if s is None:
            return 0
        return s.transport_errors + sum(n for status, n in s.statuses.items() if status not in allowed)

    def summary(self) -> str:
        seconds = (self.ended or time.monotonic()) - self.started
        parts = []
        for name, s in sorted(self.stats.items()):
            statuses = ", ".join(f"{k}×{v}" for k, v in sorted(s.statuses.items()))
            parts.append(f"{name}: {s.total} in {seconds:.1f}s ({s.total / max(seconds, 1e-9):.0f}/s) [{statuses}]"
                         f"{f' transport errors {dict(s.transport_kinds)}' if s.transport_errors else ''}"
                         f" max {s.max_seconds * 1000:.0f} ms")
        return "; ".join(parts)


class FaultReport(NamedTuple):
    fault: str
    load_held: str
    faults_injected: str
    requests_failed: int
    data_lost: int
    notes: str = ""

    def emit(self) -> None:
        REPORTS.append(self)
        print(f"\nFAULT {self.fault}\n  load held: {self.load_held}\n  faults injected: {self.faults_injected}\n"
              f"  requests failed: {self.requests_failed}\n  data lost (acknowledged writes): {self.data_lost}\n"
              f"  {self.notes}")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> float:
    """Poll ``predicate`` until true; returns the seconds it took (AssertionError after ``timeout``)."""
    t0 = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - t0
        except (httpx.TransportError, OSError, LookupError):
            pass
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(interval)
