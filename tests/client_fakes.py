"""A scripted fake server for client tests: the test thread plays the server, frame by frame,
through ``spec.Connection(Role.SERVER)`` on a loopback socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from spec.connection import Connection, Role
from spec.events import Bye, Event, Hello, Roster, UnknownFrame, Welcome

E = TypeVar("E")


class _Closable(Protocol):
    def close(self) -> None: ...


class FakePeer:
    """The server side of one accepted connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(10)
        self.conn = Connection(Role.SERVER)

    def next(self) -> Event | UnknownFrame:
        while (event := self.conn.next_event()) is None:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("client closed the connection")
            self.conn.receive_data(data)
        return event

    def expect(self, kind: type[E]) -> E:
        event = self.next()
        assert isinstance(event, kind), f"expected {kind.__name__}, got {event!r}"
        return event

    def send(self, *events: Event) -> None:
        self.sock.sendall(b"".join(self.conn.send(e) for e in events))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def at_eof(self) -> bool:
        """True once the client has closed its side (reads until EOF, 10 s at most)."""
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except OSError:
            return True  # reset by the client: closed too
        return True

    def close(self) -> None:
        self.sock.close()

    def bye(self) -> str | None:
        """Read until BYE (skipping other frames) or EOF, then close like a server would."""
        try:
            while not isinstance(event := self.next(), Bye):
                pass
            return event.text
        except (EOFError, OSError):
            return None
        finally:
            self.close()


class FakeServer:
    """A loopback listener; ``accept()`` gives the next client's FakePeer."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.host, self.port = self.listener.getsockname()[:2]

    def accept(self) -> FakePeer:
        sock, _ = self.listener.accept()
        return FakePeer(sock)

    def close(self) -> None:
        self.listener.close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def in_thread(target: Callable[[], E]) -> Callable[[float], E]:
    """Run ``target`` in a thread; the returned function waits for its result (or error)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = target()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result(timeout: float) -> E:
        thread.join(timeout)
        assert not thread.is_alive(), "the call did not finish in time"
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["value"]  # type: ignore[return-value]

    return result


def welcome_peer(peer: FakePeer, members: tuple[str, ...] = (), **welcome_fields: Any) -> Hello:
    """Play the server's side of a successful handshake; returns the client's HELLO."""
    hello = peer.expect(Hello)
    peer.send(Welcome(nick=hello.nick, caps=hello.caps & 0x3, **welcome_fields))
    if not hello.caps & 0x2:
        peer.send(Roster(room="lobby", seq=0, members=(*members, hello.nick)))
    return hello


@contextmanager
def finishing(client: _Closable, peer: FakePeer) -> Iterator[None]:
    """At the end, close ``client`` while ``peer`` answers its BYE by closing, as servers do."""
    try:
        yield
    finally:
        closing = in_thread(client.close)
        peer.bye()
        closing(10)
