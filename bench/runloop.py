"""The measured part of a worker's life: send, read, count, until done or the deadline."""

from __future__ import annotations

import selectors
import time
from typing import Any

from .clients import Client, Connections
from .orders import SENDING_ROLES, Role, RunOrder
from .stall import StallWatch

#: Batches one sender may write per loop turn before reads get a look in.
_BATCHES_PER_TURN = 8

#: Latency samples one worker returns at most (evenly thinned beyond that).
MAX_SAMPLES = 50_000


def run_clients(net: Connections, order: RunOrder, windowed: bool, port: int) -> dict[str, Any]:
    """Run ``order`` over the registered clients of ``net`` (``windowed``: the server ACKs, so
    senders keep a window of unACKed messages); ``port`` is the server's, to watch cuts."""
    clients = [c for c in net.registered if not c.closed_ns]
    senders = [c for c in clients if c.role in SENDING_ROLES]
    stallers = [c for c in clients if c.role == Role.STALLER]
    # Counts are not reset here but after the run: another worker's sender may start before
    # this worker reads its order, and what arrived meanwhile belongs to this run.
    for c in clients:
        c.stream.sample_every = 1 if order.pace_hz else order.sample_every
        c.to_send = order.messages if c.role in SENDING_ROLES else 0
        c.sent = c.written = 0
        c.expect = {Role.RECEIVER: order.expect_receiver, Role.PEER: order.expect_peer}.get(
            c.role, 0
        )
    for c in stallers:
        net.wait_for(c, 0)
        c.cut_ns = 0
        c.saw_eof = False
    watch = StallWatch(stallers, port)
    start_ns = time.monotonic_ns()
    deadline_ns = start_ns + int(order.deadline_s * 1e9)
    pace_ns = int(1e9 / order.pace_hz) if order.pace_hz else 0
    period_ns, pause_ns = int(order.pause_every_s * 1e9), int(order.pause_s * 1e9)
    first_tx_ns = 0
    status = "complete"
    paused = False

    def due(c: Client, now_ns: int) -> int:
        """How many messages ``c`` may put on the wire now."""
        n = min(order.batch, c.to_send)
        if windowed:
            n = min(n, order.window - (c.sent - c.stream.acked - c.stream.rejected))
        if pace_ns:
            n = min(n, (now_ns - start_ns) // pace_ns + 1 - c.sent)
        return max(n, 0)

    def done(c: Client) -> bool:
        if c.closed_ns:
            return True
        if c.role == Role.STALLER:
            return bool(c.cut_ns) or not order.wait_for_cut
        s = c.stream
        if c.role in SENDING_ROLES and (c.to_send or c.pending):
            return False
        if windowed and c.role in SENDING_ROLES and s.acked + s.rejected < order.messages:
            return False
        return s.delivered >= c.expect

    unfinished = [c for c in clients if not done(c)]
    while unfinished:
        now_ns = time.monotonic_ns()
        if now_ns >= deadline_ns:
            status = "deadline"
            break
        if period_ns and paused != ((now_ns % period_ns) < pause_ns):
            paused = not paused
            for c in clients:
                if c.role == Role.RECEIVER:
                    net.wait_for(c, selectors.EVENT_READ if not paused else 0)
        for c in senders:
            if c.closed_ns:
                continue
            for _ in range(_BATCHES_PER_TURN):
                if not c.pending:
                    n = due(c, now_ns)
                    if not n:
                        break
                    assert c.maker is not None
                    c.queue(c.maker.batch(n, now_ns))
                    c.to_send -= n
                    c.sent += n
                    first_tx_ns = first_tx_ns or now_ns
                if not net.flush(c):
                    break
            # Ask to hear of writability whenever there is something to write now, or an idle
            # sender would sleep through the select timeout with messages due.
            more = c.pending or due(c, now_ns) > 0
            net.wait_for(c, selectors.EVENT_READ | (selectors.EVENT_WRITE if more else 0))
        timeout = 0.02
        if pace_ns:
            next_due = start_ns + (min(c.sent for c in senders) if senders else 0) * pace_ns
            timeout = min(timeout, max(0.0, (next_due - now_ns) / 1e9))
        for c, mask in net.ready(timeout):
            if mask & selectors.EVENT_READ:
                net.read(c, time.monotonic_ns())
            if mask & selectors.EVENT_WRITE and not c.closed_ns:
                net.flush(c)
        watch.check(time.monotonic_ns())
        unfinished = [c for c in unfinished if not done(c)]
    end_ns = time.monotonic_ns()
    if stallers:
        watch.drain(2.0)
    summary = _summary(clients, status, start_ns, end_ns, first_tx_ns)
    for c in clients:
        c.stream.reset_counts()
    return summary


def _summary(
    clients: list[Client], status: str, start_ns: int, end_ns: int, first_tx_ns: int
) -> dict[str, Any]:
    by_role: dict[str, dict[str, int]] = {}
    latencies: list[int] = []
    client_medians: list[int] = []
    last_rx = last_ack = 0
    first_rx = 0
    cuts: list[dict[str, Any]] = []
    for c in clients:
        s = c.stream
        r = by_role.setdefault(c.role, _zero())
        r["count"] += 1
        r["delivered"] += s.delivered
        r["acked"] += s.acked
        r["rejected"] += s.rejected
        r["dup"] += s.dup
        r["reordered"] += s.reordered
        r["bad_seq"] += s.bad_seq
        r["bytes_in"] += s.bytes_in
        r["bytes_out"] += c.written
        if c.maker is not None:
            r["written"] += c.written // c.maker.size
        r["complete"] += int(c.expect > 0 and s.delivered >= c.expect)
        if c.role != Role.STALLER:
            latencies += s.latencies_ns
            if s.latencies_ns:
                client_medians.append(sorted(s.latencies_ns)[len(s.latencies_ns) // 2])
        if s.last_rx_ns:
            last_rx = max(last_rx, s.last_rx_ns)
            first_rx = min(first_rx, s.first_rx_ns) if first_rx else s.first_rx_ns
        last_ack = max(last_ack, s.last_ack_ns)
        cut_ns = c.cut_ns or c.closed_ns
        if cut_ns and c.closed_why != "reset":
            cuts.append(
                {
                    "role": c.role,
                    "after_s": (cut_ns - (first_tx_ns or start_ns)) / 1e9,
                    "why": c.closed_why or "server closed its end",
                    "codes": list(s.error_codes),
                    "eof_seen": c.saw_eof or bool(c.closed_ns),
                }
            )
    if len(latencies) > MAX_SAMPLES:
        step = len(latencies) / MAX_SAMPLES
        latencies = [latencies[int(i * step)] for i in range(MAX_SAMPLES)]
    return {
        "status": status,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "first_tx_ns": first_tx_ns,
        "first_rx_ns": first_rx,
        "last_rx_ns": last_rx,
        "last_ack_ns": last_ack,
        "roles": by_role,
        "cuts": cuts,
        "latencies_ns": latencies,
        #: Each member's own median: how unevenly the server treats its members.
        "client_medians_ns": client_medians,
    }


def _zero() -> dict[str, int]:
    keys = ("count", "delivered", "acked", "rejected", "dup", "reordered", "bad_seq", "bytes_in")
    return dict.fromkeys((*keys, "bytes_out", "written", "complete"), 0)
