"""§12 Slow consumers and overload: a member that stops reading is cut after slow_timeout_ms
and holds its room up no longer; a member that keeps reading, however slowly, is never cut and
loses nothing."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time

from conformance.client import Closed, MockClient, SendFailed, describe, reason_name
from conformance.context import Case
from conformance.errors import HarnessError, SkipReason, Violation, skip
from conformance.markers import requirement
from conformance.predicates import joined_about, left_about
from conformance.slow import FloodLog, flood, pinging
from conformance.steps import join
from spec.constants import ErrorCode, LeaveReason
from spec.events import Deliver, Error, Hello, Join, Left, Welcome

#: Longest slow_timeout_ms the suite will sit through (before --timeout-scale).
SLOW_BOUND_MS = 10_000
#: A receive buffer as small as the kernel allows, so the stalled member's window closes fast.
TINY_RCVBUF = 4096


def _params(cw: Case, c: MockClient) -> tuple[Welcome, float]:
    w = c.welcome
    assert w is not None
    if w.slow_timeout_ms > SLOW_BOUND_MS * cw.scale:
        skip(
            SkipReason.LIMIT_TOO_LONG,
            f"slow_timeout_ms={w.slow_timeout_ms} is too long to wait for (the suite waits up"
            f" to {SLOW_BOUND_MS} ms); advertise a shorter slow_timeout_ms or raise"
            " --timeout-scale",
        )
    return w, w.slow_timeout_ms / 1000


#: Output a stalled member's kernel buffers and pending output may take before it is surely
#: congested, beyond out_limit: what the flood senders must be able to push, flood limit or not.
CONGEST_MARGIN = 4 * 1024 * 1024


def _senders_needed(cw: Case, w: Welcome, slow: float) -> int:
    """Senders enough to congest a member within about twice slow_timeout_ms while each keeps
    to its own flood bucket (§13): one without a flood limit; with one, as many as it takes
    (at most --clients), so that a rate-limited server's overload behaviour is judged too.
    (No more than that: the members that do read must keep up with all of them.)"""
    if not w.rate:
        return 1
    per_sender = w.rate * max(1, w.max_text) * 2 * max(slow, 1.0)
    need = -(-(w.out_limit + CONGEST_MARGIN) // int(per_sender))
    return max(1, min(cw.options.clients, need))


def _grace(cw: Case, slow: float) -> float:
    return max(1.0, 0.5 * slow) * cw.scale


def _watch_cut(watcher: MockClient, room: str, nick: str, stop: threading.Event) -> None:
    """Set ``stop`` when ``watcher`` sees ``nick`` leave ``room`` (the cut)."""

    def run() -> None:
        with contextlib.suppress(Violation):
            watcher.expect(left_about(room, nick), f"LEFT of {nick}", "SLOW-1", timeout=120)
        stop.set()

    threading.Thread(target=run, daemon=True).start()


def _ping_latencies(c: MockClient, stop: threading.Event, out: list[float]) -> threading.Thread:
    """While ``stop`` is unset, time PING round trips of a client nobody holds (SLOW-5)."""

    def run() -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                c.barrier("SLOW-5", timeout=30)
            except Violation:
                out.append(float("inf"))
                return
            out.append(time.monotonic() - t0)
            stop.wait(0.05)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _kernel_slack() -> int:
    """Output the kernel may buffer for one connection, generously: twice the largest send
    buffer Linux grows to (tcp_wmem max, 4 MiB by default), at least 8 MiB. A sender that got
    more than out_limit + this accepted while a member never read was not held back (§12.3)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem", encoding="ascii") as fh:
            wmem_max = int(fh.read().split()[2])
    except (OSError, ValueError, IndexError):
        wmem_max = 4 * 1024 * 1024
    return max(8 * 1024 * 1024, 2 * wmem_max)


KERNEL_SLACK = _kernel_slack()


