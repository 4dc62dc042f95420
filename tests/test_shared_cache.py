"""A real shared cache in front of a real resolver: nginx ``proxy_cache`` → `serialink serve` (Granian).

The operator's path from nothing, as docs/access.md tells it: serve logs how to get the
first brand credential; ``serialink tokens issue`` makes it; ``serialink lines add`` gives
the factory line its key; the line mints a batch with it. Then the units of that batch are
scanned through nginx: anonymous scans become cache HITs, and the same URL with a
technician's ``Authorization`` header or token cookie gets the technician's answer every
time — never the anonymous copy, and never stored for the next anonymous visitor.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from serialink import cli
from settings import default_config_dir
from tests.redis_fixtures import free_port

GTIN = "09506000134352"
SERVICE = "https://service.example.com/"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {tmp}/cache levels=1:2 keys_zone=resolver:1m inactive=10m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $http_host;
            proxy_cache resolver;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"""


def wait_for(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{url} did not come up:\n{log.read_text()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`serialink serve` on a fresh data directory, nginx with a proxy cache in front of it."""
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed (apt-get install nginx; .ci/run does it)")
    tmp = tmp_path_factory.mktemp("cache")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERIALINK_")}
    upstream, port = free_port(), free_port()
    serve_log = tmp / "serve.log"
    serve = subprocess.Popen([sys.executable, "-m", "serialink", "serve", "--port", str(upstream), "--data-dir",
                              str(tmp / "var"), "--rules", str(default_config_dir() / "rules.yaml")],
                             stdout=serve_log.open("w"), stderr=subprocess.STDOUT, env=env)
    conf = tmp / "nginx.conf"
    # as root, nginx's workers would drop to "nobody", who may not enter pytest's private tmp
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, upstream=upstream))
    nginx_log = tmp / "nginx.out"
    nginx = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp)], stdout=nginx_log.open("w"),
                             stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{upstream}/healthz", serve, serve_log)
        wait_for(f"http://127.0.0.1:{port}/healthz", nginx, nginx_log)
        yield {"data": tmp / "var", "serve_log": serve_log, "cache": f"http://127.0.0.1:{port}",
               "origin": f"http://127.0.0.1:{upstream}"}
    finally:
        for proc in (nginx, serve):
            proc.terminate()
        for proc in (nginx, serve):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def operator(capsys, monkeypatch, data: Path, *argv: str) -> str:
    """What `serialink …` prints on stdout, against the data directory serve uses."""
    for name in [n for n in os.environ if n.startswith("SERIALINK_")]:
        monkeypatch.delenv(name)
    assert cli.main([*argv, "--data-dir", str(data)]) == 0
    return capsys.readouterr().out.strip()


@pytest.fixture(scope="module")
def serial(stack):
    return {}


def test_from_a_fresh_start_to_a_line_key_and_a_minted_batch(stack, capsys, monkeypatch, serial):
    hint = [line for line in stack["serve_log"].read_text().splitlines() if "no brand credential" in line]
    assert len(hint) == 1 and "serialink tokens issue --role manufacturer" in hint[0]
    brand = operator(capsys, monkeypatch, stack["data"], "tokens", "issue", "--role", "manufacturer")
    key = operator(capsys, monkeypatch, stack["data"], "lines", "add", "--site", "plant-1", "--line", "L7",
                   "--gtin", GTIN)
    with httpx.Client(base_url=stack["cache"], timeout=10) as http:
        minted = http.post("/v1/batches", headers={"authorization": f"Bearer {key}"},
                           json={"gtin": GTIN, "count": 3, "profile": "default", "request_id": "first-run",
                                 "site": "plant-1", "line": "L7", "formats": ["jsonl"]})
        assert minted.status_code == 201, minted.text
        files = minted.json()["links"]["files"]
        lines = http.get(next(iter(files.values())), headers={"authorization": f"Bearer {key}"})
        assert lines.status_code == 200 and lines.headers["cache-control"] == "private, no-store"
        assert http.get("/v1/lines", headers={"authorization": f"Bearer {brand}"}).json()["lines"][0]["state"] == "active"
    serial["value"] = lines.text.splitlines()[0].split('"serial":"')[1].split('"')[0]


def test_anonymous_scans_are_hits_and_credentials_always_get_their_own_answer(stack, capsys, monkeypatch, serial):
    assert serial, "needs the batch minted by the test above"
    url = f"/01/{GTIN}/21/{serial['value']}"
    technician = operator(capsys, monkeypatch, stack["data"], "tokens", "issue", "--role", "technician",
                          "--gtin", GTIN)
    as_technician = [{"authorization": f"Bearer {technician}"}, {"cookie": f"serialink_token={technician}"}]
    with httpx.Client(base_url=stack["cache"], timeout=10) as http:
        anonymous = [http.get(url) for _ in range(3)]
        assert [r.status_code for r in anonymous] == [307] * 3
        assert [r.headers["x-cache-status"] for r in anonymous] == ["MISS", "HIT", "HIT"]
        consumer = anonymous[0].headers["location"]
        assert not consumer.startswith(SERVICE) and {r.headers["location"] for r in anonymous} == {consumer}
        assert "Authorization" in anonymous[0].headers["vary"] and "Cookie" in anonymous[0].headers["vary"]
        for _ in range(3):
            for headers in as_technician:
                r = http.get(url, headers=headers)
                assert r.headers["location"].startswith(SERVICE), (headers, r.headers)
                assert r.headers["cache-control"] == "private, no-store"
                assert r.headers["x-cache-status"] != "HIT"
        after = http.get(url)  # the anonymous copy is still the consumer's, still served from the cache
        assert after.headers["x-cache-status"] == "HIT" and after.headers["location"] == consumer
        # a forged credential is routed as a consumer by the origin, but never from or into the cache
        forged = http.get(url, headers={"authorization": "Bearer not-a-token"})
        assert forged.headers["location"] == consumer and forged.headers["x-cache-status"] != "HIT"
        assert forged.headers["cache-control"] == "private, no-store"
