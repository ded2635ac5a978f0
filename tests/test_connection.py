"""The Connection state machine (§4.4, §11, §14, §15.1) for both roles, without I/O."""

from __future__ import annotations

import struct

import pytest

from spec.codec import encode
from spec.connection import Connection, Role, State
from spec.constants import (
    CLIENT_TYPES,
    DEFAULT_MAX_FRAME,
    HARD_MAX_FRAME,
    MIN_MAX_FRAME,
    SERVER_TYPES,
    ErrorCode,
    FrameType,
)
from spec.errors import LocalProtocolError, ProtocolError
from spec.events import Deliver, Error, Event, Hello, Ping, Pong, Send, UnknownFrame, Welcome
from spec.examples import EXAMPLES

CLIENT_ONLY = sorted(CLIENT_TYPES - SERVER_TYPES)
SERVER_ONLY = sorted(SERVER_TYPES - CLIENT_TYPES)
UNKNOWN = 0x6E


def raw(ftype: int, body: bytes = b"") -> bytes:
    return struct.pack(">IB", len(body) + 1, ftype) + body


def names(types: list[FrameType]) -> list[str]:
    return [t.name for t in types]


def state_of(conn: Connection) -> State:
    """The state, read through a call so mypy does not keep an earlier narrowing."""
    return conn.state


def server() -> Connection:
    return Connection(Role.SERVER)


def registered_server() -> Connection:
    conn = server()
    conn.receive_data(encode(Hello(nick="alice")))
    assert conn.next_event() == Hello(nick="alice")
    conn.send(Welcome(nick="alice"))
    assert conn.state is State.REGISTERED
    return conn


def registered_client(welcome: Welcome | None = None) -> Connection:
    conn = Connection(Role.CLIENT)
    conn.send(Hello(nick="alice"))
    welcome = welcome or Welcome(nick="alice")
    conn.receive_data(encode(welcome))
    assert conn.next_event() == welcome
    assert conn.state is State.REGISTERED
    return conn


def expect_error(conn: Connection, code: ErrorCode) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.code is code
    return info.value


def expect_closed_by(conn: Connection, data: bytes, code: ErrorCode) -> None:
    """Feeding ``data`` is a fatal ``code``; afterwards nothing more comes out."""
    conn.receive_data(data)
    assert expect_error(conn, code).fatal
    assert conn.state is State.CLOSED
    conn.receive_data(encode(Ping(token=1)))
    assert conn.next_event() is None


# -- server side: before registration ------------------------------------------------------


@pytest.mark.parametrize(
    "ftype", [t for t in FrameType if t is not FrameType.HELLO], ids=lambda t: t.name
)
def test_server_refuses_any_frame_but_hello_first(ftype: FrameType) -> None:
    expect_closed_by(server(), encode(EXAMPLES[ftype]), ErrorCode.PROTOCOL_VIOLATION)


def test_server_refuses_unknown_type_before_registration() -> None:
    expect_closed_by(server(), raw(UNKNOWN, b"x"), ErrorCode.PROTOCOL_VIOLATION)


def test_server_refused_hello_may_be_retried() -> None:
    conn = server()
    conn.receive_data(encode(Hello(nick="alice")) + encode(Hello(nick="alice2")))
    assert conn.next_event() == Hello(nick="alice")
    conn.send(Error(code=ErrorCode.NICK_IN_USE, in_reply_to=FrameType.HELLO))
    assert conn.state is State.AWAITING_HELLO
    assert conn.next_event() == Hello(nick="alice2")
    conn.send(Welcome(nick="alice2"))
    assert state_of(conn) is State.REGISTERED


