"""End to end: `serialink serve` (Granian) on loopback, scanned through a real HTTP client.

Covers what only a real server shows: the CLI starts workers, HTTPS works (the suite's
tlsOK and httpVersion checks), a rules file changed on disk is picked up without a
restart, a broken one is refused while the old rules keep serving with zero errors, and
SIGTERM shuts down cleanly.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from settings import default_config_dir
from tests.redis_fixtures import free_port

GTIN_URL = "/01/09506000134352"


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Server:
    def __init__(self, tmp: Path, *extra: str, workers: int = 1, tls: bool = False, rules_text: str | None = None) -> None:
        self.port = free_port()
        self.rules = tmp / "rules.yaml"
        self.rules.write_text(rules_text if rules_text is not None else (default_config_dir() / "rules.yaml").read_text())
        args = [sys.executable, "-m", "serialink", "serve", "--port", str(self.port), "--data-dir", str(tmp / "var"),
                "--rules", str(self.rules), "--workers", str(workers), *extra]
        self.scheme = "http"
        self.verify: str | bool = False
        if tls:
            cert, key = self_signed(tmp)
            args += ["--ssl-cert", str(cert), "--ssl-key", str(key)]
            self.scheme, self.verify = "https", str(cert)
        env = dict(os.environ, SERIALINK_RULES_POLL_SECONDS="0.2", SERIALINK_TOKEN_SECRET="e2e-" + "s" * 40)
        self.log = (tmp / "server.log").open("a")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.base = f"{self.scheme}://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.base, verify=self.verify, timeout=5)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{(tmp / 'server.log').read_text()}")
            time.sleep(0.1)

    def stop(self) -> int:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.log.close()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    if s.proc.poll() is None:
        s.stop()


def test_serve_resolves_scans_over_real_http(server):
    r = server.client.get(GTIN_URL + "?utm_source=e2e")
    assert r.status_code == 307
    assert r.headers["location"] == "https://www.example.com/boilers/x100?utm_source=e2e"
    assert 'rel="linkset"' in r.headers["link"]
    r = server.client.get(GTIN_URL, headers={"accept": "application/linkset+json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/linkset+json")
    assert server.client.get("/01/09506000134353").status_code == 400
    assert server.client.get("/.well-known/gs1resolver").json()["resolverRoot"] == "https://id.example.com"
    assert server.client.request("DELETE", GTIN_URL).status_code == 405


def test_rules_reload_on_change_and_bad_file_keeps_old_rules(server):
    text = server.rules.read_text()
    server.rules.write_text(text.replace("https://www.example.com/boilers/x100", "https://www.example.com/boilers/x100-v2"))
    deadline = time.monotonic() + 10
    while server.client.get(GTIN_URL).headers.get("location") != "https://www.example.com/boilers/x100-v2":
        assert time.monotonic() < deadline, "the changed rules were not picked up"
        time.sleep(0.1)
    server.rules.write_text(text.replace("default: gs1:pip", "default: gs1:pipp", 1))  # invalid
    statuses = []
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        r = server.client.get(GTIN_URL)
        statuses.append((r.status_code, r.headers.get("location")))
    assert set(statuses) == {(307, "https://www.example.com/boilers/x100-v2")}
    server.proc.send_signal(signal.SIGHUP)  # an explicit reload of the same bad file changes nothing either
    time.sleep(0.5)
    assert server.client.get(GTIN_URL).headers["location"] == "https://www.example.com/boilers/x100-v2"
    assert server.stop() == 0
    log = (server.rules.parent / "server.log").read_text()
    assert "unknown GS1 link type gs1:pipp" in log


def test_https_and_http_version(tmp_path, conformance):
    s = Server(tmp_path, tls=True)
    try:
        r = s.client.head("/")
        assert r.http_version in ("HTTP/1.1", "HTTP/2")
        conformance.record("gs1-resolver-testsuite-checks", "resolver-tlsOK[granian]", "pass")
        conformance.record("gs1-resolver-testsuite-checks", "resolver-httpVersion[granian]", "pass")
        assert s.client.get(GTIN_URL).status_code == 307
    finally:
        assert s.stop() == 0


def test_two_workers_answer_and_stop_cleanly(tmp_path):
    s = Server(tmp_path, workers=2)
    try:
        assert {s.client.get(GTIN_URL).status_code for _ in range(50)} == {307}
    finally:
        assert s.stop() == 0


def _wait_json(server: Server, path: str, done, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = server.client.get(path).json()
            if done(body):
                return body
        except httpx.TransportError:
            body = None
        assert time.monotonic() < deadline and server.proc.poll() is None, body
        time.sleep(0.1)


def test_bad_rules_never_stop_the_server_watcher_sighup_or_restart(tmp_path):
    """Issue 12 §1 on Granian: a date Python's parser refused (lower-case RFC 3339) used to
    kill the watcher silently; an invalid file is shown on /readyz as stale; SIGHUP (workers
    respawn) and a full restart with the bad file on disk serve the last good rules."""
    example = (default_config_dir() / "rules.yaml").read_text()
    route = "        when: {role: regulator}\n"
    dated = example.replace(route, '        when: {role: regulator, from: "2020-01-01t00:00:00z"}\n', 1).replace(
        "https://www.example.com/boilers/x100", "https://www.example.com/boilers/x100-v3")
    bad = dated.replace("2020-01-01t00:00:00z", "01.12.2026")
    server = Server(tmp_path)
    try:
        server.rules.write_text(dated)
        _wait_json(server, "/readyz", lambda j: j["status"] == "ready" and j["rules"] != "", 10)
        deadline = time.monotonic() + 10
        while server.client.get(GTIN_URL).headers.get("location") != "https://www.example.com/boilers/x100-v3":
            assert time.monotonic() < deadline, "the watcher did not load the valid edit"
            time.sleep(0.1)
        good = server.client.get("/readyz").json()["rules"]
        server.rules.write_text(bad)
        stale = _wait_json(server, "/readyz", lambda j: j["status"] == "degraded")
        assert stale["rules"] == good and stale["rules_status"].startswith("rules stale since "), stale
        assert "01.12.2026" in stale["rules_status"]
        server.proc.send_signal(signal.SIGHUP)  # Granian respawns its workers: they start on the bad file
        time.sleep(1.0)
        after = _wait_json(server, "/readyz", lambda j: j["status"] == "degraded" and "last good" in j["rules_status"])
        assert after["rules"] == good and server.proc.poll() is None
        assert server.client.get(GTIN_URL).headers["location"] == "https://www.example.com/boilers/x100-v3"
        assert server.stop() == 0
        again = Server(tmp_path, rules_text=bad)  # a restart with the bad file on disk: no crash loop
        try:
            time.sleep(1.0)
            assert again.proc.poll() is None
            ready = again.client.get("/readyz").json()
            assert ready["status"] == "degraded" and ready["rules"] == good, ready
            assert again.client.get(GTIN_URL).headers["location"] == "https://www.example.com/boilers/x100-v3"
            again.rules.write_text(dated.replace("x100-v3", "x100-v4"))
            _wait_json(again, "/readyz", lambda j: j["status"] == "ready" and j["rules"] != good)
            assert again.client.get(GTIN_URL).headers["location"] == "https://www.example.com/boilers/x100-v4"
        finally:
            assert again.stop() == 0
        log = (tmp_path / "server.log").read_text()
        assert "serving the last good rules" in log and "Traceback" not in log, log[-3000:]
    finally:
        if server.proc.poll() is None:
            server.stop()
