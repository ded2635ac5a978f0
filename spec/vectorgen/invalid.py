"""frames-invalid.json: one or more malformed inputs for every decoding rule of §14.

The bytes are put together by hand (they cannot come from the schema, which refuses to build
them); the expected error of each is checked against the construct definitions before the
file is written, so a vector whose declared error the schema does not produce fails the build.
"""

from __future__ import annotations

import struct
from typing import Any

from ..codec import decode_body_with_construct
from ..constants import (
    DEFAULT_MAX_FRAME,
    HARD_MAX_FRAME,
    MAGIC,
    MIN_MAX_FRAME,
    ErrorCode,
    FrameType,
)
from ..decoder import FrameSplitter
from ..errors import ProtocolError
from .jsonform import document

#: The §14 decoding rules, by the slug each vector's "rule" names (described in the README):
#: the error code each gives, and the requirement ID of PROTOCOL.md a vector cites by default.
RULES: dict[str, tuple[ErrorCode, str]] = {
    "length-zero": (ErrorCode.MALFORMED, "MAL-1"),
    "length-over-limit": (ErrorCode.FRAME_TOO_LARGE, "MAL-2"),
    "field-overrun": (ErrorCode.MALFORMED, "MAL-3"),
    "trailing-bytes": (ErrorCode.MALFORMED, "MAL-4"),
    "invalid-utf8": (ErrorCode.INVALID_UTF8, "MAL-5"),
    "nul-in-text": (ErrorCode.INVALID_UTF8, "MAL-9"),
    "bad-magic": (ErrorCode.BAD_MAGIC, "MAL-13"),
    "bad-version": (ErrorCode.UNSUPPORTED_VERSION, "MAL-14"),
    "short-hello": (ErrorCode.MALFORMED, "MAL-20"),
}


def frame(ftype: int, body: bytes) -> bytes:
    """A frame with a correct length field around ``body``."""
    return struct.pack(">IB", len(body) + 1, ftype) + body


def s8(raw: bytes) -> bytes:
    return bytes((len(raw),)) + raw


def s16(raw: bytes) -> bytes:
    return struct.pack(">H", len(raw)) + raw


def u64(value: int) -> bytes:
    return struct.pack(">Q", value)


T = FrameType
HELLO_HEAD = b"CHAT\x01\x00\x00\x00\x00"  # magic, version 1, caps 0: what precedes the nick
LOBBY = s8(b"lobby")

#: Byte sequences that strict UTF-8 refuses (§2.2), by kind, with the §14 row that names them.
BAD_UTF8: list[tuple[str, bytes, str, str]] = [
    ("overlong-nul", b"a\xc0\x80", "U+0000 as an overlong 2-byte form (C0 80)", "MAL-5"),
    ("overlong-2", b"\xc1\xbf", "an overlong 2-byte form (C1 BF)", "MAL-5"),
    ("overlong-3", b"\xe0\x80\xaf", "'/' as an overlong 3-byte form (E0 80 AF)", "MAL-6"),
    ("overlong-4", b"\xf0\x80\x80\xaf", "'/' as an overlong 4-byte form (F0 80 80 AF)", "MAL-6"),
    ("surrogate-high", b"\xed\xa0\x80", "the surrogate U+D800 (ED A0 80)", "MAL-7"),
    (
        "surrogate-low",
        b"x\xed\xbf\xbfx",
        "the surrogate U+DFFF (ED BF BF) between letters",
        "MAL-7",
    ),
    ("surrogate-pair", b"\xed\xa0\xbd\xed\xb8\x80", "a CESU-8 surrogate pair for U+1F600", "MAL-7"),
    ("truncated-2", b"ab\xc3", "a 2-byte sequence cut after its lead byte", "MAL-5"),
    ("truncated-4", b"\xf0\x9f\x98", "a 4-byte sequence cut after 3 bytes", "MAL-5"),
    ("truncated-middle", b"\xe2\x82x", "a 3-byte sequence interrupted by an ASCII byte", "MAL-5"),
    ("lone-continuation", b"\x80", "a continuation byte with no lead byte", "MAL-5"),
    ("above-max", b"\xf4\x90\x80\x80", "U+110000, above U+10FFFF (F4 90 80 80)", "MAL-8"),
    ("lead-f5", b"\xf5\x80\x80\x80", "the lead byte F5, never valid", "MAL-5"),
    ("byte-ff", b"\xff", "the byte FF, never valid", "MAL-5"),
]

