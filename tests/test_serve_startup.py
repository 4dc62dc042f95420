"""`serialink serve` refuses to start wrong, and a store that may lose writes is said so.

Real processes throughout: `serialink serve` on Granian, a real redis-server whose AOF
settings the test changes with CONFIG SET while the resolver runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fault_harness import GTIN, Serve, token
from tests.redis_fixtures import RedisServer

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _serve(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serialink", "serve", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_a_second_serve_on_a_taken_port_is_refused_unless_reuse_port_is_given(tmp_path):
    (tmp_path / "a").mkdir()
    first = Serve(tmp_path / "a", f"sqlite:///{tmp_path}/a.db")
    first.start()
    try:
        second = _serve("--port", str(first.port), "--data-dir", str(tmp_path / "b"), cwd=tmp_path)
        assert second.returncode == 1, second.stderr
        assert second.stderr.startswith(f"serialink serve: --port: 127.0.0.1:{first.port} is already in use")
        assert "--reuse-port" in second.stderr and len(second.stderr.strip().splitlines()) == 1
        # on purpose: --reuse-port shares it (both listen; that is what the flag says)
        log = (tmp_path / "shared.log").open("w")
        shared = subprocess.Popen([sys.executable, "-m", "serialink", "serve", "--port", str(first.port),
                                   "--reuse-port", "--data-dir", str(tmp_path / "c")], cwd=tmp_path, env=ENV,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 20
            while "Listening at" not in (tmp_path / "shared.log").read_text() and time.monotonic() < deadline:
                assert shared.poll() is None, (tmp_path / "shared.log").read_text()
                time.sleep(0.1)
            assert shared.poll() is None and "Listening at" in (tmp_path / "shared.log").read_text()
        finally:
            os.killpg(shared.pid, 9)
            shared.wait(10)
            log.close()
    finally:
        first.close()


def test_workers_0_and_a_missing_config_directory_are_refused(tmp_path):
    # a stale last-good copy in the data directory must not be served instead of a missing config
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "rules.last-good.yaml").write_text((REPO / "config" / "rules.yaml").read_text())
    for args, status, text in [
        (["--workers", "0"], 2, "argument --workers: expected at least 1, got 0"),
        (["--config", str(tmp_path / "nope")], 1, "--config: "),
        (["--config", str(tmp_path / "var" / "rules.last-good.yaml")], 1, "is not a directory"),
    ]:
        run = _serve(*args, "--data-dir", str(tmp_path / "var"), cwd=tmp_path)
        assert run.returncode == status and text in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr
    env = {**ENV, "SERIALINK_WORKERS": "0"}
    run = subprocess.run([sys.executable, "-m", "serialink", "serve"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1 and run.stderr.startswith("serialink serve: workers: expected at least 1"), run.stderr


def _problem(response: httpx.Response) -> dict:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return response.json()


def test_redis_without_appendfsync_always_warns_degrades_writes_and_heals_without_restart(tmp_path):
    redis = RedisServer(tmp_path / "redis", appendfsync="everysec")
    redis.start()
    serve = Serve(tmp_path, redis.url)
    line = {"authorization": f"Bearer {token('line')}"}
    manufacturer = {"authorization": f"Bearer {token('manufacturer')}"}
    batch = {"gtin": GTIN, "count": 5, "profile": "default", "request_id": "dur-1"}
    try:
        serve.start()
        assert "warning:" in serve.log_path.read_text() and "appendfsync always" in serve.log_path.read_text()
        ready = serve.client.get("/readyz").json()
        assert ready["status"] == "degraded" and ready["store"] == "ok", ready
        assert ready["writes"].startswith("degraded:") and "appendfsync" in ready["writes"], ready
        assert serve.client.get("/readyz?strict=1").status_code == 503
        # every write endpoint: 503 problem+json naming the setting; reads and scans go on
        writes = [("POST", "/v1/batches", batch, line),
                  ("PUT", "/v1/links", {"links": []}, manufacturer),
                  ("POST", f"/v1/units/01/{GTIN}/21/ABC/events", {"type": "ship"}, manufacturer)]
        for method, path, body, headers in writes:
            refused = serve.client.request(method, path, json=body, headers=headers)
            problem = _problem(refused)
            assert refused.status_code == 503 and problem["field"] == "appendfsync", (path, problem)
            assert "appendfsync always" in problem["detail"] and refused.headers["retry-after"]
        assert serve.client.get(f"/01/{GTIN}").status_code == 307
        # the operator fixes Redis; no restart
        redis.cli("CONFIG", "SET", "appendfsync", "always")
        deadline = time.monotonic() + 15
        while serve.client.get("/readyz").json()["status"] != "ready":
            assert time.monotonic() < deadline, serve.client.get("/readyz").json()
            time.sleep(0.2)
        assert serve.client.get("/readyz").json()["writes"] == "ok"
        created = serve.client.post("/v1/batches", json=batch, headers=line)
        assert created.status_code == 201, created.text
        # and switching it off again is noticed (within the 10 s re-read of a safe setting)
        redis.cli("CONFIG", "SET", "appendfsync", "everysec")
        deadline = time.monotonic() + 15
        while serve.client.post("/v1/batches", json={**batch, "request_id": "dur-2"}, headers=line).status_code != 503:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        serve.close()
        redis.stop()
