"""What a cluster node's subscriber thread does with each message Redis publishes (the event
formats are in ``scripts.py``): fan-out to local members in the room's order, presence,
congestion news, WHISPERs and ticket answers. A mixin of :class:`ClusterHub`, kept apart so
each module stays readable: the session-side calls are in ``hub.py``."""

from __future__ import annotations

import logging
import struct

from spec.constants import FrameType
from spec.fastpath import frame

from .. import frames
from ..outbox import Congestion
from .connection import Pool, RedisUnavailable
from .rooms import CongestedElsewhere, LocalRoom, Record, Ticket, b8
from .scripts import SCRIPTS

log = logging.getLogger("reference.cluster")

_U16 = struct.Struct(">H")

#: Every member's congestion news, for every node (``scripts.py``).
CONGESTION_CHANNEL = b"cw:c"


class StreamHandling:
    """The subscriber thread's side of :class:`ClusterHub` (which sets these up)."""

    max_frame: int
    _node_channel: bytes
    _by_channel: dict[bytes, LocalRoom]
    _by_u: dict[bytes, Record]
    _tickets: dict[int, Ticket]
    _congestion: Congestion | None
    _elsewhere: CongestedElsewhere
    timeout: float

    def _on_message(self, channel: bytes, data: bytes) -> None:
        if channel == self._node_channel:
            self._node_message(data)
            return
        if channel == CONGESTION_CHANNEL:
            news = self._remote_congestion(data)
            if news is not None:
                self._elsewhere.news(*news)
            return
        room = self._by_channel.get(channel)
        if room is None:  # unsubscribed meanwhile
            return
        kind = data[:1]
        if kind == b"D":
            self._deliver(room, data)
        elif kind == b"J":
            self._joined(room, data)
        elif kind == b"L":
            self._left(room, data)
        elif kind == b"C":
            self._congested(room, data)

    def _node_message(self, data: bytes) -> None:
        head, _, payload = data.partition(b"\n")
        if head[:1] == b"T":
            self._complete(int(head[2:]), payload)
        elif head[:1] == b"W":
            _, u, sender = head.split(b" ")
            record = self._by_u.get(u)
            if record is not None:
                body = b8(sender) + _U16.pack(len(payload)) + payload
                record.member.push(frame(FrameType.WHISPER, body))

    def _complete(self, tid: int, payload: bytes) -> None:
        ticket = self._tickets.pop(tid, None)
        if ticket is None:
            return
        if ticket.action is not None:
            try:
                ticket.action(payload)
            except Exception:
                log.exception("cluster: answering a ticket failed")
        ticket.done.set()

    def _deliver(self, room: LocalRoom, data: bytes) -> None:
        head, _, texts = data.partition(b"\n")
        _, first_text, u, tid, nick = head.split(b" ", 4)
        first = seq = int(first_text)
        room8, sender8 = room.name8, b8(nick)
        delivers = []
        pos, end = 0, len(texts)
        while pos < end:
            stop = pos + 2 + _U16.unpack_from(texts, pos)[0]
            delivers.append(frames.deliver(room8, seq, sender8, texts[pos:stop]))
            seq += 1
            pos = stop
        record = self._by_u.get(u)
        sender = record.member if record is not None else None
        out = delivers[0] if len(delivers) == 1 else b"".join(delivers)
        for other in room.members:
            if other is not sender:
                other.push(out)
        if sender is None:
            return
        answers = []
        for i, one in enumerate(delivers):
            answers.append(frames.ack(room8, first + i))
            if sender.echo:
                answers.append(one)
        sender.push(b"".join(answers))
        self._complete(int(tid), b"")

    def _joined(self, room: LocalRoom, data: bytes) -> None:
        _, u, nick = data.partition(b"\n")[0].split(b" ")
        if room.watchers:
            notice = frame(FrameType.JOINED, room.name8 + b8(nick))
            for watcher in room.watchers:
                watcher.push(notice)
        joiner = room.joining.pop(u, None)
        if joiner is not None:  # its ROSTER is the next message: nothing comes between
            room.members[joiner.member] = joiner.nick8
            if not joiner.member.quiet:
                room.watchers[joiner.member] = None

    def _left(self, room: LocalRoom, data: bytes) -> None:
        head, _, text = data.partition(b"\n")
        _, u, nick, reason, flag_text = head.split(b" ")
        flags = int(flag_text)
        record = self._by_u.get(u)
        member = record.member if record is not None else None
        if member is not None:
            room.members.pop(member, None)
            room.watchers.pop(member, None)
        if u in room.congested:
            self._unhold(room, {u})
        if not flags & 3:
            return
        body = room.name8 + b8(nick) + bytes((int(reason),)) + _U16.pack(len(text)) + text
        notice = frame(FrameType.LEFT, body)
        if flags & 1:
            for watcher in room.watchers:
                watcher.push(notice)
        if flags & 2 and member is not None:
            member.push(notice)

    def _learn_congested(self, pool: Pool, node: str, tid: int) -> None:
        """On joining the cluster (subscribed to ``CONGESTION_CHANNEL`` already): who is
        congested now, answered in stream order, so the news after it applies on top."""
        ticket = Ticket(lambda payload: self._elsewhere.replace(set(payload.split())))
        self._tickets[tid] = ticket
        pool.call(b"EVAL", SCRIPTS["congested_now"].source, 0, node, tid)
        if not ticket.done.wait(self.timeout):
            raise RedisUnavailable("no answer to who is congested")

    def _remote_congestion(self, data: bytes) -> tuple[bytes, bool] | None:
        """A ``C U 1|0`` event as (u, congested); None about a local member (the local
        Congestion has it already)."""
        _, u, on = data.partition(b"\n")[0].split(b" ")
        return None if u in self._by_u else (u, on == b"1")

    def _congested(self, room: LocalRoom, data: bytes) -> None:
        news = self._remote_congestion(data)
        if news is None:
            return
        u, congested = news
        if congested:
            if not room.congested and self._congestion is not None:
                self._congestion.mark(room.hold)  # type: ignore[arg-type]
            room.congested.add(u)
        elif u in room.congested:
            self._unhold(room, {u})

    def _unhold(self, room: LocalRoom, members: set[bytes]) -> None:
        if not room.congested:
            return
        room.congested -= members
        if not room.congested and self._congestion is not None:
            self._congestion.clear(room.hold)  # type: ignore[arg-type]

    def _roster(self, room8: bytes, payload: bytes) -> bytes:
        seq, _, names = payload.partition(b"\n")
        names8 = [b8(n) for n in names.split(b" ")] if names else []
        return frames.roster(room8, int(seq), names8, self.max_frame)
