"""Hand-built encoders for the frames the server produces in bulk.

The construct path in :mod:`spec.codec` costs ~14 µs for a small frame and ~1 µs per roster
name, which is too slow for fan-out and presence in big rooms. These build the same bytes with
``struct`` from pre-encoded pieces (a member's nick as a ready ``str8``, a room's name as one),
and ``tests/test_frames.py`` checks them byte for byte against ``spec.codec.encode``. Lists
that could outgrow a frame (ROSTER, ROOMS) are split with ``more``=1 on all but the last (§3.2).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from spec.constants import MAGIC, PROTOCOL_VERSION, ErrorCode, FrameType
from spec.errors import BadMagic, InvalidText, LocalProtocolError, MalformedFrame, ProtocolError
from spec.events import Hello, Welcome

_HEADER = struct.Struct(">IB")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_SEQ_MORE_COUNT = struct.Struct(">QBH")
_MORE_COUNT = struct.Struct(">BH")
_WELCOME_FIXED = struct.Struct(">BIIHHIIIHH")
_CAPS = struct.Struct(">I")

#: The most entries one PrefixedArray(Int16ub, ...) can hold.
_MAX_ENTRIES = 0xFFFF


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


def frame(ftype: FrameType, body: bytes) -> bytes:
    return _HEADER.pack(len(body) + 1, ftype) + body


def welcome(event: Welcome) -> bytes:
    """WELCOME without construct: its deep call chain would leave every handler thread with
    an extra page of Python frame stack resident, for good."""
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
    return frame(FrameType.WELCOME, fixed + str8(event.nick) + str8(event.room))


def decode_hello(body: bytes) -> Hello:
    """HELLO without construct (see ``welcome``), failing exactly as the normative decoder
    does: magic, then version (before the rest, §4.1), then caps, nick, nothing after."""
    if len(body) < len(MAGIC):
        raise MalformedFrame("HELLO: magic cut short")
    if body[: len(MAGIC)] != MAGIC:
        raise BadMagic("HELLO: bad magic")
    if len(body) == len(MAGIC):
        raise MalformedFrame("HELLO: version missing")
    if body[4] != PROTOCOL_VERSION:
        raise ProtocolError(
            f"HELLO: version {body[4]} is not supported; chatwire/{PROTOCOL_VERSION} only",
            ErrorCode.UNSUPPORTED_VERSION,
        )
    if len(body) < 10:
        raise MalformedFrame("HELLO: caps or nick length missing")
    end = 10 + body[9]
    if end > len(body):
        raise MalformedFrame("HELLO: nick overruns its frame")
    try:
        nick = body[10:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidText(f"HELLO: invalid UTF-8 at byte {exc.start}") from None
    if "\x00" in nick:
        raise InvalidText("HELLO: U+0000 in text")
    if end != len(body):
        raise MalformedFrame(f"HELLO: {len(body) - end} trailing bytes in frame")
    return Hello(nick, _CAPS.unpack_from(body, 5)[0], body[4])


def deliver(room8: bytes, seq: int, sender8: bytes, text16: bytes) -> bytes:
    """DELIVER from pre-encoded parts: the one encoding a fan-out does per message."""
    body_len = len(room8) + 8 + len(sender8) + len(text16)
    return b"".join(
        (_HEADER.pack(body_len + 1, FrameType.DELIVER), room8, _U64.pack(seq), sender8, text16)
    )


def ack(room8: bytes, seq: int) -> bytes:
    return _HEADER.pack(len(room8) + 9, FrameType.ACK) + room8 + _U64.pack(seq)


def whisper(sender8: bytes, text: str) -> bytes:
    return frame(FrameType.WHISPER, sender8 + str16(text))


def joined(room8: bytes, nick8: bytes) -> bytes:
    return frame(FrameType.JOINED, room8 + nick8)


def left(room8: bytes, nick8: bytes, reason: int, text: str = "") -> bytes:
    return frame(FrameType.LEFT, room8 + nick8 + bytes((reason,)) + str16(text))


def roster(room8: bytes, seq: int, names8: Sequence[bytes], max_frame: int) -> bytes:
    """Every ROSTER frame for one room, concatenated; each frame fits ``max_frame``."""
    fixed = 1 + len(room8) + _SEQ_MORE_COUNT.size  # type byte, room, seq, more, count
    chunks = _split(names8, max_frame - fixed)
    out = []
    for i, chunk in enumerate(chunks):
        more = 1 if i < len(chunks) - 1 else 0
        body = room8 + _SEQ_MORE_COUNT.pack(seq, more, len(chunk)) + b"".join(chunk)
        out.append(frame(FrameType.ROSTER, body))
    return b"".join(out)


def room_entry(name8: bytes, members: int) -> bytes:
    return name8 + _U32.pack(members)


def rooms(entries: Sequence[bytes], max_frame: int) -> bytes:
    """Every ROOMS frame for a listing of pre-encoded entries, concatenated."""
    fixed = 1 + _MORE_COUNT.size
    chunks = _split(entries, max_frame - fixed)
    out = []
    for i, chunk in enumerate(chunks):
        more = 1 if i < len(chunks) - 1 else 0
        out.append(frame(FrameType.ROOMS, _MORE_COUNT.pack(more, len(chunk)) + b"".join(chunk)))
    return b"".join(out)


def _split(items: Sequence[bytes], room_for_items: int) -> list[Sequence[bytes]]:
    """Greedy packing of items into chunks of at most ``room_for_items`` bytes (at least one
    chunk, possibly empty, so an empty list still makes one frame)."""
    chunks: list[Sequence[bytes]] = []
    start, used = 0, 0
    for i, item in enumerate(items):
        if i > start and (used + len(item) > room_for_items or i - start >= _MAX_ENTRIES):
            chunks.append(items[start:i])
            start, used = i, 0
        used += len(item)
    chunks.append(items[start:])
    return chunks
