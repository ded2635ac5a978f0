"""§13 Flood limit (optional): off when rate = 0; otherwise burst accepted, excess refused with
RATE_LIMITED and dropped, and only SEND and DIRECT count."""

from __future__ import annotations

import time

from conformance.client import MockClient
from conformance.context import Case
from conformance.errors import SkipReason, skip
from conformance.markers import requirement
from conformance.scenarios import await_answers
from conformance.steps import join
from spec.constants import ErrorCode
from spec.events import Ack, Deliver, Error, ListRooms, Ping, Send, Who


def _rate(c: MockClient) -> tuple[int, int]:
    assert c.welcome is not None
    return c.welcome.rate, c.welcome.burst


def _limited(cw: Case, c: MockClient) -> tuple[int, int]:
    rate, burst = _rate(c)
    if rate == 0:
        skip(SkipReason.NOT_ADVERTISED, "the server advertises no flood limit (rate = 0)")
    if burst > 5000:
        skip(SkipReason.NOT_APPLICABLE, f"burst {burst} is too large to exhaust")
    return rate, burst


@requirement("FLOOD-1")
def test_no_limit_when_rate_is_zero(cw: Case) -> None:
    """When rate is 0, a server MUST NOT refuse any message with RATE_LIMITED."""
    room = cw.room()
    c = cw.registered("fast")
    if _rate(c)[0] != 0:
        skip(SkipReason.NOT_APPLICABLE, "the server has a flood limit (rate > 0)")
    join(c, room)
    for i in range(500):
        c.send_frame(Send(room, f"m{i}"))
    answers = await_answers(c, 500, "MSG-6", 30)
    limited = [a for a in answers if isinstance(a, Error) and a.code == ErrorCode.RATE_LIMITED]
    cw.check(not limited, "FLOOD-1", "no RATE_LIMITED", f"{len(limited)} of 500")


@requirement("FLOOD-3", "FLOOD-2", "ORD-1")
def test_burst_then_limit(cw: Case) -> None:
    """A server MUST accept burst messages sent back to back by a client that has just
    registered, and refuse with RATE_LIMITED (dropping it) a message arriving when the bucket
    holds less than one token."""
    room = cw.room()
    c, watcher = cw.registered("flood"), cw.registered("watcher")
    rate, burst = _limited(cw, c)
    c.obey_flood_limit = False
    join(c, room)
    join(watcher, room)
    extra = rate + 20
    t0 = time.monotonic()
    for i in range(burst + extra):
        c.send_frame(Send(room, f"m{i}"))
    answers = await_answers(c, burst + extra, "MSG-6", 30)
    elapsed = time.monotonic() - t0
    first = answers[:burst]
    cw.check(
        all(isinstance(a, Ack) for a in first),
        "FLOOD-3",
        f"the first {burst} accepted",
        f"{sum(isinstance(a, Ack) for a in first)} accepted",
    )
    accepted = sum(isinstance(a, Ack) for a in answers)
    allowed = burst + rate * elapsed + 1
    cw.check(
        accepted <= allowed,
        "FLOOD-2",
        f"at most {allowed:.0f} accepted in {elapsed:.2f}s (burst {burst}, rate {rate}/s)",
        f"{accepted} accepted",
    )
    refused = [a for a in answers if isinstance(a, Error)]
    bad = [a for a in refused if a.code != ErrorCode.RATE_LIMITED]
    cw.check(not bad, "FLOOD-2", "RATE_LIMITED for the refused ones", repr(bad[:2]))
    seqs = [e.seq for e in watcher.barrier("ORD-1") if isinstance(e, Deliver) and e.room == room]
    cw.check(len(seqs) == accepted, "FLOOD-2", f"{accepted} delivered", f"{len(seqs)}")
    cw.check(seqs == list(range(1, len(seqs) + 1)), "ORD-1", "seqs without gaps", repr(seqs[:8]))


@requirement("FLOOD-4")
def test_only_send_and_direct_count(cw: Case) -> None:
    """A server MUST NOT count frames other than SEND and DIRECT against the flood limit."""
    room = cw.room()
    c = cw.registered("busy")
    _, burst = _limited(cw, c)
    c.obey_flood_limit = False
    join(c, room)
    for i in range(2 * burst + 10):
        c.send_frame(Ping(i))
        c.send_frame(Who(room))
        c.send_frame(ListRooms())
    c.barrier("FLOOD-4", timeout=30)
    for i in range(burst):
        c.send_frame(Send(room, f"m{i}"))
    answers = await_answers(c, burst, "MSG-6", 30)
    limited = [a for a in answers if isinstance(a, Error)]
    cw.check(
        not limited, "FLOOD-4", f"{burst} messages accepted after other frames", repr(limited[:2])
    )
