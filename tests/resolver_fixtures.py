"""Fixtures that run the real resolver app: Starlette's TestClient drives the ASGI app
in-process (lifespan included: store opened, rules loaded, background tasks running).

``resolver_factory(store_url=None, rules_text=None)`` makes a client on a fresh data
directory; ``resolver`` is one on SQLite with the example rules, shared by a module.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from resolver.app import create_app
from settings import default_config_dir, load_settings

ROOT = "https://id.example.com"


class Resolver:
    """A running app and what tests need around it."""

    def __init__(self, client: TestClient, app, data_dir: Path, rules_file: Path) -> None:
        self.client = client
        self.app = app
        self.services = app.state.services
        self.data_dir = data_dir
        self.rules_file = rules_file

    def get(self, path: str, **kwargs):
        return self.client.get(path, follow_redirects=False, **kwargs)

    def token(self, role: str, *, gtins=(), prefixes=(), all_products=False, ttl=3600, **kwargs) -> str:
        return self.services.issuer.issue(f"test:{role}", role, ttl=ttl, gtins=gtins, prefixes=prefixes,
                                          all_products=all_products, **kwargs)

    def auth(self, role: str, **kwargs) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(role, **kwargs)}"}

    def unit(self, gtin: str, serial: str, *events: str, **data) -> None:
        """Give a unit a real history in the store: commission, then ``events`` in order."""
        from twin.events import Actor, make_event

        actor = Actor("manufacturer", "test")
        store = self.services.store
        for kind in ("commission",) + events:
            fields = data.get(kind, {})
            event = make_event(kind, actor, "test", **fields)
            self.client.portal.call(store.append_event, gtin, serial, event)
        self.services.lookup.invalidate(gtin, "unit", serial)


@contextlib.contextmanager
def running_resolver(data_dir: Path, store_url: str | None = None, rules_text: str | None = None, **settings_given):
    data_dir.mkdir(parents=True, exist_ok=True)
    rules_file = data_dir / "rules.yaml"
    rules_file.write_text(rules_text if rules_text is not None else (default_config_dir() / "rules.yaml").read_text())
    settings = load_settings(env={}, data_dir=str(data_dir), rules_file=str(rules_file), store_url=store_url or "",
                             token_secret="test-secret-" + "x" * 40, rules_poll_seconds=0.05,
                             changes_poll_seconds=0.05, scan_flush_seconds=0.05, **settings_given)
    app = create_app(settings)
    with TestClient(app, base_url=ROOT) as client:
        yield Resolver(client, app, data_dir, rules_file)


@pytest.fixture
def resolver_factory(tmp_path):
    stack = contextlib.ExitStack()
    counter = iter(range(1000))

    def make(store_url: str | None = None, rules_text: str | None = None, **settings) -> Resolver:
        return stack.enter_context(running_resolver(tmp_path / f"r{next(counter)}", store_url, rules_text, **settings))

    with stack:
        yield make


@pytest.fixture(scope="module")
def resolver(tmp_path_factory):
    with running_resolver(tmp_path_factory.mktemp("resolver")) as r:
        yield r
