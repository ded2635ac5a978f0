"""The Redis pub/sub wire (RESP), framed by hand like the other baselines, so what gets
measured is the server and not a client library.

A receiver says ``HELLO 3`` then ``SUBSCRIBE room``; a sender writes pipelined
``PUBLISH room text`` commands. Each integer reply to a PUBLISH counts as that message's ACK
(so a sender keeps the same window of unanswered messages as a chatwire sender). RESP3 lets a
subscribed connection publish too, which throughput's peers need; Redis then pushes a peer its
own message as well, always before the reply to its PUBLISH, so the stream takes one delivery
off per reply and counts only what the others said, as chatwire does.
"""

from __future__ import annotations

import contextlib
import re
from typing import Final

from .stream import STAMP_DIGITS, BufferedStream

_SUBSCRIBED = re.compile(rb"[*>]3\r\n\$9\r\nsubscribe\r\n\$\d+\r\n[^\r]*\r\n:\d+\r\n")
_PONG: Final = b"+PONG\r\n"
#: A message push: ``>3`` (RESP3; ``*3`` in RESP2), then ``$7 message``, channel, payload.
_MESSAGE: Final = b"$7\r\nmessage\r\n"
_HEAD: Final = 4 + len(_MESSAGE)
_COLON: Final = ord(":")
_PUSH_OR_ARRAY: Final = (ord(">"), ord("*"))


def command(*words: bytes) -> bytes:
    """One RESP command: an array of bulk strings."""
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)


def publish_command(room: str, text: bytes) -> bytes:
    return command(b"PUBLISH", room.encode(), text)


class RedisStream(BufferedStream):
    def __init__(
        self, nick: str, room: str, join: bool, sample_every: int, *, subscribe: bool
    ) -> None:
        super().__init__(nick, room, join, sample_every)
        self.subscribe = subscribe

    def opening(self) -> bytes:
        if not self.subscribe:  # a pure sender: ready once the server has answered
            return command(b"PING")
        return command(b"HELLO", b"3") + command(b"SUBSCRIBE", self.room.encode())

    def _consume(self, buf: bytes | bytearray, now_ns: int) -> tuple[bytes, int]:
        pos = 0
        if not self.ready:
            pos = self._setup(buf)
        if self.ready and self.failure is None:
            pos = self._walk(buf, pos, now_ns)
        return b"", pos

    def _setup(self, buf: bytes | bytearray) -> int:
        """Skip the HELLO map; ready after the subscription (or a sender's PONG)."""
        if buf[:1] == b"-":
            self.failure = f"redis: {bytes(buf[:200]).decode(errors='replace').strip()}"
            return 0
        if not self.subscribe:
            at = buf.find(_PONG)
            if at >= 0:
                self.ready = True
                return at + len(_PONG)
            return 0
        match = _SUBSCRIBED.search(buf)
        if match is None:
            return 0
        self.ready = True
        return match.end()

    def _walk(self, buf: bytes | bytearray, pos: int, now_ns: int) -> int:
        """The hot loop: count message pushes and PUBLISH replies by their RESP headers."""
        end_all, find = len(buf), buf.find
        delivered = before = self.delivered
        replies, last = 0, -1
        while pos < end_all:
            lead = buf[pos]
            if lead == _COLON:
                nl = find(b"\r\n", pos)
                if nl < 0:
                    break
                replies += 1
                pos = nl + 2
            elif lead in _PUSH_OR_ARRAY and buf.startswith(_MESSAGE, pos + 4):
                at = pos + _HEAD
                nl = find(b"\r\n", at)
                if nl < 0:
                    break
                at = nl + 4 + int(buf[at + 1 : nl])  # past the channel and its CRLF
                nl = find(b"\r\n", at)
                if nl < 0:
                    break
                end = nl + 4 + int(buf[at + 1 : nl])
                if end > end_all:
                    break
                delivered += 1
                last = nl + 2
                pos = end
            elif end_all - pos < _HEAD:
                break
            else:
                self.failure = f"unexpected reply from redis: {bytes(buf[pos : pos + 60])!r}"
                break
        if self.subscribe:
            delivered -= replies  # our own message, pushed to us before the reply
        if replies:
            self.acked += replies
            self.last_ack_ns = now_ns
        if delivered != before:
            self.delivered = delivered
            self.last_rx_ns = now_ns
            if not self.first_rx_ns:
                self.first_rx_ns = now_ns
            every = self.sample_every
            if last >= 0 and delivered // every != before // every:
                with contextlib.suppress(ValueError):
                    self.latencies_ns.append(now_ns - int(buf[last : last + STAMP_DIGITS]))
        return pos
