"""Protocol errors. Each carries the wire code it becomes (§18), so the one place that turns
errors into ERROR frames (:func:`spec.codec.error_frame_for`) needs no table of its own.
"""

from __future__ import annotations

from .constants import ErrorCode, is_fatal


class ProtocolError(Exception):
    """The peer broke chatwire/1. ``code`` is what goes on the wire; ``fatal`` follows from it."""

    default_code: ErrorCode = ErrorCode.PROTOCOL_VIOLATION

    def __init__(self, detail: str, code: ErrorCode | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code: ErrorCode = code if code is not None else self.default_code

    @property
    def fatal(self) -> bool:
        return is_fatal(self.code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}: {self.detail})"


class FrameTooLarge(ProtocolError):
    """§3.2: a header announced more bytes than the receiver accepts."""

    default_code = ErrorCode.FRAME_TOO_LARGE


class MalformedFrame(ProtocolError):
    """§14: the body does not fit its length or holds an illegal value."""

    default_code = ErrorCode.MALFORMED


class InvalidText(ProtocolError):
    """§2.2: text that is not strict UTF-8 or holds U+0000."""

    default_code = ErrorCode.INVALID_UTF8


class BadMagic(ProtocolError):
    """§4.1: HELLO did not start with the magic bytes."""

    default_code = ErrorCode.BAD_MAGIC


class ProtocolViolation(ProtocolError):
    """§4.4, §15.1: a frame not allowed in this state or from this side."""

    default_code = ErrorCode.PROTOCOL_VIOLATION


class UnknownType(ProtocolError):
    """§15.1: a frame type the server does not know. Not fatal: the frame is skipped."""

    default_code = ErrorCode.UNKNOWN_TYPE


class LocalProtocolError(Exception):
    """Our own code tried to send something chatwire/1 forbids: a bug on this side."""
