"""§3 Framing: the receive limits before and after WELCOME, frames written a byte at a time or
many to a write, and lists split across frames."""

from __future__ import annotations

import struct
import threading

from conformance.context import Case
from conformance.errors import SkipReason, Violation, skip
from conformance.markers import requirement
from conformance.steps import join, list_rooms
from spec.codec import encode
from spec.constants import (
    DEFAULT_MAX_FRAME,
    NICK_MAX_BYTES,
    ROOM_MAX_BYTES,
    Capability,
    ErrorCode,
)
from spec.events import Ack, Hello, Join, Ping, Pong, Roster, Send, Welcome, Who


def _unknown_frame(length: int, ftype: int = 0x60) -> bytes:
    return struct.pack(">IB", length, ftype) + b"\x00" * (length - 1)


@requirement("FRAME-7", "MAL-10", "MAL-11")
def test_receive_limit_before_and_after_welcome(cw: Case) -> None:
    """A server MUST use as its receive limit 65536 until it has sent WELCOME and max_frame
    from then on, and accept every client frame whose length is within that limit — so a frame
    of exactly the limit is judged by its type, not refused as too large."""
    first = cw.client("pre")
    first.send_raw(_unknown_frame(DEFAULT_MAX_FRAME), "unknown type, length 65536, first")
    first.expect_error([ErrorCode.PROTOCOL_VIOLATION], "FRAME-7")
    c = cw.registered("post")
    assert c.welcome is not None
    c.send_raw(_unknown_frame(c.welcome.max_frame), f"unknown type, length {c.welcome.max_frame}")
    c.expect_error([ErrorCode.UNKNOWN_TYPE], "FRAME-7")
    c.barrier("FRAME-7")


@requirement("FRAME-7", "ORD-8", "ORD-1")
def test_frames_written_one_byte_at_a_time(cw: Case) -> None:
    """Valid frames arriving one byte per TCP segment, or many in one write, are the same
    frames: the server MUST accept them and handle them in order."""
    room = cw.room()
    c = cw.client("bytes")
    nick = cw.nick("bytes")
    c.send_bytewise(encode(Hello(nick=nick)), "HELLO")
    welcome, _ = c.expect(Welcome, "WELCOME", "FRAME-7")
    c.welcome = welcome
    c.send_bytewise(encode(Join(room)) + encode(Send(room, "drip")) + encode(Ping(9)), "3 frames")
    kinds: list[str] = []
    while len(kinds) < 3:
        got, _ = c.expect_where(
            lambda e: (isinstance(e, Roster) and e.room == room) or isinstance(e, Ack | Pong),
            "ROSTER, ACK and PONG",
            "FRAME-7",
        )
        kinds.append(type(got).__name__)
    cw.check(kinds == ["Roster", "Ack", "Pong"], "ORD-8", "ROSTER, ACK, PONG", repr(kinds))
    assert c.welcome is not None
    count = 100 if c.welcome.rate == 0 else max(1, c.welcome.burst - 1)  # stay within §13
    if c.welcome.rate:
        threading.Event().wait(max(1.0, c.welcome.burst / c.welcome.rate))  # refill (FLOOD-3)
    burst = b"".join(encode(Send(room, f"batch {i}")) for i in range(count))
    c.send_raw(burst, f"{count} SENDs in one write")
    seqs: list[int] = []
    while len(seqs) < count:
        ack, _ = c.expect(Ack, "ACK", "FRAME-7")
        seqs.append(ack.seq)
    cw.check(seqs == sorted(seqs), "ORD-8", "ACKs in the order of the SENDs", repr(seqs[:5]))
    cw.check(seqs == list(range(2, count + 2)), "ORD-1", f"ACK seqs 2..{count + 1}", repr(seqs[:5]))


@requirement("FRAME-9", "FRAME-10", "FRAME-11", "FRAME-5")
def test_long_roster_is_split(cw: Case) -> None:
    """A server MUST send a list that would not fit into one frame as several parts, more=1 on
    all but the last; all parts of one ROSTER carry the same room and seq; the parts come back
    to back."""
    probe = cw.registered("probe")
    assert probe.welcome is not None
    max_frame = probe.welcome.max_frame
    need = max_frame // (NICK_MAX_BYTES + 1) + 2
    if need > 4 * cw.options.clients:
        skip(
            SkipReason.NOT_APPLICABLE,
            f"a ROSTER over max_frame {max_frame} needs {need} members of 32-byte nicks (the suite"
            f" opens at most {4 * cw.options.clients}): advertise a smaller max_frame (2048 is"
            " enough) or raise --clients",
        )
    room = cw.room("big")

    def member(i: int) -> str:
        c = cw.client(f"big{i}")
        nick = cw.nick(f"b{i}").ljust(NICK_MAX_BYTES, "x")
        c.register(nick, caps=int(Capability.QUIET))
        join(c, room)
        return nick

    nicks = cw.parallel(need, member)
    probe.keep_raw = True
    probe.send_frame(Who(room))
    parts = probe.read_roster(room, "FRAME-9")  # checks FRAME-10 and FRAME-11 on the way
    cw.ok("FRAME-10", "FRAME-11")
    members = [m for p in parts for m in p.members]
    cw.check(len(parts) > 1, "FRAME-9", "several parts", f"{len(parts)} part(s)")
    cw.check(
        all(p.more == 1 for p in parts[:-1]) and parts[-1].more == 0,
        "FRAME-9",
        "more=1 on all parts but the last",
        repr([p.more for p in parts]),
    )
    cw.check(sorted(members) == sorted(nicks), "FRAME-9", f"{need} members", f"{len(members)}")
    big = [len(r) - 4 for r in probe.raw_frames if len(r) - 4 > max_frame]
    cw.check(not big, "FRAME-5", f"every part within max_frame {max_frame}", repr(big[:3]))
    if not parts:
        raise Violation("FRAME-9", "a ROSTER", "nothing")


