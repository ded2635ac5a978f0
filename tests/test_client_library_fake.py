"""The client library against a scripted fake server: handshake, pairing of answers with
requests, PING handling, the barrier, the send lock, and every way a session ends."""

from __future__ import annotations

import socket
import threading

import pytest

from reference.client import (
    ChatClient,
    ClientTimeout,
    ConnectFailed,
    ConnectionClosed,
    Disconnected,
    EndCause,
    NickRefused,
    NotChatwireServer,
    RequestFailed,
    ServerError,
    ServerEvent,
)
from spec.constants import Capability, ErrorCode, FrameType, LeaveReason
from spec.events import (
    Ack,
    Bye,
    Deliver,
    Direct,
    Error,
    Hello,
    Join,
    Leave,
    Left,
    ListRooms,
    Ping,
    Pong,
    RoomEntry,
    Rooms,
    Roster,
    Send,
    Welcome,
    Whisper,
    Who,
)
from tests.client_fakes import FakePeer, FakeServer, finishing, in_thread, welcome_peer

pytestmark = [pytest.mark.network, pytest.mark.timeout(30)]


def connected(server: FakeServer, nick: str = "alice", **kw: int) -> tuple[ChatClient, FakePeer]:
    pending = in_thread(lambda: ChatClient.connect(server.host, server.port, nick, timeout=10))
    peer = server.accept()
    welcome_peer(peer, ("bob",), **kw)
    return pending(10), peer


def test_connect_reads_welcome_and_joins_a_split_roster() -> None:
    with FakeServer() as server:
        pending = in_thread(
            lambda: ChatClient.connect(server.host, server.port, "Alice", caps=3, timeout=10)
        )
        peer = server.accept()
        hello = peer.expect(Hello)
        assert (hello.nick, hello.caps, hello.version) == ("Alice", 3, 1)
        peer.send(
            Welcome(nick="Alice", caps=int(Capability.ECHO)),
            Roster(room="lobby", seq=4, members=("bob", "carol"), more=1),
            Roster(room="lobby", seq=4, members=("Alice",)),
        )
        client = pending(10)
        assert client.welcome is not None and client.welcome.caps == Capability.ECHO
        assert client.welcome_roster == Roster("lobby", 4, ("bob", "carol", "Alice"))
        assert client.joined_rooms == ("lobby",)
        assert client.pending_events() == []
        closing = in_thread(lambda: client.close("later"))
        assert peer.bye() == "later"
        closing(10)


def test_quiet_welcome_has_no_roster_but_still_the_default_room() -> None:
    with FakeServer() as server:
        pending = in_thread(lambda: ChatClient.connect(server.host, server.port, "q", caps=2))
        peer = server.accept()
        welcome_peer(peer)
        client = pending(10)
        with finishing(client, peer):
            assert client.welcome_roster is None
            assert client.joined_rooms == ("lobby",)


def test_refused_nick_can_be_retried_on_the_same_connection() -> None:
    with FakeServer() as server:
        client = ChatClient.open(server.host, server.port, timeout=10)
        peer = server.accept()
        first = in_thread(lambda: client.register("bob"))
        assert peer.expect(Hello).nick == "bob"
        peer.send(Error(ErrorCode.NICK_IN_USE, "bob is taken", FrameType.HELLO))
        with pytest.raises(NickRefused) as refused:
            first(10)
        assert refused.value.code == ErrorCode.NICK_IN_USE
        assert "taken" in str(refused.value)
        second = in_thread(lambda: client.register("bob2"))
        welcome_peer(peer)
        assert second(10).nick == "bob2"
        closing = in_thread(lambda: client.close("done"))
        assert peer.bye() == "done"
        closing(10)


def test_connect_reports_invalid_nick_and_closes() -> None:
    with FakeServer() as server:
        pending = in_thread(lambda: ChatClient.connect(server.host, server.port, "b@d"))
        peer = server.accept()
        peer.expect(Hello)
        peer.send(Error(ErrorCode.NICK_INVALID, "", FrameType.HELLO))
        with pytest.raises(NickRefused) as refused:
            pending(10)
        assert refused.value.code == ErrorCode.NICK_INVALID
        assert peer.at_eof()


def test_fatal_error_during_handshake_is_a_server_error() -> None:
    with FakeServer() as server:
        pending = in_thread(lambda: ChatClient.connect(server.host, server.port, "x"))
        peer = server.accept()
        peer.expect(Hello)
        peer.send(Error(ErrorCode.SERVER_FULL, "100 clients", FrameType.HELLO))
        with pytest.raises(ServerError) as failed:
            pending(10)
        assert failed.value.code == ErrorCode.SERVER_FULL
        assert "full" in str(failed.value)


