"""MAL-13..MAL-16 and HS-2: the HELLO magic and version, and the order of the handshake."""

from __future__ import annotations

from spec.constants import CLIENT_TYPES, MAGIC, ErrorCode, FrameType

from .case import Malformed
from .raw import const, frame, hello, typed


def magic_and_version_cases() -> list[Malformed]:
    """MAL-13, MAL-14, MAL-20, HS-2: the HELLO magic and version."""
    cases: list[Malformed] = []
    add = cases.append
    for magic in (b"CHAX", b"chat", b"\x00\x00\x00\x00"):
        add(
            Malformed(
                f"bad-magic-{magic.hex()}",
                ("MAL-13", "ERR-1"),
                False,
                ErrorCode.BAD_MAGIC,
                const(hello(magic, nick=b"alice")),
                int(FrameType.HELLO),
            )
        )
    for version in (0, 2, 255):
        add(
            Malformed(
                f"version-{version}",
                ("MAL-14", "ERR-1"),
                False,
                ErrorCode.UNSUPPORTED_VERSION,
                const(hello(version=version, nick=b"al")),
                int(FrameType.HELLO),
            )
        )
    future = frame(FrameType.HELLO, MAGIC + b"\x02" + b"\xf0\x9f")  # a v2 HELLO's own layout
    add(
        Malformed(
            "version-2-with-other-layout",
            ("HS-2", "MAL-14"),
            False,
            ErrorCode.UNSUPPORTED_VERSION,
            const(future),
            int(FrameType.HELLO),
        )
    )
    for name, body in (("2-bytes", b"CH"), ("3-wrong-bytes", b"XYZ"), ("magic-only", MAGIC)):
        add(
            Malformed(
                f"short-hello-{name}",
                ("MAL-20", "ERR-1"),
                False,
                ErrorCode.MALFORMED,
                const(frame(FrameType.HELLO, body)),
                int(FrameType.HELLO),
            )
        )
    odd = frame(FrameType.HELLO, b"HTTP\x01\x02")
    add(
        Malformed(
            "bad-magic-then-short-body",
            ("HS-2", "MAL-13"),
            False,
            ErrorCode.BAD_MAGIC,
            const(odd),
            int(FrameType.HELLO),
        )
    )
    return cases


def handshake_order_cases() -> list[Malformed]:
    """MAL-15, MAL-16: frames before HELLO, and a second HELLO."""
    cases = [
        Malformed(
            f"{ftype.name}-before-HELLO",
            ("MAL-15", "ERR-1"),
            False,
            ErrorCode.PROTOCOL_VIOLATION,
            typed(ftype),
            int(ftype),
        )
        for ftype in sorted(CLIENT_TYPES - {FrameType.HELLO})
    ]
    cases.append(
        Malformed(
            "second-HELLO-same-nick",
            ("MAL-16", "ERR-1"),
            True,
            ErrorCode.PROTOCOL_VIOLATION,
            lambda nick, w: hello(nick=nick.encode()),
            int(FrameType.HELLO),
        )
    )
    cases.append(
        Malformed(
            "second-HELLO-other-nick",
            ("MAL-16",),
            True,
            ErrorCode.PROTOCOL_VIOLATION,
            const(hello(nick=b"someone-else")),
            int(FrameType.HELLO),
        )
    )
    return cases
