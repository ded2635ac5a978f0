"""§6 Rooms: names, lifetime, JOIN, LEAVE, WHO, LIST."""

from __future__ import annotations

from conformance.client import MockClient
from conformance.context import Case
from conformance.errors import SkipReason, skip
from conformance.markers import requirement
from conformance.predicates import deliver_of, joined_about
from conformance.steps import join, leave, list_rooms, nothing_like, refused, send, who
from spec.constants import ErrorCode, LeaveReason
from spec.events import Join, Leave, RoomEntry, Send, Who

BAD_ROOMS = ["", "r" * 33, "two words", "dot.ted", "é"]


@requirement("ROOM-1")
def test_room_syntax_is_checked_first(cw: Case) -> None:
    """A server MUST refuse with the non-fatal ROOM_INVALID a JOIN, LEAVE, WHO or SEND whose
    room name breaks the room syntax, before any other check of that request."""
    c = cw.registered("r")
    too_long = "x" * (c.welcome.max_text + 1 if c.welcome else 5000)
    for room in BAD_ROOMS:
        for frame in (Join(room), Leave(room), Who(room), Send(room, too_long)):
            c.send_frame(frame)
            refused(c, ErrorCode.ROOM_INVALID, "ROOM-1")
    c.barrier("ROOM-1")


def _rooms(client: MockClient) -> list[RoomEntry]:
    return [e for part in list_rooms(client) for e in part.rooms]


@requirement("ROOM-2")
def test_room_names_are_sent_in_lower_case(cw: Case) -> None:
    """A server MUST write every room name it sends, in every frame, in canonical form."""
    room = cw.room("MiXeD")
    shouted = room.upper()
    a, b = cw.registered("a"), cw.registered("b")
    frames = [join(a, shouted.title(), "ROOM-2"), join(b, shouted, "ROOM-2")]
    joined, _ = a.expect(joined_about(room, b.nick), f"JOINED in {room!r}", "ROOM-2")
    ack = send(a, shouted, "case", "ROOM-2")
    deliver, _ = b.expect(deliver_of(room, "case"), f"DELIVER in {room!r}", "ROOM-2")
    entries = [e for e in _rooms(a) if e.name.lower() == room]
    left = leave(b, shouted, "ROOM-2")
    names = [f.room for f in frames] + [ack.room, left.room] + [e.name for e in entries]
    names += [joined.room, deliver.room]
    wrong = [n for n in names if n != room]
    cw.check(not wrong, "ROOM-2", f"every room name as {room!r}", repr(wrong))


@requirement("ROOM-4", "ORD-1")
def test_empty_room_is_forgotten(cw: Case) -> None:
    """A server MUST forget a room, its sequence numbers included, when its last member
    leaves, so that a later JOIN creates it anew and its first message gets seq 1."""
    room = cw.room()
    a = cw.registered("a")
    join(a, room)
    seqs = [send(a, room, f"m{i}").seq for i in range(3)]
    cw.check(seqs == [1, 2, 3], "ORD-1", "seqs 1, 2, 3 in a new room", repr(seqs))
    leave(a, room)
    a.send_frame(Who(room))
    refused(a, ErrorCode.NO_SUCH_ROOM, "ROOM-4")
    roster = join(a, room, "ROOM-4")
    cw.check(roster.seq == 0, "ROOM-4", "seq 0 for the room created anew", f"seq {roster.seq}")
    again = send(a, room, "first again").seq
    cw.check(again == 1, "ROOM-4", "seq 1 for its first message", f"seq {again}")


@requirement("ROOM-5", "ROOM-11")
def test_join_roster_and_who(cw: Case) -> None:
    """A server MUST answer an accepted JOIN with the ROSTER of the room, whose members include
    the joiner and whose seq is the last sequence number assigned in the room; WHO is answered
    with the ROSTER whether or not the asker is a member."""
    room = cw.room()
    a, b, outsider = cw.registered("a"), cw.registered("b"), cw.registered("outsider")
    first = join(a, room)
    cw.check(first.seq == 0, "ROOM-5", "seq 0 in a new room", f"seq {first.seq}")
    last = [send(a, room, f"before b {i}") for i in range(3)][-1].seq
    roster = join(b, room)
    cw.check(
        set(roster.members) == {a.nick, b.nick},
        "ROOM-5",
        f"members {a.nick}, {b.nick}",
        repr(roster.members),
    )
    cw.check(roster.seq == last, "ROOM-5", f"seq {last}", f"seq {roster.seq}")
    seen = who(outsider, room)
    cw.check(
        set(seen.members) == {a.nick, b.nick} and seen.seq == last,
        "ROOM-11",
        f"members {a.nick}, {b.nick} and seq {last}",
        f"{seen.members} seq {seen.seq}",
    )


