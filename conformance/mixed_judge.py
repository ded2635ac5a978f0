"""Judging the mixed scenario (``conformance.mixed``) over every client's whole log, every room
and the lobby at once. Each problem is filed under the requirement it breaks:

* isolation: no DELIVER, JOINED, LEFT, ACK or ROSTER about a room outside the client's
  membership of it (ORD-12), and no WHISPER meant for another connection (MSG-10);
* messages, per room: exactly once to members that stay (ORD-3), one order (ORD-2), no
  history (ORD-4), contiguous observed seqs from the ROSTER's seq (ORD-5), ACK seqs gapless and
  unique in the scenario's own rooms (ORD-1), rising DELIVER seqs and ACK seq = DELIVER seq
  (ORD-2), no echo without ECHO (MSG-7), the echo right after its ACK with ECHO (MSG-13),
  sender stamps (NICK-5), every SEND accepted (MSG-3, no flood limit in the way);
* presence, per room and member: its view (ROSTER, then JOINED and LEFT in order) ends equal to
  the room's real membership and to WHO (PRES-1, PRES-4, ROOM-11), one LEFT per departure with
  the reason of its cause (PRES-6) and the BYE's text (ERR-12), JOINED before the joiner's
  messages and LEFT after the leaver's (PRES-2, PRES-5), no JOINED about oneself (PRES-3);
* the PING barrier against timestamps: a frame caused by a request whose answer arrived before
  a client sent a PING must reach that client before the PONG (ORD-11), and a client's own
  answers to requests sent before a PING come before its PONG (ORD-10);
* DIRECTs: one WHISPER to the addressee, whatever the spelling of its nick (MSG-10), in order
  per sender (ORD-7), answered by ACK{"", 0} (MSG-11).
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from spec.constants import ErrorCode, LeaveReason
from spec.events import Ack, Deliver, Error, Joined, Left, Pong, Roster, Welcome, Whisper

from .client import Incoming
from .mixed import BYE_TEXT, Actor, Mixed
from .scenarios import is_answer

#: Every requirement the judge files problems under (the first takes anything unfiled).
JUDGED = (
    "ORD-3",
    "ORD-12",
    "ORD-1",
    "ORD-2",
    "ORD-4",
    "ORD-5",
    "ORD-7",
    "ORD-10",
    "ORD-11",
    "MSG-3",
    "MSG-6",
    "MSG-7",
    "MSG-10",
    "MSG-11",
    "MSG-13",
    "NICK-3",
    "NICK-5",
    "PRES-1",
    "PRES-2",
    "PRES-3",
    "PRES-4",
    "PRES-5",
    "PRES-6",
    "ERR-12",
    "ROOM-11",
)

REASONS = {
    "leave": LeaveReason.PART,
    "bye": LeaveReason.QUIT,
    "fin": LeaveReason.LOST,
    "rst": LeaveReason.LOST,
}


@dataclass
class Window:
    """One membership of one room, as the client saw it: from the ROSTER to its own LEFT."""

    seq: int
    start: int  #: log index of the ROSTER (its last part)
    members: frozenset[str]
    end: int | None = None  #: log index of its own LEFT
    delivers: list[tuple[int, Deliver]] = field(default_factory=list)
    presence: list[tuple[int, Joined | Left]] = field(default_factory=list)


@dataclass
class Reading:
    """One actor's log, read once."""

    actor: Actor
    log: list[tuple[float, Incoming]]
    windows: dict[str, Window] = field(default_factory=dict)
    answers: list[int] = field(default_factory=list)  #: log indexes of SEND/DIRECT answers
    pongs: list[tuple[int, float]] = field(default_factory=list)  #: (log index, PING sent)
    whispers: list[tuple[int, Whisper]] = field(default_factory=list)

    def stays_in(self, room: str) -> bool:
        w = self.windows.get(room)
        return w is not None and w.end is None and self.actor.done and not self.actor.gone


