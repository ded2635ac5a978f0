"""The four wires the bench speaks, one per kind of server, behind one small interface.

- ``chatwire``: chatwire/1 (HELLO with QUIET, JOIN, SEND; counts DELIVER and ACK).
- ``raw``: the raw relay baseline. Senders write pre-encoded DELIVER frames and the relay
  copies them to every other socket; receivers count them exactly like chatwire DELIVERs.
- ``line``: the naive baseline. First line is the nick, every later line is a message;
  receivers count newlines.
- ``redis``: Redis pub/sub over RESP (``bench.resp``): SUBSCRIBE, pipelined PUBLISH.

Receivers walk frame headers (or count newlines) instead of decoding: the harness must cost
far less per delivery than any server it measures. Every text starts with a time stamp
(``bench.stream``).
"""

from __future__ import annotations

import struct
from typing import Final

from spec.codec import decode_body, encode
from spec.constants import HARD_MAX_FRAME, Capability, FrameType, is_fatal
from spec.errors import ProtocolError
from spec.events import Deliver, Error, Hello, Join, Ping, Pong, Roster, Send, Welcome

from .orders import Dialect, Role
from .resp import RedisStream, publish_command
from .stream import STAMP_DIGITS, BufferedStream, Stream, message_text

__all__ = ["STAMP_DIGITS", "MessageMaker", "Stream", "make_stream", "message_text"]

_LEN = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_DELIVER: Final = int(FrameType.DELIVER)
_ACK: Final = int(FrameType.ACK)
_PING: Final = int(FrameType.PING)
_ERROR: Final = int(FrameType.ERROR)
#: The raw relay announces each accepted socket with this frame (a PONG, token 0).
RAW_READY: Final = encode(Pong(0))


#: Seqs further than this above a stream's base are counted as bad, not recorded (the record
#: is a byte per seq).
_SEQ_SPAN = 50_000_000


