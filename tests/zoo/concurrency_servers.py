"""Broken servers whose fault shows only under mixed concurrent load: several busy rooms at
once, registration bursts, nick races, departures while others send, PINGs amid traffic.

Each is the reference server with one fault, made by overriding as little as possible; the
docstring says what is wrong. The first seven are the gaps of issue 15 (faults the suite's
single-room scenarios passed); the rest are further faults a busy server gets wrong. Each must
be caught by the mixed scenario (conformance/cases/test_15_mixed.py) in every run.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from conformance.mixed_judge import JUDGED
from reference import frames
from reference.hub import Hub, Member, Room
from reference.server import Server, ServerConfig
from reference.session import Ending, Session
from spec.codec import encode
from spec.connection import State
from spec.constants import FrameType, LeaveReason
from spec.events import Pong
from spec.names import fold
from tests.zoo.servers import Specimen, _FilteringSession, deliver_seq, split_frames

#: A room counts as busy for this long after one of its messages (the notice batch window).
BUSY = 0.02


class StaleRecipientsHub(Hub):
    """Keeps each sender's recipient list from its previous SEND and adds the next room's
    members to it instead of starting afresh, until the sender sends anything but SEND: when
    one read holds SENDs to two rooms, the second room's messages also reach the first room's
    members (isolation, ORD-12). With one busy room at a time it never shows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.previous: dict[Member, Room] = {}

    def send(self, member: Member, name: str, texts16: Sequence[bytes]) -> Any:
        room = self._joined.get(member, {}).get(fold(name))
        stale = self.previous.get(member)
        if room is None or stale is None or stale is room or member.echo:
            if room is not None:
                self.previous[member] = room
            return super().send(member, name, texts16)
        with stale.lock:
            extra = [m for m in stale.members if m is not member]
        with room.lock:
            sender8 = room.members[member]
            delivers, acks = [], []
            for text16 in texts16:
                room.seq += 1
                delivers.append(frames.deliver(room.name8, room.seq, sender8, text16))
                acks.append(frames.ack(room.name8, room.seq))
            data = b"".join(delivers)
            for other in {**room.members, **dict.fromkeys(extra)}:
                if other is not member:
                    other.push(data)
            member.push(b"".join(acks))
        self.previous[member] = room
        return None


class StaleRecipientsSession(Session):
    """(With StaleRecipientsHub: any frame but SEND starts a fresh recipient list.)"""

    def dispatch(self, ftype: int, body: bytes) -> Ending | None:
        self.hub.previous.pop(self, None)  # type: ignore[attr-defined]
        return super().dispatch(ftype, body)


class AcceptSnapshotSession(Session):
    """(With AcceptSnapshotHub: notes who was in the lobby when the connection was accepted.)"""

    def __init__(self, server: Server, sock: socket.socket, peer: str) -> None:
        super().__init__(server, sock, peer)
        lobby = self.hub.room(self.hub.default_room)  # type: ignore[attr-defined]
        self.lobby_at_accept = frozenset(lobby.members) if lobby is not None else frozenset()


class AcceptSnapshotHub(Hub):
    """Registers a client against the lobby as it was when its connection was accepted (work
    done early to make registration cheap): its ROSTER lacks, and its JOINED misses, everyone
    who registered in between — simultaneous registrants never see each other (PRES-1), while
    clients that connect and register one after another are served right."""

    def _join_locked(
        self, member: Member, key: str, with_roster: bool, greeting: bytes = b""
    ) -> None:
        known: frozenset[Member] | None = getattr(member, "lobby_at_accept", None)
        room = self._rooms.get(key)
        if not greeting or known is None or room is None:
            super()._join_locked(member, key, with_roster, greeting)
            return
        nick8 = frames.str8(member.nick)
        with room.lock:
            notice = frames.joined(room.name8, nick8)
            for watcher in room.watchers:
                if watcher in known:
                    watcher.push(notice)
            room.members[member] = nick8
            if not member.quiet:
                room.watchers[member] = None
            names8 = [n for m, n in room.members.items() if m in known or m is member]
            roster = frames.roster(room.name8, room.seq, names8, self.max_frame)
            member.push(greeting + (roster if with_roster else b""))
        self._joined[member][key] = room


