"""Per-client bounded output and the shared flusher thread that writes it (§12).

``Outbox.push`` never blocks: it appends bytes and counts them as pending output. One flusher
thread writes every client's queued bytes with a single ``os.write`` of everything queued
(the batching that makes fan-out cheap: one system call per client per round, not one per
message), and waits for EPOLLOUT (edge-triggered, registered once) when a socket is full.

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
import logging
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Container

log = logging.getLogger("reference.server")

_EPOLLOUT_EDGE = select.EPOLLOUT | select.EPOLLET


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


class Outbox:
    """One client's pending output. ``push`` may be called from any thread."""

    def __init__(self, sock: socket.socket, flusher: Flusher, limit: int, owner: object) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.owner = owner
        self.limit = limit
        self._flusher = flusher
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._chunks: deque[bytes | memoryview] = deque()
        self.pending = 0
        self._scheduled = False  # the flusher owes this outbox a write (queued or blocked)
        self._blocked = False  # the socket was full: wait for EPOLLOUT
        self._writing = False
        self._sealed = False  # no more writes: the session owns the socket again
        self._waiters = 0
        self.congested_since: float | None = None
        #: Why output stopped early: "cut" (slow consumer) or "broken" (write failed).
        self.failed: str | None = None

    @property
    def congested(self) -> bool:
        return self.congested_since is not None

    def push(self, data: bytes) -> None:
        with self._lock:
            if self._sealed or self.failed:
                return
            self._chunks.append(data)
            self.pending += len(data)
            if self.pending > self.limit and self.congested_since is None:
                self.congested_since = time.monotonic()
                self._flusher.congestion.mark(self)
            if self._scheduled:
                return
            self._scheduled = True
        self._flusher.schedule(self)

    def wait_flushed(self, deadline: float) -> bool:
        """Wait until everything pushed has been handed to the kernel (or output failed)."""
        with self._cond:
            self._waiters += 1
            try:
                while (self._chunks or self._writing) and not self.failed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
            finally:
                self._waiters -= 1
        return True

    def seal(self) -> None:
        """Stop all output for good and return once the flusher cannot touch the socket."""
        with self._cond:
            self._sealed = True
            self._chunks.clear()
            self._waiters += 1
            while self._writing:
                self._cond.wait()
            self._waiters -= 1
        self._uncongest()
        self._flusher.unregister(self)

    # -- flusher side -------------------------------------------------------------------

    def _flush(self) -> bool:
        """Write everything queued in one call. True if more was queued meanwhile."""
        with self._lock:
            if self._sealed or self.failed or not self._chunks:
                self._scheduled = False
                return False
            chunks = self._chunks
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self._writing = True
        try:
            written = os.write(self.fd, data)
        except BlockingIOError:
            written = 0
        except OSError:
            written = -1
        with self._lock:
            self._writing = False
            if written < 0:
                self.failed = "broken"
                self._chunks.clear()
                self.pending = 0
                self._scheduled = False
            else:
                self.pending -= written
                if written < len(data):
                    self._chunks.appendleft(memoryview(data)[written:])
                    self._blocked = True
                elif not self._chunks:
                    self._scheduled = False
            again = self._scheduled and not self._blocked
            relieved = self.congested_since is not None and self.pending <= self.limit
            if self._waiters:
                self._cond.notify_all()
        if relieved or written < 0:
            self._uncongest()
        return again

    def _writable(self) -> bool:
        """EPOLLOUT fired: True if a blocked write should be retried."""
        with self._lock:
            if not self._blocked:
                return False
            self._blocked = False
            return True

    def _cut(self, farewell: bytes) -> None:
        """§12.2: a best-effort ERROR (no waiting for it), then shut the socket so the
        session's reader wakes up and ends the session."""
        with self._lock:
            if self._sealed or self.failed:
                return
            self.failed = "cut"
            self._chunks.append(farewell)
            data = b"".join(self._chunks)
            self._chunks.clear()
            self.pending = 0
            with contextlib.suppress(OSError):
                os.write(self.fd, data)
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            if self._waiters:
                self._cond.notify_all()
        self._uncongest()

    def _uncongest(self) -> None:
        with self._lock:
            if self.congested_since is None:
                return
            self.congested_since = None
        self._flusher.congestion.clear(self)


