"""Numbers of chatwire/1: frame types, error codes, leave reasons, capabilities, limits.

Every value here is normative and documented in ``spec/PROTOCOL.md``; the ``#:`` comment
on each member names the section that defines it.
"""

from __future__ import annotations

import enum

#: §4.1 — the four bytes every HELLO starts with.
MAGIC = b"CHAT"
#: §4.1 — the protocol version this package speaks.
PROTOCOL_VERSION = 1

#: §3.1 — bytes in the fixed frame header: u32 length, u8 type.
HEADER_SIZE = 5
#: §3.2 — no frame may be longer than this, whatever a peer advertises (16 MiB).
HARD_MAX_FRAME = 16 * 1024 * 1024
#: §3.2 — the smallest ``max_frame`` a server may advertise.
MIN_MAX_FRAME = 1024
#: §3.2 — what a client may assume about a server before WELCOME arrives.
DEFAULT_MAX_FRAME = 65536

#: §5.1 — nick length bounds, in bytes.
NICK_MIN_BYTES = 1
NICK_MAX_BYTES = 32
#: §6.1 — room name length bounds, in bytes.
ROOM_MIN_BYTES = 1
ROOM_MAX_BYTES = 32
#: §6.1 — the room every registered client is placed in.
DEFAULT_ROOM = "lobby"
#: §2.3 — the largest text any server may advertise (a str16 holds at most this).
HARD_MAX_TEXT = 65535
#: §12.2 — the longest a server may let a congested member hold up its room.
MAX_SLOW_TIMEOUT_MS = 30_000
#: §4.3 — the longest a server may wait for HELLO.
MAX_HANDSHAKE_TIMEOUT_MS = 30_000


class FrameType(enum.IntEnum):
    """The one-byte frame type that follows the length (§3.1, §17)."""

    #: §4.1 — C→S: open the session and ask for a nick.
    HELLO = 0x01
    #: §4.2 — S→C: the session is registered; limits, capabilities, lobby roster.
    WELCOME = 0x02
    #: §7.1 — C→S: say something in a room.
    SEND = 0x10
    #: §7.2 — S→C: a room message from another member.
    DELIVER = 0x11
    #: §7.1 — S→C: the sender's own SEND or DIRECT was accepted.
    ACK = 0x12
    #: §7.3 — C→S: a direct message to one nick.
    DIRECT = 0x13
    #: §7.3 — S→C: a direct message from another client.
    WHISPER = 0x14
    #: §6.2 — C→S: join a room (created on first join).
    JOIN = 0x20
    #: §6.3 — C→S: leave a room.
    LEAVE = 0x21
    #: §6.4 — C→S: ask for a room's members.
    WHO = 0x22
    #: §6.4 — S→C: a room's members; the answer to JOIN and WHO.
    ROSTER = 0x23
    #: §6.5 — C→S: ask for the list of rooms.
    LIST = 0x24
    #: §6.5 — S→C: the rooms that exist and their sizes.
    ROOMS = 0x25
    #: §9.1 — S→C: someone joined a room you are in.
    JOINED = 0x30
    #: §9.2 — S→C: someone left a room you are in (or you left it).
    LEFT = 0x31
    #: §10.1 — both ways: please answer with PONG carrying this token.
    PING = 0x40
    #: §10.1 — both ways: the answer to PING.
    PONG = 0x41
    #: §11.4 — C→S: the client is leaving.
    BYE = 0x50
    #: §11.1 — S→C: a request failed, or (fatal codes) the connection is closing.
    ERROR = 0x7F


#: §15.1 — which side may send each known type. Anything else from that side is a violation.
CLIENT_TYPES = frozenset(
    {
        FrameType.HELLO,
        FrameType.SEND,
        FrameType.DIRECT,
        FrameType.JOIN,
        FrameType.LEAVE,
        FrameType.WHO,
        FrameType.LIST,
        FrameType.PING,
        FrameType.PONG,
        FrameType.BYE,
    }
)
SERVER_TYPES = frozenset(
    {
        FrameType.WELCOME,
        FrameType.DELIVER,
        FrameType.ACK,
        FrameType.WHISPER,
        FrameType.ROSTER,
        FrameType.ROOMS,
        FrameType.JOINED,
        FrameType.LEFT,
        FrameType.PING,
        FrameType.PONG,
        FrameType.ERROR,
    }
)