def test_server_handles_frames_pipelined_behind_hello() -> None:
    conn = server()
    conn.receive_data(encode(Hello(nick="alice")) + encode(Send(room="lobby", text="hi")))
    assert conn.next_event() == Hello(nick="alice")
    conn.send(Welcome(nick="alice"))
    assert conn.next_event() == Send(room="lobby", text="hi")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (raw(FrameType.HELLO, b"CHAX\x01\x00\x00\x00\x00\x00"), ErrorCode.BAD_MAGIC),
        (raw(FrameType.HELLO, b"CHAT\x01\x00\x00\x00\x00\x02\xc3("), ErrorCode.INVALID_UTF8),
        (raw(FrameType.HELLO, b"CHAT\x01"), ErrorCode.MALFORMED),
        (b"\x00\x01\x00\x01", ErrorCode.FRAME_TOO_LARGE),
        (b"\x00\x00\x00\x00", ErrorCode.MALFORMED),
    ],
    ids=["bad-magic", "invalid-utf8", "overrun", "too-large", "zero-length"],
)
def test_server_closes_on_undecodable_hello(data: bytes, code: ErrorCode) -> None:
    expect_closed_by(server(), data, code)


@pytest.mark.parametrize(
    "body",
    [
        b"CHAT\x02\x00\x00\x00\x00\x05alice",
        b"CHAT\x02",
        b"CHAT\x02\x00\x00\x00\x00\x05alice" + b"more fields of version 2",
        b"CHAT\x00\xff\xff",
    ],
    ids=["v2", "v2-bare", "v2-longer", "v0-garbage"],
)
def test_server_refuses_other_versions_whatever_follows(body: bytes) -> None:
    # §4.1 [HS-2]: magic, then version, before the rest of the body is parsed.
    expect_closed_by(server(), raw(FrameType.HELLO, body), ErrorCode.UNSUPPORTED_VERSION)


# -- server side: registered --------------------------------------------------------------


@pytest.mark.parametrize(
    "ftype", sorted(CLIENT_TYPES - {FrameType.HELLO}), ids=lambda t: FrameType(t).name
)
def test_server_accepts_client_types_after_registration(ftype: FrameType) -> None:
    conn = registered_server()
    conn.receive_data(encode(EXAMPLES[ftype]))
    assert conn.next_event() == EXAMPLES[ftype]
    assert conn.state is State.REGISTERED


def test_server_refuses_second_hello() -> None:
    expect_closed_by(registered_server(), encode(Hello(nick="bob")), ErrorCode.PROTOCOL_VIOLATION)


@pytest.mark.parametrize("ftype", SERVER_ONLY, ids=names(SERVER_ONLY))
def test_server_refuses_server_only_types_from_a_client(ftype: FrameType) -> None:
    expect_closed_by(registered_server(), encode(EXAMPLES[ftype]), ErrorCode.PROTOCOL_VIOLATION)


def test_unknown_type_after_registration_is_skipped_and_the_session_goes_on() -> None:
    conn = registered_server()
    conn.receive_data(raw(UNKNOWN, b"\xff\xfe") + raw(0xFF) + encode(Ping(token=5)))
    for _ in range(2):
        error = expect_error(conn, ErrorCode.UNKNOWN_TYPE)
        assert not error.fatal
        assert conn.state is State.REGISTERED
        conn.send(Error(code=error.code, text=error.detail, in_reply_to=UNKNOWN))
        assert conn.state is State.REGISTERED
    assert conn.next_event() == Ping(token=5)
    assert conn.send(Pong(token=5)) == encode(Pong(token=5))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (raw(FrameType.SEND, b"\x05lobby\x00\x09hi"), ErrorCode.MALFORMED),
        (raw(FrameType.PING, b"\x00" * 9), ErrorCode.MALFORMED),
        (raw(FrameType.SEND, b"\x05lobby\x00\x01\x00"), ErrorCode.INVALID_UTF8),
        (struct.pack(">I", DEFAULT_MAX_FRAME + 1), ErrorCode.FRAME_TOO_LARGE),
    ],
    ids=["overrun", "trailing", "nul", "too-large"],
)
def test_server_closes_on_undecodable_frame(data: bytes, code: ErrorCode) -> None:
    expect_closed_by(registered_server(), data, code)


