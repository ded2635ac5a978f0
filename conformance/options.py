"""The run's settings, as every case and the report see them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunOptions:
    server: tuple[str, int] | None = None
    #: Every address given (several: the nodes of one cluster; clients spread over them).
    servers: list[tuple[str, int]] = field(default_factory=list)
    launch: str | None = None
    clients: int = 50
    timeout_scale: float = 1.0
    seed: int = 0
    repeat: int = 1
    strict: bool = False
    only: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    json_path: str | None = None

    @property
    def target(self) -> str:
        nodes = self.servers or ([self.server] if self.server else [])
        return " ".join(f"{host}:{port}" for host, port in nodes) or "(none)"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["server"] = self.target if self.server else None
        return out


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:PORT``); raises ValueError with a readable message."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a HOST:PORT address: {text!r}")
    return host.strip("[]"), int(port)
