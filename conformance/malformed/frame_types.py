"""MAL-10..MAL-12: frame types a client must not send (undefined, or server-only)."""

from __future__ import annotations

from spec.codec import encode
from spec.constants import CLIENT_TYPES, SERVER_TYPES, ErrorCode
from spec.examples import EXAMPLES

from .case import Malformed
from .raw import const, frame

UNKNOWN_TYPES = (0x00, 0x03, 0x15, 0x60, 0x7E, 0x80, 0xFF)


def unknown_type_cases() -> list[Malformed]:
    """MAL-10: types this version does not define, after WELCOME; MAL-11: as the first frame."""
    cases: list[Malformed] = []
    add = cases.append
    for t in UNKNOWN_TYPES:
        for payload in (b"", b"\x01\x02\x03"):
            tag = f"0x{t:02X}{'-with-body' if payload else ''}"
            add(
                Malformed(
                    f"unknown-type-{tag}-after-welcome",
                    ("MAL-10", "ERR-1", "ERR-3"),
                    True,
                    ErrorCode.UNKNOWN_TYPE,
                    const(frame(t, payload)),
                    t,
                )
            )
        add(
            Malformed(
                f"unknown-type-0x{t:02X}-first-frame",
                ("MAL-11", "ERR-1"),
                False,
                ErrorCode.PROTOCOL_VIOLATION,
                const(frame(t, b"")),
                t,
            )
        )
    return cases


def server_type_cases() -> list[Malformed]:
    """MAL-12: server-only types from a client."""
    return [
        Malformed(
            f"server-type-{ftype.name}-from-client",
            ("MAL-12", "ERR-1"),
            True,
            ErrorCode.PROTOCOL_VIOLATION,
            const(encode(EXAMPLES[ftype])),
            int(ftype),
        )
        for ftype in sorted(SERVER_TYPES - CLIENT_TYPES)
    ]
