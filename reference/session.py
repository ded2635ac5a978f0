"""One client's session: the handler thread that reads and processes its frames.

The thread waits in ``poll`` on its socket and on the server's shutdown eventfd (so it holds
no receive buffer while idle), reads whatever is there, and processes whole frames in order
(§8.5; the requests themselves are in ``handling.py``). Every way a session ends is an
:class:`Ending`, handled in one place (:meth:`Session.finish`): the LEFT notices with their
reason (§9.2), the ERROR if any, then the close of §11.3. Behaviours are methods so tests can
build deliberately broken variants.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from spec.connection import State
from spec.constants import ErrorCode, LeaveReason
from spec.errors import SessionEnded
from spec.events import Ping
from spec.fastpath import encode_ping

from .ending import Ending, fatal, from_error
from .handling import FrameHandling
from .host import SessionHost
from .hubapi import HubUnavailable
from .outbox import Outbox, OutputStopped

__all__ = ["Ending", "Session", "fatal"]

_INTERNAL = ErrorCode.INTERNAL_ERROR

log = logging.getLogger("reference.server")

T = TypeVar("T")

RECV_SIZE = 65536
_POLL_IN = select.POLLIN | select.POLLPRI


class Session(FrameHandling):
    """A hub member backed by a socket and a handler thread."""

    __slots__ = ("peer", "sock", "started", "wake_fd")

    def __init__(self, host: SessionHost, sock: socket.socket, peer: str) -> None:
        super().__init__(host, Outbox(sock, host.flusher, host.config.out_limit, owner=self))
        host.flusher.register(self.outbox)
        self.sock = sock
        self.peer = peer
        self.wake_fd = host.next_wake_fd()  # readable once the server shuts down
        self.started = self.last_frame

    def __repr__(self) -> str:
        return f"{self.nick or '-'}@{self.peer}"

    # -- the thread ---------------------------------------------------------------------

    def run(self) -> None:
        ending = Ending(LeaveReason.LOST)
        try:
            ending = self.serve()
        except HubUnavailable as exc:  # a cluster node without Redis (§20)
            ending = Ending(LeaveReason.LOST, exc.error, detail=str(exc))
        except Exception as exc:  # a fault of ours: say so (§11.6 ERR-21), never a bare close
            log.exception("session %r failed", self)
            ending = from_error(SessionEnded(f"internal error: {type(exc).__name__}", _INTERNAL))
        finally:
            # Ending takes a turn too, of its own kind: thousands of clients gone at once
            # must not make thousands of threads runnable at once, nor queue ahead of the
            # sessions that go on (see ``Server.turns``); the waits of ``close`` give it up.
            # Not at shutdown: ending is then a hand-over without I/O, and the shutdown wakes
            # the threads a group at a time.
            turn = None if self.host.closing else self.host.ending_turns
            if turn is not None:
                turn.acquire()
            try:
                self.finish(ending)
            finally:
                if turn is not None:
                    turn.release()
                self.host.session_ended(self)

    def serve(self) -> Ending:
        sock_fd, turns = self.sock.fileno(), self.host.turns
        poller = select.poll()
        poller.register(sock_fd, _POLL_IN)
        poller.register(self.wake_fd, select.POLLIN)
        rounds = 0
        while True:
            # Not only ``closing``: under a flood, the thread that is to set it may wait long
            # for the GIL, while a busy thread like this one sees the stop pipe at once. That
            # costs a system call, so every 16th round (``process`` looks every 64 frames).
            rounds += 1
            if self.host.closing or (not rounds & 15 and self.host.stop_requested()):
                return self.shutdown_ending()
            now = time.monotonic()
            wait, ending = self.timers(now)
            if ending is not None:
                # KEEP-6: a frame that has arrived is not silence, even if this thread was late
                # to read it (a stalled process); read what is there before cutting for idleness.
                if ending.reason is not LeaveReason.TIMEOUT or not poller.poll(0):
                    return ending
                wait = 0
            ready = poller.poll(None if wait is None else max(0, int(wait * 1000) + 1))
            if not any(fd == sock_fd for fd, _ in ready):
                continue
            turns.acquire()  # see ``Server.turns``
            try:
                self.respect_holds()  # SLOW-10: nothing read while its own output is congested
                data = self.sock.recv(RECV_SIZE)
            except BlockingIOError:
                turns.release()
                continue
            except OSError:
                data = b""
            try:
                if not data:
                    self.conn.receive_eof()
                    return self.lost_ending()
                self.conn.receive_data(data)
                flusher = self.host.flusher
                flusher.begin_write_behind()
                try:
                    ending = self.process()
                finally:
                    flusher.end_write_behind()
            finally:
                turns.release()
            if ending is not None:
                return ending

    def timers(self, now: float) -> tuple[float | None, Ending | None]:
        """Seconds until the next timer (None: no timer), or the Ending a timer caused."""
        if self.state is not State.REGISTERED:
            left = self.started + self.config.handshake_timeout - now
            if left <= 0:
                return None, fatal(ErrorCode.HANDSHAKE_TIMEOUT, "no HELLO in time")
            return left, None
        idle = self.config.idle_timeout
        if idle <= 0:
            return None, None
        if self.outbox.congested:  # §10.2 KEEP-10: a congested client is §12's to judge
            self.pinged = False
            return idle / 2, None
        silent = now - max(self.last_frame, self.outbox.relieved_at)  # KEEP-10: relief counts
        if silent >= idle:
            timeout = SessionEnded(f"nothing received for {idle:g}s", ErrorCode.IDLE_TIMEOUT)
            return None, from_error(timeout, LeaveReason.TIMEOUT)
        if not self.pinged and silent >= idle / 2:  # §10.2: give a live client a reason
            self.push(encode_ping(Ping(int(now * 1000) & 0xFFFF_FFFF)))
            self.pinged = True
        return (idle if self.pinged else idle / 2) - silent, None

    def in_handshake(self) -> bool:
        """Not registered yet (and not ended): it holds one of the handshake slots."""
        return self.conn.state is State.AWAITING_HELLO

    def evict(self, error: bytes) -> None:
        """End the session from another thread (a cluster node lost Redis, §20): ``error``
        is its last frame, and shutting the reading side wakes the handler thread, which
        finds EOF and closes as §11.3."""
        self.outbox.push_final(error)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RD)

    def lost_ending(self) -> Ending:
        if self.outbox.failed is OutputStopped.CUT:
            return Ending(LeaveReason.SLOW_CONSUMER, graceful=False, detail="cut")
        if self.host.closing:
            return self.shutdown_ending()
        return Ending(LeaveReason.LOST)

    # -- the end ------------------------------------------------------------------------

    def finish(self, ending: Ending) -> None:
        """The one place a session ends: ERROR, LEFT notices (§9.2), close (§11.3)."""
        if self.conn.registered and not self.host.closing:
            # LEFT before the ERROR goes out: a client that has seen its ERROR and the close
            # may take it that the others have been told (and its nick is free).
            self.hub.depart(self, ending.reason, ending.text, notify=ending.notify)
        if ending.error is not None:
            # At shutdown the ERROR goes before any backlog (see ``Server.shutdown``).
            self.outbox.push_final(ending.error, drop_backlog=self.host.closing)
        self.conn.close()
        graceful = ending.graceful and self.outbox.failed is None
        if self.host.closing and graceful:  # the flusher writes, drains and closes
            self.host.hand_over(self.sock, self.outbox)  # the server sums up in its log
            return
        self.close(graceful)
        log.info("disconnect %r: %s %s", self, ending.reason.name, ending.detail)

    def close(self, graceful: bool) -> None:
        """§11.3: flush (bounded), FIN, discard input until EOF or the drain time, close."""
        sock = self.sock
        if graceful and self.outbox.pending:
            flushed_by = self.host.deadline(self.config.drain_time)
            graceful = self._off_turn(lambda: self.outbox.wait_flushed(flushed_by))
        self.outbox.seal()
        if graceful:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                graceful = False
        if graceful and not self._discard_input():
            drained_by = self.host.deadline(self.config.drain_time)
            self._off_turn(lambda: self.drain(drained_by))
        sock.close()

    def _discard_input(self) -> bool:
        """Read and discard what input is there without waiting; True at EOF (mostly the case:
        a client that got its ERROR, or left, has closed already)."""
        try:
            while self.sock.recv(RECV_SIZE):
                pass
        except BlockingIOError:
            return False
        except OSError:
            pass
        return True

    def _off_turn(self, wait: Callable[[], T]) -> T:
        """Wait without holding an ending turn (``Server.ending_turns``)."""
        turns = self.host.ending_turns
        turns.release()
        try:
            return wait()
        finally:
            turns.acquire()

    def drain(self, deadline: float) -> None:
        poller = select.poll()
        poller.register(self.sock.fileno(), _POLL_IN)
        while (left := deadline - time.monotonic()) > 0:
            if not poller.poll(int(left * 1000) + 1):
                continue
            try:
                if not self.sock.recv(RECV_SIZE):
                    return
            except BlockingIOError:
                continue
            except OSError:
                return
