"""Fixtures for the fault tests (registered from the root conftest).

``redis_cluster_replicas``
    a Redis Cluster of three masters and three replicas (``--cluster-replicas 1``), with
    a 1 s node timeout so that a killed master fails over in seconds; one per test, since
    the test kills part of it. Every node runs AOF with ``appendfsync always``.

The session ends with the fault report table (one row per fault test that ran).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_fixtures import RedisCluster, RedisServer

NODE_TIMEOUT_MS = 1000


class FastFailoverNode(RedisServer):
    """A cluster node that declares a silent peer failed after NODE_TIMEOUT_MS."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, cluster=True)

    def argv(self) -> list[str]:
        args = super().argv()
        i = args.index("--cluster-node-timeout")
        args[i + 1] = str(NODE_TIMEOUT_MS)
        return args + ["--cluster-replica-validity-factor", "0"]  # any replica may take over

    def role(self) -> str:
        for line in self.cli("INFO", "replication", check=False).splitlines():
            if line.startswith("role:"):
                return line.split(":", 1)[1].strip()
        return "down"


class ReplicatedCluster(RedisCluster):
    """Three masters with one replica each, on loopback, failing over within seconds."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        super().__init__(directory, size=masters, replicas=1, node=FastFailoverNode)

    def node_for_slot(self, slot: int) -> FastFailoverNode:
        """The master serving ``slot`` now."""
        for n in self.nodes:
            if n.proc is None or n.proc.poll() is not None:
                continue
            for line in n.cli("CLUSTER", "NODES", check=False).splitlines():
                parts = line.split()
                if len(parts) < 9 or "master" not in parts[2] or "fail" in parts[2]:
                    continue
                for rng in parts[8:]:
                    lo, _, hi = rng.partition("-")
                    if lo.isdigit() and int(lo) <= slot <= int(hi or lo):
                        port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
                        return next(x for x in self.nodes if x.port == port)
            break
        raise LookupError(f"no master serves slot {slot}")


@pytest.fixture
def redis_cluster_replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedCluster]:
    cluster = ReplicatedCluster(tmp_path_factory.mktemp("redis-cluster-replicas"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    from tests.fault_harness import REPORTS

    if not REPORTS:
        return
    tr = terminalreporter
    tr.section("Fault report")
    tr.write_line(f"{'fault':<44}{'requests failed':>16}{'data lost':>11}  load held / faults injected")
    for r in REPORTS:
        tr.write_line(f"{r.fault:<44}{r.requests_failed:>16}{r.data_lost:>11}  {r.load_held}")
        tr.write_line(f"{'':<71}  faults: {r.faults_injected}")
        if r.notes:
            tr.write_line(f"{'':<71}  {r.notes}")