def _judge_hold(
    cw: Case, logs: list[FloodLog], slow: float, hold_req: str, cut_at: float, w: Welcome
) -> None:
    """SLOW-8: no answer took longer than slow_timeout (+ time to cut). SLOW-3/4: until the
    cut, the server accepted no more than out_limit plus what kernel buffers can hold (and one
    message per sender) — a server that never holds senders keeps accepting until the cut."""
    grace = _grace(cw, slow)
    stalled = any(log.stalled for log in logs)
    longest = max(log.longest for log in logs)
    cw.check(
        not stalled and longest <= slow + grace,
        "SLOW-8",
        f"a sender held at most slow_timeout {slow:g}s (+{grace:g}s to cut)",
        "an answer never came" if stalled else f"held {longest:.2f}s",
        slack=None if stalled else longest - slow,
    )
    accepted = sum(log.accepted_before(cut_at) for log in logs) * w.max_text
    bound = w.out_limit + KERNEL_SLACK + len(logs) * w.max_text
    cw.check(
        accepted <= bound,
        hold_req,
        f"at most out_limit {w.out_limit} + {bound - w.out_limit} bytes accepted before the cut",
        f"{accepted} bytes accepted: the senders were not held",
    )
    sent = sum(log.sent for log in logs)
    who = f"{len(logs)} senders, " if len(logs) > 1 else ""
    cw.observe(
        f"{who}{sent} messages; {accepted} bytes before the cut; longest answer {longest:.2f}s",
        hold_req,
        "SLOW-8",
    )


def _cut_time(watcher: MockClient, room: str, nick: str) -> float:
    return next((t for t, e in watcher.log if left_about(room, nick)(e)), time.monotonic())


def _judge_cut(
    cw: Case, stalled: MockClient, watcher: MockClient, room: str, logs: list[FloodLog], w: Welcome
) -> None:
    left = next((e for _, e in watcher.log if left_about(room, stalled.nick)(e)), None)
    if left is None and watcher.closed is not None:
        ended = [e for _, e in watcher.log if isinstance(e, Error | Closed)]
        raise HarnessError(f"the watching client's connection ended: {describe(ended[0])}")
    if left is None:
        pushed = sum(len(log.acked_seqs()) for log in logs) * w.max_text
        if not any(log.stalled for log in logs) and pushed < w.out_limit + CONGEST_MARGIN:
            # The senders never got enough through to be sure the member was congested.
            raise HarnessError(
                f"the flood moved only {pushed} bytes (out_limit {w.out_limit}): the member"
                " may never have been congested; raise --clients or --timeout-scale"
            )
        if any(log.stalled for log in logs):  # held for good: the hold bound broken too
            cw.check(False, "SLOW-8", "a sender held at most slow_timeout_ms", "held for good")
        raise Violation("SLOW-1", f"{stalled.nick} cut with SLOW_CONSUMER", "it was never cut")
    cw.check(
        left.reason == LeaveReason.SLOW_CONSUMER,
        "SLOW-1",
        "a cut with SLOW_CONSUMER (LEFT SLOW_CONSUMER)",
        f"LEFT {reason_name(left.reason)}",
    )
    cw.ok("PRES-6")
    stalled.start_reading()  # only now: the cut must not have waited for this (SLOW-2)
    end = None
    while True:
        item = stalled.recv_event(10)
        if item is None or isinstance(item, Closed):
            end = item
            break
        if isinstance(item, Error):
            cw.check(
                item.code == ErrorCode.SLOW_CONSUMER,
                "SLOW-1",
                "ERROR SLOW_CONSUMER (if any reached the client)",
                describe(item),
            )
            cw.observe("the SLOW_CONSUMER ERROR reached the stalled client")
    cw.check(end is not None, "SLOW-2", "the stalled client's connection closed", "still open")


