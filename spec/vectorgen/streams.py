"""streams.json: byte streams holding several frames, and what splitting them must give.

A stream is built from parts: events (encoded by the construct definitions), unknown frames
(type and raw body), and raw bytes at the end (a partial frame, or a bad header). The
expected frames follow from the parts and are checked against the schema-backed splitter
before the file is written.
"""

from __future__ import annotations

import struct
from typing import Any

from ..codec import decode_body_with_construct, encode_with_construct
from ..constants import DEFAULT_MAX_FRAME, MIN_MAX_FRAME, ErrorCode, FrameType
from ..decoder import FrameSplitter
from ..errors import ProtocolError
from ..events import Ack, Deliver, Event, Hello, Joined, Ping, Pong, Roster, Send, UnknownFrame
from ..examples import EXAMPLES
from .invalid import frame
from .jsonform import document, fields_of

Part = Event | UnknownFrame | bytes

UNKNOWN_6E = UnknownFrame(0x6E, b"\x05hello\xff\xfe\x00 not decoded")
AT_LIMIT = Send(room="lobby", text="L" * (MIN_MAX_FRAME - 1 - 6 - 2))  # length == 1024

#: (name, description, max_frame, parts, the error the stream ends in or None)
CASES: list[tuple[str, str, int, list[Part], ErrorCode | None]] = [
    (
        "three-frames",
        "HELLO, PING and SEND back to back.",
        DEFAULT_MAX_FRAME,
        [Hello(nick="alice"), Ping(token=1), Send(room="lobby", text="hi")],
        None,
    ),
    (
        "all-examples",
        "The canonical example of every type, in type order.",
        DEFAULT_MAX_FRAME,
        [EXAMPLES[t] for t in FrameType],
        None,
    ),
    (
        "unknown-type-between",
        "An unknown type 0x6E between known frames: returned as an "
        "unknown frame with its raw body (which is not UTF-8 and must not be decoded), and the "
        "frames after it still come out.",
        DEFAULT_MAX_FRAME,
        [Ping(token=7), UNKNOWN_6E, Pong(token=7)],
        None,
    ),
    (
        "unknown-type-empty-body",
        "Unknown types 0x6E and 0xFF with empty bodies (length 1).",
        DEFAULT_MAX_FRAME,
        [UnknownFrame(0x6E, b""), UnknownFrame(0xFF, b""), Ack("lobby", 1)],
        None,
    ),
    (
        "unknown-type-zero",
        "Type 0x00 is not defined either: an unknown frame.",
        DEFAULT_MAX_FRAME,
        [UnknownFrame(0x00, b"\0\0"), Ping(token=0)],
        None,
    ),
    (
        "partial-header",
        "Two frames, then 3 of the 4 length bytes of a third.",
        DEFAULT_MAX_FRAME,
        [Ping(token=1), Pong(token=1), encode_with_construct(Ping(token=2))[:3]],
        None,
    ),
    (
        "partial-body",
        "A frame, then a DELIVER missing its last byte.",
        DEFAULT_MAX_FRAME,
        [
            Joined(room="lobby", nick="bob"),
            encode_with_construct(Deliver(room="lobby", seq=1, sender="bob", text="hey"))[:-1],
        ],
        None,
    ),
    (
        "partial-only-type",
        "A frame, then a header (length and type) with none of its body.",
        DEFAULT_MAX_FRAME,
        [Ack("lobby", 9), encode_with_construct(Send("lobby", "x"))[:5]],
        None,
    ),
    (
        "roster-continued",
        "A ROSTER split over three frames: more=1, more=1, more=0; a client "
        "joins the member lists.",
        DEFAULT_MAX_FRAME,
        [
            Roster("big", 42, ("a", "b"), more=1),
            Roster("big", 42, ("c",), more=1),
            Roster("big", 42, ("d", "e"), more=0),
        ],
        None,
    ),
    (
        "many-small",
        "Twelve PINGs in one buffer.",
        DEFAULT_MAX_FRAME,
        [Ping(token=n) for n in range(12)],
        None,
    ),
    (
        "at-limit-then-over",
        "A frame exactly max_frame long is accepted; the next header, one "
        "byte longer, is refused from its length bytes alone.",
        MIN_MAX_FRAME,
        [AT_LIMIT, struct.pack(">I", MIN_MAX_FRAME + 1)],
        ErrorCode.FRAME_TOO_LARGE,
    ),
    (
        "frames-then-zero-length",
        "Two frames, then a zero length.",
        DEFAULT_MAX_FRAME,
        [Ping(token=1), Pong(token=2), b"\0\0\0\0"],
        ErrorCode.MALFORMED,
    ),
    (
        "frames-then-malformed",
        "A frame, then a PING with a 7-byte token, then a valid frame that is never reached.",
        DEFAULT_MAX_FRAME,
        [Pong(token=3), frame(FrameType.PING, b"\0" * 7), encode_with_construct(Ping(token=4))],
        ErrorCode.MALFORMED,
    ),
    (
        "frames-then-bad-utf8",
        "A LEFT, then a SEND with an overlong form in its text.",
        DEFAULT_MAX_FRAME,
        [EXAMPLES[FrameType.LEFT], frame(FrameType.SEND, b"\x01a\x00\x04\xe0\x80\xaf!")],
        ErrorCode.INVALID_UTF8,
    ),
]