#: The most rooms the ROOMS case will create (and fillers it will register, × --clients).
LIST_ROOMS_BOUND = 1000
LIST_FILLERS_PER_CLIENT = 4


@requirement("FRAME-9", "FRAME-11", "FRAME-5", "ROOM-13")
def test_long_rooms_list_is_split(cw: Case) -> None:
    """A ROOMS list that would not fit into one frame MUST be sent as several parts, more=1 on
    all but the last, back to back; together they name every room once with its member
    count. The case fills the server with rooms of 32-byte names, a few per client (within
    max_rooms), until their entries alone overflow max_frame."""
    probe = cw.registered("probe", int(Capability.QUIET))
    assert probe.welcome is not None
    max_frame, max_rooms = probe.welcome.max_frame, probe.welcome.max_rooms
    entry = 1 + ROOM_MAX_BYTES + 4  # str8 name, u32 members
    need = (max_frame - 4) // entry + 2  # more + count + type byte leave max_frame - 4
    per_client = max_rooms - 1  # lobby counts (ROOM-7)
    if per_client < 1:
        skip(SkipReason.NOT_APPLICABLE, f"max_rooms {max_rooms} leaves no room beside lobby")
    fillers = -(-need // per_client)
    if need > LIST_ROOMS_BOUND or fillers > LIST_FILLERS_PER_CLIENT * cw.options.clients:
        skip(
            SkipReason.LIMIT_TOO_LONG,
            f"a ROOMS list over max_frame {max_frame} needs {need} rooms of 32-byte names"
            f" ({fillers} clients at max_rooms {max_rooms}): advertise a smaller max_frame"
            " (2048 is enough) or raise --clients",
        )
    rooms = [cw.room("list").ljust(ROOM_MAX_BYTES, "x") for _ in range(need)]
    shared = rooms[: min(2, per_client)]  # the probe joins these too: 2 members each

    def fill(i: int) -> None:
        c = cw.registered(f"filler{i}", int(Capability.QUIET))
        for room in rooms[i * per_client : (i + 1) * per_client]:
            join(c, room)

    cw.parallel(fillers, fill)
    for room in shared:
        join(probe, room)
    probe.keep_raw = True
    parts = list_rooms(probe, "FRAME-9")  # checks FRAME-11 on the way
    cw.ok("FRAME-11")
    cw.check(len(parts) > 1, "FRAME-9", "several parts", f"{len(parts)} part(s)")
    cw.check(
        all(p.more == 1 for p in parts[:-1]) and parts[-1].more == 0,
        "FRAME-9",
        "more=1 on all parts but the last",
        repr([p.more for p in parts]),
    )
    big = [len(r) - 4 for r in probe.raw_frames if len(r) - 4 > max_frame]
    cw.check(not big, "FRAME-5", f"every part within max_frame {max_frame}", repr(big[:3]))
    entries = [e for p in parts for e in p.rooms]
    names = [e.name for e in entries]
    counts = {e.name: e.members for e in entries}
    twice = sorted({n for n in names if names.count(n) > 1})
    cw.check(not twice, "ROOM-13", "each room once over all parts", f"repeated {twice[:3]}")
    want = {room: 2 if room in shared else 1 for room in rooms}
    wrong = {r: counts.get(r) for r, n in want.items() if counts.get(r) != n}
    cw.check(
        not wrong,
        "ROOM-13",
        f"all {need} rooms made here, with their member counts",
        f"{len(wrong)} missing or miscounted, e.g. {dict(list(wrong.items())[:3])}",
    )
    in_lobby = fillers + 1
    cw.check(
        counts.get("lobby", 0) >= in_lobby,
        "ROOM-13",
        f"lobby with at least {in_lobby} members",
        f"lobby: {counts.get('lobby')}",
    )
