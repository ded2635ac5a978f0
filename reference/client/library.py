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
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import queue
import select
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, cast

from spec.connection import Connection, Role
from spec.constants import Capability, ErrorCode, FrameType, LeaveReason
from spec.errors import LocalProtocolError, ProtocolError
from spec.events import (
    Ack,
    Bye,
    Deliver,
    Direct,
    Error,
    Event,
    Hello,
    Join,
    Joined,
    Leave,
    Left,
    ListRooms,
    Ping,
    Pong,
    RoomEntry,
    Rooms,
    Roster,
    Send,
    UnknownFrame,
    Welcome,
    Whisper,
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
    RequestFailed,
    ServerError,
    ServerProtocolError,
)

#: What a program receives: server events, then one :class:`Disconnected` at the end.
ServerEvent = Deliver | Ack | Whisper | Roster | Rooms | Joined | Left | Error | Disconnected
EventCallback = Callable[[ServerEvent], None]

T = TypeVar("T")
_RECV_SIZE = 65536
#: How long close() waits for the server to close after BYE before giving up on it.
_CLOSE_WAIT = 2.0


class Request(Generic[T]):
    """One request sent to the server; ``wait()`` returns its answer."""

    def __init__(self, kind: FrameType, target: str = "") -> None:
        self.kind = kind
        self.target = target
        self._done = threading.Event()
        self._answer: T | None = None
        self._failure: Exception | None = None

    def _resolve(self, answer: object) -> None:
        self._answer = cast(T, answer)
        self._done.set()

    def _fail(self, failure: Exception) -> None:
        self._failure = failure
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> T:
        """The answer; raises RequestFailed, ConnectionClosed or ClientTimeout."""
        if not self._done.wait(timeout):
            raise ClientTimeout(f"no answer to {self.kind.name} within {timeout} s")
        if self._failure is not None:
            raise self._failure
        return cast(T, self._answer)


