"""Server answers and notices in plain words, for people at a terminal."""

from __future__ import annotations

from spec.constants import ErrorCode, FrameType, LeaveReason
from spec.events import Error, Left

_WHAT_FAILED: dict[int, str] = {
    FrameType.SEND: "message not sent",
    FrameType.DIRECT: "direct message not sent",
    FrameType.JOIN: "could not join",
    FrameType.LEAVE: "could not leave",
    FrameType.WHO: "could not list the members",
    FrameType.LIST: "could not list the rooms",
    FrameType.HELLO: "nick refused",
}

_WHY: dict[int, str] = {
    ErrorCode.NICK_IN_USE: "that nick is taken",
    ErrorCode.NICK_INVALID: "a nick is 1 to 32 of A-Z a-z 0-9 _ -",
    ErrorCode.NO_SUCH_NICK: "nobody with that nick is connected",
    ErrorCode.NO_SUCH_ROOM: "there is no such room (nobody is in it)",
    ErrorCode.NOT_IN_ROOM: "you are not in that room",
    ErrorCode.ROOM_INVALID: "a room name is 1 to 32 of A-Z a-z 0-9 _ -",
    ErrorCode.TOO_MANY_ROOMS: "you are already in as many rooms as the server allows",
    ErrorCode.RATE_LIMITED: "too fast: the server's flood limit dropped it",
    ErrorCode.UNKNOWN_TYPE: "the server did not understand the request",
}

_LEFT: dict[int, str] = {
    LeaveReason.PART: "left",
    LeaveReason.QUIT: "quit",
    LeaveReason.LOST: "lost the connection",
    LeaveReason.TIMEOUT: "timed out",
    LeaveReason.ERROR: "was disconnected for a protocol error",
    LeaveReason.SLOW_CONSUMER: "was disconnected for not keeping up",
    LeaveReason.SHUTDOWN: "left as the server shut down",
}


def request_error(error: Error, max_text: int | None = None) -> str:
    """A non-fatal ERROR: what failed and why."""
    what = _WHAT_FAILED.get(error.in_reply_to, "request failed")
    if error.code == ErrorCode.TEXT_TOO_LONG:
        limit = f" ({max_text} bytes at most)" if max_text else ""
        why = f"the message is too long{limit}"
    else:
        why = _WHY.get(error.code, f"error {error.code_name}")
    detail = f" [{error.text}]" if error.text else ""
    return f"{what}: {why}{detail}"


def left(event: Left) -> str:
    """How someone left, e.g. 'quit ("off to lunch")'; unknown reasons read 'left'."""
    words = _LEFT.get(event.reason, "left")
    return f'{words} ("{event.text}")' if event.text else words