@pytest.mark.parametrize(
    ("data", "registered"),
    [
        (raw(FrameType.DELIVER, b"\xff\xff"), True),
        (raw(FrameType.ACK, b""), True),
        (raw(FrameType.HELLO, b"CHAX"), True),
        (raw(FrameType.PING, b"\x00"), False),
        (raw(FrameType.SEND, b"\x01\xc0"), False),
    ],
    ids=[
        "deliver-garbage",
        "ack-empty",
        "second-hello-bad-magic",
        "short-ping-first",
        "bad-send-first",
    ],
)
def test_type_is_judged_before_the_body(data: bytes, registered: bool) -> None:
    # §14 [MAL-17]: a frame the side or state does not allow is PROTOCOL_VIOLATION even when
    # its body would not decode.
    conn = registered_server() if registered else server()
    expect_closed_by(conn, data, ErrorCode.PROTOCOL_VIOLATION)


@pytest.mark.parametrize("advertised", [MIN_MAX_FRAME, 4 * DEFAULT_MAX_FRAME])
def test_server_receives_up_to_its_advertised_max_frame_after_welcome(advertised: int) -> None:
    # §3.2 [FRAME-7]: 65536 until WELCOME is sent, max_frame from then on.
    conn = server()
    assert conn.max_frame == DEFAULT_MAX_FRAME
    conn.receive_data(encode(Hello(nick="alice")))
    conn.next_event()
    conn.send(Welcome(nick="alice", max_frame=advertised))
    assert conn.max_frame == advertised
    # The longest a SEND can be (255-byte room, 65535-byte text) or the limit, if smaller.
    largest = Send(room="r" * 255, text="x" * min(advertised - 259, 65535))
    assert len(encode(largest)) - 4 == min(advertised, 65794)
    conn.receive_data(encode(largest))
    assert conn.next_event() == largest
    expect_closed_by(conn, struct.pack(">I", advertised + 1), ErrorCode.FRAME_TOO_LARGE)


def test_fatal_error_sent_by_the_server_ends_the_session() -> None:
    conn = registered_server()
    conn.receive_data(encode(Ping(token=1)))
    conn.send(Error(code=ErrorCode.SERVER_SHUTDOWN))
    assert conn.state is State.CLOSED
    assert conn.next_event() is None
    with pytest.raises(LocalProtocolError):
        conn.send(Pong(token=1))
    conn.send(Error(code=ErrorCode.SERVER_SHUTDOWN))  # repeating the ERROR is allowed


def test_close_ends_the_session() -> None:
    conn = registered_server()
    conn.receive_data(encode(Ping(token=1)))
    conn.close()
    assert conn.state is State.CLOSED
    assert conn.next_event() is None


# -- client side --------------------------------------------------------------------------


def test_client_registers_on_welcome_and_adopts_a_smaller_max_frame() -> None:
    conn = registered_client(Welcome(nick="alice", max_frame=MIN_MAX_FRAME))
    assert conn.max_frame == MIN_MAX_FRAME
    expect_closed_by(conn, struct.pack(">I", MIN_MAX_FRAME + 1), ErrorCode.FRAME_TOO_LARGE)


def test_client_adopts_a_larger_max_frame() -> None:
    big = Send(room="r", text="x" * 60_000)
    deliver = encode(EXAMPLES[FrameType.DELIVER])
    roster = EXAMPLES[FrameType.ROSTER]
    conn = Connection(Role.CLIENT)
    welcome = Welcome(nick="alice", max_frame=4 * DEFAULT_MAX_FRAME)
    # WELCOME and what follows arrive in one read: the new limit applies from the next frame.
    long_frame = raw(FrameType.WHISPER, b"\x03bob" + struct.pack(">H", 65_000) + b"y" * 65_000)
    conn.receive_data(encode(welcome) + encode(roster) + long_frame + deliver)
    assert conn.next_event() == welcome
    assert conn.next_event() == roster
    assert conn.next_event() is not None
    assert conn.next_event() == EXAMPLES[FrameType.DELIVER]
    assert len(encode(big)) < conn.max_frame


