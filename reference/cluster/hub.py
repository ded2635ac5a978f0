"""The cluster hub: the hub interface of ``reference.hubapi`` over a shared Redis (§20).

Every change to shared state is one Lua script (``scripts.py``); every frame about a room
reaches local members from one thread, the subscriber (``stream.py``), in the order Redis
published the room's events. So the order of DELIVER, JOINED and LEFT is one per room across
nodes, and a message is encoded once per node and fanned out locally.

A request that must be answered in that order (SEND's ACK, JOIN's ROSTER, WHO's ROSTER, the
PING barrier) takes a *ticket*: the script publishes the ticket last on this node's channel,
the subscriber answers the member when it gets there (after every event the script
published), and the session thread waits for it. The join race is closed the same way: the
node subscribes to a room before the join script runs, and the joiner becomes a local member
at its own JOINED event, whose ROSTER (the script's ticket) comes next with nothing between.

Liveness: the node holds a lease (``cw:node:NODE``) it renews every ``lease/4``; every node
sweeps every ``sweep_interval`` for nodes whose lease has expired and reports their members
LEFT (LOST) and frees their nicks in one step. A node that cannot reach Redis, or finds its
lease gone, ends every session with CLUSTER_UNAVAILABLE and reconnects as a new incarnation
(a fresh node id) once Redis answers again.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import cast

from spec.codec import encode
from spec.constants import DEFAULT_MAX_FRAME, DEFAULT_ROOM, ErrorCode, LeaveReason
from spec.events import Error
from spec.names import fold, is_valid_nick, is_valid_room

from .. import frames
from ..flusher import Flusher
from ..hub import Member
from ..hubapi import HubUnavailable
from ..outbox import Congestion
from .connection import Pool, RedisAddress, RedisUnavailable, Subscriber
from .resp import Reply, ReplyError
from .rooms import CongestedElsewhere, LocalRoom, Record, Remote, Ticket, b8
from .scripts import SCRIPTS
from .stream import CONGESTION_CHANNEL, StreamHandling

log = logging.getLogger("reference.cluster")

_ACK_DIRECT = frames.ack(b"\x00", 0)


class ClusterHub(StreamHandling):
    """A hub shared with the other nodes on one Redis. ``start()`` before serving; ``stop()``
    after the server has shut down (its members' LEFT go to the others then)."""

    def __init__(
        self,
        redis: RedisAddress | str,
        node_name: str = "node",
        max_frame: int = DEFAULT_MAX_FRAME,
        max_rooms: int = 16,
        default_room: str = DEFAULT_ROOM,
        *,
        lease: float = 3.0,
        sweep_interval: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        if not is_valid_nick(node_name):
            raise ValueError("a node name is 1-32 of A-Z a-z 0-9 _ -")
        self.address = redis if isinstance(redis, RedisAddress) else RedisAddress.parse(redis)
        self.node_name = node_name
        self.max_frame = max_frame
        self.max_rooms = max_rooms
        self.default_room = default_room
        self.lease = lease
        self.sweep_interval = sweep_interval
        self.timeout = timeout
        self.unavailable_frame = encode(
            Error(ErrorCode.CLUSTER_UNAVAILABLE, "cluster state unavailable")
        )
        #: This incarnation's id ("" while down): a node that comes back is a new node.
        self.node = ""
        self._node_channel = b""
        self._gen = 0
        self._up = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # up/down transitions and the tables they replace
        self._subs_lock = threading.Lock()  # subscribing and unsubscribing rooms
        self._pool: Pool | None = None
        self._sub: Subscriber | None = None
        self._records: dict[Member, Record] = {}
        self._by_u: dict[bytes, Record] = {}
        self._rooms: dict[str, LocalRoom] = {}
        self._by_channel: dict[bytes, LocalRoom] = {}
        self._tickets: dict[int, Ticket] = {}
        self._ticket_ids = itertools.count(1)
        self._member_ids = itertools.count(1)
        self._control = threading.Thread(target=self._run, name="chatwire-cluster", daemon=True)
        #: Nodes this one has reaped (for logs and tests).
        self.reaped: list[str] = []
        self._congestion: Congestion | None = None
        self._flusher: Flusher | None = None
        self._told_congested: set[bytes] = set()  # local members the others hold for
        self._elsewhere = CongestedElsewhere()  # members of other nodes congested now
        self._holders: dict[str, tuple[bytes, float]] = {}  # lookup's recent finds

    def watch(
        self, congestion: Congestion, flusher: Flusher | None = None, interval: float = 0.005
    ) -> None:
        """Tell the other nodes when local members become congested or recover, and hold
        senders here for congested members elsewhere (§12.3 across nodes). Call before
        ``start``; the server's Congestion is the flusher's. With ``flusher``, a session
        thread about to wait for Redis first writes what it owes others (write-behind)."""
        self._congestion = self._elsewhere.congestion = congestion
        self._flusher = flusher
        self._congestion_interval = interval
        threading.Thread(
            target=self._watch, name="chatwire-cluster-congestion", daemon=True
        ).start()

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._control.start()

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def wait_up(self, timeout: float) -> bool:
        return self._up.wait(timeout)

    def stop(self) -> None:
        """Leave the cluster: every member still held is reported LEFT (SHUTDOWN)."""
        self._stopping.set()
        if self._control.is_alive():
            self._control.join()
        with self._lock:
            pool, sub, node = self._pool, self._sub, self.node
            was_up = self._up.is_set()
            self._up.clear()
        if pool is not None and was_up:
            try:
                self._eval(pool, "stop", node, int(LeaveReason.SHUTDOWN), "node stopped")
            except (RedisUnavailable, ReplyError) as exc:
                log.warning("could not leave the cluster cleanly: %s", exc)
        if sub is not None:
            sub.close()
        if pool is not None:
            pool.close()

    def _watch(self) -> None:
        """Poll the local congestion set (a set test when nothing is congested) and publish
        each change to the rooms of the member concerned."""
        congestion = self._congestion
        assert congestion is not None
        while not self._stopping.wait(self._congestion_interval):
            if not congestion.congested and not self._told_congested:
                continue
            now = {
                record.u: record
                for outbox in list(congestion.congested)
                if outbox.congested_since is not None
                and (record := self._records.get(cast(Member, outbox.owner))) is not None
            }
            changed = [(u, 1) for u in now.keys() - self._told_congested]
            changed += [(u, 0) for u in self._told_congested - now.keys()]
            pool = self._pool
            if not changed or pool is None or not self._up.is_set():
                continue
            script = SCRIPTS["congested"]
            commands: list[tuple[bytes | str | int, ...]] = []
            for u, on in changed:
                (self._told_congested.add if on else self._told_congested.discard)(u)
                record = now.get(u) or self._by_u.get(u)
                if record is not None:  # else departed: its depart said 0 (SLOW-4)
                    rooms = list(record.rooms)
                    commands.append((b"EVALSHA", script.sha, 0, u, on, *rooms))
            try:
                replies = pool.pipeline(commands)
                if any(isinstance(r, ReplyError) for r in replies):  # not loaded yet
                    pool.pipeline([(b"EVAL", script.source, *c[2:]) for c in commands])
            except RedisUnavailable as exc:
                self._lost(str(exc))

    def _run(self) -> None:
        """Connect (again), renew the lease, sweep for dead nodes."""
        renew_every = self.lease / 4
        next_renew = next_sweep = 0.0
        while not self._stopping.is_set():
            if not self._up.is_set():
                try:
                    self._connect()
                except (RedisUnavailable, ReplyError) as exc:
                    log.debug("cluster: Redis not reachable yet: %s", exc)
                    self._stopping.wait(0.25)
                    continue
            now = time.monotonic()
            pool, gen, node = self._pool, self._gen, self.node
            try:
                assert pool is not None
                if now >= next_renew:
                    next_renew = now + renew_every
                    if pool.call("PEXPIRE", b"cw:node:" + node.encode(), self._lease_ms) != 1:
                        self._lost("this node's lease expired", gen)
                        continue
                if now >= next_sweep:
                    next_sweep = now + self.sweep_interval
                    reaped = self._eval(pool, "sweep", int(LeaveReason.LOST), "node lost")
                    for dead in reaped if isinstance(reaped, list) else []:
                        name = dead.decode() if isinstance(dead, bytes) else str(dead)
                        log.warning("cluster: node %s is gone; its members LEFT (LOST)", name)
                        self.reaped.append(name)
            except (RedisUnavailable, ReplyError) as exc:
                self._lost(str(exc), gen)
                continue
            self._stopping.wait(max(0.0, min(next_renew, next_sweep) - time.monotonic()))

    @property
    def _lease_ms(self) -> int:
        return int(self.lease * 1000)

    def _connect(self) -> None:
        node = f"{self.node_name}-{secrets.token_hex(4)}"
        pool = Pool(self.address, self.timeout)
        sub: Subscriber | None = None
        try:
            if self._eval(pool, "start", node, self._lease_ms) != 1:
                raise RedisUnavailable(f"node id {node} already taken")
            with self._lock:
                gen = self._gen + 1
            sub = Subscriber(
                self.address,
                self._on_message,
                lambda reason: self._lost(reason, gen),
                self.timeout,
            )
            channel = b"cw:n:" + node.encode()
            with self._lock:
                self._gen, self.node, self._node_channel = gen, node, channel
                self._pool, self._sub = pool, sub
                self._records, self._by_u, self._tickets = {}, {}, {}
                self._rooms, self._by_channel = {}, {}
            sub.subscribe(channel)
            sub.subscribe(CONGESTION_CHANNEL)
            self._learn_congested(pool, node, next(self._ticket_ids))
        except BaseException:
            if sub is not None:
                sub.close()
            pool.close()
            raise
        self._up.set()
        log.info("cluster: joined %s as node %s", self.address, node)

    def _lost(self, reason: str, gen: int | None = None) -> None:
        """Redis is gone (or this node's lease): end every session, reconnect later."""
        with self._lock:
            if not self._up.is_set() or (gen is not None and gen != self._gen):
                return
            self._up.clear()
            records = list(self._records.values())
            tickets = list(self._tickets.values())
            pool, sub = self._pool, self._sub
            self._records, self._by_u, self._tickets = {}, {}, {}
            rooms = list(self._rooms.values())
            self._rooms, self._by_channel = {}, {}
            self.node = ""
            self._told_congested = set()
        for room in rooms:
            self._unhold(room, room.congested)
        log.error("cluster: lost Redis (%s); ending %d sessions", reason, len(records))
        for ticket in tickets:
            ticket.failed = True
            ticket.done.set()
        if sub is not None:
            sub.close()
        if pool is not None:
            pool.close()
        self._elsewhere.replace(set())  # stale now; the next incarnation asks again
        for record in records:
            evict = getattr(record.member, "evict", None)
            if callable(evict):
                evict(self.unavailable_frame)
            else:
                record.member.push(self.unavailable_frame)

    # -- calls --------------------------------------------------------------------------

    def _unavailable(self, detail: str) -> HubUnavailable:
        return HubUnavailable(self.unavailable_frame, detail)

    @staticmethod
    def _eval(pool: Pool, name: str, *args: bytes | str | int) -> Reply:
        script = SCRIPTS[name]
        try:
            return pool.call(b"EVALSHA", script.sha, 0, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return pool.call(b"EVAL", script.source, 0, *args)

    def _script(self, name: str, *args: bytes | str | int) -> Reply:
        pool, gen = self._pool, self._gen
        if pool is None or not self._up.is_set():
            raise self._unavailable("not connected to Redis")
        try:
            return self._eval(pool, name, *args)
        except RedisUnavailable as exc:
            self._lost(str(exc), gen)
            raise self._unavailable(str(exc)) from None
        except ReplyError as exc:
            self._lost(str(exc), gen)
            raise self._unavailable(str(exc)) from None

    def _ticket(self, action: Callable[[bytes], None] | None = None) -> tuple[int, Ticket]:
        ticket = Ticket(action)
        tid = next(self._ticket_ids)
        tickets = self._tickets
        tickets[tid] = ticket
        if not self._up.is_set() or tickets is not self._tickets:  # lost meanwhile
            raise self._unavailable("not connected to Redis")
        return tid, ticket

    def _wait(self, tid: int, ticket: Ticket) -> None:
        if self._flusher is not None:
            self._flusher.write_behind_now()
        if not ticket.done.wait(self.timeout):
            self._tickets.pop(tid, None)
            self._lost("no reply from Redis in time")
            raise self._unavailable("no reply from Redis in time")
        if ticket.failed:
            raise self._unavailable("lost Redis while waiting")

    def _record(self, member: Member) -> Record:
        record = self._records.get(member)
        if record is None:  # registered before Redis was lost: that session is over
            raise self._unavailable("session from before the cluster connection was lost")
        return record

    def _acquire(self, key: str) -> LocalRoom:
        """The local room, subscribed to before this returns (so before any join script)."""
        with self._subs_lock:
            room = self._rooms.get(key)
            if room is None:
                sub = self._sub
                if sub is None or not self._up.is_set():
                    raise self._unavailable("not connected to Redis")
                room = LocalRoom(key)
                try:
                    sub.subscribe(room.channel)
                except RedisUnavailable as exc:
                    self._lost(str(exc))
                    raise self._unavailable(str(exc)) from None
                self._rooms[key] = room
                self._by_channel[room.channel] = room
            room.refs += 1
            return room

    def _release(self, room: LocalRoom) -> None:
        with self._subs_lock:
            room.refs -= 1
            if room.refs > 0 or self._rooms.get(room.name) is not room:
                return
            del self._rooms[room.name]
            self._by_channel.pop(room.channel, None)
            sub = self._sub
            if sub is not None:
                try:
                    sub.unsubscribe(room.channel)
                except RedisUnavailable as exc:
                    self._lost(str(exc))

    # -- the hub interface --------------------------------------------------------------

    def register(self, member: Member, greeting: bytes) -> bool:
        if not self._up.is_set():
            raise self._unavailable("not connected to Redis")
        node = self.node
        record = Record(member, f"{node}/{next(self._member_ids)}".encode())
        room = self._acquire(self.default_room)
        room.joining[record.u] = record
        self._by_u[record.u] = record

        def welcome(payload: bytes) -> None:
            roster = b"" if member.quiet else self._roster(room.name8, payload)
            member.push(greeting + roster)

        tid, ticket = self._ticket(welcome)
        try:
            taken = self._script("register", node, record.u, member.nick, self.default_room, tid)
            if taken != 1:
                self._tickets.pop(tid, None)
                room.joining.pop(record.u, None)
                self._by_u.pop(record.u, None)
                self._release(room)
                return False
            self._wait(tid, ticket)
        except HubUnavailable:
            room.joining.pop(record.u, None)
            self._by_u.pop(record.u, None)
            self._release(room)
            raise
        record.rooms[room.name] = room
        self._records[member] = record
        return True

    def depart(
        self, member: Member, reason: LeaveReason, text: str = "", notify: bool = True
    ) -> None:
        record = self._records.pop(member, None)
        if record is None:
            return
        tid, ticket = self._ticket()
        try:
            self._script(
                "depart", self.node, record.u, member.nick, int(reason), int(notify), tid, text
            )
            self._wait(tid, ticket)
        except HubUnavailable:
            pass  # every session is being ended; the sweep of another node reports it
        self._by_u.pop(record.u, None)
        for room in record.rooms.values():
            self._release(room)

    def lookup(self, nick: str) -> object | None:
        """The holder of ``nick``. A holder found is remembered for a moment (``direct``
        checks again in the same step as it delivers), so a flood of DIRECTs costs one
        round trip each; a nick found free is never remembered."""
        if not is_valid_nick(nick):
            return None
        key = fold(nick)
        seen = self._holders.get(key)
        if seen is not None and seen[1] > time.monotonic():
            record = self._by_u.get(seen[0])
            return record.member if record is not None else Remote(self, nick, seen[0])
        pool = self._pool
        if pool is None or not self._up.is_set():
            raise self._unavailable("not connected to Redis")
        try:
            u = pool.call(b"HGET", b"cw:nicks", key)
        except (RedisUnavailable, ReplyError) as exc:
            self._lost(str(exc))
            raise self._unavailable(str(exc)) from None
        if isinstance(u, bytes):
            if len(self._holders) > 10000:
                self._holders.clear()
            self._holders[key] = (u, time.monotonic() + 1.0)
        return self._holder(u, nick)

    def _holder(self, u: Reply, nick: str) -> object | None:
        if not isinstance(u, bytes):
            return None
        record = self._by_u.get(u)
        return record.member if record is not None else Remote(self, nick, u)

    def congested_elsewhere(self, u: bytes) -> bool:
        """Whether another node says its member ``u`` is congested (on ``cw:c``)."""
        return u in self._elsewhere

    def rooms_of(self, member: Member) -> dict[str, LocalRoom]:
        record = self._records.get(member)
        return record.rooms if record is not None else {}

    def join(self, member: Member, name: str) -> ErrorCode | None:
        if not is_valid_room(name):
            return ErrorCode.ROOM_INVALID
        key = fold(name)
        record = self._record(member)
        if key in record.rooms:  # §6.2 ROOM-6: the ROSTER again, nothing else
            return self.who(member, key)
        if len(record.rooms) >= self.max_rooms:
            return ErrorCode.TOO_MANY_ROOMS
        room = self._acquire(key)
        room.joining[record.u] = record
        tid, ticket = self._ticket(lambda payload: member.push(self._roster(room.name8, payload)))
        try:
            self._script("join", self.node, record.u, member.nick, key, tid)
            self._wait(tid, ticket)
        except HubUnavailable:
            room.joining.pop(record.u, None)
            self._release(room)
            raise
        record.rooms[key] = room
        return None

    def leave(self, member: Member, name: str) -> ErrorCode | None:
        if not is_valid_room(name):
            return ErrorCode.ROOM_INVALID
        record = self._record(member)
        room = record.rooms.get(fold(name))
        if room is None:
            return ErrorCode.NOT_IN_ROOM
        tid, ticket = self._ticket()
        if self._script("leave", self.node, record.u, member.nick, room.name, tid) != 1:
            self._tickets.pop(tid, None)
            return ErrorCode.NOT_IN_ROOM
        self._wait(tid, ticket)
        del record.rooms[room.name]
        self._release(room)
        return None

    def who(self, member: Member, name: str) -> ErrorCode | None:
        if not is_valid_room(name):
            return ErrorCode.ROOM_INVALID
        key = fold(name)
        name8 = frames.str8(key)
        tid, ticket = self._ticket(lambda payload: member.push(self._roster(name8, payload)))
        if self._script("who", self.node, key, tid) != 1:
            self._tickets.pop(tid, None)
            return ErrorCode.NO_SUCH_ROOM
        self._wait(tid, ticket)
        return None

    def list_rooms(self, member: Member) -> None:
        flat = self._script("list")
        assert isinstance(flat, list)
        entries = [
            frames.room_entry(b8(name), count)
            for name, count in zip(flat[::2], flat[1::2], strict=True)
            if isinstance(name, bytes) and isinstance(count, int)
        ]
        member.push(frames.rooms(entries, self.max_frame))

    def send(self, member: Member, name: str, texts16: Sequence[bytes]) -> ErrorCode | None:
        if not is_valid_room(name):
            return ErrorCode.ROOM_INVALID
        record = self._record(member)
        room = record.rooms.get(fold(name))
        if room is None:
            return ErrorCode.NOT_IN_ROOM
        tid, ticket = self._ticket()  # the subscriber ACKs at the message's place in order
        self._script("send", self.node, record.u, member.nick, room.name, tid, *texts16)
        self._wait(tid, ticket)
        return None

    def direct(self, member: Member, nick: str, text: str) -> object | None:
        u = self._script("direct", fold(nick), member.nick, text)
        if not isinstance(u, bytes):
            self._holders.pop(fold(nick), None)
        target = self._holder(u, nick)
        if target is not None:
            member.push(_ACK_DIRECT)
        return target

    def sync(self, member: Member) -> None:
        """The PING barrier across nodes: a ticket published now reaches this node's
        subscriber after every event published before it, and so after every frame that
        requests answered before now (on any node) cause for ``member``."""
        pool, gen = self._pool, self._gen
        if pool is None or not self._up.is_set():
            raise self._unavailable("not connected to Redis")
        tid, ticket = self._ticket()
        try:
            pool.call(b"PUBLISH", self._node_channel, b"T %d\n" % tid)
        except (RedisUnavailable, ReplyError) as exc:
            self._lost(str(exc), gen)
            raise self._unavailable(str(exc)) from None
        self._wait(tid, ticket)
