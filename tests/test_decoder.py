"""The sans-I/O FrameDecoder: any split of the input gives the same events, limits are checked
on the length bytes alone, buffering stays bounded, and a broken stream stays broken."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spec.codec import encode
from spec.constants import DEFAULT_MAX_FRAME, HARD_MAX_FRAME, MIN_MAX_FRAME, ErrorCode, FrameType
from spec.decoder import FrameDecoder, FrameSplitter
from spec.errors import ProtocolError
from spec.events import Event, Ping, Send, UnknownFrame
from spec.examples import EXAMPLES

EXAMPLE_TYPES = list(FrameType)


def feed(chunks: list[bytes], max_frame: int = DEFAULT_MAX_FRAME) -> list[Event | UnknownFrame]:
    """Feed the chunks one by one, taking every complete event after each."""
    decoder = FrameDecoder(max_frame)
    events: list[Event | UnknownFrame] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        events.extend(decoder.events())
    assert decoder.buffered == 0
    return events


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(points)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def unknown_frame(ftype: int, body: bytes) -> bytes:
    return struct.pack(">IB", len(body) + 1, ftype) + body


# -- every split gives the same events ------------------------------------------------------


@pytest.mark.parametrize("ftype", EXAMPLE_TYPES, ids=[t.name for t in EXAMPLE_TYPES])
def test_example_whole_and_split_at_every_byte(ftype: FrameType) -> None:
    event = EXAMPLES[ftype]
    data = encode(event)
    assert feed([data]) == [event]
    for i in range(len(data) + 1):
        assert feed([data[:i], data[i:]]) == [event], f"split at {i}"
    assert feed([data[i : i + 1] for i in range(len(data))]) == [event]


def test_all_examples_concatenated_byte_by_byte() -> None:
    events = [EXAMPLES[t] for t in EXAMPLE_TYPES]
    data = b"".join(encode(e) for e in events)
    assert feed([data]) == events
    assert feed([data[i : i + 1] for i in range(len(data))]) == events


@st.composite
def stream_and_cuts(draw: st.DrawFn) -> tuple[list[Event | UnknownFrame], bytes, list[int]]:
    items: list[Event | UnknownFrame] = []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.integers(0, 5)) == 0:
            items.append(UnknownFrame(draw(st.sampled_from([0x00, 0x6E, 0xFF])), b"\x00\xff"))
        else:
            items.append(EXAMPLES[draw(st.sampled_from(EXAMPLE_TYPES))])
    data = b"".join(
        unknown_frame(i.frame_type, i.body) if isinstance(i, UnknownFrame) else encode(i)
        for i in items
    )
    points = draw(st.lists(st.integers(0, len(data)), max_size=12))
    return items, data, points


@settings(max_examples=150, deadline=None)
@given(stream_and_cuts())
def test_concatenated_frames_with_arbitrary_splits(
    case: tuple[list[Event | UnknownFrame], bytes, list[int]],
) -> None:
    items, data, points = case
    assert feed(cut(data, points)) == items


def test_partial_frame_stays_buffered() -> None:
    first, second = encode(EXAMPLES[FrameType.DELIVER]), encode(EXAMPLES[FrameType.ROSTER])
    decoder = FrameDecoder()
    decoder.receive_data(first + second[:9])
    assert decoder.next_event() == EXAMPLES[FrameType.DELIVER]
    assert decoder.next_event() is None
    assert decoder.next_event() is None  # asking again changes nothing
    assert decoder.buffered == 9
    decoder.receive_data(second[9:])
    assert decoder.next_event() == EXAMPLES[FrameType.ROSTER]
    assert decoder.buffered == 0


def test_many_frames_across_compaction() -> None:
    # Well over the 64 KiB after which consumed bytes are dropped from the buffer.
    pings = [Ping(token=n) for n in range(12_000)]
    data = b"".join(encode(p) for p in pings)
    assert feed([data[i : i + 999] for i in range(0, len(data), 999)]) == pings


# -- the length is checked as soon as its four bytes are in -------------------------------


def test_oversize_length_refused_from_the_length_bytes_alone() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"\xff\xff\xff")
    assert decoder.next_event() is None  # three bytes: not yet a length
    decoder.receive_data(b"\xff")
    with pytest.raises(ProtocolError) as info:
        decoder.next_event()
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE
    assert decoder.buffered == 0  # nothing kept, nothing waited for


@pytest.mark.parametrize("max_frame", [MIN_MAX_FRAME, DEFAULT_MAX_FRAME, HARD_MAX_FRAME])
def test_limit_is_on_the_length_field(max_frame: int) -> None:
    over = FrameDecoder(max_frame)
    over.receive_data(struct.pack(">I", max_frame + 1))
    with pytest.raises(ProtocolError) as info:
        over.next_event()
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE

    at_limit = FrameDecoder(max_frame)
    at_limit.receive_data(struct.pack(">IB", max_frame, FrameType.SEND))
    assert at_limit.next_event() is None  # accepted; waiting for the body


def test_frame_exactly_at_the_limit_decodes() -> None:
    event = Send(room="lobby", text="x" * (MIN_MAX_FRAME - 9))
    data = encode(event)
    assert len(data) == MIN_MAX_FRAME + 4
    assert feed([data], max_frame=MIN_MAX_FRAME) == [event]


def test_zero_length_refused() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"\x00\x00\x00\x00")
    with pytest.raises(ProtocolError) as info:
        decoder.next_event()
    assert info.value.code is ErrorCode.MALFORMED


@pytest.mark.parametrize("max_frame", [0, -1, HARD_MAX_FRAME + 1])
def test_limit_outside_the_protocol_range_is_refused(max_frame: int) -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_frame)


# -- buffering stays bounded -------------------------------------------------------------


@st.composite
def big_frames_and_chunks(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    frames = [
        encode(Send(room="r", text="y" * draw(st.integers(0, MIN_MAX_FRAME - 5))))
        for _ in range(draw(st.integers(1, 6)))
    ]
    sizes = draw(st.lists(st.integers(1, 3 * MIN_MAX_FRAME), min_size=1, max_size=20))
    return b"".join(frames), sizes


@settings(max_examples=80, deadline=None)
@given(big_frames_and_chunks())
def test_buffer_never_holds_more_than_one_partial_frame_plus_last_chunk(
    case: tuple[bytes, list[int]],
) -> None:
    data, sizes = case
    decoder = FrameDecoder(MIN_MAX_FRAME)
    pos = 0
    while pos < len(data):
        chunk = data[pos : pos + sizes[pos % len(sizes)]]
        pos += len(chunk)
        decoder.receive_data(chunk)
        assert decoder.buffered <= MIN_MAX_FRAME + 5 + len(chunk)
        list(decoder.events())
        # What is left is less than one whole frame: at most max_frame + 3 bytes.
        assert decoder.buffered <= MIN_MAX_FRAME + 3
    assert decoder.buffered == 0


def test_trickled_body_of_an_allowed_length_is_bounded() -> None:
    decoder = FrameDecoder(MIN_MAX_FRAME)
    decoder.receive_data(struct.pack(">IB", MIN_MAX_FRAME, FrameType.BYE) + b"\x03\xfd")
    for _ in range(MIN_MAX_FRAME - 4):
        decoder.receive_data(b"z")
        assert decoder.next_event() is None
        assert decoder.buffered <= MIN_MAX_FRAME + 3
    decoder.receive_data(b"z")
    assert decoder.next_event() is not None
    assert decoder.buffered == 0


# -- a broken stream stays broken ---------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (b"\x00\x00\x00\x00", ErrorCode.MALFORMED),
        (b"\xff\xff\xff\xff", ErrorCode.FRAME_TOO_LARGE),
        (unknown_frame(FrameType.PING, b"\x00"), ErrorCode.MALFORMED),
        (unknown_frame(FrameType.JOIN, b"\x01\xff"), ErrorCode.INVALID_UTF8),
        (unknown_frame(FrameType.HELLO, b"CHAX\x01\x00\x00\x00\x00\x00"), ErrorCode.BAD_MAGIC),
    ],
)
def test_after_an_error_every_call_raises_it_again(bad: bytes, code: ErrorCode) -> None:
    good = encode(EXAMPLES[FrameType.PING])
    decoder = FrameDecoder()
    decoder.receive_data(good + bad + good)
    assert decoder.next_event() == EXAMPLES[FrameType.PING]
    with pytest.raises(ProtocolError) as first:
        decoder.next_event()
    assert first.value.code is code
    for _ in range(3):
        decoder.receive_data(good * 100)  # more input changes nothing and is not kept
        assert decoder.buffered == 0
        with pytest.raises(ProtocolError) as again:
            decoder.next_event()
        assert again.value is first.value
        with pytest.raises(ProtocolError):
            decoder.next_frame()
        with pytest.raises(ProtocolError):
            list(decoder.events())


# -- unknown types ------------------------------------------------------------------------


@pytest.mark.parametrize("ftype", [0x00, 0x03, 0x6E, 0x7E, 0x80, 0xFF])
def test_unknown_type_comes_out_as_unknown_frame(ftype: int) -> None:
    body = b"\x05hello\xff\x00 not text"
    data = unknown_frame(ftype, body) + unknown_frame(ftype, b"") + encode(Ping(token=1))
    assert feed([data]) == [UnknownFrame(ftype, body), UnknownFrame(ftype, b""), Ping(token=1)]


def test_splitter_returns_type_and_raw_body() -> None:
    splitter = FrameSplitter()
    splitter.receive_data(encode(EXAMPLES[FrameType.SEND]) + unknown_frame(0x6E, b"\xff"))
    assert splitter.next_frame() == (FrameType.SEND, encode(EXAMPLES[FrameType.SEND])[5:])
    assert splitter.next_frame() == (0x6E, b"\xff")
    assert splitter.next_frame() is None
