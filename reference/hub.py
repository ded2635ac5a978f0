"""The room hub: nick registry, rooms, sequence numbers, fan-out and presence (§5-§9).

It holds no sockets. A member is any object with ``nick``, ``quiet``, ``echo`` and a
non-blocking ``push(frame_bytes)``; the server's sessions are members, and the hub tests use
fakes. Every frame about a room is pushed while that room's lock is held, so all members see
one order of DELIVER/JOINED/LEFT per room (§8.2), a joiner's ROSTER precedes every DELIVER it
gets (§8.4), and a leaver's LEFT follows its last DELIVER (§9.2).

Locks: ``_lock`` guards the nick registry, the room table and who is in which room; each
room has its own lock for its members and seq. Order is always hub lock, then room lock.
Fan-out (``send``) takes only the room lock. A member's own rooms change only on its own
thread (join, leave, depart), so that thread may read them without the hub lock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from spec.constants import DEFAULT_MAX_FRAME, DEFAULT_ROOM, ErrorCode, LeaveReason
from spec.names import fold, is_valid_nick, is_valid_room

from . import frames


class Member(Protocol):
    """What the hub needs of a client."""

    nick: str
    quiet: bool
    echo: bool

    def push(self, frame: bytes) -> None:
        """Queue bytes for this client; must not block."""


class Room:
    """A room and its members. ``members`` maps each member to its nick as a ready str8."""

    __slots__ = ("alive", "lock", "members", "name", "name8", "seq", "watchers")

    def __init__(self, name: str) -> None:
        self.name = name
        self.name8 = frames.str8(name)
        self.lock = threading.Lock()
        self.seq = 0
        self.members: dict[Member, bytes] = {}
        #: Members that get JOINED/LEFT (not QUIET): kept apart so presence in a big room of
        #: quiet bots costs nothing per bot.
        self.watchers: dict[Member, None] = {}
        #: False once the last member left; a later JOIN makes a new Room (seq from 0).
        self.alive = True


class Hub:
    def __init__(
        self,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_rooms: int = 16,
        default_room: str = DEFAULT_ROOM,
    ) -> None:
        self.max_frame = max_frame
        self.max_rooms = max_rooms
        self.default_room = default_room
        self._lock = threading.Lock()
        self._nicks: dict[str, Member] = {}
        self._rooms: dict[str, Room] = {}
        self._joined: dict[Member, dict[str, Room]] = {}

    # -- registry -----------------------------------------------------------------------

    def register(self, member: Member, greeting: bytes) -> bool:
        """Take ``member.nick`` (case-insensitively unique, §5.2) and place the member in the
        default room; its first frame is ``greeting`` (the WELCOME). False if the nick is
        held."""
        key = fold(member.nick)
        with self._lock:
            if key in self._nicks:
                return False
            self._joined[member] = {}
            self._join_locked(member, self.default_room, not member.quiet, greeting)
            self._nicks[key] = member  # visible (to DIRECT) only once WELCOME is queued
        return True

    def depart(
        self, member: Member, reason: LeaveReason, text: str = "", notify: bool = True
    ) -> None:
        """The session ended: release the nick, then leave every room (LEFT to the others
        unless ``notify`` is False). Holding the hub lock throughout means a new holder of
        the nick cannot appear in a room before the old one's LEFT."""
        with self._lock:
            key = fold(member.nick)
            if self._nicks.get(key) is member:
                del self._nicks[key]
            rooms = self._joined.pop(member, None)
            for room in (rooms or {}).values():
                self._remove_locked(member, room, reason, text, notify=notify, tell_self=False)

    def lookup(self, nick: str) -> Member | None:
        return self._nicks.get(fold(nick)) if is_valid_nick(nick) else None

    @property
    def registered(self) -> int:
        return len(self._nicks)

    # -- rooms --------------------------------------------------------------------------

    def rooms_of(self, member: Member) -> dict[str, Room]:
        """The member's rooms by canonical name (call from the member's own thread)."""
        return self._joined.get(member, {})

    def room(self, name: str) -> Room | None:
        return self._rooms.get(fold(name))

    def join(self, member: Member, name: str) -> ErrorCode | None:
        """§6.2: ROSTER to the joiner, JOINED to the others; again only ROSTER if joined."""
        if not is_valid_room(name):
            return ErrorCode.ROOM_INVALID
        key = fold(name)
        with self._lock:
            mine = self._joined[member]
            room = mine.get(key)
            if room is not None:
                with room.lock:
                    self._push_roster(member, room)
                return None
            if len(mine) >= self.max_rooms:
                return ErrorCode.TOO_MANY_ROOMS
            self._join_locked(member, key, with_roster=True)
        return None

    def leave(self, member: Member, name: str) -> ErrorCode | None:
        """§6.3: LEFT(PART) to the leaver and to the others."""
        if not is_valid_room(name):
            return ErrorCode.ROOM_INVALID
        with self._lock:
            room = self._joined[member].pop(fold(name), None)
            if room is None:
                return ErrorCode.NOT_IN_ROOM
            self._remove_locked(member, room, LeaveReason.PART, "", notify=True, tell_self=True)
        return None

    def who(self, member: Member, name: str) -> ErrorCode | None:
        """§6.4: the room's ROSTER to ``member``, who need not be in it."""
        if not is_valid_room(name):
            return ErrorCode.ROOM_INVALID
        room = self._rooms.get(fold(name))
        if room is None:
            return ErrorCode.NO_SUCH_ROOM
        with room.lock:
            if not room.alive:
                return ErrorCode.NO_SUCH_ROOM
            self._push_roster(member, room)
        return None

    def list_rooms(self, member: Member) -> None:
        """§6.5: every room and its member count, in ROOMS frames."""
        with self._lock:
            entries = [frames.room_entry(r.name8, len(r.members)) for r in self._rooms.values()]
        member.push(frames.rooms(entries, self.max_frame))

    # -- messages -----------------------------------------------------------------------

    def send(self, member: Member, name: str, texts16: Sequence[bytes]) -> ErrorCode | None:
        """§7.1: one or more accepted messages (each text already a str16) to a room.

        Under the room lock: assign consecutive seqs, encode each DELIVER once, hand the same
        bytes to every other member, and the ACKs (each followed by its DELIVER under ECHO)
        to the sender. Batching several messages makes one push per member per batch.
        """
        mine = self._joined.get(member, {})
        room = mine.get(name)  # ``name`` is most often the key already (folded and valid)
        if room is None:
            if not is_valid_room(name):
                return ErrorCode.ROOM_INVALID
            room = mine.get(fold(name))
            if room is None:
                return ErrorCode.NOT_IN_ROOM
        room8 = room.name8
        with room.lock:
            first = room.seq + 1
            if len(texts16) == 1:  # most sends, at light load: no lists to build
                room.seq = first
                data = frames.deliver(room8, first, room.members[member], texts16[0])
                answer = frames.ack(room8, first)
                if member.echo:
                    answer += data
            else:
                room.seq += len(texts16)
                sender8 = room.members[member]
                if member.echo:
                    delivers = frames.delivers(room8, first, sender8, texts16)
                    acks = frames.acks(room8, first, len(texts16))
                    data = b"".join(delivers)
                    answer = b"".join(a + d for a, d in zip(acks, delivers, strict=True))
                else:
                    data, answer = frames.delivers_acks(room8, first, sender8, texts16)
            for other in room.members:
                if other is not member:
                    other.push(data)
            member.push(answer)
        return None

    def direct(self, member: Member, nick: str, text: str) -> Member | None:
        """§7.3: WHISPER to the holder of ``nick``, ACK{"", 0} to the sender; None (and no
        push) if nobody holds it."""
        target = self.lookup(nick)
        if target is None:
            return None
        target.push(frames.whisper(frames.str8(member.nick), text))
        member.push(frames.ack(b"\x00", 0))
        return target

    def sync(self, member: Member) -> None:
        """Nothing to wait for: every frame a request causes is produced before its answer."""

    # -- internals ----------------------------------------------------------------------

    def _join_locked(
        self, member: Member, key: str, with_roster: bool, greeting: bytes = b""
    ) -> None:
        """Others hear JOINED before the joiner gets its ROSTER (or WELCOME), so a client that
        has seen its own ROSTER knows the notices are queued (a causal barrier)."""
        room = self._rooms.get(key)
        if room is None:
            room = self._rooms[key] = Room(key)
        nick8 = frames.str8(member.nick)
        with room.lock:
            notice = frames.joined(room.name8, nick8)
            for watcher in room.watchers:
                watcher.push(notice)
            room.members[member] = nick8
            if not member.quiet:
                room.watchers[member] = None
            names8 = list(room.members.values())
            answer = (
                frames.roster(room.name8, room.seq, names8, self.max_frame) if with_roster else b""
            )
            if greeting or answer:
                member.push(greeting + answer)
        self._joined[member][key] = room

    def _remove_locked(
        self,
        member: Member,
        room: Room,
        reason: LeaveReason,
        text: str,
        *,
        notify: bool,
        tell_self: bool,
    ) -> None:
        with room.lock:
            nick8 = room.members.pop(member)
            room.watchers.pop(member, None)
            if notify or tell_self:
                notice = frames.left(room.name8, nick8, reason, text)
                if notify:
                    for watcher in room.watchers:
                        watcher.push(notice)
                if tell_self:
                    member.push(notice)
            if not room.members:
                room.alive = False
                del self._rooms[room.name]

    def _push_roster(self, member: Member, room: Room) -> None:
        member.push(
            frames.roster(room.name8, room.seq, list(room.members.values()), self.max_frame)
        )
