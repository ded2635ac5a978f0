"""frames-valid.json: well-formed frames of every type, with their decoded fields.

Each frame's bytes come from the normative construct definitions
(:func:`spec.codec.encode_with_construct`), and each is parsed back with them before it is
written, so a vector can only exist if the schema builds and accepts it.
"""

from __future__ import annotations

from typing import Any

from ..codec import decode_body_with_construct, encode_with_construct
from ..constants import Capability, ErrorCode, FrameType, LeaveReason
from ..events import (
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
from ..examples import EXAMPLES
from .jsonform import document, fields_of, sender_of

U32_MAX = 0xFFFF_FFFF
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF

#: Text that exercises every UTF-8 sequence length: 1, 2, 3 and 4 bytes.
MIXED_UTF8 = "aé€😀"
LONGEST_NICK = "n" * 32  # §5.1: the longest nick the syntax allows
LONGEST_STR8 = "x" * 255  # §2.1: the most a str8 can hold (the syntax check comes later)

#: (name, description, event) beyond the canonical examples.
EDGE_CASES: list[tuple[str, str, Event]] = [
    (
        "hello-empty-nick",
        "An empty str8 decodes; the nick check (§5.1) comes after decoding.",
        Hello(nick=""),
    ),
    (
        "hello-unknown-caps",
        "Every capability bit set, known or not: the frame decodes and the "
        "server ignores the unknown bits (§4.6).",
        Hello(nick="bob", caps=U32_MAX),
    ),
    (
        "hello-longest-nick",
        "A 32-byte nick, the longest the nick syntax allows.",
        Hello(nick=LONGEST_NICK, caps=int(Capability.QUIET)),
    ),
    (
        "hello-str8-max",
        "A 255-byte nick: the largest str8. It decodes; NICK_INVALID is a "
        "semantic check made afterwards.",
        Hello(nick=LONGEST_STR8),
    ),
    (
        "welcome-all-max",
        "Every integer field at its largest value.",
        Welcome(
            nick="alice",
            version=1,
            caps=U32_MAX,
            max_frame=U32_MAX,
            max_text=0xFFFF,
            max_rooms=0xFFFF,
            idle_timeout_ms=U32_MAX,
            out_limit=U32_MAX,
            slow_timeout_ms=U32_MAX,
            rate=0xFFFF,
            burst=0xFFFF,
            room="x" * 32,
        ),
    ),
    (
        "welcome-quiet-rate",
        "QUIET granted, flood limit on, nick with kept case.",
        Welcome(
            nick="Alice_2",
            caps=int(Capability.QUIET),
            max_frame=1024,
            max_text=512,
            idle_timeout_ms=0,
            rate=10,
            burst=20,
        ),
    ),
    (
        "send-empty",
        "Empty room and empty text: both strings have length 0.",
        Send(room="", text=""),
    ),
    (
        "send-multibyte",
        "Text mixing 1-, 2-, 3- and 4-byte UTF-8 sequences.",
        Send(room="lobby", text=MIXED_UTF8),
    ),
    (
        "send-newlines",
        "Newlines are allowed in message text (§2.2).",
        Send(room="lobby", text="line one\nline two\r\n\ttabbed"),
    ),
    (
        "send-text-300",
        "A 300-byte text: its str16 length needs both bytes (0x012c).",
        Send(room="lobby", text="t" * 300),
    ),
    (
        "send-highest-code-point",
        "U+10FFFF, the highest code point, and U+FFFF are valid.",
        Send(room="lobby", text="\U0010ffff\uffff"),
    ),
    ("deliver-seq-0", "seq 0.", Deliver(room="lobby", seq=0, sender="bob", text="")),
    (
        "deliver-seq-2-32",
        "seq 2^32: the u64 is big-endian over all 8 bytes.",
        Deliver(room="lobby", seq=1 << 32, sender="bob", text="x"),
    ),
    (
        "deliver-seq-u64-max",
        "The largest u64 seq. JSON readers must keep it exact.",
        Deliver(room="lobby", seq=U64_MAX, sender="bob", text=MIXED_UTF8),
    ),
    ("ack-direct", "The ACK of a DIRECT: empty room, seq 0 (§7.3).", Ack(room="", seq=0)),
    ("ack-seq-u64-max", "The largest u64 seq.", Ack(room="lobby", seq=U64_MAX)),
    ("direct-empty-text", "Empty text is allowed (§2.3).", Direct(nick="bob", text="")),
    ("direct-multibyte", "Multi-byte text.", Direct(nick="bob", text=MIXED_UTF8)),
    ("whisper-multibyte", "Multi-byte text.", Whisper(sender="bob", text="日本語")),
    (
        "join-empty-room",
        "An empty room name decodes; ROOM_INVALID comes after decoding.",
        Join(room=""),
    ),
    ("join-str8-max", "A 255-byte room name: the largest str8.", Join(room=LONGEST_STR8)),
    (
        "leave-mixed-case",
        "Room names travel as sent; the server folds them (§6.1).",
        Leave(room="RuSt"),
    ),
    ("who-longest-room", "A 32-byte room name, the longest the syntax allows.", Who(room="r" * 32)),
    (
        "roster-empty",
        "No members (a room that has just emptied), seq 0.",
        Roster(room="lobby", seq=0, members=()),
    ),
    (
        "roster-more",
        "more=1: the member list continues in the next ROSTER (§3.2).",
        Roster(room="lobby", seq=8, members=("alice", "bob"), more=1),
    ),
    (
        "roster-several",
        "Five members, one of them a multi-byte string, seq u64 max.",
        Roster(room="big", seq=U64_MAX, members=("a", "B", "c_c", "d-d", "é")),
    ),
    ("rooms-empty", "No rooms at all.", Rooms(rooms=())),
    (
        "rooms-more",
        "more=1: the list continues in the next ROOMS (§3.2).",
        Rooms(rooms=(RoomEntry("lobby", 3),), more=1),
    ),
    (
        "rooms-several",
        "Four rooms; one member count at u32 max.",
        Rooms(
            rooms=(RoomEntry("a", 1), RoomEntry("b", 2), RoomEntry("c", 0), RoomEntry("d", U32_MAX))
        ),
    ),
    ("joined-longest", "32-byte room and nick.", Joined(room="r" * 32, nick=LONGEST_NICK)),
    *[
        (
            f"left-{reason.name.lower().replace('_', '-')}",
            f"LEFT with reason {reason.name}.",
            Left(room="lobby", nick="carol", reason=reason, text=""),
        )
        for reason in LeaveReason
    ],
    (
        "left-unknown-reason",
        "An unknown reason decodes; clients show it as 'left' (§9.2).",
        Left(room="lobby", nick="carol", reason=200, text="?"),
    ),
    ("ping-zero", "Token 0.", Ping(token=0)),
    ("ping-u64-max", "The largest token.", Ping(token=U64_MAX)),
    ("pong-u64-max", "The largest token.", Pong(token=U64_MAX)),
    ("bye-empty", "BYE without text.", Bye()),
    ("bye-multibyte", "BYE text with multi-byte characters.", Bye(text=MIXED_UTF8)),
    (
        "error-fatal",
        "A fatal code (0x02xx): the server closes after it (§11.2).",
        Error(code=ErrorCode.MALFORMED, text="SEND: string overruns its frame", in_reply_to=0x10),
    ),
    (
        "error-server-shutdown",
        "Fatal, not caused by a frame: in_reply_to 0, empty text.",
        Error(code=ErrorCode.SERVER_SHUTDOWN),
    ),
    (
        "error-unknown-nonfatal",
        "An unknown code in 0x01xx: non-fatal by its range (§11.2).",
        Error(code=0x01FF, text="", in_reply_to=0x10),
    ),
    (
        "error-unknown-fatal",
        "An unknown code outside 0x01xx: fatal by its range (§11.2).",
        Error(code=0x0300, text="x"),
    ),
]


def _vector(name: str, description: str, event: Event) -> dict[str, Any]:
    frame = encode_with_construct(event)
    back = decode_body_with_construct(event.type, frame[5:])
    if back != event:
        raise AssertionError(f"{name}: schema decodes {back!r}, not {event!r}")
    return {
        "name": name,
        "description": description,
        "type": int(event.type),
        "type_name": event.type.name,
        "sender": sender_of(event.type),
        "hex": frame.hex(),
        "fields": fields_of(event),
    }


def cases() -> list[tuple[str, str, Event]]:
    """Every valid case: the canonical example of each type, then the edge cases."""
    canonical = [
        (
            f"{ftype.name.lower()}-example",
            f"The canonical {ftype.name} of spec/examples.py.",
            EXAMPLES[ftype],
        )
        for ftype in FrameType
    ]
    return canonical + EDGE_CASES


def build() -> str:
    vectors = [_vector(*case) for case in cases()]
    return document(
        "Well-formed frames of every chatwire/1 type: decoding 'hex' must give 'fields', and "
        "encoding 'fields' must give 'hex' exactly.",
        vectors,
    )
