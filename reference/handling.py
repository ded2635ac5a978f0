"""How a session handles its client's frames: state checks, decoding, every request.

A mixin of :class:`reference.session.Session`, kept apart so each module stays readable:
the thread, timers and closing live in ``session.py``, the protocol's requests here.
Runs of SENDs to one room are batched (one push per member per batch); the §12.3 holds on
senders are here too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Container
from typing import TYPE_CHECKING, ClassVar

from spec import fastpath
from spec.codec import decode_body, encode, error_frame_for
from spec.connection import RECEIVABLE, Role, State
from spec.constants import KNOWN_CAPABILITIES, Capability, ErrorCode, FrameType, LeaveReason
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

from .ending import Ending, fatal
from .hubapi import Addressee, RoomHub
from .outbox import Outbox

if TYPE_CHECKING:
    from .server import Server, ServerConfig

log = logging.getLogger("reference.server")

#: A run of SENDs to one room is fanned out as one batch of at most this many messages, so
#: a member's pending output overshoots ``out_limit`` by a bounded amount (§12.3).
BATCH_MESSAGES = 64
BATCH_BYTES = 16384


class FrameHandling:
    """Request handling for a session; the attributes are set up by Session. Slotted: one
    per client, and each client should cost the server little memory (a subclass without
    ``__slots__`` simply gets a ``__dict__`` back)."""

    __slots__ = (
        "config",
        "echo",
        "hold_room",
        "hold_target",
        "hub",
        "last_frame",
        "nick",
        "outbox",
        "pinged",
        "quiet",
        "refilled",
        "server",
        "splitter",
        "state",
        "tokens",
    )

    server: Server
    config: ServerConfig
    hub: RoomHub
    outbox: Outbox
    splitter: FrameSplitter
    state: State
    nick: str
    quiet: bool
    echo: bool
    last_frame: float
    pinged: bool
    tokens: float
    refilled: float
    hold_room: Container[object] | None
    hold_target: Addressee | None

    #: ERROR frames for non-fatal refusals, by (code, in_reply_to): built once, shared.
    _errors: ClassVar[dict[tuple[int, int], bytes]] = {}

    def push(self, data: bytes) -> None:
        self.outbox.push(data)

    def shutdown_ending(self) -> Ending:
        """§11.5, §9.2: everyone gets SERVER_SHUTDOWN, so LEFT notices are skipped. One
        Ending for all (it is immutable): thousands of threads end at once at shutdown."""
        return self.server.shutdown_ending

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
            self.hub.sync(self)  # §8.5 ORD-10: after what others' answered requests caused
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
            hello = fastpath.decode_hello(body)
        except ProtocolError as exc:
            return self.protocol_error(exc, FrameType.HELLO)
        if not is_valid_nick(hello.nick):
            self.push(self.error_frame(ErrorCode.NICK_INVALID, FrameType.HELLO))
            return None
        caps = hello.caps & int(KNOWN_CAPABILITIES)
        self.nick = hello.nick
        self.quiet = bool(caps & Capability.QUIET)
        self.echo = bool(caps & Capability.ECHO)
        if not self.hub.register(self, fastpath.encode_welcome(self.welcome(caps))):
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
        if isinstance(target, Addressee):  # SLOW-4: hold only behind a congested one
            self.hold_target = target if target.outbox.congested else None
            self.respect_holds()

    def on_bye(self, event: Bye) -> Ending:
        """§11.4: LEFT(QUIT) with the BYE text (cut to max_text, so LEFT fits a frame)."""
        text = event.text.encode("utf-8")[: self.config.max_text].decode("utf-8", "ignore")
        return Ending(LeaveReason.QUIT, text=text, detail="BYE")
