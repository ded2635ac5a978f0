"""Encode events to frames and decode frame bodies to events.

Two paths produce the same bytes: the construct definitions (:mod:`spec.schema`, normative)
and the hand-written fast path (:mod:`spec.fastpath`) for the hot frame types. ``encode`` and
``decode_body`` pick the fast path where there is one; the ``*_with_construct`` functions
always take the normative path and exist for tests, vectors and the bench.
"""

from __future__ import annotations

import struct
from typing import Any

from construct import Const, ConstError, ConstructError

from . import fastpath
from .constants import MAGIC, PROTOCOL_VERSION, ErrorCode, FrameType
from .errors import (
    BadMagic,
    InvalidText,
    LocalProtocolError,
    MalformedFrame,
    ProtocolError,
    UnsupportedVersion,
)
from .events import EVENT_CLASSES, Error, Event, RoomEntry, Rooms, UnknownFrame
from .schema import BODIES, BODY_STRUCTS, TextError

_HEADER = struct.Struct(">IB")

#: Per frame type, the construct field names that carry values (Const magic carries none).
_FIELDS: dict[FrameType, tuple[str, ...]] = {
    ftype: tuple(sc.name for sc in struct_.subcons if sc.name and not isinstance(sc.subcon, Const))
    for ftype, struct_ in BODY_STRUCTS.items()
}


def _to_container(event: Event) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in _FIELDS[event.type]:
        value = getattr(event, name)
        if isinstance(event, Rooms) and name == "rooms":
            value = [{"name": r.name, "members": r.members} for r in value]
        elif isinstance(value, tuple):
            value = list(value)
        values[name] = value
    return values


def encode_body_with_construct(event: Event) -> bytes:
    """The body bytes of ``event``, built by the normative construct definition."""
    try:
        body: bytes = BODIES[event.type].build(_to_container(event))
    except (ConstructError, UnicodeEncodeError) as exc:
        raise LocalProtocolError(f"cannot encode {event!r}: {exc}") from None
    return body


def encode_with_construct(event: Event) -> bytes:
    body = encode_body_with_construct(event)
    return _HEADER.pack(len(body) + 1, event.type) + body


def encode(event: Event) -> bytes:
    """The whole frame (header and body) for ``event``."""
    fast = fastpath.ENCODERS.get(event.type)
    if fast is not None:
        try:
            return fast(event)
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(f"cannot encode {event!r}: {exc}") from None
    return encode_with_construct(event)


def _from_container(ftype: FrameType, parsed: Any) -> Event:
    values: dict[str, Any] = {}
    for name in _FIELDS[ftype]:
        value = parsed[name]
        if ftype is FrameType.ROOMS and name == "rooms":
            value = tuple(RoomEntry(r.name, r.members) for r in value)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return EVENT_CLASSES[ftype](**values)


def decode_body_with_construct(ftype: int, body: bytes) -> Event | UnknownFrame:
    """Parse one complete body with the normative definition; map every failure to its code."""
    try:
        known = FrameType(ftype)
    except ValueError:
        return UnknownFrame(ftype, bytes(body))
    if known is FrameType.HELLO:
        _check_hello_version(body)
    try:
        parsed = BODIES[known].parse(body)
    except TextError as exc:
        raise InvalidText(f"{known.name}: {exc}") from None
    except ConstError:
        raise BadMagic(f"{known.name}: bad magic") from None
    except ConstructError as exc:
        raise MalformedFrame(f"{known.name}: {_first_line(exc)}") from None
    return _from_container(known, parsed)


def _check_hello_version(body: bytes) -> None:
    """§4.1 [HS-2]: magic and version keep their place in every version, and are checked
    before the rest, so a HELLO of another version gets UNSUPPORTED_VERSION whatever follows.
    (A bad or short magic is left to the schema: BAD_MAGIC or MALFORMED.)"""
    if len(body) > len(MAGIC) and body.startswith(MAGIC) and body[4] != PROTOCOL_VERSION:
        raise UnsupportedVersion(
            f"HELLO: version {body[4]} is not supported; chatwire/{PROTOCOL_VERSION} only"
        )


def decode_body(ftype: int, body: bytes) -> Event | UnknownFrame:
    """Like :func:`decode_body_with_construct`, through the fast path where there is one."""
    fast = _FAST_DECODERS.get(ftype)
    if fast is not None:
        try:
            return fast(body)  # type: ignore[no-any-return]
        except ProtocolError as exc:
            exc.detail = f"{FrameType(ftype).name}: {exc.detail}"
            exc.args = (exc.detail,)
            raise
    return decode_body_with_construct(ftype, body)


def decode_frame(data: bytes) -> Event | UnknownFrame:
    """Decode a buffer holding exactly one whole frame (for tests and tools, not for sockets)."""
    if len(data) < _HEADER.size:
        raise MalformedFrame(f"{len(data)} bytes is shorter than a frame header")
    length, ftype = _HEADER.unpack_from(data, 0)
    if length == 0:
        raise MalformedFrame("frame length is zero")
    if 4 + length != len(data):
        raise MalformedFrame(f"frame length {length} does not match {len(data) - 4} bytes")
    return decode_body(ftype, bytes(data[5:]))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def error_frame(code: ErrorCode, text: str, in_reply_to: int = 0) -> bytes:
    """The one place an error code becomes ERROR bytes (§11.1); ``text`` is cut to fit."""
    return encode(Error(code=code, text=clip_utf8(text, 1000), in_reply_to=in_reply_to))


def error_frame_for(exc: ProtocolError) -> bytes:
    """The ERROR frame that reports ``exc``: its code, its detail, its ``in_reply_to``."""
    return error_frame(exc.code, exc.detail, exc.in_reply_to)


def clip_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8, only ever between characters."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")


_FAST_DECODERS: dict[int, Any] = {int(t): f for t, f in fastpath.DECODERS.items()}