def read(mx: Mixed, a: Actor) -> Reading:
    assert a.client is not None
    log = list(a.client.log)
    if not a.gone:
        log = log[: a.judge_upto]
    r = Reading(a, log)
    sent_at = {token: t for token, t, _ in a.pings}
    joins = list(a.joins)
    lobby_due = False
    parts: list[str] = []
    for i, (_, e) in enumerate(log):
        kind = type(e)
        if kind is Deliver or kind is Ack or kind is Joined or kind is Left:
            room = e.room  # type: ignore[union-attr]
            if kind is Ack and room == "":  # a DIRECT's
                r.answers.append(i)
                continue
            w = r.windows.get(room)
            if w is None or w.end is not None:
                mx.flag("ORD-12", f"{a.nick} got {e!r} outside its membership of {room!r}")
                if kind is Ack:
                    r.answers.append(i)
            elif kind is Deliver:
                w.delivers.append((i, e))  # type: ignore[arg-type]
            elif kind is Ack:
                r.answers.append(i)
            elif kind is Left and e.nick == a.nick:  # type: ignore[union-attr]
                w.end = i
            else:
                w.presence.append((i, e))  # type: ignore[arg-type]
        elif kind is Pong and e.token in sent_at:  # type: ignore[union-attr]
            r.pongs.append((i, sent_at[e.token]))  # type: ignore[union-attr]
        elif kind is Whisper:
            r.whispers.append((i, e))  # type: ignore[arg-type]
        elif is_answer(e):
            r.answers.append(i)
        elif kind is Welcome:
            lobby_due = True
        elif isinstance(e, Roster):
            parts.extend(e.members)
            if e.more:
                continue
            members, parts = frozenset(parts), []
            due = (e.room == "lobby" and lobby_due) or (e.room in joins)
            if due and e.room not in r.windows:
                r.windows[e.room] = Window(e.seq, i, members)
                if e.room == "lobby":
                    lobby_due = False
                else:
                    joins.remove(e.room)
            elif not _inside(r, e.room):
                mx.flag("ORD-12", f"{a.nick} got a ROSTER of {e.room!r} it never asked for")
    return r


def _inside(r: Reading, room: str) -> bool:
    w = r.windows.get(room)
    return w is not None and w.end is None


def pair_answers(mx: Mixed, r: Reading) -> None:
    """Each answer goes to the oldest unanswered request (§7.1 MSG-6)."""
    a = r.actor
    if len(r.answers) != len(a.requests) and a.done:
        mx.flag("MSG-6", f"{a.nick}: {len(r.answers)} answers to {len(a.requests)} requests")
    for req, i in zip(a.requests, r.answers, strict=False):
        req.answer, req.log_index = r.log[i][1], i
        req.t_answer = r.log[i][0]
        if req.kind == "direct" and req.accepted and req.answer != Ack("", 0):
            mx.flag("MSG-11", f"{a.nick}: DIRECT answered by {req.answer!r}")
        elif _rate_limited(req.answer):
            continue  # the flood limit, which the suite's clients mirror, can still disagree
        elif req.kind == "send" and not req.accepted:
            mx.flag("MSG-3", f"{a.nick}: SEND to {req.room!r} refused: {req.answer!r}")


def _rate_limited(answer: object) -> bool:
    return isinstance(answer, Error) and answer.code == ErrorCode.RATE_LIMITED


def judge(mx: Mixed, who: dict[str, frozenset[str]]) -> dict[str, int]:
    """File every problem in ``mx.problems``; returns volume figures for the report."""
    readings = [read(mx, a) for a in mx.actors if a.client is not None]
    for r in readings:
        pair_answers(mx, r)
    volume: Counter[str] = Counter()
    for room in ["lobby", *mx.rooms]:
        volume["deliveries"] += _messages(mx, readings, room)
        _presence(mx, readings, room, who.get(room))
    _whispers(mx, readings)
    _barriers(mx, readings)
    volume["messages"] = sum(q.accepted for a in mx.actors for q in a.requests if q.room)
    volume["whispers"] = sum(len(r.whispers) for r in readings)
    volume["pings"] = sum(len(a.pings) for a in mx.actors)
    return dict(volume)


# -- room messages ----------------------------------------------------------------------


