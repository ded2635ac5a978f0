"""Hand-built encoders for the frames the server produces in bulk, from pre-encoded parts.

The construct path in :mod:`spec.codec` costs ~14 µs for a small frame and ~1 µs per roster
name, which is too slow for fan-out and presence in big rooms. These build the same bytes from
pre-encoded pieces (a member's nick as a ready ``str8``, a room's name as one) with the
primitives of :mod:`spec.fastpath`, and ``tests/test_frames.py`` checks them byte for byte
against ``spec.codec.encode``. Lists that could outgrow a frame (ROSTER, ROOMS) are split
with ``more``=1 on all but the last (§3.3).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence

from spec import fastpath
from spec.constants import FrameType
from spec.fastpath import frame, str8, str16

_HEADER = struct.Struct(">IB")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_SEQ_MORE_COUNT = struct.Struct(">QBH")
_MORE_COUNT = struct.Struct(">BH")

#: The most entries one PrefixedArray(Int16ub, ...) can hold.
_MAX_ENTRIES = 0xFFFF


def deliver(room8: bytes, seq: int, sender8: bytes, text16: bytes) -> bytes:
    """DELIVER from pre-encoded parts: the one encoding a fan-out does per message."""
    body_len = len(room8) + 8 + len(sender8) + len(text16)
    return b"".join(
        (_HEADER.pack(body_len + 1, FrameType.DELIVER), room8, _U64.pack(seq), sender8, text16)
    )


def ack(room8: bytes, seq: int) -> bytes:
    return _HEADER.pack(len(room8) + 9, FrameType.ACK) + room8 + _U64.pack(seq)


def delivers(room8: bytes, first_seq: int, sender8: bytes, texts16: Sequence[bytes]) -> list[bytes]:
    """The DELIVERs of a batch of messages to one room, seqs counting up from ``first_seq``:
    the same bytes as :func:`deliver` for each, with the per-batch parts built once."""
    header, seq_bytes = _HEADER.pack, _U64.pack
    fixed = len(room8) + 8 + len(sender8) + 1
    kind = FrameType.DELIVER
    return [
        b"".join((header(fixed + len(text16), kind), room8, seq_bytes(seq), sender8, text16))
        for seq, text16 in enumerate(texts16, first_seq)
    ]


def acks(room8: bytes, first_seq: int, count: int) -> list[bytes]:
    """The ACKs of a batch: :func:`ack` for ``count`` seqs from ``first_seq``."""
    head = _HEADER.pack(len(room8) + 9, FrameType.ACK) + room8
    seq_bytes = _U64.pack
    return [head + seq_bytes(seq) for seq in range(first_seq, first_seq + count)]


#: ``pack(length, type, room8, seq, sender8)`` for a DELIVER's bytes up to its text, by the
#: lengths of the room's and the sender's names (a few shapes in practice; bounded anyway).
_DELIVER_HEADS: dict[tuple[int, int], Callable[..., bytes]] = {}


def delivers_data(room8: bytes, first_seq: int, sender8: bytes, texts16: Sequence[bytes]) -> bytes:
    """``b"".join(delivers(...))`` with one ``pack`` per message and no list of frames: the
    bytes a fan-out queues for every member."""
    shape = (len(room8), len(sender8))
    head = _DELIVER_HEADS.get(shape)
    if head is None:
        if len(_DELIVER_HEADS) >= 1024:
            _DELIVER_HEADS.clear()
        head = struct.Struct(f">IB{shape[0]}sQ{shape[1]}s").pack
        _DELIVER_HEADS[shape] = head
    fixed = shape[0] + 8 + shape[1] + 1
    kind = int(FrameType.DELIVER)
    out: list[bytes] = []
    add = out.append
    for seq, text16 in enumerate(texts16, first_seq):
        add(head(fixed + len(text16), kind, room8, seq, sender8))
        add(text16)
    return b"".join(out)


def acks_data(room8: bytes, first_seq: int, count: int) -> bytes:
    """``b"".join(acks(...))``, built by ``bytes.join`` alone (every ACK of a batch has the
    same head, only the seq differs)."""
    if count <= 0:
        return b""
    head = _HEADER.pack(len(room8) + 9, FrameType.ACK) + room8
    return head + head.join(map(_U64.pack, range(first_seq, first_seq + count)))


def delivers_acks_py(
    room8: bytes, first_seq: int, sender8: bytes, texts16: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """A batch's DELIVERs and its ACKs, each joined (:func:`delivers_data`, :func:`acks_data`)."""
    return delivers_data(room8, first_seq, sender8, texts16), acks_data(
        room8, first_seq, len(texts16)
    )


#: What the hub calls for a batch of several messages: the compiled twin of
#: :func:`delivers_acks_py` when ``spec.fastpath.SPEEDUPS`` is loaded, else that.
#: ``tests/test_frames.py`` holds both to the one-frame builders (and so to construct).
delivers_acks: Callable[[bytes, int, bytes, Sequence[bytes]], tuple[bytes, bytes]] = (
    functools.partial(fastpath.SPEEDUPS.delivers_acks, int(FrameType.DELIVER), int(FrameType.ACK))
    if fastpath.SPEEDUPS is not None
    else delivers_acks_py
)


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


__all__ = [
    "ack",
    "acks",
    "deliver",
    "delivers",
    "frame",
    "joined",
    "left",
    "room_entry",
    "rooms",
    "roster",
    "str8",
    "str16",
    "whisper",
]
