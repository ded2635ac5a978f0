"""The server: listener, accept loop, session threads, shutdown.

Threads: one accept thread, one flusher (``reference.outbox``), one handler thread per
connection. Handler threads are recorded before they start, so ``shutdown`` can join every
one. The accept thread waits in ``poll`` on the listener and the stop pipe, so shutdown wakes
it without touching the listener (shutting a listener down resets the connections still in
its queue; shutdown accepts those and tells them SERVER_SHUTDOWN instead). Handlers are woken
through the eventfds they poll besides their sockets, a group at a time (nothing polls on a
timer).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol

from spec.codec import error_frame
from spec.constants import ErrorCode, LeaveReason

from ..ending import Ending
from ..flusher import Flusher
from ..host import Turns
from ..hub import Hub
from ..hubapi import RoomHub
from ..outbox import Congestion, Outbox
from ..session import Session
from .admission import Admission
from .config import ServerConfig

log = logging.getLogger("reference.server")

#: Handler threads wait on one of this many eventfds, written a group at a time at shutdown.
#: Thousands of threads runnable at once take time quadratic in their number to get the GIL
#: (measured: 9000 threads: 8 s on one eventfd, 0.6 s spread over 128; 300 threads: 13 ms).
WAKE_GROUPS = 64

#: Handler threads that may read and handle frames at once (``Server.turns``).
TURNS = 4
#: Handler threads that may end their sessions at once (``Server.ending_turns``).
ENDING_TURNS = 2

#: accept() failures that mean "out of a resource right now": log, back off, go on.
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
#: accept() failures that a descriptor kept in reserve gets around (``Admission``).
_OUT_OF_DESCRIPTORS = {errno.EMFILE, errno.ENFILE}
_OUT_OF_DESCRIPTORS_FRAME = error_frame(ErrorCode.SERVER_FULL, "server out of descriptors")
#: What the oldest connection still in its handshake is told when a newer one needs its slot.
_HANDSHAKE_GIVES_WAY = error_frame(ErrorCode.HANDSHAKE_TIMEOUT, "handshake slots full: no HELLO")
#: accept() failures that concern one half-open connection only.
_TRANSIENT_ERRNOS = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EAGAIN, errno.EINTR}


class Tuning(Protocol):
    """Process-wide settings a server may be given for its shutdown (the CLI's
    ``reference.server.tuning.ProcessTuning``). A server without one changes nothing outside
    itself."""

    def begin(self) -> None:
        """Shutdown has begun: called once, from whichever thread began it."""

    def confine(self, threads: Sequence[threading.Thread]) -> None:
        """These threads (and the calling one) do the rest of the shutdown."""

    def restore(self) -> None:
        """Shutdown is over: put back what ``begin`` and ``confine`` changed."""


class _NoTuning:
    def begin(self) -> None:
        pass

    def confine(self, threads: Sequence[threading.Thread]) -> None:
        pass

    def restore(self) -> None:
        pass


class Server:
    def __init__(
        self,
        config: ServerConfig | None = None,
        session_class: type[Session] = Session,
        hub_class: Callable[[int, int], RoomHub] = Hub,
        *,
        tuning: Tuning | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.tuning: Tuning = tuning or _NoTuning()
        self.config.validate()
        self.session_class = session_class
        self.hub = hub_class(self.config.max_frame, self.config.max_rooms)
        farewell = error_frame(ErrorCode.SLOW_CONSUMER, "output not read in time")
        self.flusher = Flusher(self.config.slow_timeout, farewell)
        self.shutdown_frame = error_frame(ErrorCode.SERVER_SHUTDOWN, "server shutting down")
        self.shutdown_ending = Ending(
            LeaveReason.SHUTDOWN, self.shutdown_frame, notify=False, detail="server shutdown"
        )
        self.congestion: Congestion = self.flusher.congestion
        self.wake_fds: list[int] = []
        self._accepted = 0
        self.closing = False
        self._shutdown_deadline: float | None = None
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._sessions: dict[Session, threading.Thread] = {}
        self._sessions_cond = threading.Condition()
        self._stop = threading.Event()
        #: A turn to read and handle frames, taken by a handler thread whose socket is
        #: readable and given up while it is held back (§12.3). Under a flood of thousands of
        #: clients, thousands of runnable threads would each wait seconds for the GIL (CPython
        #: hands it to any one waiter), the flusher and the shutdown among them; waiting for a
        #: turn, they wait in first-come order, off the GIL.
        self.turns = Turns(TURNS)
        #: The same for ending sessions, apart: a crowd leaving at once queues behind itself,
        #: not ahead of the sessions that go on.
        self.ending_turns = Turns(ENDING_TURNS)
        #: A pipe any thread, or a signal handler without the GIL, may write to ask for
        #: shutdown (``stop_fd``); running handler threads check it (``stop_poll_fd``).
        self._stop_pipe: tuple[int, int] | None = None
        self._admission: Admission | None = None
        self._state_lock = threading.Lock()
        self._started = False
        self._stopped = False
        self.address: tuple[str, int] = (self.config.host, self.config.port)

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        with self._state_lock:
            if self._started:
                raise RuntimeError("server already started")
            self._started = True
        cfg = self.config
        family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((cfg.host, cfg.port))
            listener.listen(cfg.backlog)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self.address = listener.getsockname()[:2]
        flags = os.EFD_NONBLOCK | os.EFD_CLOEXEC
        self.wake_fds = [os.eventfd(0, flags) for _ in range(WAKE_GROUPS)]
        self._stop_pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._admission = Admission(cfg.effective_max_handshakes, cfg.max_per_address)
        self.flusher.start()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="chatwire-accept")
        self._accept_thread.start()
        log.info("listening on %s:%d", *self.address)

    def shutdown(self) -> None:
        """SERVER_SHUTDOWN to every client (§11.5), each connection closed as §11.3 says,
        every thread joined: handler threads within ``shutdown_timeout``, then sockets within
        ``shutdown_drain_time``. Idempotent.

        Deterministic: each phase is over before the next begins, and only the flusher writes
        to clients, once every handler thread has ended. Nothing outside the server changes
        unless the server was given a ``tuning`` (the CLI's opt-in process policy).
        """
        with self._state_lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
        assert self._listener is not None and self._accept_thread is not None
        started = time.monotonic()

        # 1. Admit nobody more. ``closing`` is what handler threads check between frames and
        #    on waking (a busy one may have set it already, see ``stop_fd``); the stop pipe
        #    wakes the accept thread. Connections still in the listener's queue are accepted
        #    and told SERVER_SHUTDOWN like everyone else.
        deadline = self.begin_closing()  # makes the stop pipe readable: accept_loop returns
        self._stop.set()
        self._accept_thread.join()
        self._refuse_the_queue()
        self._listener.close()
        log.debug("shutdown: accepting stopped at %.2fs", time.monotonic() - started)

        # 2. Every session's last frame is SERVER_SHUTDOWN, queued now: nothing can be queued
        #    after it (ERR-4), and a slow-consumer cut no longer adds its own ERROR. It goes
        #    right after the frame now going out: output queued behind that is dropped, so
        #    that a client flooded with output gets its ERROR within the drain time (§11.5).
        #    Queueing wakes nobody (``begin_closing``): thousands of system calls saved.
        with self._sessions_cond:
            everyone = dict(self._sessions)
        for session in everyone:
            session.outbox.push_final(self.shutdown_frame, drop_backlog=True)

        # 3. Wake the handler threads one eventfd group at a time and join them, the next
        #    group waking while this one is joined (a few hundred runnable at most). Each
        #    hands its socket to the flusher without any I/O (``hand_over``) and ends.
        self.tuning.confine([self.flusher.thread, *everyone.values()])
        self._end_sessions(everyone, deadline)
        stuck = sum(thread.is_alive() for thread in everyone.values())
        if stuck:
            log.warning("%d session threads still running at shutdown", stuck)
        log.debug("shutdown: handler threads ended at %.2fs", time.monotonic() - started)

        # 4. The flusher alone writes each client's ERROR, sends FIN, reads and discards
        #    until EOF, and closes; by one deadline for all. It starts now, not when shutdown
        #    began (under a flood the thread running this may have waited long for the GIL),
        #    and is the longest §11.3 allows (ERR-8): a client that reads a backlog before its
        #    ERROR loses the ERROR if the close comes first.
        drained_by = time.monotonic() + self.config.shutdown_drain_time
        self.flusher.release(drained_by)
        self.flusher.wait_lingering(drained_by)
        log.debug("shutdown: sockets closed at %.2fs", time.monotonic() - started)

        # 5. Stop the flusher: whatever still lingers is closed now, and so is a socket handed
        #    over later by a thread that missed the deadline.
        self.flusher.stop()
        if not any(thread.is_alive() for thread in everyone.values()):
            for fd in (*self.wake_fds, *self._stop_fds()):
                os.close(fd)
        assert self._admission is not None
        self._admission.close()
        self.tuning.restore()
        took = time.monotonic() - started
        log.info("closed %d sessions; shut down in %.2fs", len(everyone), took)

    def _end_sessions(self, everyone: dict[Session, threading.Thread], deadline: float) -> None:
        groups: dict[int, list[threading.Thread]] = {fd: [] for fd in self.wake_fds}
        for session, thread in everyone.items():
            groups[session.wake_fd].append(thread)
        woken: deque[list[threading.Thread]] = deque()
        for wake_fd, threads in groups.items():
            os.eventfd_write(wake_fd, 1)  # stays readable: a thread not yet polling sees it
            woken.append(threads)
            if len(woken) > 1:
                _join(woken.popleft(), deadline)
        for threads in woken:
            _join(threads, deadline)

    @property
    def stop_fd(self) -> int:
        """Write a byte here to ask for shutdown; then call :meth:`shutdown`. Safe from a
        signal handler (``signal.set_wakeup_fd(server.stop_fd)``): handler threads that are
        running see it at once, so a flood of busy threads ends even while the thread that
        is to call ``shutdown`` waits for the GIL behind them."""
        return self._stop_fds()[1]

    @property
    def stop_poll_fd(self) -> int:
        """Readable once a stop was asked for (never read: it stays readable)."""
        return self._stop_fds()[0]

    def stop_requested(self) -> bool:
        """Whether shutdown has begun or been asked for through ``stop_fd`` (then it begins
        now). One system call that does not wait: handler threads ask between reads and every
        few dozen frames."""
        if self.closing:
            return True
        if not select.select([self.stop_poll_fd], [], [], 0)[0]:
            return False
        self.begin_closing()
        return True

    def wait_stop(self, timeout: float | None = None) -> bool:
        """Wait until a stop is asked for through ``stop_fd``; False on timeout."""
        poller = select.poll()
        poller.register(self.stop_poll_fd, select.POLLIN)
        return bool(poller.poll(None if timeout is None else int(timeout * 1000)))

    def begin_closing(self) -> float:
        """Enter shutdown (idempotent): from now on handler threads end their sessions with
        SERVER_SHUTDOWN and hand their sockets to the flusher; senders held back (§12.3) are
        released. Returns the deadline for the handler threads to end (``shutdown_timeout``
        from the first call)."""
        # Nothing here may release the GIL before ``closing`` is set: under a flood, getting
        # it back can take seconds, and busy threads go on until they see ``closing``.
        with self._state_lock:
            first = self._shutdown_deadline is None
            if first:
                self._shutdown_deadline = time.monotonic() + self.config.shutdown_timeout
                # Sessions ending from now on wake nobody (each system call is a release of
                # the GIL); ``shutdown`` pokes the flusher once they have.
                self.flusher.hold()
            deadline = self._shutdown_deadline
        assert deadline is not None
        self.closing = True  # after the deadline: whoever sees ``closing`` may use it
        if first:
            self.tuning.begin()
            with contextlib.suppress(OSError):  # busy handler threads see it (``serve``)
                os.write(self.stop_fd, b"\0")
        self.congestion.wake_all()
        return deadline

    def _stop_fds(self) -> tuple[int, int]:
        if self._stop_pipe is None:
            raise RuntimeError("server not started")
        return self._stop_pipe

    def hand_over(self, sock: socket.socket, outbox: Outbox) -> None:
        """At shutdown, a handler thread's last act: the flusher sends what ``outbox`` holds
        (its last frame queued), then FIN, drains until EOF or the drain time that
        ``shutdown`` gives it, and closes ``sock``."""
        self.flusher.linger(sock, float("inf"), outbox)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def next_wake_fd(self) -> int:
        """The shutdown eventfd the next handler thread polls besides its socket."""
        self._accepted += 1
        return self.wake_fds[self._accepted % len(self.wake_fds)]

    def deadline(self, seconds: float) -> float:
        """A deadline ``seconds`` from now, but never past the shutdown deadline."""
        limit = time.monotonic() + seconds
        if self._shutdown_deadline is not None:
            return min(limit, self._shutdown_deadline)
        return limit

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    def session_threads(self) -> list[threading.Thread]:
        """The handler threads of the sessions now open."""
        with self._sessions_cond:
            return list(self._sessions.values())

    def wait_sessions(self, count: int, timeout: float) -> bool:
        """Wait until at most ``count`` sessions remain (for tests and tools)."""
        with self._sessions_cond:
            return self._sessions_cond.wait_for(lambda: len(self._sessions) <= count, timeout)

    # -- accepting ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None and self._admission is not None
        self._listener.setblocking(False)
        poller = select.poll()
        poller.register(self._listener, select.POLLIN)
        poller.register(self.stop_poll_fd, select.POLLIN)
        backoff = 0.01
        while not self.closing:
            try:
                sock, addr = self._listener.accept()
            except BlockingIOError:  # the queue is empty: wait for a connection or a stop
                ready = poller.poll()
                if any(fd == self.stop_poll_fd for fd, _ in ready):
                    return
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return
                if exc.errno in _OUT_OF_DESCRIPTORS and self._refuse_one_past_the_limit():
                    continue
                if exc.errno in _RESOURCE_ERRNOS:
                    log.warning("accept: %s; backing off %.2fs", exc.strerror, backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 1.0)
                elif exc.errno not in _TRANSIENT_ERRNOS:
                    log.error("accept failed: %s", exc)
                    self._stop.wait(0.1)
                continue
            backoff = 0.01
            self._admission.keep_reserve()
            try:
                self._admit(sock, f"{addr[0]}:{addr[1]}")
            except Exception:
                log.exception("could not admit %s", addr)
                sock.close()

    def _refuse_the_queue(self) -> None:
        """At shutdown: connections the kernel completed but nobody accepted yet get
        SERVER_SHUTDOWN too (ERR-18), not the reset that closing the listener would send."""
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:  # empty (EAGAIN), or out of descriptors: closing resets the rest
                return
            self.refuse(sock, ErrorCode.SERVER_SHUTDOWN, "server shutting down")

    def _refuse_one_past_the_limit(self) -> bool:
        """Out of descriptors: accept one connection with the reserve descriptor and tell it
        SERVER_FULL (§4.5); False if there was no reserve (then back off)."""
        assert self._listener is not None and self._admission is not None
        with self._admission.spare_descriptor() as spare:
            if not spare:
                return False
            try:
                sock, addr = self._listener.accept()
            except OSError:
                return True
            log.warning("refusing %s:%d: out of descriptors", addr[0], addr[1])
            # No lingering: the reserve must come back at once. What the client sent is read
            # first, so that the close sends no RST that could destroy the ERROR.
            with contextlib.suppress(OSError):
                sock.setblocking(False)
                sock.send(_OUT_OF_DESCRIPTORS_FRAME)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
            sock.close()
        return True

    def _admit(self, sock: socket.socket, peer: str) -> None:
        assert self._admission is not None
        if len(self._sessions) >= self.config.max_clients:
            log.warning("refusing %s: %d clients already", peer, len(self._sessions))
            self.refuse(sock, ErrorCode.SERVER_FULL, "server full")
            return
        address = peer.rsplit(":", 1)[0]
        why = self._admission.refusal(address)
        if why is not None:
            log.warning("refusing %s: %s", peer, why)
            self.refuse(sock, ErrorCode.SERVER_FULL, why)
            return
        oldest = self._admission.make_room()
        if oldest is not None:  # the handshake share is full: the oldest gives way
            oldest.evict(_HANDSHAKE_GIVES_WAY)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.config.send_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.send_buffer)
        session = self.session_class(self, sock, peer)
        # daemon=True only because CPython scans every live non-daemon thread each time it
        # starts one (quadratic at 15,000 clients); shutdown() still joins every handler.
        thread = threading.Thread(target=session.run, name=f"chatwire-session-{peer}", daemon=True)
        with self._sessions_cond:
            self._sessions[session] = thread
        self._admission.admit(session, address)
        log.info("connect %s", peer)
        try:
            thread.start()
        except RuntimeError as exc:  # "can't start new thread": out of memory or limits
            log.error("refusing %s: %s", peer, exc)
            with self._sessions_cond:
                del self._sessions[session]
            self._admission.ended(session, address)
            session.outbox.seal()
            self.refuse(sock, ErrorCode.SERVER_FULL, "server out of resources")

    def refuse(self, sock: socket.socket, code: ErrorCode, text: str) -> None:
        """§4.5: never a silent close. ERROR, FIN, and the flusher lingers until EOF."""
        try:
            sock.setblocking(False)
            sock.send(error_frame(code, text))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        self.flusher.linger(sock, self.deadline(self.config.drain_time))

    def session_ended(self, session: object) -> None:
        with self._sessions_cond:
            if isinstance(session, Session):
                self._sessions.pop(session, None)
            self._sessions_cond.notify_all()
        if isinstance(session, Session) and self._admission is not None:
            self._admission.ended(session, session.peer.rsplit(":", 1)[0])


def _join(threads: list[threading.Thread], deadline: float) -> None:
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
