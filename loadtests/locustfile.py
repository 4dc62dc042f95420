"""A day at the resolver, for Locust: consumers, owners, technicians and a factory line.

Mix per scanning user (weights): 90 consumer scans of distinct serials, 5 linkset/API reads,
3 registrations and service events, 2 technician scans; plus one ``FactoryLine`` user per
20 that asks for a batch every few seconds. ``LaunchSpike`` (``--spike``) holds the normal
load, goes to 10x for one minute, and back.

Run it bounded and headless, writing CSV stats (``loadtests/run_day.py`` does all of this
against a server it starts)::

    locust -f loadtests/locustfile.py --headless -u 200 -r 50 -t 2m --csv loadtests/results/day \\
        --host http://127.0.0.1:8080

Environment: ``SERIALINK_TOKEN_SECRET`` (the server's; tokens for lines, technicians and
manufacturers are signed with it), ``SERIALINK_LOAD_SERIALS`` (a file of minted serials, one
per line; without it random serials are scanned and route as ``unknown``),
``SERIALINK_LOAD_GTIN`` (default the example GTIN).
"""

from __future__ import annotations

import itertools
import os
import random
import uuid
from pathlib import Path

from locust import HttpUser, LoadTestShape, between, constant_pacing, task

from resolver.access.tokens import TokenIssuer

GTIN = os.environ.get("SERIALINK_LOAD_GTIN", "09506000134352")
_serials_file = os.environ.get("SERIALINK_LOAD_SERIALS")
SERIALS = Path(_serials_file).read_text().split() if _serials_file else []
_secret = os.environ.get("SERIALINK_TOKEN_SECRET", "")
_issuer = TokenIssuer(_secret.encode()) if _secret else None
_counter = itertools.count()


def _token(role: str, **scope) -> str | None:
    if _issuer is None:
        return None
    return _issuer.issue(f"load:{role}", role, ttl=6 * 3600, gtins=[GTIN], **scope)


def _bearer(role: str, **scope) -> dict[str, str]:
    t = _token(role, **scope)
    return {"authorization": f"Bearer {t}"} if t else {}


TECH = _bearer("technician")
MANUFACTURER = _bearer("manufacturer")
LINE = _bearer("line", sites=["load"], lines=["l1"])


def _serial(rng: random.Random) -> str:
    """A distinct serial per scan: walk the minted list, else make one up."""
    if SERIALS:
        return SERIALS[next(_counter) % len(SERIALS)]
    return f"L{rng.getrandbits(40):011x}".upper()


class Scanner(HttpUser):
    """Phones and handhelds: scans, linksets, registrations and service events."""

    weight = 20
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.rng = random.Random()

    @task(90)
    def consumer_scan(self) -> None:
        with self.client.get(f"/01/{GTIN}/21/{_serial(self.rng)}", allow_redirects=False, name="scan consumer",
                             catch_response=True) as r:
            if r.status_code != 307:
                r.failure(f"expected 307, got {r.status_code}")

    @task(5)
    def linkset_or_api_read(self) -> None:
        if self.rng.random() < 0.6:
            self.client.get(f"/01/{GTIN}/21/{_serial(self.rng)}", headers={"accept": "application/linkset+json"},
                            name="linkset")
        else:
            self.client.get(f"/v1/links/{GTIN}", headers=MANUFACTURER, name="api read links")

    @task(3)
    def registration_or_service_event(self) -> None:
        serial = _serial(self.rng)
        unit = f"/v1/units/01/{GTIN}/21/{serial}"
        if self.rng.random() < 0.5:
            body = {"name": "Load Tester", "contact": f"load+{uuid.uuid4().hex[:8]}@example.com",
                    "purchase_date": "2026-01-02", "consent": True}
            name = "registration"
            path, headers = unit + "/registration", {"idempotency-key": uuid.uuid4().hex}
        else:
            body = {"type": "start_service", "reason": "load test visit"}
            name = "service event"
            path, headers = unit + "/events", {**TECH, "idempotency-key": uuid.uuid4().hex}
        with self.client.post(path, json=body, headers=headers, name=name, catch_response=True) as r:
            if r.status_code >= 500 and r.status_code != 503:
                r.failure(f"server error {r.status_code}")
            else:
                r.success()  # refusals (404 before the API exists, 409 illegal transitions, 429) are answers

    @task(2)
    def technician_scan(self) -> None:
        self.client.get(f"/01/{GTIN}/21/{_serial(self.rng)}", headers=TECH, allow_redirects=False,
                        name="scan technician")


class FactoryLine(HttpUser):
    """A packaging line asking for a batch of labels every few seconds."""

    weight = 1
    wait_time = constant_pacing(5)

    @task
    def request_batch(self) -> None:
        body = {"gtin": GTIN, "count": 1000, "profile": "default", "request_id": f"load-{uuid.uuid4().hex}",
                "site": "load", "line": "l1", "formats": ["csv"]}
        with self.client.post("/v1/batches", json=body, headers=LINE, name="batch", catch_response=True) as r:
            if r.status_code not in (200, 201, 202):
                r.failure(f"batch refused: {r.status_code} {r.text[:200]}")


if os.environ.get("SERIALINK_LOAD_SPIKE"):

    class LaunchSpike(LoadTestShape):
        """Normal load, then 10x for one minute (a product launch), then normal again."""

        base_users = int(os.environ.get("SERIALINK_LOAD_USERS", "50"))
        stages = ((60, 1), (120, 10), (180, 1))  # (until second, multiple of base)

        def tick(self):
            t = self.get_run_time()
            for until, factor in self.stages:
                if t < until:
                    users = self.base_users * factor
                    return users, max(users, 10)
            return None