class FrameStream(BufferedStream):
    """chatwire and raw: length-prefixed frames, DELIVERs counted from their headers."""

    def _consume(self, buf: bytes | bytearray, now_ns: int) -> tuple[bytes, int]:
        out, pos = b"", 0
        if not self.ready:
            out, pos = self._setup(buf)
        if self.ready and self.failure is None:
            reply, pos = self._walk(buf, pos, now_ns)
            out += reply
        return out, pos

    def _frame_at(self, buf: bytes | bytearray, start: int) -> tuple[int, int, int] | None:
        """(type, body start, end) of the frame at ``start`` if it is whole."""
        if len(buf) - start < 5:
            return None
        (length,) = _LEN.unpack_from(buf, start)
        if length == 0 or length > HARD_MAX_FRAME:
            self.failure = f"unframeable length {length}"
            return None
        end = start + 4 + length
        return (buf[start + 4], start + 5, end) if end <= len(buf) else None

    def _setup(self, buf: bytes | bytearray) -> tuple[bytes, int]:
        """Decode handshake frames fully (they are few); stop right after becoming ready."""
        pos, out = 0, b""
        while self.failure is None and (frame := self._frame_at(buf, pos)) is not None:
            ftype, body, end = frame
            pos = end
            out += self._setup_frame(ftype, bytes(buf[body:end]))
            if self.ready:
                return out, pos
        return out, pos

    def _setup_frame(self, ftype: int, body: bytes) -> bytes:
        raise NotImplementedError

    def _walk(self, buf: bytes | bytearray, pos: int, now_ns: int) -> tuple[bytes, int]:
        """The hot loop: count frames by type, check DELIVER/ACK seqs, answer PINGs.

        A seq one above every seq seen so far can be neither a duplicate nor out of order: it
        only extends the run kept in ``_top`` (no call, no bytes touched; the load generator
        must not cost more per message than the server it measures). Any other seq goes to
        ``_mark``, which records that run first."""
        end_all, out = len(buf), b""
        last_deliver = -1
        delivered = delivered_before = self.delivered
        acked = acked_before = self.acked
        top = self._top
        # The seqs ``_mark`` takes (it counts those further from the base as bad).
        ceiling = -1 if self.base_seq is None else self.base_seq + 1 + _SEQ_SPAN
        unpack_len, unpack_u64 = _LEN.unpack_from, _U64.unpack_from
        while end_all - pos >= 5:
            (length,) = unpack_len(buf, pos)
            end = pos + 4 + length
            if length == 0 or length > HARD_MAX_FRAME:
                self.failure = f"unframeable length {length}"
                break
            if end > end_all:
                break
            ftype = buf[pos + 4]
            if ftype in (_DELIVER, _ACK):
                (seq,) = unpack_u64(buf, pos + 6 + buf[pos + 5])
                if seq == top + 1 and seq <= ceiling:
                    top = seq
                else:
                    self._top = top
                    self._mark(seq)
                    top = self._top
                if ftype == _DELIVER:
                    delivered += 1
                    last_deliver = pos
                else:
                    acked += 1
            elif ftype == _PING:
                out += encode(Pong(unpack_u64(buf, pos + 5)[0]))
            elif ftype == _ERROR:
                code = struct.unpack_from(">H", buf, pos + 5)[0]
                self.error_codes.append(code)
                self.rejected += not is_fatal(code)
            pos = end
        self._top = top
        self.delivered, self.acked = delivered, acked
        if acked != acked_before:
            self.last_ack_ns = now_ns
        if delivered != delivered_before:
            self.last_rx_ns = now_ns
            if not self.first_rx_ns:
                self.first_rx_ns = now_ns
            every = self.sample_every
            if delivered // every != delivered_before // every:
                self.latencies_ns.append(now_ns - _deliver_stamp(buf, last_deliver))
        return out, pos

    def _mark(self, seq: int) -> None:
        """Count ``seq`` as a duplicate, out of order or outside the run's seqs, and record
        it (and the run in order before it)."""
        base, top = self.base_seq, self._top
        if base is None:
            return
        if self._run_from <= top:  # the run in order the hot loop kept: its last seq came last
            self._record(self._run_from - base - 1, top - base)
            self._last_seq = top
        index = seq - base - 1
        if index < 0 or index > _SEQ_SPAN:
            self.bad_seq += 1
        else:
            seen = self._seen
            if seen[index : index + 1] == b"\x01":
                self.dup += 1
            else:
                self._record(index, index + 1)
            if seq < self._last_seq:
                self.reordered += 1
            self._last_seq = seq
            top = max(top, seq)
        self._top, self._run_from = top, top + 1

    def _record(self, start: int, stop: int) -> None:
        """Mark seq indices [start, stop) as seen."""
        seen = self._seen
        if stop > len(seen):
            seen.extend(bytes(max(stop - len(seen), len(seen))))
        seen[start:stop] = b"\x01" * (stop - start)


def _deliver_stamp(buf: bytes | bytearray, pos: int) -> int:
    """The stamp at the start of the text of the DELIVER frame at ``pos``."""
    sender_at = pos + 5 + 1 + buf[pos + 5] + 8
    text_at = sender_at + 1 + buf[sender_at] + 2
    try:
        return int(buf[text_at : text_at + STAMP_DIGITS])
    except ValueError:
        return 0


class ChatwireStream(FrameStream):
    def opening(self) -> bytes:
        return encode(Hello(self.nick, caps=int(Capability.QUIET)))

    def _setup_frame(self, ftype: int, body: bytes) -> bytes:
        try:
            event = decode_body(ftype, body)
        except ProtocolError as exc:
            self.failure = f"server sent a bad frame: {exc!r}"
            return b""
        if isinstance(event, Welcome):
            self.welcome = event
            if not self.join:
                self.ready = True
                return b""
            return encode(Join(self.room))
        if isinstance(event, Roster) and event.room == self.room.lower() and not event.more:
            self.base_seq = event.seq
            self.ready = True
        elif isinstance(event, Ping):
            return encode(Pong(event.token))
        elif isinstance(event, Error):
            self.error_codes.append(event.code)
            if event.fatal or self.welcome is None:
                self.failure = f"ERROR {event.code_name}: {event.text}"
        return b""


