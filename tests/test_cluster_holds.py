"""§12.3 SLOW-4 across cluster nodes on a real Redis: a DIRECT sender is held behind a
congested addressee on another node even when the two share no room, until the addressee
recovers or is cut; and what a node knows of congestion elsewhere never outlives the member
(it departs, its node leaves or is reaped) nor a node that joins later misses it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from redisproc import RedisServer
from reference.cluster import ClusterHub, ClusterNode
from reference.cluster.connection import Pool, RedisAddress
from reference.hubapi import Addressee
from reference.outbox import Congestion, OutputStopped
from reference.server import ServerConfig
from spec.constants import LeaveReason
from spec.events import Ack, Direct, Leave, Ping, Pong
from tests.conditions import until
from tests.rawclient import RawClient
from tests.test_hubs import GREETING, Fake, _CongestedOutbox, settle

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def _roomless(address: tuple[str, int], nick: str, rcvbuf: int = 0) -> RawClient:
    """A registered client that has LEFT lobby, so it shares no room with anybody."""
    client = RawClient(address, rcvbuf=rcvbuf)
    client.hello(nick)
    client.send(Leave("lobby"))
    client.barrier()
    return client


def test_direct_sender_held_behind_a_congested_addressee_on_another_node(
    redis: RedisServer,
) -> None:
    """The sender, roomless on node a, is held after its DIRECT to roomless sleepy on node b
    until sleepy is cut: its PONG comes only then. One WHISPER of 60000 bytes is far more
    than sleepy's socket buffers can take (about 11 KB here), above an out_limit of 4 KB: so
    sleepy's congestion lasts until the cut (smaller frames let a late window update relieve
    it for a moment, which would release the sender rightly)."""
    slow_timeout = 3.0
    config_a, config_b = (
        ServerConfig(
            drain_time=0.5,
            out_limit=4096,
            send_buffer=4096,
            max_text=60000,
            slow_timeout=slow_timeout,
        )
        for _ in "ab"
    )
    with ClusterNode(config_a, redis.url, "a") as a, ClusterNode(config_b, redis.url, "b") as b:
        sleepy = _roomless(b.address, "sleepy", rcvbuf=4096)  # reads nothing from now on
        sender = _roomless(a.address, "sender")
        pusher = RawClient(b.address)
        pusher.hello("pusher")
        pusher.send(*(Direct("sleepy", "w" * 60000) for _ in range(2)))

        def sleepy_box() -> object | None:
            found = [
                o
                for o in list(b.server.congestion.congested)
                if o.congested_since is not None and getattr(o.owner, "nick", "") == "sleepy"
            ]
            return found[0] if found else None

        assert until(lambda: sleepy_box() is not None), "sleepy never became congested"
        box = sleepy_box()
        target = a.hub.lookup("sleepy")
        assert isinstance(target, Addressee)
        # Give node a the news (a node that never gets it fails below, at the PONG).
        until(lambda: target.outbox.congested, slow_timeout / 2)
        sender.send(Direct("sleepy", "are you there?"), Ping(7))
        got = sender.collect_until(lambda e: e == Pong(7), slow_timeout + 5)
        assert got == [Ack("", 0)]  # the DIRECT accepted, then held (SLOW-4) until:
        assert getattr(box, "failed", None) is OutputStopped.CUT, "PONG while sleepy congested"
        pusher.barrier(10)  # the pusher, held on its own node, goes on as well
        for client in (sleepy, sender, pusher):
            client.close()


def _hubs(redis: RedisServer, *names: str) -> list[tuple[ClusterHub, Congestion]]:
    made = []
    for name in names:
        hub, congestion = ClusterHub(redis.url, name), Congestion()
        hub.watch(congestion)
        hub.start()
        assert hub.wait_up(10)
        made.append((hub, congestion))
    return made


def _congested_roomless(hub: ClusterHub, congestion: Congestion, nick: str) -> tuple[Fake, bytes]:
    """A member of ``hub`` in no room, congested now; and its cluster-wide id."""
    member = Fake(nick)
    assert hub.register(member, GREETING)
    assert hub.leave(member, "lobby") is None
    settle((hub, member))
    congestion.mark(_CongestedOutbox(member))  # type: ignore[arg-type]
    return member, hub._records[member].u  # the id the others hear of


def _addressee(hub: ClusterHub, nick: str) -> Addressee:
    target = hub.lookup(nick)
    assert isinstance(target, Addressee)
    return target


def test_news_reaches_every_node_and_a_late_one_and_ends_with_the_member(
    redis: RedisServer,
) -> None:
    """Roomless congestion news reaches every node, a node started later learns it on
    joining, a sender held behind the member wakes when it departs (not at its deadline),
    and no entry is left behind anywhere."""
    (a, here), (b, there) = _hubs(redis, "a", "b")
    late: ClusterHub | None = None
    try:
        bob, u = _congested_roomless(b, there, "bob")
        assert until(lambda: a.congested_elsewhere(u))
        assert here.congested  # so that respect_holds looks at all
        ((late, _),) = _hubs(redis, "late")
        assert late.congested_elsewhere(u)  # from the snapshot at joining: no news since
        held = _addressee(a, "bob")
        assert held.outbox.congested
        woke: list[bool] = []
        deadline = time.monotonic() + 30
        waiter = threading.Thread(
            target=lambda: woke.append(
                here.wait_while(lambda: held.outbox.congested, deadline, lambda: False)
            )
        )
        waiter.start()
        b.depart(bob, LeaveReason.QUIT)
        waiter.join(10)
        assert woke == [True], "the held sender was not woken by the clear"
        assert not here.congested
        assert until(lambda: not late.congested_elsewhere(u))
    finally:
        for hub in (a, b, late):
            if hub is not None:
                hub.stop()


def test_a_node_reaped_while_its_member_is_congested_leaves_no_hold(
    redis: RedisServer,
) -> None:
    """The lease of b lapses (its key goes, as on expiry): a's sweep reaps b's members, and
    with them the congestion news, so no sender stays held for a member that is gone."""
    (a, here), (b, there) = _hubs(redis, "a", "b")
    try:
        _, u = _congested_roomless(b, there, "bob")
        assert until(lambda: a.congested_elsewhere(u))
        pool = Pool(RedisAddress.parse(redis.url))
        try:
            pool.call("DEL", b"cw:node:" + b.node.encode())
        finally:
            pool.close()
        assert until(lambda: not a.congested_elsewhere(u))
        assert not here.congested
        assert a.lookup("bob") is None
    finally:
        a.stop()
        b.stop()
