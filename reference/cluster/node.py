"""A server node on a cluster hub: the hub joins the cluster before the server listens,
and leaves it (its members' LEFT to the other nodes) after the server has shut down."""

from __future__ import annotations

from types import TracebackType

from ..server import Server, ServerConfig
from .connection import RedisAddress
from .hub import ClusterHub


class ClusterNode:
    def __init__(
        self,
        config: ServerConfig,
        redis: RedisAddress | str,
        node_name: str = "node",
        *,
        lease: float = 3.0,
        sweep_interval: float = 0.5,
    ) -> None:
        self.hub = ClusterHub(
            redis,
            node_name,
            config.max_frame,
            config.max_rooms,
            lease=lease,
            sweep_interval=sweep_interval,
        )
        self.server = Server(config, hub_class=lambda *_: self.hub)
        self.hub.watch(self.server.congestion, self.server.flusher)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def start(self, wait_up: float = 0.0) -> None:
        """Start the hub (it connects, and reconnects, on its own thread) and the server;
        with ``wait_up``, first wait that long for the hub to reach Redis."""
        self.hub.start()
        if wait_up:
            self.hub.wait_up(wait_up)
        self.server.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.hub.stop()

    def __enter__(self) -> ClusterNode:
        self.start(wait_up=10.0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