Case = tuple[str, str, bytes]  # name, description, input

#: The vectors of each rule, as (name, description, input).
CASES: dict[str, list[Case]] = {
    # §3.2: the length is checked on its four bytes alone, before any body.
    "length-zero": [
        ("length-zero", "Length 0: not even a type byte.", b"\0\0\0\0"),
        (
            "length-zero-then-bytes",
            "Length 0 followed by bytes that look like a frame.",
            b"\0\0\0\0" + frame(T.PING, u64(1)),
        ),
    ],
    "length-over-limit": [
        (
            "length-u32-max",
            "Length 0xFFFFFFFF: refused from the 4 length bytes alone.",
            b"\xff\xff\xff\xff",
        ),
        (
            "length-over-default",
            "Length 65537 against the default limit 65536, header only.",
            struct.pack(">IB", DEFAULT_MAX_FRAME + 1, T.SEND),
        ),
        (
            "length-over-min-max-frame",
            "Length 1025 against max_frame 1024, header only.",
            struct.pack(">IB", MIN_MAX_FRAME + 1, T.SEND),
        ),
        (
            "length-over-hard-max",
            "One byte over the 16 MiB hard maximum.",
            struct.pack(">I", HARD_MAX_FRAME + 1),
        ),
        (
            "order-length-before-body",
            "Over the limit, and the 7 body bytes present would "
            "overrun a PING token: the length decides first.",
            struct.pack(">IB", MIN_MAX_FRAME + 1, T.PING) + b"\0" * 7,
        ),
    ],
    # §14: a field overrunning the frame.
    "field-overrun": [
        (
            "overrun-str8-length-missing",
            "JOIN with no body: the str8 length byte is missing.",
            frame(T.JOIN, b""),
        ),
        ("overrun-str8", "JOIN whose str8 claims 5 bytes but 3 follow.", frame(T.JOIN, b"\x05abc")),
        (
            "overrun-str8-255",
            "WHO whose str8 claims 255 bytes but 1 follows.",
            frame(T.WHO, b"\xffa"),
        ),
        (
            "overrun-str16-length-half",
            "SEND whose str16 length has only its first byte.",
            frame(T.SEND, LOBBY + b"\x00"),
        ),
        (
            "overrun-str16",
            "SEND whose text claims 256 bytes but 2 follow.",
            frame(T.SEND, LOBBY + b"\x01\x00hi"),
        ),
        ("overrun-u64-ping", "PING whose token has 7 of its 8 bytes.", frame(T.PING, b"\x01" * 7)),
        ("overrun-u64-empty", "PONG with no body at all.", frame(T.PONG, b"")),
        (
            "overrun-u64-deliver",
            "DELIVER cut inside its seq.",
            frame(T.DELIVER, LOBBY + b"\0\0\0\0"),
        ),
        ("overrun-u64-ack", "ACK with a room but no seq.", frame(T.ACK, LOBBY)),
        (
            "overrun-u32-welcome",
            "WELCOME cut inside max_frame.",
            frame(T.WELCOME, b"\x01\0\0\0\0\0\x01"),
        ),
        ("overrun-u16-error", "ERROR with one byte of its u16 code.", frame(T.ERROR, b"\x02")),
        ("overrun-hello-nick-missing", "HELLO ending before its nick.", frame(T.HELLO, HELLO_HEAD)),
        (
            "overrun-roster-count",
            "ROSTER whose count says 3 members but 2 follow.",
            frame(T.ROSTER, LOBBY + u64(1) + b"\0\x00\x03" + s8(b"a") + s8(b"b")),
        ),
        (
            "overrun-roster-count-max",
            "ROSTER whose count says 65535 members and none follow.",
            frame(T.ROSTER, LOBBY + u64(1) + b"\0\xff\xff"),
        ),
        (
            "overrun-rooms-entry",
            "ROOMS whose one entry lacks its u32 member count.",
            frame(T.ROOMS, b"\0\x00\x01" + LOBBY + b"\0\0"),
        ),
    ],
    # §14, §15.1: bytes after the last field (frames never grow fields).
    "trailing-bytes": [
        ("trailing-ping", "PING with a 9th byte.", frame(T.PING, u64(1) + b"\0")),
        ("trailing-list", "LIST has no body; one byte follows the type.", frame(T.LIST, b"\0")),
        (
            "trailing-send",
            "SEND with a byte after its text.",
            frame(T.SEND, LOBBY + s16(b"hi") + b"!"),
        ),
        (
            "trailing-hello",
            "HELLO with a byte after its nick.",
            frame(T.HELLO, HELLO_HEAD + s8(b"alice") + b"\0"),
        ),
        (
            "trailing-roster",
            "ROSTER with a byte after its member list.",
            frame(T.ROSTER, LOBBY + u64(1) + b"\0\x00\x01" + s8(b"a") + b"\0"),
        ),
        (
            "trailing-bye-short-str16",
            "BYE whose str16 says 1 byte but 3 follow.",
            frame(T.BYE, b"\x00\x01abc"),
        ),
    ],
    # §2.2: not strict UTF-8, in many kinds and in every kind of text field.
    "invalid-utf8": [
        *[
            (
                f"utf8-{kind}-send-text",
                f"SEND text holding {what}.",
                frame(T.SEND, LOBBY + s16(raw)),
            )
            for kind, raw, what, _ in BAD_UTF8
        ],
        (
            "utf8-hello-nick",
            "HELLO nick holding a lone continuation byte.",
            frame(T.HELLO, HELLO_HEAD + s8(b"al\x80ce")),
        ),
        ("utf8-join-room", "JOIN room holding a surrogate.", frame(T.JOIN, s8(b"\xed\xa0\x80"))),
        (
            "utf8-deliver-sender",
            "DELIVER sender holding an overlong form.",
            frame(T.DELIVER, LOBBY + u64(1) + s8(b"\xc0\xaf") + s16(b"")),
        ),
        (
            "utf8-roster-member",
            "The second ROSTER member is invalid UTF-8.",
            frame(T.ROSTER, LOBBY + u64(1) + b"\0\x00\x02" + s8(b"a") + s8(b"\xff")),
        ),
        (
            "utf8-rooms-name",
            "A ROOMS entry name above U+10FFFF.",
            frame(T.ROOMS, b"\0\x00\x01" + s8(b"\xf4\x90\x80\x80") + b"\0\0\0\x01"),
        ),
        (
            "utf8-error-text",
            "ERROR text cut inside a sequence.",
            frame(T.ERROR, b"\x01\x01\x01" + s16(b"in use \xe2\x82")),
        ),
        (
            "order-utf8-before-overrun",
            "Invalid room, then a text that overruns: the room, first in order, decides.",
            frame(T.SEND, s8(b"\xff") + b"\x00\x09hi"),
        ),
        (
            "order-utf8-before-trailing",
            "Invalid text, then trailing bytes: INVALID_UTF8.",
            frame(T.BYE, s16(b"\xc3") + b"\0"),
        ),
    ],
    # §2.2: U+0000 is valid UTF-8 and still refused, with the same code.
    "nul-in-text": [
        (
            "nul-hello-nick",
            "HELLO nick holding U+0000.",
            frame(T.HELLO, HELLO_HEAD + s8(b"al\0ce")),
        ),
        ("nul-send-text", "SEND text ending with U+0000.", frame(T.SEND, LOBBY + s16(b"hi\0"))),
        ("nul-send-text-only", "SEND text that is one U+0000.", frame(T.SEND, LOBBY + s16(b"\0"))),
        ("nul-join-room", "JOIN room starting with U+0000.", frame(T.JOIN, s8(b"\0lobby"))),
        (
            "nul-whisper-text",
            "WHISPER text holding U+0000 between multi-byte characters.",
            frame(T.WHISPER, s8(b"bob") + s16("é\0é".encode())),
        ),
    ],
    # §4.1, §14 MAL-20: a HELLO too short to hold magic and version has neither to compare.
    "short-hello": [
        (
            "overrun-magic",
            "HELLO with only 2 bytes of magic: MALFORMED, not BAD_MAGIC.",
            frame(T.HELLO, b"CH"),
        ),
        (
            "short-magic-wrong-letters",
            "HELLO of 3 bytes that could never be the magic: still MALFORMED, not BAD_MAGIC.",
            frame(T.HELLO, b"XYZ"),
        ),
        ("empty-hello", "HELLO with an empty body.", frame(T.HELLO, b"")),
        (
            "overrun-hello-version-missing",
            "HELLO holding the magic and nothing else: the version overruns.",
            frame(T.HELLO, MAGIC),
        ),
    ],
    # §4.1: HELLO must start with the magic.
    "bad-magic": [
        (
            "magic-wrong-letter",
            "HELLO starting with CHAX.",
            frame(T.HELLO, b"CHAX" + HELLO_HEAD[4:] + s8(b"alice")),
        ),
        (
            "magic-lowercase",
            "HELLO starting with 'chat': the magic is case-sensitive.",
            frame(T.HELLO, b"chat" + HELLO_HEAD[4:] + s8(b"alice")),
        ),
        (
            "magic-zeros",
            "HELLO starting with four zero bytes.",
            frame(T.HELLO, b"\0\0\0\0" + HELLO_HEAD[4:] + s8(b"alice")),
        ),
        (
            "order-magic-before-trailing",
            "Bad magic and trailing bytes: the magic comes first.",
            frame(T.HELLO, b"CHAX" + HELLO_HEAD[4:] + s8(b"alice") + b"junk"),
        ),
        (
            "order-magic-before-version",
            "Bad magic and version 2: the magic comes first.",
            frame(T.HELLO, b"CHAX\x02" + HELLO_HEAD[5:] + s8(b"alice")),
        ),
    ],
    # §4.1 [HS-2]: magic, then version, checked before the rest of the HELLO body.
    "bad-version": [
        (
            "version-2",
            "HELLO version 2, otherwise a well-formed chatwire/1 HELLO.",
            frame(T.HELLO, b"CHAT\x02" + HELLO_HEAD[5:] + s8(b"alice")),
        ),
        ("version-0", "HELLO version 0.", frame(T.HELLO, b"CHAT\x00" + HELLO_HEAD[5:] + s8(b"a"))),
        (
            "version-255-bare",
            "HELLO of magic and version 255 only: refused on those five "
            "bytes, not as a field overrun.",
            frame(T.HELLO, b"CHAT\xff"),
        ),
        (
            "version-2-longer-body",
            "A version-2 HELLO with fields chatwire/1 does not know: "
            "UNSUPPORTED_VERSION, not MALFORMED for trailing bytes.",
            frame(T.HELLO, b"CHAT\x02" + HELLO_HEAD[5:] + s8(b"alice") + u64(7) + s8(b"x")),
        ),
        (
            "version-2-other-layout",
            "A version-2 HELLO whose later bytes are no valid "
            "chatwire/1 nick: UNSUPPORTED_VERSION, not INVALID_UTF8.",
            frame(T.HELLO, b"CHAT\x02\xff\xfe\x80"),
        ),
    ],
}

