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
returns the bytes to write. The socket-owning code decides when bytes move.
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


def _frame_limit(welcome: Welcome) -> int:
    """§3.2: the limit both directions use after WELCOME, kept within 1 KiB..16 MiB whatever
    a peer advertises."""
    return min(max(welcome.max_frame, MIN_MAX_FRAME), HARD_MAX_FRAME)


class Connection:
    """One side of one chatwire/1 session."""

    def __init__(self, role: Role, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.role = role
        self.state = State.AWAITING_HELLO
        self._decoder = FrameDecoder(max_frame)
        self._sendable = SERVER_TYPES if role is Role.SERVER else CLIENT_TYPES

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

    def next_event(self) -> Event | UnknownFrame | None:
        """The next event from the peer, or None until more bytes arrive.

        Raises :class:`ProtocolError`. A fatal one closes the session; a non-fatal one
        (UNKNOWN_TYPE) means that one frame was skipped and the session goes on.
        """
        if self.state is State.CLOSED:
            return None
        try:
            frame = self._decoder.next_frame()
        except ProtocolError:
            self.state = State.CLOSED
            raise
        if frame is None:
            return None
        # §14 [MAL-17]: the type (defined? from this side? in this state?) before the body.
        ftype, body = frame
        if ftype not in _KNOWN_TYPES:
            return self._unknown(UnknownFrame(ftype, body))
        if ftype not in RECEIVABLE[(self.role, self.state)]:
            self.state = State.CLOSED
            raise ProtocolViolation(self._violation_text(FrameType(ftype)))
        try:
            event = decode_body(ftype, body)
        except ProtocolError:
            self.state = State.CLOSED
            raise
        assert not isinstance(event, UnknownFrame)
        if self.role is Role.CLIENT:
            if isinstance(event, Welcome):
                self.state = State.REGISTERED
                self._decoder.max_frame = _frame_limit(event)
            elif isinstance(event, Error) and event.fatal:
                self.state = State.CLOSED
        return event

    def _unknown(self, event: UnknownFrame) -> UnknownFrame | None:
        if self.role is Role.CLIENT:
            return event  # §15.1: the client ignores it; shown to the caller for logging.
        if self.state is State.AWAITING_HELLO:
            self.state = State.CLOSED
            raise ProtocolViolation(f"frame type 0x{event.frame_type:02X} before HELLO")
        raise UnknownType(f"unknown frame type 0x{event.frame_type:02X}")

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
        if self.role is Role.SERVER:
            if isinstance(event, Welcome):
                self.state = State.REGISTERED
                self._decoder.max_frame = _frame_limit(event)  # §3.2 [FRAME-7]
            elif isinstance(event, Error) and event.fatal:
                self.state = State.CLOSED
        return data

    def close(self) -> None:
        """Mark the session ended (after BYE, or when the transport went away)."""
        self.state = State.CLOSED
