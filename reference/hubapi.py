"""The one seam between sessions and a hub: what a session needs of one.

Two hubs stand behind it: :class:`reference.hub.Hub`, in process (one server), and
:class:`reference.cluster.ClusterHub`, which shares nicks, rooms, order and presence with
other server nodes through Redis (PROTOCOL.md §20). Sessions, the flusher and the client
see only this interface.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from typing import Protocol, runtime_checkable

from spec.constants import ErrorCode, LeaveReason

from .hub import Member


class RoomView(Protocol):
    """A room the member is in, as a session sees it: who to watch for congestion (§12.3)."""

    @property
    def members(self) -> Container[object]: ...


class Congestible(Protocol):
    @property
    def congested(self) -> bool: ...


@runtime_checkable
class Addressee(Protocol):
    """What ``lookup`` may return when a sender should be held behind the addressee of its
    DIRECT (§12.3 SLOW-4): a session, or a cluster hub's stand-in for one elsewhere."""

    @property
    def outbox(self) -> Congestible: ...


class RoomHub(Protocol):
    """Registry, rooms, messages and presence (§5-§9) for the sessions of one server."""

    max_frame: int
    max_rooms: int
    default_room: str

    def register(self, member: Member, greeting: bytes) -> bool:
        """Take the nick and enter the default room, ``greeting`` first; False if held."""

    def depart(
        self, member: Member, reason: LeaveReason, text: str = "", notify: bool = True
    ) -> None:
        """The session ended: release the nick and leave every room."""

    def lookup(self, nick: str) -> object | None:
        """Whoever holds ``nick`` (a local member, or a stand-in for one elsewhere)."""

    def rooms_of(self, member: Member) -> Mapping[str, RoomView]:
        """The member's rooms by canonical name (from the member's own thread)."""

    def join(self, member: Member, name: str) -> ErrorCode | None: ...

    def leave(self, member: Member, name: str) -> ErrorCode | None: ...

    def who(self, member: Member, name: str) -> ErrorCode | None: ...

    def list_rooms(self, member: Member) -> None: ...

    def send(self, member: Member, name: str, texts16: Sequence[bytes]) -> ErrorCode | None: ...

    def direct(self, member: Member, nick: str, text: str) -> object | None: ...

    def sync(self, member: Member) -> None:
        """Return once every frame that requests answered before now cause for ``member``
        has been produced (the PING barrier of §8.5 across nodes)."""


class HubUnavailable(Exception):
    """The hub cannot serve (a cluster node lost Redis): the session ends with ``error``,
    a fatal ERROR frame."""

    def __init__(self, error: bytes, detail: str) -> None:
        super().__init__(detail)
        self.error = error