def test_client_never_lifts_its_limit_above_the_hard_maximum() -> None:
    conn = registered_client(Welcome(nick="alice", max_frame=0xFFFF_FFFF))
    assert conn.max_frame == HARD_MAX_FRAME
    expect_closed_by(conn, struct.pack(">I", HARD_MAX_FRAME + 1), ErrorCode.FRAME_TOO_LARGE)


@pytest.mark.parametrize(
    "ftype",
    [t for t in FrameType if t not in (FrameType.WELCOME, FrameType.ERROR)],
    ids=lambda t: t.name,
)
def test_client_refuses_anything_but_welcome_or_error_first(ftype: FrameType) -> None:
    conn = Connection(Role.CLIENT)
    conn.send(Hello(nick="alice"))
    expect_closed_by(conn, encode(EXAMPLES[ftype]), ErrorCode.PROTOCOL_VIOLATION)


def test_client_stays_unregistered_after_a_refused_hello() -> None:
    conn = Connection(Role.CLIENT)
    conn.send(Hello(nick="alice"))
    refusal = Error(code=ErrorCode.NICK_IN_USE, text="taken", in_reply_to=FrameType.HELLO)
    conn.receive_data(encode(refusal))
    assert conn.next_event() == refusal
    assert conn.state is State.AWAITING_HELLO
    assert conn.send(Hello(nick="alice2")) == encode(Hello(nick="alice2"))


@pytest.mark.parametrize("code", [ErrorCode.SERVER_FULL, 0x0300], ids=["SERVER_FULL", "0x0300"])
def test_fatal_error_before_welcome_closes_the_client(code: int) -> None:
    conn = Connection(Role.CLIENT)
    conn.send(Hello(nick="alice"))
    conn.receive_data(encode(Error(code=code)) + encode(Welcome(nick="alice")))
    assert conn.next_event() == Error(code=code)
    assert conn.state is State.CLOSED
    assert conn.next_event() is None


@pytest.mark.parametrize(
    ("code", "state"),
    [
        (ErrorCode.NOT_IN_ROOM, State.REGISTERED),
        (0x01FF, State.REGISTERED),  # unknown, but non-fatal by its range (§11.2)
        (ErrorCode.IDLE_TIMEOUT, State.CLOSED),
        (0x0BAD, State.CLOSED),  # unknown, fatal by its range
    ],
)
def test_client_reads_fatality_from_the_code_range(code: int, state: State) -> None:
    conn = registered_client()
    conn.receive_data(encode(Error(code=code)))
    assert conn.next_event() == Error(code=code)
    assert conn.state is state


@pytest.mark.parametrize(
    "ftype", sorted(SERVER_TYPES - {FrameType.WELCOME}), ids=lambda t: FrameType(t).name
)
def test_client_accepts_server_types_after_welcome(ftype: FrameType) -> None:
    conn = registered_client()
    conn.receive_data(encode(EXAMPLES[ftype]))
    assert conn.next_event() == EXAMPLES[ftype]


@pytest.mark.parametrize("ftype", [*CLIENT_ONLY, FrameType.WELCOME], ids=lambda t: t.name)
def test_client_refuses_client_types_and_second_welcome(ftype: FrameType) -> None:
    expect_closed_by(registered_client(), encode(EXAMPLES[ftype]), ErrorCode.PROTOCOL_VIOLATION)


@pytest.mark.parametrize("registered", [False, True])
def test_client_hands_unknown_types_on_and_goes_on(registered: bool) -> None:
    conn = registered_client() if registered else Connection(Role.CLIENT)
    state = conn.state
    conn.receive_data(raw(UNKNOWN, b"\x00\xff") + encode(Error(code=ErrorCode.NICK_IN_USE)))
    assert conn.next_event() == UnknownFrame(UNKNOWN, b"\x00\xff")
    assert conn.state is state
    assert conn.next_event() == Error(code=ErrorCode.NICK_IN_USE)


