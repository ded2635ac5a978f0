"""The §14 robustness cases, generated from the construct definitions in spec/schema.py.

Bodies are assembled field by field from the schema (so a string field can hold bytes that
are not UTF-8, which the schema itself refuses to build), then broken one rule at a time:
zero and oversize lengths, strings that overrun the frame, trailing bytes, every kind of bad
UTF-8 and U+0000 in every string a client sends, unknown types before and after WELCOME,
server-only types from a client, and the handshake rules (bad magic, bad version, frames before
HELLO, a second HELLO). Each case names the error it must get and whether it is fatal.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from construct import Const, Int8ub, Int16ub, Int32ub, Int64ub

from spec.codec import encode
from spec.constants import (
    CLIENT_TYPES,
    DEFAULT_MAX_FRAME,
    MAGIC,
    SERVER_TYPES,
    ErrorCode,
    FrameType,
)
from spec.events import Welcome
from spec.examples import EXAMPLES
from spec.schema import BODY_STRUCTS, Str8, Str16

Value = bytes | int
_INTS = {id(Int8ub): ">B", id(Int16ub): ">H", id(Int32ub): ">I", id(Int64ub): ">Q"}


def fields(ftype: FrameType) -> list[tuple[str, object]]:
    """(name, construct) of each body field of ``ftype``, in wire order."""
    return [(sc.name, sc.subcon) for sc in BODY_STRUCTS[ftype].subcons]


def string_fields(ftype: FrameType) -> list[str]:
    return [name for name, con in fields(ftype) if con is Str8 or con is Str16]


def body(ftype: FrameType, values: Mapping[str, Value], *, overrun: str = "") -> bytes:
    """The body of ``ftype`` from raw field values; string values are bytes, written as is.

    ``overrun`` names a string field whose count claims one byte more than the frame holds
    (the field is then the last thing written).
    """
    out = b""
    for name, con in fields(ftype):
        if isinstance(con, Const) and name == "magic":
            raw = values.get("magic", MAGIC)
            out += raw if isinstance(raw, bytes) else bytes([raw])
        elif con is Str8 or con is Str16:
            raw = values[name]
            assert isinstance(raw, bytes)
            count = len(raw) + (1 if name == overrun else 0)
            out += struct.pack(">B" if con is Str8 else ">H", count) + raw
            if name == overrun:
                return out
        elif id(con) in _INTS:
            out += struct.pack(_INTS[id(con)], int(values[name]))
        else:
            raise TypeError(f"{ftype.name}.{name}: no raw builder for {con!r}")
    return out


def frame(ftype: int, body_bytes: bytes) -> bytes:
    return struct.pack(">IB", len(body_bytes) + 1, ftype) + body_bytes


def defaults(ftype: FrameType, nick: str) -> dict[str, Value]:
    """Valid raw values for every field of a client frame, from its canonical example."""
    values: dict[str, Value] = {}
    for name, con in fields(ftype):
        if name == "magic":
            continue
        if con is Str8 or con is Str16:
            values[name] = {"nick": nick.encode(), "room": b"lobby"}.get(name, b"hello")
        else:
            values[name] = {"version": 1, "caps": 0, "token": 7}.get(name, 0)
    return values


@dataclass(frozen=True)
class Malformed:
    name: str
    ids: tuple[str, ...]  #: the first is the rule this case checks
    registered: bool  #: send after WELCOME (True) or as the first frame (False)
    code: ErrorCode
    build: Callable[[str, Welcome | None], bytes]  #: (own nick, WELCOME) -> bytes to send
    in_reply_to: int | None  #: expected in_reply_to (None: any)
    #: Requirements the same failure also breaks (a length rule of §14 is also one of §3.2).
    also: tuple[str, ...] = ()

    @property
    def fatal(self) -> bool:
        return self.code.fatal


#: Bad text of each kind of MAL-5..MAL-9.
BAD_TEXT: dict[str, list[tuple[str, bytes]]] = {
    "MAL-5": [("stray-continuation", b"a\x80b"), ("truncated", b"ab\xc3"), ("byte-ff", b"\xff")],
    "MAL-6": [("overlong-slash", b"\xe0\x80\xaf"), ("overlong-c0", b"\xc0\xaf")],
    "MAL-7": [("surrogate-d800", b"\xed\xa0\x80"), ("surrogate-dfff", b"\xed\xbf\xbf")],
    "MAL-8": [("above-10ffff", b"\xf4\x90\x80\x80")],
    "MAL-9": [("nul", b"hi\x00there")],
}
#: Client frames sent after WELCOME that carry strings (HELLO is covered before WELCOME).
POST_TYPES = (
    FrameType.SEND,
    FrameType.DIRECT,
    FrameType.JOIN,
    FrameType.LEAVE,
    FrameType.WHO,
    FrameType.BYE,
)
UNKNOWN_TYPES = (0x00, 0x03, 0x15, 0x60, 0x7E, 0x80, 0xFF)


def _const(data: bytes) -> Callable[[str, Welcome | None], bytes]:
    return lambda nick, welcome: data


def _typed(ftype: FrameType, **overrides: Value) -> Callable[[str, Welcome | None], bytes]:
    def build(nick: str, welcome: Welcome | None) -> bytes:
        values = defaults(ftype, nick) | overrides
        return frame(ftype, body(ftype, values))

    return build


def _hello(magic: bytes = MAGIC, version: int = 1, nick: bytes = b"") -> bytes:
    values: dict[str, Value] = {"magic": magic, "version": version, "caps": 0, "nick": nick}
    return frame(FrameType.HELLO, body(FrameType.HELLO, values))


def generate() -> list[Malformed]:
    cases: list[Malformed] = []
    add = cases.append
    fatal_pv = ErrorCode.PROTOCOL_VIOLATION
    # MAL-1, MAL-2: the length field.
    for reg in (False, True):
        stage = "after-welcome" if reg else "first-frame"
        add(
            Malformed(
                f"length-zero-{stage}",
                ("MAL-1", "ERR-1"),
                reg,
                ErrorCode.MALFORMED,
                _const(b"\x00\x00\x00\x00"),
                0,
            )
        )
        add(
            Malformed(
                f"length-u32-max-{stage}",
                ("MAL-2", "FRAME-8", "ERR-1"),
                reg,
                ErrorCode.FRAME_TOO_LARGE,
                _const(b"\xff\xff\xff\xff"),
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
            _const(struct.pack(">I", DEFAULT_MAX_FRAME + 1)),
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
    # MAL-3: a string (or integer) runs past the end of the frame.
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
            _const(frame(FrameType.PING, b"\x00\x00\x00\x01")),
            int(FrameType.PING),
        )
    )
    add(
        Malformed(
            "SEND-without-text",
            ("MAL-3",),
            True,
            ErrorCode.MALFORMED,
            _const(frame(FrameType.SEND, b"\x05lobby")),
            int(FrameType.SEND),
        )
    )
    # MAL-4: bytes after the last field.
    for ftype in sorted(CLIENT_TYPES):
        reg = ftype is not FrameType.HELLO
        add(
            Malformed(
                f"trailing-byte-{ftype.name}",
                ("MAL-4", "ERR-1"),
                reg,
                ErrorCode.MALFORMED,
                _trailing(ftype),
                int(ftype),
            )
        )
    # MAL-5..MAL-9: bad text in every string a client sends.
    for rule, kinds in BAD_TEXT.items():
        for kind, bad in kinds:
            for name in string_fields(FrameType.HELLO):
                add(
                    Malformed(
                        f"{kind}-in-HELLO-{name}",
                        (rule,),
                        False,
                        ErrorCode.INVALID_UTF8,
                        _typed(FrameType.HELLO, **{name: bad}),
                        int(FrameType.HELLO),
                    )
                )
            for ftype in POST_TYPES:
                for name in string_fields(ftype):
                    add(
                        Malformed(
                            f"{kind}-in-{ftype.name}-{name}",
                            (rule,),
                            True,
                            ErrorCode.INVALID_UTF8,
                            _typed(ftype, **{name: bad}),
                            int(ftype),
                        )
                    )
    # MAL-10, MAL-11: types this version does not define.
    for t in UNKNOWN_TYPES:
        for payload in (b"", b"\x01\x02\x03"):
            tag = f"0x{t:02X}{'-with-body' if payload else ''}"
            add(
                Malformed(
                    f"unknown-type-{tag}-after-welcome",
                    ("MAL-10", "ERR-1", "ERR-3"),
                    True,
                    ErrorCode.UNKNOWN_TYPE,
                    _const(frame(t, payload)),
                    t,
                )
            )
        add(
            Malformed(
                f"unknown-type-0x{t:02X}-first-frame",
                ("MAL-11", "ERR-1"),
                False,
                fatal_pv,
                _const(frame(t, b"")),
                t,
            )
        )
    # MAL-12: server-only types from a client.
    for ftype in sorted(SERVER_TYPES - CLIENT_TYPES):
        add(
            Malformed(
                f"server-type-{ftype.name}-from-client",
                ("MAL-12", "ERR-1"),
                True,
                fatal_pv,
                _const(encode(EXAMPLES[ftype])),
                int(ftype),
            )
        )
    # MAL-13, MAL-14, HS-2: the HELLO magic and version.
    for magic in (b"CHAX", b"chat", b"\x00\x00\x00\x00"):
        add(
            Malformed(
                f"bad-magic-{magic.hex()}",
                ("MAL-13", "ERR-1"),
                False,
                ErrorCode.BAD_MAGIC,
                _const(_hello(magic, nick=b"alice")),
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
                _const(_hello(version=version, nick=b"al")),
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
            _const(future),
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
            _const(odd),
            int(FrameType.HELLO),
        )
    )
    # MAL-15, MAL-16: the handshake order.
    for ftype in sorted(CLIENT_TYPES - {FrameType.HELLO}):
        add(
            Malformed(
                f"{ftype.name}-before-HELLO",
                ("MAL-15", "ERR-1"),
                False,
                fatal_pv,
                _typed(ftype),
                int(ftype),
            )
        )
    add(
        Malformed(
            "second-HELLO-same-nick",
            ("MAL-16", "ERR-1"),
            True,
            fatal_pv,
            lambda nick, w: _hello(nick=nick.encode()),
            int(FrameType.HELLO),
        )
    )
    add(
        Malformed(
            "second-HELLO-other-nick",
            ("MAL-16",),
            True,
            fatal_pv,
            _const(_hello(nick=b"someone-else")),
            int(FrameType.HELLO),
        )
    )
    # MAL-17: the order of the checks.
    add(
        Malformed(
            "order-length-before-type",
            ("MAL-17",),
            True,
            ErrorCode.FRAME_TOO_LARGE,
            lambda n, w: struct.pack(">IB", (w.max_frame if w else 65536) + 1, 0x60),
            0,
        )
    )
    add(
        Malformed(
            "order-type-before-body-DELIVER",
            ("MAL-17", "MAL-12"),
            True,
            fatal_pv,
            _const(frame(FrameType.DELIVER, b"\x09lob")),
            int(FrameType.DELIVER),
        )
    )
    add(
        Malformed(
            "order-type-before-body-first-frame",
            ("MAL-17", "MAL-15"),
            False,
            fatal_pv,
            _const(frame(FrameType.SEND, b"\x05lobby\x00\x09\x80")),
            int(FrameType.SEND),
        )
    )
    add(
        Malformed(
            "order-fields-in-wire-order",
            ("MAL-17",),
            True,
            ErrorCode.INVALID_UTF8,
            _const(frame(FrameType.SEND, b"\x02\xc3\x28\x00\x09ab")),
            int(FrameType.SEND),
        )
    )
    add(
        Malformed(
            "order-text-before-trailing",
            ("MAL-17",),
            True,
            ErrorCode.INVALID_UTF8,
            _const(frame(FrameType.SEND, b"\x05lobby\x00\x01\x80\x00")),
            int(FrameType.SEND),
        )
    )
    add(
        Malformed(
            "order-magic-before-version",
            ("MAL-17", "HS-2"),
            False,
            ErrorCode.BAD_MAGIC,
            _const(_hello(b"CHAX", 9, b"x")),
            int(FrameType.HELLO),
        )
    )
    add(
        Malformed(
            "order-version-before-nick",
            ("MAL-17", "HS-2"),
            False,
            ErrorCode.UNSUPPORTED_VERSION,
            _const(_hello(version=2, nick=b"\xff")),
            int(FrameType.HELLO),
        )
    )
    # MAL-18: value checks on a body that decoded are not fatal.

    def too_long(nick: str, welcome: Welcome | None) -> bytes:
        size = (welcome.max_text if welcome else 4096) + 1
        return frame(FrameType.SEND, body(FrameType.SEND, {"room": b"lobby", "text": b"x" * size}))

    add(
        Malformed(
            "nick-syntax-in-HELLO",
            ("MAL-18", "NICK-1", "HS-13"),
            False,
            ErrorCode.NICK_INVALID,
            _const(_hello(nick=b"no spaces")),
            int(FrameType.HELLO),
        )
    )
    add(
        Malformed(
            "room-syntax-in-JOIN",
            ("MAL-18", "ROOM-1"),
            True,
            ErrorCode.ROOM_INVALID,
            _typed(FrameType.JOIN, room=b"a.b"),
            int(FrameType.JOIN),
        )
    )
    add(
        Malformed(
            "nick-syntax-in-DIRECT",
            ("MAL-18", "MSG-8"),
            True,
            ErrorCode.NICK_INVALID,
            _typed(FrameType.DIRECT, nick=b"a b"),
            int(FrameType.DIRECT),
        )
    )
    add(
        Malformed(
            "text-length-in-SEND",
            ("MAL-18", "TEXT-7"),
            True,
            ErrorCode.TEXT_TOO_LONG,
            too_long,
            int(FrameType.SEND),
        )
    )
    return cases


def _overrun(ftype: FrameType, name: str) -> Callable[[str, Welcome | None], bytes]:
    def build(nick: str, welcome: Welcome | None) -> bytes:
        return frame(ftype, body(ftype, defaults(ftype, nick), overrun=name))

    return build


def _trailing(ftype: FrameType) -> Callable[[str, Welcome | None], bytes]:
    def build(nick: str, welcome: Welcome | None) -> bytes:
        return frame(ftype, body(ftype, defaults(ftype, nick)) + b"\x00")

    return build


CASES = generate()
