"""Delivery invariants checked over the recorded logs of every member after a room scenario.

Each function returns the problems it found as readable strings (empty: the invariant held),
so one run judges every invariant independently and a report can say exactly what broke.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from spec.events import Ack, Deliver

from .scenarios import Member

#: At most this many problems are listed per invariant.
SHOWN = 5


def delivers(member: Member, room: str) -> list[Deliver]:
    return [e for _, e in member.client.log if isinstance(e, Deliver) and e.room == room]


def acks(member: Member, room: str) -> list[Ack]:
    return [e for _, e in member.client.log if isinstance(e, Ack) and e.room == room]


def _accepted(members: Sequence[Member], room: str) -> dict[str, tuple[str, int, int]]:
    """text -> (sender nick, sender index, position in the sender's sequence)."""
    out: dict[str, tuple[str, int, int]] = {}
    for i, m in enumerate(members):
        for k, s in enumerate(s for s in m.sent if s.target == room and s.accepted):
            out[s.text] = (m.nick, i, k)
    return out


def _short(text: str) -> str:
    return repr(text if len(text) <= 24 else text[:24] + "…")


def _cap(problems: list[str]) -> list[str]:
    if len(problems) > SHOWN:
        return [*problems[:SHOWN], f"… and {len(problems) - SHOWN} more"]
    return problems


def exactly_once(members: Sequence[Member], room: str) -> list[str]:
    """Every accepted message reaches every other member once (§7.1, §8.3)."""
    accepted = _accepted(members, room)
    problems: list[str] = []
    for m in members:
        got = Counter(d.text for d in delivers(m, room))
        for text, (sender, _, _) in accepted.items():
            if sender == m.nick:
                continue
            n = got.get(text, 0)
            if n != 1:
                what = "never received" if n == 0 else f"received {n} times"
                problems.append(f"{m.nick} {what} {sender}'s {_short(text)}")
    return _cap(problems)


def no_echo(members: Sequence[Member], room: str) -> list[str]:
    """No member receives a DELIVER of its own message (§7.2, without ECHO)."""
    mine = {s.text: m.nick for m in members for s in m.sent}
    problems = [
        f"{m.nick} received its own {_short(d.text)} as DELIVER seq {d.seq}"
        for m in members
        for d in delivers(m, room)
        if mine.get(d.text) == m.nick
    ]
    return _cap(problems)


def sender_stamped(members: Sequence[Member], room: str) -> list[str]:
    """DELIVER.sender is the registered nick of the member who sent the text (§5.3)."""
    accepted = _accepted(members, room)
    problems = [
        f"{m.nick} got {_short(d.text)} stamped {d.sender!r}, sent by {accepted[d.text][0]!r}"
        for m in members
        for d in delivers(m, room)
        if d.text in accepted and d.sender != accepted[d.text][0]
    ]
    return _cap(problems)


def per_sender_fifo(members: Sequence[Member], room: str) -> list[str]:
    """Each member receives each sender's messages in the order they were sent (§8.2)."""
    accepted = _accepted(members, room)
    problems: list[str] = []
    for m in members:
        last: dict[str, int] = {}
        for d in delivers(m, room):
            if d.text not in accepted:
                continue
            sender, _, k = accepted[d.text]
            if k < last.get(sender, -1):
                problems.append(f"{m.nick} received {sender}'s message #{k} after #{last[sender]}")
            last[sender] = max(k, last.get(sender, -1))
    return _cap(problems)


def same_order(members: Sequence[Member], room: str) -> list[str]:
    """One total order per room: seqs rise for every member, and a seq names the same message
    for every member and for its sender's ACK (§8.1, §8.2)."""
    problems: list[str] = []
    by_seq: dict[int, set[str]] = defaultdict(set)
    for m in members:
        prev = -1
        for d in delivers(m, room):
            if d.seq <= prev:
                problems.append(f"{m.nick} received seq {d.seq} after seq {prev}")
            prev = max(prev, d.seq)
            by_seq[d.seq].add(d.text)
        for s in m.sent:
            if s.target == room and isinstance(s.answer, Ack):
                by_seq[s.answer.seq].add(s.text)
    problems += [
        f"seq {seq} names {len(texts)} different messages: {[_short(t) for t in sorted(texts)[:3]]}"
        for seq, texts in sorted(by_seq.items())
        if len(texts) > 1
    ]
    return _cap(problems)


def contiguous(members: Sequence[Member], room: str) -> list[str]:
    """Per member: DELIVER seqs plus own ACK seqs are join_seq+1 … with no gap or repeat,
    up to the last seq assigned (§8.4; every member stayed to the end)."""
    problems: list[str] = []
    seen_all = [d.seq for m in members for d in delivers(m, room)]
    seen_all += [a.seq for m in members for a in acks(m, room)]
    if not seen_all:
        return []
    last = max(seen_all)
    for m in members:
        seqs = Counter([d.seq for d in delivers(m, room)] + [a.seq for a in acks(m, room)])
        expected = set(range(m.join_seq + 1, last + 1))
        missing = sorted(expected - set(seqs))
        repeated = sorted(s for s, n in seqs.items() if n > 1)
        stray = sorted(set(seqs) - expected)
        if missing or repeated or stray:
            problems.append(
                f"{m.nick} (joined at seq {m.join_seq}, last {last}): "
                f"missing {missing[:5]}, repeated {repeated[:5]}, outside the range {stray[:5]}"
            )
    return _cap(problems)
