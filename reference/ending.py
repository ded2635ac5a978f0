"""How a session ends, as a value: built wherever the end is decided (a request, a timer, the
socket), acted on in one place (``Session.finish``)."""

from __future__ import annotations

from dataclasses import dataclass

from spec.codec import encode
from spec.constants import ErrorCode, LeaveReason
from spec.events import Error


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


def fatal(code: ErrorCode, text: str, in_reply_to: int = 0) -> Ending:
    return Ending(LeaveReason.ERROR, encode(Error(code, text, in_reply_to)), detail=text)
