"""Seeing when a server cuts a member that does not read, without reading.

The server's FIN waits behind the data the stalled member never took (its window is shut),
so the member's own socket shows nothing until it reads. The server's end of the
connection does: when the server closes it or shuts down its write side, that socket leaves
ESTABLISHED in /proc/net/tcp at once. Loopback only, so both ends are on this machine.
After the run the stalled member drains what reached it, to see whether the server said
SLOW_CONSUMER before closing (§12.2).
"""

from __future__ import annotations

import select
import time

from .clients import Client
from .procstat import tcp_sockets

_ESTABLISHED = "01"
_GONE = getattr(select, "POLLRDHUP", 0x2000) | select.POLLHUP | select.POLLERR
_EVERY_NS = 10_000_000


def server_side_states(server_port: int) -> dict[int, str]:
    """{client port: TCP state} of the server's sockets for connections from this machine."""
    return {row.remote_port: row.state for row in tcp_sockets() if row.local_port == server_port}


class StallWatch:
    def __init__(self, stallers: list[Client], server_port: int) -> None:
        self.server_port = server_port
        self.ports = {c.sock.getsockname()[1]: c for c in stallers}
        self.poller = select.poll()
        for c in stallers:
            self.poller.register(c.sock, _GONE)
        self._next_ns = 0

    def check(self, now_ns: int) -> None:
        """Mark stalled members whose connection the server has let go of."""
        waiting = [c for c in self.ports.values() if not c.cut_ns]
        if not waiting or now_ns < self._next_ns:
            return
        self._next_ns = now_ns + _EVERY_NS
        gone = {fd for fd, events in self.poller.poll(0) if events & _GONE}
        states = server_side_states(self.server_port)
        for port, c in self.ports.items():
            if c.cut_ns:
                continue
            if c.sock.fileno() in gone or states.get(port, "gone") != _ESTABLISHED:
                c.cut_ns = now_ns

    def drain(self, seconds: float) -> None:
        """Read what reached each stalled member, until the server's close or ``seconds``."""
        deadline = time.monotonic() + seconds
        for c in self.ports.values():
            c.sock.setblocking(True)
            while not c.closed_ns and (left := deadline - time.monotonic()) > 0:
                c.sock.settimeout(min(left, 0.2 if not c.cut_ns else left))
                try:
                    data = c.sock.recv(262_144)
                except TimeoutError:
                    break
                except OSError:
                    c.saw_eof = True
                    break
                if not data:
                    c.saw_eof = True
                    break
                c.stream.feed(data, time.monotonic_ns())
            c.sock.setblocking(False)
