"""Raw frames assembled field by field from the construct definitions in spec/schema.py.

A string field here can hold bytes that are not UTF-8, or claim more bytes than the frame
holds, which the schema itself refuses to build; that is what the §14 cases need.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping

from construct import Const, Int8ub, Int16ub, Int32ub, Int64ub

from spec.constants import MAGIC, FrameType
from spec.events import Welcome
from spec.schema import BODY_STRUCTS, Str8, Str16

Value = bytes | int
#: What a case sends, from (own nick, WELCOME or None before it).
Builder = Callable[[str, Welcome | None], bytes]
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
            if not isinstance(raw, bytes):
                raise TypeError(f"{ftype.name}.{name}: a string field takes bytes, not {raw!r}")
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


def const(data: bytes) -> Builder:
    return lambda nick, welcome: data


def typed(ftype: FrameType, **overrides: Value) -> Builder:
    """A valid ``ftype`` frame for the case's nick, with some fields replaced."""

    def build(nick: str, welcome: Welcome | None) -> bytes:
        values = defaults(ftype, nick) | overrides
        return frame(ftype, body(ftype, values))

    return build


def hello(magic: bytes = MAGIC, version: int = 1, nick: bytes = b"") -> bytes:
    values: dict[str, Value] = {"magic": magic, "version": version, "caps": 0, "nick": nick}
    return frame(FrameType.HELLO, body(FrameType.HELLO, values))