#: Vectors whose requirement differs from their rule's; ``order-*`` vectors cite MAL-17.
REQUIREMENTS: dict[str, str] = {
    **{f"utf8-{kind}-send-text": rid for kind, _, _, rid in BAD_UTF8},
    "utf8-join-room": "MAL-7",
    "utf8-rooms-name": "MAL-8",
    "version-255-bare": "HS-2",
    "version-2-longer-body": "HS-2",
    "version-2-other-layout": "HS-2",
    "length-u32-max": "FRAME-8",
}

#: The vectors run against a limit other than the default 65536.
LIMITS: dict[str, int] = {
    "length-over-min-max-frame": MIN_MAX_FRAME,
    "length-over-hard-max": HARD_MAX_FRAME,
    "order-length-before-body": MIN_MAX_FRAME,
}


def outcome(data: bytes, max_frame: int) -> ProtocolError | None:
    """What the schema-backed splitter makes of ``data``: the first error, or None."""
    splitter = FrameSplitter(max_frame)
    splitter.receive_data(data)
    try:
        while (split := splitter.next_frame()) is not None:
            decode_body_with_construct(*split)
    except ProtocolError as exc:
        return exc
    return None


def requirement_of(rule: str, name: str) -> str:
    if name.startswith("order-"):
        return "MAL-17"
    return REQUIREMENTS.get(name, RULES[rule][1])


def _vector(rule: str, name: str, description: str, data: bytes) -> dict[str, Any]:
    code = RULES[rule][0]
    max_frame = LIMITS.get(name, DEFAULT_MAX_FRAME)
    error = outcome(data, max_frame)
    if error is None or error.code != code:
        raise AssertionError(f"{name}: expected {code.name}, the schema gives {error!r}")
    return {
        "name": name,
        "description": description,
        "hex": data.hex(),
        "max_frame": max_frame,
        "error": code.name,
        "code": int(code),
        "rule": rule,
        "requirement": requirement_of(rule, name),
    }


def build() -> str:
    return document(
        "Malformed input: a receiver limited to 'max_frame' that is fed 'hex' must fail with "
        "the error 'error' (numeric 'code'), and treat it as fatal.",
        [_vector(rule, *case) for rule, cases in CASES.items() for case in cases],
    )