class _BusyRooms(Hub):
    """Remembers when each room last had a message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_message: dict[str, float] = {}

    def send(self, member: Member, name: str, texts16: Sequence[bytes]) -> Any:
        code = super().send(member, name, texts16)
        if code is None:
            self.last_message[fold(name)] = time.monotonic()
        return code

    def busy(self, room: Room) -> bool:
        return time.monotonic() - self.last_message.get(room.name, 0.0) < BUSY


class LostLeftWhileBusyHub(_BusyRooms):
    """Queues the LEFT of a lost connection (FIN or RST) into the room's current message batch
    and loses it when that batch is already on its way: in a room that had a message in the
    last 20 ms, the others never learn that the member vanished (PRES-4)."""

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
        if reason is LeaveReason.LOST and self.busy(room):
            notify = False
        super()._remove_locked(member, room, reason, text, notify=notify, tell_self=tell_self)


class LostJoinedWhileBusyHub(_BusyRooms):
    """Queues the JOINED of a JOIN into the room's current message batch and loses it when the
    batch is already on its way: a member joining a room that had a message in the last 20 ms
    is never announced (PRES-1)."""

    def _join_locked(
        self, member: Member, key: str, with_roster: bool, greeting: bytes = b""
    ) -> None:
        room = self._rooms.get(key)
        if room is None or greeting or not self.busy(room):
            super()._join_locked(member, key, with_roster, greeting)
            return
        watchers, room.watchers = room.watchers, {}
        try:
            super()._join_locked(member, key, with_roster, greeting)
        finally:
            watchers.update(room.watchers)
            room.watchers = watchers


class RacedAliasHub(Hub):
    """Indexes every nick as asked, before the uniqueness check, and never cleans up a refused
    one: after a race for a nick, a DIRECT spelled like a loser's HELLO reaches the loser's
    connection (MSG-10), once that connection has registered under another nick."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._asked: dict[str, Member] = {}

    def register(self, member: Member, greeting: bytes) -> bool:
        self._asked[member.nick] = member
        return super().register(member, greeting)

    def lookup(self, nick: str) -> Member | None:
        found = self._asked.get(nick)
        if found is not None and found in self._joined:
            return found
        return super().lookup(nick)


class EchoAfterUnlockHub(Hub):
    """Writes the ECHO copy after releasing the room lock, to keep the lock short: a message of
    another sender (or room) can slip in between the ACK and the echo (MSG-13), and the echo
    then even trails later seqs of its room. A lone sender never sees it."""

    def send(self, member: Member, name: str, texts16: Sequence[bytes]) -> Any:
        room = self._joined.get(member, {}).get(fold(name))
        if not member.echo or room is None:
            return super().send(member, name, texts16)
        for text16 in texts16:
            with room.lock:
                room.seq += 1
                one = frames.deliver(room.name8, room.seq, room.members[member], text16)
                for other in room.members:
                    if other is not member:
                        other.push(one)
                member.push(frames.ack(room.name8, room.seq))
            time.sleep(0)  # the lock is free: others run here, as on a real multi-core box
            member.push(one)
        return None


