"""The server's hand-built encoders produce exactly the bytes of the normative codec."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import frames
from spec import fastpath
from spec.codec import decode_frame, encode
from spec.constants import MIN_MAX_FRAME, FrameType, LeaveReason
from spec.decoder import FrameDecoder
from spec.events import (
    Ack,
    Deliver,
    Joined,
    Left,
    RoomEntry,
    Rooms,
    Roster,
    Whisper,
)
from tests.speedups import NOT_BUILT, both, compiled

names = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)
texts = st.text(
    alphabet=st.characters(
        blacklist_characters="\x00", categories=("L", "M", "N", "P", "S", "Z", "Cc")
    )
)


def all_frames(data: bytes, max_frame: int) -> list[object]:
    decoder = FrameDecoder(max_frame)
    decoder.receive_data(data)
    out: list[object] = list(decoder.events())
    assert decoder.buffered == 0
    return out


@given(names, st.integers(0, 2**64 - 1), names, texts)
def test_deliver_and_ack_match_codec(room: str, seq: int, sender: str, text: str) -> None:
    built = frames.deliver(frames.str8(room), seq, frames.str8(sender), frames.str16(text))
    assert built == encode(Deliver(room, seq, sender, text))
    assert frames.ack(frames.str8(room), seq) == encode(Ack(room, seq))


@given(names, st.integers(0, 2**64 - 40), st.lists(texts, max_size=8))
def test_batch_builders_match_the_one_frame_builders(
    room: str, first: int, texts: list[str]
) -> None:
    room8, sender8 = frames.str8(room), frames.str8("bob")
    texts16 = [frames.str16(t) for t in texts]
    built = frames.delivers(room8, first, sender8, texts16)
    assert built == [frames.deliver(room8, first + i, sender8, t) for i, t in enumerate(texts16)]
    assert frames.acks(room8, first, len(texts)) == [
        encode(Ack(room, first + i)) for i in range(len(texts))
    ]


@given(names, st.integers(0, 2**64 - 40), names, st.lists(texts, max_size=8))
def test_joined_batch_builders_match_the_lists(
    room: str, first: int, sender: str, texts: list[str]
) -> None:
    room8, sender8 = frames.str8(room), frames.str8(sender)
    texts16 = [frames.str16(t) for t in texts]
    assert frames.delivers_data(room8, first, sender8, texts16) == b"".join(
        frames.delivers(room8, first, sender8, texts16)
    )
    assert frames.acks_data(room8, first, len(texts)) == b"".join(
        frames.acks(room8, first, len(texts))
    )


COMPILED: Callable[..., tuple[bytes, bytes]] | None = compiled("delivers_acks")
#: The compiled batch builder with the frame types bound, as ``reference.frames`` binds them.
COMPILED_BUILD = (
    functools.partial(COMPILED, int(FrameType.DELIVER), int(FrameType.ACK)) if COMPILED else None
)
#: The pure-Python batch builder and, where ``make speedups`` built it, its compiled twin.
BATCH_BUILDERS = both(frames.delivers_acks_py, COMPILED_BUILD)


@pytest.mark.parametrize("build", BATCH_BUILDERS)
@given(
    room=st.one_of(names, st.just("")),
    first=st.one_of(st.integers(0, 2**32), st.integers(2**64 - 40, 2**64 - 9)),
    sender=names,
    texts=st.lists(texts, max_size=8),
)
def test_a_batch_builder_gives_the_one_frame_builders_bytes(
    build: Callable[[bytes, int, bytes, list[bytes]], tuple[bytes, bytes]],
    room: str,
    first: int,
    sender: str,
    texts: list[str],
) -> None:
    room8, sender8 = frames.str8(room), frames.str8(sender)
    texts16 = [frames.str16(t) for t in texts]
    delivers, acks = build(room8, first, sender8, texts16)
    assert delivers == b"".join(frames.delivers(room8, first, sender8, texts16))
    assert acks == b"".join(frames.acks(room8, first, len(texts)))


@pytest.mark.skipif(COMPILED is None, reason=NOT_BUILT)
def test_the_compiled_batch_builder_refuses_what_it_cannot_build() -> None:
    build = COMPILED_BUILD
    assert build is not None
    with pytest.raises(OverflowError):
        build(b"\x01r", 2**64 - 1, b"\x01s", [b"\x00\x00", b"\x00\x00"])
    with pytest.raises(TypeError):
        build(b"\x01r", 1, b"\x01s", ["not bytes"])
    assert build(b"\x01r", 2**64 - 1, b"\x01s", []) == (b"", b"")


def test_the_hub_uses_the_compiled_batch_builder_when_the_scanner_is_compiled() -> None:
    bound = isinstance(frames.delivers_acks, functools.partial)
    assert bound is fastpath.COMPILED


def test_direct_ack_has_empty_room() -> None:
    assert frames.ack(b"\x00", 0) == encode(Ack("", 0))


@given(names, names, texts, st.sampled_from(list(LeaveReason)))
def test_presence_and_whisper_match_codec(
    room: str, nick: str, text: str, reason: LeaveReason
) -> None:
    r8, n8 = frames.str8(room), frames.str8(nick)
    assert frames.joined(r8, n8) == encode(Joined(room, nick))
    assert frames.left(r8, n8, reason, text) == encode(Left(room, nick, reason, text))
    assert frames.whisper(n8, text) == encode(Whisper(nick, text))


@given(names, st.integers(0, 2**64 - 1), st.lists(names, max_size=5))
def test_small_roster_is_one_frame_like_codec(room: str, seq: int, members: list[str]) -> None:
    built = frames.roster(frames.str8(room), seq, [frames.str8(m) for m in members], 65536)
    assert built == encode(Roster(room, seq, tuple(members)))


def test_big_roster_splits_within_max_frame() -> None:
    members = [f"member-{i:05d}-" + "x" * 18 for i in range(500)]
    built = frames.roster(frames.str8("big"), 7, [frames.str8(m) for m in members], MIN_MAX_FRAME)
    parts = all_frames(built, MIN_MAX_FRAME)
    assert len(parts) > 10
    assert all(isinstance(p, Roster) and p.seq == 7 and p.room == "big" for p in parts)
    assert [p.more for p in parts if isinstance(p, Roster)] == [1] * (len(parts) - 1) + [0]
    got = [m for p in parts if isinstance(p, Roster) for m in p.members]
    assert got == members


def test_rooms_listing_splits_and_matches_codec() -> None:
    entries = [(f"room{i}", i) for i in range(300)]
    raw = [frames.room_entry(frames.str8(n), c) for n, c in entries]
    one = frames.rooms(raw[:3], 65536)
    assert one == encode(Rooms(tuple(RoomEntry(n, c) for n, c in entries[:3])))
    assert decode_frame(frames.rooms([], 65536)) == Rooms(())
    parts = all_frames(frames.rooms(raw, MIN_MAX_FRAME), MIN_MAX_FRAME)
    assert len(parts) > 1
    got = [(e.name, e.members) for p in parts if isinstance(p, Rooms) for e in p.rooms]
    assert got == entries
