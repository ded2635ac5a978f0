"""Both hubs behind the one seam (``reference.hubapi.RoomHub``), with fake members: the
in-process hub, and two cluster hubs on one real Redis acting as two nodes. The same
scenarios must give the same frames; then what only a cluster has (dead nodes, lost Redis).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from redisproc import RedisServer
from reference import frames
from reference.cluster import ClusterHub
from reference.cluster.rooms import Remote
from reference.hub import Hub
from reference.hubapi import Addressee, HubUnavailable, RoomHub
from reference.outbox import Congestion
from spec.constants import ErrorCode, LeaveReason
from spec.decoder import FrameDecoder
from spec.events import Ack, Deliver, Error, Joined, Left, Rooms, Roster, Whisper
from tests.conditions import until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

GREETING = b"\x00\x00\x00\x01\x02"


class Fake:
    """A member that records what it is pushed (from any thread) and any eviction."""

    def __init__(self, nick: str, quiet: bool = False, echo: bool = False) -> None:
        self.nick, self.quiet, self.echo = nick, quiet, echo
        self.pushes: list[bytes] = []
        self.evicted: list[bytes] = []
        self.decoder = FrameDecoder(1 << 24)

    def push(self, frame: bytes) -> None:
        self.pushes.append(frame)

    def evict(self, error: bytes) -> None:
        self.evicted.append(error)

    def take(self) -> list[object]:
        data, self.pushes[:] = b"".join(self.pushes), []
        if data.startswith(GREETING):
            data = data[len(GREETING) :]
        self.decoder.receive_data(data)
        return list(self.decoder.events())


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def _cluster_hub(redis: RedisServer, name: str, **options: float) -> ClusterHub:
    hub = ClusterHub(redis.url, name, **options)  # type: ignore[arg-type]
    hub.start()
    assert hub.wait_up(10)
    return hub


@pytest.fixture(params=["in-process", "cluster"])
def nodes(request: pytest.FixtureRequest, redis: RedisServer) -> Iterator[tuple[RoomHub, RoomHub]]:
    """Two views of one chat: the same hub twice, or two cluster nodes on one Redis."""
    if request.param == "in-process":
        hub = Hub()
        yield hub, hub
        return
    from reference.cluster.connection import Pool, RedisAddress

    flush = Pool(RedisAddress.parse(redis.url))
    flush.call("FLUSHALL")
    flush.close()
    a, b = _cluster_hub(redis, "a"), _cluster_hub(redis, "b")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def settle(*pairs: tuple[RoomHub, Fake]) -> None:
    """The PING barrier: everything caused so far has been pushed to these members."""
    for hub, member in pairs:
        hub.sync(member)


def joined(hub: RoomHub, *nicks: str, **caps: bool) -> list[Fake]:
    members = [Fake(n, **caps) for n in nicks]
    for m in members:
        assert hub.register(m, GREETING)
    return members


def texts(*words: str) -> list[bytes]:
    return [frames.str16(w) for w in words]


def test_register_nick_unique_everywhere_and_presence(nodes: tuple[RoomHub, RoomHub]) -> None:
    a, b = nodes
    (alice,) = joined(a, "Alice")
    assert alice.pushes[0].startswith(GREETING)
    assert alice.take() == [Roster("lobby", 0, ("Alice",))]
    assert not b.register(Fake("aLICE"), GREETING)
    (bob,) = joined(b, "bob")
    settle((a, alice), (b, bob))
    assert alice.take() == [Joined("lobby", "bob")]
    roster = bob.take()[0]
    assert isinstance(roster, Roster) and sorted(roster.members) == ["Alice", "bob"]
    assert isinstance(b.lookup("ALICE"), Remote | Fake) and b.lookup("nobody") is None
    b.depart(bob, LeaveReason.QUIT, "bye")
    settle((a, alice))
    assert alice.take() == [Left("lobby", "bob", LeaveReason.QUIT, "bye")]
    assert a.register(Fake("BOB"), GREETING)  # free once its LEFT is out (NICK-4)


def test_messages_one_order_no_echo_acks(nodes: tuple[RoomHub, RoomHub]) -> None:
    a, b = nodes
    (alice,) = joined(a, "alice")
    bob, eve = joined(b, "bob", "eve")
    eve.echo = True
    for hub, m in ((a, alice), (b, bob), (b, eve)):
        assert hub.join(m, "Rust") is None
    settle((a, alice), (b, bob), (b, eve))
    for m in (alice, bob, eve):
        m.take()
    assert a.send(alice, "rust", texts("one", "two")) is None
    assert b.send(eve, "RUST", texts("three")) is None
    settle((a, alice), (b, bob), (b, eve))
    d = [
        Deliver("rust", i + 1, s, t)
        for i, (s, t) in enumerate([("alice", "one"), ("alice", "two"), ("eve", "three")])
    ]
    assert alice.take() == [Ack("rust", 1), Ack("rust", 2), d[2]]
    assert bob.take() == d
    assert eve.take() == [d[0], d[1], Ack("rust", 3), d[2]]
    assert b.send(bob, "nowhere", texts("x")) == ErrorCode.NOT_IN_ROOM


def test_concurrent_senders_on_two_nodes_one_order(nodes: tuple[RoomHub, RoomHub]) -> None:
    a, b = nodes
    (s1,), (s2,) = joined(a, "s1"), joined(b, "s2")
    senders = [(a, s1), (b, s2)]
    (watcher,) = joined(b, "watcher", quiet=True)
    count = 200

    def run(hub: RoomHub, sender: Fake) -> None:
        for i in range(0, count, 4):
            hub.send(sender, "lobby", texts(*(f"{sender.nick}:{j}" for j in range(i, i + 4))))

    threads = [threading.Thread(target=run, args=pair) for pair in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    settle((b, watcher), (a, s1))
    got = [e for e in watcher.take() if isinstance(e, Deliver)]
    assert [e.seq for e in got] == list(range(1, 2 * count + 1))
    for nick in ("s1", "s2"):  # per-sender FIFO
        assert [e.text for e in got if e.sender == nick] == [f"{nick}:{j}" for j in range(count)]
    acks = [e.seq for e in s1.take() if isinstance(e, Ack)]
    theirs = [e.seq for e in got if e.sender == "s1"]
    assert acks == theirs


def test_joiner_sees_exactly_what_follows_its_roster(nodes: tuple[RoomHub, RoomHub]) -> None:
    """The join race: messages flow on one node while members join on the other."""
    a, b = nodes
    (talker,) = joined(a, "talker")
    joiners = joined(b, *(f"j{i}" for i in range(8)), quiet=True)
    stop = threading.Event()

    def talk() -> None:
        i = 0
        while not stop.is_set():
            a.send(talker, "hot", texts(str(i)))
            i += 1

    a.join(talker, "hot")
    thread = threading.Thread(target=talk)
    thread.start()
    try:
        for j in joiners:
            settle((b, j))
            j.take()
            assert b.join(j, "hot") is None
    finally:
        stop.set()
        thread.join()
    for j in joiners:
        settle((b, j))
        events = j.take()
        roster = events[0]
        assert isinstance(roster, Roster) and roster.room == "hot"
        seqs = [e.seq for e in events[1:] if isinstance(e, Deliver) and e.room == "hot"]
        assert seqs == list(range(roster.seq + 1, roster.seq + 1 + len(seqs)))


def test_who_list_leave_direct_everywhere(nodes: tuple[RoomHub, RoomHub]) -> None:
    a, b = nodes
    (alice,) = joined(a, "alice")
    (bob,) = joined(b, "bob")
    assert a.join(alice, "r1") is None
    assert b.who(bob, "R1") is None and b.who(bob, "none") == ErrorCode.NO_SUCH_ROOM
    b.list_rooms(bob)
    settle((b, bob), (a, alice))
    got = bob.take()
    assert got[-2] == Roster("r1", 0, ("alice",))
    rooms = got[-1]
    assert isinstance(rooms, Rooms) and sorted((r.name, r.members) for r in rooms.rooms) == [
        ("lobby", 2),
        ("r1", 1),
    ]
    alice.take()
    assert b.direct(bob, "ALICE", "psst") is not None and b.direct(bob, "zed", "x") is None
    assert a.leave(alice, "r1") is None and a.leave(alice, "r1") == ErrorCode.NOT_IN_ROOM
    settle((a, alice), (b, bob))
    assert alice.take() == [Whisper("bob", "psst"), Left("r1", "alice", LeaveReason.PART, "")]
    assert bob.take() == [Ack("", 0)]
    assert b.who(bob, "r1") == ErrorCode.NO_SUCH_ROOM  # forgotten with its last member


def _kill(hub: ClusterHub) -> None:
    """What SIGKILL leaves: connections gone, nothing said, the lease left to expire."""
    hub._stopping.set()
    hub._control.join()
    assert hub._sub is not None and hub._pool is not None
    hub._sub.close()
    hub._pool.close()


def test_dead_node_members_left_lost_within_the_bound(redis: RedisServer) -> None:
    a = _cluster_hub(redis, "a", lease=1.0, sweep_interval=0.2)
    b = _cluster_hub(redis, "b", lease=1.0, sweep_interval=0.2)
    try:
        (watcher,) = joined(a, "watcher")
        (doomed,) = joined(b, "doomed")
        assert b.join(doomed, "side") is None and a.join(watcher, "side") is None
        settle((a, watcher))
        watcher.take()
        killed = time.monotonic()
        _kill(b)
        deadline = killed + 5
        lefts: list[object] = []
        while len(lefts) < 2 and time.monotonic() < deadline:
            a.sync(watcher)
            lefts += [e for e in watcher.take() if isinstance(e, Left)]
            time.sleep(0.05)
        assert sorted((e.room, e.reason) for e in lefts) == [  # type: ignore[attr-defined]
            ("lobby", LeaveReason.LOST),
            ("side", LeaveReason.LOST),
        ]
        assert time.monotonic() - killed < 1.0 + 0.2 + 1.0
        assert a.register(Fake("DOOMED"), GREETING)
    finally:
        a.stop()


def test_lost_redis_evicts_everyone_and_comes_back(redis: RedisServer) -> None:
    hub = _cluster_hub(redis, "a")
    try:
        members = joined(hub, "m1", "m2")
        port = redis.port
        redis.stop()
        deadline = time.monotonic() + 10
        while hub.up and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not hub.up
        for m in members:
            decoder = FrameDecoder(1 << 16)
            decoder.receive_data(m.evicted[0])
            (event,) = list(decoder.events())
            assert isinstance(event, Error) and event.code == ErrorCode.CLUSTER_UNAVAILABLE
        with pytest.raises(HubUnavailable):
            hub.register(Fake("late"), GREETING)
        redis.start(port=port)
        assert hub.wait_up(10)
        assert hub.register(Fake("m1"), GREETING)  # a new incarnation: old nicks are gone
    finally:
        hub.stop()


class _CongestedOutbox:
    """What the flusher's Congestion set holds for a congested session (§12.1)."""

    def __init__(self, owner: Fake) -> None:
        self.owner = owner
        self.congested_since: float | None = time.monotonic()


def test_congestion_on_one_node_holds_senders_on_another(redis: RedisServer) -> None:
    """§12.3 across nodes: a congested member's node says so in its rooms; the other node
    holds senders to those rooms, and DIRECT senders to it, until it says it recovered."""
    a, b = _cluster_hub(redis, "a"), _cluster_hub(redis, "b")
    here, there = Congestion(), Congestion()
    a.watch(here)
    b.watch(there)
    try:
        (alice,) = joined(a, "alice")
        (bob,) = joined(b, "bob")
        settle((a, alice), (b, bob))
        lobby = a.rooms_of(alice)["lobby"]
        assert not here.any_member_congested(lobby.members)
        outbox = _CongestedOutbox(bob)
        there.mark(outbox)  # type: ignore[arg-type]
        assert until(lambda: here.any_member_congested(lobby.members))
        target = a.lookup("bob")
        assert isinstance(target, Addressee) and target.outbox.congested
        there.clear(outbox)  # type: ignore[arg-type]
        assert until(lambda: not here.congested)
        assert not target.outbox.congested
    finally:
        a.stop()
        b.stop()
