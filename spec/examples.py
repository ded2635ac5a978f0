"""One canonical example event per frame type: the hex examples of PROTOCOL.md §17 and the
first valid vector of each type in ``spec/vectors/`` are built from these.
"""

from __future__ import annotations

from .constants import Capability, ErrorCode, FrameType, LeaveReason
from .events import (
    Ack,
    Bye,
    Deliver,
    Direct,
    Error,
    Event,
    Hello,
    Join,
    Joined,
    Leave,
    Left,
    ListRooms,
    Ping,
    Pong,
    RoomEntry,
    Rooms,
    Roster,
    Send,
    Welcome,
    Whisper,
    Who,
)

EXAMPLES: dict[FrameType, Event] = {
    FrameType.HELLO: Hello(nick="alice", caps=int(Capability.ECHO)),
    FrameType.WELCOME: Welcome(nick="alice", caps=int(Capability.ECHO)),
    FrameType.SEND: Send(room="lobby", text="hi"),
    FrameType.DELIVER: Deliver(room="lobby", seq=7, sender="bob", text="héllo"),
    FrameType.ACK: Ack(room="lobby", seq=8),
    FrameType.DIRECT: Direct(nick="bob", text="psst"),
    FrameType.WHISPER: Whisper(sender="alice", text="psst"),
    FrameType.JOIN: Join(room="rust"),
    FrameType.LEAVE: Leave(room="rust"),
    FrameType.WHO: Who(room="lobby"),
    FrameType.ROSTER: Roster(room="lobby", seq=8, members=("alice", "bob")),
    FrameType.LIST: ListRooms(),
    FrameType.ROOMS: Rooms(rooms=(RoomEntry("lobby", 2), RoomEntry("rust", 1))),
    FrameType.JOINED: Joined(room="lobby", nick="carol"),
    FrameType.LEFT: Left(room="lobby", nick="carol", reason=LeaveReason.QUIT, text="bye"),
    FrameType.PING: Ping(token=0x0102030405060708),
    FrameType.PONG: Pong(token=0x0102030405060708),
    FrameType.BYE: Bye(text="bye"),
    FrameType.ERROR: Error(code=ErrorCode.NICK_IN_USE, text="nick in use", in_reply_to=1),
}
