"""The line API over a real ASGI app, a real SQLite store and real key files."""

from __future__ import annotations

import asyncio
import csv
import io

import httpx
import pytest
from starlette.applications import Starlette

from resolver import problems
from resolver.access.tokens import TokenIssuer
from resolver.api import batches as batch_api
from resolver.services import Services
from settings import load_settings

GTIN = "09506000134352"
SECRET = b"s" * 32


@pytest.fixture
def env(tmp_path):
    async def make():
        settings = load_settings(env={}, data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path}/twin.db",
                                 key_dir=tmp_path / "keys", token_secret=SECRET.decode(), max_body_bytes=65536)
        services = await Services.open(settings)
        store = services.store
        app = Starlette(routes=batch_api.routes)
        problems.install(app)
        app.state.services = services
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        return app, store, client
    return make


def token(role="line", **scope):
    scope.setdefault("gtins", [GTIN])
    return {"Authorization": "Bearer " + TokenIssuer(SECRET).issue("line:site1/l7", role, ttl=600, **scope)}


def body(**overrides):
    base = {"gtin": GTIN, "count": 500, "profile": "default", "request_id": "l7-0001", "lot": "LOT1",
            "expiry": "2027-12-31", "site": "site1", "line": "l7", "formats": ["csv", "zpl", "jsonl", "epcis"]}
    base.update(overrides)
    return base


def run(coro):
    return asyncio.run(coro)


def test_a_line_mints_a_batch_downloads_its_files_and_a_retry_returns_the_same_bytes(env):
    async def go():
        app, store, client = await env()
        headers = token(sites=["site1"], lines=["l7"])
        first = await client.post("/v1/batches", json=body(), headers=headers)
        assert first.status_code == 201, first.text
        manifest = first.json()["manifest"]
        assert first.json()["output"] == "ready" and manifest["counts"]["units"] == 500
        files = {}
        for entry in manifest["files"]:
            got = await client.get(f"/v1/batches/{first.json()['batch']['id']}/files/{entry['name']}", headers=headers)
            assert got.status_code == 200
            import hashlib
            assert hashlib.sha256(got.content).hexdigest() == entry["sha256"]
            files[entry["name"]] = got.content
        rows = list(csv.DictReader(io.StringIO(files["codes.csv"].decode())))
        assert len(rows) == 500 and len({r["serial"] for r in rows}) == 500
        # the default stem is this resolver's root (the rules' resolver.root), not id.gs1.org
        root = app.state.services.current_rules.root
        assert rows[0]["dl_uri"] == f"{root}/01/{GTIN}/10/LOT1/21/{rows[0]['serial']}?17=271231"
        again = await client.post("/v1/batches", json=body(), headers=headers)
        assert again.status_code == 200 and again.json()["manifest"] == manifest
        status = await client.get(f"/v1/batches/{first.json()['batch']['id']}", headers=headers)
        # delivered: the batch is committed (an allocated one is what `serialink batches list` flags)
        assert status.json()["batch"]["status"] == "committed" and status.json()["output"] == "ready"
        await store.close()
    run(go())


def test_bad_input_is_refused_naming_the_field(env):
    async def go():
        app, store, client = await env()
        h = token()
        cases = [
            (body(gtin="09506000134353"), 422, "gtin"),
            (body(count=0), 422, "count"),
            (body(count=10_000_001), 413, "count"),
            (body(profile="nope"), 422, "profile"),
            (body(formats=["csv", "gif"]), 422, "formats"),
            (body(expiry="31/12/2027"), 422, "expiry"),
            (body(formats=["svg"], count=200_000), 413, "format"),
        ]
        for payload, status, field in cases:
            answer = await client.post("/v1/batches", json=payload, headers=h)
            assert answer.status_code == status, (payload, answer.text)
            assert answer.json()["error"]["field"] == field
        ok = await client.post("/v1/batches", json=body(count=10), headers=h)
        assert ok.status_code == 201
        conflict = await client.post("/v1/batches", json=body(count=11), headers=h)
        assert conflict.status_code == 409 and conflict.json()["error"]["field"] == "request_id"
        # sgtin-96 is 12 digits like sequential-numeric: one GTIN cannot take both
        other = "09506000134369"
        h2 = token(gtins=[other])
        assert (await client.post("/v1/batches", json=body(gtin=other, profile="sgtin-96", request_id="a"), headers=h2)).status_code == 201
        clash = await client.post("/v1/batches", json=body(gtin=other, profile="sequential-numeric", request_id="b"), headers=h2)
        assert clash.status_code == 409 and clash.json()["error"]["field"] == "profile"
        await store.close()
    run(go())


