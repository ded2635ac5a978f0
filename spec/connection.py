"""The chatwire/1 connection state machine, for either side, without I/O.

Rules (PROTOCOL.md §4, §11, §15), stated once here and enforced by the table below:

* A client's first frame is HELLO; until the server accepts one (WELCOME), nothing else may
  come from the client. A refused HELLO (NICK_IN_USE, NICK_INVALID) leaves the session
  unregistered, and the client may try again.
* After WELCOME, HELLO is a violation; so is any server-only type sent by a client. The type
  is judged before the body is decoded (§14), so such a frame is a violation even if malformed.
* Until WELCOME both sides limit frames to 65536; afterwards to WELCOME's ``max_frame`` (§3.2).
* A type this version does not define is skipped: the server answers the non-fatal
  UNKNOWN_TYPE (after registration); a client ignores it.
* A fatal error, in either direction, ends the session: the state becomes CLOSED and stays so.

Use: ``receive_data(bytes)``, then ``next_event()`` until it returns None; ``send(event)``
returns the bytes to write; ``receive_eof()`` when the peer has closed. The socket-owning code
decides when bytes move.

A server that handles bodies its own way (the reference server batches SENDs) uses the
judged step instead of ``next_event``: ``next_frame()`` gives the next ``(type, body)`` whose
type this side may receive now, ``decode(type, body)`` its event, ``next_sends(limit)`` a run
of well-formed SENDs straight from the buffer; ``prepare(event)`` and ``sent(event)`` split
``send`` for output that must be built before it is known to go out (a WELCOME the hub may
still refuse). Every fault is raised as a :class:`ProtocolError` carrying its wire code and
the type of the frame at fault (``in_reply_to``).
"""

from __future__ import annotations

import enum

from .codec import decode_body, encode
from .constants import (
    CLIENT_TYPES,
    DEFAULT_MAX_FRAME,
    HARD_MAX_FRAME,
    MIN_MAX_FRAME,
    SERVER_TYPES,
    FrameType,
)
from .decoder import FrameDecoder
from .errors import LocalProtocolError, ProtocolError, ProtocolViolation, UnknownType
from .events import Error, Event, UnknownFrame, Welcome


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    #: The client has not (successfully) said HELLO yet.
    AWAITING_HELLO = "awaiting-hello"
    #: WELCOME has been sent/received: the session is registered.
    REGISTERED = "registered"
    #: A fatal error or BYE ended the session; nothing more is processed.
    CLOSED = "closed"


#: Which frame types each side may receive, per state. Anything missing is a violation.
#: (A client before WELCOME can receive an ERROR refusing its HELLO, or a fatal one.)
RECEIVABLE: dict[tuple[Role, State], frozenset[FrameType]] = {
    (Role.SERVER, State.AWAITING_HELLO): frozenset({FrameType.HELLO}),
    (Role.SERVER, State.REGISTERED): CLIENT_TYPES - {FrameType.HELLO},
    (Role.CLIENT, State.AWAITING_HELLO): frozenset({FrameType.WELCOME, FrameType.ERROR}),
    (Role.CLIENT, State.REGISTERED): SERVER_TYPES - {FrameType.WELCOME},
}


#: §4.2, §4.4: the frames that open a session; each is sent once, before registration.
_HANDSHAKE = frozenset({FrameType.HELLO, FrameType.WELCOME})
#: §4.2 [HS-8, HS-9]: what each side may send before WELCOME.
_BEFORE_WELCOME = {
    Role.SERVER: frozenset({FrameType.WELCOME, FrameType.ERROR}),
    Role.CLIENT: frozenset({FrameType.HELLO}),
}
_KNOWN_TYPES = frozenset(int(t) for t in FrameType)
#: RECEIVABLE as type bytes, so the judged step tests a frame's type byte as it comes.
_RECEIVABLE_BYTES = {key: frozenset(int(t) for t in types) for key, types in RECEIVABLE.items()}


def _frame_limit(welcome: Welcome) -> int:
    """§3.2: the limit both directions use after WELCOME, kept within 1 KiB..16 MiB whatever
    a peer advertises."""
    return min(max(welcome.max_frame, MIN_MAX_FRAME), HARD_MAX_FRAME)


