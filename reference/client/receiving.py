"""The receive side of a :class:`~reference.client.library.ChatClient`: a :class:`Receiver`.

One thread reads frames through ``spec.Connection(Role.CLIENT)``, answers the server's PINGs
itself, pairs answers with the requests that caused them (see ``request.py``), joins ROSTER
and ROOMS split over several frames (``more`` = 1) into one event, and hands every other event
to the program: on a queue (``next_event`` / ``events``) or by calling ``on_event`` in this
thread. Every way the session ends goes through :meth:`Receiver.end`, once.

The client talks to it through a small API: ``read_sync``/``registered``/``take_roster``
during the handshake, ``start`` once registered, ``expect`` for each request it sends,
``barrier_token``/``barrier_answered`` for PING barriers, and ``closing`` once BYE is said.
Everything else here is this module's own.
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
from typing import Any

from spec.connection import Connection
from spec.constants import Capability, FrameType, LeaveReason
from spec.errors import ProtocolError
from spec.events import (
    Ack,
    Deliver,
    Error,
    Event,
    Joined,
    Left,
    Ping,
    Pong,
    RoomEntry,
    Rooms,
    Roster,
    UnknownFrame,
    Welcome,
    Whisper,
)
from spec.names import fold

from .errors import (
    ClientTimeout,
    ConnectionClosed,
    Disconnected,
    EndCause,
    InvalidRequest,
    RequestFailed,
    ServerError,
    describe_os_error,
)
from .request import Request

#: What a program receives: server events, then one :class:`Disconnected` at the end.
ServerEvent = Deliver | Ack | Whisper | Roster | Rooms | Joined | Left | Error | Disconnected
EventCallback = Callable[[ServerEvent], None]

RECV_SIZE = 65536


class Receiver:
    """The receive thread of one session and what it learns.

    ``reply`` writes a frame from the receive thread (a PONG, a PING when the server falls
    silent) and must never raise; the client owns the sending side.
    """

    def __init__(
        self,
        sock: socket.socket,
        conn: Connection,
        reply: Callable[[Event], None],
        on_event: EventCallback | None,
    ) -> None:
        self._sock = sock
        self._conn = conn
        self._reply = reply
        self._on_event = on_event
        self._events: queue.SimpleQueue[ServerEvent] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending: collections.deque[Request[Any]] = collections.deque()
        self._barriers: dict[int, threading.Event] = {}
        self._ponged: set[int] = set()
        self._tokens = itertools.count(1)
        self._partial_rosters: dict[str, list[str]] = {}
        self._partial_rooms: list[RoomEntry] = []
        self._joined: dict[str, str] = {}
        self._welcome: Welcome | None = None
        self._thread: threading.Thread | None = None
        self._ended: Disconnected | None = None
        self._end_taken = False
        #: The members of the default room at registration (None when QUIET was granted).
        self.welcome_roster: Roster | None = None
        #: We said BYE: the server closing the connection is the end we asked for.
        self.closing = False

    # -- the handshake (in the caller's thread) -------------------------------------------

    def read_sync(self) -> Event | UnknownFrame:
        """The next frame during the handshake, read in the caller's thread."""
        while True:
            event = self._conn.next_event()
            if event is not None:
                return event
            data = self._sock.recv(RECV_SIZE)
            if not data:
                raise ConnectionClosed("the server closed the connection during the handshake")
            self._conn.receive_data(data)

    def registered(self, welcome: Welcome) -> None:
        """The server's WELCOME: with QUIET no roster follows, we are in its room anyway."""
        self._welcome = welcome
        if welcome.caps & Capability.QUIET:
            with self._lock:
                self._joined[fold(welcome.room)] = welcome.room

    def take_roster(self, part: Roster) -> None:
        """A ROSTER of the default room read during the handshake."""
        whole = self._collect_roster(part)
        if whole is not None:
            self.welcome_roster = whole

    def start(self, early: list[Event | UnknownFrame], name: str) -> None:
        """Start the receive thread; ``early``: frames read during the handshake, not yet
        handled."""
        self._thread = threading.Thread(
            target=self._receive_loop, args=(early,), name=name, daemon=True
        )
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def in_receive_thread(self) -> bool:
        return self._thread is threading.current_thread()

    def join(self, timeout: float) -> bool:
        """Wait for the receive thread to end; whether it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # -- requests and barriers ------------------------------------------------------------

    def expect(self, request: Request[Any]) -> None:
        """``request`` is about to be sent: pair it with its answer. Raises ConnectionClosed
        if the session has ended (nobody would answer)."""
        with self._lock:
            self._raise_if_ended()
            self._pending.append(request)

    def barrier_token(self) -> tuple[int, threading.Event]:
        """A fresh PING token and the event its PONG (or the end) sets."""
        token = next(self._tokens)
        arrived = threading.Event()
        with self._lock:
            self._barriers[token] = arrived
        return token, arrived

    def barrier_answered(self, token: int) -> bool:
        """Forget the barrier; whether its PONG came (False: the session ended first)."""
        with self._lock:
            self._barriers.pop(token, None)
            answered = token in self._ponged
            self._ponged.discard(token)
        return answered

    # -- what we know ---------------------------------------------------------------------

    @property
    def joined_rooms(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._joined.values()))

    @property
    def ended(self) -> Disconnected | None:
        return self._ended

    def raise_if_ended(self) -> None:
        with self._lock:
            self._raise_if_ended()

    def _raise_if_ended(self) -> None:
        if self._ended is not None:
            raise ConnectionClosed(self._ended.describe(), self._ended)

    def closed_unregistered(self) -> None:
        """The session is closed before it was registered: no thread, no event."""
        with self._lock:
            if self._ended is None:
                self._ended = Disconnected(EndCause.BYE, "closed before registration")

    # -- events for the program -----------------------------------------------------------

    def next_event(self, timeout: float | None = None) -> ServerEvent:
        if self._on_event is not None:
            raise InvalidRequest("events go to on_event in this client")
        if self._end_taken and self._events.empty():
            self.raise_if_ended()
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            raise ClientTimeout(f"no event within {timeout} s") from None
        if isinstance(event, Disconnected):
            self._end_taken = True
        return event

    def events(self, timeout: float | None = None) -> Iterator[ServerEvent]:
        while not self._end_taken:
            try:
                event = self.next_event(timeout)
            except ClientTimeout:
                return
            yield event

    def pending_events(self) -> list[ServerEvent]:
        taken: list[ServerEvent] = []
        while not self._events.empty():
            taken.append(self.next_event(0))
        return taken

    # -- the receive thread ---------------------------------------------------------------

    def _receive_loop(self, early: list[Event | UnknownFrame]) -> None:
        assert self._welcome is not None
        idle_ms = self._welcome.idle_timeout_ms
        silence_limit = idle_ms / 2000 if idle_ms else None
        pinged_for_silence = False
        try:
            for event in early:
                self._dispatch(event)
            while True:
                readable, _, _ = select.select([self._sock], [], [], silence_limit)
                if not readable:
                    if pinged_for_silence:
                        self.end(EndCause.LOST, f"the server was silent for {idle_ms} ms")
                        return
                    pinged_for_silence = True
                    self._reply(Ping(token=next(self._tokens)))
                    continue
                pinged_for_silence = False
                try:
                    data = self._sock.recv(RECV_SIZE)
                except OSError as exc:
                    self.end(EndCause.LOST, describe_os_error(exc))
                    return
                if not data:
                    if self.closing:
                        self.end(EndCause.BYE, "closed after BYE")
                    else:
                        self.end(EndCause.LOST, "the server closed the connection")
                    return
                self._conn.receive_data(data)
                while (received := self._conn.next_event()) is not None:
                    if isinstance(received, Error) and received.fatal:
                        self.end(EndCause.SERVER_ERROR, received.text, received)
                        return
                    self._dispatch(received)
        except ProtocolError as exc:
            self.end(EndCause.PROTOCOL, f"{exc.code.name}: {exc.detail}")
        except ConnectionClosed as exc:
            self.end(EndCause.LOST, str(exc))
        except Exception as exc:  # a bug, or the program's on_event raised: end cleanly anyway
            self.end(EndCause.LOST, f"receive thread failed: {exc!r}")
            raise
        finally:
            if self.closing and self._ended is not None:
                self._sock.close()  # close() was called from on_event, or has given up on us

    def _dispatch(self, event: Event | UnknownFrame) -> None:
        match event:
            case UnknownFrame():
                return  # §15.1: clients ignore types they do not know.
            case Ping(token):
                self._reply(Pong(token=token))
            case Pong(token):
                with self._lock:
                    waiter = self._barriers.get(token)
                    if waiter is not None:
                        self._ponged.add(token)
                if waiter is not None:
                    waiter.set()
            case Roster():
                whole = self._collect_roster(event)
                if whole is not None:
                    self._answer(whole, FrameType.JOIN, FrameType.WHO)
                    self._emit(whole)
            case Rooms():
                self._partial_rooms.extend(event.rooms)
                if not event.more:
                    whole_rooms = Rooms(rooms=tuple(self._partial_rooms))
                    self._partial_rooms = []
                    self._answer(whole_rooms, FrameType.LIST)
                    self._emit(whole_rooms)
            case Ack():
                self._answer(event, FrameType.SEND, FrameType.DIRECT)
                self._emit(event)
            case Left():
                if self._welcome is not None and fold(event.nick) == fold(self._welcome.nick):
                    with self._lock:
                        self._joined.pop(fold(event.room), None)
                    if event.reason == LeaveReason.PART:
                        self._answer(event, FrameType.LEAVE)
                self._emit(event)
            case Error():
                self._fail_head(event)
                self._emit(event)
            case Deliver() | Whisper() | Joined():
                self._emit(event)
            case _:
                pass  # a frame a server does not send a registered client: Connection said so

    def _collect_roster(self, part: Roster) -> Roster | None:
        members = self._partial_rosters.setdefault(part.room, [])
        members.extend(part.members)
        if part.more:
            return None
        del self._partial_rosters[part.room]
        whole = Roster(room=part.room, seq=part.seq, members=tuple(members))
        me = fold(self._welcome.nick) if self._welcome is not None else None
        with self._lock:
            if any(fold(m) == me for m in members):
                self._joined[fold(part.room)] = part.room
        return whole

    def _answer(self, answer: object, *kinds: FrameType) -> None:
        with self._lock:
            if not self._pending or self._pending[0].kind not in kinds:
                return  # not an answer we are waiting for (a server fault, or a stray frame)
            request = self._pending.popleft()
        request.set_result(answer)

    def _fail_head(self, error: Error) -> None:
        with self._lock:
            if not self._pending or self._pending[0].kind != error.in_reply_to:
                return
            request = self._pending.popleft()
        request.set_exception(RequestFailed(error))

    def _emit(self, event: ServerEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)
        else:
            self._events.put(event)

    def end(self, cause: EndCause, detail: str, error: Error | None = None) -> None:
        """Record the end once, fail whatever still waits, and tell the program."""
        # Not under the send lock: a sender may sit in sendall() until the shutdown below.
        with self._lock:
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
            request.set_exception(failure or ConnectionClosed(ended.describe(), ended))
        for waiter in barriers:
            waiter.set()
        self._emit(ended)
