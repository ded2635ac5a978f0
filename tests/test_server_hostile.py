"""Hostile and broken input (§14): the right ERROR, a clean close, nobody else disturbed, and
the server's threads and descriptors back where they started afterwards."""

from __future__ import annotations

import random
import socket
import struct

import pytest

from reference.server import Server
from spec.codec import encode
from spec.constants import ErrorCode, FrameType, LeaveReason
from spec.events import Ack, Bye, Deliver, Error, Hello, Left, Ping, Pong, Send
from tests.rawclient import (
    Closed,
    RawClient,
    clients,
    open_fds,
    running_server,
    session_threads,
)

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def frame(ftype: int, body: bytes) -> bytes:
    return struct.pack(">IB", len(body) + 1, ftype) + body


HELLO_BOB = encode(Hello("bob"))
GOOD_SEND = encode(Send("lobby", "fine"))

# (name, bytes sent after registering, or before if the name starts with "pre:", code, reply-to)
CASES = [
    ("length zero", b"\x00\x00\x00\x00", ErrorCode.MALFORMED, 0),
    ("4 GiB length", b"\xff\xff\xff\xff\x10", ErrorCode.FRAME_TOO_LARGE, 0),
    ("just over max_frame", struct.pack(">IB", 1025, 0x10), ErrorCode.FRAME_TOO_LARGE, 0),
    ("field overrun", frame(0x10, b"\xc8lobby"), ErrorCode.MALFORMED, FrameType.SEND),
    ("text overrun", frame(0x10, b"\x05lobby\x00\x09ab"), ErrorCode.MALFORMED, FrameType.SEND),
    ("trailing bytes", frame(0x40, b"\x00" * 9), ErrorCode.MALFORMED, FrameType.PING),
    ("join trailing", frame(0x20, b"\x01a\x00"), ErrorCode.MALFORMED, FrameType.JOIN),
    ("bad utf-8", frame(0x10, b"\x05lobby\x00\x02\xc3\x28"), ErrorCode.INVALID_UTF8, 0x10),
    ("overlong utf-8", frame(0x10, b"\x05lobby\x00\x02\xc0\xaf"), ErrorCode.INVALID_UTF8, 0x10),
    ("surrogate", frame(0x10, b"\x05lobby\x00\x03\xed\xa0\x80"), ErrorCode.INVALID_UTF8, 0x10),
    ("nul in text", frame(0x10, b"\x05lobby\x00\x01\x00"), ErrorCode.INVALID_UTF8, 0x10),
    ("server-only type", encode(Error(1, "x")), ErrorCode.PROTOCOL_VIOLATION, 0x7F),
    ("deliver from client", frame(0x11, b""), ErrorCode.PROTOCOL_VIOLATION, 0x11),
    ("second hello", encode(Hello("again")), ErrorCode.PROTOCOL_VIOLATION, FrameType.HELLO),
    ("pre:ping first", encode(Ping(1)), ErrorCode.PROTOCOL_VIOLATION, FrameType.PING),
    ("pre:send first", GOOD_SEND, ErrorCode.PROTOCOL_VIOLATION, FrameType.SEND),
    ("pre:unknown type first", frame(0x66, b""), ErrorCode.PROTOCOL_VIOLATION, 0x66),
    ("pre:bad magic", frame(1, b"CHAP\x01\x00\x00\x00\x00\x03bob"), ErrorCode.BAD_MAGIC, 1),
    (
        "pre:bad version",
        frame(1, b"CHAT\x02\x00\x00\x00\x00\x03bob"),
        ErrorCode.UNSUPPORTED_VERSION,
        1,
    ),
    ("pre:bad version short", frame(1, b"CHAT\x09"), ErrorCode.UNSUPPORTED_VERSION, 1),
    ("pre:hello overrun", frame(1, b"CHAT\x01\x00\x00\x00\x00\x09bob"), ErrorCode.MALFORMED, 1),
    (
        "pre:hello bad utf-8",
        frame(1, b"CHAT\x01\x00\x00\x00\x00\x01\xff"),
        ErrorCode.INVALID_UTF8,
        1,
    ),
    ("pre:over 65536", struct.pack(">IB", 65537, 1), ErrorCode.FRAME_TOO_LARGE, 0),
]


@pytest.mark.parametrize("data, code, reply_to", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_input_gets_its_error_and_a_clean_close(
    data: bytes, code: ErrorCode, reply_to: int
) -> None:
    name = next(c[0] for c in CASES if c[1] == data)
    with (
        running_server(max_frame=1024, max_text=512) as server,
        clients(server, "alice") as (alice,),
    ):
        client = RawClient(server.address)
        if not name.startswith("pre:"):
            client.hello("mallory")
            alice.barrier()
        client.send_raw(data)
        err = client.fatal()
        assert (err.code, err.in_reply_to) == (code, reply_to)
        assert not client.inbox
        if not name.startswith("pre:"):
            assert alice.barrier() == [Left("lobby", "mallory", LeaveReason.ERROR, "")]
        alice.send(Send("lobby", "still here"))
        assert alice.barrier() == [Ack("lobby", 1)]
        client.close()


def test_unknown_type_after_registration_is_skipped() -> None:
    with running_server() as server, clients(server, "alice") as (alice,):
        alice.send_raw(frame(0x66, b"whatever") + GOOD_SEND)
        got = alice.barrier()
        assert got == [Error(ErrorCode.UNKNOWN_TYPE, "unknown type", 0x66), Ack("lobby", 1)]


def test_four_gib_length_allocates_nothing() -> None:
    with running_server() as server:
        before = _rss_kib()
        victims = [RawClient(server.address) for _ in range(20)]
        for v in victims:
            v.send_raw(b"\xff\xff\xff\xf0\x01")
        for v in victims:
            assert v.fatal().code == ErrorCode.FRAME_TOO_LARGE
            v.close()
        assert _rss_kib() - before < 50_000


def test_random_bytes_never_crash_the_server() -> None:
    rng = random.Random(1234)
    with running_server() as server, clients(server, "alice") as (alice,):
        for i in range(40):
            junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000)))
            client = RawClient(server.address)
            if i % 2:
                client.hello(f"fuzz{i}")
            client.send_raw(junk)
            items = client.until_closed(timeout=3)  # every run ends in a close, never a hang
            errors = [e for e in items if isinstance(e, Error)]
            assert errors and errors[-1].fatal, items
            client.close()
        alice.send(Send("lobby", "alive"))
        got = [e for e in alice.barrier() if not isinstance(e, Left)]
        assert got[-1] == Ack("lobby", 1)


