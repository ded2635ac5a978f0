"""chatwire/1: the protocol's numbers, frame definitions and sans-I/O core.

This package imports nothing else of the repository; everything else imports it.
"""

from .codec import decode_body, decode_frame, encode, error_frame_for
from .connection import Connection, Role, State
from .constants import (
    DEFAULT_MAX_FRAME,
    DEFAULT_ROOM,
    HARD_MAX_FRAME,
    HEADER_SIZE,
    MAGIC,
    PROTOCOL_VERSION,
    Capability,
    ErrorCode,
    FrameType,
    LeaveReason,
    is_fatal,
)
from .decoder import FrameDecoder, FrameSplitter
from .errors import LocalProtocolError, ProtocolError

__all__ = [
    "DEFAULT_MAX_FRAME",
    "DEFAULT_ROOM",
    "HARD_MAX_FRAME",
    "HEADER_SIZE",
    "MAGIC",
    "PROTOCOL_VERSION",
    "Capability",
    "Connection",
    "ErrorCode",
    "FrameDecoder",
    "FrameSplitter",
    "FrameType",
    "LeaveReason",
    "LocalProtocolError",
    "ProtocolError",
    "Role",
    "State",
    "decode_body",
    "decode_frame",
    "encode",
    "error_frame_for",
    "is_fatal",
]
