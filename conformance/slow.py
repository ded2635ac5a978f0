"""The flood engine of the §12 cases: one sender pushing max_text messages into a room (or
DIRECTs at one nick) with a bounded window of outstanding requests, timing every answer.

A held sender (§12.3) shows up as one answer that takes about slow_timeout_ms; a server that
never holds shows only short answers; a server that blocks for good shows an answer that never
comes. The flood stops when ``stop`` is set (the stalled member was cut) or at the deadline.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from spec.events import Ack, Direct, Error, Ping, Send

from .client import MockClient, SendFailed
from .errors import Violation
from .scenarios import is_answer


@dataclass
class FloodLog:
    sent: int = 0
    answers: list[Ack | Error] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  #: seconds from send to answer
    answered_at: list[float] = field(default_factory=list)  #: monotonic arrival of each answer
    stalled: bool = False  #: an answer did not come within the wait (the connection open)
    cut: bool = False  #: the server ended the sender's session during the flood

    @property
    def longest(self) -> float:
        return max(self.latencies, default=0.0)

    def acked_seqs(self) -> list[int]:
        return [a.seq for a in self.answers if isinstance(a, Ack)]

    def accepted_before(self, moment: float) -> int:
        """How many messages were ACKed before ``moment`` (monotonic)."""
        return sum(
            1
            for a, t in zip(self.answers, self.answered_at, strict=True)
            if isinstance(a, Ack) and t < moment
        )


def pinging(client: MockClient, stop: threading.Event, idle_ms: int) -> threading.Thread | None:
    """Send a PING of our own every third of the idle timeout until ``stop`` (KEEP-11): the
    client stays active by writing, whatever its reading is doing, so the §12 cases judge
    congestion and never idleness. Writes that fail (the client was cut) end it."""
    if idle_ms == 0:
        return None
    period = idle_ms / 3000
    client.keeps_alive = True

    def run() -> None:
        token = 0
        while not stop.wait(period) and client.closed is None:
            token += 1
            try:
                client.send_frame(Ping(token))
            except SendFailed:
                return

    thread = threading.Thread(target=run, name=f"{client.name}-pings", daemon=True)
    thread.start()
    return thread


def flood(
    sender: MockClient,
    target: str,
    *,
    direct: bool,
    size: int,
    stop: threading.Event,
    deadline: float,
    answer_wait: float,
    window: int = 32,
    max_messages: int = 100_000,
    tag: str = "",
) -> FloodLog:
    """Send until ``stop`` or ``deadline``; returns what was sent and each answer's latency."""
    log = FloodLog()
    sent_at: list[float] = []
    body = "z" * max(0, size - 11 - len(tag))  # exactly size bytes with the number and "|"
    while True:
        more = not stop.is_set() and time.monotonic() < deadline and log.sent < max_messages
        if more and len(sent_at) - len(log.answers) < window:
            text = f"{tag}{log.sent:010d}|{body}"
            frame = Direct(target, text) if direct else Send(target, text)
            try:
                sender.send_frame(frame)
            except SendFailed:  # the server ended the sender's session (judged elsewhere)
                log.cut = True
                return log
            log.sent += 1
            sent_at.append(time.monotonic())
            continue
        if len(log.answers) == len(sent_at):
            return log
        try:
            item, _ = sender.expect(is_answer, "the answer to a SEND/DIRECT", "SLOW-8", answer_wait)
        except Violation:
            # A session the server ended is not a sender held too long: other checks judge
            # why it ended (KEEP-7, for one).
            log.cut = sender.closed is not None
            log.stalled = not log.cut
            return log
        log.answers.append(item)
        now = time.monotonic()
        log.answered_at.append(now)
        log.latencies.append(now - sent_at[len(log.answers) - 1])
