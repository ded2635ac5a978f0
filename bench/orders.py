"""What the harness tells a worker process to do (picklable, sent over a pipe)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """The part a client connection plays in a run (its value names it in the JSON)."""

    SENDER = "sender"  # sends, expects no deliveries
    RECEIVER = "receiver"  # reads and counts
    PEER = "peer"  # sends and receives (throughput)
    STALLER = "staller"  # stops reading once the run starts (slow-consumer)


SENDING_ROLES = frozenset({Role.SENDER, Role.PEER})


class Dialect(enum.StrEnum):
    """What a server's clients speak: chatwire/1, the raw relay's frames, or naive lines."""

    CHATWIRE = "chatwire"
    RAW = "raw"
    LINE = "line"
    REDIS = "redis"


@dataclass(frozen=True, slots=True)
class ClientSpec:
    nick: str
    role: Role
    #: raw dialect: the id of this sender's first message (ids are unique across senders).
    first_id: int = 1


@dataclass(frozen=True, slots=True)
class ConnectOrder:
    host: str
    port: int
    dialect: Dialect
    room: str
    #: chatwire: JOIN ``room`` after WELCOME (else stay in the default room).
    join: bool
    clients: tuple[ClientSpec, ...]
    payload: int
    #: SO_RCVBUF for stallers and receivers (0 = kernel default); small values make a
    #: member's stall reach the server's pending output quickly.
    staller_rcvbuf: int = 0
    receiver_rcvbuf: int = 0
    #: Handshakes in progress at once per worker.
    in_flight: int = 64
    timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class RunOrder:
    #: Messages each sender or peer sends.
    messages: int
    expect_receiver: int
    expect_peer: int
    deadline_s: float
    #: Frames per send call when flooding.
    batch: int = 64
    #: chatwire: the most messages a sender has sent and not yet seen ACKed.
    window: int = 512
    #: Messages per second per sender; 0 floods.
    pace_hz: float = 0.0
    #: Receivers stop reading for ``pause_s`` at the start of every ``pause_every_s``, all
    #: at the same moments (one monotonic clock), so a room is congested, then drains.
    pause_every_s: float = 0.0
    pause_s: float = 0.0
    #: Stay until the server cuts every staller (or the deadline).
    wait_for_cut: bool = False
    #: Read the timestamp of one delivery in this many, per receiver.
    sample_every: int = 16