@requirement("ROOM-6")
def test_second_join_answers_roster_only(cw: Case) -> None:
    """A JOIN for a room the client is already a member of MUST be answered with the room's
    ROSTER again, with no error and no JOINED notice to anyone."""
    room = cw.room()
    a, b = cw.registered("a"), cw.registered("b")
    join(a, room)
    join(b, room)
    a.barrier("ROOM-6")
    again = join(b, room, "ROOM-6")
    cw.check(b.nick in again.members, "ROOM-6", "the ROSTER again", repr(again))
    nothing_like(a, joined_about(room, b.nick), "second JOINED", "ROOM-6")


@requirement("ROOM-7", "ERR-3", "ROOM-14")
def test_max_rooms(cw: Case) -> None:
    """A server MUST refuse with the non-fatal TOO_MANY_ROOMS a JOIN that would make the client
    a member of more than max_rooms rooms, lobby counted while the client is in it; and it
    checks room syntax, then membership, before the room count (and for LEAVE and WHO,
    syntax before membership or existence)."""
    c = cw.registered("busy")
    assert c.welcome is not None
    limit = c.welcome.max_rooms
    if limit > 500:
        skip(SkipReason.NOT_APPLICABLE, f"max_rooms {limit} is too many rooms to fill")
    base = cw.room("many")
    for i in range(limit - 1):  # lobby is the first
        join(c, f"{base}-{i}", "ROOM-7")
    c.send_frame(Join(f"{base}-x"))
    refused(c, ErrorCode.TOO_MANY_ROOMS, "ROOM-7")
    c.send_frame(Join("bad room!"))  # full, and invalid: syntax comes first
    refused(c, ErrorCode.ROOM_INVALID, "ROOM-14")
    again = join(c, f"{base}-0", "ROOM-14")  # full, and a member: the ROSTER again
    cw.check(c.nick in again.members, "ROOM-14", "the ROSTER of a room it is in", repr(again))
    for frame in (Leave("bad room!"), Who("bad room!")):  # not a member / no such room
        c.send_frame(frame)
        refused(c, ErrorCode.ROOM_INVALID, "ROOM-14")
    send(c, f"{base}-0", "still a member", "ERR-3")  # the refusal changed nothing
    leave(c, "lobby", "ROOM-10")
    join(c, f"{base}-x", "ROOM-7")  # lobby no longer counts


@requirement("ROOM-8", "ROOM-9", "PRES-4")
def test_leave(cw: Case) -> None:
    """A server MUST answer an accepted LEAVE with LEFT{room, own nick, PART, ""}, and refuse
    with NOT_IN_ROOM a LEAVE for a room the client is not a member of."""
    room = cw.room()
    a, b = cw.registered("a"), cw.registered("b")
    join(a, room)
    join(b, room)
    left = leave(b, room)
    cw.check(
        left.reason == LeaveReason.PART and left.text == "",
        "ROOM-8",
        "reason PART and empty text",
        repr(left),
    )
    a.expect_where(lambda e: e == left, f"LEFT of {b.nick} for the remaining member", "PRES-4")
    for other in (room, cw.room("never")):
        b.send_frame(Leave(other))
        refused(b, ErrorCode.NOT_IN_ROOM, "ROOM-9")


@requirement("ROOM-10", "MSG-2")
def test_lobby_can_be_left(cw: Case) -> None:
    """A server MUST let a client leave lobby like any other room."""
    a, b = cw.registered("a"), cw.registered("b")
    leave(a, "lobby", "ROOM-10")
    a.send_frame(Send("lobby", "not a member"))
    refused(a, ErrorCode.NOT_IN_ROOM, "MSG-2")
    roster = who(b, "lobby")
    cw.check(a.nick not in roster.members, "ROOM-10", f"{a.nick} gone", repr(roster.members))


@requirement("ROOM-12")
def test_who_of_missing_room(cw: Case) -> None:
    """A server MUST refuse with the non-fatal NO_SUCH_ROOM a WHO for a room that does not
    exist."""
    c = cw.registered("w")
    c.send_frame(Who(cw.room("nobody-here")))
    refused(c, ErrorCode.NO_SUCH_ROOM, "ROOM-12")


@requirement("ROOM-13")
def test_list(cw: Case) -> None:
    """A server MUST answer LIST with ROOMS naming every room that exists, once each, with its
    number of members."""
    r1, r2 = cw.room("one"), cw.room("two")
    a, b = cw.registered("a"), cw.registered("b")
    join(a, r1)
    join(b, r1)
    join(b, r2)
    entries = _rooms(a)
    names = [e.name for e in entries]
    counts = {e.name: e.members for e in entries}
    cw.check(len(names) == len(set(names)), "ROOM-13", "each room once", repr(names))
    cw.check(
        counts.get(r1) == 2 and counts.get(r2) == 1 and counts.get("lobby", 0) >= 2,
        "ROOM-13",
        f"{r1}: 2, {r2}: 1, lobby: at least 2",
        repr(counts),
    )
    leave(b, r2)
    after = {e.name for e in _rooms(a)}
    cw.check(r2 not in after, "ROOM-13", f"{r2} gone once empty", repr(sorted(after)))
