"""spec/fastpath.py must agree with the normative construct definitions in spec/schema.py:
byte for byte when building, and in value, acceptance and error code when parsing."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spec import fastpath
from spec.codec import (
    decode_body,
    decode_body_with_construct,
    encode,
    encode_with_construct,
)
from spec.constants import FrameType
from spec.errors import ProtocolError
from spec.events import Deliver, Event, Hello, Send, UnknownFrame, Welcome
from tests.frame_strategies import EVENTS
from tests.speedups import NOT_BUILT, both, compiled

FAST_TYPES = [
    FrameType.HELLO,
    FrameType.WELCOME,
    FrameType.SEND,
    FrameType.DELIVER,
    FrameType.ACK,
    FrameType.PING,
    FrameType.PONG,
]

Outcome = tuple[str, object]


ENCODE_TYPES = [t for t in FAST_TYPES if t is not FrameType.HELLO]
DECODE_TYPES = [t for t in FAST_TYPES if t is not FrameType.WELCOME]
ENCODE_EVENTS = st.one_of(*(EVENTS[t] for t in ENCODE_TYPES))
DECODE_EVENTS = st.one_of(*(EVENTS[t] for t in DECODE_TYPES))


def test_the_fast_path_covers_exactly_the_hot_types() -> None:
    assert set(fastpath.ENCODERS) == set(ENCODE_TYPES)
    assert set(fastpath.DECODERS) == set(DECODE_TYPES)


def outcome(
    decode: Callable[[int, bytes], Event | UnknownFrame], ftype: int, body: bytes
) -> Outcome:
    try:
        return "ok", decode(ftype, body)
    except ProtocolError as exc:
        return "error", exc.code


def fast_direct(ftype: int, body: bytes) -> Event | UnknownFrame:
    return fastpath.DECODERS[FrameType(ftype)](body)  # type: ignore[return-value]


def assert_agree(ftype: int, body: bytes) -> None:
    normative = outcome(decode_body_with_construct, ftype, body)
    assert outcome(decode_body, ftype, body) == normative, body.hex()
    assert outcome(fast_direct, ftype, body) == normative, body.hex()


# -- (a) building ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(ENCODE_EVENTS)
def test_fast_encode_is_byte_identical(event: Event) -> None:
    expected = encode_with_construct(event)
    assert fastpath.ENCODERS[event.type](event) == expected
    assert encode(event) == expected


# -- (b) round trip -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(DECODE_EVENTS)
def test_fast_round_trip(event: Event) -> None:
    body = encode(event)[5:]
    assert fastpath.DECODERS[event.type](body) == event
    assert decode_body(event.type, body) == event
    assert decode_body_with_construct(event.type, body) == event


# -- (c) parsing random and mutated bodies ----------------------------------------------------


@pytest.mark.parametrize("ftype", DECODE_TYPES, ids=[t.name for t in DECODE_TYPES])
@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=48))
def test_random_bodies_get_the_same_verdict(ftype: FrameType, body: bytes) -> None:
    assert_agree(ftype, body)


def length_prefixes(event: Event) -> list[tuple[int, int]]:
    """(offset, width) of each string length prefix in the body of ``event``."""
    if event.type is FrameType.HELLO:
        return [(9, 1)]  # magic, version, caps, then the nick's length
    fields = {
        FrameType.SEND: [("room", 1), ("text", 2)],
        FrameType.DELIVER: [("room", 1), ("seq", 0), ("sender", 1), ("text", 2)],
        FrameType.ACK: [("room", 1), ("seq", 0)],
    }.get(event.type, [])
    prefixes, offset = [], 0
    for name, width in fields:
        value = getattr(event, name)
        if width == 0:  # a u64, no prefix
            offset += 8
            continue
        prefixes.append((offset, width))
        offset += width + len(value.encode())
    return prefixes


@st.composite
def mutated_body(draw: st.DrawFn) -> tuple[int, bytes]:
    event = draw(DECODE_EVENTS)
    body = bytearray(encode(event)[5:])
    prefixes = length_prefixes(event)
    for _ in range(draw(st.integers(1, 3))):
        ops = ["truncate", "flip", "insert", "append"] + (["prefix"] if prefixes else [])
        op = draw(st.sampled_from(ops))
        at = draw(st.integers(0, len(body)))
        if op == "truncate":
            del body[at:]
        elif op == "flip" and body:
            i = min(at, len(body) - 1)
            body[i] ^= draw(st.integers(1, 0xFF))
        elif op == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "append":
            body += draw(st.binary(min_size=1, max_size=4))
        elif op == "prefix":
            offset, width = draw(st.sampled_from(prefixes))
            if offset + width > len(body):
                continue
            old = int.from_bytes(body[offset : offset + width], "big")
            new = draw(
                st.one_of(
                    st.integers(0, (1 << (8 * width)) - 1),
                    st.integers(max(0, old - 3), min((1 << (8 * width)) - 1, old + 3)),
                )
            )
            body[offset : offset + width] = new.to_bytes(width, "big")
    return event.type, bytes(body)


@settings(max_examples=600, deadline=None)
@given(mutated_body())
def test_mutated_bodies_get_the_same_verdict(case: tuple[int, bytes]) -> None:
    assert_agree(*case)


@pytest.mark.parametrize(
    ("ftype", "body"),
    [
        (FrameType.SEND, b""),
        (FrameType.SEND, b"\x00\x00"),
        (FrameType.SEND, b"\x01\xc3\x00\x00"),
        (FrameType.SEND, b"\x00\x00\x02\xed\xa0"),
        (FrameType.SEND, b"\x00\x00\x01\x00"),
        (FrameType.DELIVER, b"\x00" + b"\x00" * 8 + b"\x01\x00\x00\x00"),
        (FrameType.DELIVER, b"\x00" + b"\x00" * 7),
        (FrameType.ACK, b"\x00" + b"\x00" * 9),
        (FrameType.PING, b""),
        (FrameType.PONG, b"\x00" * 9),
    ],
)
def test_known_hard_cases_get_the_same_verdict(ftype: FrameType, body: bytes) -> None:
    assert_agree(ftype, body)
    assert outcome(decode_body_with_construct, ftype, body)[0] == "error"


def test_length_prefix_offsets_point_at_the_prefixes() -> None:
    event = Deliver(room="ab", seq=1, sender="é", text="xyz")
    body = encode(event)[5:]
    found = [(o, w, int.from_bytes(body[o : o + w], "big")) for o, w in length_prefixes(event)]
    assert found == [(0, 1, 2), (11, 1, 2), (14, 2, 3)]


# -- the handshake pair, with bodies aimed at the magic/version checks -----------------------

names = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)

welcomes = st.builds(
    Welcome,
    nick=names,
    caps=st.integers(0, 2**32 - 1),
    max_frame=st.integers(0, 2**32 - 1),
    max_text=st.integers(0, 2**16 - 1),
    max_rooms=st.integers(0, 2**16 - 1),
    idle_timeout_ms=st.integers(0, 2**32 - 1),
    out_limit=st.integers(0, 2**32 - 1),
    slow_timeout_ms=st.integers(0, 2**32 - 1),
    rate=st.integers(0, 2**16 - 1),
    burst=st.integers(0, 2**16 - 1),
    room=names,
)


@given(welcomes)
def test_welcome_matches_codec(event: Welcome) -> None:
    assert fastpath.encode_welcome(event) == encode(event)


def _hello_outcome(decode: Callable[[bytes], object], body: bytes) -> object:
    try:
        return decode(body)
    except ProtocolError as exc:
        return exc.code


def _construct_hello(body: bytes) -> object:
    return decode_body_with_construct(FrameType.HELLO, body)


hello_bodies = st.one_of(
    st.binary(max_size=48),
    st.builds(lambda n, c: encode(Hello(n, c))[5:], names, st.integers(0, 2**32 - 1)),
    st.builds(
        lambda head, tail: b"CHAT" + head + tail,
        st.binary(min_size=0, max_size=6),
        st.binary(max_size=40),
    ),
)


@settings(max_examples=500)
@given(hello_bodies, st.integers(0, 60), st.integers(0, 255))
def test_hello_decoder_agrees_with_construct(body: bytes, where: int, value: int) -> None:
    for candidate in (body, body[:where] + bytes([value]) + body[where + 1 :], body[:where]):
        assert _hello_outcome(fastpath.decode_hello, candidate) == _hello_outcome(
            _construct_hello, candidate
        )


# -- (d) a run of SENDs taken straight from a receive buffer ----------------------------------


def _one_at_a_time(stream: bytes, max_frame: int, limit: int) -> tuple[list[object], int]:
    """What scan_sends must give: frame by frame through the construct definition, the SENDs
    it accepts, up to the first frame that is not one (or not whole), and where that is."""
    run: list[object] = []
    pos = 0
    while len(run) < limit and len(stream) - pos >= 5:
        length = int.from_bytes(stream[pos : pos + 4], "big")
        end = pos + 4 + length
        if not 0 < length <= max_frame or end > len(stream) or stream[pos + 4] != FrameType.SEND:
            break
        body = stream[pos + 5 : end]
        try:
            event = decode_body_with_construct(FrameType.SEND, body)
        except ProtocolError:
            break
        assert isinstance(event, Send)
        run.append((event.room.encode(), body[1 + body[0] :]))
        pos = end
    return run, pos


def _frames_of(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["send", "send", "mutated", "other", "junk"]))
        if kind == "send":
            parts.append(encode(draw(EVENTS[FrameType.SEND])))
        elif kind == "mutated":
            ftype, body = draw(mutated_body())
            parts.append(len(body + b"x").to_bytes(4, "big") + bytes([FrameType.SEND]) + body)
            del ftype
        elif kind == "other":
            parts.append(encode(draw(ENCODE_EVENTS)))
        else:
            parts.append(draw(st.binary(max_size=12)))
    stream = b"".join(parts)
    return stream[: draw(st.integers(0, len(stream)))] if draw(st.booleans()) else stream


COMPILED: fastpath.ScanSends | None = compiled("scan_sends")
#: The pure-Python definition and, where ``make speedups`` built it, its compiled twin.
SCANNERS = both(fastpath.scan_sends_py, COMPILED)


@pytest.mark.parametrize("scan", SCANNERS)
@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_scan_sends_takes_what_the_construct_path_accepts(
    scan: fastpath.ScanSends, data: st.DataObject
) -> None:
    stream = data.draw(st.composite(_frames_of)())
    max_frame = data.draw(st.sampled_from([6, 64, 70000]))
    limit = data.draw(st.integers(1, 8))
    offset = data.draw(st.integers(0, 3))
    padded = bytearray(b"\xee" * offset + stream)
    run, end = scan(padded, offset, max_frame, limit)
    want, want_end = _one_at_a_time(stream, max_frame, limit)
    assert run == want
    assert end - offset == want_end


#: Room and text bytes for runs that repeat rooms: valid, non-ASCII, NUL, bad UTF-8, empty.
ROOMS = [b"lobby", b"caf\xc3\xa9", b"lob\x00by", b"\xc3", b"", b"lobby"]
TEXTS = [b"hi", b"", b"\xe6\xbc\xa2\xe5\xad\x97", b"a\x00b", b"\xed\xa0\x80", b"x" * 300]


def _repeating_run(draw: st.DrawFn) -> bytes:
    """SENDs whose rooms repeat (the compiled twin reuses the last room), some bad."""
    parts = []
    for _ in range(draw(st.integers(1, 10))):
        room = draw(st.sampled_from(ROOMS))
        text = draw(st.sampled_from(TEXTS))
        body = bytes([len(room)]) + room + len(text).to_bytes(2, "big") + text
        if draw(st.integers(0, 9)) == 0:  # now and then a length that lies
            body += draw(st.binary(min_size=1, max_size=3))
        parts.append((len(body) + 1).to_bytes(4, "big") + bytes([FrameType.SEND]) + body)
    return b"".join(parts)


@pytest.mark.parametrize("scan", SCANNERS)
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_scan_sends_on_runs_that_repeat_rooms(
    scan: fastpath.ScanSends, data: st.DataObject
) -> None:
    stream = data.draw(st.composite(_repeating_run)())
    limit = data.draw(st.integers(1, 12))
    run, end = scan(stream, 0, 70000, limit)
    assert (run, end) == _one_at_a_time(stream, 70000, limit)
    for (room, _), (after, _) in itertools.pairwise(run):
        if room == after:  # one object per room while it repeats (take_sends relies on it)
            assert room is after


@pytest.mark.skipif(COMPILED is None, reason=NOT_BUILT)
@settings(max_examples=1500, deadline=None)
@given(stream=st.binary(max_size=200), pos=st.integers(0, 12), limit=st.integers(0, 9))
def test_the_compiled_twin_agrees_on_arbitrary_bytes(stream: bytes, pos: int, limit: int) -> None:
    assert COMPILED is not None
    for max_frame in (0, 5, 40, 70000):
        assert COMPILED(stream, pos, max_frame, limit) == fastpath.scan_sends_py(
            stream, pos, max_frame, limit
        )


def test_the_decoder_uses_the_compiled_twin_unless_told_not_to() -> None:
    import subprocess
    import sys

    ask = "from spec import fastpath; print(fastpath.COMPILED, fastpath.scan_sends.__module__)"
    for pure, want in (("1", "False spec.fastpath"), ("0", None)):
        env = {"CHATWIRE_PURE": pure, "PATH": ""}
        got = subprocess.run(
            [sys.executable, "-c", ask], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        if want is None:
            want = "True spec._speedups" if COMPILED is not None else "False spec.fastpath"
        assert got == want


def test_scan_sends_stops_before_a_bad_send_and_the_splitter_reports_it() -> None:
    from spec.connection import Connection, Role, State
    from spec.errors import InvalidText

    conn = Connection(Role.SERVER)
    conn.state = State.REGISTERED
    good = encode(Send("lobby", "hi"))
    bad = b"\x00\x00\x00\x0a\x10\x05lobby\x00\x01\x80"  # text 0x80: never UTF-8
    conn.receive_data(good * 2 + bad + good)
    assert conn.next_sends(8) == [(b"lobby", b"\x00\x02hi")] * 2
    assert conn.next_sends(8) == []
    frame = conn.next_frame()
    assert frame is not None and frame[0] == FrameType.SEND
    with pytest.raises(InvalidText) as caught:
        conn.decode(*frame)
    assert caught.value.in_reply_to == FrameType.SEND and conn.state is State.CLOSED
