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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spec.constants import ErrorCode, code_name

from .dialects import make_stream
from .orders import ClientSpec

if TYPE_CHECKING:
    from .worker import Client, Worker

_SHUTDOWN = int(ErrorCode.SERVER_SHUTDOWN)


@dataclass(frozen=True, slots=True)
class BurstOrder:
    host: str
    port: int
    dialect: str
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


#: Sockets made by the last ``burst-arm``, connected by the next ``burst-fire``.
_armed: _Armed | None = None


def describe(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "error")
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return f"{name}: open-file limit reached in the load worker"
    return f"{name}: {exc.strerror or exc}"


def arm(w: Worker, order: BurstOrder) -> dict[str, Any]:
    """Make (but do not connect) one socket per client of ``order``."""
    from .worker import Client  # that module imports this one

    global _armed
    if _armed is not None:
        for c in _armed.clients:
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
    _armed = _Armed(order, clients, failures)
    return {"armed": len(clients), "failures": _counts(failures)}


def fire(w: Worker, start_ns: int) -> dict[str, Any]:
    """At ``start_ns`` connect every armed socket; register them all, or note why not."""
    global _armed
    if _armed is None:
        raise RuntimeError("burst-fire without burst-arm")
    armed, _armed = _armed, None
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
            w._set_mask(c, selectors.EVENT_WRITE)
            waiting.add(c)
        else:
            c.sock.close()
            failures.append(f"connect: {errno.errorcode.get(err, err)}")
    issued_ns = time.monotonic_ns()
    deadline_ns = start_ns + int(order.timeout_s * 1e9)
    while waiting and (left := deadline_ns - time.monotonic_ns()) > 0:
        for key, mask in w.sel.select(min(0.05, left / 1e9)):
            c = key.data
            if c not in waiting:  # registered earlier: keep answering its PINGs
                w._read(c, time.monotonic_ns())
                continue
            w.advance_handshake(c, mask)
            if c.closed_ns:
                waiting.discard(c)
                failures.append(c.closed_why)
                # An ERROR before WELCOME (e.g. SERVER_FULL) is a refusal, not a failure.
                refused += bool(c.stream.error_codes)
            elif c.stream.ready:
                welcome_ns.append(time.monotonic_ns() - start_ns)
                waiting.discard(c)
                w.clients.append(c)
    for c in waiting:
        w._close(c, "not registered before the time limit")
        failures.append(c.closed_why)
    return {
        "ok": len(welcome_ns),
        "refused": refused,
        "failures": _counts(failures),
        "welcome_ns": welcome_ns,
        "began_ns": began_ns,
        "issued_ns": issued_ns,
    }


def watch_close(w: Worker, order: WatchOrder) -> dict[str, Any]:
    """Read until the server has closed every client of this worker, then count."""
    deadline = time.monotonic() + order.timeout_s
    while any(not c.closed_ns for c in w.clients) and (left := deadline - time.monotonic()) > 0:
        for key, _ in w.sel.select(min(0.05, left)):
            w._read(key.data, time.monotonic_ns())
    notified = closed = before_signal = 0
    closes_ns: list[int] = []
    why: list[str] = []
    codes: list[str] = []
    for c in w.clients:
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
        "clients": len(w.clients),
        "notified": notified,
        "closed": closed,
        "closed_before_signal": before_signal,
        "still_open": sum(1 for c in w.clients if not c.closed_ns),
        "closes_ns": closes_ns,
        "close_reasons": _counts(why),
        "other_errors": _counts(codes),
    }


def _counts(items: list[str]) -> dict[str, int]:
    return dict(Counter(items))


#: Orders the worker hands to this module: name -> handler(worker, payload).
ORDERS: dict[str, Callable[[Worker, Any], dict[str, Any]]] = {
    "burst-arm": arm,
    "burst-fire": fire,
    "watch-close": watch_close,
}
