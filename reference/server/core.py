"""The server: listener, accept loop, session threads, shutdown.

Threads: one accept thread, one flusher (``reference.outbox``), one handler thread per
connection. Handler threads are recorded before they start, so ``shutdown`` can join every
one. Shutdown wakes the blocking ``accept`` by shutting the listener down, and wakes every
handler at once through one eventfd they all poll (nothing polls on a timer).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
import time
from types import TracebackType

from spec.codec import encode
from spec.constants import ErrorCode
from spec.events import Error

from ..flusher import Flusher
from ..hub import Hub
from ..outbox import Congestion
from ..session import Session
from .config import ServerConfig

log = logging.getLogger("reference.server")

#: Handler threads wait on one of this many eventfds, all written at shutdown. Thousands of
#: threads sleeping on one wait queue take time quadratic in their number to wake (measured:
#: 9000 threads: 8 s on one eventfd, 0.6 s spread over 128; 300 threads: 13 ms).
WAKE_GROUPS = 64

#: accept() failures that mean "out of a resource right now": log, back off, go on.
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
#: accept() failures that concern one half-open connection only.
_TRANSIENT_ERRNOS = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EAGAIN, errno.EINTR}


class Server:
    def __init__(
        self,
        config: ServerConfig | None = None,
        session_class: type[Session] = Session,
        hub_class: type[Hub] = Hub,
    ) -> None:
        self.config = config or ServerConfig()
        self.config.validate()
        self.session_class = session_class
        self.hub = hub_class(self.config.max_frame, self.config.max_rooms)
        farewell = encode(Error(ErrorCode.SLOW_CONSUMER, "output not read in time"))
        self.flusher = Flusher(self.config.slow_timeout, farewell)
        self.shutdown_frame = encode(Error(ErrorCode.SERVER_SHUTDOWN, "server shutting down"))
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

        This thread queues the ERROR for every client at once and the flusher writes them and
        sends FIN; then every handler thread is woken, hands its socket to the flusher (which
        drains until EOF and closes, §11.3) and ends, doing as little as it can on the way:
        thousands of threads waking together contend for the GIL."""
        with self._state_lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
        started = time.monotonic()
        budget = self.config.shutdown_timeout
        self._shutdown_deadline = started + budget * 0.8  # every drain ends by then
        self.closing = True
        self._stop.set()
        assert self._listener is not None and self._accept_thread is not None
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocking accept()
        self._accept_thread.join()
        self._listener.close()
        with self._sessions_cond:
            everyone = dict(self._sessions)
        self.flusher.deferred_wakes = True  # one wake-up per batch, not one per client
        for session in everyone:
            session.outbox.push_final(self.shutdown_frame)
        self.flusher.poke()
        self.congestion.wake_all()  # senders held back: stop waiting
        for wake_fd in self.wake_fds:  # every handler's poll() returns
            os.eventfd_write(wake_fd, 1)
        for joined, thread in enumerate(everyone.values()):
            thread.join(max(0.0, started + budget - time.monotonic()))
            if joined % 256 == 255:
                self.flusher.poke()
        self.flusher.deferred_wakes = False
        self.flusher.poke()
        log.info("closed %d sessions for shutdown", len(everyone))
        stuck = [t.name for t in everyone.values() if t.is_alive()]
        if stuck:
            log.warning("%d session threads still running at shutdown", len(stuck))
        self.flusher.wait_lingering(self._shutdown_deadline)
        self.flusher.stop()
        for wake_fd in self.wake_fds:
            os.close(wake_fd)
        log.info("shut down in %.2fs", time.monotonic() - started)

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
            sock.send(encode(Error(code, text)))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        self.flusher.linger(sock, self.deadline(self.config.drain_time))

    def session_ended(self, session: Session) -> None:
        with self._sessions_cond:
            self._sessions.pop(session, None)
            self._sessions_cond.notify_all()
