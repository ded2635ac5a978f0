"""The reference server over TCP: handshake, nicks, rooms, messages, presence."""

from __future__ import annotations

import threading

import pytest

from spec.constants import Capability, ErrorCode, FrameType, LeaveReason
from spec.events import (
    Ack,
    Bye,
    Deliver,
    Direct,
    Error,
    Hello,
    Join,
    Joined,
    Leave,
    Left,
    ListRooms,
    Ping,
    Rooms,
    Roster,
    Send,
    Welcome,
    Whisper,
    Who,
)
from tests.rawclient import Closed, RawClient, clients, running_server

pytestmark = [pytest.mark.network, pytest.mark.timeout(30)]


def test_welcome_carries_the_limits_and_the_lobby_roster() -> None:
    with running_server(max_rooms=5, rate=10) as server:
        client = RawClient(server.address)
        client.send(Hello("Alice", caps=0xFFFF_FFFF))
        welcome = client.expect(Welcome)
        assert welcome.nick == "Alice" and welcome.room == "lobby" and welcome.version == 1
        assert welcome.caps == int(Capability.ECHO | Capability.QUIET)  # unknown bits ignored
        assert (welcome.max_rooms, welcome.rate, welcome.burst) == (5, 10, 10)
        assert welcome.idle_timeout_ms == 10_000 and welcome.slow_timeout_ms == 500
        assert client.barrier() == []  # QUIET: no roster after WELCOME
        other = RawClient(server.address)
        other.send(Hello("bob", caps=int(Capability.ECHO)))
        assert other.expect(Welcome).caps == int(Capability.ECHO)
        assert other.expect(Roster) == Roster("lobby", 0, ("Alice", "bob"))
        assert client.barrier() == []  # QUIET: no JOINED either
        client.close()
        other.close()


def test_nick_rules_and_retry_after_refusal() -> None:
    with running_server() as server, clients(server, "Bob"):
        client = RawClient(server.address)
        for bad in ("", "x" * 33, "no spaces", "ünï"):
            client.send(Hello(bad))
            err = client.expect(Error)
            assert (err.code, err.in_reply_to) == (ErrorCode.NICK_INVALID, FrameType.HELLO)
        client.send(Hello("bOB"))
        assert client.expect(Error).code == ErrorCode.NICK_IN_USE
        assert client.hello("x" * 32).nick == "x" * 32  # a refused HELLO may be retried
        client.close()


