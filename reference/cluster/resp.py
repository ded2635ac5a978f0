"""RESP2, the Redis wire format, without I/O: encode commands, parse replies from bytes.

Only what the cluster hub uses: commands go out as arrays of bulk strings; replies come back
as simple strings (``str``), errors (:class:`ReplyError`, returned, not raised, so a pipeline
can carry on), integers, bulk strings (``bytes`` or None) and arrays (``list`` or None).
"""

from __future__ import annotations

from typing import Union

Reply = Union[str, int, bytes, None, "ReplyError", list["Reply"]]


class ReplyError(Exception):
    """An error reply (``-ERR ...``) from Redis."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplyError) and other.args == self.args

    def __hash__(self) -> int:
        return hash(self.args)


class ProtocolError(Exception):
    """The peer sent bytes that are not RESP2: the connection cannot be trusted."""


def _arg(value: bytes | str | int) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return str(value).encode("ascii")


def encode_command(*args: bytes | str | int) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _arg(arg)
        parts.append(b"$%d\r\n" % len(data))
        parts.append(data)
        parts.append(b"\r\n")
    return b"".join(parts)


#: next_reply() returns this when the buffer does not yet hold a whole reply.
INCOMPLETE = object()


class Parser:
    """Feed bytes with :meth:`feed`; take whole replies with :meth:`next_reply`."""

    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_reply(self) -> Reply | object:
        """The next whole reply, or :data:`INCOMPLETE` (nothing consumed then)."""
        try:
            reply, pos = self._parse(self._pos)
        except _Short:
            return INCOMPLETE
        self._pos = pos
        return reply

    def _line(self, pos: int) -> tuple[bytes, int]:
        end = self._buf.find(b"\r\n", pos)
        if end < 0:
            raise _Short
        return bytes(self._buf[pos:end]), end + 2

    def _parse(self, pos: int) -> tuple[Reply, int]:
        if pos >= len(self._buf):
            raise _Short
        kind = self._buf[pos]
        line, pos = self._line(pos + 1)
        if kind == 0x24:  # $ bulk string
            size = _int(line)
            if size < 0:
                return None, pos
            end = pos + size
            if end + 2 > len(self._buf):
                raise _Short
            if self._buf[end : end + 2] != b"\r\n":
                raise ProtocolError("bulk string not followed by CRLF")
            return bytes(self._buf[pos:end]), end + 2
        if kind == 0x2A:  # * array
            count = _int(line)
            if count < 0:
                return None, pos
            items: list[Reply] = []
            for _ in range(count):
                item, pos = self._parse(pos)
                items.append(item)
            return items, pos
        if kind == 0x3A:  # : integer
            return _int(line), pos
        if kind == 0x2B:  # + simple string
            return line.decode("utf-8", "replace"), pos
        if kind == 0x2D:  # - error
            return ReplyError(line.decode("utf-8", "replace")), pos
        raise ProtocolError(f"unknown RESP type byte 0x{kind:02X}")


class _Short(Exception):
    """The buffer ends inside a reply."""


def _int(line: bytes) -> int:
    try:
        return int(line)
    except ValueError:
        raise ProtocolError(f"not a RESP integer: {line!r}") from None
