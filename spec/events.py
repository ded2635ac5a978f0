"""Typed events: one frozen dataclass per frame type (§17).

Field names match the construct fields in :mod:`spec.schema` exactly; the codec relies on it,
and a test checks it. ``UnknownFrame`` stands for a frame whose type this version does not
define (§15.1): a client ignores it, a server answers UNKNOWN_TYPE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .constants import DEFAULT_ROOM, PROTOCOL_VERSION, FrameType, code_name, is_fatal


@dataclass(frozen=True, slots=True)
class Hello:
    nick: str
    caps: int = 0
    version: int = PROTOCOL_VERSION
    type: ClassVar[FrameType] = FrameType.HELLO


@dataclass(frozen=True, slots=True)
class Welcome:
    nick: str
    version: int = PROTOCOL_VERSION
    caps: int = 0
    max_frame: int = 65536
    max_text: int = 4096
    max_rooms: int = 16
    idle_timeout_ms: int = 60_000
    out_limit: int = 262_144
    slow_timeout_ms: int = 2_000
    rate: int = 0
    burst: int = 0
    room: str = DEFAULT_ROOM
    type: ClassVar[FrameType] = FrameType.WELCOME


@dataclass(frozen=True, slots=True)
class Send:
    room: str
    text: str
    type: ClassVar[FrameType] = FrameType.SEND


@dataclass(frozen=True, slots=True)
class Deliver:
    room: str
    seq: int
    sender: str
    text: str
    type: ClassVar[FrameType] = FrameType.DELIVER


@dataclass(frozen=True, slots=True)
class Ack:
    room: str
    seq: int
    type: ClassVar[FrameType] = FrameType.ACK


@dataclass(frozen=True, slots=True)
class Direct:
    nick: str
    text: str
    type: ClassVar[FrameType] = FrameType.DIRECT


@dataclass(frozen=True, slots=True)
class Whisper:
    sender: str
    text: str
    type: ClassVar[FrameType] = FrameType.WHISPER


@dataclass(frozen=True, slots=True)
class Join:
    room: str
    type: ClassVar[FrameType] = FrameType.JOIN


@dataclass(frozen=True, slots=True)
class Leave:
    room: str
    type: ClassVar[FrameType] = FrameType.LEAVE


@dataclass(frozen=True, slots=True)
class Who:
    room: str
    type: ClassVar[FrameType] = FrameType.WHO


@dataclass(frozen=True, slots=True)
class Roster:
    room: str
    seq: int
    members: tuple[str, ...]
    more: int = 0
    type: ClassVar[FrameType] = FrameType.ROSTER


@dataclass(frozen=True, slots=True)
class ListRooms:
    type: ClassVar[FrameType] = FrameType.LIST


@dataclass(frozen=True, slots=True)
class RoomEntry:
    name: str
    members: int


@dataclass(frozen=True, slots=True)
class Rooms:
    rooms: tuple[RoomEntry, ...]
    more: int = 0
    type: ClassVar[FrameType] = FrameType.ROOMS


@dataclass(frozen=True, slots=True)
class Joined:
    room: str
    nick: str
    type: ClassVar[FrameType] = FrameType.JOINED


@dataclass(frozen=True, slots=True)
class Left:
    room: str
    nick: str
    reason: int
    text: str = ""
    type: ClassVar[FrameType] = FrameType.LEFT


@dataclass(frozen=True, slots=True)
class Ping:
    token: int
    type: ClassVar[FrameType] = FrameType.PING


@dataclass(frozen=True, slots=True)
class Pong:
    token: int
    type: ClassVar[FrameType] = FrameType.PONG


@dataclass(frozen=True, slots=True)
class Bye:
    text: str = ""
    type: ClassVar[FrameType] = FrameType.BYE


@dataclass(frozen=True, slots=True)
class Error:
    code: int
    text: str = ""
    in_reply_to: int = 0
    type: ClassVar[FrameType] = FrameType.ERROR

    @property
    def fatal(self) -> bool:
        return is_fatal(self.code)

    @property
    def code_name(self) -> str:
        return code_name(self.code)


@dataclass(frozen=True, slots=True)
class UnknownFrame:
    """A frame of a type this version does not define; its body is kept as bytes."""

    frame_type: int
    body: bytes = field(repr=False)


Event = (
    Hello
    | Welcome
    | Send
    | Deliver
    | Ack
    | Direct
    | Whisper
    | Join
    | Leave
    | Who
    | Roster
    | ListRooms
    | Rooms
    | Joined
    | Left
    | Ping
    | Pong
    | Bye
    | Error
)

#: The event class of each known frame type.
EVENT_CLASSES: dict[FrameType, type[Event]] = {
    cls.type: cls
    for cls in (
        Hello,
        Welcome,
        Send,
        Deliver,
        Ack,
        Direct,
        Whisper,
        Join,
        Leave,
        Who,
        Roster,
        ListRooms,
        Rooms,
        Joined,
        Left,
        Ping,
        Pong,
        Bye,
        Error,
    )
}
