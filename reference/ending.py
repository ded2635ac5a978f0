"""How a session ends, as a value: built wherever the end is decided (a request, a timer, the
socket), acted on in one place (``Session.finish``).

Every fatal error reaches the wire through :func:`from_error`: code that finds a fault raises
a typed :class:`~spec.errors.ProtocolError` (or names a code with :func:`fatal`), and only
here does it become ERROR bytes (with :func:`spec.codec.error_frame_for`).
"""

from __future__ import annotations

from dataclasses import dataclass

from spec.codec import error_frame_for
from spec.constants import ErrorCode, LeaveReason
from spec.errors import ProtocolError, SessionEnded


@dataclass(frozen=True, slots=True)
class Ending:
    """How a session ends: the LEFT reason, the fatal ERROR to send first (if any), the BYE
    text, whether the others hear of it, and whether the socket can still be closed politely."""

    reason: LeaveReason
    error: bytes | None = None
    text: str = ""
    notify: bool = True
    graceful: bool = True
    detail: str = ""


def from_error(exc: ProtocolError, reason: LeaveReason = LeaveReason.ERROR) -> Ending:
    """The one place a fatal error becomes the ERROR frame a session ends with (§11.1-§11.3)."""
    return Ending(reason, error_frame_for(exc), detail=repr(exc))


def fatal(code: ErrorCode, text: str, in_reply_to: int = 0) -> Ending:
    return from_error(SessionEnded(text, code, in_reply_to))