class RawStream(FrameStream):
    """The relay needs no handshake; it says when the socket is on its list."""

    def opening(self) -> bytes:
        return b""

    def _setup_frame(self, ftype: int, body: bytes) -> bytes:
        if ftype == FrameType.PONG:
            self.base_seq = 0
            self.ready = True
        return b""


class LineStream(Stream):
    """The naive baseline: newline-framed text, one message per line."""

    def __init__(self, nick: str, room: str, join: bool, sample_every: int) -> None:
        super().__init__(nick, room, join, sample_every)
        self._tail = b""

    def opening(self) -> bytes:
        return self.nick.encode() + b"\n"

    def feed(self, data: bytes, now_ns: int) -> bytes:
        self.bytes_in += len(data)
        if not self.ready:
            data = self._tail + data
            cut = data.find(b"\n")
            if cut < 0:
                self._tail = data
                return b""
            self.ready = True
            self._tail = b""
            data = data[cut + 1 :]
            self.bytes_in -= len(data)
            return self.feed(data, now_ns) if data else b""
        lines = data.count(b"\n")
        if lines:
            before = self.delivered
            self.delivered += lines
            self.last_rx_ns = now_ns
            if not self.first_rx_ns:
                self.first_rx_ns = now_ns
            every = self.sample_every
            if self.delivered // every != before // every:
                stamp = _line_stamp(self._tail + data)
                if stamp:
                    self.latencies_ns.append(now_ns - stamp)
            self._tail = data[data.rfind(b"\n") + 1 :][-256:]
        else:
            self._tail = (self._tail + data)[-256:]
        return b""


def _line_stamp(data: bytes) -> int:
    """The stamp of the last complete line: ``nick: STAMP...``."""
    end = data.rfind(b"\n")
    start = data.rfind(b"\n", 0, end) + 1
    colon = data.find(b": ", start, end)
    try:
        return int(data[colon + 2 : colon + 2 + STAMP_DIGITS]) if colon >= 0 else 0
    except ValueError:
        return 0


def make_stream(
    dialect: Dialect, nick: str, room: str, join: bool, sample_every: int, role: Role | None = None
) -> Stream:
    """The stream for one client; ``role`` matters only to Redis (a pure sender does not
    subscribe, as a chatwire sender gets no DELIVERs)."""
    if dialect is Dialect.REDIS:
        return RedisStream(nick, room, join, sample_every, subscribe=role is not Role.SENDER)
    kinds: dict[Dialect, type[Stream]] = {
        Dialect.CHATWIRE: ChatwireStream,
        Dialect.RAW: RawStream,
        Dialect.LINE: LineStream,
    }
    return kinds[dialect](nick, room, join, sample_every)


class MessageMaker:
    """Builds a sender's batches: every message the same size, stamped when built."""

    def __init__(self, dialect: Dialect, room: str, nick: str, payload: int, first_id: int) -> None:
        self.dialect = dialect
        self.next_id = first_id
        text = message_text(payload, 0)
        if dialect is Dialect.CHATWIRE:
            frame = encode(Send(room, text.decode()))
            self._stamp_at = len(frame) - len(text)
            self._template = frame
        elif dialect is Dialect.REDIS:
            frame = publish_command(room, text)
            self._stamp_at = len(frame) - 2 - len(text)
            self._template = frame
        elif dialect is Dialect.RAW:
            frame = encode(Deliver(room, 0, nick, text.decode()))
            self._seq_at = 5 + 1 + len(room.encode())
            self._stamp_at = len(frame) - len(text)
            self._template = frame
        else:
            self._template = text + b"\n"
            self._stamp_at = 0
        self.size = len(self._template)

    def batch(self, count: int, now_ns: int) -> bytes:
        stamp = b"%020d" % now_ns
        at = self._stamp_at
        one = self._template[:at] + stamp + self._template[at + STAMP_DIGITS :]
        if self.dialect is not Dialect.RAW:
            return one * count
        # Raw frames carry a unique id where a server would put the seq, so receivers can
        # tell a lost or duplicated frame even though the relay assigns nothing.
        head, tail = one[: self._seq_at], one[self._seq_at + 8 :]
        first = self.next_id
        self.next_id += count
        return b"".join(head + _U64.pack(i) + tail for i in range(first, first + count))