def test_concurrent_registration_of_one_nick_over_tcp() -> None:
    with running_server() as server:
        contenders = [RawClient(server.address) for _ in range(12)]
        start = threading.Barrier(len(contenders))
        outcomes: list[object] = []

        def attempt(client: RawClient, i: int) -> None:
            start.wait()
            client.send(Hello("dave" if i % 2 else "DAVE"))
            outcomes.append(client.recv_event())

        threads = [threading.Thread(target=attempt, args=(c, i)) for i, c in enumerate(contenders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(isinstance(o, Welcome) for o in outcomes) == 1
        codes = [o.code for o in outcomes if isinstance(o, Error)]
        assert codes == [ErrorCode.NICK_IN_USE] * 11
        for c in contenders:
            c.close()


def test_rooms_join_leave_who_list() -> None:
    with running_server(max_rooms=3) as server, clients(server, "alice", "bob") as (alice, bob):
        alice.send(Join("Rust"))
        assert alice.expect(Roster) == Roster("rust", 0, ("alice",))
        bob.send(Join("rust"))
        assert bob.expect(Roster) == Roster("rust", 0, ("alice", "bob"))
        assert alice.barrier() == [Joined("rust", "bob")]
        bob.send(Join("RUST"))  # already a member: the roster again, nobody told
        assert bob.expect(Roster).members == ("alice", "bob")
        assert alice.barrier() == []
        alice.send(Join("a"), Join("b"))
        assert alice.expect(Roster).room == "a"
        err = alice.expect(Error)
        assert (err.code, err.in_reply_to) == (ErrorCode.TOO_MANY_ROOMS, FrameType.JOIN)
        alice.send(Join("bad room"), Leave("nowhere"), Who("nowhere"))
        assert [alice.expect(Error).code for _ in range(3)] == [
            ErrorCode.ROOM_INVALID,
            ErrorCode.NOT_IN_ROOM,
            ErrorCode.NO_SUCH_ROOM,
        ]
        bob.send(Who("A"), ListRooms())
        assert bob.expect(Roster) == Roster("a", 0, ("alice",))
        listing = bob.expect(Rooms)
        assert {(r.name, r.members) for r in listing.rooms} == {
            ("lobby", 2),
            ("rust", 2),
            ("a", 1),
        }
        bob.send(Leave("rust"))
        assert bob.expect(Left) == Left("rust", "bob", LeaveReason.PART, "")
        assert alice.barrier() == [Left("rust", "bob", LeaveReason.PART, "")]
        alice.send(Leave("lobby"))
        assert alice.expect(Left) == Left("lobby", "alice", LeaveReason.PART, "")
        assert bob.expect(Left) == Left("lobby", "alice", LeaveReason.PART, "")
        bob.send(Send("rust", "not a member"))
        assert bob.expect(Error).code == ErrorCode.NOT_IN_ROOM


def test_messages_ack_seq_and_echo() -> None:
    with (
        running_server(max_text=10) as server,
        clients(server, "alice", "bob") as (alice, bob),
        clients(server, "eve", caps=int(Capability.ECHO)) as (eve,),
    ):
        alice.barrier()
        bob.barrier()
        alice.send(Send("lobby", "one"), Send("LOBBY", "two"), Send("lobby", "x" * 11))
        alice.send(Send("lobby", "é" * 5), Send("nowhere", "x"), Send("lobby", ""))
        answers = alice.barrier()
        assert answers[:2] == [Ack("lobby", 1), Ack("lobby", 2)]
        assert isinstance(answers[2], Error) and answers[2].code == ErrorCode.TEXT_TOO_LONG
        assert answers[2].in_reply_to == FrameType.SEND
        assert answers[3] == Ack("lobby", 3)  # 10 bytes of UTF-8 fit exactly
        assert isinstance(answers[4], Error) and answers[4].code == ErrorCode.NOT_IN_ROOM
        assert answers[5] == Ack("lobby", 4)  # empty text is allowed
        assert len(answers) == 6
        expected = [
            Deliver("lobby", 1, "alice", "one"),
            Deliver("lobby", 2, "alice", "two"),
            Deliver("lobby", 3, "alice", "é" * 5),
            Deliver("lobby", 4, "alice", ""),
        ]
        assert bob.barrier() == expected
        assert eve.barrier() == expected
        alice.send(Send("bad room", "x" * 11), Send("nowhere", "x" * 11))  # MSG-1 order
        assert [e.code for e in alice.barrier() if isinstance(e, Error)] == [
            ErrorCode.ROOM_INVALID,
            ErrorCode.NOT_IN_ROOM,
        ]
        eve.send(Send("lobby", "mine"))
        assert eve.barrier() == [Ack("lobby", 5), Deliver("lobby", 5, "eve", "mine")]
        assert alice.barrier() == [Deliver("lobby", 5, "eve", "mine")]


def test_each_send_of_a_pipelined_run_to_one_room_is_checked() -> None:
    """The server checks a room once per run of SENDs naming it; every SEND is still judged
    on its own (MSG-1), and a room that failed is checked again for the next SEND."""
    with running_server(max_text=4) as server, clients(server, "alice") as (alice,):
        alice.barrier()
        alice.send(
            Send("lobby", "a"),
            Send("lobby", "long!"),
            Send("lobby", "b"),
            Send("bad room", "x"),
            Send("lobby", "c"),
            Send("nowhere", "x"),
            Send("nowhere", "y"),
            Send("lobby", "d"),
        )
        answers = alice.barrier()
        assert [a.code if isinstance(a, Error) else a for a in answers] == [
            Ack("lobby", 1),
            ErrorCode.TEXT_TOO_LONG,
            Ack("lobby", 2),
            ErrorCode.ROOM_INVALID,
            Ack("lobby", 3),
            ErrorCode.NOT_IN_ROOM,
            ErrorCode.NOT_IN_ROOM,
            Ack("lobby", 4),
        ]


def test_direct_messages() -> None:
    with running_server() as server, clients(server, "alice", "Bob", "carol") as (a, b, c):
        a.send(Direct("bob", "psst"), Direct("alice", "me"), Direct("nobody", "?"))
        a.send(
            Direct("bad nick", "?" * 5000), Direct("nobody", "?" * 5000), Direct("bob", "?" * 5000)
        )
        got = a.barrier()
        assert got[0] == Ack("", 0)
        assert got[1:3] == [Whisper("alice", "me"), Ack("", 0)]
        assert [e.code for e in got[3:] if isinstance(e, Error)] == [  # MSG-8 order
            ErrorCode.NO_SUCH_NICK,
            ErrorCode.NICK_INVALID,
            ErrorCode.NO_SUCH_NICK,
            ErrorCode.TEXT_TOO_LONG,
        ]
        assert all(e.in_reply_to == FrameType.DIRECT for e in got[3:] if isinstance(e, Error))
        assert b.barrier() == [Whisper("alice", "psst")]
        assert c.barrier() == []


@pytest.mark.parametrize("how", ["part", "bye", "lost", "reset", "error"])
def test_every_departure_is_announced_with_its_reason(how: str) -> None:
    with running_server() as server, clients(server, "alice", "bob") as (alice, bob):
        bob.send(Join("rust"))
        bob.expect(Roster)
        alice.send(Join("rust"))
        alice.expect(Roster)
        assert bob.barrier() == [Joined("rust", "alice")]
        bob.send(Send("rust", "last"))
        assert bob.barrier() == [Ack("rust", 1)]
        if how == "part":
            bob.send(Leave("rust"))
            expected = [Left("rust", "bob", LeaveReason.PART, "")]
        elif how == "bye":
            bob.send(Bye("see you"))
            assert isinstance(bob.until_closed()[-1], Closed)
            expected = [
                Left(room, "bob", LeaveReason.QUIT, "see you") for room in ("lobby", "rust")
            ]
        elif how in ("lost", "reset"):
            bob.close() if how == "lost" else bob.abort()
            expected = [Left(room, "bob", LeaveReason.LOST, "") for room in ("lobby", "rust")]
        else:
            bob.send_raw(b"\x00\x00\x00\x00")
            assert bob.fatal().code == ErrorCode.MALFORMED
            expected = [Left(room, "bob", LeaveReason.ERROR, "") for room in ("lobby", "rust")]
        got = _until_lefts(alice, len(expected))
        assert got[0] == Deliver("rust", 1, "bob", "last")  # LEFT after the last DELIVER
        assert sorted(got[1:], key=repr) == sorted(expected, key=repr)
        if how != "part":  # the nick is free again
            again = RawClient(server.address)
            assert again.hello("BOB").nick == "BOB"
            again.close()


def _until_lefts(client: RawClient, count: int) -> list[object]:
    """Frames up to and including the ``count``-th LEFT (PINGs skipped)."""
    got: list[object] = []
    while sum(isinstance(e, Left) for e in got) < count:
        item = client.recv_event()
        if not isinstance(item, Ping):
            got.append(item)
    return got


def test_roster_split_to_fit_a_small_max_frame() -> None:
    with running_server(max_frame=1024, max_text=512) as server:
        nicks = [f"member{i:03d}" + "x" * 22 for i in range(60)]
        with clients(server, *nicks, caps=int(Capability.QUIET)):
            watcher = RawClient(server.address)
            watcher.send(Hello("watcher", caps=int(Capability.QUIET)))
            watcher.expect(Welcome)
            watcher.send(Who("lobby"))
            parts = [watcher.expect(Roster)]
            while parts[-1].more:
                parts.append(watcher.expect(Roster))
            assert len(parts) > 1
            assert [m for p in parts for m in p.members] == [*nicks, "watcher"]
            watcher.close()