def _frame_json(part: Event | UnknownFrame) -> dict[str, Any]:
    if isinstance(part, UnknownFrame):
        return {
            "type": part.frame_type,
            "type_name": None,
            "body_hex": part.body.hex(),
            "fields": None,
        }
    body = encode_with_construct(part)[5:]
    return {
        "type": int(part.type),
        "type_name": part.type.name,
        "body_hex": body.hex(),
        "fields": fields_of(part),
    }


def _encode_part(part: Part) -> bytes:
    if isinstance(part, bytes):
        return part
    if isinstance(part, UnknownFrame):
        return frame(part.frame_type, part.body)
    return encode_with_construct(part)


def _check(
    name: str,
    data: bytes,
    max_frame: int,
    frames: list[Event | UnknownFrame],
    error: ErrorCode | None,
    buffered: int | None,
) -> None:
    """Split ``data`` with the schema-backed path and compare with what the vector states."""
    splitter = FrameSplitter(max_frame)
    splitter.receive_data(data)
    got: list[Event | UnknownFrame] = []
    got_error: ErrorCode | None = None
    try:
        while (split := splitter.next_frame()) is not None:
            got.append(decode_body_with_construct(*split))
    except ProtocolError as exc:
        got_error = exc.code
    if got != frames or got_error != error:
        raise AssertionError(f"{name}: the schema gives {got!r}, error {got_error!r}")
    if error is None and splitter.buffered != buffered:
        raise AssertionError(f"{name}: {splitter.buffered} bytes buffered, not {buffered}")


def _vector(
    name: str, description: str, max_frame: int, parts: list[Part], error: ErrorCode | None
) -> dict[str, Any]:
    frames: list[Event | UnknownFrame] = [p for p in parts if not isinstance(p, bytes)]
    tail = b"".join(p for p in parts if isinstance(p, bytes))
    data = b"".join(_encode_part(p) for p in parts)
    buffered = None if error is not None else len(tail)
    _check(name, data, max_frame, frames, error, buffered)
    return {
        "name": name,
        "description": description,
        "max_frame": max_frame,
        "hex": data.hex(),
        "frames": [_frame_json(f) for f in frames],
        "buffered": buffered,
        "error": error.name if error is not None else None,
        "code": int(error) if error is not None else None,
    }


def build() -> str:
    return document(
        "Byte streams: splitting 'hex' (in any chunking) with limit 'max_frame' must give "
        "'frames' in order, then either the error 'error' or 'buffered' bytes left waiting.",
        [_vector(*case) for case in CASES],
    )
