"""What every bench wire has in common: the stamped message text and the counting stream.

Every message's text starts with a 20-digit ``time.monotonic_ns()`` stamp (CLOCK_MONOTONIC is
one clock for every process on the machine), read back on a sample of deliveries for
end-to-end latency.
"""

from __future__ import annotations

from typing import Final

from spec.events import Welcome

STAMP_DIGITS: Final = 20


def message_text(payload: int, now_ns: int) -> bytes:
    """A message text of ``payload`` bytes (at least the stamp) starting with the stamp."""
    return b"%020d" % now_ns + b"x" * max(0, payload - STAMP_DIGITS)


class Stream:
    """One connection's view of its incoming bytes: handshake first, then counting.

    ``feed`` returns bytes to write back (PONGs, the JOIN after WELCOME). Counters are plain
    attributes so the worker can sum them; ``reset_counts`` starts a new run.
    """

    def __init__(self, nick: str, room: str, join: bool, sample_every: int) -> None:
        self.nick = nick
        self.room = room
        self.join = join
        self.sample_every = max(1, sample_every)
        self.ready = False
        self.failure: str | None = None
        self.welcome: Welcome | None = None
        self.error_codes: list[int] = []
        self.base_seq: int | None = None
        self.reset_counts()

    def reset_counts(self) -> None:
        self.delivered = 0
        self.acked = 0
        #: Requests answered by a non-fatal ERROR (e.g. RATE_LIMITED): no ACK will come.
        self.rejected = 0
        self.last_ack_ns = 0
        self.dup = 0
        self.reordered = 0
        self.bad_seq = 0
        self.bytes_in = 0
        self.first_rx_ns = 0
        self.last_rx_ns = 0
        self.latencies_ns: list[int] = []
        #: Seqs seen (index: seq - base - 1), recorded by ``FrameStream._mark``; the run in
        #: order that the hot loop keeps without recording is [``_run_from``, ``_top``].
        self._seen = bytearray()
        self._last_seq = 0
        #: The highest seq seen so far (-2: none yet, so no seq continues it).
        self._top = -2
        self._run_from = -1

    def opening(self) -> bytes:
        raise NotImplementedError

    def feed(self, data: bytes, now_ns: int) -> bytes:
        raise NotImplementedError


class BufferedStream(Stream):
    """A stream whose frames can straddle reads: the unfinished end of one read is kept and
    joined to the next (no copy while nothing is left over, the common case)."""

    def __init__(self, nick: str, room: str, join: bool, sample_every: int) -> None:
        super().__init__(nick, room, join, sample_every)
        self._leftover = bytearray()

    def feed(self, data: bytes, now_ns: int) -> bytes:
        self.bytes_in += len(data)
        if self._leftover:
            self._leftover += data
            buf: bytes | bytearray = self._leftover
        else:
            buf = data
        out, pos = self._consume(buf, now_ns)
        if buf is self._leftover:
            del self._leftover[:pos]
        elif pos < len(buf):
            self._leftover = bytearray(buf[pos:])
        return out

    def _consume(self, buf: bytes | bytearray, now_ns: int) -> tuple[bytes, int]:
        """Read the whole frames at the start of ``buf``: (bytes to write back, where the
        unread rest starts)."""
        raise NotImplementedError