def test_handshake_timeout_and_half_frame_before_hello() -> None:
    with running_server() as server:
        silent = RawClient(server.address)
        half = RawClient(server.address)
        half.send_raw(HELLO_BOB[:7])
        assert silent.fatal().code == ErrorCode.HANDSHAKE_TIMEOUT
        assert half.fatal().code == ErrorCode.HANDSHAKE_TIMEOUT
        refused = RawClient(server.address)  # refused HELLOs do not stop the clock
        refused.send(Hello("no way"))
        assert refused.expect(Error).code == ErrorCode.NICK_INVALID
        assert refused.fatal().code == ErrorCode.HANDSHAKE_TIMEOUT
        for c in (silent, half, refused):
            c.close()


def test_half_frame_after_registration_counts_as_silence() -> None:
    with running_server(idle_timeout=1.0) as server, clients(server, "alice") as (alice,):
        staller = RawClient(server.address, auto_pong=False)
        staller.hello("staller")
        alice.barrier()
        staller.send_raw(GOOD_SEND[:6])  # and then nothing: the PING goes unanswered
        # alice keeps reading (and answering PINGs) while the staller's clock runs out
        assert alice.collect_until(lambda e: e == Left("lobby", "staller", 3, "")) == []
        items = staller.until_closed()
        assert isinstance(items[0], Ping)
        assert isinstance(items[-2], Error) and items[-2].code == ErrorCode.IDLE_TIMEOUT
        assert isinstance(items[-1], Closed) and not items[-1].reset
        staller.close()


@pytest.mark.timeout(120)
def test_a_thousand_connections_dropped_mid_handshake_leave_nothing_behind() -> None:
    with running_server() as server:
        with clients(server, "alice", "bob") as (alice, bob):
            alice.barrier()
            threads, fds = len(session_threads()), open_fds()
            for batch in range(4):
                socks = [socket.create_connection(server.address) for _ in range(250)]
                for i, s in enumerate(socks):
                    if i % 3 == 0:
                        s.sendall(HELLO_BOB[: 1 + i % 9])
                    elif i % 3 == 1:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
                alice.send(Send("lobby", f"batch {batch}"))
            assert [e.seq for e in alice.barrier() if isinstance(e, Ack)] == [1, 2, 3, 4]
            got = bob.barrier()
            assert [e.seq for e in got if isinstance(e, Deliver)] == [1, 2, 3, 4]
            late = RawClient(server.address)  # accepted after all the others (FIFO backlog)
            late.hello("late")
            late.send(Bye())
            late.until_closed()
            late.close()
            assert server.wait_sessions(2, timeout=10)
            _join_finished_sessions(server)
            assert len(session_threads()) == threads
            assert open_fds() == fds
        assert server.wait_sessions(0, timeout=10)
        _join_finished_sessions(server)


def test_threads_and_descriptors_return_after_every_kind_of_exit() -> None:
    with running_server() as server:
        threads, fds = len(session_threads()), open_fds()
        with clients(server, "keeper") as (keeper,):
            for i in range(30):
                c = RawClient(server.address, auto_pong=False)
                kind = i % 5
                if kind:
                    c.hello(f"c{i}")
                if kind == 1:
                    c.send_raw(b"\x00\x00\x00\x00")
                elif kind == 2:
                    c.send(Ping(5))
                    assert isinstance(c.expect(Pong), Pong)
                elif kind == 3:
                    c.abort()
                    continue
                elif kind == 4:
                    c.send_raw(frame(0x10, b"\x05lobby\x00\x01\xff"))
                if kind in (0, 1, 4):
                    c.until_closed()
                c.close()
            keeper.barrier()
        assert server.wait_sessions(0, timeout=10)
        _join_finished_sessions(server)
        assert len(session_threads()) == threads
        assert open_fds() == fds


def _join_finished_sessions(server: Server) -> None:
    """Session threads leave the server's table just before they exit: join those."""
    current = server.session_threads()
    for t in session_threads():
        if t not in current:
            t.join(timeout=5)
            assert not t.is_alive()


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_squatters_that_never_send_hello_give_way_to_real_clients() -> None:
    """The handshake share is full of connections that never send HELLO: a real client still
    gets in, and the oldest squatter is told HANDSHAKE_TIMEOUT early."""
    with running_server(max_handshakes=4, handshake_timeout=30.0) as server:
        squatters = [RawClient(server.address) for _ in range(4)]  # accepted in this order
        try:
            real = RawClient(server.address)
            assert real.hello("real").nick == "real"
            real.close()
            assert squatters[0].fatal().code == ErrorCode.HANDSHAKE_TIMEOUT
        finally:
            for squatter in squatters:
                squatter.close()


def test_connections_past_the_per_address_limit_get_server_full() -> None:
    with running_server(max_per_address=2) as server, clients(server, "a", "b"):
        third = RawClient(server.address)
        try:
            assert third.fatal().code == ErrorCode.SERVER_FULL
        finally:
            third.close()