def _messages(mx: Mixed, readings: list[Reading], room: str) -> int:
    accepted: dict[int, tuple[Actor, str]] = {}
    for a in mx.actors:
        for q in a.requests:
            if q.kind == "send" and q.room == room and isinstance(q.answer, Ack):
                if q.answer.seq in accepted:
                    mx.flag("ORD-1", f"{room}: seq {q.answer.seq} given to two messages")
                accepted[q.answer.seq] = (a, q.text)
    if room != "lobby" and sorted(accepted) != list(range(1, len(accepted) + 1)):
        gaps = sorted(set(range(1, max(accepted, default=0) + 1)) - set(accepted))
        mx.flag("ORD-1", f"{room}: ACK seqs miss {gaps[:5]} of 1..{max(accepted, default=0)}")
    names: dict[int, set[str]] = defaultdict(set)
    total = 0
    for r in readings:
        w = r.windows.get(room)
        if w is None:
            continue
        total += len(w.delivers)
        for _, d in w.delivers:
            names[d.seq].add(d.text)
        _member_messages(mx, r, room, w, accepted)
    for seq, texts in names.items():
        mine = accepted.get(seq)
        if len(texts) > 1 or (mine is not None and mine[1] not in texts):
            mx.flag("ORD-2", f"{room}: seq {seq} names {sorted(texts)[:3]} (ACKed: {mine})")
    return total


def _member_messages(
    mx: Mixed, r: Reading, room: str, w: Window, accepted: dict[int, tuple[Actor, str]]
) -> None:
    a = r.actor
    own = {q.log_index: q for q in a.requests if q.room == room and isinstance(q.answer, Ack)}
    merged = [(i, d.seq) for i, d in w.delivers]
    if not a.echo:
        merged = sorted(merged + [(i, q.seq) for i, q in own.items()])
    observed = [s for _, s in merged]
    early = [s for s in observed if s <= w.seq]
    if early:
        mx.flag("ORD-4", f"{a.nick} in {room}: seqs {early[:5]} up to its ROSTER seq {w.seq}")
    delivered = [d.seq for _, d in w.delivers]
    if any(x >= y for x, y in itertools.pairwise(delivered)):
        mx.flag("ORD-2", f"{a.nick} in {room}: DELIVER seqs not rising: {_around(delivered)}")
    gap = next((k for k, s in enumerate(observed) if s != w.seq + 1 + k), None)
    if gap is not None:
        seen = f"{a.nick} in {room} from seq {w.seq}: {_around(observed, w.seq)}"
        if _after_bye(r, merged[gap][0]):
            # It stops being a member at some moment after its BYE, unseen: a frame that still
            # comes after a gap there was sent to it once it was no longer a member.
            mx.flag("ORD-12", f"after its BYE, {seen}")
        else:
            mx.flag("ORD-5", seen)
    got = Counter(d.text for _, d in w.delivers)
    for _, d in w.delivers:
        by = accepted.get(d.seq)
        if by is not None and by[1] == d.text and d.sender != by[0].nick:
            mx.flag("NICK-5", f"{a.nick}: {d.text!r} stamped {d.sender!r}, sent by {by[0].nick}")
        if by is not None and by[0] is a and not a.echo:
            mx.flag("MSG-7", f"{a.nick} received its own {d.text!r} (seq {d.seq})")
    if r.stays_in(room):
        for seq, (sender, text) in accepted.items():
            if seq > w.seq and sender is not a and got[text] != 1:
                mx.flag("ORD-3", f"{a.nick} got {sender.nick}'s {text!r} {got[text]} times")
    if a.echo:  # a missing echo is a gap (ORD-5); a late one is misplaced (MSG-13)
        echoes = {d.seq: j for j, d in w.delivers if d.sender == a.nick}
        for i, q in own.items():
            if echoes.get(q.seq, i + 1) != i + 1:
                after = r.log[i + 1][1] if i + 1 < len(r.log) else None
                mx.flag("MSG-13", f"{a.nick}: after {q.answer!r} came {after!r}")


def _after_bye(r: Reading, index: int) -> bool:
    return r.actor.departure == "bye" and r.log[index][0] >= r.actor.t_departed


