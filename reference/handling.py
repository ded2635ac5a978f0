"""How a session handles its client's frames: every request, on the spec's state machine.

A base class of :class:`reference.session.Session`, kept apart so each module stays readable:
the thread, timers and closing live in ``session.py``, the protocol's requests here. Which
frame may come when, and what a fault in one is, is decided by ``spec.connection.Connection``
(the judged step ``next_frame`` and ``decode``), never here. Faults are raised as typed
errors and become the session's ERROR in one place (``ending.from_error``).

Runs of SENDs are taken straight from the receive buffer (``Connection.next_sends``: no body
or event object per message), checked, and fanned out to a room as one batch (one push per
member per batch); the §12.3 holds on senders are here too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container

from spec.codec import error_frame
from spec.connection import Connection, Role, State
from spec.constants import KNOWN_CAPABILITIES, Capability, ErrorCode, FrameType, LeaveReason
from spec.errors import ProtocolError, UnknownType
from spec.events import (
    Bye,
    Direct,
    Hello,
    Join,
    Leave,
    ListRooms,
    Ping,
    Pong,
    Send,
    Welcome,
    Who,
)
from spec.fastpath import encode_pong
from spec.names import fold, is_valid_nick, is_valid_room

from .ending import Ending, from_error
from .host import SessionConfig, SessionHost
from .hubapi import Addressee, RoomHub
from .outbox import Outbox

log = logging.getLogger("reference.server")

#: A run of SENDs to one room is fanned out as one batch of at most this many messages, so
#: a member's pending output overshoots ``out_limit`` by a bounded amount (§12.3).
BATCH_MESSAGES = 64
BATCH_BYTES = 16384
_SEND = int(FrameType.SEND)

#: Room names as they come on the wire -> the room's key (§6.1 syntax, §5.2 folding), or None
#: for a name that breaks the syntax. Shared by every session; bounded by clearing.
_ROOM_KEYS: dict[bytes, str | None] = {}
_ROOM_KEYS_MAX = 4096

#: ERROR frames for non-fatal refusals, by (code, in_reply_to): built once, shared.
_REFUSALS: dict[tuple[int, int], bytes] = {}


def room_key(raw: bytes) -> str | None:
    """The key of the room named by ``raw`` (valid UTF-8), or None if the name is invalid."""
    key = _ROOM_KEYS.get(raw, "")
    if key != "":
        return key
    name = raw.decode("utf-8")
    key = fold(name) if is_valid_room(name) else None
    if len(_ROOM_KEYS) >= _ROOM_KEYS_MAX:
        _ROOM_KEYS.clear()
    _ROOM_KEYS[raw] = key
    return key


def refusal(code: ErrorCode, in_reply_to: int) -> bytes:
    """The ERROR frame of a non-fatal refusal (§11.2), its text the code's name."""
    key = (code, in_reply_to)
    frame = _REFUSALS.get(key)
    if frame is None:
        text = code.name.lower().replace("_", " ")
        frame = _REFUSALS[key] = error_frame(code, text, in_reply_to)
    return frame


class _SendBatch:
    """Accepted SENDs to one room not yet handed to the hub, and that room's members."""

    __slots__ = ("members", "room", "size", "texts")

    def __init__(self) -> None:
        self.room = ""
        self.members: Container[object] | None = None
        self.texts: list[bytes] = []
        self.size = 0


