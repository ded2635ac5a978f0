"""Protocol errors, one class per wire code (§18). Each carries the code it becomes and the
type of the frame that caused it (``in_reply_to``, §11.1 ERR-1), so the one place that turns
errors into ERROR frames (:func:`spec.codec.error_frame_for`) needs no table of its own.

Code that finds a fault raises; it never builds an ERROR. As in websockets' ``parse`` ->
``fail``, the conversion to bytes happens once, where the session ends.
"""

from __future__ import annotations

from .constants import ErrorCode, is_fatal


class ProtocolError(Exception):
    """The peer broke chatwire/1. ``code`` is what goes on the wire; ``fatal`` follows from it."""

    default_code: ErrorCode = ErrorCode.PROTOCOL_VIOLATION

    def __init__(self, detail: str, code: ErrorCode | None = None, in_reply_to: int = 0) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code: ErrorCode = code if code is not None else self.default_code
        #: The type byte of the frame at fault; 0 if none, or if its type was never read.
        self.in_reply_to = in_reply_to

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


class UnsupportedVersion(ProtocolError):
    """§4.1: HELLO asked for a version this server does not speak."""

    default_code = ErrorCode.UNSUPPORTED_VERSION


class ProtocolViolation(ProtocolError):
    """§4.4, §15.1: a frame not allowed in this state or from this side."""

    default_code = ErrorCode.PROTOCOL_VIOLATION


class UnknownType(ProtocolError):
    """§15.1: a frame type the server does not know. Not fatal: the frame is skipped."""

    default_code = ErrorCode.UNKNOWN_TYPE


class SessionEnded(ProtocolError):
    """A session ends for a reason that is not a fault in a frame: a timeout, the server
    shutting down or full, a slow consumer (``code`` says which; always fatal)."""


class LocalProtocolError(Exception):
    """Our own code tried to send something chatwire/1 forbids: a bug on this side."""