def _around(seqs: list[int], start: int | None = None) -> str:
    """The first place a seq list goes wrong, with a little context."""
    want = (start or 0) + 1
    for k, s in enumerate(seqs):
        if (start is not None and s != want + k) or (k and s <= seqs[k - 1]):
            return f"… {seqs[max(0, k - 3) : k + 3]} at position {k} of {len(seqs)}"
    return f"{len(seqs)} seqs"


# -- presence ---------------------------------------------------------------------------


def _presence(mx: Mixed, readings: list[Reading], room: str, who: frozenset[str] | None) -> None:
    ours = {a.nick for a in mx.actors}
    expected = {a.nick for a in mx.actors if room in a.rooms_at_end()}
    departures = {
        a.nick: a.departure
        for a in mx.actors
        if a.gone or (a.departure == "leave" and a.left_room == room)
    }
    if who is not None and who & ours != expected:
        mx.flag(
            "ROOM-11",
            f"WHO {room}: extra {_few(who & ours - expected)}, missing {_few(expected - who)}",
        )
    for r in readings:
        w = r.windows.get(room)
        if w is None:
            continue
        view = set(w.members)
        first_joined: dict[str, int] = {}
        gone: set[str] = set()
        a = r.actor
        for i, e in w.presence:
            if isinstance(e, Joined):
                if e.nick == a.nick:
                    mx.flag("PRES-3", f"{a.nick} got a JOINED about itself in {room}")
                elif e.nick in view:
                    mx.flag("PRES-1", f"{a.nick}: JOINED {e.nick} in {room} while it was there")
                view.add(e.nick)
                gone.discard(e.nick)  # another user of the server may come back
                first_joined.setdefault(e.nick, i)
                continue
            if e.nick in gone:
                mx.flag("PRES-4", f"{a.nick}: a second {e!r}")
            view.discard(e.nick)
            gone.add(e.nick)
            if e.nick in ours and e.nick not in departures:
                mx.flag("PRES-4", f"{a.nick}: {e!r} about a member that stayed")
            kind = departures.get(e.nick)
            if kind is not None and e.reason != REASONS[kind]:
                mx.flag("PRES-6", f"{a.nick}: {e!r} after {kind.upper()}")
            if kind == "bye" and e.text != BYE_TEXT:
                mx.flag("ERR-12", f"{a.nick}: {e!r} lacks the BYE text {BYE_TEXT!r}")
            # Until the nick comes back: another user of the server may leave and re-join.
            back = next(
                (k for k, f in w.presence if k > i and isinstance(f, Joined) and f.nick == e.nick),
                None,
            )
            late = [
                d.seq
                for j, d in w.delivers
                if j > i and (back is None or j < back) and d.sender == e.nick
            ]
            if late:
                mx.flag("PRES-5", f"{a.nick}: {e.nick}'s seqs {late[:3]} after its LEFT")
        for j, d in w.delivers:
            if d.sender not in w.members and first_joined.get(d.sender, -1) > j:
                mx.flag("PRES-2", f"{a.nick}: {d.sender}'s seq {d.seq} before its JOINED")
        if r.stays_in(room):
            seen = view & ours
            if expected - seen:
                mx.flag("PRES-1", f"{a.nick}'s view of {room} lacks {_few(expected - seen)}")
            if seen - expected:
                mx.flag("PRES-4", f"{a.nick}'s view of {room} still has {_few(seen - expected)}")