def test_tokens_are_required_and_scoped(env):
    async def go():
        app, store, client = await env()
        assert (await client.post("/v1/batches", json=body())).status_code == 401
        wrong_line = await client.post("/v1/batches", json=body(), headers=token(sites=["site1"], lines=["l8"]))
        assert wrong_line.status_code == 403
        wrong_gtin = await client.post("/v1/batches", json=body(), headers=token(gtins=["04012345000009"]))
        assert wrong_gtin.status_code == 403
        consumer_like = await client.post("/v1/batches", json=body(), headers=token(role="technician"))
        assert consumer_like.status_code == 403
        created = await client.post("/v1/batches", json=body(), headers=token(role="manufacturer"))
        assert created.status_code == 201
        batch_id = created.json()["batch"]["id"]
        assert (await client.get(f"/v1/batches/{batch_id}")).status_code == 401
        assert (await client.get(f"/v1/batches/{batch_id}", headers=token(sites=["site1"], lines=["l9"]))).status_code == 403
        assert (await client.get(f"/v1/batches/{GTIN}.default.999999", headers=token())).status_code == 404
        await store.close()
    run(go())


def test_large_batches_are_produced_in_the_background_and_polled(env, monkeypatch):
    monkeypatch.setattr(batch_api, "SYNC_UNITS", 1000)
    async def go():
        app, store, client = await env()
        h = token()
        accepted = await client.post("/v1/batches", json=body(count=50_000, formats="csv,epcis"), headers=h)
        assert accepted.status_code == 202 and accepted.headers["location"].startswith("/v1/batches/")
        for _ in range(200):
            polled = await client.get(accepted.headers["location"], headers=h)
            if polled.json()["output"] == "ready":
                break
            await asyncio.sleep(0.05)
        assert polled.json()["output"] == "ready"
        assert polled.json()["manifest"]["counts"]["units"] == 50_000
        await store.close()
    run(go())


def test_void_and_decommission_scrapped_labels(env):
    async def go():
        app, store, client = await env()
        h = token()
        created = await client.post("/v1/batches", json=body(count=20, formats="jsonl"), headers=h)
        batch_id = created.json()["batch"]["id"]
        lines = (await client.get(f"/v1/batches/{batch_id}/files/codes.jsonl", headers=h)).text.splitlines()
        import json
        serials = [json.loads(x)["serial"] for x in lines]
        scrapped = await client.post(f"/v1/batches/{batch_id}/decommission",
                                     json={"serials": serials[:2], "reason": "smudged print"}, headers=h)
        assert scrapped.status_code == 200, scrapped.text
        assert [d["state"] for d in scrapped.json()["decommissioned"]] == ["decommissioned"] * 2
        unit = await store.get_unit(GTIN, serials[0])
        assert unit.state == "decommissioned"
        foreign = await client.post(f"/v1/batches/{batch_id}/decommission",
                                    json={"serials": ["ZZZZZZZZZZZZ"], "reason": "x"}, headers=h)
        assert foreign.status_code == 422 and foreign.json()["error"]["field"] == "serials[0]"
        voided = await client.post(f"/v1/batches/{batch_id}/void", json={"reason": "line stopped"}, headers=h)
        assert voided.status_code == 200 and voided.json()["batch"]["status"] == "voided"
        retry = await client.post("/v1/batches", json=body(count=20, formats="jsonl"), headers=h)
        assert retry.status_code == 409 and retry.json()["error"]["field"] == "request_id"
        await store.close()
    run(go())
