"""Whether this machine can hold a point's connections, and the kernel's listen counters.

Read before a point that opens thousands of sockets at once, so a point the machine cannot
hold is skipped with one line saying which limit is short, not run into a wall of EMFILE.
"""

from __future__ import annotations

import math
import resource
from pathlib import Path

#: Descriptors a server or worker needs beyond its client sockets (listener, pipes, logs).
FD_MARGIN = 64


def _read_ints(path: str) -> list[int] | None:
    try:
        return [int(x) for x in Path(path).read_text().split()]
    except (OSError, ValueError):
        return None


def problem(clients: int, workers: int) -> str | None:
    """Why ``clients`` loopback connections will not fit here, or None if they should.

    The bench lifted its open-file soft limit to the hard one before starting servers and
    workers (they inherit or lift it too), so the soft limit now is what each of them has.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    per_worker = math.ceil(clients / max(1, workers))
    if clients + FD_MARGIN > soft:
        return f"needs {clients + FD_MARGIN} descriptors in the server; RLIMIT_NOFILE is {soft}"
    if per_worker + FD_MARGIN > soft:
        return f"needs {per_worker + FD_MARGIN} descriptors per worker; RLIMIT_NOFILE is {soft}"
    ports = _read_ints("/proc/sys/net/ipv4/ip_local_port_range")
    if ports and len(ports) == 2 and clients > ports[1] - ports[0] + 1:
        return f"needs {clients} ephemeral ports; ip_local_port_range has {ports[1] - ports[0] + 1}"
    return None


def somaxconn() -> int | None:
    """The kernel's cap on any listen backlog."""
    value = _read_ints("/proc/sys/net/core/somaxconn")
    return value[0] if value else None


def listen_drops() -> int | None:
    """TcpExt ListenDrops: SYNs or ACKs dropped at a full listen queue, machine-wide."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table["ListenDrops"]) if "ListenDrops" in table else None
    return None