def test_server_closing_during_handshake_is_reported() -> None:
    with FakeServer() as server:
        pending = in_thread(lambda: ChatClient.connect(server.host, server.port, "x"))
        peer = server.accept()
        peer.expect(Hello)
        peer.close()
        with pytest.raises(ConnectionClosed, match="during the handshake"):
            pending(10)


def test_a_peer_that_answers_in_another_protocol_is_not_chatwire() -> None:
    with FakeServer() as server:
        pending = in_thread(lambda: ChatClient.connect(server.host, server.port, "x"))
        peer = server.accept()
        peer.expect(Hello)
        peer.sock.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        with pytest.raises(NotChatwireServer, match="is not a chatwire/1 server") as failed:
            pending(10)
        assert isinstance(failed.value, ConnectFailed)


def test_refused_connection_is_connect_failed() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(ConnectFailed, match=f"127.0.0.1:{port}"):
        ChatClient.connect("127.0.0.1", port, "x", timeout=5)


def test_answers_are_paired_with_requests_in_order() -> None:
    with FakeServer() as server:
        client, peer = connected(server)
        with finishing(client, peer):
            join = client.join("Rust")
            who = client.who("nowhere")
            said = client.send("lobby", "hi")
            whisper = client.direct("nobody", "psst")
            rooms = client.rooms()
            leave = client.leave("rust")
            assert peer.expect(Join).room == "Rust"
            assert peer.expect(Who).room == "nowhere"
            assert peer.expect(Send) == Send("lobby", "hi")
            assert peer.expect(Direct) == Direct("nobody", "psst")
            peer.expect(ListRooms)
            peer.expect(Leave)
            peer.send(
                Roster("rust", 0, ("carol", "alice"), more=1),
                Deliver("lobby", 1, "bob", "interleaved"),
                Roster("rust", 0, ("dave",)),
                Error(ErrorCode.NO_SUCH_ROOM, "no room nowhere", FrameType.WHO),
                Ack("lobby", 2),
                Error(ErrorCode.NO_SUCH_NICK, "", FrameType.DIRECT),
                Rooms((RoomEntry("lobby", 2),), more=1),
                Rooms((RoomEntry("rust", 3),)),
            )
            assert join.wait(10) == Roster("rust", 0, ("carol", "alice", "dave"))
            assert list(client.joined_rooms) == ["lobby", "rust"]
            with pytest.raises(RequestFailed) as no_room:
                who.wait(10)
            assert no_room.value.code == ErrorCode.NO_SUCH_ROOM
            assert said.wait(10) == Ack("lobby", 2)
            with pytest.raises(RequestFailed):
                whisper.wait(10)
            assert rooms.wait(10).rooms == (RoomEntry("lobby", 2), RoomEntry("rust", 3))
            assert not leave.done()
            peer.send(Left("rust", "alice", LeaveReason.PART))
            assert leave.wait(10).reason == LeaveReason.PART
            assert list(client.joined_rooms) == ["lobby"]
            kinds = [type(client.next_event(10)).__name__ for _ in range(7)]
            assert kinds == ["Deliver", "Roster", "Error", "Ack", "Error", "Rooms", "Left"]


def test_client_answers_server_pings_itself() -> None:
    with FakeServer() as server:
        client, peer = connected(server)
        with finishing(client, peer):
            peer.send(Ping(token=77), Ping(token=78))
            assert peer.expect(Pong).token == 77
            assert peer.expect(Pong).token == 78
            assert client.pending_events() == []


def test_barrier_returns_after_everything_before_the_pong() -> None:
    with FakeServer() as server:
        client, peer = connected(server)
        with finishing(client, peer):
            done = in_thread(lambda: client.barrier(10))
            token = peer.expect(Ping).token
            peer.send(Deliver("lobby", 1, "bob", "before"), Whisper("bob", "also"))
            peer.send(Pong(token=token + 1000), Pong(token=token))  # a stray PONG is ignored
            done(10)
            assert client.pending_events() == [
                Deliver("lobby", 1, "bob", "before"),
                Whisper("bob", "also"),
            ]


def test_fatal_error_ends_the_session_and_fails_what_waits() -> None:
    with FakeServer() as server:
        client, peer = connected(server)
        with finishing(client, peer):
            said = client.send("lobby", "x")
            peer.expect(Send)
            peer.send(Error(ErrorCode.SERVER_SHUTDOWN, "bye all"))
            with pytest.raises(ServerError) as failed:
                said.wait(10)
            assert failed.value.code == ErrorCode.SERVER_SHUTDOWN
            end = client.next_event(10)
            assert isinstance(end, Disconnected)
            assert end.cause is EndCause.SERVER_ERROR and end.error is not None
            assert "shutting down" in end.describe()
            with pytest.raises(ConnectionClosed):
                client.next_event(10)
            with pytest.raises(ConnectionClosed):
                client.send("lobby", "too late")
            with pytest.raises(ConnectionClosed):
                client.barrier(10)
            assert peer.at_eof()


