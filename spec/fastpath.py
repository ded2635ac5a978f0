"""Hand-written ``struct`` codecs for the hot frames: SEND, DELIVER, ACK, PING, PONG, and the
handshake pair HELLO/WELCOME (every connection decodes one and encodes the other; construct's
deep call chain there would leave each server thread with an extra resident stack page), and
:func:`scan_sends`, which takes a run of well-formed SENDs straight from a receive buffer
without building a body or an event per message.

construct costs tens of microseconds a frame; these cost about one. They are only allowed
because ``tests/test_fastpath.py`` proves, with hypothesis, that they agree with the construct
definitions in :mod:`spec.schema` byte for byte when building, and in values, acceptance and
error code when parsing random and mutated bodies. Change one side, and that test tells you.

:func:`scan_sends_py` has an optional compiled twin, ``spec/_speedups.c`` (``make speedups``),
which the decoder uses when it is built: the same test holds it to construct and to the
Python definition, on the same inputs and on arbitrary bytes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from types import ModuleType

from .constants import MAGIC, PROTOCOL_VERSION, FrameType
from .errors import (
    BadMagic,
    InvalidText,
    LocalProtocolError,
    MalformedFrame,
    UnsupportedVersion,
)
from .events import Ack, Deliver, Hello, Ping, Pong, Send, Welcome

_HEADER = struct.Struct(">IB")
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_WELCOME_FIXED = struct.Struct(">BIIHHIIIHH")


def _text(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidText(f"invalid UTF-8 at byte {exc.start}") from None
    if "\x00" in text:
        raise InvalidText("U+0000 in text")
    return text


def _read_str8(body: bytes, offset: int) -> tuple[str, int]:
    if offset >= len(body):
        raise MalformedFrame("string length missing")
    end = offset + 1 + body[offset]
    if end > len(body):
        raise MalformedFrame("string overruns its frame")
    return _text(body[offset + 1 : end]), end


def _read_str16(body: bytes, offset: int) -> tuple[str, int]:
    if offset + 2 > len(body):
        raise MalformedFrame("string length missing")
    end = offset + 2 + _U16.unpack_from(body, offset)[0]
    if end > len(body):
        raise MalformedFrame("string overruns its frame")
    return _text(body[offset + 2 : end]), end


def _read_u64(body: bytes, offset: int) -> tuple[int, int]:
    if offset + 8 > len(body):
        raise MalformedFrame("integer overruns its frame")
    return _U64.unpack_from(body, offset)[0], offset + 8


def _done(body: bytes, offset: int) -> None:
    if offset != len(body):
        raise MalformedFrame(f"{len(body) - offset} trailing bytes in frame")


def decode_send(body: bytes) -> Send:
    room, off = _read_str8(body, 0)
    text, off = _read_str16(body, off)
    _done(body, off)
    return Send(room, text)


def _is_text(raw: bytes) -> bool:
    """§2.2 as :func:`_text` judges it, without keeping the string: strict UTF-8, no U+0000."""
    if raw.isascii():
        return 0 not in raw  # an int needle: a memchr, about 7 times quicker than b"\x00"
    try:
        return "\x00" not in raw.decode("utf-8")
    except UnicodeDecodeError:
        return False


_SEND_TYPE = int(FrameType.SEND)


def scan_sends_py(
    buf: bytes | bytearray, pos: int, max_frame: int, limit: int
) -> tuple[list[tuple[bytes, bytes]], int]:
    """The run of whole, well-formed SEND frames at ``buf[pos:]``, at most ``limit`` of them:
    each as (the room's UTF-8 bytes, the text's exact str16 bytes), and where the run ends.

    The run stops before the first frame that is anything else: another type, not yet whole,
    a length of 0 or over ``max_frame``, or a SEND whose body :func:`decode_send` would refuse.
    That frame is left for the one-frame path, which reports its fault. So this accepts
    exactly what ``decode_send`` accepts, with the same values (``tests/test_fastpath.py``).
    """
    run: list[tuple[bytes, bytes]] = []
    if len(buf) - pos < 5 or buf[pos + 4] != _SEND_TYPE:
        return run, pos
    data = bytes(buf[pos:])  # slices of bytes are bytes: one copy per run, not two per field
    base, pos = pos, 0
    end_all = len(data)
    unpack = _U32.unpack_from
    last_room = None
    while end_all - pos >= 5 and data[pos + 4] == _SEND_TYPE and len(run) < limit:
        (length,) = unpack(data, pos)
        end = pos + 4 + length
        if not 0 < length <= max_frame or end > end_all:
            break
        room_at = pos + 5
        if room_at >= end:
            break
        text_at = room_at + 1 + data[room_at]
        if text_at + 2 > end or text_at + 2 + (data[text_at] << 8 | data[text_at + 1]) != end:
            break
        room = data[room_at + 1 : text_at]
        if room != last_room:
            if not _is_text(room):
                break
            last_room = room
        text = data[text_at + 2 : end]
        if not (text.isascii() and 0 not in text) and not _is_text(text):
            break
        run.append((last_room, data[text_at:end]))
        pos = end
    return run, base + pos


def decode_deliver(body: bytes) -> Deliver:
    room, off = _read_str8(body, 0)
    seq, off = _read_u64(body, off)
    sender, off = _read_str8(body, off)
    text, off = _read_str16(body, off)
    _done(body, off)
    return Deliver(room, seq, sender, text)


def decode_ack(body: bytes) -> Ack:
    room, off = _read_str8(body, 0)
    seq, off = _read_u64(body, off)
    _done(body, off)
    return Ack(room, seq)


def decode_hello(body: bytes) -> Hello:
    """Magic, then version before the rest of the body (§4.1, HS-2), then caps, nick."""
    if len(body) < len(MAGIC):
        raise MalformedFrame("magic cut short")
    if body[: len(MAGIC)] != MAGIC:
        raise BadMagic("bad magic")
    if len(body) == len(MAGIC):
        raise MalformedFrame("version missing")
    if body[4] != PROTOCOL_VERSION:
        raise UnsupportedVersion(
            f"version {body[4]} is not supported; chatwire/{PROTOCOL_VERSION} only"
        )
    if len(body) < 9:
        raise MalformedFrame("caps cut short")
    nick, off = _read_str8(body, 9)
    _done(body, off)
    return Hello(nick, _U32.unpack_from(body, 5)[0], body[4])


def decode_ping(body: bytes) -> Ping:
    token, off = _read_u64(body, 0)
    _done(body, off)
    return Ping(token)


def decode_pong(body: bytes) -> Pong:
    token, off = _read_u64(body, 0)
    _done(body, off)
    return Pong(token)


def str8(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFF or "\x00" in text:
        raise LocalProtocolError(f"not a str8: {text[:40]!r}")
    return bytes((len(raw),)) + raw


def str16(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF or "\x00" in text:
        raise LocalProtocolError(f"not a str16: {text[:40]!r}")
    return _U16.pack(len(raw)) + raw


def _u64_bytes(value: int) -> bytes:
    if not 0 <= value <= 0xFFFF_FFFF_FFFF_FFFF:
        raise LocalProtocolError(f"not a u64: {value}")
    return _U64.pack(value)


def frame(ftype: FrameType, body: bytes) -> bytes:
    return _HEADER.pack(len(body) + 1, ftype) + body


def encode_welcome(event: Welcome) -> bytes:
    try:
        fixed = _WELCOME_FIXED.pack(
            event.version,
            event.caps,
            event.max_frame,
            event.max_text,
            event.max_rooms,
            event.idle_timeout_ms,
            event.out_limit,
            event.slow_timeout_ms,
            event.rate,
            event.burst,
        )
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode {event!r}: {exc}") from None
    return frame(FrameType.WELCOME, fixed + str8(event.nick) + str8(event.room))


def encode_send(event: Send) -> bytes:
    return frame(FrameType.SEND, str8(event.room) + str16(event.text))


def encode_deliver(event: Deliver) -> bytes:
    body = str8(event.room) + _u64_bytes(event.seq) + str8(event.sender) + str16(event.text)
    return frame(FrameType.DELIVER, body)


def encode_ack(event: Ack) -> bytes:
    return frame(FrameType.ACK, str8(event.room) + _u64_bytes(event.seq))


def encode_ping(event: Ping) -> bytes:
    return frame(FrameType.PING, _u64_bytes(event.token))


def encode_pong(event: Pong) -> bytes:
    return frame(FrameType.PONG, _u64_bytes(event.token))


DECODERS: dict[FrameType, Callable[[bytes], object]] = {
    FrameType.HELLO: decode_hello,
    FrameType.SEND: decode_send,
    FrameType.DELIVER: decode_deliver,
    FrameType.ACK: decode_ack,
    FrameType.PING: decode_ping,
    FrameType.PONG: decode_pong,
}

ENCODERS: dict[FrameType, Callable[..., bytes]] = {
    FrameType.WELCOME: encode_welcome,
    FrameType.SEND: encode_send,
    FrameType.DELIVER: encode_deliver,
    FrameType.ACK: encode_ack,
    FrameType.PING: encode_ping,
    FrameType.PONG: encode_pong,
}


ScanSends = Callable[[bytes | bytearray, int, int, int], tuple[list[tuple[bytes, bytes]], int]]


def _load_speedups() -> ModuleType | None:
    """``spec._speedups`` if ``make speedups`` built it and ``CHATWIRE_PURE`` is unset or 0."""
    if os.environ.get("CHATWIRE_PURE", "") not in ("", "0"):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    return _speedups


#: The compiled twins (``spec/_speedups.c``) this process uses, or None: the one place that
#: decides, for this scanner and for ``reference.frames.delivers_acks``.
SPEEDUPS = _load_speedups()
COMPILED = SPEEDUPS is not None
#: What the decoder calls: the compiled twin of :func:`scan_sends_py` (about 75 ns a SEND
#: against 550) when :data:`SPEEDUPS` is loaded, else the pure-Python definition. Both are held
#: to construct and to each other by ``tests/test_fastpath.py``.
scan_sends: ScanSends = SPEEDUPS.scan_sends if SPEEDUPS is not None else scan_sends_py
