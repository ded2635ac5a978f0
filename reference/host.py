"""What a session needs of the server that runs it, as small interfaces (``typing.Protocol``),
so ``session.py`` and ``handling.py`` depend on these and not on ``reference.server`` (which
depends on them): the server implements :class:`SessionHost`, its config
:class:`SessionConfig`, and tests may pass anything else that does.
"""

from __future__ import annotations

import functools
import queue
import socket
from collections.abc import Callable
from typing import Protocol

from .ending import Ending
from .flusher import Flusher
from .hubapi import RoomHub
from .outbox import Congestion, Outbox


class Turns:
    """A counting semaphore whose ``acquire`` and ``release`` are single C calls (the get and
    put of a ``queue.SimpleQueue`` holding one token per turn): a handler thread takes and gives
    up a turn for every read, and ``threading.Semaphore``'s Python-level condition cost about
    1.1 µs a pair, this about 150 ns. A waiter blocks in C, off the GIL, like the semaphore's."""

    __slots__ = ("acquire", "release")

    def __init__(self, count: int) -> None:
        tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(count):
            tokens.put(None)
        self.acquire: Callable[[], None] = tokens.get
        self.release: Callable[[], None] = functools.partial(tokens.put, None)


class SessionConfig(Protocol):
    """The limits and timers a session applies (``reference.server.ServerConfig``)."""

    @property
    def max_frame(self) -> int: ...
    @property
    def max_text(self) -> int: ...
    @property
    def max_rooms(self) -> int: ...
    @property
    def out_limit(self) -> int: ...
    @property
    def idle_timeout(self) -> float: ...
    @property
    def handshake_timeout(self) -> float: ...
    @property
    def slow_timeout(self) -> float: ...
    @property
    def drain_time(self) -> float: ...
    @property
    def rate(self) -> int: ...
    @property
    def effective_burst(self) -> int: ...


class SessionHost(Protocol):
    """The server, as its sessions see it."""

    @property
    def config(self) -> SessionConfig: ...
    @property
    def hub(self) -> RoomHub: ...
    @property
    def flusher(self) -> Flusher: ...
    @property
    def congestion(self) -> Congestion: ...

    @property
    def closing(self) -> bool:
        """True once shutdown has begun: act on nothing more."""

    @property
    def turns(self) -> Turns:
        """A turn to read and handle frames (few at once: see ``Server.turns``)."""

    @property
    def ending_turns(self) -> Turns:
        """A turn to end a session (few at once, apart from ``turns``)."""

    def stop_requested(self) -> bool:
        """Whether shutdown has begun or was asked for; a busy thread asks now and then."""

    @property
    def shutdown_ending(self) -> Ending:
        """How every session ends at shutdown (one immutable value for all)."""

    def next_wake_fd(self) -> int:
        """The eventfd a new session's thread polls besides its socket (shutdown wakes it)."""

    def deadline(self, seconds: float) -> float:
        """``seconds`` from now, but never past the shutdown deadline."""

    def hand_over(self, sock: socket.socket, outbox: Outbox) -> None:
        """At shutdown: the flusher writes what ``outbox`` holds, then FIN, drain, close."""

    def session_ended(self, session: object) -> None:
        """The session's thread is about to end; it holds nothing any more."""
