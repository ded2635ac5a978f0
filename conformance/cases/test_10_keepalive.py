"""§10 Keepalive: PING/PONG, and the idle timeout judged on the background probes."""

from __future__ import annotations

import time

from conformance.background import Background
from conformance.client import Closed, MockClient, describe, reason_name
from conformance.context import Case
from conformance.errors import SkipReason, Violation, skip
from conformance.markers import requirement
from conformance.predicates import left_about
from spec.constants import ErrorCode, LeaveReason
from spec.events import Error, Left, Ping, Pong

#: The longest the suite waits beyond the run for an idle timeout to pass (before scaling).
IDLE_WAIT_BOUND = 20.0


@requirement("KEEP-2")
def test_ping_is_answered_with_its_token(cw: Case) -> None:
    """The receiver of a PING MUST answer it with PONG{token} carrying the same token."""
    c = cw.registered("p")
    tokens = [0, 1, 0xFFFF_FFFF_FFFF_FFFF, 0x0102_0304_0506_0708]
    for t in tokens:
        c.send_frame(Ping(t))
    got: list[int] = []
    while len(got) < len(tokens):
        item, _ = c.expect(Pong, "PONG", "KEEP-2")
        got.append(item.token)
    cw.check(got == tokens, "KEEP-2", repr(tokens), repr(got))


@requirement("KEEP-4")
def test_unsolicited_pong_is_ignored(cw: Case) -> None:
    """The receiver of a PONG that answers no PING it sent MUST ignore it, without an error."""
    c = cw.registered("p")
    c.send_frame(Pong(12345))
    before = c.barrier("KEEP-4")
    errors = [e for e in before if isinstance(e, Error)]
    cw.check(not errors, "KEEP-4", "no ERROR", describe(errors[0]) if errors else "")


def _idle_ms(background: Background) -> int:
    w = background.silent.welcome
    assert w is not None
    return w.idle_timeout_ms


def _wait_end(c: MockClient, until: float) -> tuple[Error | Closed | None, float]:
    """The first ERROR or close on ``c`` by the monotonic deadline, and when it arrived."""
    while True:
        item = c.recv_event(max(0.0, until - time.monotonic()) / c.scale)
        if item is None:
            return None, 0.0
        if isinstance(item, Error | Closed):
            return item, next(t for t, e in c.log if e is item)


def _deadline(cw: Case, background: Background, idle_s: float, wait_s: float = 0.0) -> float:
    """When something ``wait_s`` (default: the idle timeout ``idle_s``) after registration must
    have happened, or SKIP if that is too far away to wait for."""
    wait_s = wait_s or idle_s
    grace = max(1.0, 0.25 * wait_s) * cw.scale
    until = background.registered_at + wait_s + grace
    if until - time.monotonic() > IDLE_WAIT_BOUND * cw.scale:
        skip(
            SkipReason.LIMIT_TOO_LONG,
            f"idle_timeout_ms={int(idle_s * 1000)} is too long to wait for (the suite waits up"
            f" to {IDLE_WAIT_BOUND:g}s): advertise a shorter idle_timeout_ms or raise"
            " --timeout-scale",
        )
    return until


@requirement("KEEP-5", "KEEP-6", "PRES-6")
def test_idle_client_is_cut(cw: Case, background: Background) -> None:
    """When no complete frame has arrived from a registered client for idle_timeout_ms, a
    server MUST end the session with the fatal IDLE_TIMEOUT — and not before."""
    cw.transcript = background.transcript
    idle_ms = _idle_ms(background)
    if idle_ms == 0:
        skip(SkipReason.NOT_ADVERTISED, "idle_timeout_ms is 0: the server never cuts idle clients")
    until = _deadline(cw, background, idle_ms / 1000)
    item, at = _wait_end(background.silent, until)
    if item is None:
        raise Violation(
            "KEEP-5",
            f"IDLE_TIMEOUT after {idle_ms} ms of silence",
            "still open",
            slack=until - background.registered_at - idle_ms / 1000,
        )
    if not isinstance(item, Error) or item.code != ErrorCode.IDLE_TIMEOUT:
        raise Violation("KEEP-5", "ERROR IDLE_TIMEOUT", describe(item))
    background.silent.expect_close("KEEP-5")
    took = at - background.hello_sent[background.silent.name]
    cw.check(
        at <= until,
        "KEEP-5",
        f"IDLE_TIMEOUT once {idle_ms} ms of silence have passed",
        f"cut only after {(at - background.registered_at) * 1000:.0f} ms",
        slack=at - background.registered_at - idle_ms / 1000,
    )
    cw.check(
        took >= idle_ms / 1000 * 0.98,
        "KEEP-6",
        f"no cut before {idle_ms} ms of silence",
        f"cut after {took * 1000:.0f} ms",
    )
    cw.observe(
        f"cut after {took * 1000:.0f} ms of silence (idle_timeout_ms {idle_ms})", "KEEP-5", "KEEP-6"
    )
    watcher = background.answering
    if watcher.closed is None:
        about = left_about("lobby", background.silent.nick)
        seen = [e for _, e in watcher.log if isinstance(e, Left) and about(e)]
        left = seen[0] if seen else watcher.expect(about, "LEFT(TIMEOUT)", "PRES-4")[0]
        cw.check(
            left.reason == LeaveReason.TIMEOUT,
            "PRES-6",
            "LEFT TIMEOUT",
            f"LEFT {reason_name(left.reason)}",
        )


