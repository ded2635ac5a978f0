"""The worker side of ``bench hostile``: the crowd.

mass close: ``close-at`` closes every registered client of the worker at one shared
``time.monotonic_ns()`` instant (one clock for every process on the machine, so all workers
close together).

trickle: ``trickle-open`` opens the worker's share of TCP connections and sends nothing;
``trickle`` then sends, from a shared instant, one byte of a HELLO per second on every one of
them, all in step, for a window shorter than the HELLO (so none ever registers), watching
which ones the server closes (and what ERROR it said first); at the end of the window it
closes the rest.
"""

from __future__ import annotations

import errno
import math
import select
import socket
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from spec.codec import decode_body, encode
from spec.constants import Capability, FrameType
from spec.decoder import FrameSplitter
from spec.errors import ProtocolError
from spec.events import Error, Hello

from .clients import Connections, describe

_GONE = select.POLLIN | select.POLLHUP | select.POLLERR


def close_at(net: Connections, start_ns: int) -> dict[str, Any]:
    """Close every registered client of this worker at ``start_ns``."""
    late = start_ns - time.monotonic_ns()
    if late > 0:
        time.sleep(late / 1e9)
    began_ns = time.monotonic_ns()
    closed = sum(1 for c in net.registered if not c.closed_ns)
    net.reset()
    return {"closed": closed, "began_ns": began_ns, "done_ns": time.monotonic_ns()}


@dataclass(frozen=True, slots=True)
class TrickleOpen:
    host: str
    port: int
    count: int
    timeout_s: float


@dataclass(frozen=True, slots=True)
class TrickleOrder:
    start_ns: int
    seconds: float
    #: The nick of the HELLO every connection trickles (never completed).
    nick: str


class Trickle:
    """One worker's trickling connections, from ``open`` to the end of ``run`` (or ``close``)."""

    def __init__(self) -> None:
        self.socks: dict[int, socket.socket] = {}

    def open(self, order: TrickleOpen) -> dict[str, Any]:
        """Connect ``order.count`` sockets (non-blocking, all at once) and wait until each is
        connected or failed."""
        self.close()
        failures: list[str] = []
        poller = select.poll()
        start_ns = time.monotonic_ns()
        for index in range(order.count):
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError as exc:
                failures += [describe(exc)] * (order.count - index)
                break
            sock.setblocking(False)
            err = sock.connect_ex((order.host, order.port))
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                failures.append(f"connect: {errno.errorcode.get(err, str(err))}")
                continue
            self.socks[sock.fileno()] = sock
            poller.register(sock, select.POLLOUT)
        waiting = set(self.socks)
        deadline = time.monotonic() + order.timeout_s
        while waiting and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(min(left, 0.1) * 1000):
                poller.unregister(fd)
                waiting.discard(fd)
                err = self.socks[fd].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self.socks.pop(fd).close()
                    failures.append(f"connect: {errno.errorcode.get(err, str(err))}")
        for fd in waiting:
            self.socks.pop(fd).close()
            failures.append("connect timed out")
        return {
            "ok": len(self.socks),
            "failed": len(failures),
            "failures": dict(Counter(failures)),
            "start_ns": start_ns,
            "end_ns": time.monotonic_ns(),
        }

    def run(self, order: TrickleOrder) -> dict[str, Any]:
        """Trickle the HELLO a byte a second from ``order.start_ns`` for ``order.seconds``."""
        hello = encode(Hello(order.nick, caps=int(Capability.QUIET)))
        steps = math.ceil(order.seconds)
        if steps >= len(hello):
            raise ValueError(
                f"a {order.seconds:g} s trickle would finish its {len(hello)}-byte HELLO"
            )
        watch = _CutWatch(self.socks, order.start_ns)
        sent = 0
        for step in range(steps):
            watch.until(order.start_ns + step * 1_000_000_000)
            byte = hello[step : step + 1]
            for fd, sock in list(self.socks.items()):
                try:
                    sent += sock.send(byte)
                except BlockingIOError:
                    pass
                except OSError:
                    watch.cut(fd)
        watch.until(order.start_ns + int(order.seconds * 1e9))
        left = len(self.socks)
        self.close()
        cuts = watch.cuts_ns
        return {
            "open_at_start": watch.opened,
            "bytes_sent": sent,
            "cut": len(cuts),
            "cuts_ns": cuts,
            "still_open": left,
            "errors": dict(watch.errors),
        }

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close()
        self.socks.clear()


class _CutWatch:
    """Which trickling connections the server closes, when, and what it said before."""

    def __init__(self, socks: dict[int, socket.socket], start_ns: int) -> None:
        self.socks = socks
        self.start_ns = start_ns
        self.opened = len(socks)
        self.poller = select.poll()
        for fd in socks:
            self.poller.register(fd, _GONE)
        self.cuts_ns: list[int] = []
        self.errors: Counter[str] = Counter()

    def cut(self, fd: int) -> None:
        self.poller.unregister(fd)
        self.socks.pop(fd).close()
        self.cuts_ns.append(time.monotonic_ns() - self.start_ns)

    def until(self, deadline_ns: int) -> None:
        """Read what the server sends until ``deadline_ns``: an ERROR, then its close."""
        while (left := deadline_ns - time.monotonic_ns()) > 0:
            for fd, _ in self.poller.poll(max(1, left // 1_000_000)):
                if fd not in self.socks:
                    continue
                try:
                    data = self.socks[fd].recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.cut(fd)
                    continue
                self.errors.update(_error_names(data))


def _error_names(data: bytes) -> list[str]:
    """The ERROR codes in what a server sent a connection that never registered."""
    splitter = FrameSplitter(1 << 20)
    splitter.receive_data(data)
    names: list[str] = []
    try:
        while (frame := splitter.next_frame()) is not None:
            if frame[0] == FrameType.ERROR:
                event = decode_body(*frame)
                if isinstance(event, Error):
                    names.append(event.code_name)
    except ProtocolError as exc:
        names.append(f"bad frame: {exc}")
    return names
