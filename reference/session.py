"""One client's session: the handler thread that reads and processes its frames.

The thread waits in ``poll`` on its socket and on the server's shutdown eventfd (so it holds
no receive buffer while idle), reads whatever is there, and processes whole frames in order
(§8.5; the requests themselves are in ``handling.py``). Every way a session ends is an
:class:`Ending`, handled in one place (:meth:`Session.finish`): the LEFT notices with their
reason (§9.2), the ERROR if any, then the close of §11.3. Behaviours are methods so tests can
build deliberately broken variants.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Container
from typing import TYPE_CHECKING

from spec.codec import encode
from spec.connection import State
from spec.constants import DEFAULT_MAX_FRAME, ErrorCode, LeaveReason
from spec.decoder import FrameSplitter
from spec.events import Ping

from .ending import Ending, fatal
from .handling import FrameHandling
from .outbox import Outbox

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Ending", "Session", "fatal"]

log = logging.getLogger("reference.server")

RECV_SIZE = 65536
_POLL_IN = select.POLLIN | select.POLLPRI


class Session(FrameHandling):
    """A hub member backed by a socket and a handler thread."""

    __slots__ = ("peer", "sock", "started", "wake_fd")

    def __init__(self, server: Server, sock: socket.socket, peer: str) -> None:
        self.server = server
        self.config = server.config
        self.hub = server.hub
        self.sock = sock
        self.peer = peer
        self.nick = ""
        self.quiet = False
        self.echo = False
        self.state = State.AWAITING_HELLO
        self.outbox = Outbox(sock, server.flusher, self.config.out_limit, owner=self)
        server.flusher.register(self.outbox)
        self.splitter = FrameSplitter(DEFAULT_MAX_FRAME)  # §3.2: until WELCOME
        self.wake_fd = server.next_wake_fd()  # readable once the server shuts down
        self.started = time.monotonic()
        self.last_frame = self.started
        self.pinged = False
        self.tokens = float(self.config.effective_burst)
        self.refilled = self.started
        #: §12.3: the members of the room of the last accepted SEND, and the addressee of the
        #: last accepted DIRECT if it was congested then.
        self.hold_room: Container[object] | None = None
        self.hold_target: FrameHandling | None = None

    def __repr__(self) -> str:
        return f"{self.nick or '-'}@{self.peer}"

    # -- the thread ---------------------------------------------------------------------

    def run(self) -> None:
        ending = Ending(LeaveReason.LOST)
        try:
            ending = self.serve()
        except Exception:
            log.exception("session %r failed", self)
            ending = Ending(LeaveReason.ERROR, graceful=False)
        finally:
            try:
                self.finish(ending)
            finally:
                self.server.session_ended(self)

    def serve(self) -> Ending:
        poller = select.poll()
        poller.register(self.sock.fileno(), _POLL_IN)
        poller.register(self.wake_fd, select.POLLIN)
        while True:
            if self.server.closing:
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
            if not any(fd == self.sock.fileno() for fd, _ in ready):
                continue
            try:
                data = self.sock.recv(RECV_SIZE)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                return self.lost_ending()
            self.splitter.receive_data(data)
            ending = self.process()
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
            ending = fatal(ErrorCode.IDLE_TIMEOUT, f"nothing received for {idle:g}s")
            return None, Ending(LeaveReason.TIMEOUT, ending.error, detail=ending.detail)
        if not self.pinged and silent >= idle / 2:  # §10.2: give a live client a reason
            self.push(encode(Ping(int(now * 1000) & 0xFFFF_FFFF)))
            self.pinged = True
        return (idle if self.pinged else idle / 2) - silent, None

    def lost_ending(self) -> Ending:
        if self.outbox.failed == "cut":
            return Ending(LeaveReason.SLOW_CONSUMER, graceful=False, detail="cut")
        if self.server.closing:
            return self.shutdown_ending()
        return Ending(LeaveReason.LOST)

    # -- the end ------------------------------------------------------------------------

    def finish(self, ending: Ending) -> None:
        """The one place a session ends: ERROR, LEFT notices (§9.2), close (§11.3)."""
        if self.state is State.REGISTERED and not self.server.closing:
            # LEFT before the ERROR goes out: a client that has seen its ERROR and the close
            # may take it that the others have been told (and its nick is free).
            self.hub.depart(self, ending.reason, ending.text, notify=ending.notify)
        if ending.error is not None:
            self.outbox.push_final(ending.error)
        self.state = State.CLOSED
        graceful = ending.graceful and self.outbox.failed is None
        if self.server.closing and graceful:  # the flusher writes, drains and closes
            self.server.hand_over(self.sock, self.outbox)  # the server sums up in its log
            return
        self.close(graceful)
        log.info("disconnect %r: %s %s", self, ending.reason.name, ending.detail)

    def close(self, graceful: bool) -> None:
        """§11.3: flush (bounded), FIN, discard input until EOF or the drain time, close."""
        sock = self.sock
        if graceful:
            graceful = self.outbox.wait_flushed(self.server.deadline(self.config.drain_time))
        self.outbox.seal()
        if graceful:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                graceful = False
        if graceful:
            self.drain(self.server.deadline(self.config.drain_time))
        sock.close()

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