class RareDuplicateHub(Hub):
    """Delivers about one message in 500 twice to every member (a retry after a spurious write
    error): the single-room case with ~100 messages sees it in one run of five (ORD-3)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rng = random.Random()

    def send(self, member: Member, name: str, texts16: Sequence[bytes]) -> Any:
        room = self._joined.get(member, {}).get(fold(name))
        if room is None or self._rng.random() >= len(texts16) / 500:
            return super().send(member, name, texts16)
        with room.lock:
            sender8 = room.members[member]
            delivers, acks = [], []
            for text16 in texts16:
                room.seq += 1
                delivers.append(frames.deliver(room.name8, room.seq, sender8, text16))
                acks.append(frames.ack(room.name8, room.seq))
                if member.echo:
                    acks.append(delivers[-1])
            data = b"".join(delivers) + delivers[-1]  # the retried last one
            for other in room.members:
                if other is not member:
                    other.push(data)
            member.push(b"".join(acks))
        return None


class PongFirstSession(Session):
    """Answers a PING at once, ahead of the answers to earlier requests still queued (as a
    server whose reader thread writes PONGs while a worker's answers wait in a queue): the
    PONG overtakes the ACKs and ROSTERs it must follow (ORD-10). Only shows when answers are
    queued as the PING is handled — a client pipelining requests and PINGs under load."""

    def dispatch(self, ftype: int, body: bytes) -> Ending | None:
        if ftype != FrameType.PING or self.state is not State.REGISTERED or len(body) != 8:
            return super().dispatch(ftype, body)
        pong = encode(Pong(int.from_bytes(body, "big")))
        if not _jump_queue(self, pong, over=_only_answers):
            self.push(pong)
        return None


def _jump_queue(session: Session, frame: bytes, *, over: Callable[[bytes], bool]) -> bool:
    """Put ``frame`` ahead of the frames at the tail of what is queued for ``session`` that
    ``over`` accepts, if there is little queued (under 4 KiB: a big backlog is left alone);
    False if it overtook nothing."""
    box = session.outbox
    with box._lock:
        chunks = box._chunks
        at = len(chunks)
        while at > 0 and isinstance(tail := chunks[at - 1], bytes) and over(tail):
            at -= 1
        if at == len(chunks) or box._final or box.failed is not None or box.pending > 4096:
            return False
        chunks.insert(at, frame)
        box.pending += len(frame)
    return True


def _only_answers(chunk: bytes) -> bool:
    """Answers to this client's own requests (earlier PONGs keep their place)."""
    answers = (FrameType.ACK, FrameType.ERROR, FrameType.ROSTER)
    return all(f[4] in answers for f in split_frames(chunk))


def _only_delivers(chunk: bytes) -> bool:
    return all(f[4] == FrameType.DELIVER for f in split_frames(chunk))


class BlamesReaderSession(Session):
    """Mistakes the broken pipe of a fan-out for a slow reader: a connection that ends (FIN or
    RST) within 20 ms of a DELIVER being queued for it is reported with LEFT reason
    SLOW_CONSUMER instead of LOST (PRES-6). An idle client's exit is reported right."""

    def __init__(self, server: Server, sock: socket.socket, peer: str) -> None:
        super().__init__(server, sock, peer)
        self.last_deliver = 0.0
        inner = self.outbox.push
        self.push = lambda data: self._note(data, inner)

    def _note(self, data: bytes, inner: Any) -> None:
        if data[4] == FrameType.DELIVER:
            self.last_deliver = time.monotonic()
        inner(data)

    def lost_ending(self) -> Ending:
        ending = super().lost_ending()
        if ending.reason is LeaveReason.LOST and time.monotonic() - self.last_deliver < BUSY:
            return Ending(LeaveReason.SLOW_CONSUMER, graceful=False, detail="blamed")
        return ending


class PresenceFirstSession(Session):
    """Puts a LEFT about another member ahead of the room messages still queued for this
    client ("presence is urgent"): a leaver's last messages, queued when it left, arrive after
    its LEFT (PRES-5). Shows when messages are queued as someone leaves: always when a member
    pipelines its last words with LEAVE (they wait in this thread's write-behind batch)."""

    def __init__(self, server: Server, sock: socket.socket, peer: str) -> None:
        super().__init__(server, sock, peer)
        inner = self.outbox.push
        self.push = lambda data: self._urgent(data, inner)

    def _urgent(self, data: bytes, inner: Any) -> None:
        if (
            data[4] == FrameType.LEFT
            and _left_nick(data) != self.nick
            and _jump_queue(self, data, over=_only_delivers)
        ):
            return
        inner(data)


def _left_nick(frame: bytes) -> str:
    at = 6 + frame[5]
    return frame[at + 1 : at + 1 + frame[at]].decode()


class HighWaterSession(_FilteringSession):
    """Drops any DELIVER whose seq is not above the highest seq this client has been sent,
    whatever its room (a duplicate filter meant for one room, kept per client): a member of
    two busy rooms loses messages of the one with lower seqs (ORD-3, ORD-5)."""

    def __init__(self, server: Server, sock: socket.socket, peer: str) -> None:
        super().__init__(server, sock, peer)
        self.high = 0

    def filter(self, data: bytes) -> bytes:
        kept = []
        for f in split_frames(data):
            seq = deliver_seq(f)
            if seq is not None:
                if seq <= self.high:
                    continue
                self.high = seq
            kept.append(f)
        return b"".join(kept)


# -- the catalogue ----------------------------------------------------------------------


def _build(
    session: type[Session] = Session, hub: type[Hub] = Hub
) -> Callable[[ServerConfig], Server]:
    def build(config: ServerConfig) -> Server:
        return Server(config, session_class=session, hub_class=hub)

    build.__doc__ = (hub if hub is not Hub else session).__doc__
    return build


#: What these specimens are run against: the mixed scenario, judging its requirements (``--``
#: hands ``-k`` to pytest), and the §9 case that pipelines last words with LEAVE and BYE (a
#: LEFT that jumps a queue shows there in every run; amid mixed traffic only when a member's
#: output happens to be queued). Not the whole suite: a broken PING barrier or a duplicate also
#: trips §3 and §12 cases that rely on barriers and exactly-once under floods, and eleven more
#: whole-suite runs would nearly double the zoo's time.
FOCUS = [
    "--only",
    ",".join(JUDGED),
    "--",
    "-k",
    "test_mixed_traffic_in_every_room_at_once or test_notices_bracket_the_members_messages",
]

CONCURRENCY_ZOO: list[Specimen] = [
    # The gaps of issue 15: faults the single-room scenarios passed.
    Specimen(
        "stale-recipients",
        _build(StaleRecipientsSession, StaleRecipientsHub),
        frozenset({"ORD-12"}),
    ),
    Specimen(
        "lobby-as-at-accept",
        _build(AcceptSnapshotSession, AcceptSnapshotHub),
        frozenset({"PRES-1"}),
    ),
    Specimen("lost-left-while-busy", _build(hub=LostLeftWhileBusyHub), frozenset({"PRES-4"})),
    Specimen("raced-alias", _build(hub=RacedAliasHub), frozenset({"MSG-10"})),
    Specimen(
        "echo-after-unlock",
        _build(hub=EchoAfterUnlockHub),
        frozenset({"MSG-13", "ORD-2", "ORD-5"}),
    ),
    Specimen(
        "rare-duplicate", _build(hub=RareDuplicateHub), frozenset({"ORD-2", "ORD-3", "ORD-5"})
    ),
    Specimen("pong-first", _build(PongFirstSession), frozenset({"ORD-10"})),
    # Further faults of a busy server.
    Specimen("lost-joined-while-busy", _build(hub=LostJoinedWhileBusyHub), frozenset({"PRES-1"})),
    Specimen("blames-reader", _build(BlamesReaderSession), frozenset({"PRES-6"})),
    Specimen("presence-first", _build(PresenceFirstSession), frozenset({"PRES-5"})),
    Specimen(
        "high-water-per-client",
        _build(HighWaterSession),
        frozenset({"ORD-3", "ORD-5"}),
    ),
]
