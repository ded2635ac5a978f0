"""The mixed concurrent scenario: several busy rooms at once, lobby included, and everything a
busy server meets together — a registration burst with races for one nick in several case
spellings, ECHO and plain senders, DIRECTs (to freshly raced nicks in every spelling), PINGs at
random moments, joins during traffic, and departures by LEAVE, BYE, FIN and RST while the
others send.

The plan is drawn from the case's seeded generator (so ``--seed`` replays it; the thread
interleaving of course differs) and scales with ``--clients``. Every actor records what it sent
and when; its MockClient records everything it received and when. ``mixed_judge`` then judges
every client's whole log, every room and the lobby (see there). Total volume is about
``MESSAGES`` room messages whatever the client count, so a fault that hits one message in 500
shows in every run.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from spec.constants import Capability, ErrorCode
from spec.events import (
    Ack,
    Bye,
    Direct,
    Error,
    Join,
    Joined,
    Leave,
    Left,
    Ping,
    Pong,
    Roster,
    Send,
)

from .client import BadFrame, Closed, Incoming, MockClient, describe
from .context import Case
from .errors import Violation
from .scenarios import is_answer

#: Room messages planned per run (departers send fewer: about 3,000 are sent, so a fault that
#: hits one message in 500 shows about six times in every run).
MESSAGES = 3500
#: Connections racing for each raced nick, each HELLO in another case spelling.
RACERS = 3
#: Fewer actors could not hold every role at once.
MIN_ACTORS = 16
DEPARTURES = ("leave", "bye", "fin", "rst")
BYE_TEXT = "mixed: bye ✓"
#: Seconds (scaled) to wait for one chunk's answers, and for LEFTs of unclean exits.
ANSWER_WAIT = 8.0
SETTLE_WAIT = 4.0
KEEPALIVE = 0.25
#: With a flood limit, each actor sends what its bucket allows in this many seconds.
RATE_BUDGET = 3.0

_tokens = itertools.count(0x00AB_0000_0000_0001)


@dataclass
class Action:
    kind: str  #: "send", "direct", "ping", "join" or "leave"
    room: str = ""
    target: int = -1  #: direct: an actor index, or -1 - g for race group g
    text: str = ""


@dataclass
class Request:
    """A SEND or DIRECT as sent, with the answer paired to it by order (§7.1 MSG-6)."""

    kind: str
    room: str  #: SEND: the room; DIRECT: ""
    target: int  #: DIRECT: as in Action
    text: str
    t_sent: float
    answer: object = None
    t_answer: float = 0.0
    log_index: int = -1

    @property
    def accepted(self) -> bool:
        return isinstance(self.answer, Ack)

    @property
    def seq(self) -> int:
        """The seq of its ACK (-1 if refused or unanswered)."""
        return self.answer.seq if isinstance(self.answer, Ack) else -1


@dataclass
class Actor:
    index: int
    echo_asked: bool
    rooms: list[str]  #: joined before the traffic (lobby not counted)
    actions: list[list[Action]] = field(default_factory=list)  #: pipelined chunks
    departure: str | None = None  #: "bye", "fin", "rst" end the session; "leave" one room
    left_room: str | None = None
    late_room: str | None = None
    race: int | None = None
    spelling: str = ""  #: the nick this actor asked for in its race
    client: MockClient | None = None
    nick: str = ""
    echo: bool = False
    requests: list[Request] = field(default_factory=list)
    pings: list[tuple[int, float, int]] = field(default_factory=list)  #: token, t, requests
    joins: list[str] = field(default_factory=list)
    t_welcome: float = 0.0
    done: bool = False  #: its traffic ran to the end
    t_departed: float = 0.0
    judge_upto: int = 0  #: log entries before the closing WHO

    @property
    def gone(self) -> bool:
        """It ended its session (so it is in no room at the end)."""
        return self.departure in ("bye", "fin", "rst")

    def rooms_at_end(self) -> set[str]:
        if self.gone:
            return set()
        rooms = {"lobby", *self.rooms}
        if self.late_room:
            rooms.add(self.late_room)
        if self.left_room:
            rooms.discard(self.left_room)
        return rooms


@dataclass
class Mixed:
    rooms: list[str]
    actors: list[Actor]
    race_bases: list[str]
    winners: dict[int, list[int]] = field(default_factory=dict)  #: race group -> winner(s)
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def flag(self, req: str, text: str) -> None:
        self.problems[req].append(text)

    def target_of(self, target: int) -> int | None:
        """The actor a DIRECT's target means: race groups resolve to their one winner. None
        when a race had several winners (NICK-3 is broken): then no nick of that race names
        one connection, whoever is addressed."""
        group = -1 - target if target < 0 else self.actors[target].race
        won = self.winners.get(group, []) if group is not None else []
        if group is not None and len(won) != 1:
            return None
        return target if target >= 0 else won[0]


# -- the plan ---------------------------------------------------------------------------


def plan(cw: Case) -> Mixed:
    rng = cw.rng
    n = max(MIN_ACTORS, cw.options.clients)
    rooms = [cw.room(f"mx{k}") for k in range(max(4, n // 4))]
    groups = max(1, n // 12)
    race_bases = [cw.nick("Race") for _ in range(groups)]
    actors = [
        Actor(i, echo_asked=rng.random() < 0.2, rooms=rng.sample(rooms, rng.randint(1, 3)))
        for i in range(n)
    ]
    for g in range(groups):
        for k in range(RACERS):
            i = g * RACERS + k
            if i < n:
                actors[i].race = g
                actors[i].spelling = _spell(race_bases[g], k, rng)
    racers = groups * RACERS
    movers = rng.sample(range(racers, n), max(2 * len(DEPARTURES), n // 3))
    for j, i in enumerate(movers):  # every kind of departure, then joiners and departures
        if j < len(DEPARTURES) or j % 2 == 0:
            actors[i].departure = DEPARTURES[j % len(DEPARTURES)]
        free = [r for r in rooms if r not in actors[i].rooms]
        if free and actors[i].departure in (None, "leave") and j >= len(DEPARTURES):
            actors[i].late_room = rng.choice(free)
    stayers = [a.index for a in actors if not a.gone]
    per = max(8, MESSAGES // n)
    for a in actors:
        _script(a, per, stayers, groups, rng)
    return Mixed(rooms, actors, race_bases)


def _spell(base: str, k: int, rng: random.Random) -> str:
    if k == 0:
        return base.lower()
    if k == 1:
        return base.upper()
    return "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in base)


def _script(a: Actor, per: int, stayers: list[int], groups: int, rng: random.Random) -> None:
    """The actor's actions, cut into pipelined chunks. Departers stop about halfway, so the
    others are still sending when they go."""
    total = per if a.departure in (None, "leave") else rng.randint(per // 4, per // 2)
    current = ["lobby", *a.rooms]
    join_at = rng.randint(1, max(1, total // 2)) if a.late_room else -1
    leave_at = rng.randint(total // 4, 3 * total // 4) if a.departure == "leave" else -1
    flat: list[Action] = []
    sends = 0
    while sends < total:
        if sends == join_at and a.late_room and a.late_room not in current:
            flat.append(Action("join", a.late_room))
            current.append(a.late_room)
        if sends == leave_at and a.left_room is None:  # last words, then LEAVE at once
            a.left_room = rng.choice(current)
            for _ in range(2):
                flat.append(Action("send", a.left_room, text=_text(rng, a.index, len(flat))))
            flat.append(Action("leave", a.left_room))
            current.remove(a.left_room)
        roll = rng.random()
        if roll < 0.08:
            flat.append(Action("ping"))
        elif roll < 0.2:
            target = rng.choice(stayers) if rng.random() < 0.6 else -1 - rng.randrange(groups)
            flat.append(Action("direct", target=target, text=f"w{a.index}.{len(flat)}"))
        else:
            weights = [0.15 if r == "lobby" else 1.0 for r in current]
            room = rng.choices(current, weights)[0]
            flat.append(Action("send", room, text=_text(rng, a.index, len(flat))))
            sends += 1
    while flat:
        size = rng.randint(1, 24)
        leave = next((k for k, act in enumerate(flat) if act.kind == "leave"), -9)
        if leave - 2 < size <= leave:  # the last words and the LEAVE go in one write
            size = leave + 1
        a.actions.append(flat[:size])
        flat = flat[size:]


PIECES = ["", "", "", "a", "ü", "漢字", "🎉", "\n", " ", "xyz"]


def _text(rng: random.Random, i: int, k: int) -> str:
    return f"x{i}.{k}" + rng.choice(PIECES)


def spelled(base: str, rng: random.Random) -> str:
    """Some case spelling of a raced nick (ASCII letters fold, §5.2)."""
    return "".join(ch.swapcase() if ch.isalpha() and rng.random() < 0.5 else ch for ch in base)


# -- the run ----------------------------------------------------------------------------


def register_all(cw: Case, mx: Mixed) -> None:
    """The registration burst: every actor connects and says HELLO at once; racers ask for
    their group's nick in their own spelling (NICK-3: exactly one wins), and each loser then
    registers a fresh nick on the same connection (HS-13)."""

    def one(i: int) -> None:
        a = mx.actors[i]
        a.client = client = cw.client(f"x{i}")
        caps = int(Capability.ECHO) if a.echo_asked else 0
        if a.race is not None:
            answer = client.hello(a.spelling, caps, "NICK-3")
            if isinstance(answer, Error):
                if answer.code != ErrorCode.NICK_IN_USE:
                    mx.flag("NICK-3", f"{a.spelling!r} refused with {describe(answer)}")
                answer = client.register(cw.nick(f"x{i}"), caps, "HS-13")
            else:
                client.welcome_roster = client.read_roster(answer.room, "HS-7", immediate=True)
        else:
            answer = client.register(cw.nick(f"x{i}"), caps, "HS-4")
        a.t_welcome = _arrival(client, answer)
        a.nick = answer.nick
        a.echo = bool(answer.caps & Capability.ECHO)

    cw.parallel(len(mx.actors), one)
    for g, base in enumerate(mx.race_bases):
        won = [a.index for a in mx.actors if a.race == g and a.nick.lower() == base.lower()]
        mx.winners[g] = won
        if len(won) != 1:
            mx.flag("NICK-3", f"{len(won)} of the racers for {base!r} were welcomed")


def _arrival(client: MockClient, item: object) -> float:
    return next((t for t, e in reversed(client.log) if e is item), time.monotonic())


def traffic(cw: Case, mx: Mixed) -> None:
    """Every actor joins its rooms, then plays its chunks, all at once: each chunk pipelined,
    then its answers awaited. Then, once all are through, every remaining actor waits for the
    LEFTs of those that ended their sessions and takes a PING barrier (§8.5): after that its
    log holds everything the server owes it. No actor sits silent meanwhile (a PING every
    KEEPALIVE seconds), or a short idle timeout would cut it while slower ones finish."""
    rng = random.Random(cw.rng.random())
    spell_rngs = [random.Random(rng.random()) for _ in mx.actors]
    gone = {a.nick for a in mx.actors if a.gone}
    welcome = mx.actors[0].client.welcome if mx.actors[0].client else None
    if welcome is not None and welcome.rate:  # keep within RATE_BUDGET s of the flood limit
        for a in mx.actors:
            _trim(a, int(welcome.burst + welcome.rate * RATE_BUDGET))
    finished = threading.Semaphore(0)
    all_done = threading.Event()

    def one(i: int) -> None:
        a = mx.actors[i]
        client = a.client
        assert client is not None
        try:
            for room in a.rooms:
                a.joins.append(room)
                client.send_frame(Join(room))
                client.read_roster(room, "ROOM-5")
            for chunk in a.actions:
                _play(mx, a, chunk, spell_rngs[i], cw.scale)
            _depart(a)
            a.done = True
        except Violation as v:
            mx.flag(v.req or "MSG-6", f"{a.nick}: expected {v.expected}; got {v.actual}")
        finally:
            finished.release()
            a.judge_upto = len(client.log)
        if a.gone or not a.done:
            return
        while not all_done.wait(KEEPALIVE):
            _ping(a)
        deadline = time.monotonic() + SETTLE_WAIT * cw.scale
        lefts = _Lefts(client, gone)
        while lefts.pending() and time.monotonic() < deadline:
            client.drain()  # the log keeps everything; wait for what comes next
            if client.recv_event(KEEPALIVE) is None:
                _ping(a)
        client.barrier("ORD-10", ANSWER_WAIT)
        a.judge_upto = len(client.log)

    def count() -> None:
        for _ in mx.actors:
            finished.acquire()
        all_done.set()

    counter = threading.Thread(target=count, daemon=True)
    counter.start()
    cw.parallel(len(mx.actors), one, timeout=120.0)
    counter.join(timeout=1.0)


def _trim(a: Actor, budget: int) -> None:
    """Drop the SENDs and DIRECTs beyond ``budget`` (JOIN, LEAVE and PING stay)."""
    for chunk in a.actions:
        for act in list(chunk):
            if act.kind in ("send", "direct"):
                if budget <= 0:
                    chunk.remove(act)
                budget -= 1
    a.actions = [chunk for chunk in a.actions if chunk]


def _ping(a: Actor) -> None:
    """A PING that nobody waits for (its PONG is judged with the others)."""
    assert a.client is not None
    token = next(_tokens)
    a.pings.append((token, time.monotonic(), len(a.requests)))
    a.client.send_frame(Ping(token))


def _play(mx: Mixed, a: Actor, chunk: list[Action], rng: random.Random, scale: float) -> None:
    client = a.client
    assert client is not None
    answers = rosters = lefts = 0
    tokens: set[int] = set()
    for act in chunk:
        now = time.monotonic()
        if act.kind == "send":
            a.requests.append(Request("send", act.room, -1, act.text, now))
            client.send_frame(Send(act.room, act.text))
            answers += 1
        elif act.kind == "direct":
            nick = _direct_nick(mx, act.target, rng)
            a.requests.append(Request("direct", "", act.target, act.text, now))
            client.send_frame(Direct(nick, act.text))
            answers += 1
        elif act.kind == "ping":
            token = next(_tokens)
            a.pings.append((token, now, len(a.requests)))
            client.send_frame(Ping(token))
            tokens.add(token)
        elif act.kind == "join":
            a.joins.append(act.room)
            client.send_frame(Join(act.room))
            rosters += 1
        else:
            client.send_frame(Leave(act.room))
            lefts += 1
    deadline = time.monotonic() + ANSWER_WAIT * scale
    items: list[Incoming | None] = []
    while answers or tokens or rosters or lefts:
        if not items:  # one wake-up for all that came meanwhile, not one per frame
            items = [client.recv_event(max(0.0, deadline - time.monotonic()) / scale)]
            items += client.drain()
        item = items.pop(0)
        if item is None or isinstance(item, Closed | BadFrame):
            missing = [
                (req, f"{n} more {what}")
                for req, n, what in (
                    ("MSG-6", answers, "answers to SEND/DIRECT"),
                    ("KEEP-2", len(tokens), "PONGs"),
                    ("ROOM-5", rosters, "ROSTERs answering JOIN"),
                    ("ROOM-8", lefts, "own LEFTs answering LEAVE"),
                )
                if n
            ]
            raise Violation(missing[0][0], missing[0][1], describe(item))
        if is_answer(item):
            answers -= 1
        elif isinstance(item, Pong) and item.token in tokens:
            tokens.discard(item.token)
        elif isinstance(item, Roster) and item.room in a.joins and not item.more:
            rosters -= 1
        elif isinstance(item, Left) and item.nick == a.nick and item.room == a.left_room:
            lefts -= 1


def _direct_nick(mx: Mixed, target: int, rng: random.Random) -> str:
    if target >= 0:
        return mx.actors[target].nick
    g = -1 - target
    racers = [a.spelling for a in mx.actors if a.race == g]
    return rng.choice([*racers, spelled(mx.race_bases[g], rng)])


def _depart(a: Actor) -> None:
    client = a.client
    assert client is not None
    a.t_departed = time.monotonic()
    if a.departure == "bye":
        client.send_frame(Bye(BYE_TEXT))
        while not isinstance(client.recv_event(ANSWER_WAIT), Closed | BadFrame | None):
            pass
    elif a.departure == "fin":
        client.close()
    elif a.departure == "rst":
        client.abort()


class _Lefts:
    """(room, nick) of gone actors a client has seen in a room and no LEFT for yet, read
    incrementally from its log (a rescan per wake-up would starve the suite's threads)."""

    def __init__(self, client: MockClient, gone: set[str]) -> None:
        self.client, self.gone = client, gone
        self.read = 0
        self.awaited: set[tuple[str, str]] = set()

    def pending(self) -> bool:
        log = self.client.log
        end = len(log)
        for _, e in log[self.read : end]:
            if isinstance(e, Roster):
                self.awaited.update((e.room, m) for m in e.members if m in self.gone)
            elif isinstance(e, Joined) and e.nick in self.gone:
                self.awaited.add((e.room, e.nick))
            elif isinstance(e, Left):
                self.awaited.discard((e.room, e.nick))
        self.read = end
        return bool(self.awaited)
