"""§8 Ordering and delivery, under real concurrency: N clients (--clients) released together
by a barrier; every invariant is checked afterwards over the recorded logs of all of them."""

from __future__ import annotations

import random

from conformance import invariants
from conformance.client import Closed, Incoming, MockClient, describe
from conformance.context import Case
from conformance.markers import requirement
from conformance.predicates import joined_about, left_about
from conformance.scenarios import Member, await_answers, join_all, send_all
from conformance.steps import direct, join, leave, send
from spec.constants import ErrorCode
from spec.events import Ack, Deliver, Direct, Error, Join, Leave, Left, Roster, Send, Whisper

PIECES = ["", "a", "ü", "漢字", "🎉", "\n", "\t", " ", "xyz", "é" * 40, "long" * 60]


def _text(rng: random.Random, i: int, k: int) -> str:
    """Unique per (member, index), with a seeded mix of scripts, whitespace and sizes."""
    return f"m{i}.{k}|" + "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))


def _late(late: list[list[Incoming]], members: list[Member], room: str) -> list[str]:
    return [
        f"{m.nick} got {e!r} only after the PONG of a later PING"
        for m, frames in zip(members, late, strict=True)
        for e in frames
        if isinstance(e, Deliver) and e.room == room
    ][:5]


@requirement(
    "ORD-3", "ORD-1", "ORD-2", "ORD-5", "ORD-10", "ORD-11", "MSG-3", "MSG-6", "MSG-7", "NICK-5"
)
def test_room_broadcast_under_concurrency(cw: Case) -> None:
    """Every message accepted in a room MUST reach every other member exactly once, in
    increasing seq order; seqs start at 1 with no gap; the observed seqs of each member are
    S+1, S+2, ...; nobody receives its own message; PING is a barrier across clients."""
    n = cw.options.clients
    room = cw.room("flood")
    clients = cw.many(n, "f")
    members = join_all(cw, clients, room, "ROOM-5")
    per = [cw.rng.randint(2, 6) for _ in range(n)]
    rngs = [random.Random(cw.rng.random()) for _ in range(n)]
    late = send_all(cw, members, room, lambda i, k: _text(rngs[i], i, k), per, "MSG-6")
    cw.check(
        all(
            len(m.sent) == p and all(s.answer for s in m.sent)
            for m, p in zip(members, per, strict=True)
        ),
        "MSG-6",
        "one answer per SEND",
        "missing answers",
    )
    refused = [s.answer for m in members for s in m.sent if not s.accepted]
    welcome = members[0].client.welcome
    limited = welcome is not None and welcome.rate > 0
    kept = "each sender within its flood bucket" if limited else "no flood limit advertised"
    cw.check(
        not refused, "MSG-3", f"every SEND accepted ({kept})", ", ".join(map(describe, refused[:3]))
    )
    acks = sorted(s.answer.seq for m in members for s in m.sent if isinstance(s.answer, Ack))
    start = min(m.join_seq for m in members)
    cw.check(
        acks == list(range(start + 1, start + 1 + len(acks))),
        "ORD-1",
        f"ACK seqs {start + 1}..{start + len(acks)}, each once",
        f"{acks[:10]}…" if len(acks) > 10 else repr(acks),
    )
    _judge(cw, members, room, "ORD-3", invariants.exactly_once)
    _judge(cw, members, room, "MSG-7", invariants.no_echo)
    _judge(cw, members, room, "NICK-5", invariants.sender_stamped)
    _judge(cw, members, room, "ORD-2", invariants.per_sender_fifo)
    _judge(cw, members, room, "ORD-2", invariants.same_order)
    _judge(cw, members, room, "ORD-5", invariants.contiguous)
    problems = _late(late, members, room)
    cw.check(not problems, "ORD-11", "every DELIVER before the PONG", "; ".join(problems))
    cw.ok("ORD-10", "MSG-3")
    cw.observe(f"{n} members, {sum(per)} messages, {sum(per) * (n - 1)} deliveries")


def _judge(cw: Case, members: list[Member], room: str, req: str, check: object) -> None:
    problems = check(members, room)  # type: ignore[operator]
    what = " ".join((check.__doc__ or "").split("(")[0].split())
    cw.check(not problems, req, what, "; ".join(problems))