class Connection:
    """One side of one chatwire/1 session. Slotted: a server holds one per client."""

    __slots__ = ("_decoder", "_receivable", "_sendable", "_state", "registered", "role")

    def __init__(self, role: Role, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.role = role
        self._decoder = FrameDecoder(max_frame)
        self._sendable = SERVER_TYPES if role is Role.SERVER else CLIENT_TYPES
        self.registered = False
        self.state = State.AWAITING_HELLO

    @property
    def state(self) -> State:
        return self._state

    @state.setter
    def state(self, state: State) -> None:
        if state is State.REGISTERED:
            #: Whether WELCOME has passed; it stays True once the session is CLOSED.
            self.registered = True
        self._state = state
        self._receivable = _RECEIVABLE_BYTES.get((self.role, state), frozenset())

    @property
    def max_frame(self) -> int:
        return self._decoder.max_frame

    @max_frame.setter
    def max_frame(self, value: int) -> None:
        self._decoder.max_frame = value

    @property
    def buffered(self) -> int:
        return self._decoder.buffered

    # -- input --------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        self._decoder.receive_data(data)

    def receive_eof(self) -> int:
        """The peer closed its sending direction: the session is over (CLOSED). Returns how
        many bytes of a frame it cut short were discarded (0: it ended between frames)."""
        cut = self._decoder.buffered
        self.state = State.CLOSED
        return cut

    def next_event(self) -> Event | UnknownFrame | None:
        """The next event from the peer, or None until more bytes arrive.

        Raises :class:`ProtocolError`. A fatal one closes the session; a non-fatal one
        (UNKNOWN_TYPE) means that one frame was skipped and the session goes on.
        """
        frame = self.next_frame()
        if frame is None:
            return None
        ftype, body = frame
        if ftype not in _KNOWN_TYPES:  # only a client gets here (§15.1)
            return UnknownFrame(ftype, body)
        return self.decode(ftype, body)

    def next_frame(self) -> tuple[int, bytes] | None:
        """The judged step: the next whole frame, its type checked (defined? from this side?
        in this state?) and its body not yet decoded (§14 MAL-17: length, type, then body).
        None until a whole frame is in, and always once CLOSED.

        Raises like :meth:`next_event`. A client gets frames of unknown type too (§15.1);
        a server never does: it raises the non-fatal UNKNOWN_TYPE (the frame is skipped).
        """
        if self._state is State.CLOSED:
            return None
        try:
            frame = self._decoder.next_frame()
        except ProtocolError:
            self.state = State.CLOSED
            raise
        if frame is not None and frame[0] not in self._receivable:
            self._judge(frame[0])
        return frame

    def next_sends(self, limit: int) -> list[tuple[bytes, bytes]]:
        """A registered server's run of well-formed SENDs at the front of the buffer, each as
        (room UTF-8 bytes, text str16 bytes), at most ``limit``; [] if the next frame is
        anything else (take it with :meth:`next_frame`). A SEND is always receivable then,
        and a run holds only SENDs that :meth:`decode` would accept."""
        if self._state is not State.REGISTERED or self.role is not Role.SERVER:
            return []
        return self._decoder.next_sends(limit)

    def decode(self, ftype: int, body: bytes) -> Event:
        """The event of a frame :meth:`next_frame` gave; a fault in the body is fatal."""
        try:
            event = decode_body(ftype, body)
        except ProtocolError as exc:
            self.state = State.CLOSED
            exc.in_reply_to = ftype
            raise
        assert not isinstance(event, UnknownFrame)
        if self.role is Role.CLIENT:
            if isinstance(event, Welcome):
                self.state = State.REGISTERED
                self._decoder.max_frame = _frame_limit(event)
            elif isinstance(event, Error) and event.fatal:
                self.state = State.CLOSED
        return event

    def _judge(self, ftype: int) -> None:
        """Raise for a frame type not receivable now (a client's unknown type passes)."""
        if ftype not in _KNOWN_TYPES:
            if self.role is Role.CLIENT:
                return  # §15.1: the client ignores it; shown to the caller for logging.
            if self.state is State.AWAITING_HELLO:
                self.state = State.CLOSED
                raise ProtocolViolation(f"frame type 0x{ftype:02X} before HELLO", in_reply_to=ftype)
            raise UnknownType(f"unknown frame type 0x{ftype:02X}", in_reply_to=ftype)
        self.state = State.CLOSED
        raise ProtocolViolation(self._violation_text(FrameType(ftype)), in_reply_to=ftype)

    def _violation_text(self, ftype: FrameType) -> str:
        if self.role is Role.SERVER:
            if self.state is State.AWAITING_HELLO:
                return f"{ftype.name} before HELLO"
            if ftype is FrameType.HELLO:
                return "second HELLO after registration"
            return f"{ftype.name} is sent by servers, not clients"
        if self.state is State.AWAITING_HELLO:
            return f"{ftype.name} before WELCOME"
        return f"{ftype.name} is sent by clients, not servers"

    # -- output -------------------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        """The bytes for ``event``; raises :class:`LocalProtocolError` if this side may not."""
        data = self.prepare(event)
        self.sent(event)
        return data

    def prepare(self, event: Event) -> bytes:
        """The checks and bytes of :meth:`send`, without its state change (see :meth:`sent`)."""
        if event.type not in self._sendable:
            raise LocalProtocolError(f"a {self.role.value} does not send {event.type.name}")
        if self.state is State.CLOSED and not isinstance(event, Error):
            raise LocalProtocolError(f"session closed; cannot send {event.type.name}")
        if self.state is State.REGISTERED and event.type in _HANDSHAKE:
            raise LocalProtocolError(f"already registered; cannot send {event.type.name}")
        if self.state is State.AWAITING_HELLO and event.type not in _BEFORE_WELCOME[self.role]:
            raise LocalProtocolError(f"§4.2: {event.type.name} may not be sent before WELCOME")
        data = encode(event)
        if len(data) - 4 > self._decoder.max_frame:  # §3.2 [FRAME-4, FRAME-5]
            raise LocalProtocolError(
                f"{event.type.name} frame of length {len(data) - 4} > {self._decoder.max_frame}"
            )
        return data

    def sent(self, event: Event) -> None:
        """Record that ``event`` (checked by :meth:`prepare`) went out: a server's WELCOME
        registers the session (§3.2 [FRAME-7]: the new frame limit), a fatal ERROR ends it."""
        if self.role is Role.SERVER:
            if isinstance(event, Welcome):
                self.state = State.REGISTERED
                self._decoder.max_frame = _frame_limit(event)
            elif isinstance(event, Error) and event.fatal:
                self.state = State.CLOSED

    def close(self) -> None:
        """Mark the session ended (after BYE, or when the transport went away)."""
        self.state = State.CLOSED
