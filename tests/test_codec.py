"""The codec: every frame type round-trips, illegal values cannot be sent, and no input at all
makes the decoder fail with anything but a ProtocolError."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spec.codec import (
    decode_body,
    decode_body_with_construct,
    decode_frame,
    encode,
    encode_with_construct,
    error_frame_for,
)
from spec.constants import MIN_MAX_FRAME, ErrorCode, FrameType
from spec.decoder import FrameDecoder
from spec.errors import LocalProtocolError, MalformedFrame, ProtocolError
from spec.events import (
    Ack,
    Bye,
    Deliver,
    Direct,
    Error,
    Event,
    Hello,
    Join,
    Joined,
    Left,
    Ping,
    RoomEntry,
    Rooms,
    Roster,
    Send,
    UnknownFrame,
    Welcome,
    Whisper,
)
from spec.examples import EXAMPLES
from tests.frame_strategies import EVENTS, any_event

ALL_TYPES = list(FrameType)
ENCODERS: list[Callable[[Event], bytes]] = [encode, encode_with_construct]
ENCODER_IDS = ["encode", "encode_with_construct"]

# -- round trip -----------------------------------------------------------------------------


@pytest.mark.parametrize("ftype", ALL_TYPES, ids=[t.name for t in ALL_TYPES])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip(ftype: FrameType, data: st.DataObject) -> None:
    event = data.draw(EVENTS[ftype])
    frame = encode(event)
    assert frame == encode_with_construct(event)
    length, wire_type = struct.unpack_from(">IB", frame)
    assert (length, wire_type) == (len(frame) - 4, ftype)
    assert decode_frame(frame) == event
    assert decode_body_with_construct(ftype, frame[5:]) == event


@pytest.mark.parametrize("version", [0, 2, 255])
def test_hello_of_another_version_does_not_decode(version: int) -> None:
    frame = encode(Hello(nick="alice", version=version))
    with pytest.raises(ProtocolError) as info:
        decode_frame(frame)
    assert info.value.code is ErrorCode.UNSUPPORTED_VERSION
    assert "chatwire/1" in info.value.detail  # §4.1 [HS-3]: name what this side speaks


def test_examples_round_trip() -> None:
    for ftype, event in EXAMPLES.items():
        assert event.type is ftype
        assert decode_frame(encode(event)) == event


# -- what may not be sent ---------------------------------------------------------------------

TOO_LONG_STR8 = "a" * 256
TOO_LONG_STR8_MULTIBYTE = "é" * 128  # 128 characters but 256 bytes: the limit is in bytes
TOO_LONG_STR16 = "a" * 65536

ILLEGAL: list[tuple[str, Event]] = [
    ("hello-nick-256", Hello(nick=TOO_LONG_STR8)),
    ("join-room-256-bytes", Join(room=TOO_LONG_STR8_MULTIBYTE)),
    ("send-room-256", Send(room=TOO_LONG_STR8, text="")),
    ("send-text-65536", Send(room="r", text=TOO_LONG_STR16)),
    ("deliver-sender-256-bytes", Deliver(room="r", seq=1, sender=TOO_LONG_STR8_MULTIBYTE, text="")),
    ("ack-room-256", Ack(room=TOO_LONG_STR8, seq=1)),
    ("roster-member-256", Roster(room="r", seq=1, members=("ok", TOO_LONG_STR8))),
    ("rooms-name-256", Rooms(rooms=(RoomEntry(TOO_LONG_STR8, 1),))),
    ("bye-text-65536", Bye(text=TOO_LONG_STR16)),
    ("hello-nul", Hello(nick="al\x00ice")),
    ("send-room-nul", Send(room="\x00", text="hi")),
    ("send-text-nul", Send(room="r", text="hi\x00")),
    ("deliver-text-nul", Deliver(room="r", seq=1, sender="s", text="\x00")),
    ("direct-text-nul", Direct(nick="bob", text="a\x00b")),
    ("whisper-sender-nul", Whisper(sender="\x00", text="")),
    ("joined-nick-nul", Joined(room="r", nick="\x00")),
    ("left-text-nul", Left(room="r", nick="n", reason=0, text="\x00")),
    ("error-text-nul", Error(code=ErrorCode.MALFORMED, text="\x00")),
    ("roster-member-nul", Roster(room="r", seq=1, members=("\x00",))),
    ("send-surrogate", Send(room="r", text="\ud800")),
    ("deliver-seq-negative", Deliver(room="r", seq=-1, sender="s", text="")),
    ("ack-seq-2-64", Ack(room="r", seq=1 << 64)),
    ("ping-token-2-64", Ping(token=1 << 64)),
    ("hello-caps-2-32", Hello(nick="a", caps=1 << 32)),
    ("welcome-max-text-65536", Welcome(nick="a", max_text=65536)),
    ("roster-more-256", Roster(room="r", seq=1, members=(), more=256)),
    ("error-code-negative", Error(code=-1)),
    ("roster-65536-members", Roster(room="r", seq=1, members=("m",) * 65536)),
]


@pytest.mark.parametrize("encoder", ENCODERS, ids=ENCODER_IDS)
@pytest.mark.parametrize("event", [e for _, e in ILLEGAL], ids=[n for n, _ in ILLEGAL])
def test_illegal_values_raise_local_protocol_error(
    event: Event, encoder: Callable[[Event], bytes]
) -> None:
    with pytest.raises(LocalProtocolError):
        encoder(event)


@pytest.mark.parametrize("encoder", ENCODERS, ids=ENCODER_IDS)
def test_str_limits_are_inclusive(encoder: Callable[[Event], bytes]) -> None:
    assert len(encoder(Join(room="é" * 127 + "a"))) == 5 + 1 + 255
    assert len(encoder(Send(room="r", text="a" * 65535))) == 5 + 2 + 2 + 65535


def test_error_frame_for_carries_code_and_is_sendable() -> None:
    exc = MalformedFrame("x" * 5000 + "\u00e9")
    exc.in_reply_to = FrameType.SEND
    frame = error_frame_for(exc)
    event = decode_frame(frame)
    assert isinstance(event, Error)
    assert (event.code, event.in_reply_to, event.fatal) == (ErrorCode.MALFORMED, 0x10, True)
    assert len(frame) < 5000


# -- fuzz: only events or ProtocolError, and bounded buffering ------------------------------


def fuzz_decoder(data: bytes, chunk: int, max_frame: int = MIN_MAX_FRAME) -> None:
    """Feed ``data`` in chunks; anything but an event or a ProtocolError fails the test."""
    decoder = FrameDecoder(max_frame)
    for start in range(0, len(data), chunk):
        piece = data[start : start + chunk]
        decoder.receive_data(piece)
        assert decoder.buffered <= max_frame + 5 + len(piece)
        try:
            for event in decoder.events():
                if not isinstance(event, UnknownFrame):
                    # Whatever decodes re-encodes to the very same bytes (one encoding per value).
                    assert decode_frame(encode(event)) == event
        except ProtocolError as exc:
            assert exc.code in ErrorCode.__members__.values()
            assert exc.fatal
            return
        assert decoder.buffered <= max_frame + 3


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), chunk=st.integers(1, 64))
def test_fuzz_arbitrary_bytes(data: bytes, chunk: int) -> None:
    fuzz_decoder(data, chunk)


@st.composite
def plausible_stream(draw: st.DrawFn) -> bytes:
    """Valid headers around random or mutated bodies: gets past the length check often."""
    out = bytearray()
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            ftype = draw(st.sampled_from([*ALL_TYPES, 0x6E]))
            body = draw(st.binary(max_size=40))
        else:
            event = draw(any_event)
            ftype, body = event.type, encode(event)[5:]
            if body and draw(st.booleans()):
                mutable = bytearray(body)
                i = draw(st.integers(0, len(mutable) - 1))
                mutable[i] ^= draw(st.integers(1, 255))
                body = bytes(mutable)
        if draw(st.integers(0, 9)) == 0:
            body = body[: draw(st.integers(0, len(body)))] + draw(st.binary(max_size=3))
        out += struct.pack(">IB", len(body) + 1, ftype) + body
    if draw(st.integers(0, 4)) == 0 and out:  # damage a header or a length somewhere
        i = draw(st.integers(0, len(out) - 1))
        out[i] = draw(st.integers(0, 255))
    return bytes(out)


@settings(max_examples=400, deadline=None)
@given(data=plausible_stream(), chunk=st.integers(1, 200))
def test_fuzz_mutated_frames(data: bytes, chunk: int) -> None:
    fuzz_decoder(data, chunk)


@settings(max_examples=200, deadline=None)
@given(ftype=st.sampled_from(ALL_TYPES), body=st.binary(max_size=64))
def test_random_body_of_every_type_decodes_or_is_refused(ftype: FrameType, body: bytes) -> None:
    try:
        event = decode_body(ftype, body)
    except ProtocolError as exc:
        assert exc.fatal
        return
    assert not isinstance(event, UnknownFrame)
    assert encode(event)[5:] == body


def test_error_text_is_clipped_in_bytes_between_characters() -> None:
    from spec.codec import clip_utf8

    assert clip_utf8("é" * 600, 1000) == "é" * 500
    assert clip_utf8("aé", 2) == "a"
    assert clip_utf8("short", 1000) == "short"
    frame = error_frame_for(MalformedFrame("€" * 1000))
    assert len(frame) <= 4 + 1024
