"""The room hub alone, with fake members that record what they are pushed."""

from __future__ import annotations

import threading

import pytest

from reference import frames
from reference.hub import Hub
from spec.constants import HARD_MAX_FRAME, MIN_MAX_FRAME, ErrorCode, LeaveReason
from spec.decoder import FrameDecoder
from spec.events import Ack, Deliver, Joined, Left, Rooms, Roster, Whisper

GREETING = b"\x00\x00\x00\x01\x02"  # any bytes: the hub only pushes them first


class Fake:
    def __init__(self, nick: str, quiet: bool = False, echo: bool = False) -> None:
        self.nick, self.quiet, self.echo = nick, quiet, echo
        self.pushes: list[bytes] = []

    def push(self, frame: bytes) -> None:
        self.pushes.append(frame)

    def events(self, max_frame: int = HARD_MAX_FRAME) -> list[object]:
        data = b"".join(self.pushes)
        if data.startswith(GREETING):
            data = data[len(GREETING) :]
        decoder = FrameDecoder(max_frame)  # also checks every frame's length against it
        decoder.receive_data(data)
        out: list[object] = list(decoder.events())
        assert decoder.buffered == 0
        return out

    def take(self, max_frame: int = HARD_MAX_FRAME) -> list[object]:
        out = self.events(max_frame)
        self.pushes.clear()
        return out


def texts(*words: str) -> list[bytes]:
    return [frames.str16(w) for w in words]


def registered(hub: Hub, *nicks: str, quiet: bool = False) -> list[Fake]:
    members = [Fake(n, quiet=quiet) for n in nicks]
    for m in members:
        assert hub.register(m, GREETING)
    for m in members:
        m.pushes.clear()
    return members


def test_register_greets_first_then_roster_and_presence() -> None:
    hub = Hub()
    alice = Fake("Alice")
    assert hub.register(alice, GREETING)
    assert alice.pushes[0].startswith(GREETING)
    assert alice.events() == [Roster("lobby", 0, ("Alice",))]
    bob = Fake("bob")
    assert hub.register(bob, GREETING)
    assert bob.events() == [Roster("lobby", 0, ("Alice", "bob"))]
    assert alice.events()[-1] == Joined("lobby", "bob")


def test_quiet_member_gets_no_roster_and_no_presence() -> None:
    hub = Hub()
    (bot,) = registered(hub, "bot", quiet=True)
    alice = Fake("alice")
    assert hub.register(alice, GREETING)
    assert bot.pushes == []
    assert alice.events() == [Roster("lobby", 0, ("bot", "alice"))]
    hub.depart(alice, LeaveReason.LOST)
    assert bot.events() == []


def test_nicks_are_unique_case_insensitively_and_released_on_depart() -> None:
    hub = Hub()
    (bob,) = registered(hub, "Bob")
    assert not hub.register(Fake("bOB"), GREETING)
    hub.depart(bob, LeaveReason.QUIT, "bye")
    assert hub.register(Fake("bob"), GREETING)
    assert hub.registered == 1


def test_concurrent_registration_of_one_nick_admits_exactly_one() -> None:
    hub = Hub()
    results: list[bool] = []
    start = threading.Barrier(16)

    def attempt(i: int) -> None:
        start.wait()
        results.append(hub.register(Fake("carol".upper() if i % 2 else "carol"), GREETING))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 15 + [True]


def test_join_roster_seq_presence_and_rejoin() -> None:
    hub = Hub()
    alice, bob = registered(hub, "alice", "bob")
    assert hub.join(alice, "Rust") is None
    assert hub.send(alice, "rust", texts("one", "two")) is None
    alice.take()
    assert hub.join(bob, "RUST") is None
    assert bob.take() == [Roster("rust", 2, ("alice", "bob"))]
    assert alice.take() == [Joined("rust", "bob")]
    assert hub.join(bob, "rust") is None  # already a member: roster again, no notice
    assert bob.take() == [Roster("rust", 2, ("alice", "bob"))]
    assert alice.take() == []


def test_join_errors() -> None:
    hub = Hub(max_rooms=3)
    (alice,) = registered(hub, "alice")
    assert hub.join(alice, "bad name") is ErrorCode.ROOM_INVALID
    assert hub.join(alice, "x" * 33) is ErrorCode.ROOM_INVALID
    assert hub.join(alice, "a") is None
    assert hub.join(alice, "b") is None
    assert hub.join(alice, "c") is ErrorCode.TOO_MANY_ROOMS  # the lobby counts
    assert hub.join(alice, "A") is None  # rejoining is not a new room


def test_leave_tells_everyone_and_empty_rooms_vanish() -> None:
    hub = Hub()
    alice, bob = registered(hub, "alice", "bob")
    assert hub.join(alice, "tmp") is None
    assert hub.send(alice, "tmp", texts("x")) is None
    assert hub.leave(bob, "tmp") is ErrorCode.NOT_IN_ROOM
    assert hub.leave(alice, "lobby") is None
    assert alice.take()[-1] == Left("lobby", "alice", LeaveReason.PART, "")
    assert bob.take()[-1] == Left("lobby", "alice", LeaveReason.PART, "")
    assert hub.leave(alice, "tmp") is None
    assert hub.room("tmp") is None
    assert hub.who(bob, "tmp") is ErrorCode.NO_SUCH_ROOM
    assert hub.join(alice, "tmp") is None
    assert alice.take()[-1] == Roster("tmp", 0, ("alice",))  # seq starts again


