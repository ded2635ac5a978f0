"""Per-client bounded output (§12), written by the shared flusher (``reference.flusher``).

``Outbox.push`` never blocks: it appends bytes and counts them as pending output. The flusher
writes everything queued for a client with a single ``os.write`` (the batching that makes
fan-out cheap: one system call per client per round, not one per message).

Congestion (§12.1) is pending output above ``out_limit``; the flusher's watchdog cuts a client
congested for ``slow_timeout`` (§12.2). Senders consult :class:`Congestion` after each accepted
message and wait while a member of the room is congested (§12.3); the check is O(1) when
nothing is congested.

File-descriptor safety: the session seals its outbox before closing the socket; sealing waits
out a write in progress, and the flusher never touches a sealed outbox's socket, so it can never
write to a descriptor number that was closed and reused.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Container
from typing import Protocol

log = logging.getLogger("reference.server")


class OutputStopped(enum.Enum):
    """Why an outbox stopped writing before its session ended."""

    CUT = "cut"  #: a slow consumer, cut by the watchdog (§12.2)
    BROKEN = "broken"  #: a write to the socket failed


class Congestion:
    """The set of congested outboxes and the condition senders wait on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.congested: set[Outbox] = set()
        #: Congestion episodes so far (§12.1), for tests and statistics.
        self.episodes = 0

    def mark(self, outbox: Outbox) -> None:
        with self.cond:
            self.congested.add(outbox)
            self.episodes += 1

    def clear(self, outbox: Outbox) -> None:
        with self.cond:
            if outbox in self.congested:
                self.congested.discard(outbox)
                self.cond.notify_all()

    def any_member_congested(self, members: Container[object]) -> bool:
        if not self.congested:  # the common case, without a lock
            return False
        return any(o.owner in members for o in list(self.congested))

    def wait_while(
        self, blocked: Callable[[], bool], deadline: float, abort: Callable[[], bool]
    ) -> bool:
        """Wait until ``blocked()`` is false; False if the deadline passed or ``abort()``."""
        with self.cond:
            while blocked():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or abort():
                    return False
                self.cond.wait(remaining)
        return True

    def wake_all(self) -> None:
        with self.cond:
            self.cond.notify_all()


class Scheduler(Protocol):
    """What an outbox needs of the flusher that writes it (``reference.flusher.Flusher``)."""

    @property
    def congestion(self) -> Congestion: ...

    def schedule(self, outbox: Outbox) -> None:
        """Write ``outbox`` in the next round (it has bytes queued and none in flight)."""

    def unregister(self, outbox: Outbox, closing: bool = False) -> None:
        """Forget ``outbox``: it is sealed and its socket no longer written."""

    def poke(self) -> None:
        """Wake the flusher thread now (its watchdog has a new deadline to keep)."""