#: How long a silent client must have lived, before scaling, to show that an idle timeout of
#: 0 cuts nobody.
ZERO_IDLE_WATCH = 4.0


@requirement("KEEP-6")
def test_no_idle_cut_when_the_timeout_is_0(cw: Case, background: Background) -> None:
    """With idle_timeout_ms 0, a server MUST NOT end a session for idleness: a client that has
    said nothing since it registered is still connected seconds later."""
    cw.transcript = background.transcript
    if _idle_ms(background) != 0:
        skip(SkipReason.NOT_APPLICABLE, "idle_timeout_ms is not 0 (the idle cases judge KEEP-6)")
    until = background.registered_at + ZERO_IDLE_WATCH * cw.scale
    item, _ = _wait_end(background.silent, until)
    if item is not None:
        raise Violation("KEEP-6", "no idle cut when idle_timeout_ms is 0", describe(item))
    background.silent.barrier("KEEP-6")
    silent_for = time.monotonic() - background.registered_at
    cw.observe(f"a silent client still connected after {silent_for:.1f}s")


@requirement("KEEP-5")
def test_stall_mid_frame_is_silence(cw: Case, background: Background) -> None:
    """Bytes of a frame that has not fully arrived do not count as activity: a client that
    stalls in the middle of a frame MUST be cut with IDLE_TIMEOUT."""
    cw.transcript = background.transcript
    idle_ms = _idle_ms(background)
    if idle_ms == 0:
        skip(SkipReason.NOT_ADVERTISED, "idle_timeout_ms is 0")
    until = _deadline(cw, background, idle_ms / 1000)
    item, at = _wait_end(background.half_frame, until)
    if not isinstance(item, Error) or item.code != ErrorCode.IDLE_TIMEOUT:
        raise Violation("KEEP-5", "ERROR IDLE_TIMEOUT for a stalled half frame", describe(item))
    # The probe trickles a byte every quarter of the idle timeout: counted as activity, they
    # would put the cut seconds later than this.
    cw.check(
        at <= until,
        "KEEP-5",
        f"the cut {idle_ms} ms after the last complete frame, bytes since notwithstanding",
        f"cut only after {(at - background.registered_at) * 1000:.0f} ms",
        slack=at - background.registered_at - idle_ms / 1000,
    )


@requirement("KEEP-6")
def test_active_client_is_not_cut(cw: Case, background: Background) -> None:
    """A server MUST NOT end a session for idleness if a complete frame arrived from the client
    within the last idle_timeout_ms (the probe PINGs every third of it)."""
    cw.transcript = background.transcript
    idle_ms = _idle_ms(background)
    if idle_ms == 0:
        skip(SkipReason.NOT_ADVERTISED, "idle_timeout_ms is 0")
    until = background.registered_at + 2.5 * idle_ms / 1000 * cw.scale
    if until - time.monotonic() > IDLE_WAIT_BOUND * cw.scale:
        skip(SkipReason.LIMIT_TOO_LONG, f"idle_timeout_ms={idle_ms} is too long to wait for")
    item, _ = _wait_end(background.active, until)
    if item is not None:
        raise Violation("KEEP-6", "no cut of a client that PINGs regularly", describe(item))
    background.active.barrier("KEEP-6")


@requirement("KEEP-8", "KEEP-6")
def test_server_pings_a_quiet_client(cw: Case, background: Background) -> None:
    """A server SHOULD send a PING to a registered client from which nothing has arrived for
    idle_timeout_ms/2, so that a live client whose receive thread answers PINGs is never cut."""
    cw.transcript = background.transcript
    idle_ms = _idle_ms(background)
    if idle_ms == 0:
        skip(SkipReason.NOT_ADVERTISED, "idle_timeout_ms is 0")
    c = background.answering
    until = _deadline(cw, background, idle_ms / 1000, 2 * idle_ms / 1000)
    pings = [t for t, e in c.log if isinstance(e, Ping)]
    if not pings:
        item, _ = c.expect(
            Ping,
            "a PING from the server",
            "KEEP-8",
            timeout=max(0.0, until - time.monotonic()) / cw.scale,
        )
        pings = [t for t, e in c.log if e is item]
    first = pings[0] - background.registered_at
    cw.check(
        first <= idle_ms / 1000 * 0.9,
        "KEEP-8",
        f"a PING after about {idle_ms // 2} ms of silence",
        f"first PING after {first * 1000:.0f} ms",
        slack=first - idle_ms / 2000,
    )
    ended = [e for _, e in c.log if isinstance(e, Closed) or (isinstance(e, Error) and e.fatal)]
    cw.check(not ended, "KEEP-6", "a client answering PINGs is not cut", repr(ended))
