"""A small blocking chatwire/1 client for programs (bots, tests) and for the command line.

Threads (PROTOCOL §16): the caller's thread(s) send; one receive thread reads frames through
``spec.Connection(Role.CLIENT)``, answers the server's PINGs itself, pairs answers with the
requests that caused them, and hands every other event to the program, either on a queue
(``next_event`` / ``events``) or, when ``on_event`` is given, by calling it in the receive
thread. Every frame is written whole under ONE send lock, which is never held while waiting for
anything but the socket.

Requests return a :class:`Request`; ``wait()`` gives its answer (ACK, ROSTER, LEFT, ROOMS) or
raises :class:`RequestFailed` with the server's ERROR. The pairing relies on §7.1/§8.5: the
server answers one client's requests in the order they were sent. Answers are also delivered
as events, so a program may ignore the Request entirely. ROSTER and ROOMS split over several
frames (``more`` = 1) are joined into one event before anyone sees them.

``on_event`` runs in the receive thread: it must not wait for answers (``Request.wait``,
``barrier``), since the thread that would bring them is the one waiting.

This module opens, registers, sends and closes; the receive thread is the mixin in
``receiving.py``, and :class:`Request` is in ``request.py``.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import queue
import socket
import threading
from typing import TypeVar, cast

from spec.connection import Connection, Role
from spec.constants import Capability, ErrorCode, FrameType
from spec.errors import LocalProtocolError, ProtocolError
from spec.events import (
    Ack,
    Bye,
    Direct,
    Error,
    Event,
    Hello,
    Join,
    Leave,
    Left,
    ListRooms,
    Ping,
    RoomEntry,
    Rooms,
    Roster,
    Send,
    UnknownFrame,
    Welcome,
    Who,
)
from spec.names import fold

from .errors import (
    ClientTimeout,
    ConnectFailed,
    ConnectionClosed,
    Disconnected,
    EndCause,
    InvalidRequest,
    NickRefused,
    NotChatwireServer,
    ServerError,
    describe_os_error,
)
from .receiving import RECV_SIZE, EventCallback, Receiving, ServerEvent
from .request import Request

__all__ = ["ChatClient", "EventCallback", "Request", "ServerEvent"]

T = TypeVar("T")
#: How long close() waits for the server to close after BYE before giving up on it.
_CLOSE_WAIT = 2.0


class ChatClient(Receiving):
    """One chatwire/1 session: :meth:`connect`, or :meth:`open` then :meth:`register`."""

    def __init__(
        self, sock: socket.socket, on_event: EventCallback | None = None, timeout: float = 10.0
    ) -> None:
        self._sock = sock
        self._peer = _address(sock)
        self._timeout = timeout
        self._conn = Connection(Role.CLIENT)
        self._on_event = on_event
        self._events: queue.SimpleQueue[ServerEvent] = queue.SimpleQueue()
        self._send_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: collections.deque[Request[object]] = collections.deque()
        self._barriers: dict[int, threading.Event] = {}
        self._ponged: set[int] = set()
        self._tokens = itertools.count(1)
        self._partial_rosters: dict[str, list[str]] = {}
        self._partial_rooms: list[RoomEntry] = []
        self._joined: dict[str, str] = {}
        self._receiver: threading.Thread | None = None
        self._bye_sent = False
        self._ended: Disconnected | None = None
        self._end_taken = False
        self.welcome: Welcome | None = None
        #: The members of the default room at registration (None when QUIET was granted).
        self.welcome_roster: Roster | None = None

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        *,
        timeout: float = 10.0,
        on_event: EventCallback | None = None,
    ) -> ChatClient:
        """A TCP connection, not yet registered; raises ConnectFailed."""
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise ConnectFailed(
                f"cannot connect to {host}:{port}: {describe_os_error(exc)}"
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, on_event, timeout)

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        nick: str,
        caps: int = 0,
        *,
        timeout: float = 10.0,
        on_event: EventCallback | None = None,
    ) -> ChatClient:
        """Connect and register.

        Raises ConnectFailed (NotChatwireServer when the peer does not speak chatwire/1),
        NickRefused, ServerError, ConnectionClosed.
        """
        client = cls.open(host, port, timeout=timeout, on_event=on_event)
        try:
            client.register(nick, caps)
        except BaseException:
            client.close()
            raise
        return client

    def register(self, nick: str, caps: int = 0) -> Welcome:
        """Say HELLO; return WELCOME once the default room's roster is in too.

        On NickRefused the session stays open and unregistered: call ``register`` again.
        """
        if self.welcome is not None:
            raise InvalidRequest("already registered")
        self._sock.settimeout(self._timeout)
        try:
            self._sock.sendall(self._encode(Hello(nick=nick, caps=caps)))
            early: list[Event | UnknownFrame] = []
            answer = self._read_sync()
            if isinstance(answer, Error):
                if answer.code in (ErrorCode.NICK_IN_USE, ErrorCode.NICK_INVALID):
                    raise NickRefused(nick, answer)
                self._conn.close()
                raise ServerError(answer)
            assert isinstance(answer, Welcome)  # Connection admits nothing else here
            self.welcome = answer
            if not answer.caps & Capability.QUIET:
                while self.welcome_roster is None:
                    event = self._read_sync()
                    if isinstance(event, Roster) and event.room == answer.room:
                        self._collect_roster(event, welcome=True)
                    else:
                        early.append(event)
            else:
                self._joined[fold(answer.room)] = answer.room
        except TimeoutError:
            raise ConnectionClosed(f"no answer to HELLO within {self._timeout} s") from None
        except ProtocolError as exc:
            raise NotChatwireServer(
                f"{self._peer} is not a chatwire/1 server (its answer to HELLO: {exc})"
            ) from None
        except OSError as exc:
            raise ConnectionClosed(
                f"connection lost during the handshake: {describe_os_error(exc)}"
            ) from None
        self._sock.settimeout(None)
        self._receiver = threading.Thread(
            target=self._receive_loop, args=(early,), name=f"chatwire-recv-{nick}", daemon=True
        )
        self._receiver.start()
        return answer

    def _read_sync(self) -> Event | UnknownFrame:
        """The next frame during the handshake, read in the caller's thread."""
        while True:
            event = self._conn.next_event()
            if event is not None:
                return event
            data = self._sock.recv(RECV_SIZE)
            if not data:
                raise ConnectionClosed("the server closed the connection during the handshake")
            self._conn.receive_data(data)

    # -- requests -------------------------------------------------------------------------

    def send(self, room: str, text: str) -> Request[Ack]:
        return self._request(Send(room=room, text=text), Request[Ack](FrameType.SEND, room))

    def direct(self, nick: str, text: str) -> Request[Ack]:
        return self._request(Direct(nick=nick, text=text), Request[Ack](FrameType.DIRECT, nick))

    def join(self, room: str) -> Request[Roster]:
        return self._request(Join(room=room), Request[Roster](FrameType.JOIN, room))

    def leave(self, room: str) -> Request[Left]:
        return self._request(Leave(room=room), Request[Left](FrameType.LEAVE, room))

    def who(self, room: str) -> Request[Roster]:
        return self._request(Who(room=room), Request[Roster](FrameType.WHO, room))

    def rooms(self) -> Request[Rooms]:
        return self._request(ListRooms(), Request[Rooms](FrameType.LIST))

    def barrier(self, timeout: float | None = None) -> None:
        """PING with a fresh token and wait for its PONG (§8.5): once this returns, the server
        has processed everything sent before, and its answers have been received."""
        token = next(self._tokens)
        arrived = threading.Event()
        with self._pending_lock:
            self._barriers[token] = arrived
        try:
            self._write(Ping(token=token))
            if not arrived.wait(timeout):
                raise ClientTimeout(f"no PONG within {timeout} s")
        finally:
            with self._pending_lock:
                self._barriers.pop(token, None)
                answered = token in self._ponged
                self._ponged.discard(token)
        if not answered:
            assert self._ended is not None  # only the end wakes a barrier without its PONG
            raise ConnectionClosed(self._ended.describe(), self._ended)

    def _request(self, event: Event, request: Request[T]) -> Request[T]:
        self._write(event, cast(Request[object], request))
        return request

    def _encode(self, event: Event) -> bytes:
        try:
            data = self._conn.send(event)
        except LocalProtocolError as exc:
            if self._ended is not None:
                raise ConnectionClosed(self._ended.describe(), self._ended) from None
            raise InvalidRequest(str(exc)) from None  # e.g. longer than max_frame (§3.2)
        return data

    def _write(self, event: Event, request: Request[object] | None = None) -> None:
        with self._send_lock:
            if self._ended is not None:
                raise ConnectionClosed(self._ended.describe(), self._ended)
            if self._bye_sent or self.welcome is None:
                raise ConnectionClosed(
                    "the session is closed" if self._bye_sent else "not registered"
                )
            data = self._encode(event)
            with self._pending_lock:
                if self._ended is not None:  # ended while we encoded: nobody would answer
                    raise ConnectionClosed(self._ended.describe(), self._ended)
                if request is not None:
                    self._pending.append(request)
            try:
                self._sock.sendall(data)
            except OSError as exc:
                raise ConnectionClosed(f"cannot send: {describe_os_error(exc)}") from None

    # -- closing --------------------------------------------------------------------------

    def close(self, reason: str = "") -> None:
        """Say BYE (if registered and still connected), wait briefly for the server to close,
        and release the socket. Safe to call more than once and from any thread."""
        with self._send_lock:
            say_bye = self.welcome is not None and self._ended is None and not self._bye_sent
            self._bye_sent = True  # before the BYE leaves: the server may close at once
            if say_bye:
                with contextlib.suppress(OSError, LocalProtocolError):
                    self._sock.sendall(self._conn.send(Bye(text=reason)))
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
        receiver = self._receiver
        if receiver is threading.current_thread():
            return  # called from on_event: the receive loop closes the socket as it ends
        if receiver is not None:
            receiver.join(_CLOSE_WAIT)
            if receiver.is_alive():
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
                receiver.join(_CLOSE_WAIT)
        if receiver is None and self._ended is None:
            self._ended = Disconnected(EndCause.BYE, "closed before registration")
        self._sock.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _address(sock: socket.socket) -> str:
    try:
        host, port, *_ = sock.getpeername()
    except OSError:
        return "the peer"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