class Flusher:
    """The one thread that writes every outbox, cuts slow consumers, and lingers refused
    connections (write the ERROR, FIN, discard input until EOF or a deadline, close)."""

    def __init__(self, slow_timeout: float, farewell: bytes) -> None:
        self.slow_timeout = slow_timeout
        self.congestion = Congestion()
        self._farewell = farewell
        self._epoll = select.epoll()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._wake_fd, select.EPOLLIN)
        self._dirty: deque[Outbox] = deque()
        self._sleeping = False
        self._by_fd: dict[int, Outbox] = {}
        self._lingering: dict[int, tuple[socket.socket, float]] = {}
        self._linger_lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="chatwire-flusher")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake()
        if self._thread.is_alive():
            self._thread.join()
        for sock, _ in self._lingering.values():
            sock.close()
        self._lingering.clear()
        self._epoll.close()
        os.close(self._wake_fd)

    def register(self, outbox: Outbox) -> None:
        self._by_fd[outbox.fd] = outbox
        self._epoll.register(outbox.fd, _EPOLLOUT_EDGE)

    def unregister(self, outbox: Outbox) -> None:
        if self._by_fd.get(outbox.fd) is outbox:
            del self._by_fd[outbox.fd]
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(outbox.fd)

    def schedule(self, outbox: Outbox) -> None:
        self._dirty.append(outbox)
        if self._sleeping:
            self._sleeping = False
            self._wake()

    def linger(self, sock: socket.socket, deadline: float) -> None:
        """Take over a socket whose write side is shut: read and discard until EOF or the
        deadline, then close it (§11.3), without a thread of its own."""
        with self._linger_lock:
            self._lingering[sock.fileno()] = (sock, deadline)
            self._epoll.register(sock.fileno(), select.EPOLLIN)
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.eventfd_write(self._wake_fd, 1)

    def _run(self) -> None:
        dirty = self._dirty
        while True:
            for _ in range(len(dirty)):  # one round: each queued outbox once
                outbox = dirty.popleft()
                if outbox._flush():
                    dirty.append(outbox)
            now = time.monotonic()
            if self.congestion.congested:
                self._watchdog(now)
            if self._stopping and not dirty:
                return
            self._sleeping = True
            timeout = 0.0 if dirty else self._timeout(now)
            events = self._epoll.poll(timeout)
            self._sleeping = False
            for fd, _ in events:
                if fd == self._wake_fd:
                    with contextlib.suppress(BlockingIOError):
                        os.eventfd_read(fd)
                elif fd in self._lingering:
                    self._drain_lingering(fd)
                else:
                    ready = self._by_fd.get(fd)
                    if ready is not None and ready._writable():
                        dirty.append(ready)
            if self._lingering:
                self._expire_lingering(time.monotonic())

    def _timeout(self, now: float) -> float:
        """Seconds until the watchdog or a lingering deadline needs us; -1 for none."""
        due = [o.congested_since for o in list(self.congestion.congested)]
        ends = [t + self.slow_timeout for t in due if t is not None]
        ends += [deadline for _, deadline in list(self._lingering.values())]
        return max(0.0, min(ends) - now) if ends else -1

    def _watchdog(self, now: float) -> None:
        for outbox in list(self.congestion.congested):
            since = outbox.congested_since
            if since is not None and now - since >= self.slow_timeout:
                log.info("cutting slow consumer %s after %.2fs", outbox.owner, now - since)
                outbox._cut(self._farewell)

    def _drain_lingering(self, fd: int) -> None:
        sock, _ = self._lingering[fd]
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_lingering(fd)

    def _expire_lingering(self, now: float) -> None:
        for fd, (_, deadline) in list(self._lingering.items()):
            if deadline <= now:
                self._close_lingering(fd)

    def _close_lingering(self, fd: int) -> None:
        with self._linger_lock:
            sock, _ = self._lingering.pop(fd)
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)
        sock.close()
