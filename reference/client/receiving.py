"""The receive side of :class:`~reference.client.library.ChatClient`: its receive thread.

One thread reads frames through ``spec.Connection(Role.CLIENT)``, answers the server's PINGs
itself, pairs answers with the requests that caused them (see ``request.py``), joins ROSTER
and ROOMS split over several frames (``more`` = 1) into one event, and hands every other event
to the program: on a queue (``next_event`` / ``events``) or by calling ``on_event`` in this
thread. Every way the session ends goes through :meth:`Receiving._end`, once.
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

from spec.connection import Connection
from spec.constants import FrameType, LeaveReason
from spec.errors import LocalProtocolError, ProtocolError
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


class Receiving:
    """The receive thread and what it learns; the attributes are set up by ChatClient."""

    _sock: socket.socket
    _conn: Connection
    _on_event: EventCallback | None
    _events: queue.SimpleQueue[ServerEvent]
    _send_lock: threading.Lock
    _pending_lock: threading.Lock
    _pending: collections.deque[Request[object]]
    _barriers: dict[int, threading.Event]
    _ponged: set[int]
    _tokens: itertools.count[int]
    _partial_rosters: dict[str, list[str]]
    _partial_rooms: list[RoomEntry]
    _joined: dict[str, str]
    _bye_sent: bool
    _ended: Disconnected | None
    _end_taken: bool
    welcome: Welcome | None
    welcome_roster: Roster | None

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
        """Every event until (and including) :class:`Disconnected`, or until ``timeout``
        seconds pass without one: then the iteration simply ends (the session goes on, and
        a later call carries on where this one stopped)."""
        while not self._end_taken:
            try:
                event = self.next_event(timeout)
            except ClientTimeout:
                return
            yield event

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
                    data = self._sock.recv(RECV_SIZE)
                except OSError as exc:
                    self._end(EndCause.LOST, describe_os_error(exc))
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
        request.set_result(answer)

    def _fail_head(self, error: Error) -> None:
        with self._pending_lock:
            if not self._pending or self._pending[0].kind != error.in_reply_to:
                return
            request = self._pending.popleft()
        request.set_exception(RequestFailed(error))

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
            request.set_exception(failure or ConnectionClosed(ended.describe(), ended))
        for waiter in barriers:
            waiter.set()
        self._emit(ended)
