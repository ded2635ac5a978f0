"""One client's session: the handler thread that reads and processes its frames.

The thread waits in ``poll`` on its socket and on the server's shutdown eventfd (so it holds
no receive buffer while idle), reads whatever is there, and processes whole frames in order
(§8.5). Every way a session ends is an :class:`Ending`, handled in one place
(:meth:`Session.finish`): the ERROR if any, the LEFT notices with their reason (§9.2), then
the close of §11.3. Behaviours are methods so tests can build deliberately broken variants.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Container
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from spec.codec import decode_body, encode, error_frame_for
from spec.connection import RECEIVABLE, Role, State
from spec.constants import (
    DEFAULT_MAX_FRAME,
    KNOWN_CAPABILITIES,
    Capability,
    ErrorCode,
    FrameType,
    LeaveReason,
)
from spec.decoder import FrameSplitter
from spec.errors import ProtocolError
from spec.events import (
    Bye,
    Direct,
    Error,
    Join,
    Leave,
    ListRooms,
    Ping,
    Pong,
    Send,
    Welcome,
    Who,
)
from spec.names import fold, is_valid_nick, is_valid_room

from . import frames
from .outbox import Outbox

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger("reference.server")

RECV_SIZE = 65536
#: A run of SENDs to one room is fanned out as one batch of at most this many messages, so
#: a member's pending output overshoots ``out_limit`` by a bounded amount (§12.3).
BATCH_MESSAGES = 64
BATCH_BYTES = 16384
_POLL_IN = select.POLLIN | select.POLLPRI


@dataclass(frozen=True, slots=True)
class Ending:
    """How a session ends: the LEFT reason, the fatal ERROR to send first (if any), the BYE
    text, whether the others hear of it, and whether the socket can still be closed politely."""

    reason: LeaveReason
    error: bytes | None = None
    text: str = ""
    notify: bool = True
    graceful: bool = True
    detail: str = ""


def fatal(code: ErrorCode, text: str, in_reply_to: int = 0) -> Ending:
    return Ending(LeaveReason.ERROR, encode(Error(code, text, in_reply_to)), detail=text)


class Session:
    """A hub member backed by a socket and a handler thread.

    Slotted: one per client, and each client should cost the server little memory (a
    subclass without ``__slots__`` simply gets a ``__dict__`` back)."""

    __slots__ = (
        "config",
        "echo",
        "hold_room",
        "hold_target",
        "hub",
        "last_frame",
        "nick",
        "outbox",
        "peer",
        "pinged",
        "quiet",
        "refilled",
        "server",
        "sock",
        "splitter",
        "started",
        "state",
        "tokens",
        "wake_fd",
    )

    #: ERROR frames for non-fatal refusals, by (code, in_reply_to): built once, shared.
    _errors: ClassVar[dict[tuple[int, int], bytes]] = {}

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
        self.hold_target: Session | None = None

    def __repr__(self) -> str:
        return f"{self.nick or '-'}@{self.peer}"

    def push(self, data: bytes) -> None:
        self.outbox.push(data)

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
                return ending
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
        silent = now - self.last_frame
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

    def shutdown_ending(self) -> Ending:
        """§11.5, §9.2: everyone gets SERVER_SHUTDOWN, so LEFT notices are skipped."""
        error = self.server.shutdown_frame
        return Ending(LeaveReason.SHUTDOWN, error, notify=False, detail="server shutdown")

    # -- frames -------------------------------------------------------------------------

    def process(self) -> Ending | None:
        """Handle every whole frame buffered, in order (§8.5). A run of accepted SENDs to one
        room goes to the hub as one batch: one push per member per batch, not per message."""
        batch: list[bytes] = []
        batch_room = ""
        batch_bytes = 0
        batch_cap = max(1, min(BATCH_BYTES, self.config.out_limit // 8))
        handled = 0
        ending: Ending | None = None
        while ending is None:
            if self.server.closing:  # the SERVER_SHUTDOWN is queued: act on nothing more
                ending = self.shutdown_ending()
                break
            try:
                frame = self.splitter.next_frame()
            except ProtocolError as exc:  # length 0 or over the limit: the stream is lost
                ending = self.protocol_error(exc, 0)
                break
            if frame is None:
                break
            handled += 1
            ftype, body = frame
            if ftype == FrameType.SEND and self.state is State.REGISTERED:
                try:
                    room, text16, refusal = self.check_send(body)
                except ProtocolError as exc:
                    ending = self.protocol_error(exc, ftype)
                    break
                if batch and (
                    refusal is not None
                    or room != batch_room
                    or len(batch) >= BATCH_MESSAGES
                    or batch_bytes >= batch_cap
                ):
                    self.send_batch(batch_room, batch)
                    batch, batch_bytes = [], 0
                if refusal is not None:
                    self.respect_holds()
                    self.push(self.error_frame(refusal, ftype))
                else:
                    batch_room = room
                    batch.append(text16)
                    batch_bytes += len(text16)
                continue
            if batch:
                self.send_batch(batch_room, batch)
                batch, batch_bytes = [], 0
            self.respect_holds()
            ending = self.dispatch(ftype, body)
        if batch:
            self.send_batch(batch_room, batch)
        if handled:  # after any hold: time held is not silence (§10.2 KEEP-7)
            self.last_frame = time.monotonic()
            self.pinged = False
        return ending

    def check_send(self, body: bytes) -> tuple[str, bytes, ErrorCode | None]:
        """Decode a SEND (a fatal error raises), then its checks in the order of §7.1 MSG-1:
        room syntax, membership, text length, flood limit (which alone takes a token)."""
        event = decode_body(FrameType.SEND, body)
        assert isinstance(event, Send)
        text16 = body[1 + body[0] :]  # the exact str16 bytes, validated by decode_body
        room = fold(event.room)
        if not is_valid_room(event.room):
            return room, text16, ErrorCode.ROOM_INVALID
        if room not in self.hub.rooms_of(self):
            return room, text16, ErrorCode.NOT_IN_ROOM
        if len(text16) - 2 > self.config.max_text:
            return room, text16, ErrorCode.TEXT_TOO_LONG
        if not self.take_token():
            return room, text16, ErrorCode.RATE_LIMITED
        return room, text16, None

    def send_batch(self, room: str, texts16: list[bytes]) -> None:
        """Accept a batch of checked SENDs to one room, then hold (§12.3 SLOW-3)."""
        self.respect_holds()
        code = self.hub.send(self, room, texts16)
        if code is not None:  # only if a subclass's checks let a bad one through
            self.push(self.error_frame(code, FrameType.SEND) * len(texts16))
            return
        joined = self.hub.rooms_of(self).get(room)
        self.hold_room = joined.members if joined is not None else None
        self.respect_holds()

    def respect_holds(self) -> None:
        """§12.3: handle nothing more from this sender while a member of the room of its last
        accepted SEND (SLOW-3), or the congested addressee of its last DIRECT (SLOW-4), is
        congested: at most until the watchdog cuts them (plus a margin, should it run late).
        Costs one test when nothing anywhere is congested."""
        congestion = self.server.congestion
        if not congestion.congested:
            return
        members, target = self.hold_room, self.hold_target

        def blocked() -> bool:
            if target is not None and target.outbox.congested:
                return True
            return members is not None and congestion.any_member_congested(members)

        if not blocked():
            return
        deadline = time.monotonic() + 2 * self.config.slow_timeout + 1.0
        if not congestion.wait_while(blocked, deadline, self.aborting) and not self.aborting():
            log.warning("%r: held back past the slow-consumer deadline", self)

    def aborting(self) -> bool:
        return self.server.closing or self.outbox.failed is not None

    def take_token(self) -> bool:
        """§13: token bucket over SEND and DIRECT; always true when the limit is off."""
        rate = self.config.rate
        if rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.config.effective_burst, self.tokens + (now - self.refilled) * rate)
        self.refilled = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def error_frame(self, code: ErrorCode, in_reply_to: int) -> bytes:
        key = (code, in_reply_to)
        frame = self._errors.get(key)
        if frame is None:
            text = code.name.lower().replace("_", " ")
            frame = self._errors[key] = encode(Error(code, text, in_reply_to))
        return frame

    def dispatch(self, ftype: int, body: bytes) -> Ending | None:
        """Every frame but a registered client's SEND: state checks (§4.4, §15.1), decoding
        (fatal errors), then the handler."""
        try:
            known = FrameType(ftype)
        except ValueError:
            if self.state is State.REGISTERED:
                self.push(self.error_frame(ErrorCode.UNKNOWN_TYPE, ftype))
                return None
            return fatal(ErrorCode.PROTOCOL_VIOLATION, f"type 0x{ftype:02X} before HELLO", ftype)
        if known not in RECEIVABLE[(Role.SERVER, self.state)]:
            return fatal(ErrorCode.PROTOCOL_VIOLATION, self.violation(known), ftype)
        if known is FrameType.HELLO:
            return self.on_hello(body)
        try:
            event = decode_body(ftype, body)
        except ProtocolError as exc:
            return self.protocol_error(exc, ftype)
        if isinstance(event, Send):  # only reached if a subclass routes SEND here
            room, text16, refusal = self.check_send(body)
            if refusal is None:
                self.send_batch(room, [text16])
            else:
                self.push(self.error_frame(refusal, ftype))
            return None
        if isinstance(event, Join):
            self.answer(self.hub.join(self, event.room), ftype)
        elif isinstance(event, Leave):
            self.answer(self.hub.leave(self, event.room), ftype)
        elif isinstance(event, Who):
            self.answer(self.hub.who(self, event.room), ftype)
        elif isinstance(event, ListRooms):
            self.hub.list_rooms(self)
        elif isinstance(event, Direct):
            self.on_direct(event)
        elif isinstance(event, Ping):
            self.push(encode(Pong(event.token)))
        elif isinstance(event, Bye):
            return self.on_bye(event)
        return None  # PONG: activity only

    def protocol_error(self, exc: ProtocolError, in_reply_to: int) -> Ending:
        """The one place a decoding error becomes its (fatal) ERROR frame (§14)."""
        return Ending(LeaveReason.ERROR, error_frame_for(exc, in_reply_to), detail=repr(exc))

    def violation(self, known: FrameType) -> str:
        if self.state is not State.REGISTERED:
            return f"{known.name} before HELLO"
        if known is FrameType.HELLO:
            return "second HELLO after registration"
        return f"{known.name} is sent by servers, not clients"

    def answer(self, code: ErrorCode | None, ftype: int) -> None:
        if code is not None:
            self.push(self.error_frame(code, ftype))

    def on_hello(self, body: bytes) -> Ending | None:
        try:  # magic, then version before the rest (§4.1 HS-2), then the other fields
            hello = frames.decode_hello(body)  # shallow: see frames.welcome
        except ProtocolError as exc:
            return self.protocol_error(exc, FrameType.HELLO)
        if not is_valid_nick(hello.nick):
            self.push(self.error_frame(ErrorCode.NICK_INVALID, FrameType.HELLO))
            return None
        caps = hello.caps & int(KNOWN_CAPABILITIES)
        self.nick = hello.nick
        self.quiet = bool(caps & Capability.QUIET)
        self.echo = bool(caps & Capability.ECHO)
        if not self.hub.register(self, frames.welcome(self.welcome(caps))):
            self.nick, self.quiet, self.echo = "", False, False
            self.push(self.error_frame(ErrorCode.NICK_IN_USE, FrameType.HELLO))
            return None
        self.state = State.REGISTERED
        self.splitter.max_frame = self.config.max_frame  # §3.2 FRAME-7
        self.tokens, self.refilled = float(self.config.effective_burst), time.monotonic()
        log.info("registered %r", self)
        return None

    def welcome(self, caps: int) -> Welcome:
        cfg = self.config
        return Welcome(
            nick=self.nick,
            caps=caps,
            max_frame=cfg.max_frame,
            max_text=cfg.max_text,
            max_rooms=cfg.max_rooms,
            idle_timeout_ms=round(cfg.idle_timeout * 1000),
            out_limit=cfg.out_limit,
            slow_timeout_ms=round(cfg.slow_timeout * 1000),
            rate=cfg.rate,
            burst=cfg.effective_burst,
            room=self.hub.default_room,
        )

    def on_direct(self, event: Direct) -> None:
        """§7.3 MSG-8: nick syntax, addressee, text length, flood limit, in that order."""
        code = None
        target = self.hub.lookup(event.nick)
        if not is_valid_nick(event.nick):
            code = ErrorCode.NICK_INVALID
        elif target is None:
            code = ErrorCode.NO_SUCH_NICK
        elif len(event.text.encode("utf-8")) > self.config.max_text:
            code = ErrorCode.TEXT_TOO_LONG
        elif not self.take_token():
            code = ErrorCode.RATE_LIMITED
        elif self.hub.direct(self, event.nick, event.text) is None:
            code = ErrorCode.NO_SUCH_NICK  # gone in the meantime
        if code is not None:
            self.push(self.error_frame(code, FrameType.DIRECT))
            return
        if isinstance(target, Session):  # SLOW-4: hold only behind a congested addressee
            self.hold_target = target if target.outbox.congested else None
            self.respect_holds()

    def on_bye(self, event: Bye) -> Ending:
        """§11.4: LEFT(QUIT) with the BYE text (cut to max_text, so LEFT fits a frame)."""
        text = event.text.encode("utf-8")[: self.config.max_text].decode("utf-8", "ignore")
        return Ending(LeaveReason.QUIT, text=text, detail="BYE")

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
        if self.server.closing and graceful:  # the flusher drains and closes (see Server)
            deadline = self.server.deadline(self.config.drain_time)
            self.server.flusher.linger(self.sock, deadline, self.outbox)
            log.debug("disconnect %r: %s", self, ending.reason.name)  # the server sums up
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
