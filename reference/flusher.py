"""The one thread that writes every client's output, cuts slow consumers, and closes sockets
handed over to it.

Writing: outboxes with queued bytes wait in ``_dirty``; each round writes each of them once
(everything it has queued, one call). A socket that was full is retried on EPOLLOUT, which is
registered edge-triggered once per socket, so a full socket costs no system call until the
kernel has room again. Pushing never makes a system call unless the flusher is asleep.

Writing behind (``begin_write_behind``): a handler thread that has just read a client's frames
writes the outboxes its own pushes made dirty itself, at the end of that read, instead of
waking this thread: a small room then costs no wake-up and no thread switch per message. Only
the first ``WRITE_BEHIND_MAX`` outboxes; the rest of a big fan-out, and any socket that is
full, stay with this thread, which writes them in parallel.

Watchdog (§12.2): a client congested for ``slow_timeout`` is cut.

Lingering (§11.3): a socket handed over (a refused connection, or every session at server
shutdown) is read and discarded until EOF or its deadline after its last frame and FIN went
out, then closed, all without a thread per socket. At shutdown the handler threads hand their
sockets over and end without any I/O; the flusher then closes every socket on its own, with
deadlines kept in a heap so that no round costs time in proportion to the sockets lingering,
and at most ``DRAIN_READS`` reads per socket per round (a client flooding until it reads its
ERROR must not keep the flusher from the others).

Waking without a lock. ``schedule`` (any thread) appends to ``_dirty``, then reads
``_sleeping``; the flusher sets ``_sleeping``, then reads ``_dirty`` to choose its poll
timeout. Each side writes before it reads, and every Python-level read and write is
sequentially consistent (the GIL orders them; ``deque.append`` and ``len`` are single
operations), so at least one side sees the other's write: either the flusher sees the outbox
and does not block, or the pusher sees ``_sleeping`` and writes the eventfd, which makes the
coming (or current) ``epoll.poll`` return at once. Both seeing it costs one spare wake-up, never
a lost one. Clearing ``_sleeping`` races only with other clearings. ``linger`` always wakes
(unless wakes are deferred, whose setter pokes).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import select
import socket
import threading
import time
from collections import deque

from .outbox import Congestion, Outbox

log = logging.getLogger("reference.server")

#: Outboxes one handler thread writes itself after one read (see ``write_behind``). 32: a
#: message to a room of 16 makes 17 (16 DELIVERs and the sender's ACK); with 16, the last one
#: woke this thread for a single write per message, about a tenth of that message's CPU.
WRITE_BEHIND_MAX = 32

_EPOLLOUT_EDGE = select.EPOLLOUT | select.EPOLLET
_EPOLL_LINGER = select.EPOLLIN | select.EPOLLOUT | select.EPOLLET
_EPOLL_READABLE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR | select.EPOLLRDHUP

#: Reads (of ``DRAIN_SIZE`` bytes) from one lingering socket per round; what is left waits
#: for the next. A flooding client can have megabytes in the socket buffers: a round must not
#: stay with it.
DRAIN_READS = 2
DRAIN_SIZE = 65536


class _Lingering:
    __slots__ = ("deadline", "outbox", "serial", "sock")

    def __init__(self, sock: socket.socket, deadline: float, outbox: Outbox | None) -> None:
        self.sock, self.deadline, self.outbox = sock, deadline, outbox
        self.serial = 0  # its entry in the deadline heap


class Flusher:
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
        self._lingering: dict[int, _Lingering] = {}
        #: (deadline, serial, fd) of every lingering socket, earliest first; the entry of one
        #: closed meanwhile stays until its deadline comes up. At shutdown thousands of
        #: sockets linger: no round may cost time in proportion to their number.
        self._linger_heap: list[tuple[float, int, int]] = []
        self._serials = itertools.count(1)
        self._handed: deque[_Lingering] = deque()  # handed over, not yet taken in
        self._handed_lock = threading.Lock()  # ``linger`` against ``stop``
        #: Lingering sockets with input left after their round's reads (edge-triggered: no
        #: new event comes for it).
        self._draining: set[int] = set()
        self._discard = memoryview(bytearray(DRAIN_SIZE))  # what drained input is read into
        self._stopped = False
        self._linger_done = threading.Condition()
        self._stopping = False
        #: While set (``hold``), queueing work does not wake the thread, and sockets handed
        #: over are not taken in; ``release`` ends it. At shutdown this saves thousands of
        #: threads a system call each, and no socket's drain time starts before the flusher
        #: is free to write.
        self.deferred_wakes = False
        self._linger_cap = float("inf")
        self._thread = threading.Thread(target=self._run, name="chatwire-flusher")
        #: Thread id -> the outboxes that thread writes at the end of its block (see
        #: begin_write_behind). Only threads inside a block have an entry: no memory per
        #: idle client thread, as a threading.local would keep.
        self._behind: dict[int, list[Outbox]] = {}

    def start(self) -> None:
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def stop(self) -> None:
        """Write what is queued, stop, and close every socket still handed over."""
        self._stopping = True
        self._wake()
        if self._thread.is_alive():
            self._thread.join()
        with self._handed_lock:
            self._stopped = True
            handed = list(self._handed)
            self._handed.clear()
        for entry in handed:
            _close_now(entry)
        for fd in list(self._lingering):
            self._close_lingering(fd)
        self._linger_heap.clear()
        self._epoll.close()
        os.close(self._wake_fd)

    def register(self, outbox: Outbox) -> None:
        self._by_fd[outbox.fd] = outbox
        self._epoll.register(outbox.fd, _EPOLLOUT_EDGE)

    def unregister(self, outbox: Outbox, closing: bool = False) -> None:
        """Forget the outbox; unless its socket is about to be closed (which does the same),
        take the socket out of the epoll set."""
        if self._by_fd.get(outbox.fd) is outbox:
            del self._by_fd[outbox.fd]
            if not closing:
                with contextlib.suppress(OSError, ValueError):
                    self._epoll.unregister(outbox.fd)

    def schedule(self, outbox: Outbox) -> None:
        if self._behind:
            behind = self._behind.get(threading.get_ident())
            if behind is not None and len(behind) < WRITE_BEHIND_MAX:
                behind.append(outbox)
                return
        self._queue(outbox)

    def _queue(self, outbox: Outbox) -> None:
        self._dirty.append(outbox)
        if self._sleeping and not self.deferred_wakes:
            self._sleeping = False
            self._wake()

    def begin_write_behind(self) -> None:
        """From now on, outboxes this thread makes dirty are written by this thread, at
        :meth:`end_write_behind` (up to ``WRITE_BEHIND_MAX`` of them), not by the flusher. An
        outbox stays scheduled meanwhile, so pushes from other threads only queue behind."""
        self._behind[threading.get_ident()] = []

    def end_write_behind(self) -> None:
        """Write what this thread took on since :meth:`begin_write_behind`, and stop."""
        self.write_behind_now()
        self._behind.pop(threading.get_ident(), None)

    def write_behind_now(self) -> None:
        """Write what this thread has taken on so far (before it waits for anything)."""
        me = threading.get_ident()
        behind = self._behind.get(me)
        if not behind:
            return
        self._behind[me] = []
        for outbox in behind:
            if outbox.write_queued():  # more came meanwhile: the flusher takes it on
                self._queue(outbox)

    def poke(self) -> None:
        """Wake the thread now (the watchdog has a new deadline to keep)."""
        self._sleeping = False
        self._wake()

    def hold(self) -> None:
        """Defer wakes and the taking in of handed-over sockets until ``release``."""
        self.deferred_wakes = True

    def release(self, linger_until: float) -> None:
        """End ``hold``: wake the thread now; no socket handed over lingers past
        ``linger_until``."""
        self._linger_cap = linger_until
        self.deferred_wakes = False
        self._sleeping = False
        self._wake()

    def linger(self, sock: socket.socket, deadline: float, outbox: Outbox | None = None) -> None:
        """Take the socket over: once its last frame and FIN are out (``outbox``, if any,
        must have had ``push_final``), read and discard until EOF or ``deadline``, then close
        it. The caller must not touch the socket again. Once the flusher has stopped, the
        socket is closed at once."""
        entry = _Lingering(sock, deadline, outbox)
        with self._handed_lock:
            if not self._stopped:
                self._handed.append(entry)
                if not self.deferred_wakes:
                    self._wake()
                return
        _close_now(entry)

    def wait_lingering(self, deadline: float) -> bool:
        """Wait until every handed-over socket is closed (for shutdown)."""
        with self._linger_done:
            return self._linger_done.wait_for(
                lambda: not self._lingering and not self._handed,
                max(0.0, deadline - time.monotonic()),
            )

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.eventfd_write(self._wake_fd, 1)

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        dirty = self._dirty
        while True:
            for _ in range(len(dirty)):  # one round: each queued outbox once
                outbox = dirty.popleft()
                if outbox.write_queued():
                    dirty.append(outbox)
            if self._handed and not self.deferred_wakes:
                self._take_handed()
            for fd in list(self._draining):
                self._drain_lingering(fd)
            now = time.monotonic()
            if self.congestion.congested:
                self._watchdog(now)
            if self._linger_heap:
                self._expire_lingering(now)
            if self._stopping:  # past the deadline: what is not out now never will be
                return
            self._sleeping = True
            taking = self._handed and not self.deferred_wakes
            timeout = 0.0 if dirty or taking or self._draining else self._timeout(now)
            events = self._epoll.poll(timeout)
            self._sleeping = False
            for fd, mask in events:
                if fd == self._wake_fd:
                    with contextlib.suppress(BlockingIOError):
                        os.eventfd_read(fd)
                    continue
                ready = self._by_fd.get(fd)
                if ready is not None and mask & select.EPOLLOUT and ready.writable():
                    dirty.append(ready)
                if fd in self._lingering and mask & _EPOLL_READABLE:
                    self._drain_lingering(fd)

    def _timeout(self, now: float) -> float:
        """Seconds until the watchdog or a lingering deadline needs us; -1 for none."""
        due = [o.congested_since for o in list(self.congestion.congested)]
        ends = [t + self.slow_timeout for t in due if t is not None]
        if self._linger_heap:  # perhaps a socket closed since: then this wakes early, once
            ends.append(self._linger_heap[0][0])
        return max(0.0, min(ends) - now) if ends else -1

    def _current(self, item: tuple[float, int, int]) -> bool:
        """Whether a deadline heap entry still belongs to a lingering socket."""
        entry = self._lingering.get(item[2])
        return entry is not None and entry.serial == item[1]

    def _watchdog(self, now: float) -> None:
        for outbox in list(self.congestion.congested):
            since = outbox.congested_since
            if since is not None and now - since >= self.slow_timeout:
                log.info("cutting slow consumer %s after %.2fs", outbox.owner, now - since)
                outbox.cut(self._farewell)

    def _take_handed(self) -> None:
        while self._handed:
            with self._handed_lock:
                entry = self._handed.popleft()
            fd = entry.sock.fileno()
            self._lingering[fd] = entry
            if self._drain_lingering(fd):  # EOF already: at shutdown, most clients by now
                continue
            entry.deadline = min(entry.deadline, self._linger_cap)
            entry.serial = next(self._serials)
            heapq.heappush(self._linger_heap, (entry.deadline, entry.serial, fd))
            try:
                if entry.outbox is None:
                    self._epoll.register(fd, select.EPOLLIN)
                else:  # already registered for EPOLLOUT; MOD reports data already queued
                    self._epoll.modify(fd, _EPOLL_LINGER)
            except OSError:
                self._close_lingering(fd)

    def _drain_lingering(self, fd: int) -> bool:
        """Read and discard until EAGAIN, or ``DRAIN_READS`` times (then again next round:
        the registration is edge-triggered); at EOF close the socket and return True."""
        entry = self._lingering.get(fd)
        if entry is None:  # closed since it was marked for draining
            self._draining.discard(fd)
            return True
        for _ in range(DRAIN_READS):
            try:
                got = entry.sock.recv_into(self._discard)
            except BlockingIOError:
                self._draining.discard(fd)
                return False
            except OSError:
                got = 0
            if not got:
                self._close_lingering(fd)
                return True
        self._draining.add(fd)
        return False

    def _expire_lingering(self, now: float) -> None:
        heap = self._linger_heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)
            if self._current(item):
                self._close_lingering(item[2])

    def _close_lingering(self, fd: int) -> None:
        entry = self._lingering.pop(fd)
        self._draining.discard(fd)
        # Closing the socket's only descriptor takes it out of the epoll set as well.
        _close_now(entry)
        if not self._lingering and not self._handed:
            with self._linger_done:
                self._linger_done.notify_all()


def _close_now(entry: _Lingering) -> None:
    if entry.outbox is not None:
        entry.outbox.seal(closing=True)
    entry.sock.close()
