"""``--cluster N``: the reference server as N cluster nodes on one Redis (PROTOCOL.md §20),
measured as one server: each load worker's clients go to one node (worker i to node i mod N),
and the CPU figures sum every node and Redis.

Like every server the bench measures, the nodes are separate processes reached over TCP only
(``python -m reference.server --cluster redis://...``); Redis comes from ``redisproc``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redisproc import RedisNotFound, RedisServer

from . import procstat
from .servers import Server, ServerError, start


@dataclass
class ClusterServer(Server):
    """N reference nodes and their Redis; ``host``/``port`` are node 0's."""

    nodes: list[Server] = field(default_factory=list)

    def address_for(self, worker: int) -> tuple[str, int]:
        node = self.nodes[worker % len(self.nodes)]
        return node.host, node.port

    def pids(self) -> list[int]:
        pids = [pid for node in self.nodes for pid in node.pids()]
        if self.redis is not None and self.redis.pid is not None:
            pids.append(self.redis.pid)
        return pids

    def sample(self) -> procstat.ProcSample | None:
        samples = [procstat.sample(pid) for pid in self.pids()]
        if any(s is None for s in samples):
            return None
        found = [s for s in samples if s is not None]
        return procstat.ProcSample(
            sum(s.cpu_s for s in found),
            sum(s.rss_kib for s in found),
            sum(s.threads for s in found),
        )

    def alive(self) -> bool:
        return all(node.alive() for node in self.nodes)

    def log_tail(self, lines: int = 5) -> str:
        return " / ".join(node.log_tail(lines) for node in self.nodes)

    def stop(self) -> int | None:
        codes = [node.stop() for node in self.nodes]
        if self.redis is not None:
            self.redis.close()
        return next((c for c in codes if c not in (0, None, -15)), codes[0] if codes else None)


def start_cluster(count: int, args: list[str]) -> ClusterServer:
    """Redis on a free loopback port, then ``count`` nodes on it."""
    try:
        redis = RedisServer().start()
    except (RedisNotFound, OSError, RuntimeError) as exc:
        raise ServerError(f"cannot start Redis for the cluster: {exc}") from None
    nodes: list[Server] = []
    try:
        for i in range(count):
            node_args = [*args, "--cluster", redis.url, "--node-name", f"n{i}"]
            nodes.append(start("reference", node_args))
    except ServerError:
        for node in nodes:
            node.stop()
        redis.close()
        raise
    first = nodes[0]
    return ClusterServer(
        f"reference x{count}", first.dialect, first.host, first.port, first.pid,
        nodes=nodes, redis=redis,
    )  # fmt: skip
