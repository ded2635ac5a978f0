"""MAL-1..MAL-4: the length field, fields that run past the frame, bytes after the last field."""

from __future__ import annotations

import struct

from spec.constants import CLIENT_TYPES, DEFAULT_MAX_FRAME, ErrorCode, FrameType
from spec.events import Welcome

from .case import POST_TYPES, Malformed
from .raw import Builder, body, const, defaults, frame, string_fields


def length_cases() -> list[Malformed]:
    """MAL-1, MAL-2: a zero length, and lengths over the frame limit in force."""
    cases: list[Malformed] = []
    add = cases.append
    for reg in (False, True):
        stage = "after-welcome" if reg else "first-frame"
        add(
            Malformed(
                f"length-zero-{stage}",
                ("MAL-1", "ERR-1"),
                reg,
                ErrorCode.MALFORMED,
                const(b"\x00\x00\x00\x00"),
                0,
            )
        )
        add(
            Malformed(
                f"length-u32-max-{stage}",
                ("MAL-2", "FRAME-8", "ERR-1"),
                reg,
                ErrorCode.FRAME_TOO_LARGE,
                const(b"\xff\xff\xff\xff"),
                0,
                also=("FRAME-8",),
            )
        )
    add(
        Malformed(
            "length-65537-before-welcome",
            ("MAL-2", "FRAME-7", "FRAME-8"),
            False,
            ErrorCode.FRAME_TOO_LARGE,
            const(struct.pack(">I", DEFAULT_MAX_FRAME + 1)),
            0,
            also=("FRAME-7", "FRAME-8"),
        )
    )

    def over_max_frame(nick: str, welcome: Welcome | None) -> bytes:
        assert welcome is not None
        return struct.pack(">IB", welcome.max_frame + 1, FrameType.SEND)

    add(
        Malformed(
            "length-max-frame-plus-1-after-welcome",
            ("MAL-2", "FRAME-7", "FRAME-8"),
            True,
            ErrorCode.FRAME_TOO_LARGE,
            over_max_frame,
            0,
            also=("FRAME-7", "FRAME-8"),
        )
    )
    return cases


def overrun_cases() -> list[Malformed]:
    """MAL-3: a string (or integer) runs past the end of the frame."""
    cases: list[Malformed] = []
    add = cases.append
    for ftype in POST_TYPES:
        for name in string_fields(ftype):
            add(
                Malformed(
                    f"overrun-{ftype.name}-{name}",
                    ("MAL-3", "ERR-1"),
                    True,
                    ErrorCode.MALFORMED,
                    _overrun(ftype, name),
                    int(ftype),
                )
            )
    add(
        Malformed(
            "overrun-HELLO-nick",
            ("MAL-3",),
            False,
            ErrorCode.MALFORMED,
            _overrun(FrameType.HELLO, "nick"),
            int(FrameType.HELLO),
        )
    )
    add(
        Malformed(
            "short-PING-token",
            ("MAL-3", "ERR-1"),
            True,
            ErrorCode.MALFORMED,
            const(frame(FrameType.PING, b"\x00\x00\x00\x01")),
            int(FrameType.PING),
        )
    )
    add(
        Malformed(
            "SEND-without-text",
            ("MAL-3",),
            True,
            ErrorCode.MALFORMED,
            const(frame(FrameType.SEND, b"\x05lobby")),
            int(FrameType.SEND),
        )
    )
    return cases


def trailing_cases() -> list[Malformed]:
    """MAL-4: bytes after the last field."""
    return [
        Malformed(
            f"trailing-byte-{ftype.name}",
            ("MAL-4", "ERR-1"),
            ftype is not FrameType.HELLO,
            ErrorCode.MALFORMED,
            _trailing(ftype),
            int(ftype),
        )
        for ftype in sorted(CLIENT_TYPES)
    ]


def _overrun(ftype: FrameType, name: str) -> Builder:
    def build(nick: str, welcome: Welcome | None) -> bytes:
        return frame(ftype, body(ftype, defaults(ftype, nick), overrun=name))

    return build


def _trailing(ftype: FrameType) -> Builder:
    def build(nick: str, welcome: Welcome | None) -> bytes:
        return frame(ftype, body(ftype, defaults(ftype, nick)) + b"\x00")

    return build