@requirement("ORD-4", "ORD-5", "ROOM-5", "PRES-1", "PRES-2", "PRES-4", "PRES-5")
def test_joins_and_leaves_during_traffic(cw: Case) -> None:
    """No history: a member gets nothing accepted before its JOIN (the ROSTER seq marks the
    point) nor after its LEAVE, and between them exactly S+1, S+2, ... ; JOINED precedes a
    joiner's messages and LEFT follows a leaver's."""
    n = max(6, cw.options.clients // 2)
    room = cw.room("churn")
    clients = cw.many(n, "j")
    third = n // 3
    senders, joiners, leavers = clients[:third], clients[third : 2 * third], clients[2 * third :]
    join_all(cw, senders + leavers, room, "ROOM-5")
    per = 8
    results: dict[str, tuple[int, int | None]] = {}  # nick -> (join seq, seq of own LEFT)

    def act(i: int) -> None:
        c = clients[i]
        if c in senders:
            for k in range(per):
                c.send_frame(Send(room, f"{c.nick}.{k}"))
            await_answers(c, per, "MSG-6", 30.0)
        elif c in joiners:
            c.send_frame(Join(room))
            roster = c.read_roster(room, "ROOM-5")
            c.send_frame(Send(room, f"{c.nick} hello"))
            await_answers(c, 1, "MSG-6", 30.0)
            results[c.nick] = (roster[-1].seq, None)
        else:
            c.send_frame(Send(room, f"{c.nick} bye"))
            c.send_frame(Leave(room))
            await_answers(c, 1, "MSG-6", 30.0)
            c.expect(left_about(room, c.nick), "own LEFT", "ROOM-8")

    cw.parallel(n, act)
    cw.parallel(n, lambda i: clients[i].barrier("ORD-10"))
    for c in joiners + senders:
        _check_window(cw, c, room, results.get(c.nick, (0, None))[0])
    for c in leavers:
        _check_leaver(cw, c, room)
    for watcher in senders:
        _check_presence_order(cw, watcher, room, joiners, leavers)


def _observed(c: MockClient, room: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for _, e in c.log:
        if isinstance(e, Deliver) and e.room == room:
            out.append((e.seq, "DELIVER"))
        elif isinstance(e, Ack) and e.room == room:
            out.append((e.seq, "ACK"))
    return out


def _check_window(cw: Case, c: MockClient, room: str, start: int) -> None:
    seqs = [s for s, _ in _observed(c, room)]
    early = [s for s in seqs if s <= start]
    cw.check(not early, "ORD-4", f"{c.nick}: nothing up to its ROSTER seq {start}", repr(early))
    expected = list(range(start + 1, start + 1 + len(seqs)))
    cw.check(seqs == expected, "ORD-5", f"{c.nick}: seqs {start + 1}, {start + 2}, …", repr(seqs))


def _check_leaver(cw: Case, c: MockClient, room: str) -> None:
    after_left = False
    late: list[int] = []
    for _, e in c.log:
        if isinstance(e, Left) and e.room == room and e.nick == c.nick:
            after_left = True
        elif after_left and isinstance(e, Deliver) and e.room == room:
            late.append(e.seq)
    cw.check(not late, "ORD-4", f"{c.nick}: nothing after its own LEFT", repr(late))
    roster = next(e for _, e in c.log if isinstance(e, Roster) and e.room == room)
    seqs = [s for s, _ in _observed(c, room)]
    expected = list(range(roster.seq + 1, roster.seq + 1 + len(seqs)))
    cw.check(seqs == expected, "ORD-5", f"{c.nick}: a gapless prefix", repr(seqs))


def _check_presence_order(
    cw: Case, watcher: MockClient, room: str, joiners: list[MockClient], leavers: list[MockClient]
) -> None:
    events = [e for _, e in watcher.log if getattr(e, "room", None) == room]
    for j in joiners:
        idx_joined = next((i for i, e in enumerate(events) if joined_about(room, j.nick)(e)), None)
        idx_msg = next(
            (i for i, e in enumerate(events) if isinstance(e, Deliver) and e.sender == j.nick),
            None,
        )
        cw.check(idx_joined is not None, "PRES-1", f"JOINED of {j.nick}", "none")
        if idx_joined is not None and idx_msg is not None:
            cw.check(idx_joined < idx_msg, "PRES-2", f"JOINED of {j.nick} first", "after")
    for lv in leavers:
        idx_left = next((i for i, e in enumerate(events) if left_about(room, lv.nick)(e)), None)
        msgs = [i for i, e in enumerate(events) if isinstance(e, Deliver) and e.sender == lv.nick]
        cw.check(idx_left is not None, "PRES-4", f"LEFT of {lv.nick}", "none")
        if idx_left is not None and msgs:
            cw.check(max(msgs) < idx_left, "PRES-5", f"LEFT of {lv.nick} last", "earlier")


@requirement("MSG-10", "ORD-7", "NICK-5", "MSG-11")
def test_direct_messages_under_concurrency(cw: Case) -> None:
    """Every accepted DIRECT MUST become one WHISPER to the addressee and nobody else, and the
    WHISPERs from one sender to one addressee MUST keep the order of the DIRECTs."""
    n = cw.options.clients
    clients = cw.many(n, "d")
    per = 6
    plan = [[cw.rng.randrange(n) for _ in range(per)] for _ in range(n)]
    accepted: list[list[bool]] = [[] for _ in range(n)]

    def act(i: int) -> None:
        for k, target in enumerate(plan[i]):
            clients[i].send_frame(Direct(clients[target].nick.upper(), f"d{i}.{k}"))
        answers = await_answers(clients[i], per, "MSG-6", 30.0)
        accepted[i] = [isinstance(a, Ack) for a in answers]
        limited = ErrorCode.RATE_LIMITED
        bad = [
            a
            for a in answers
            if not (isinstance(a, Ack) and (a.room, a.seq) == ("", 0))
            and not (isinstance(a, Error) and a.code == limited)
        ]
        cw.check(not bad, "MSG-11", "ACK{room='', seq=0} for each DIRECT", repr(bad[:3]))

    cw.parallel(n, act)
    cw.parallel(n, lambda i: clients[i].barrier("ORD-10"))
    for j, c in enumerate(clients):
        got = [e for _, e in c.log if isinstance(e, Whisper)]
        want = [
            f"d{i}.{k}"
            for i in range(n)
            for k, t in enumerate(plan[i])
            if t == j and accepted[i][k]
        ]
        texts = [w.text for w in got]
        cw.check(
            sorted(texts) == sorted(want),
            "MSG-10",
            f"{c.nick}: exactly its {len(want)} WHISPERs",
            f"{len(texts)}: missing {sorted(set(want) - set(texts))[:3]},"
            f" foreign {sorted(set(texts) - set(want))[:3]}",
        )
        for w in got:
            sender_idx = int(w.text[1:].split(".")[0])
            cw.check(
                w.sender == clients[sender_idx].nick,
                "NICK-5",
                f"sender {clients[sender_idx].nick}",
                repr(w.sender),
            )
        for i in range(n):
            mine = [int(t.split(".")[1]) for t in texts if t.startswith(f"d{i}.")]
            cw.check(mine == sorted(mine), "ORD-7", f"{c.nick}: d{i}.* in order", repr(mine))


@requirement("ORD-10", "ORD-11", "ORD-9")
def test_ping_is_a_barrier_across_clients(cw: Case) -> None:
    """Once client A has the answer to its request, a PING that client B sends afterwards MUST
    be answered after every frame that A's request caused for B."""
    room = cw.room()
    a, b = cw.registered("a"), cw.registered("b")
    join(b, room)
    checks: list[tuple[str, object]] = []
    join(a, room)
    checks.append(("JOINED", b.barrier("ORD-10")))
    send(a, room, "before the ping")
    checks.append(("DELIVER", b.barrier("ORD-10")))
    direct(a, b.nick, "whisper before the ping")
    checks.append(("WHISPER", b.barrier("ORD-10")))
    leave(a, room)
    checks.append(("LEFT", b.barrier("ORD-10")))
    for kind, before in checks:
        names = [type(e).__name__.upper() for e in before]  # type: ignore[attr-defined]
        cw.check(kind in names, "ORD-11", f"the {kind} before B's PONG", repr(names))
    cw.ok("ORD-9")


@requirement("ORD-8", "ROOM-8")
def test_one_clients_frames_in_arrival_order(cw: Case) -> None:
    """A server MUST handle the frames of one client one at a time, in the order they
    arrived: JOIN, SEND, LEAVE, SEND pipelined give ROSTER, ACK, LEFT, NOT_IN_ROOM."""
    room = cw.room()
    a = cw.registered("a")
    for frame in (Join(room), Send(room, "in"), Leave(room), Send(room, "out")):
        a.send_frame(frame)
    kinds: list[str] = []
    while len(kinds) < 4:
        item = a.recv_event()
        if item is None or isinstance(item, Closed):
            break
        # Only the answers to these four: others' comings and goings elsewhere (the lobby
        # included, on a server in real use) are not part of it.
        if isinstance(item, Error):
            kinds.append(item.code_name)
        elif isinstance(item, Roster | Ack) and item.room == room:
            kinds.append(type(item).__name__.upper())
        elif isinstance(item, Left) and item.room == room and item.nick == a.nick:
            kinds.append("LEFT")
    want = ["ROSTER", "ACK", "LEFT", "NOT_IN_ROOM"]
    cw.check(kinds == want, "ORD-8", repr(want), repr(kinds))