def test_malformed_server_frame_ends_the_session_as_a_protocol_error() -> None:
    with FakeServer() as server:
        client, peer = connected(server)
        with finishing(client, peer):
            peer.send_raw(b"\x00\x00\x00\x00\x11")
            end = client.next_event(10)
            assert isinstance(end, Disconnected) and end.cause is EndCause.PROTOCOL
            assert "MALFORMED" in end.detail


def test_unknown_frame_types_are_ignored() -> None:
    with FakeServer() as server:
        client, peer = connected(server)
        with finishing(client, peer):
            peer.send_raw(b"\x00\x00\x00\x03\x66ab")
            peer.send(Whisper("bob", "after"))
            assert client.next_event(10) == Whisper("bob", "after")


def test_dropped_connection_is_lost() -> None:
    with FakeServer() as server:
        client, peer = connected(server)
        with finishing(client, peer):
            peer.close()
            end = client.next_event(10)
            assert isinstance(end, Disconnected) and end.cause is EndCause.LOST


def test_close_says_bye_and_ends_cleanly() -> None:
    with FakeServer() as server:
        client, peer = connected(server)
        closing = in_thread(lambda: client.close("see you"))
        assert peer.expect(Bye).text == "see you"
        peer.close()
        closing(10)
        events = client.pending_events()
        assert len(events) == 1 and isinstance(events[0], Disconnected)
        assert events[0].cause is EndCause.BYE
        client.close()  # a second close is harmless


def test_silent_server_is_pinged_then_given_up() -> None:
    with FakeServer() as server:
        client, peer = connected(server, idle_timeout_ms=200)
        with finishing(client, peer):
            assert isinstance(peer.next(), Ping)
            end = client.next_event(10)
            assert isinstance(end, Disconnected) and end.cause is EndCause.LOST
            assert "silent" in end.detail


def test_next_event_times_out() -> None:
    with FakeServer() as server:
        client, _peer = connected(server)
        with finishing(client, _peer), pytest.raises(ClientTimeout):
            client.next_event(0.05)


def test_an_event_loop_with_a_timeout_ends_when_quiet_and_can_carry_on() -> None:
    with FakeServer() as server:
        client, peer = connected(server)
        with finishing(client, peer):
            assert list(client.events(0.05)) == []
            peer.send(Whisper("bob", "late"))
            assert next(client.events(10)) == Whisper("bob", "late")
            assert client.ended is None


def test_frames_from_many_threads_arrive_whole() -> None:
    threads, each = 4, 150
    with FakeServer() as server:
        client, peer = connected(server)
        with finishing(client, peer):
            start = threading.Barrier(threads)

            def talk(n: int) -> None:
                start.wait()
                for i in range(each):
                    client.send("lobby", f"t{n}-{i}-" + "x" * (i % 50))

            workers = [threading.Thread(target=talk, args=(n,)) for n in range(threads)]
            for worker in workers:
                worker.start()
            received: list[str] = []
            for i in range(threads * each):
                if i % 50 == 0:
                    peer.send(Ping(token=i))
                event = peer.next()
                while isinstance(event, Pong):
                    event = peer.next()
                assert isinstance(event, Send)
                received.append(event.text)
            for worker in workers:
                worker.join(10)
            for n in range(threads):
                mine = [t for t in received if t.startswith(f"t{n}-")]
                assert [int(t.split("-")[1]) for t in mine] == list(range(each))


def test_on_event_receives_events_in_the_receive_thread() -> None:
    seen: list[tuple[ServerEvent, str]] = []
    arrived = threading.Event()

    def on_event(event: ServerEvent) -> None:
        seen.append((event, threading.current_thread().name))
        arrived.set()

    with FakeServer() as server:
        pending = in_thread(
            lambda: ChatClient.connect(server.host, server.port, "cb", on_event=on_event)
        )
        peer = server.accept()
        welcome_peer(peer)
        with finishing(pending(10), peer):
            peer.send(Whisper("bob", "hi"))
            assert arrived.wait(10)
            assert seen == [(Whisper("bob", "hi"), "chatwire-recv-cb")]


def test_close_from_on_event_says_bye_and_ends() -> None:
    ended = threading.Event()
    holder: list[ChatClient] = []

    def on_event(event: ServerEvent) -> None:
        if isinstance(event, Whisper):
            holder[0].close("told to go")
        elif isinstance(event, Disconnected):
            ended.set()

    with FakeServer() as server:
        pending = in_thread(
            lambda: ChatClient.connect(server.host, server.port, "cb", on_event=on_event)
        )
        peer = server.accept()
        welcome_peer(peer)
        holder.append(pending(10))
        peer.send(Whisper("bob", "leave"))
        assert peer.bye() == "told to go"
        assert ended.wait(10)
        client = holder[0]
        assert client.ended is not None and client.ended.cause is EndCause.BYE
        client.close()
