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

This module opens, registers, sends and closes; the receive thread is a :class:`Receiver`
(``receiving.py``), reached only through its public methods, and :class:`Request` is a
``concurrent.futures.Future`` (``request.py``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

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
    Rooms,
    Roster,
    Send,
    UnknownFrame,
    Welcome,
    Who,
)

from .errors import (
    ClientTimeout,
    ConnectFailed,
    ConnectionClosed,
    Disconnected,
    InvalidRequest,
    NickRefused,
    NotChatwireServer,
    ServerError,
    describe_os_error,
)
from .receiving import EventCallback, Receiver, ServerEvent
from .request import Request

__all__ = ["ChatClient", "EventCallback", "Request", "ServerEvent"]

T = TypeVar("T")
#: How long close() waits for the server to close after BYE before giving up on it.
_CLOSE_WAIT = 2.0


class ChatClient:
    """One chatwire/1 session: :meth:`connect`, or :meth:`open` then :meth:`register`."""

    def __init__(
        self, sock: socket.socket, on_event: EventCallback | None = None, timeout: float = 10.0
    ) -> None:
        self._sock = sock
        self._peer = _address(sock)
        self._timeout = timeout
        self._conn = Connection(Role.CLIENT)
        self._send_lock = threading.Lock()
        self._receiver = Receiver(sock, self._conn, self._write_quietly, on_event)
        self._bye_sent = False
        self.welcome: Welcome | None = None

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
        receiver = self._receiver
        self._sock.settimeout(self._timeout)
        try:
            self._sock.sendall(self._encode(Hello(nick=nick, caps=caps)))
            early: list[Event | UnknownFrame] = []
            answer = receiver.read_sync()
            if isinstance(answer, Error):
                if answer.code in (ErrorCode.NICK_IN_USE, ErrorCode.NICK_INVALID):
                    raise NickRefused(nick, answer)
                self._conn.close()
                raise ServerError(answer)
            assert isinstance(answer, Welcome)  # Connection admits nothing else here
            self.welcome = answer
            receiver.registered(answer)
            while not answer.caps & Capability.QUIET and receiver.welcome_roster is None:
                event = receiver.read_sync()
                if isinstance(event, Roster) and event.room == answer.room:
                    receiver.take_roster(event)
                else:
                    early.append(event)
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
        receiver.start(early, f"chatwire-recv-{nick}")
        return answer

    # -- what we know, and what arrives ---------------------------------------------------

    @property
    def nick(self) -> str:
        if self.welcome is None:
            raise ConnectionClosed("not registered")
        return self.welcome.nick

    @property
    def welcome_roster(self) -> Roster | None:
        """The members of the default room at registration (None when QUIET was granted)."""
        return self._receiver.welcome_roster

    @property
    def joined_rooms(self) -> tuple[str, ...]:
        """The rooms we are a member of, as far as the server has told us (sorted)."""
        return self._receiver.joined_rooms

    @property
    def ended(self) -> Disconnected | None:
        """Why the session ended, or None while it is alive."""
        return self._receiver.ended

    def next_event(self, timeout: float | None = None) -> ServerEvent:
        """The next event; the last one is :class:`Disconnected`, after which this raises
        ConnectionClosed. Raises ClientTimeout if none arrives within ``timeout`` seconds."""
        return self._receiver.next_event(timeout)

    def events(self, timeout: float | None = None) -> Iterator[ServerEvent]:
        """Every event until (and including) :class:`Disconnected`, or until ``timeout``
        seconds pass without one: then the iteration simply ends (the session goes on, and
        a later call carries on where this one stopped)."""
        return self._receiver.events(timeout)

    def pending_events(self) -> list[ServerEvent]:
        """The events received so far and not yet taken, without waiting."""
        return self._receiver.pending_events()

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
        token, arrived = self._receiver.barrier_token()
        try:
            self._write(Ping(token=token))
            if not arrived.wait(timeout):
                raise ClientTimeout(f"no PONG within {timeout} s")
        finally:
            answered = self._receiver.barrier_answered(token)
        if not answered:  # only the end wakes a barrier without its PONG
            self._receiver.raise_if_ended()

    def _request(self, event: Event, request: Request[T]) -> Request[T]:
        self._write(event, request)
        return request

    def _encode(self, event: Event) -> bytes:
        try:
            data = self._conn.send(event)
        except LocalProtocolError as exc:
            self._receiver.raise_if_ended()
            raise InvalidRequest(str(exc)) from None  # e.g. longer than max_frame (§3.2)
        return data

    def _write(self, event: Event, request: Request[Any] | None = None) -> None:
        with self._send_lock:
            self._receiver.raise_if_ended()
            if self._bye_sent or self.welcome is None:
                raise ConnectionClosed(
                    "the session is closed" if self._bye_sent else "not registered"
                )
            data = self._encode(event)
            if request is not None:
                self._receiver.expect(request)  # raises if it ended while we encoded
            else:
                self._receiver.raise_if_ended()
            try:
                self._sock.sendall(data)
            except OSError as exc:
                raise ConnectionClosed(f"cannot send: {describe_os_error(exc)}") from None

    def _write_quietly(self, event: Event) -> None:
        """Answer PINGs from the receive thread; the session's end is reported elsewhere."""
        with self._send_lock:
            if self._bye_sent or self._receiver.ended is not None:
                return
            with contextlib.suppress(OSError, LocalProtocolError):
                self._sock.sendall(self._conn.send(event))

    # -- closing --------------------------------------------------------------------------

    def close(self, reason: str = "") -> None:
        """Say BYE (if registered and still connected), wait briefly for the server to close,
        and release the socket. Safe to call more than once and from any thread."""
        receiver = self._receiver
        with self._send_lock:
            say_bye = self.welcome is not None and receiver.ended is None and not self._bye_sent
            self._bye_sent = receiver.closing = True  # before BYE leaves: it may close at once
            if say_bye:
                with contextlib.suppress(OSError, LocalProtocolError):
                    self._sock.sendall(self._conn.send(Bye(text=reason)))
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
        if receiver.in_receive_thread():
            return  # called from on_event: the receive loop closes the socket as it ends
        if not receiver.started:
            receiver.closed_unregistered()
        elif not receiver.join(_CLOSE_WAIT):
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            receiver.join(_CLOSE_WAIT)
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
