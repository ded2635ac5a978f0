"""A load worker: many client connections in one selector loop, driven over a pipe.

Each worker is its own process (spawned), so the load the harness generates is not bound by
one interpreter lock. Between orders it keeps reading its sockets, so idle clients answer
the server's PINGs and are not cut for idleness while other workers connect.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
import traceback
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from . import burstload
from .dialects import MessageMaker, Stream, make_stream
from .orders import RECEIVER, SENDING_ROLES, STALLER, ClientSpec, ConnectOrder, RunOrder
from .procstat import raise_fd_limit
from .runloop import run_clients

RECV_SIZE = 262_144


class Client:
    """One connection and its state in the current run."""

    __slots__ = (
        "closed_ns",
        "closed_why",
        "cut_ns",
        "expect",
        "maker",
        "mask",
        "out",
        "out_pos",
        "role",
        "saw_eof",
        "sent",
        "sock",
        "stream",
        "to_send",
        "written",
    )

    def __init__(self, spec: ClientSpec, sock: socket.socket, stream: Stream) -> None:
        self.role = spec.role
        self.sock = sock
        self.stream = stream
        self.maker: MessageMaker | None = None
        self.out = bytearray()
        self.out_pos = 0
        self.mask = 0
        self.closed_ns = 0
        self.closed_why = ""
        self.cut_ns = 0
        self.saw_eof = False
        self.to_send = self.sent = self.written = self.expect = 0

    def queue(self, data: bytes) -> None:
        if self.out_pos == len(self.out):
            self.out = bytearray(data)
            self.out_pos = 0
        else:
            self.out += data

    @property
    def pending(self) -> bool:
        return self.out_pos < len(self.out)


class Worker:
    def __init__(self, pipe: Connection, index: int) -> None:
        self.pipe = pipe
        self.index = index
        self.sel = selectors.DefaultSelector()
        self.clients: list[Client] = []
        self.order: ConnectOrder | None = None
        self.run_order: RunOrder | None = None
        self.paused = False
        self.fd_limit = raise_fd_limit()

    # -- plumbing ---------------------------------------------------------------------------

    def _set_mask(self, c: Client, mask: int) -> None:
        if mask == c.mask or c.closed_ns:
            return
        if c.mask == 0:
            self.sel.register(c.sock, mask, c)
        elif mask == 0:
            self.sel.unregister(c.sock)
        else:
            self.sel.modify(c.sock, mask, c)
        c.mask = mask

    def _close(self, c: Client, why: str) -> None:
        if c.closed_ns:
            return
        self._set_mask(c, 0)
        c.closed_ns = time.monotonic_ns()
        c.closed_why = why
        c.sock.close()

    def _flush(self, c: Client) -> bool:
        """Write what the kernel takes; False if the socket would block with bytes left."""
        while c.pending:
            try:
                n = c.sock.send(memoryview(c.out)[c.out_pos :])
            except BlockingIOError:
                return False
            except OSError as exc:
                self._close(c, f"send: {exc.strerror}")
                return False
            c.out_pos += n
            c.written += n
        return True

    def _read(self, c: Client, now_ns: int) -> None:
        try:
            data = c.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._close(c, f"recv: {exc.strerror}")
            return
        if not data:
            self._close(c, "closed by server")
            return
        reply = c.stream.feed(data, now_ns)
        if reply:
            c.queue(reply)
            self._flush(c)
        if c.stream.failure:
            self._close(c, c.stream.failure)

    def advance_handshake(self, c: Client, mask: int) -> None:
        """One selector event for a client still registering: once its non-blocking connect
        completes, send the opening frames (HELLO); otherwise read what arrived."""
        if mask & selectors.EVENT_WRITE and not c.stream.ready and c.mask == selectors.EVENT_WRITE:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._close(c, f"connect: {errno.errorcode.get(err, err)}")
            else:
                c.queue(c.stream.opening())
                self._flush(c)
                self._set_mask(c, selectors.EVENT_READ)
        elif mask & selectors.EVENT_READ:
            self._read(c, time.monotonic_ns())

    def _reading(self, c: Client) -> bool:
        running = self.run_order is not None
        if running and c.role == STALLER:
            return False
        return not (running and self.paused and c.role == RECEIVER)

    # -- orders -----------------------------------------------------------------------------

    def serve(self) -> None:
        while True:
            self._idle_until_order()
            kind, payload = self.pipe.recv()
            try:
                if kind == "connect":
                    reply: Any = self.connect(payload)
                elif kind == "run":
                    reply = self.run(payload)
                elif kind == "reset":
                    reply = self.reset()
                elif kind in burstload.ORDERS:
                    reply = burstload.ORDERS[kind](self, payload)
                elif kind == "quit":
                    self.reset()
                    self.pipe.send(("ok", None))
                    return
                else:
                    raise ValueError(f"unknown order {kind!r}")
            except Exception:
                self.pipe.send(("error", traceback.format_exc()))
                continue
            self.pipe.send(("ok", reply))

    def _idle_until_order(self) -> None:
        while not self.pipe.poll(0):
            for key, _ in self.sel.select(0.05):
                self._read(key.data, time.monotonic_ns())

    def reset(self) -> dict[str, Any]:
        for c in self.clients:
            self._close(c, "reset")
        self.clients.clear()
        return {}

    def connect(self, order: ConnectOrder) -> dict[str, Any]:
        self.order = order
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
                    failures.append(burstload.describe(exc))
                    if exc.errno in (errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL):
                        failures.append(f"stopped: {len(waiting)} clients not attempted")
                        waiting.clear()
                    continue
                handshaking.add(c)
            for key, mask in self.sel.select(0.05):
                c = key.data
                if c not in handshaking:
                    self._read(c, time.monotonic_ns())
                    continue
                self.advance_handshake(c, mask)
                if c.closed_ns:
                    handshaking.discard(c)
                    failures.append(c.closed_why)
                elif c.stream.ready:
                    handshaking.discard(c)
                    self.clients.append(c)
                    ok += 1
                    if welcome is None and c.stream.welcome is not None:
                        welcome = _public(c.stream.welcome)
        for c in handshaking:
            self._close(c, "handshake timed out")
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
            rcvbuf = order.staller_rcvbuf if spec.role == STALLER else order.receiver_rcvbuf
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
        self._set_mask(c, selectors.EVENT_WRITE)
        return c

    # -- the measured run -------------------------------------------------------------------

    def run(self, order: RunOrder) -> dict[str, Any]:
        self.run_order = order
        try:
            return run_clients(self, order)
        finally:
            self.run_order = None
            self.paused = False
            for c in self.clients:
                self._set_mask(c, selectors.EVENT_READ)


def _public(welcome: Any) -> dict[str, Any]:
    fields = ("max_frame", "max_text", "idle_timeout_ms", "out_limit", "slow_timeout_ms", "rate")
    return {f: getattr(welcome, f) for f in fields}


def worker_main(pipe: Connection, index: int) -> None:
    """Entry point of a spawned worker process."""
    with contextlib.suppress(EOFError, KeyboardInterrupt, BrokenPipeError):
        Worker(pipe, index).serve()