class Outbox:
    """One client's pending output. ``push`` may be called from any thread.

    Two sides: the session and the hub push (``push``, ``push_final``, ``wait_flushed``,
    ``seal``); the flusher thread alone calls ``write_queued``, ``writable`` and ``cut``.

    Slotted and lean (a list, a lock, a condition made only when someone waits): there is one
    per client, and the reference server aims at 15,000 clients in 20 KB each."""

    __slots__ = (
        "_blocked",
        "_chunks",
        "_cond",
        "_final",
        "_flusher",
        "_lock",
        "_room_seen",
        "_scheduled",
        "_sealed",
        "_waiters",
        "_writing",
        "congested_since",
        "failed",
        "fd",
        "limit",
        "owner",
        "pending",
        "relieved_at",
        "sock",
    )

    def __init__(self, sock: socket.socket, flusher: Scheduler, limit: int, owner: object) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.owner = owner
        self.limit = limit
        self._flusher = flusher
        self._lock = threading.Lock()
        self._cond: threading.Condition | None = None  # made by the first waiter
        self._chunks: list[bytes | memoryview] = []
        self.pending = 0
        self._scheduled = False  # the flusher owes this outbox a write (queued or blocked)
        self._blocked = False  # the socket was full: wait for EPOLLOUT
        self._writing = False
        self._room_seen = False  # EPOLLOUT came during a write in flight
        self._sealed = False  # no more writes: the session owns the socket again
        self._final = False  # the last frame is queued: push() drops anything more
        self._waiters = 0
        self.congested_since: float | None = None
        #: When the last congestion episode ended without a cut (§10.2 KEEP-10: activity).
        self.relieved_at = 0.0
        #: Why output stopped early; None while it has not.
        self.failed: OutputStopped | None = None

    @property
    def congested(self) -> bool:
        return self.congested_since is not None

    def push(self, data: bytes) -> None:
        with self._lock:
            if self._final or self.failed is not None:
                return
            self._chunks.append(data)
            self.pending += len(data)
            newly_congested = self.pending > self.limit and self.congested_since is None
            if newly_congested:
                self.congested_since = time.monotonic()
                self._flusher.congestion.mark(self)
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            self._flusher.schedule(self)
        if newly_congested:  # the watchdog's clock starts now: the flusher must know (§12.2)
            self._flusher.poke()

    def push_final(self, data: bytes, drop_backlog: bool = False) -> None:
        """Queue the last frame (a fatal ERROR, §11.2): nothing is queued after it, and the
        flusher shuts the sending direction down once it is written. Idempotent.

        ``drop_backlog``: the frame goes right after the one now going out, and whatever was
        queued behind that is dropped (at shutdown, so that a client that cannot read its
        backlog by the deadline still gets the ERROR)."""
        with self._lock:
            if self._final or self.failed is not None:
                return
            if drop_backlog and self._chunks:
                head = self._chunks[0]  # a memoryview: a chunk cut short, its frames half out
                keep: list[bytes | memoryview] = [head] if isinstance(head, memoryview) else []
                self.pending -= sum(map(len, self._chunks)) - sum(map(len, keep))
                self._chunks = keep
            self._chunks.append(data)
            self.pending += len(data)
            self._final = True
            relieved = self.congested_since is not None and self.pending <= self.limit
            scheduled, self._scheduled = self._scheduled, True
        if relieved:
            self._uncongest()
        if not scheduled:
            self._flusher.schedule(self)

    def _wait(self, done: Callable[[], bool], deadline: float | None) -> bool:
        """With the lock held: wait until ``done()``; False if the deadline passed."""
        if self._cond is None:
            self._cond = threading.Condition(self._lock)
        self._waiters += 1
        try:
            while not done():
                if deadline is None:
                    self._cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        finally:
            self._waiters -= 1
        return True

    def wait_flushed(self, deadline: float) -> bool:
        """Wait until everything pushed has been handed to the kernel (or output failed)."""
        with self._lock:
            return self._wait(
                lambda: not (self._chunks or self._writing) or self.failed is not None, deadline
            )

    def seal(self, closing: bool = False) -> None:
        """Stop all output for good and return once the flusher cannot touch the socket.
        ``closing``: the caller closes the socket next (so the flusher need not unregister
        it from epoll)."""
        with self._lock:
            self._sealed = self._final = True
            self._chunks.clear()
            if self._writing:
                self._wait(lambda: not self._writing, None)
        self._uncongest()
        self._flusher.unregister(self, closing)

    def _notify(self) -> None:
        """With the lock held: wake whoever waits on this outbox."""
        if self._waiters and self._cond is not None:
            self._cond.notify_all()

    # -- flusher side: called by the flusher thread only ---------------------------------

    def write_queued(self) -> bool:
        """Write everything queued in one call. True if more was queued meanwhile (schedule
        again); False once the queue is empty, the socket is full (wait for
        :meth:`writable`), or output has stopped."""
        with self._lock:
            if self._sealed or self.failed is not None or not self._chunks:
                self._scheduled = False
                return False
            chunks = self._chunks
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._chunks = []
            self._writing = True
            self._room_seen = False
            last = self._final
        try:  # the last frame: FIN follows at once, so let it leave in the same segment
            written = self.sock.send(data, socket.MSG_MORE) if last else os.write(self.fd, data)
        except BlockingIOError:
            written = 0
        except OSError:
            written = -1
        with self._lock:
            self._writing = False
            if written < 0:
                self.failed = OutputStopped.BROKEN
                self._chunks = []
                self.pending = 0
                self._scheduled = False
            else:
                self.pending -= written
                if written < len(data):
                    self._chunks[:0] = _unsent(chunks, written)
                    # Wait for EPOLLOUT, unless it came while we wrote (a handler thread
                    # writing behind): then it will not come again, so write once more.
                    self._blocked = not self._room_seen
                elif not self._chunks:
                    self._scheduled = False
                    if self._final:  # the fatal ERROR is out: FIN now (§11.3)
                        with contextlib.suppress(OSError):
                            self.sock.shutdown(socket.SHUT_WR)
            again = self._scheduled and not self._blocked
            relieved = self.congested_since is not None and self.pending <= self.limit
            self._notify()
        if relieved or written < 0:
            self._uncongest()
        return again

    def writable(self) -> bool:
        """EPOLLOUT fired: True if a blocked write should be retried."""
        with self._lock:
            if self._writing:  # another thread's write is in flight: it retries (see above)
                self._room_seen = True
                return False
            if not self._blocked:
                return False
            self._blocked = False
            return True

    def cut(self, farewell: bytes) -> None:
        """§12.2: a best-effort ERROR (no waiting for it), then shut the socket so the
        session's reader wakes up and ends the session."""
        with self._lock:
            if self._sealed or self.failed is not None or self._final:
                # A fatal ERROR is queued already: it is the last frame (ERR-4), and the
                # session's own close (or shutdown's linger) has its own deadline.
                return
            self.failed = OutputStopped.CUT
            self._chunks.append(farewell)
            data = b"".join(self._chunks)
            self._chunks = []
            self.pending = 0
            with contextlib.suppress(OSError):
                os.write(self.fd, data)
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self._notify()
        self._uncongest()

    def _uncongest(self) -> None:
        with self._lock:
            if self.congested_since is None:
                return
            self.congested_since = None
            self.relieved_at = time.monotonic()
        self._flusher.congestion.clear(self)


def _unsent(chunks: list[bytes | memoryview], written: int) -> list[bytes | memoryview]:
    """What is left of ``chunks`` once their first ``written`` bytes went out. Only the first
    piece can be a chunk cut short (a memoryview), every other one is as pushed: whole
    frames, so the backlog can be dropped without cutting a frame (``push_final``)."""
    for index, chunk in enumerate(chunks):
        if written < len(chunk):
            rest = chunks[index + 1 :]
            return [memoryview(chunk)[written:], *rest] if written else chunks[index:]
        written -= len(chunk)
    return []
