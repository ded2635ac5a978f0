"""This node's side of the shared state: its rooms, its members, its pending tickets, and
the stand-ins for what lives on other nodes (a nick's holder, a congested member)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from .. import frames
from ..hub import Member
from ..outbox import Congestion


class CongestionNews(Protocol):
    """What a :class:`Remote` asks of the hub: is a nick's holder congested on its node?"""

    def congested_elsewhere(self, u: bytes) -> bool: ...


def b8(raw: bytes) -> bytes:
    return bytes((len(raw),)) + raw


class Remote:
    """``lookup``'s stand-in for the holder of a nick on another node; as its own
    ``outbox``, it is congested while its node says so (:class:`CongestedElsewhere`)."""

    __slots__ = ("hub", "nick", "u")

    def __init__(self, hub: CongestionNews, nick: str, u: bytes) -> None:
        self.hub, self.nick, self.u = hub, nick, u

    @property
    def outbox(self) -> Remote:
        return self

    @property
    def congested(self) -> bool:
        return self.hub.congested_elsewhere(self.u)


class CongestedElsewhere:
    """The members of other nodes that are congested now, as their nodes say on the cluster
    channel (§12.3 SLOW-4: a DIRECT sender is held behind one whatever rooms they share).

    While it is not empty it stands in the server's Congestion set, as its own owner (no
    room contains it), so that ``respect_holds`` looks at all; ``congested_since`` is None, so
    the flusher's watchdog never cuts it. A clear wakes the held senders. Entries leave when
    their node says so, which it does when the member recovers, is cut, departs or is reaped
    with its dead node; a node that loses Redis forgets them all and asks again on return."""

    __slots__ = ("_lock", "congestion", "members")
    congested_since = None

    def __init__(self) -> None:
        self.members: set[bytes] = set()
        self.congestion: Congestion | None = None  # the server's, from ``ClusterHub.watch``
        self._lock = threading.Lock()

    @property
    def owner(self) -> CongestedElsewhere:
        return self

    def __contains__(self, u: object) -> bool:
        return u in self.members

    def news(self, u: bytes, congested: bool) -> None:
        with self._lock:
            members = self.members
            if congested and u not in members:
                members.add(u)
                self._changed(len(members) == 1, False)
            elif not congested and u in members:
                members.discard(u)
                self._changed(False, True)

    def replace(self, members: set[bytes]) -> None:
        """Take ``members`` as the whole set (a node's view on joining, or none on leaving)."""
        with self._lock:
            before, self.members = self.members, set(members)
            self._changed(bool(members) and not before, bool(before - members))

    def _changed(self, first: bool, fewer: bool) -> None:
        congestion = self.congestion
        if congestion is None:
            return
        if first:
            congestion.mark(self)  # type: ignore[arg-type]
        elif fewer and not self.members:
            congestion.clear(self)  # type: ignore[arg-type]  # wakes the held senders
        elif fewer:
            congestion.wake_all()  # one recovered: the senders held behind it may go


class Members(dict[Member, bytes]):
    """A room's live local members; it also "contains" itself, which stands for the room's
    congested members on other nodes (see :class:`RemoteHold`)."""

    __slots__ = ()

    def __contains__(self, key: object) -> bool:
        return key is self or dict.__contains__(self, key)

    def __hash__(self) -> int:  # type: ignore[override]  # owner of the room's hold
        return id(self)

    def __eq__(self, other: object) -> bool:
        return other is self


class RemoteHold:
    """Stands in the server's Congestion set while members of a room on other nodes are
    congested, so senders to the room are held (§12.3 SLOW-3) as for a local member. Its
    ``congested_since`` is None: the flusher's watchdog never cuts it (their node does)."""

    __slots__ = ("owner",)
    congested_since = None

    def __init__(self, owner: Members) -> None:
        self.owner = owner


class LocalRoom:
    """This node's side of a room: its local members, in the room's event order."""

    __slots__ = (
        "channel",
        "congested",
        "hold",
        "joining",
        "members",
        "name",
        "name8",
        "refs",
        "watchers",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.name8 = frames.str8(name)
        self.channel = b"cw:r:" + name.encode("ascii")
        #: Live local members (they get the room's events) -> nick as str8. Changed only by
        #: the subscriber thread, at the member's own JOINED and LEFT events.
        self.members = Members()
        #: Members on other nodes congested now (their node says so), and their hold.
        self.congested: set[bytes] = set()
        self.hold = RemoteHold(self.members)
        self.watchers: dict[Member, None] = {}  # not QUIET: they get JOINED/LEFT
        self.joining: dict[bytes, Record] = {}  # u -> member whose join script is running
        #: Sessions that joined or are joining (the subscription lives while > 0).
        self.refs = 0


class Record:
    """A local member: its cluster-wide id and its rooms (changed by its own thread)."""

    __slots__ = ("member", "nick8", "rooms", "u")

    def __init__(self, member: Member, u: bytes) -> None:
        self.member = member
        self.u = u
        self.nick8 = frames.str8(member.nick)
        self.rooms: dict[str, LocalRoom] = {}


class Ticket:
    __slots__ = ("action", "done", "failed")

    def __init__(self, action: Callable[[bytes], None] | None) -> None:
        self.action = action
        self.done = threading.Event()
        self.failed = False
