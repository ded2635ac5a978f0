"""Steps that many cases share: joining, sending with an answer, proving that nothing came."""

from __future__ import annotations

from collections.abc import Sequence

from spec.constants import ErrorCode
from spec.events import (
    Ack,
    Direct,
    Error,
    Join,
    Leave,
    Left,
    ListRooms,
    Rooms,
    Roster,
    Send,
    Who,
)

from .client import Incoming, MockClient, Predicate, Wanted, describe
from .errors import Violation
from .predicates import answer


def join(client: MockClient, room: str, req: str = "ROOM-5") -> Roster:
    """JOIN and read the answering ROSTER (all parts merged into the last one's fields)."""
    client.send_frame(Join(room))
    parts = client.read_roster(room, req)
    members = tuple(m for p in parts for m in p.members)
    return Roster(room=parts[-1].room, seq=parts[-1].seq, members=members)


def join_all(clients: Sequence[MockClient], room: str, req: str = "ROOM-5") -> list[Roster]:
    return [join(c, room, req) for c in clients]


def who(client: MockClient, room: str, req: str = "ROOM-11") -> Roster:
    client.send_frame(Who(room))
    parts = client.read_roster(room, req)
    members = tuple(m for p in parts for m in p.members)
    return Roster(room=parts[-1].room, seq=parts[-1].seq, members=members)


def list_rooms(client: MockClient, req: str = "ROOM-13") -> list[Rooms]:
    """LIST and read the ROOMS parts up to the one with more=0 (§3.3 splitting). The parts
    must come back to back (FRAME-11)."""
    client.send_frame(ListRooms())
    parts: list[Rooms] = []
    while True:
        item, skipped = client.expect(Rooms, "ROOMS", req)
        if parts and skipped:
            raise Violation(
                "FRAME-11", "ROOMS parts back to back", ", ".join(map(describe, skipped[:3]))
            )
        parts.append(item)
        if not item.more:
            return parts


def leave(client: MockClient, room: str, req: str = "ROOM-8") -> Left:
    client.send_frame(Leave(room))
    item, _ = client.expect(
        Wanted(Left, lambda e: e.room.lower() == room.lower() and e.nick == client.nick),
        f"own LEFT for {room!r}",
        req,
    )
    return item


def answer_to(client: MockClient, req: str) -> Ack | Error:
    item, _ = client.expect(answer(), "ACK or non-fatal ERROR", req)
    return item


def send(client: MockClient, room: str, text: str, req: str = "MSG-4") -> Ack:
    """SEND that must be accepted; returns its ACK."""
    client.send_frame(Send(room, text))
    got = answer_to(client, req)
    if not isinstance(got, Ack):
        raise Violation(req, f"ACK for SEND to {room!r}", describe(got))
    return got


def direct(client: MockClient, nick: str, text: str, req: str = "MSG-11") -> Ack:
    client.send_frame(Direct(nick, text))
    got = answer_to(client, req)
    if not isinstance(got, Ack):
        raise Violation(req, f"ACK for DIRECT to {nick!r}", describe(got))
    return got


def refused(client: MockClient, code: ErrorCode, req: str) -> Error:
    """The next answer must be the non-fatal ERROR ``code``."""
    got = answer_to(client, req)
    if not isinstance(got, Error) or got.code != code:
        raise Violation(req, f"ERROR {code.name}", describe(got))
    return got


def nothing_like(client: MockClient, predicate: Predicate, what: str, req: str) -> list[Incoming]:
    """PING barrier; ``what`` (matching ``predicate``) must not be among the frames before the
    PONG. Returns those frames."""
    before = client.barrier(req)
    bad = [e for e in before if predicate(e)]
    if bad:
        raise Violation(req, f"no {what}", ", ".join(describe(e) for e in bad[:3]))
    return before