def _few(names: set[str] | frozenset[str]) -> str:
    return repr(sorted(names)[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")


# -- direct messages --------------------------------------------------------------------


def _whispers(mx: Mixed, readings: list[Reading]) -> None:
    meant: dict[str, tuple[Actor, int]] = {}  #: text -> (sender, addressee index)
    unsure: set[str] = set()
    for a in mx.actors:
        for q in a.requests:
            if q.kind != "direct":
                continue
            target = mx.target_of(q.target)
            if target is None:
                unsure.add(q.text)
            elif q.accepted:
                meant[q.text] = (a, target)
            elif q.answer is not None and not _rate_limited(q.answer):
                mx.flag("MSG-10", f"{a.nick}: DIRECT to {mx.actors[target].nick} refused")
    ours = {a.nick for a in mx.actors}
    wanted: dict[int, list[str]] = defaultdict(list)
    for text, (_, target) in meant.items():
        wanted[target].append(text)
    for r in readings:
        a = r.actor
        got = Counter(w.text for _, w in r.whispers)
        for _, w in r.whispers:
            if w.text in unsure or (w.text not in meant and w.sender not in ours):
                continue  # a race without one winner, or another user of the server
            sender, target = meant.get(w.text, (a, -1))
            if target != a.index:
                whom = mx.actors[target].nick if target >= 0 else "nobody"
                mx.flag("MSG-10", f"{a.nick} got {w.text!r}, meant for {whom}")
            elif w.sender != sender.nick:
                mx.flag("NICK-5", f"{a.nick}: {w.text!r} stamped {w.sender!r}")
        if a.done and not a.gone:
            bad = [t for t in wanted[a.index] if got[t] != 1]
            if bad:
                mx.flag("MSG-10", f"{a.nick}: {len(bad)} WHISPERs not once, e.g. {bad[:3]}")
        order: dict[str, list[int]] = defaultdict(list)
        for _, w in r.whispers:
            if w.text in meant and meant[w.text][1] == a.index:
                order[w.sender].append(int(w.text.split(".")[1]))
        for by, ks in order.items():
            if ks != sorted(ks):
                mx.flag("ORD-7", f"{a.nick}: WHISPERs from {by} out of order: {ks[:6]}")


# -- the PING barrier -------------------------------------------------------------------


def _barriers(mx: Mixed, readings: list[Reading]) -> None:
    """ORD-10/ORD-11 against timestamps: for each frame, the last PONG before it must answer a
    PING sent before the frame's cause was answered (or the frame overtook nothing)."""
    caused: dict[tuple[str, str], float] = {}  #: (room or "", text) -> when its ACK arrived
    joined_at: dict[tuple[str, str], float] = {}
    parted_at: dict[tuple[str, str], float] = {}
    for r in readings:
        a = r.actor
        for q in a.requests:
            if q.accepted:
                caused[(q.room, q.text)] = q.t_answer
        for room, w in r.windows.items():
            joined_at[(room, a.nick)] = r.log[w.start][0]
            if w.end is not None:
                parted_at[(room, a.nick)] = r.log[w.end][0]
    for r in readings:
        a = r.actor
        pongs = _Pongs(r.pongs)
        for q in a.requests:
            if q.log_index >= 0 and (late := pongs.overtaken(q.log_index, q.t_sent)):
                mx.flag(
                    "ORD-10",
                    f"{a.nick}: the answer to {q.text!r} after the PONG of a PING sent "
                    f"{late * 1000:.1f} ms after it",
                )
        for i, (_, e) in enumerate(r.log):
            cause = None
            if isinstance(e, Deliver) and e.sender != a.nick:
                cause = caused.get((e.room, e.text))
            elif isinstance(e, Whisper):
                cause = caused.get(("", e.text))
            elif isinstance(e, Joined):
                cause = joined_at.get((e.room, e.nick))
            elif isinstance(e, Left) and e.nick != a.nick:
                cause = parted_at.get((e.room, e.nick))
            if cause is not None and (late := pongs.overtaken(i, cause)):
                mx.flag(
                    "ORD-11",
                    f"{a.nick} got {e!r} after the PONG of a PING sent "
                    f"{late * 1000:.1f} ms after the request's answer",
                )


class _Pongs:
    """A client's PONGs (log index, when its PING was sent), in log order."""

    def __init__(self, pongs: list[tuple[int, float]]) -> None:
        self.marks = [i for i, _ in pongs]
        self.sent = [t for _, t in pongs]

    def overtaken(self, index: int, cause: float) -> float:
        """How long before the PING answered by the last PONG ahead of log entry ``index``
        its cause had happened (0.0: no such PONG overtook the entry)."""
        k = bisect.bisect_left(self.marks, index) - 1
        return self.sent[k] - cause if k >= 0 and self.sent[k] > cause else 0.0
