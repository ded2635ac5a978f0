"""A load worker's connections: one client's state, and the selector they all live in.

A leaf module: the worker, the measured run loop (``runloop``) and the burst and shutdown
orders (``burstload``) all drive connections through :class:`Connections`'s public methods.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time

from .dialects import MessageMaker, Stream
from .orders import ClientSpec

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


class Connections:
    """Every connection of one worker in one selector: what each waits for, writing what is
    queued, reading what arrives (answering PINGs), closing; ``registered`` holds the clients
    that completed their handshake and take part in runs."""

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.registered: list[Client] = []

    def wait_for(self, c: Client, mask: int) -> None:
        """Which events of ``c`` the selector reports (0: none; it stays open)."""
        if mask == c.mask or c.closed_ns:
            return
        if c.mask == 0:
            self.sel.register(c.sock, mask, c)
        elif mask == 0:
            self.sel.unregister(c.sock)
        else:
            self.sel.modify(c.sock, mask, c)
        c.mask = mask

    def ready(self, timeout: float) -> list[tuple[Client, int]]:
        """The clients with events, and which, within ``timeout`` seconds."""
        return [(key.data, mask) for key, mask in self.sel.select(timeout)]

    def close(self, c: Client, why: str) -> None:
        if c.closed_ns:
            return
        self.wait_for(c, 0)
        c.closed_ns = time.monotonic_ns()
        c.closed_why = why
        c.sock.close()

    def flush(self, c: Client) -> bool:
        """Write what the kernel takes; False if the socket would block with bytes left."""
        while c.pending:
            try:
                n = c.sock.send(memoryview(c.out)[c.out_pos :])
            except BlockingIOError:
                return False
            except OSError as exc:
                self.close(c, f"send: {exc.strerror}")
                return False
            c.out_pos += n
            c.written += n
        return True

    def read(self, c: Client, now_ns: int) -> None:
        try:
            data = c.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self.close(c, f"recv: {exc.strerror}")
            return
        if not data:
            self.close(c, "closed by server")
            return
        reply = c.stream.feed(data, now_ns)
        if reply:
            c.queue(reply)
            self.flush(c)
        if c.stream.failure:
            self.close(c, c.stream.failure)

    def advance_handshake(self, c: Client, mask: int) -> None:
        """One selector event for a client still registering: once its non-blocking connect
        completes, send the opening frames (HELLO); otherwise read what arrived."""
        if mask & selectors.EVENT_WRITE and not c.stream.ready and c.mask == selectors.EVENT_WRITE:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.close(c, f"connect: {errno.errorcode.get(err, err)}")
            else:
                c.queue(c.stream.opening())
                self.flush(c)
                self.wait_for(c, selectors.EVENT_READ)
        elif mask & selectors.EVENT_READ:
            self.read(c, time.monotonic_ns())

    def handshake_round(
        self, waiting: set[Client], timeout: float
    ) -> tuple[list[Client], list[tuple[Client, int]]]:
        """One look at every connection within ``timeout``: the clients in ``waiting`` advance
        their handshake, the others are read (their PINGs answered). Returns the waiting
        clients that failed and those now registered (with when), all taken out of
        ``waiting``; the registered ones join :attr:`registered`."""
        failed: list[Client] = []
        done: list[tuple[Client, int]] = []
        for c, mask in self.ready(timeout):
            if c not in waiting:
                self.read(c, time.monotonic_ns())
                continue
            self.advance_handshake(c, mask)
            if c.closed_ns:
                waiting.discard(c)
                failed.append(c)
            elif c.stream.ready:
                waiting.discard(c)
                self.registered.append(c)
                done.append((c, time.monotonic_ns()))
        return failed, done

    def read_all(self, timeout: float) -> None:
        """Read whatever arrives within ``timeout`` (keeps idle clients answering PINGs)."""
        for c, _ in self.ready(timeout):
            self.read(c, time.monotonic_ns())

    def reset(self) -> None:
        for c in self.registered:
            self.close(c, "reset")
        self.registered.clear()


def describe(exc: OSError) -> str:
    """Why making or connecting a socket failed, in a line that counts well."""
    name = errno.errorcode.get(exc.errno or 0, "error")
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return f"{name}: open-file limit reached in the load worker"
    return f"{name}: {exc.strerror or exc}"
