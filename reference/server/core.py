"""The server: listener, accept loop, session threads, shutdown.

Threads: one accept thread, one flusher (``reference.outbox``), one handler thread per
connection. Handler threads are recorded before they start, so ``shutdown`` can join every
one. Shutdown wakes the blocking ``accept`` by shutting the listener down, and the handlers
through the eventfds they poll besides their sockets, a group at a time (nothing polls on a
timer).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

from spec.codec import error_frame
from spec.constants import ErrorCode, LeaveReason

from ..ending import Ending
from ..flusher import Flusher
from ..hub import Hub
from ..hubapi import RoomHub
from ..outbox import Congestion, Outbox
from ..session import Session
from .config import ServerConfig

log = logging.getLogger("reference.server")

#: Handler threads wait on one of this many eventfds, written a group at a time at shutdown.
#: Thousands of threads runnable at once take time quadratic in their number to get the GIL
#: (measured: 9000 threads: 8 s on one eventfd, 0.6 s spread over 128; 300 threads: 13 ms).
WAKE_GROUPS = 64

#: The interpreter's switch interval (seconds) while shutting down. A thread waiting for the
#: GIL wakes every interval to demand it; with thousands waiting at the default 5 ms those
#: wake-ups alone saturate the CPU (measured: 15,000 threads woken at once end in 5.0 s at
#: 5 ms, 1.1 s at 1 s). During shutdown every thread soon blocks or ends and so lets go.
SHUTDOWN_SWITCH_INTERVAL = 1.0

#: accept() failures that mean "out of a resource right now": log, back off, go on.
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
#: accept() failures that concern one half-open connection only.
_TRANSIENT_ERRNOS = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EAGAIN, errno.EINTR}


class Server:
    def __init__(
        self,
        config: ServerConfig | None = None,
        session_class: type[Session] = Session,
        hub_class: Callable[[int, int], RoomHub] = Hub,
    ) -> None:
        self.config = config or ServerConfig()
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
        self.flusher.start()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="chatwire-accept")
        self._accept_thread.start()
        log.info("listening on %s:%d", *self.address)

    def shutdown(self) -> None:
        """SERVER_SHUTDOWN to every client (§11.5), then join every thread. Idempotent.

        The ERROR is queued for every client at once; then, on one CPU, two phases, so that
        thousands of threads never compete for the GIL with each other or with the flusher:

        1. every handler thread is woken, a group at a time, hands its socket to the flusher
           without any I/O of its own, and ends; each one is joined.
        2. the flusher alone writes each client's queued output and ERROR, sends FIN, reads
           and discards until EOF (§11.3) and closes. Whatever has not seen EOF by one
           deadline for all (``drain_time`` after phase 2 begins, and within
           ``shutdown_timeout``) is closed then.
        """
        with self._state_lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
        started = time.monotonic()
        hard_deadline = started + self.config.shutdown_timeout
        # No waiter for the GIL times out and forces a switch: every thread here runs briefly
        # and blocks or ends. No cyclic collection passes over every client's objects.
        interval, collecting = sys.getswitchinterval(), gc.isenabled()
        sys.setswitchinterval(max(interval, SHUTDOWN_SWITCH_INTERVAL))
        gc.disable()
        try:
            count = self._shut_down(hard_deadline)
        finally:
            sys.setswitchinterval(interval)
            if collecting:
                gc.enable()
        log.info("closed %d sessions; shut down in %.2fs", count, time.monotonic() - started)

    def _shut_down(self, hard_deadline: float) -> int:
        self._shutdown_deadline = hard_deadline
        self.flusher.deferred_wakes = True  # the flusher sleeps through phase 1
        self.closing = True
        self._stop.set()
        assert self._listener is not None and self._accept_thread is not None
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocking accept()
        self._accept_thread.join()
        self._listener.close()
        with self._sessions_cond:
            everyone = dict(self._sessions)
        for session in everyone:  # nothing can be queued after it (§11.2)
            session.outbox.push_final(self.shutdown_frame)
        self.congestion.wake_all()  # senders held back: stop waiting
        own_cpus = _gather_on_one_cpu([self.flusher.thread, *everyone.values()])
        try:
            self._end_sessions(everyone, hard_deadline)
            self._flush_and_close(everyone, hard_deadline)
        finally:
            if own_cpus is not None:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(0, own_cpus)
        return len(everyone)

    def _flush_and_close(self, everyone: dict[Session, threading.Thread], deadline: float) -> None:
        """Phase 2: let the flusher write, drain and close; then stop it."""
        stuck = sum(thread.is_alive() for thread in everyone.values())
        if stuck:
            log.warning("%d session threads still running at shutdown", stuck)
        self.flusher.deferred_wakes = False
        self.flusher.poke()
        self.flusher.wait_lingering(min(time.monotonic() + self.config.drain_time, deadline))
        self.flusher.stop()
        for wake_fd in self.wake_fds:
            os.close(wake_fd)

    def _end_sessions(self, everyone: dict[Session, threading.Thread], deadline: float) -> None:
        """Wake the handler threads one eventfd group at a time and join them, the next group
        waking while this one is joined: a few hundred threads at most are runnable at once."""
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

    def hand_over(self, sock: socket.socket, outbox: Outbox) -> None:
        """At shutdown, a handler thread's last act: the flusher sends what ``outbox`` holds
        (its last frame queued), then FIN, drains until EOF and closes ``sock``."""
        assert self._shutdown_deadline is not None
        self.flusher.linger(sock, self._shutdown_deadline, outbox)

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
        assert self._listener is not None
        backoff = 0.01
        while not self.closing:
            try:
                sock, addr = self._listener.accept()
            except OSError as exc:
                if self._stop.is_set():
                    return
                if exc.errno in _RESOURCE_ERRNOS:
                    log.warning("accept: %s; backing off %.2fs", exc.strerror, backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 1.0)
                elif exc.errno not in _TRANSIENT_ERRNOS:
                    log.error("accept failed: %s", exc)
                    self._stop.wait(0.1)
                continue
            backoff = 0.01
            try:
                self._admit(sock, f"{addr[0]}:{addr[1]}")
            except Exception:
                log.exception("could not admit %s", addr)
                sock.close()

    def _admit(self, sock: socket.socket, peer: str) -> None:
        if len(self._sessions) >= self.config.max_clients:
            log.warning("refusing %s: %d clients already", peer, len(self._sessions))
            self.refuse(sock, ErrorCode.SERVER_FULL, "server full")
            return
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
        log.info("connect %s", peer)
        previous = threading.stack_size()
        try:
            threading.stack_size(self.config.thread_stack_size * 1024)
            thread.start()
        except RuntimeError as exc:  # "can't start new thread": out of memory or limits
            log.error("refusing %s: %s", peer, exc)
            with self._sessions_cond:
                del self._sessions[session]
            session.outbox.seal()
            self.refuse(sock, ErrorCode.SERVER_FULL, "server out of resources")
        finally:
            threading.stack_size(previous)

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


def _join(threads: list[threading.Thread], deadline: float) -> None:
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _gather_on_one_cpu(threads: list[threading.Thread]) -> set[int] | None:
    """Confine these threads and the calling one to one CPU; the calling thread's CPUs before.

    Thousands of handler threads ending, then one flusher closing thousands of sockets, make
    no use of a second CPU under the GIL, but spread over several they cost the kernel an
    interrupt to another CPU for each thread woken there and each stack unmapped (a TLB
    flush): measured, 15,000 threads end in 0.7 s on one CPU, 1.0 s on two. The other CPUs
    are left to the clients."""
    try:
        own = os.sched_getaffinity(0)
    except OSError:
        return None
    if len(own) < 2:
        return None
    one = {min(own)}
    for thread in threads:
        if thread.native_id is not None and thread.is_alive():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(thread.native_id, one)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, one)
    return own
