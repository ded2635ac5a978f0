"""A load worker: many client connections in one selector loop, driven over a pipe.

Each worker is its own process (spawned), so the load the harness generates is not bound by
one interpreter lock. Between orders it keeps reading its sockets, so idle clients answer
the server's PINGs and are not cut for idleness while other workers connect. The sockets
themselves are in :mod:`.clients`; the measured run is :mod:`.runloop`, the burst and
shutdown orders :mod:`.burstload`, the hostile crowd :mod:`.hostileload`.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import selectors
import socket
import time
import traceback
from collections import Counter
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from .burstload import Burst, watch_close
from .clients import Client, Connections, describe
from .dialects import MessageMaker, make_stream
from .floodclose import flood_close
from .hostileload import Trickle, close_at
from .metrics import ACKED_DIALECTS
from .orders import SENDING_ROLES, ClientSpec, ConnectOrder, Role, RunOrder
from .procstat import raise_fd_limit
from .runloop import run_clients


class Worker:
    def __init__(self, pipe: Connection, index: int) -> None:
        self.pipe = pipe
        self.index = index
        self.net = Connections()
        self.order: ConnectOrder | None = None
        self.fd_limit = raise_fd_limit()
        burst = Burst(self.net)
        self.trickle = Trickle()
        self.orders: dict[str, Callable[[Any], Any]] = {
            "connect": self.connect,
            "run": self.run,
            "reset": self.reset,
            "burst-arm": burst.arm,
            "burst-fire": burst.fire,
            "watch-close": partial(watch_close, self.net),
            "flood-close": partial(flood_close, self.net),
            "close-at": partial(close_at, self.net),
            "trickle-open": self.trickle.open,
            "trickle": self.trickle.run,
        }

    def serve(self) -> None:
        while True:
            while not self.pipe.poll(0):
                self.net.read_all(0.05)
            kind, payload = self.pipe.recv()
            if kind == "quit":
                self.net.reset()
                self.pipe.send(("ok", None))
                return
            try:
                handler = self.orders.get(kind)
                if handler is None:
                    raise ValueError(f"unknown order {kind!r}")
                reply = handler(payload)
            except Exception:
                self.pipe.send(("error", traceback.format_exc()))
                continue
            self.pipe.send(("ok", reply))

    def reset(self, _: object = None) -> dict[str, Any]:
        self.net.reset()
        self.trickle.close()
        return {}

    def connect(self, order: ConnectOrder) -> dict[str, Any]:
        self.order = order
        net = self.net
        address = (order.host, order.port)
        waiting = list(reversed(order.clients))
        handshaking: set[Client] = set()
        ok, failures = 0, list[str]()
        deadline = time.monotonic() + order.timeout_s
        start_ns = time.monotonic_ns()
        welcome: dict[str, Any] | None = None
        while (waiting or handshaking) and time.monotonic() < deadline:
            while waiting and len(handshaking) < order.in_flight:
                spec = waiting.pop()
                try:
                    c = self._open(spec, order, address)
                except OSError as exc:
                    failures.append(describe(exc))
                    if exc.errno in (errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL):
                        failures.append(f"stopped: {len(waiting)} clients not attempted")
                        waiting.clear()
                    continue
                handshaking.add(c)
            failed, done = net.handshake_round(handshaking, 0.05)
            failures += [c.closed_why for c in failed]
            ok += len(done)
            for c, _ in done:
                if welcome is None and c.stream.welcome is not None:
                    welcome = _public(c.stream.welcome)
        for c in handshaking:
            net.close(c, "handshake timed out")
            failures.append("handshake timed out")
        failures += ["not attempted before the time limit"] * len(waiting)
        return {
            "ok": ok,
            "failed": len(failures),
            "failures": dict(Counter(failures)),
            "start_ns": start_ns,
            "end_ns": time.monotonic_ns(),
            "welcome": welcome,
            "fd_limit": list(self.fd_limit),
        }

    def _open(self, spec: ClientSpec, order: ConnectOrder, address: tuple[str, int]) -> Client:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rcvbuf = order.staller_rcvbuf if spec.role == Role.STALLER else order.receiver_rcvbuf
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            err = sock.connect_ex(address)
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, errno.errorcode.get(err, str(err)))
        except OSError:
            sock.close()
            raise
        stream = make_stream(order.dialect, spec.nick, order.room, order.join, 16, spec.role)
        c = Client(spec, sock, stream)
        if spec.role in SENDING_ROLES:
            c.maker = MessageMaker(
                order.dialect, order.room, spec.nick, order.payload, spec.first_id
            )
        self.net.wait_for(c, selectors.EVENT_WRITE)
        return c

    def run(self, order: RunOrder) -> dict[str, Any]:
        windowed = self.order is not None and self.order.dialect in ACKED_DIALECTS
        port = self.order.port if self.order is not None else 0
        # No cyclic collection during the measured run: a pass over a worker's thousands of
        # client objects holds every one of its clients for milliseconds, a latency tail of
        # the load generator's own that every server would be charged with.
        gc.disable()
        try:
            return run_clients(self.net, order, windowed, port)
        finally:
            gc.enable()
            for c in self.net.registered:
                self.net.wait_for(c, selectors.EVENT_READ)


def _public(welcome: Any) -> dict[str, Any]:
    fields = ("max_frame", "max_text", "idle_timeout_ms", "out_limit", "slow_timeout_ms", "rate")
    return {f: getattr(welcome, f) for f in fields}


def worker_main(pipe: Connection, index: int) -> None:
    """Entry point of a spawned worker process."""
    with contextlib.suppress(EOFError, KeyboardInterrupt, BrokenPipeError):
        Worker(pipe, index).serve()
