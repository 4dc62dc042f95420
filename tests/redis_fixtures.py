"""Real Redis servers for tests: one node and a 3-master Cluster, started per session.

Fixtures (registered from the root conftest):

``redis_server`` / ``redis_url``
    one ``redis-server`` (AOF on, ``appendfsync always``) on a free loopback port.
``redis_cluster`` / ``redis_cluster_url``
    three ``redis-server --cluster-enabled yes`` joined by ``redis-cli --cluster create``
    (no replicas); ``redis_cluster_url`` is ``redis+cluster://127.0.0.1:p1,…``.
``redis_factory``
    start extra, private servers (e.g. to SIGKILL one) — stopped at session end.
``store_url``
    parametrized over ``sqlite`` / ``redis`` / ``cluster``: a URL naming a fresh, empty
    store for this test (a new SQLite file, or a unique Redis key prefix).
``store``
    that store, opened (async fixture: use it from ``@pytest.mark.anyio`` tests).
``anyio_backend``
    ``"asyncio"`` (redis-py is asyncio-only).

Durability: the servers run ``appendonly yes`` with ``appendfsync always`` — Redis
writes and fsyncs the AOF before replying, which is what the store's range allocation
requires (twin.redis_store) and what the crash tests rely on.

If ``redis-server`` is not on PATH the fixtures fail (never skip) and say how to install it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

INSTALL_HINT = (
    "redis-server and redis-cli are required for the store tests: "
    "install them with `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis`"
)
_counter = itertools.count()


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} not found on PATH. {INSTALL_HINT}", pytrace=False)
    return path


def free_port(*, bus_offset: int | None = None) -> int:
    """A free loopback port (and ``port + bus_offset`` free too, for the cluster bus)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if bus_offset is None or port + bus_offset > 65535:
            if bus_offset is None:
                return port
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + bus_offset))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair found")


class RedisServer:
    """One redis-server process in its own directory; restartable on the same data."""

    def __init__(self, directory: Path, *, cluster: bool = False, appendfsync: str = "always") -> None:
        self.dir = directory
        self.cluster = cluster
        self.appendfsync = appendfsync
        self.port = free_port(bus_offset=10000 if cluster else None)
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        args = [
            _need("redis-server"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--logfile", str(self.dir / "redis.log"),
        ]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", str(self.dir / "nodes.conf"),
                     "--cluster-node-timeout", "5000"]
        return args

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace")[-2000:] if (self.dir / "redis.log").exists() else ""
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}:\n{log}")
            if self.cli("PING", check=False).strip() == "PONG":
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING within {timeout}s")

    def cli(self, *args: str, check: bool = True) -> str:
        res = subprocess.run(
            [_need("redis-cli"), "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True, text=True, timeout=30,
        )
        if check and res.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(args)}: {res.stderr or res.stdout}")
        return res.stdout

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync — what a crash looks like."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


class RedisCluster:
    """``masters`` masters with all slots assigned, each with ``replicas`` replicas."""

    def __init__(self, directory: Path, size: int = 3, replicas: int = 0,
                 node: Callable[[Path], RedisServer] | None = None) -> None:
        make = node or (lambda d: RedisServer(d, cluster=True))
        self.masters = size
        self.replicas = replicas
        self.nodes = [make(directory / f"node{i}") for i in range(size * (1 + replicas))]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 30.0) -> None:
        for n in self.nodes:
            n.start()
        hosts = [f"127.0.0.1:{n.port}" for n in self.nodes]
        res = subprocess.run(
            [_need("redis-cli"), "--cluster", "create", *hosts, "--cluster-replicas", str(self.replicas),
             "--cluster-yes"],
            capture_output=True, text=True, timeout=60,
        )
        if res.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{res.stdout}\n{res.stderr}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready():
                return
            time.sleep(0.05)
        raise RuntimeError("Redis Cluster did not come up (cluster_state:ok, slots known, replicas linked)")

    def _ready(self) -> bool:
        if not all("cluster_state:ok" in n.cli("CLUSTER", "INFO", check=False) for n in self.nodes):
            return False
        # every node must also know every other node's slots before clients connect
        if not all(n.cli("CLUSTER", "SLOTS", check=False).count("127.0.0.1") >= self.masters for n in self.nodes):
            return False
        linked = sum("master_link_status:up" in n.cli("INFO", "replication", check=False) for n in self.nodes)
        return linked == self.masters * self.replicas

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RedisServer]]:
    """``redis_factory(appendfsync="always")`` → a started private RedisServer."""
    started: list[RedisServer] = []

    def make(appendfsync: str = "always") -> RedisServer:
        server = RedisServer(tmp_path_factory.mktemp("redis-private"), appendfsync=appendfsync)
        started.append(server)
        server.start()
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    _need("redis-cli")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: RedisCluster) -> str:
    return redis_cluster.url


def fresh_namespace() -> str:
    """A key prefix no other test in this session (or an earlier one) uses."""
    return f"t{os.getpid()}x{next(_counter)}"


@pytest.fixture(params=["sqlite", "redis", "cluster"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL naming a fresh, empty store on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'twin.db'}"
    if request.param == "redis":
        return f"{request.getfixturevalue('redis_url')}?prefix={fresh_namespace()}"
    return f"{request.getfixturevalue('redis_cluster_url')}?prefix={fresh_namespace()}"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[object]:
    from twin.store import open_store

    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()