def _stalled_member(
    cw: Case,
    watcher: MockClient,
    room: str | None,
    w: Welcome,
    *,
    writes: bool = True,
    cut_watcher: MockClient | None = None,
) -> tuple[MockClient, threading.Event]:
    """A client that registers (and joins ``room``, seen by ``watcher``) and then never reads,
    and an event set once its cut is seen: by ``cut_watcher`` in the lobby if given, else by
    ``watcher``. With ``writes`` it PINGs on its own (KEEP-11), so only its reading is at
    fault and never its silence."""
    stop = threading.Event()
    nick = cw.nick("stalled")
    stalled = cw.client("stalled", read=False, rcvbuf=TINY_RCVBUF)
    stalled.send_frame(Hello(nick=nick))
    if room is not None:
        stalled.send_frame(Join(room))
    stalled.nick = nick
    where = room if room is not None else "lobby"
    watcher.expect(joined_about(where, nick), "JOINED of the stalled member", "PRES-1")
    if writes:
        pinging(stalled, stop, w.idle_timeout_ms)
    if cut_watcher is None:
        _watch_cut(watcher, where, nick, stop)
    else:
        _watch_cut(cut_watcher, "lobby", nick, stop)
    return stalled, stop


def _more_senders(cw: Case, first: MockClient, w: Welcome, slow: float) -> list[MockClient]:
    """``first`` and as many more registered senders as :func:`_senders_needed` says."""
    extra = [cw.registered(f"sender{i}") for i in range(1, _senders_needed(cw, w, slow))]
    return [first, *extra]


def _flood_all(
    cw: Case,
    senders: list[MockClient],
    target: str,
    direct: bool,
    stop: threading.Event,
    w: Welcome,
    slow: float,
) -> list[FloodLog]:
    """Every sender floods ``target`` at once (each within its flood bucket) until ``stop``
    (set when the cut is seen); if the floods end first (the server ended every sender's
    session), it still waits for the cut as long as a congestion may last."""
    deadline = time.monotonic() + (3 * slow + 30) * cw.scale
    # Within a flood bucket pipelining gains nothing, and one message at a time keeps each
    # answer's wait to one hold (SLOW-8 is per congestion episode).
    window = 1 if w.rate else 32
    logs = _floods(cw, senders, target, stop, w, slow, deadline, direct=direct, window=window)
    stop.wait(slow + 2 * _grace(cw, slow))
    return logs


def _floods(
    cw: Case,
    senders: list[MockClient],
    target: str,
    stop: threading.Event,
    w: Welcome,
    slow: float,
    deadline: float,
    *,
    direct: bool = False,
    window: int = 32,
) -> list[FloodLog]:
    """Every sender floods ``target`` with messages of max_text bytes, each sender's texts
    tagged with its index, until ``stop`` or ``deadline``; each answer awaited as long as
    one hold may last."""
    return cw.parallel(
        len(senders),
        lambda i: flood(
            senders[i],
            target,
            direct=direct,
            size=w.max_text,
            stop=stop,
            deadline=deadline,
            answer_wait=slow + 2 * _grace(cw, slow),
            window=window,
            tag=f"s{i}:",
        ),
    )


@requirement(
    "SLOW-1", "SLOW-2", "SLOW-3", "SLOW-5", "SLOW-6", "SLOW-8", "KEEP-7", "PRES-6", "ORD-2"
)
def test_stalled_member_is_cut_and_holds_the_room_only_so_long(cw: Case) -> None:
    """A member that stops reading MUST be cut with SLOW_CONSUMER after slow_timeout_ms of
    congestion without waiting for it to read; meanwhile the sender is held (at most that
    long), others are served, and the members that stay lose nothing."""
    room = cw.room("slow")
    sender, reader, bystander = (
        cw.registered("sender"),
        cw.registered("reader"),
        cw.registered("by"),
    )
    w, slow = _params(cw, sender)
    join(sender, room)
    join(reader, room)
    senders = _more_senders(cw, sender, w, slow)
    for extra in senders[1:]:
        join(extra, room)
    stalled, stop = _stalled_member(cw, reader, room, w)
    pings: list[float] = []
    pinger = _ping_latencies(bystander, stop, pings)
    logs = _flood_all(cw, senders, room, False, stop, w, slow)
    stop.set()
    pinger.join(35)
    _judge_cut(cw, stalled, reader, room, logs, w)
    _judge_hold(cw, logs, slow, "SLOW-3", _cut_time(reader, room, stalled.nick), w)
    longest_ping = max(pings, default=0.0)
    cw.check(
        longest_ping < slow / 2 + _grace(cw, slow),
        "SLOW-5",
        "PING round trips of an unrelated client stay short",
        f"longest {longest_ping:.2f}s over {len(pings)} PINGs",
        slack=longest_ping - slow / 2,
    )
    _judge_delivery(cw, reader, room, logs)
    errs = [e for c in senders for _, e in c.log if isinstance(e, Error) and e.fatal]
    cw.check(not errs, "KEEP-7", "the held senders not cut", describe(errs[0]) if errs else "")


