"""A tiny raw chatwire/1 client for the server tests, and an in-process server helper.

It enforces nothing: tests send whatever bytes they like and look at what comes back. Every
wait has a deadline. (The conformance suite has its own, richer client; this one is separate
on purpose.)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from reference.server import Server, ServerConfig
from spec.codec import encode
from spec.constants import HARD_MAX_FRAME
from spec.decoder import FrameDecoder
from spec.errors import ProtocolError
from spec.events import Error, Event, Hello, Ping, Pong, Roster, UnknownFrame, Welcome

WAIT = 5.0
_tokens = itertools.count(1000)
T = TypeVar("T")


@dataclass(frozen=True)
class Closed:
    """The server closed the connection: ``reset`` tells RST from FIN."""

    reset: bool = False


Incoming = Event | UnknownFrame | Closed


class RawClient:
    def __init__(self, address: tuple[str, int], rcvbuf: int = 0, auto_pong: bool = True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(WAIT)
        self.sock.connect(address)
        self.decoder = FrameDecoder(HARD_MAX_FRAME)
        self.inbox: deque[Incoming] = deque()
        self.closed = False
        self.auto_pong = auto_pong
        self.lock = threading.Lock()  # for tests that write from two threads

    # -- sending ------------------------------------------------------------------------

    def send(self, *events: Event) -> None:
        self.send_raw(b"".join(encode(e) for e in events))

    def send_raw(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)

    def send_frame(self, ftype: int, body: bytes) -> None:
        self.send_raw(struct.pack(">IB", len(body) + 1, ftype) + body)

    # -- receiving ----------------------------------------------------------------------

    def _fill(self, deadline: float) -> bool:
        """Read once; False on timeout. Closing is recorded as a Closed item."""
        if self.closed:
            return False
        self.sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except ConnectionResetError:
            self.closed = True
            self.inbox.append(Closed(reset=True))
            return True
        if not data:
            self.closed = True
            self.inbox.append(Closed())
            return True
        self.decoder.receive_data(data)
        try:
            for event in self.decoder.events():
                if self.auto_pong and isinstance(event, Ping):
                    self.send(Pong(event.token))
                self.inbox.append(event)
        except ProtocolError as exc:
            raise AssertionError(f"server sent a bad frame: {exc!r}") from None
        return True

    def recv_event(self, timeout: float = WAIT) -> Incoming:
        deadline = time.monotonic() + timeout
        while not self.inbox:
            if not self._fill(deadline) and time.monotonic() >= deadline:
                raise AssertionError("no frame from the server in time")
        return self.inbox.popleft()

    def expect(self, kind: type[T], timeout: float = WAIT, skip_pings: bool = True) -> T:
        item = self.recv_event(timeout)
        while skip_pings and isinstance(item, Ping):
            item = self.recv_event(timeout)
        assert isinstance(item, kind), f"expected {kind.__name__}, got {item!r}"
        return item

    def barrier(self, timeout: float = WAIT) -> list[Incoming]:
        """PING and collect everything before the matching PONG (§8.5)."""
        token = next(_tokens)
        self.send(Ping(token))
        return self.collect_until(lambda e: isinstance(e, Pong) and e.token == token, timeout)

    def collect_until(
        self, done: Callable[[Incoming], bool], timeout: float = WAIT
    ) -> list[Incoming]:
        """Everything received up to (excluding) the first item for which ``done`` holds."""
        got: list[Incoming] = []
        deadline = time.monotonic() + timeout
        while True:
            item = self.recv_event(max(0.0, deadline - time.monotonic()))
            if done(item):
                return got
            if isinstance(item, Closed):
                raise AssertionError(f"connection closed; got {got!r}")
            if not isinstance(item, Ping):
                got.append(item)

    def until_closed(self, timeout: float = WAIT) -> list[Incoming]:
        """Everything received until the server closes the connection (Closed included)."""
        got: list[Incoming] = []
        deadline = time.monotonic() + timeout
        while not got or not isinstance(got[-1], Closed):
            got.append(self.recv_event(max(0.0, deadline - time.monotonic())))
        return got

    def fatal(self, timeout: float = WAIT) -> Error:
        """The fatal ERROR that ends the session, checking that the close follows."""
        got = [e for e in self.until_closed(timeout) if not isinstance(e, Ping)]
        errors = [e for e in got if isinstance(e, Error)]
        assert errors and errors[-1].fatal, f"no fatal ERROR before the close: {got!r}"
        assert got[-2] is errors[-1], f"frames after the fatal ERROR: {got!r}"
        return errors[-1]

    # -- session ------------------------------------------------------------------------

    def hello(self, nick: str, caps: int = 0) -> Welcome:
        """Register; also consumes the welcome ROSTER unless QUIET was asked."""
        self.send(Hello(nick, caps))
        welcome = self.expect(Welcome)
        if not caps & 0x2:
            roster = self.expect(Roster)
            while roster.more:
                roster = self.expect(Roster)
        return welcome

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def abort(self) -> None:
        """Close with RST, as a killed process's connection might."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()


@contextlib.contextmanager
def running_server(**overrides: object) -> Iterator[Server]:
    """An in-process server on 127.0.0.1 and a free port, with test-sized timeouts."""
    settings: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "handshake_timeout": 0.5,
        "idle_timeout": 10.0,
        "slow_timeout": 0.5,
        "drain_time": 0.5,
    }
    settings.update(overrides)
    server = Server(ServerConfig(**settings))  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.shutdown()


@contextlib.contextmanager
def clients(server: Server, *nicks: str, caps: int = 0) -> Iterator[list[RawClient]]:
    """Registered clients, closed at the end."""
    made: list[RawClient] = []
    try:
        for nick in nicks:
            client = RawClient(server.address)
            made.append(client)
            client.hello(nick, caps)
        for client in made:  # drain the JOINED notices of later arrivals
            client.barrier()
        yield made
    finally:
        for client in made:
            client.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def session_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("chatwire-session")]