class ChatClient:
    """One chatwire/1 session: :meth:`connect`, or :meth:`open` then :meth:`register`."""

    def __init__(
        self, sock: socket.socket, on_event: EventCallback | None = None, timeout: float = 10.0
    ) -> None:
        self._sock = sock
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
            raise ConnectFailed(f"cannot connect to {host}:{port}: {_reason(exc)}") from None
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

        Raises ConnectFailed, NickRefused, ServerError, ConnectionClosed, ServerProtocolError.
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
            raise ServerProtocolError(f"during the handshake: {exc}") from None
        except OSError as exc:
            raise ConnectionClosed(
                f"connection lost during the handshake: {_reason(exc)}"
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
            data = self._sock.recv(_RECV_SIZE)
            if not data:
                raise ConnectionClosed("the server closed the connection during the handshake")
            self._conn.receive_data(data)

    # -- what we know ---------------------------------------------------------------------

    @property
    def nick(self) -> str:
        if self.welcome is None:
            raise ConnectionClosed("not registered")
        return self.welcome.nick

    @property
    def joined_rooms(self) -> tuple[str, ...]:
        """The rooms we are a member of, as far as the server has told us (sorted)."""
        with self._pending_lock:
            return tuple(sorted(self._joined.values()))

    @property
    def ended(self) -> Disconnected | None:
        """Why the session ended, or None while it is alive."""
        return self._ended

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
                raise ConnectionClosed(f"cannot send: {_reason(exc)}") from None

    # -- receiving ------------------------------------------------------------------------

    def next_event(self, timeout: float | None = None) -> ServerEvent:
        """The next event; the last one is :class:`Disconnected`, after which this raises
        ConnectionClosed. Raises ClientTimeout if none arrives within ``timeout`` seconds."""
        if self._on_event is not None:
            raise InvalidRequest("events go to on_event in this client")
        if self._end_taken and self._events.empty():
            assert self._ended is not None
            raise ConnectionClosed(self._ended.describe(), self._ended)
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            raise ClientTimeout(f"no event within {timeout} s") from None
        if isinstance(event, Disconnected):
            self._end_taken = True
        return event

    def events(self, timeout: float | None = None) -> Iterator[ServerEvent]:
        """Every event until (and including) :class:`Disconnected`; each must arrive within
        ``timeout`` seconds of the previous one, or ClientTimeout is raised."""
        while not self._end_taken:
            yield self.next_event(timeout)

    def pending_events(self) -> list[ServerEvent]:
        """The events received so far and not yet taken, without waiting."""
        taken: list[ServerEvent] = []
        while not self._events.empty():
            taken.append(self.next_event(0))
        return taken

    def _receive_loop(self, early: list[Event | UnknownFrame]) -> None:
        assert self.welcome is not None
        idle_ms = self.welcome.idle_timeout_ms
        silence_limit = idle_ms / 2000 if idle_ms else None
        pinged_for_silence = False
        try:
            for event in early:
                self._dispatch(event)
            while True:
                readable, _, _ = select.select([self._sock], [], [], silence_limit)
                if not readable:
                    if pinged_for_silence:
                        self._end(EndCause.LOST, f"the server was silent for {idle_ms} ms")
                        return
                    pinged_for_silence = True
                    self._write_quietly(Ping(token=next(self._tokens)))
                    continue
                pinged_for_silence = False
                try:
                    data = self._sock.recv(_RECV_SIZE)
                except OSError as exc:
                    self._end(EndCause.LOST, _reason(exc))
                    return
                if not data:
                    if self._bye_sent:
                        self._end(EndCause.BYE, "closed after BYE")
                    else:
                        self._end(EndCause.LOST, "the server closed the connection")
                    return
                self._conn.receive_data(data)
                while (received := self._conn.next_event()) is not None:
                    if isinstance(received, Error) and received.fatal:
                        self._end(EndCause.SERVER_ERROR, received.text, received)
                        return
                    self._dispatch(received)
        except ProtocolError as exc:
            self._end(EndCause.PROTOCOL, f"{exc.code.name}: {exc.detail}")
        except ConnectionClosed as exc:
            self._end(EndCause.LOST, str(exc))
        except Exception as exc:  # a bug, or the program's on_event raised: end cleanly anyway
            self._end(EndCause.LOST, f"receive thread failed: {exc!r}")
            raise
        finally:
            if self._bye_sent and self._ended is not None:
                self._sock.close()  # close() was called from on_event, or has given up on us

    def _write_quietly(self, event: Event) -> None:
        """Answer PINGs from the receive thread; the session's end is reported elsewhere."""
        with self._send_lock:
            if self._bye_sent or self._ended is not None:
                return
            with contextlib.suppress(OSError, LocalProtocolError):
                self._sock.sendall(self._conn.send(event))

    def _dispatch(self, event: Event | UnknownFrame) -> None:
        if isinstance(event, UnknownFrame):
            return  # §15.1: clients ignore types they do not know.
        if isinstance(event, Ping):
            self._write_quietly(Pong(token=event.token))
            return
        if isinstance(event, Pong):
            with self._pending_lock:
                waiter = self._barriers.get(event.token)
                if waiter is not None:
                    self._ponged.add(event.token)
            if waiter is not None:
                waiter.set()
            return
        if isinstance(event, Roster):
            whole = self._collect_roster(event)
            if whole is None:
                return
            self._answer(whole, FrameType.JOIN, FrameType.WHO)
            self._emit(whole)
            return
        if isinstance(event, Rooms):
            self._partial_rooms.extend(event.rooms)
            if event.more:
                return
            whole_rooms = Rooms(rooms=tuple(self._partial_rooms))
            self._partial_rooms = []
            self._answer(whole_rooms, FrameType.LIST)
            self._emit(whole_rooms)
            return
        if isinstance(event, Ack):
            self._answer(event, FrameType.SEND, FrameType.DIRECT)
        elif isinstance(event, Left) and fold(event.nick) == fold(self.nick):
            with self._pending_lock:
                self._joined.pop(fold(event.room), None)
            if event.reason == LeaveReason.PART:
                self._answer(event, FrameType.LEAVE)
        elif isinstance(event, Error):
            self._fail_head(event)
        if isinstance(event, Deliver | Ack | Whisper | Joined | Left | Error):
            self._emit(event)

    def _collect_roster(self, part: Roster, welcome: bool = False) -> Roster | None:
        members = self._partial_rosters.setdefault(part.room, [])
        members.extend(part.members)
        if part.more:
            return None
        del self._partial_rosters[part.room]
        whole = Roster(room=part.room, seq=part.seq, members=tuple(members))
        me = fold(self.nick)
        with self._pending_lock:
            if any(fold(m) == me for m in members):
                self._joined[fold(part.room)] = part.room
        if welcome:
            self.welcome_roster = whole
        return whole

    def _answer(self, answer: object, *kinds: FrameType) -> None:
        with self._pending_lock:
            if not self._pending or self._pending[0].kind not in kinds:
                return  # not an answer we are waiting for (a server fault, or a stray frame)
            request = self._pending.popleft()
        request._resolve(answer)

    def _fail_head(self, error: Error) -> None:
        with self._pending_lock:
            if not self._pending or self._pending[0].kind != error.in_reply_to:
                return
            request = self._pending.popleft()
        request._fail(RequestFailed(error))

    def _emit(self, event: ServerEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)
        else:
            self._events.put(event)

    def _end(self, cause: EndCause, detail: str, error: Error | None = None) -> None:
        """Record the end once, fail whatever still waits, and tell the program."""
        # Not under the send lock: a sender may sit in sendall() until the shutdown below.
        with self._pending_lock:
            if self._ended is not None:
                return
            ended = Disconnected(cause, detail, error)
            self._ended = ended
            self._conn.close()
            pending, self._pending = list(self._pending), collections.deque()
            barriers = list(self._barriers.values())
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        failure = ServerError(error) if error is not None else None
        for request in pending:
            request._fail(failure or ConnectionClosed(ended.describe(), ended))
        for waiter in barriers:
            waiter.set()
        self._emit(ended)

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


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