class FrameHandling:
    """Request handling for one client. Slotted: one per client, and each client should cost
    the server little memory (a subclass without ``__slots__`` gets a ``__dict__`` back)."""

    __slots__ = (
        "config",
        "conn",
        "echo",
        "hold_room",
        "hold_target",
        "host",
        "hub",
        "last_frame",
        "nick",
        "outbox",
        "pinged",
        "push",
        "quiet",
        "refilled",
        "tokens",
    )

    def __init__(self, host: SessionHost, outbox: Outbox) -> None:
        self.host = host
        self.config: SessionConfig = host.config
        self.hub: RoomHub = host.hub
        self.outbox = outbox
        #: Queue bytes for this client: the outbox's own method, so that a fan-out's one call
        #: per member is one Python call, not two.
        self.push: Callable[[bytes], None] = outbox.push
        #: The spec's state machine; until WELCOME it limits frames to 65536 (§3.2).
        self.conn = Connection(Role.SERVER)
        self.nick = ""
        self.quiet = False
        self.echo = False
        now = time.monotonic()
        self.last_frame = now
        self.pinged = False
        self.tokens = float(self.config.effective_burst)
        self.refilled = now
        #: §12.3: the members of the room of the last accepted SEND, and the addressee of the
        #: last accepted DIRECT if it was congested then.
        self.hold_room: Container[object] | None = None
        self.hold_target: Addressee | None = None

    @property
    def state(self) -> State:
        return self.conn.state

    def shutdown_ending(self) -> Ending:
        """§11.5, §9.2: everyone gets SERVER_SHUTDOWN, so LEFT notices are skipped. One
        Ending for all (it is immutable): thousands of threads end at once at shutdown."""
        return self.host.shutdown_ending

    def process(self) -> Ending | None:
        """Handle every whole frame buffered, in order (§8.5)."""
        conn = self.conn
        batch = _SendBatch()
        handled = 0
        ending: Ending | None = None
        looked = 0
        try:
            while ending is None:
                # Shutdown: act on nothing more. A busy thread also looks at the stop pipe
                # itself every few dozen frames (see ``Session.serve``).
                if self.host.closing or (
                    handled - looked >= 64 and (looked := handled) and self.host.stop_requested()
                ):
                    ending = self.shutdown_ending()
                    break
                if self.outbox.failed is not None:  # cut (§12.2): act on nothing more
                    break
                run = conn.next_sends(BATCH_MESSAGES)
                if run:
                    handled += len(run)
                    self.take_sends(run, batch)
                    if conn.buffered:
                        continue
                    break
                try:
                    frame = conn.next_frame()
                except UnknownType as exc:  # §15.1: answered, skipped, the session goes on
                    handled += 1
                    self.flush_sends(batch)
                    self.respect_holds()
                    self.push(refusal(exc.code, exc.in_reply_to))
                    continue
                if frame is None:
                    break
                handled += 1
                self.flush_sends(batch)
                self.respect_holds()
                if self.aborting():  # cut or shut down while held: this frame is not acted on
                    continue
                # Not dispatch(*frame): a star call costs a C frame, a stack page per thread.
                ending = self.dispatch(frame[0], frame[1])
        except ProtocolError as exc:  # a fatal fault in the stream or a frame (§14)
            ending = from_error(exc)
        self.flush_sends(batch)  # what was accepted before a fault still goes out first
        if handled:  # after any hold: time held is not silence (§10.2 KEEP-7)
            self.last_frame = time.monotonic()
            self.pinged = False
        return ending

    def take_sends(self, run: list[tuple[bytes, bytes]], batch: _SendBatch) -> None:
        """Each SEND's checks in the order of §7.1 MSG-1: room syntax, membership, text
        length, flood limit (which alone takes a token); accepted ones join the batch."""
        rooms = self.hub.rooms_of(self)
        max_text = self.config.max_text
        limited = self.config.rate > 0
        cap = max(1, min(BATCH_BYTES, self.config.out_limit // 8))
        # A run names one room with one bytes object for consecutive SENDs to it (see
        # ``scan_sends``); once that room passed the first two checks, they hold for the rest
        # of the run (membership changes only by this client's own JOIN and LEAVE).
        passed: bytes | None = None
        key = ""
        for room8, text16 in run:
            if room8 is not passed:
                found = room_key(room8)
                if found is None:
                    self.refuse_send(batch, ErrorCode.ROOM_INVALID)
                    continue
                if found not in rooms:
                    self.refuse_send(batch, ErrorCode.NOT_IN_ROOM)
                    continue
                key, passed = found, room8
            if len(text16) - 2 > max_text:
                code = ErrorCode.TEXT_TOO_LONG
            elif limited and not self.take_token():
                code = ErrorCode.RATE_LIMITED
            else:
                texts = batch.texts
                if texts and (
                    key != batch.room or len(texts) >= BATCH_MESSAGES or batch.size >= cap
                ):
                    self.flush_sends(batch)
                    texts = batch.texts
                if not texts:
                    batch.room = key
                    batch.members = rooms[key].members
                texts.append(text16)
                batch.size += len(text16)
                continue
            self.refuse_send(batch, code)

    def refuse_send(self, batch: _SendBatch, code: ErrorCode) -> None:
        """Answer a SEND with ERROR, after the accepted SENDs before it (§8.5)."""
        self.flush_sends(batch)
        self.respect_holds()
        self.push(refusal(code, _SEND))

    def flush_sends(self, batch: _SendBatch) -> None:
        if batch.texts:
            self.send_batch(batch.room, batch.texts, batch.members)
            batch.texts = []
            batch.size = 0

    def send_batch(
        self, room: str, texts16: list[bytes], members: Container[object] | None
    ) -> None:
        """Accept a batch of checked SENDs to one room, then hold (§12.3 SLOW-3)."""
        self.respect_holds()
        if self.aborting():  # cut or shut down while held: the batch is not accepted
            return
        code = self.hub.send(self, room, texts16)
        if code is not None:  # only if a subclass's checks let a bad one through
            self.push(refusal(code, _SEND) * len(texts16))
            return
        self.hold_room = members
        self.respect_holds()

    def respect_holds(self) -> None:
        """§12.3: handle nothing more from this sender while a member of the room of its last
        accepted SEND (SLOW-3), or the congested addressee of its last DIRECT (SLOW-4), or
        the client itself (SLOW-10: its own answers), is congested: at most until the watchdog
        cuts them (plus a margin, should it run late). Costs one test when nothing anywhere
        is congested."""
        congestion = self.host.congestion
        if not congestion.congested:
            return
        members, target, own = self.hold_room, self.hold_target, self.outbox

        def blocked() -> bool:
            if own.congested or (target is not None and target.outbox.congested):
                return True
            return members is not None and congestion.any_member_congested(members)

        if not blocked():
            return
        self.host.flusher.write_behind_now()  # what this thread owes others goes out first
        deadline = time.monotonic() + 2 * self.config.slow_timeout + 1.0
        self.host.turns.release()  # a held sender lets others run meanwhile (SLOW-5)
        try:
            held = congestion.wait_while(blocked, deadline, self.aborting)
        finally:
            self.host.turns.acquire()
        if not held and not self.aborting():
            log.warning("%r: held back past the slow-consumer deadline", self)

    def aborting(self) -> bool:
        return self.host.closing or self.outbox.failed is not None

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
        return refusal(code, in_reply_to)

    def dispatch(self, ftype: int, body: bytes) -> Ending | None:
        """A frame the state machine let through (any but a run of good SENDs): its event
        (a fault in the body raises), then its handler."""
        event = self.conn.decode(ftype, body)
        match event:
            case Hello():
                return self.on_hello(event)
            case Send():  # only if the run scanner left a SEND that decodes (never, proven)
                batch = _SendBatch()
                self.take_sends([(event.room.encode(), body[1 + body[0] :])], batch)
                self.flush_sends(batch)
            case Join():
                self.answer(self.hub.join(self, event.room), ftype)
            case Leave():
                self.answer(self.hub.leave(self, event.room), ftype)
            case Who():
                self.answer(self.hub.who(self, event.room), ftype)
            case ListRooms():
                self.hub.list_rooms(self)
            case Direct():
                self.on_direct(event)
            case Ping():
                self.hub.sync(self)  # §8.5 ORD-10: after what others' answered requests caused
                self.push(encode_pong(Pong(event.token)))
            case Bye():
                return self.on_bye(event)
        return None  # PONG: activity only

    def answer(self, code: ErrorCode | None, ftype: int) -> None:
        if code is not None:
            self.push(refusal(code, ftype))

    def on_hello(self, hello: Hello) -> Ending | None:
        if not is_valid_nick(hello.nick):
            self.push(refusal(ErrorCode.NICK_INVALID, FrameType.HELLO))
            return None
        caps = hello.caps & int(KNOWN_CAPABILITIES)
        self.nick = hello.nick
        self.quiet = bool(caps & Capability.QUIET)
        self.echo = bool(caps & Capability.ECHO)
        welcome = self.welcome(caps)
        if not self.hub.register(self, self.conn.prepare(welcome)):
            self.nick, self.quiet, self.echo = "", False, False
            self.push(refusal(ErrorCode.NICK_IN_USE, FrameType.HELLO))
            return None
        self.conn.sent(welcome)  # registered; frames limited to max_frame now (§3.2 FRAME-7)
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
            self.push(refusal(code, FrameType.DIRECT))
            return
        if isinstance(target, Addressee):  # SLOW-4: hold only behind a congested one
            self.hold_target = target if target.outbox.congested else None
            self.respect_holds()

    def on_bye(self, event: Bye) -> Ending:
        """§11.4: LEFT(QUIT) with the BYE text (cut to max_text, so LEFT fits a frame)."""
        text = event.text.encode("utf-8")[: self.config.max_text].decode("utf-8", "ignore")
        return Ending(LeaveReason.QUIT, text=text, detail="BYE")