def test_who_and_list() -> None:
    hub = Hub()
    alice, bob = registered(hub, "alice", "bob")
    assert hub.join(alice, "rust") is None
    alice.take()
    assert hub.who(bob, "Rust") is None  # asker need not be a member
    assert bob.take() == [Roster("rust", 0, ("alice",))]
    assert hub.who(bob, "nope") is ErrorCode.NO_SUCH_ROOM
    assert hub.who(bob, "no pe") is ErrorCode.ROOM_INVALID
    hub.list_rooms(bob)
    (listing,) = bob.take()
    assert isinstance(listing, Rooms)
    assert {(r.name, r.members) for r in listing.rooms} == {("lobby", 2), ("rust", 1)}


def test_send_fans_out_the_same_bytes_and_acks_the_sender() -> None:
    hub = Hub()
    alice, bob, carol = registered(hub, "alice", "bob", "carol")
    assert hub.send(alice, "LOBBY", texts("hi", "there")) is None
    assert alice.take() == [Ack("lobby", 1), Ack("lobby", 2)]
    assert bob.pushes[0] is carol.pushes[0]  # encoded once
    assert bob.take() == [Deliver("lobby", 1, "alice", "hi"), Deliver("lobby", 2, "alice", "there")]
    assert hub.send(alice, "rust", texts("x")) is ErrorCode.NOT_IN_ROOM
    assert hub.send(alice, "r ust", texts("x")) is ErrorCode.ROOM_INVALID


def test_echo_puts_each_deliver_right_after_its_ack() -> None:
    hub = Hub()
    alice = Fake("alice", echo=True)
    assert hub.register(alice, GREETING)
    alice.pushes.clear()
    assert hub.send(alice, "lobby", texts("a", "b")) is None
    assert alice.take() == [
        Ack("lobby", 1),
        Deliver("lobby", 1, "alice", "a"),
        Ack("lobby", 2),
        Deliver("lobby", 2, "alice", "b"),
    ]


def test_concurrent_senders_one_order_for_everyone_and_contiguous_seqs() -> None:
    hub = Hub()
    senders = registered(hub, *(f"s{i}" for i in range(6)))
    listeners = registered(hub, "l1", "l2", "l3")
    for m in senders + listeners:
        m.pushes.clear()
    start = threading.Barrier(len(senders))

    def flood(member: Fake) -> None:
        start.wait()
        for i in range(300):
            assert hub.send(member, "lobby", texts(f"{member.nick}:{i}")) is None

    threads = [threading.Thread(target=flood, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = [
        tuple((d.seq, d.text) for d in listener.events() if isinstance(d, Deliver))
        for listener in listeners
    ]
    assert seen[0] == seen[1] == seen[2]
    assert [s for s, _ in seen[0]] == list(range(1, 1801))
    for s in senders:
        mine = [e for e in s.events() if isinstance(e, Deliver | Ack)]
        acked = [e.seq for e in mine if isinstance(e, Ack)]
        delivered = [e.seq for e in mine if isinstance(e, Deliver)]
        assert sorted(acked + delivered) == list(range(1, 1801))
        texts_in_order = [t for _, t in seen[0] if t.startswith(f"{s.nick}:")]
        assert texts_in_order == [f"{s.nick}:{i}" for i in range(300)]  # per-sender FIFO


def test_depart_releases_nick_and_reports_reason_after_last_deliver() -> None:
    hub = Hub()
    alice, bob = registered(hub, "alice", "bob")
    assert hub.join(alice, "rust") is None
    assert hub.join(bob, "rust") is None
    bob.take()
    assert hub.send(alice, "rust", texts("last words")) is None
    hub.depart(alice, LeaveReason.QUIT, "gone")
    got = bob.take()
    assert got[0] == Deliver("rust", 1, "alice", "last words")
    assert set(got[1:]) == {
        Left("lobby", "alice", LeaveReason.QUIT, "gone"),
        Left("rust", "alice", LeaveReason.QUIT, "gone"),
    }
    assert hub.lookup("ALICE") is None
    hub.depart(alice, LeaveReason.LOST)  # twice is harmless
    hub.depart(bob, LeaveReason.SHUTDOWN, notify=False)
    assert hub.room("lobby") is None


def test_direct_whispers_and_acks() -> None:
    hub = Hub()
    alice, bob = registered(hub, "alice", "bob")
    assert hub.direct(alice, "BOB", "psst") is bob
    assert bob.take() == [Whisper("alice", "psst")]
    assert alice.take() == [Ack("", 0)]
    assert hub.direct(alice, "alice", "me") is alice
    assert alice.take() == [Whisper("alice", "me"), Ack("", 0)]
    assert hub.direct(alice, "nobody", "x") is None
    assert hub.direct(alice, "no body", "x") is None
    assert alice.pushes == []


@pytest.mark.parametrize("count", [1, 200])
def test_roster_fits_small_max_frame(count: int) -> None:
    hub = Hub(max_frame=MIN_MAX_FRAME)
    names = [f"n{i:03d}" + "x" * 28 for i in range(count)]
    members = registered(hub, *names, quiet=True)
    assert hub.who(members[0], "lobby") is None
    parts = members[0].take(MIN_MAX_FRAME)
    assert all(isinstance(p, Roster) for p in parts)
    assert len(parts) == (1 if count == 1 else 7)
    assert [m for p in parts if isinstance(p, Roster) for m in p.members] == names
