"""The worker side of the burst and shutdown scenarios.

burst, in two orders so that every worker is ready before the start instant is chosen (the
harness is the barrier): ``burst-arm`` makes this worker's sockets (non-blocking, not yet
connected); ``burst-fire`` waits for a shared ``time.monotonic_ns()`` instant (one clock for
every process on the machine), issues every ``connect`` at once, sends the opening (HELLO
with QUIET) as each socket becomes writable, and notes when each WELCOME arrives.

shutdown: ``watch-close`` reads the worker's registered clients until the server has closed
every one (or a deadline), and tells which of them were sent SERVER_SHUTDOWN first.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from spec.constants import ErrorCode, code_name

from .clients import Client, Connections, describe
from .dialects import make_stream
from .orders import ClientSpec, Dialect

_SHUTDOWN = int(ErrorCode.SERVER_SHUTDOWN)


@dataclass(frozen=True, slots=True)
class BurstOrder:
    host: str
    port: int
    dialect: Dialect
    clients: tuple[ClientSpec, ...]
    #: How long after the start instant a client may take to be registered.
    timeout_s: float


@dataclass(frozen=True, slots=True)
class WatchOrder:
    #: When the server was sent SIGTERM (monotonic ns).
    signal_ns: int
    #: Longest the worker waits for the server to close its clients.
    timeout_s: float


@dataclass
class _Armed:
    order: BurstOrder
    clients: list[Client]
    failures: list[str]


class Burst:
    """One worker's side of a burst: the sockets made by ``arm``, connected by ``fire``."""

    def __init__(self, net: Connections) -> None:
        self.net = net
        self._armed: _Armed | None = None

    def arm(self, order: BurstOrder) -> dict[str, Any]:
        """Make (but do not connect) one socket per client of ``order``."""
        if self._armed is not None:
            for c in self._armed.clients:
                c.sock.close()
        clients: list[Client] = []
        failures: list[str] = []
        for index, spec in enumerate(order.clients):
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError as exc:
                failures.append(describe(exc))
                failures += ["not attempted: no socket"] * (len(order.clients) - index - 1)
                break
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stream = make_stream(order.dialect, spec.nick, "lobby", False, 16)
            clients.append(Client(spec, sock, stream))
        self._armed = _Armed(order, clients, failures)
        return {"armed": len(clients), "failures": _counts(failures)}

    def fire(self, start_ns: int) -> dict[str, Any]:
        """At ``start_ns`` connect every armed socket; register them all, or note why not."""
        if self._armed is None:
            raise RuntimeError("burst-fire without burst-arm")
        armed, self._armed = self._armed, None
        net = self.net
        order = armed.order
        address = (order.host, order.port)
        failures = list(armed.failures)
        refused = 0
        welcome_ns: list[int] = []
        waiting: set[Client] = set()
        late = start_ns - time.monotonic_ns()
        if late > 0:
            time.sleep(late / 1e9)
        began_ns = time.monotonic_ns()
        for c in armed.clients:
            err = c.sock.connect_ex(address)
            if err in (0, errno.EINPROGRESS):
                net.wait_for(c, selectors.EVENT_WRITE)
                waiting.add(c)
            else:
                c.sock.close()
                failures.append(f"connect: {errno.errorcode.get(err, err)}")
        issued_ns = time.monotonic_ns()
        deadline_ns = start_ns + int(order.timeout_s * 1e9)
        while waiting and (left := deadline_ns - time.monotonic_ns()) > 0:
            failed, done = net.handshake_round(waiting, min(0.05, left / 1e9))
            failures += [c.closed_why for c in failed]
            # An ERROR before WELCOME (e.g. SERVER_FULL) is a refusal, not a failure.
            refused += sum(1 for c in failed if c.stream.error_codes)
            welcome_ns += [at_ns - start_ns for _, at_ns in done]
        for c in waiting:
            net.close(c, "not registered before the time limit")
            failures.append(c.closed_why)
        return {
            "ok": len(welcome_ns),
            "refused": refused,
            "failures": _counts(failures),
            "welcome_ns": welcome_ns,
            "began_ns": began_ns,
            "issued_ns": issued_ns,
        }


def watch_close(net: Connections, order: WatchOrder) -> dict[str, Any]:
    """Read until the server has closed every client of this worker, then count."""
    clients = net.registered
    deadline = time.monotonic() + order.timeout_s
    while any(not c.closed_ns for c in clients) and (left := deadline - time.monotonic()) > 0:
        net.read_all(min(0.05, left))
    notified = closed = before_signal = 0
    closes_ns: list[int] = []
    why: list[str] = []
    codes: list[str] = []
    for c in clients:
        notified += _SHUTDOWN in c.stream.error_codes
        codes += [code_name(code) for code in c.stream.error_codes if code != _SHUTDOWN]
        if not c.closed_ns:
            continue
        if c.closed_ns < order.signal_ns:
            before_signal += 1
            continue
        closed += 1
        closes_ns.append(c.closed_ns - order.signal_ns)
        why.append(c.closed_why)
    return {
        "clients": len(clients),
        "notified": notified,
        "closed": closed,
        "closed_before_signal": before_signal,
        "still_open": sum(1 for c in clients if not c.closed_ns),
        "closes_ns": closes_ns,
        "close_reasons": _counts(why),
        "other_errors": _counts(codes),
    }


def _counts(items: list[str]) -> dict[str, int]:
    return dict(Counter(items))
