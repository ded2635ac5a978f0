"""§20 Clusters: the cases that need two or more nodes (``--server`` or ``--launch`` repeated).
Every other case spreads its clients over the nodes already; these pin clients to nodes: a nick
held on another node, DIRECT across nodes, concurrent senders on different nodes into one room,
a node that fails mid-case (frozen with SIGSTOP: to the others it is dead, and once thawed it
finds itself counted out), and one node shutting down."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import TypeGuard

from conformance.client import Incoming, MockClient, describe, one_of
from conformance.context import Case
from conformance.errors import SkipReason, Violation, skip
from conformance.markers import requirement
from conformance.predicates import left_about, whisper_of
from conformance.steps import direct, join
from spec.constants import ErrorCode, LeaveReason
from spec.events import Ack, Deliver, Error, Left, Send, Welcome

#: §20.3 CLUSTER-5: a failed node's members are reported within this (seconds).
FAILURE_BOUND = 5.0
#: Nodes stopped for good by the shutdown case (later repeats and cases leave them alone).
_stopped: list[int] = []


def _nodes(cw: Case, at_least: int = 2) -> int:
    count = len(cw.addresses)
    if count < at_least:
        skip(
            SkipReason.NOT_APPLICABLE,
            f"needs a cluster of at least {at_least} nodes: give each node's address with"
            " --server (or --launch) repeated",
        )
    return count


@requirement("CLUSTER-2")
def test_nick_held_on_another_node_is_refused(cw: Case) -> None:
    """A cluster MUST refuse with NICK_IN_USE a HELLO on any node for a nick that a session on
    any node holds."""
    nodes = _nodes(cw)
    holder = cw.client("holder", node=0)
    holder.register(cw.nick("Held"), req="CLUSTER-2")
    for node in range(1, nodes):
        thief = cw.client(f"thief{node}", node=node)
        answer = thief.hello(holder.nick.swapcase(), req="CLUSTER-2")
        if not isinstance(answer, Error) or answer.code != ErrorCode.NICK_IN_USE:
            raise Violation("CLUSTER-2", "NICK_IN_USE on another node", describe(answer))


@requirement("CLUSTER-3")
def test_direct_reaches_another_node(cw: Case) -> None:
    """A cluster MUST deliver a DIRECT as WHISPER to the one session holding the nick, on
    whichever node it is."""
    nodes = _nodes(cw)
    people = [cw.client(f"p{node}", node=node) for node in range(nodes)]
    for person in people:
        person.register(cw.nick("p"), req="CLUSTER-3")
    for i, sender in enumerate(people):
        target = people[(i + 1) % nodes]
        text = f"from node {i}"
        direct(sender, target.nick.upper(), text, req="CLUSTER-3")
        target.expect(whisper_of(text), f"the WHISPER from node {i}", "CLUSTER-3")


@requirement("CLUSTER-4", "CLUSTER-1")
def test_concurrent_senders_on_different_nodes(cw: Case) -> None:
    """A cluster MUST give the messages accepted in a room, on whichever nodes their senders
    are, seqs from one sequence per room, and deliver them to the members on every node in
    that order."""
    nodes = _nodes(cw)
    room = cw.room("spread")
    senders = [cw.client(f"s{i}", node=i % nodes) for i in range(2 * nodes)]
    watchers = [cw.client(f"w{node}", node=node) for node in range(nodes)]
    starts = {}
    for c in (*senders, *watchers):
        c.register(cw.nick(c.name), req="CLUSTER-1")
        c.light = True
        starts[c.name] = join(c, room, "CLUSTER-1").seq
    count = 40

    def talk(i: int) -> list[int]:
        sender = senders[i]
        for n in range(count):
            sender.send_frame(Send(room, f"{sender.nick}:{n}"))
        acks: list[int] = []
        while len(acks) < count:
            item, _ = sender.expect(one_of(Ack, Error), "the answer to a SEND", "CLUSTER-1")
            if not isinstance(item, Ack):
                raise Violation("CLUSTER-1", "ACK", describe(item))
            acks.append(item.seq)
        return acks

    acked = cw.parallel(len(senders), talk)
    orders = []
    for w in watchers:
        got = [e for e in w.barrier("CLUSTER-4") if isinstance(e, Deliver) and e.room == room]
        first = starts[w.name] + 1
        seqs = [e.seq for e in got]
        cw.check(
            seqs == list(range(first, first + len(senders) * count)),
            "CLUSTER-4",
            f"seqs {first}..{first + len(senders) * count - 1}, no gap or repeat, on {w.name}",
            f"{len(seqs)} DELIVERs: {seqs[:10]}...",
        )
        orders.append([(e.seq, e.sender, e.text) for e in got if e.seq > max(starts.values())])
    cw.check(
        all(order == orders[0] for order in orders),
        "CLUSTER-4",
        "the same order of the room's messages on every node",
        "the watchers on different nodes saw different orders",
    )
    for sender, seqs in zip(senders, acked, strict=True):
        mine = [seq for seq, nick, _ in orders[0] if nick == sender.nick]
        cw.check(mine == seqs, "CLUSTER-4", f"{sender.name}'s ACK seqs are its DELIVERs' seqs",
                 f"ACKs {seqs[:5]}..., DELIVERs {mine[:5]}...")  # fmt: skip


@requirement("CLUSTER-5", "CLUSTER-6", "CLUSTER-7", "CLUSTER-8")
def test_failed_node(cw: Case, node_pids: list[int]) -> None:
    """When a node fails, the other nodes MUST send LEFT (LOST) about each of its members to
    every remaining member of its rooms and release their nicks within 5 s; the survivors
    lose no message and get none twice; the failed node, thawed, ends its sessions with
    CLUSTER_UNAVAILABLE and (SHOULD) serves again. The node is frozen with SIGSTOP, so the
    suite needs to have launched it (--launch repeated, 3 nodes at least)."""
    live = [pid for pid in node_pids if pid not in _stopped]
    if len(live) < 3 or len(cw.addresses) < 3:
        skip(
            SkipReason.NOT_APPLICABLE,
            "needs 3 nodes or more that the suite launched itself (--launch repeated), so it"
            " can freeze one",
        )
    victim = len(cw.addresses) - 1  # never node 0, where the background probes are
    pid = node_pids[victim]
    room = cw.room("survive")
    survivors = [cw.client(f"sv{i}", node=i % victim) for i in range(2 * victim)]
    doomed = [cw.client(f"doomed{i}", node=victim) for i in range(2)]
    for c in (*survivors, *doomed):
        c.register(cw.nick(c.name), req="CLUSTER-5")
        c.light = True
        join(c, room, "CLUSTER-5")
    for c in survivors:
        c.barrier("CLUSTER-5")
        c.drain()
    stop = threading.Event()
    talkers = survivors[:2]

    def talk(sender: MockClient, sent: list[int]) -> None:
        n = 0
        while not stop.is_set() and n < 5000:
            sender.send_frame(Send(room, f"{sender.nick}:{n}"))
            n += 1
            sent.append(n)
            stop.wait(0.01)

    sent: list[list[int]] = [[], []]
    threads = [
        threading.Thread(target=talk, args=(t, s), daemon=True)
        for t, s in zip(talkers, sent, strict=True)
    ]
    for t in threads:
        t.start()
    frozen_at = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    kept: dict[str, list[object]] = {c.name: [] for c in survivors}
    try:
        bound = FAILURE_BOUND * cw.scale
        for watcher in survivors[2:] or survivors:
            wanted = {(where, m.nick) for m in doomed for where in (room, "lobby")}

            def lost(e: Incoming, w: set[tuple[str, str]] = wanted) -> TypeGuard[Left]:
                return isinstance(e, Left) and (e.room, e.nick) in w

            while wanted:
                left = max(0.1, frozen_at + bound + 1 - time.monotonic()) / cw.scale
                item, skipped = watcher.expect(
                    lost,
                    f"LEFT of {len(wanted)} more of the frozen node's members",
                    "CLUSTER-5",
                    timeout=left,
                )
                kept[watcher.name] += skipped
                wanted.discard((item.room, item.nick))
                cw.check(item.reason == LeaveReason.LOST, "CLUSTER-5", "reason LOST",
                         str(item.reason))  # fmt: skip
        took = time.monotonic() - frozen_at
        cw.check(took <= bound, "CLUSTER-5", f"every LEFT within {bound:g}s", f"{took:.2f}s")
        cw.observe(f"the frozen node's members reported LEFT after {took:.2f}s")
        again = cw.client("again", node=0)
        answer = again.hello(doomed[0].nick, req="CLUSTER-5")
        cw.check(isinstance(answer, Welcome), "CLUSTER-5", "the failed member's nick free",
                 describe(answer))  # fmt: skip
        stop.set()
        for t in threads:
            t.join()
        for c in talkers:  # every SEND answered: the accepted messages are known
            kept[c.name] += c.barrier("CLUSTER-6", timeout=30)
        for c in survivors:  # accepted before these PINGs: delivered before the PONGs
            kept[c.name] += c.barrier("CLUSTER-6", timeout=30)
        _judge_survivors(cw, room, survivors, talkers, kept)
    finally:
        stop.set()
        os.kill(pid, signal.SIGCONT)
    for member in doomed:
        member.expect_error([ErrorCode.CLUSTER_UNAVAILABLE], "CLUSTER-7", timeout=15)
    _judge_comeback(cw, victim)


def _judge_survivors(
    cw: Case,
    room: str,
    survivors: list[MockClient],
    talkers: list[MockClient],
    kept: dict[str, list[object]],
) -> None:
    """CLUSTER-6: every survivor got every message accepted in the room once, in seq order
    (its own excepted: no echo)."""
    own = {
        t.name: {e.seq for e in kept[t.name] if isinstance(e, Ack) and e.room == room}
        for t in talkers
    }
    accepted = set().union(*own.values())
    for member in survivors:
        got = [e.seq for e in kept[member.name] if isinstance(e, Deliver) and e.room == room]
        want = sorted(accepted - own.get(member.name, set()))
        cw.check(
            got == want,
            "CLUSTER-6",
            f"{member.name}: each of the {len(want)} accepted messages once, in order",
            f"{len(got)} DELIVERs, {len(got) - len(set(got))} repeats, "
            f"{len(set(want) - set(got))} missing",
        )


def _judge_comeback(cw: Case, victim: int) -> None:
    """CLUSTER-8: the thawed node accepts a new client once it has reached the state again."""
    deadline = time.monotonic() + 15 * cw.scale
    nick = cw.nick("back")
    while True:
        c = cw.client("back", node=victim)
        answer = c.hello(nick, req="CLUSTER-8")
        if isinstance(answer, Welcome):
            return
        c.close()
        if time.monotonic() >= deadline:
            raise Violation("CLUSTER-8", "WELCOME from the thawed node", describe(answer))
        time.sleep(0.2)  # the node reconnects on its own schedule: ask again shortly


@requirement("CLUSTER-9")
def test_one_node_shuts_down(cw: Case, node_pids: list[int]) -> None:
    """When one node of a cluster shuts down, its clients receive SERVER_SHUTDOWN and the
    members on the other nodes MUST receive LEFT with reason SHUTDOWN about each of them. The
    suite stops the last node it launched (once; later cases use the others)."""
    if len(node_pids) < 2 or len(cw.addresses) < 2:
        skip(SkipReason.NOT_APPLICABLE, "needs 2 nodes or more launched by the suite (--launch)")
    if _stopped:
        skip(SkipReason.NOT_APPLICABLE, "a node was already shut down (--repeat)")
    victim = len(cw.addresses) - 1
    watcher = cw.client("watcher", node=0)
    leaving = cw.client("leaving", node=victim)
    for c in (watcher, leaving):
        c.register(cw.nick(c.name), req="CLUSTER-9")
    watcher.barrier("CLUSTER-9")
    _stopped.append(node_pids[victim])
    with contextlib.suppress(ProcessLookupError):
        os.kill(node_pids[victim], signal.SIGTERM)
    cw.options.servers.remove(cw.addresses[victim])  # the shutdown case stops the rest
    leaving.expect_error([ErrorCode.SERVER_SHUTDOWN], "CLUSTER-9", timeout=10)
    item, _ = watcher.expect(
        left_about("lobby", leaving.nick), "LEFT of the shut-down node's member", "CLUSTER-9"
    )
    cw.check(item.reason == LeaveReason.SHUTDOWN, "CLUSTER-9", "reason SHUTDOWN", str(item.reason))
