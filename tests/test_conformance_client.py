"""The conformance suite's mock client, transcript and preflight, against tiny fake servers.

The fakes speak just enough chatwire/1 to exercise the harness (HELLO -> WELCOME + ROSTER, PING
-> PONG, a fatal ERROR on demand); they are written here so the harness is proven without the
reference server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from conformance.client import BadFrame, Closed, MockClient
from conformance.errors import Violation
from conformance.preflight import PreflightError, probe
from conformance.transcript import Transcript
from spec.codec import encode
from spec.constants import ErrorCode, FrameType
from spec.decoder import FrameDecoder
from spec.events import Error, Hello, Ping, Pong, Roster, Send, Welcome

Handler = Callable[[socket.socket], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], tuple[str, int]]]:
    """Start a one-connection-per-thread listener running ``handler`` on each connection."""
    listeners: list[socket.socket] = []

    def start(handler: Handler) -> tuple[str, int]:
        lsock = socket.create_server(("127.0.0.1", 0))
        listeners.append(lsock)

        def accept_loop() -> None:
            while True:
                try:
                    conn, _ = lsock.accept()
                except OSError:
                    return
                threading.Thread(target=_run, args=(handler, conn), daemon=True).start()

        threading.Thread(target=accept_loop, daemon=True).start()
        host, port = lsock.getsockname()[:2]
        return host, port

    yield start
    for lsock in listeners:
        lsock.close()


def _run(handler: Handler, conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        handler(conn)


def chat(conn: socket.socket) -> None:
    """A minimal well-behaved peer: WELCOME + roster, PONG, ACK, fatal ERROR for SEND 'die'."""
    decoder = FrameDecoder()
    while data := conn.recv(65536):
        decoder.receive_data(data)
        for event in decoder.events():
            if isinstance(event, Hello):
                conn.sendall(encode(Welcome(nick=event.nick, idle_timeout_ms=0)))
                conn.sendall(encode(Roster(room="lobby", seq=0, members=(event.nick,))))
            elif isinstance(event, Ping):
                conn.sendall(encode(Pong(event.token)))
            elif isinstance(event, Send) and event.text == "die":
                conn.sendall(encode(Error(ErrorCode.MALFORMED, "bye", FrameType.SEND)))
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
                return


@pytest.mark.timeout(20)
def test_register_barrier_and_transcript(serve: Callable[[Handler], tuple[str, int]]) -> None:
    transcript = Transcript()
    client = MockClient(serve(chat), "alice", transcript).connect()
    welcome = client.register("alice", req="HS-1")
    assert welcome.nick == "alice"
    assert [r.members for r in client.welcome_roster] == [("alice",)]
    assert client.barrier() == []
    client.close()
    dirs = [r.direction for r in transcript.records()]
    assert dirs.count("send") == 2 and dirs.count("recv") == 3
    frames = transcript.to_json()["clients"][0]["frames"]
    hello = next(f for f in frames if f["dir"] == "send")
    assert hello["hex"] == encode(Hello(nick="alice")).hex()
    assert "Welcome" in transcript.render()


@pytest.mark.timeout(20)
def test_expect_error_sees_error_then_close(serve: Callable[[Handler], tuple[str, int]]) -> None:
    client = MockClient(serve(chat), "bob", Transcript()).connect()
    client.register("bob")
    client.send_frame(Send("lobby", "die"))
    err = client.expect_error([ErrorCode.MALFORMED], "MAL-1")
    assert err.in_reply_to == FrameType.SEND
    assert isinstance(client.closed, Closed)


def silent_close(conn: socket.socket) -> None:
    conn.recv(65536)


@pytest.mark.timeout(20)
def test_expect_error_blames_close_without_error(
    serve: Callable[[Handler], tuple[str, int]],
) -> None:
    client = MockClient(serve(silent_close), "c", Transcript()).connect()
    client.send_raw(b"\x00\x00\x00\x00", "length 0")
    with pytest.raises(Violation) as info:
        client.expect_error([ErrorCode.MALFORMED], "MAL-1")
    assert info.value.req == "MAL-1"
    assert "without ERROR" in info.value.actual


def garbage(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"\x00\x00\x00\x00")
    conn.recv(65536)


@pytest.mark.timeout(20)
def test_undecodable_server_bytes_become_badframe(
    serve: Callable[[Handler], tuple[str, int]],
) -> None:
    client = MockClient(serve(garbage), "d", Transcript(), scale=0.5).connect()
    client.send_frame(Hello(nick="d"))
    item = client.recv_event(5)
    assert isinstance(item, BadFrame) and item.code == "MALFORMED"


@pytest.mark.timeout(20)
def test_timeouts_are_scaled(serve: Callable[[Handler], tuple[str, int]]) -> None:
    client = MockClient(serve(silent_close), "e", Transcript(), scale=0.01).connect()
    assert client.recv_event(10) is None  # 0.1 s, not 10 s
    client.close()


def http(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def mute(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.recv(65536)


@pytest.mark.timeout(20)
def test_preflight(serve: Callable[[Handler], tuple[str, int]]) -> None:
    assert probe(serve(chat))["nick"].startswith("probe-")
    with pytest.raises(PreflightError, match=r"is not a chatwire/1 server: it answered .HTTP/1\.1"):
        probe(serve(http))
    with pytest.raises(PreflightError, match=r"did not answer HELLO within 0\.2s"):
        probe(serve(mute), scale=0.04)
    with pytest.raises(PreflightError, match="closed the connection without answering"):
        probe(serve(silent_close))
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with pytest.raises(PreflightError, match="cannot connect"):
        probe(("127.0.0.1", port))