@requirement("SLOW-4", "SLOW-1", "SLOW-8")
def test_direct_to_a_stalled_client_holds_the_sender(cw: Case) -> None:
    """After accepting a DIRECT to a congested client, a server MUST NOT handle another frame
    from the sender until the addressee is no longer congested or has been cut."""
    sender, watcher = cw.registered("sender"), cw.registered("watcher")
    w, slow = _params(cw, sender)
    senders = _more_senders(cw, sender, w, slow)
    for c in senders:
        c.light = True
    stalled, stop = _stalled_member(cw, watcher, None, w)
    logs = _flood_all(cw, senders, stalled.nick, True, stop, w, slow)
    stop.set()
    _judge_cut(cw, stalled, watcher, "lobby", logs, w)
    _judge_hold(cw, logs, slow, "SLOW-4", _cut_time(watcher, "lobby", stalled.nick), w)


@requirement("SLOW-7", "SLOW-6", "ORD-2")
def test_member_that_keeps_up_is_never_cut(cw: Case) -> None:
    """A server MUST NOT cut a client that, every time its pending output goes above
    out_limit, brings it back within slow_timeout_ms, however busy its rooms are — and it
    loses nothing. The member here reads in spurts: it stops for 40% of slow_timeout_ms, long
    enough under a flood to be congested, then catches up."""
    room = cw.room("spurts")
    senders = [cw.registered(f"sender{i}") for i in range(3)]
    w, slow = _params(cw, senders[0])
    spurts = cw.client("spurts", rcvbuf=TINY_RCVBUF)
    spurts.light = True
    spurts.register(cw.nick("spurts"))
    for c in (*senders, spurts):
        c.light = True
        join(c, room)
    stop = threading.Event()

    def stop_and_go() -> None:
        while not stop.is_set():
            spurts.pause_reading()
            stop.wait(0.4 * slow)
            spurts.resume_reading()
            stop.wait(0.6 * slow)

    pacer = threading.Thread(target=stop_and_go, daemon=True)
    pacer.start()
    # A client that may fall behind PINGs on its own (KEEP-11): its PONGs to the server's
    # PINGs can queue behind its backlog past the idle timeout, at some legal settings.
    pinging(spurts, stop, w.idle_timeout_ms)
    logs = _floods(cw, senders, room, stop, w, slow, time.monotonic() + 3 * slow * cw.scale)
    stop.set()
    pacer.join(5)
    spurts.resume_reading()
    try:
        spurts.barrier("SLOW-7", timeout=30)
    except (SendFailed, Violation):  # it was cut: let its reader reach the end, judged below
        spurts.wait_closed(30)
    ended = [
        e for _, e in spurts.log if isinstance(e, Closed) or (isinstance(e, Error) and e.fatal)
    ]
    held = max((log.longest for log in logs), default=0.0)
    if ended and held >= 0.8 * slow:
        # A sender held that long was held by this member (§12.3): it stayed congested about
        # slow_timeout_ms, so it did not keep up, and its cut was due. The suite's reading
        # was too slow for the flood: no verdict on the server.
        raise HarnessError(
            f"the reader did not catch up in time (a sender was held {held:.2f}s, so it was"
            f" congested that long; slow_timeout_ms {w.slow_timeout_ms}): the suite could not"
            " read as fast as the server sent; re-run on a quieter machine"
        )
    if ended:
        # Whether it kept up depends on the suite's own reading too: a suite that ran late
        # cannot tell (slack 0: any lateness beyond the tolerance excuses the server).
        raise Violation(
            "SLOW-7", "a member that keeps up stays connected", describe(ended[0]), slack=0.0
        )
    acked = [seq for log in logs for seq in log.acked_seqs()]
    _judge_received(cw, spurts, room, acked)
    cw.observe(
        f"{sum(g.sent for g in logs)} messages of {w.max_text} bytes in {3 * slow:g}s;"
        f" senders held up to {held:.2f}s"
    )


