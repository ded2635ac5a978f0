"""The sans-I/O frame decoder: bytes in, in any split; events (or a protocol error) out.

It never touches a socket. The length is checked against the limit as soon as its four bytes
are in (§3.2), before a byte of the body is waited for, so a hostile 4 GiB length costs
nothing; and it never holds more than one partial frame plus what was fed since the last
complete frame. After an error the decoder is broken: every later call raises the same error,
because the stream can no longer be framed (§14).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from . import fastpath
from .codec import decode_body
from .constants import DEFAULT_MAX_FRAME, HARD_MAX_FRAME, HEADER_SIZE
from .errors import FrameTooLarge, MalformedFrame, ProtocolError
from .events import Event, UnknownFrame

_LENGTH = struct.Struct(">I")

#: Compact the buffer once this many consumed bytes sit at its front.
_COMPACT_AT = 65536


class FrameSplitter:
    """Cuts a byte stream into ``(type, body)`` pairs without decoding the bodies. Slotted:
    a server holds one per client."""

    __slots__ = ("_buf", "_error", "_pos", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not 1 <= max_frame <= HARD_MAX_FRAME:
            raise ValueError(f"max_frame must be in 1..{HARD_MAX_FRAME}, not {max_frame}")
        self.max_frame = max_frame
        self._buf = bytearray()
        self._pos = 0
        self._error: ProtocolError | None = None

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the peer. Once the stream is broken they are dropped: it can no
        longer be framed, and keeping them would let a peer grow the buffer without bound."""
        if self._error is not None:
            return
        if self._pos >= _COMPACT_AT:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return len(self._buf) - self._pos

    def next_frame(self) -> tuple[int, bytes] | None:
        """The next whole frame's type and body, or None until more bytes arrive."""
        if self._error is not None:
            raise self._error
        buf, pos = self._buf, self._pos
        have = len(buf) - pos
        if have < 4:
            return None
        (length,) = _LENGTH.unpack_from(buf, pos)
        if length == 0:
            self._fail(MalformedFrame("frame length is zero"))
        if length > self.max_frame:
            self._fail(FrameTooLarge(f"frame length {length} exceeds limit {self.max_frame}"))
        end = pos + 4 + length
        if len(buf) < end:
            return None
        ftype = buf[pos + 4]
        body = bytes(buf[pos + HEADER_SIZE : end])
        if end == len(buf):
            buf.clear()
            self._pos = 0
        else:
            self._pos = end
        return ftype, body

    def next_sends(self, limit: int) -> list[tuple[bytes, bytes]]:
        """Take the run of whole, well-formed SEND frames at the front, at most ``limit``, as
        :func:`spec.fastpath.scan_sends` gives them; [] if the next frame is anything else or
        not yet whole (then :meth:`next_frame` takes it, and reports its fault if it has one)."""
        if self._error is not None:
            return []
        run, end = fastpath.scan_sends(self._buf, self._pos, self.max_frame, limit)
        if run:
            if end == len(self._buf):
                self._buf.clear()
                self._pos = 0
            else:
                self._pos = end
        return run

    def _fail(self, error: ProtocolError) -> None:
        self._error = error
        self._buf.clear()
        self._pos = 0
        raise error


class FrameDecoder(FrameSplitter):
    """A :class:`FrameSplitter` that also decodes each body into a typed event."""

    __slots__ = ()

    def next_event(self) -> Event | UnknownFrame | None:
        """The next event, or None until more bytes arrive; raises :class:`ProtocolError`."""
        frame = self.next_frame()
        if frame is None:
            return None
        try:
            return decode_body(*frame)
        except ProtocolError as exc:
            self._fail(exc)
            raise  # unreachable: _fail raises

    def events(self) -> Iterator[Event | UnknownFrame]:
        """Every event now complete, in order; raises at the first bad frame."""
        while (event := self.next_event()) is not None:
            yield event