def test_client_closes_on_bad_text_from_the_server() -> None:
    bad = raw(FrameType.WHISPER, b"\x03bob\x00\x02\xed\xa0")
    expect_closed_by(registered_client(), bad, ErrorCode.INVALID_UTF8)


# -- what each side may send ----------------------------------------------------------------


@pytest.mark.parametrize("ftype", SERVER_ONLY, ids=names(SERVER_ONLY))
def test_client_may_not_send_server_types(ftype: FrameType) -> None:
    for conn in (Connection(Role.CLIENT), registered_client()):
        with pytest.raises(LocalProtocolError):
            conn.send(EXAMPLES[ftype])


@pytest.mark.parametrize("ftype", CLIENT_ONLY, ids=names(CLIENT_ONLY))
def test_server_may_not_send_client_types(ftype: FrameType) -> None:
    for conn in (server(), registered_server()):
        with pytest.raises(LocalProtocolError):
            conn.send(EXAMPLES[ftype])


@pytest.mark.parametrize("ftype", sorted(SERVER_TYPES), ids=lambda t: FrameType(t).name)
def test_server_sends_nothing_before_welcome_but_error(ftype: FrameType) -> None:
    event: Event = EXAMPLES[ftype]
    conn = server()
    if ftype in (FrameType.WELCOME, FrameType.ERROR):
        assert conn.send(event) == encode(event)
    else:
        with pytest.raises(LocalProtocolError):
            conn.send(event)
        assert conn.state is State.AWAITING_HELLO


def test_neither_side_repeats_the_handshake() -> None:
    with pytest.raises(LocalProtocolError):
        registered_server().send(Welcome(nick="alice"))
    with pytest.raises(LocalProtocolError):
        registered_client().send(Hello(nick="alice"))


@pytest.mark.parametrize("event", [Ping(token=9), Pong(token=9)], ids=["PING", "PONG"])
def test_both_sides_may_ping_after_registration(event: Event) -> None:
    assert registered_client().send(event) == encode(event)
    assert registered_server().send(event) == encode(event)


@pytest.mark.parametrize(
    "ftype", sorted(CLIENT_TYPES - {FrameType.HELLO}), ids=lambda t: FrameType(t).name
)
def test_client_sends_nothing_but_hello_before_welcome(ftype: FrameType) -> None:
    # §4.2 [HS-9]: not even behind a HELLO that may yet be refused.
    conn = Connection(Role.CLIENT)
    conn.send(Hello(nick="alice"))
    with pytest.raises(LocalProtocolError):
        conn.send(EXAMPLES[ftype])
    assert registered_client().send(EXAMPLES[ftype]) == encode(EXAMPLES[ftype])


def test_neither_side_sends_a_frame_over_the_limit_in_force() -> None:
    # §3.2 [FRAME-4, FRAME-5]: 65536 before WELCOME, max_frame after.
    small = Welcome(nick="alice", max_frame=MIN_MAX_FRAME)
    fits = Send(room="r", text="x" * (MIN_MAX_FRAME - 5))
    too_big = Send(room="r", text="x" * (MIN_MAX_FRAME - 4))
    client = registered_client(small)
    assert len(client.send(fits)) == MIN_MAX_FRAME + 4
    with pytest.raises(LocalProtocolError):
        client.send(too_big)
    srv = server()
    srv.receive_data(encode(Hello(nick="alice")))
    srv.next_event()
    srv.send(small)
    deliver = Deliver(room="r", seq=1, sender="s", text="x" * MIN_MAX_FRAME)
    with pytest.raises(LocalProtocolError):
        srv.send(deliver)
    with pytest.raises(LocalProtocolError):
        registered_client().send(Send(room="r", text="x" * DEFAULT_MAX_FRAME))


def test_closed_client_sends_nothing() -> None:
    conn = registered_client()
    conn.close()
    with pytest.raises(LocalProtocolError):
        conn.send(Ping(token=1))
