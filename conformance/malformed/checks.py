"""MAL-17: the order in which a server checks a frame; MAL-18: value checks are not fatal."""

from __future__ import annotations

import struct

from spec.constants import ErrorCode, FrameType
from spec.events import Welcome

from .case import Malformed
from .raw import body, const, frame, hello, typed


def check_order_cases() -> list[Malformed]:
    """MAL-17: length before type, type before body, fields in wire order, and so on."""
    return [
        Malformed(
            "order-length-before-type",
            ("MAL-17",),
            True,
            ErrorCode.FRAME_TOO_LARGE,
            lambda n, w: struct.pack(">IB", (w.max_frame if w else 65536) + 1, 0x60),
            0,
        ),
        Malformed(
            "order-type-before-body-DELIVER",
            ("MAL-17", "MAL-12"),
            True,
            ErrorCode.PROTOCOL_VIOLATION,
            const(frame(FrameType.DELIVER, b"\x09lob")),
            int(FrameType.DELIVER),
        ),
        Malformed(
            "order-type-before-body-first-frame",
            ("MAL-17", "MAL-15"),
            False,
            ErrorCode.PROTOCOL_VIOLATION,
            const(frame(FrameType.SEND, b"\x05lobby\x00\x09\x80")),
            int(FrameType.SEND),
        ),
        Malformed(
            "order-fields-in-wire-order",
            ("MAL-17",),
            True,
            ErrorCode.INVALID_UTF8,
            const(frame(FrameType.SEND, b"\x02\xc3\x28\x00\x09ab")),
            int(FrameType.SEND),
        ),
        Malformed(
            "order-text-before-trailing",
            ("MAL-17",),
            True,
            ErrorCode.INVALID_UTF8,
            const(frame(FrameType.SEND, b"\x05lobby\x00\x01\x80\x00")),
            int(FrameType.SEND),
        ),
        Malformed(
            "order-magic-before-version",
            ("MAL-17", "HS-2"),
            False,
            ErrorCode.BAD_MAGIC,
            const(hello(b"CHAX", 9, b"x")),
            int(FrameType.HELLO),
        ),
        Malformed(
            "order-version-before-nick",
            ("MAL-17", "HS-2"),
            False,
            ErrorCode.UNSUPPORTED_VERSION,
            const(hello(version=2, nick=b"\xff")),
            int(FrameType.HELLO),
        ),
    ]


def value_check_cases() -> list[Malformed]:
    """MAL-18: value checks on a body that decoded are not fatal."""

    def too_long(nick: str, welcome: Welcome | None) -> bytes:
        size = (welcome.max_text if welcome else 4096) + 1
        return frame(FrameType.SEND, body(FrameType.SEND, {"room": b"lobby", "text": b"x" * size}))

    return [
        Malformed(
            "nick-syntax-in-HELLO",
            ("MAL-18", "NICK-1", "HS-13"),
            False,
            ErrorCode.NICK_INVALID,
            const(hello(nick=b"no spaces")),
            int(FrameType.HELLO),
        ),
        Malformed(
            "room-syntax-in-JOIN",
            ("MAL-18", "ROOM-1"),
            True,
            ErrorCode.ROOM_INVALID,
            typed(FrameType.JOIN, room=b"a.b"),
            int(FrameType.JOIN),
        ),
        Malformed(
            "nick-syntax-in-DIRECT",
            ("MAL-18", "MSG-8"),
            True,
            ErrorCode.NICK_INVALID,
            typed(FrameType.DIRECT, nick=b"a b"),
            int(FrameType.DIRECT),
        ),
        Malformed(
            "text-length-in-SEND",
            ("MAL-18", "TEXT-7"),
            True,
            ErrorCode.TEXT_TOO_LONG,
            too_long,
            int(FrameType.SEND),
        ),
    ]
