"""Cluster nodes end to end on a real Redis: server processes killed and shut down under
traffic, and Redis itself stopped and started under running nodes (§20)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from redisproc import RedisServer
from reference.cluster import ClusterNode
from reference.server import ServerConfig
from spec.constants import ErrorCode, LeaveReason
from spec.events import Ack, Deliver, Hello, Join, Left, Send, Welcome
from tests.rawclient import RawClient

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

REPO = Path(__file__).resolve().parent.parent
#: §20.3 CLUSTER-5.
BOUND = 5.0


class Node:
    """``python -m reference.server --cluster ...`` as a child process."""

    def __init__(self, redis_url: str, name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reference.server", "--port", "0", "--cluster", redis_url,
             "--node-name", name, "--log-level", "WARNING"],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r"listening on (\S+):(\d+)", line)
        assert found, f"node {name} printed {line!r}"
        self.address = (found.group(1), int(found.group(2)))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(15)


@pytest.fixture
def three_nodes() -> Iterator[list[Node]]:
    with RedisServer() as redis:
        nodes = [Node(redis.url, f"n{i}") for i in range(3)]
        try:
            yield nodes
        finally:
            for node in nodes:
                node.stop()


def client(node: Node | ClusterNode, nick: str, room: str) -> RawClient:
    c = RawClient(node.address)
    c.hello(nick)
    c.send(Join(room))
    c.barrier()
    return c


def test_sigkill_one_of_three_nodes_under_traffic(three_nodes: list[Node]) -> None:
    """Survivors see each lost member's LEFT (LOST) within the bound, its nick is free, and
    no member of a surviving node misses a message or gets one twice (CLUSTER-5, -6)."""
    room = "busy"
    survivors = [client(three_nodes[i % 2], f"s{i}", room) for i in range(4)]
    doomed = [client(three_nodes[2], f"d{i}", room) for i in range(3)]
    talkers = survivors[:2]
    for c in survivors:
        c.barrier()
    stop = threading.Event()

    def talk(sender: RawClient) -> None:
        n = 0
        while not stop.is_set():
            sender.send(Send(room, f"m{n}"))
            n += 1
            stop.wait(0.005)

    threads = [threading.Thread(target=talk, args=(t,)) for t in talkers]
    for t in threads:
        t.start()
    got: dict[int, list[object]] = {i: [] for i in range(len(survivors))}
    try:
        killed = time.monotonic()
        three_nodes[2].proc.kill()
        watcher = survivors[3]
        lost: set[tuple[str, str]] = set()
        while len(lost) < 2 * len(doomed):
            item = watcher.recv_event(max(0.01, killed + BOUND + 2 - time.monotonic()))
            got[3].append(item)
            if isinstance(item, Left):
                assert item.reason == LeaveReason.LOST
                lost.add((item.room, item.nick))
        assert time.monotonic() - killed < BOUND
        assert RawClient(three_nodes[0].address).hello("D0")  # the nick is free again
    finally:
        stop.set()
        for t in threads:
            t.join()
    for i, c in enumerate(survivors):
        got[i] += c.barrier(timeout=20)
    own = {i: {e.seq for e in got[i] if isinstance(e, Ack)} for i in range(2)}
    accepted = own[0] | own[1]
    for i in range(len(survivors)):
        seqs = [e.seq for e in got[i] if isinstance(e, Deliver)]
        assert seqs == sorted(accepted - own.get(i, set())), f"survivor {i}"
    assert len(accepted) > 50


def test_sigterm_one_node_others_see_left_shutdown(three_nodes: list[Node]) -> None:
    watcher = client(three_nodes[0], "watcher", "r")
    leaving = client(three_nodes[1], "leaving", "r")
    watcher.barrier()
    three_nodes[1].proc.send_signal(signal.SIGTERM)
    assert leaving.fatal().code == ErrorCode.SERVER_SHUTDOWN
    lefts: list[tuple[str, str, int]] = []
    while len(lefts) < 2:
        item = watcher.recv_event()
        if isinstance(item, Left):
            lefts.append((item.room, item.nick, item.reason))
    assert sorted(lefts) == [
        ("lobby", "leaving", LeaveReason.SHUTDOWN),
        ("r", "leaving", LeaveReason.SHUTDOWN),
    ]
    assert three_nodes[1].proc.wait(10) == 0


def test_redis_stopped_and_started_under_running_nodes() -> None:
    """Every node's clients get CLUSTER_UNAVAILABLE and the close; the nodes keep running,
    refuse HELLO the same way meanwhile, and take clients again once Redis is back."""
    with RedisServer() as redis:
        config_a, config_b = (ServerConfig(handshake_timeout=2, drain_time=0.5) for _ in "ab")
        with ClusterNode(config_a, redis.url, "a") as a, ClusterNode(config_b, redis.url, "b") as b:
            people = [client(node, f"p{i}", "r") for i, node in enumerate((a, b, a, b))]
            port = redis.port
            redis.stop()
            for person in people:
                assert person.fatal().code == ErrorCode.CLUSTER_UNAVAILABLE
            late = RawClient(a.address)
            late.send(Hello("late"))
            assert late.fatal().code == ErrorCode.CLUSTER_UNAVAILABLE
            redis.start(port=port)
            for node in (a, b):
                assert node.hub.wait_up(10)
                back = RawClient(node.address)
                assert isinstance(back.hello(f"back-{node.hub.node_name}"), Welcome)
            assert a.server.wait_sessions(1, 5) and b.server.wait_sessions(1, 5)