def _judge_delivery(cw: Case, reader: MockClient, room: str, logs: list[FloodLog]) -> None:
    reader.barrier("SLOW-6", timeout=30)
    _judge_received(cw, reader, room, [seq for log in logs for seq in log.acked_seqs()])


def _judge_received(cw: Case, member: MockClient, room: str, acked: list[int]) -> None:
    """SLOW-6: every accepted message arrived exactly once. Their order is ORD-2's business
    (judged apart, so that a server that reorders is not also charged with losing)."""
    got = [e.seq for _, e in member.log if isinstance(e, Deliver) and e.room == room]
    missing = sorted(set(acked) - set(got))
    cw.check(
        sorted(got) == sorted(acked),
        "SLOW-6",
        f"all {len(acked)} accepted messages, once each",
        f"{len(got)} received, {len(missing)} missing (e.g. {missing[:3]}),"
        f" {len(got) - len(set(got))} repeated",
    )
    back = next((f"{a} then {b}" for a, b in itertools.pairwise(got) if b <= a), "")
    cw.check(not back, "ORD-2", "DELIVERs in increasing seq", back)


@requirement("KEEP-10")
def test_congested_member_is_not_cut_as_idle(cw: Case) -> None:
    """A server MUST NOT end a session for idleness while the client is congested: a member
    that stops reading and writing alike, in a room flooded until it is congested, is §12's to
    cut (SLOW_CONSUMER), even when slow_timeout_ms is longer than idle_timeout_ms."""
    room = cw.room("mute")
    sender, watcher = cw.registered("sender"), cw.registered("watcher")
    w, slow = _params(cw, sender)
    if w.idle_timeout_ms == 0:
        skip(SkipReason.NOT_ADVERTISED, "idle_timeout_ms is 0: the server never cuts as idle")
    # Only the senders and the stalled member are in the room, and the senders get no
    # DELIVERs: a sender held (§12.3) can only be held by the stalled member's congestion.
    senders = _more_senders(cw, sender, w, slow)
    for c in senders:
        c.light = True
        join(c, room)
    stalled, stop = _stalled_member(cw, sender, room, w, writes=False, cut_watcher=watcher)
    logs = _flood_all(cw, senders, room, False, stop, w, slow)
    stop.set()
    left = next((e for _, e in watcher.log if left_about("lobby", stalled.nick)(e)), None)
    timed_out = not isinstance(left, Left) or left.reason == LeaveReason.TIMEOUT
    if timed_out and any(log.stalled for log in logs):
        skip(
            SkipReason.NOT_REACHED,
            "the senders were blocked for good, not held and released (SLOW-8 judges that):"
            " whether the member was congested when cut as idle cannot be told",
        )
    if not isinstance(left, Left):
        raise HarnessError("the silent stalled member was never cut (SLOW-1 judges that)")
    cut_at = _cut_time(watcher, "lobby", stalled.nick)
    if left.reason != LeaveReason.TIMEOUT:
        cw.observe(f"the silent stalled member left with {reason_name(left.reason)}", "KEEP-10")
        return
    # Cut as idle: the fault is KEEP-10's only if the member was congested then, which shows
    # as a sender held by it (§12.3) from well before the cut up to the cut.
    lead = min(0.2, slow / 4)
    held = [
        (t - lat, t)
        for log in logs
        for t, lat in zip(log.answered_at, log.latencies, strict=True)
        if t - lat <= cut_at - lead and t >= cut_at - 0.05
    ]
    if not held:
        raise HarnessError(
            "the member was cut as idle before it was congested (the flood was too slow to"
            " congest it within idle_timeout_ms); raise --timeout-scale on a loaded machine"
        )
    since = cut_at - min(start for start, _ in held)
    raise Violation(
        "KEEP-10",
        "a congested member cut with SLOW_CONSUMER, not as idle",
        f"LEFT TIMEOUT while a sender had been held by it for {since:.2f}s",
    )
