"""The construct definitions of every chatwire/1 frame: the single source of truth for the bytes.

Rules for using these definitions (construct 2.10.70 has sharp edges):

* Never call ``.compile()`` on anything that parses network input: compiled parsers accept
  truncated frames silently.
* ``parse()`` ignores bytes after the structure, so every body is wrapped in ``Terminated``
  (``BODIES`` below) and :data:`FRAME` ends with ``Terminated`` too.
* ``Enum`` accepts unknown values, so the type byte is a plain ``Int8ub`` here and the known
  types are looked up in :data:`BODIES`; an unknown type is the decoder's business (§15.1).
* Never ``parse_stream()`` a socket. The sans-I/O decoder reads the header itself, checks the
  length, and hands complete bodies to these definitions.

The field tables in PROTOCOL.md §17 are generated from these structures
(``python -m spec.doctables``) and a test checks that the document agrees with them.
"""

from __future__ import annotations

from typing import Any

from construct import (
    Adapter,
    Const,
    Construct,
    FocusedSeq,
    GreedyBytes,
    Int8ub,
    Int16ub,
    Int32ub,
    Int64ub,
    Prefixed,
    PrefixedArray,
    Struct,
    Switch,
    Terminated,
    ValidationError,
    this,
)

from .constants import MAGIC, FrameType


class TextError(ValidationError):  # type: ignore[misc]
    """Text that is not strict UTF-8 or that holds U+0000 (§2.2)."""


class Utf8Text(Adapter):  # type: ignore[misc]
    """Strict UTF-8 without U+0000, over the bytes it wraps (§2.2).

    construct's own string types decode permissively enough to accept NUL, and raise an
    error we could not tell apart from other parse errors; this adapter raises
    :class:`TextError`, which the codec maps to INVALID_UTF8.
    """

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        try:
            text = obj.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TextError(f"invalid UTF-8 at byte {exc.start}", path=path) from None
        if "\x00" in text:
            raise TextError("U+0000 in text", path=path)
        return text

    def _encode(self, obj: str, context: Any, path: str) -> bytes:
        if "\x00" in obj:
            raise TextError("U+0000 in text", path=path)
        return obj.encode("utf-8")


#: §2.1 — a string of at most 255 bytes: u8 byte count, then UTF-8.
Str8 = Prefixed(Int8ub, Utf8Text(GreedyBytes))
#: §2.1 — a string of at most 65535 bytes: u16 byte count, then UTF-8.
Str16 = Prefixed(Int16ub, Utf8Text(GreedyBytes))

Hello = Struct(
    "magic" / Const(MAGIC),
    "version" / Int8ub,
    "caps" / Int32ub,
    "nick" / Str8,
)
Welcome = Struct(
    "version" / Int8ub,
    "caps" / Int32ub,
    "max_frame" / Int32ub,
    "max_text" / Int16ub,
    "max_rooms" / Int16ub,
    "idle_timeout_ms" / Int32ub,
    "out_limit" / Int32ub,
    "slow_timeout_ms" / Int32ub,
    "rate" / Int16ub,
    "burst" / Int16ub,
    "nick" / Str8,
    "room" / Str8,
)
Send = Struct("room" / Str8, "text" / Str16)
Deliver = Struct("room" / Str8, "seq" / Int64ub, "sender" / Str8, "text" / Str16)
Ack = Struct("room" / Str8, "seq" / Int64ub)
Direct = Struct("nick" / Str8, "text" / Str16)
Whisper = Struct("sender" / Str8, "text" / Str16)
Join = Struct("room" / Str8)
Leave = Struct("room" / Str8)
Who = Struct("room" / Str8)
Roster = Struct(
    "room" / Str8,
    "seq" / Int64ub,
    "more" / Int8ub,
    "members" / PrefixedArray(Int16ub, Str8),
)
ListRooms = Struct()
RoomEntry = Struct("name" / Str8, "members" / Int32ub)
Rooms = Struct("more" / Int8ub, "rooms" / PrefixedArray(Int16ub, RoomEntry))
Joined = Struct("room" / Str8, "nick" / Str8)
Left = Struct("room" / Str8, "nick" / Str8, "reason" / Int8ub, "text" / Str16)
Ping = Struct("token" / Int64ub)
Pong = Struct("token" / Int64ub)
Bye = Struct("text" / Str16)
Error = Struct("code" / Int16ub, "in_reply_to" / Int8ub, "text" / Str16)

#: The body structure of each known frame type, in §17 order.
BODY_STRUCTS: dict[FrameType, Construct] = {
    FrameType.HELLO: Hello,
    FrameType.WELCOME: Welcome,
    FrameType.SEND: Send,
    FrameType.DELIVER: Deliver,
    FrameType.ACK: Ack,
    FrameType.DIRECT: Direct,
    FrameType.WHISPER: Whisper,
    FrameType.JOIN: Join,
    FrameType.LEAVE: Leave,
    FrameType.WHO: Who,
    FrameType.ROSTER: Roster,
    FrameType.LIST: ListRooms,
    FrameType.ROOMS: Rooms,
    FrameType.JOINED: Joined,
    FrameType.LEFT: Left,
    FrameType.PING: Ping,
    FrameType.PONG: Pong,
    FrameType.BYE: Bye,
    FrameType.ERROR: Error,
}

#: Each body as it must be parsed: the whole body and nothing after it (§14, trailing bytes).
BODIES: dict[FrameType, Construct] = {
    ftype: FocusedSeq("body", "body" / struct, Terminated) for ftype, struct in BODY_STRUCTS.items()
}

#: §3.1 — a whole frame: u32 length (of type byte + body), u8 type, body.
#: Unknown types parse as raw bytes; the decoder decides what they mean (§15.1).
FRAME = Prefixed(
    Int32ub,
    Struct(
        "type" / Int8ub,
        "body"
        / Switch(this.type, {int(t): s for t, s in BODY_STRUCTS.items()}, default=GreedyBytes),
        Terminated,
    ),
)

#: A buffer that holds exactly one frame and nothing after it.
EXACT_FRAME = FocusedSeq("frame", "frame" / FRAME, Terminated)

__all__ = [
    "BODIES",
    "BODY_STRUCTS",
    "EXACT_FRAME",
    "FRAME",
    "Str8",
    "Str16",
    "TextError",
    "Utf8Text",
]
