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
    def __init__(self, tmp: Path, *extra: str, workers: int = 1, tls: bool = False) -> None:
        self.port = free_port()
        self.rules = tmp / "rules.yaml"
        self.rules.write_text((default_config_dir() / "rules.yaml").read_text())
        args = [sys.executable, "-m", "serialink", "serve", "--port", str(self.port), "--data-dir", str(tmp / "var"),
                "--rules", str(self.rules), "--workers", str(workers), *extra]
        self.scheme = "http"
        self.verify: str | bool = False
        if tls:
            cert, key = self_signed(tmp)
            args += ["--ssl-cert", str(cert), "--ssl-key", str(key)]
            self.scheme, self.verify = "https", str(cert)
        env = dict(os.environ, SERIALINK_RULES_POLL_SECONDS="0.2", SERIALINK_TOKEN_SECRET="e2e-" + "s" * 40)
        self.log = (tmp / "server.log").open("w")
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