class ErrorCode(enum.IntEnum):
    """Codes carried by ERROR (§18). The high byte says what happens next:

    ``0x01xx`` — the request failed, the connection stays open;
    ``0x02xx`` — fatal: the server closes the connection after this frame.
    """

    #: §5.2 — another client holds this nick (case-insensitively).
    NICK_IN_USE = 0x0101
    #: §5.1 — the nick breaks the nick syntax.
    NICK_INVALID = 0x0102
    #: §7.3 — no registered client has that nick.
    NO_SUCH_NICK = 0x0103
    #: §6.4 — the room does not exist (it has no members).
    NO_SUCH_ROOM = 0x0104
    #: §7.1 — the sender is not a member of the room.
    NOT_IN_ROOM = 0x0105
    #: §6.1 — the room name breaks the room syntax.
    ROOM_INVALID = 0x0106
    #: §6.2 — joining would exceed ``max_rooms``.
    TOO_MANY_ROOMS = 0x0107
    #: §2.3 — text longer than the advertised ``max_text``.
    TEXT_TOO_LONG = 0x0108
    #: §13 — the flood limit dropped this message.
    RATE_LIMITED = 0x0109
    #: §15.1 — a frame type this server does not know; the frame was skipped.
    UNKNOWN_TYPE = 0x010A

    #: §14 — the frame's fields do not fit its length (overrun, trailing bytes, zero length).
    MALFORMED = 0x0201
    #: §3.2 — the length is over the receiver's limit.
    FRAME_TOO_LARGE = 0x0202
    #: §2.2 — text is not strict UTF-8, or holds U+0000.
    INVALID_UTF8 = 0x0203
    #: §4.4, §15.1 — a frame that is not allowed in this state or from this side.
    PROTOCOL_VIOLATION = 0x0204
    #: §4.1 — HELLO did not start with the magic bytes.
    BAD_MAGIC = 0x0205
    #: §4.1 — the server does not speak the asked version.
    UNSUPPORTED_VERSION = 0x0206
    #: §4.3 — no successful HELLO within the handshake time limit.
    HANDSHAKE_TIMEOUT = 0x0207
    #: §10.2 — nothing was received within the idle timeout.
    IDLE_TIMEOUT = 0x0208
    #: §12 — the client stopped reading its output.
    SLOW_CONSUMER = 0x0209
    #: §11.5 — the server is shutting down.
    SERVER_SHUTDOWN = 0x020A
    #: §4.5 — the server holds as many clients as it will.
    SERVER_FULL = 0x020B
    #: §11.6 — the server failed through a fault of its own, not the client's.
    INTERNAL_ERROR = 0x020C
    #: §20 — this server node lost the shared state of its cluster; try again later.
    CLUSTER_UNAVAILABLE = 0x020D

    @property
    def fatal(self) -> bool:
        """Whether this code closes the connection (§11.2)."""
        return is_fatal(self)


def is_fatal(code: int) -> bool:
    """§11.2: fatality is read from the code alone, so unknown codes are understood too."""
    return (code >> 8) != 0x01


def code_name(code: int) -> str:
    """The registry name of ``code`` (§18), or its hex value if this version does not define it."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"0x{code:04X}"


class LeaveReason(enum.IntEnum):
    """Why a member left a room, carried by LEFT (§9.2)."""

    #: §6.3 — the member sent LEAVE for this room.
    PART = 0
    #: §11.4 — the member said BYE.
    QUIT = 1
    #: §9.2 — the connection closed without BYE.
    LOST = 2
    #: §10.2 — the member was idle past the idle timeout.
    TIMEOUT = 3
    #: §14 — the server closed the member's connection for a protocol error.
    ERROR = 4
    #: §12 — the member stopped reading and was cut.
    SLOW_CONSUMER = 5
    #: §11.5 — the server is shutting down.
    SHUTDOWN = 6


class Capability(enum.IntFlag):
    """Optional features, negotiated in HELLO/WELCOME (§4.6)."""

    #: §7.4 — the sender also receives its own room messages as DELIVER.
    ECHO = 0x0000_0001
    #: §9.3 — the server sends this client no presence notices and no roster after WELCOME.
    QUIET = 0x0000_0002


#: §4.6 — every capability bit this version defines.
KNOWN_CAPABILITIES = Capability.ECHO | Capability.QUIET
