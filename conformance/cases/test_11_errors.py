"""§11 Errors and closing: non-fatal errors change nothing, the fatal close (FIN, drain),
BYE, shutdown."""

from __future__ import annotations

import contextlib
import os
import signal

from conformance.background import Background
from conformance.client import Closed, Ending, describe
from conformance.context import Case
from conformance.errors import SkipReason, Violation, skip
from conformance.markers import requirement
from conformance.predicates import deliver_of, left_about
from conformance.steps import join, nothing_like, refused, send
from spec.codec import encode
from spec.constants import ErrorCode, LeaveReason
from spec.events import Ack, Bye, Deliver, Join, Joined, Left, Ping, Pong, Send, Whisper


@requirement("ERR-3", "ORD-1")
def test_non_fatal_error_changes_nothing(cw: Case) -> None:
    """After a non-fatal ERROR, a server MUST carry on with the session as if the refused
    request had never been sent: a refused message takes no seq, a refused JOIN no membership."""
    room = cw.room()
    a, b = cw.registered("a"), cw.registered("b")
    join(a, room)
    join(b, room)
    first = send(a, room, "one").seq
    assert a.welcome is not None
    a.send_frame(Send(room, "x" * (a.welcome.max_text + 1)))
    refused(a, ErrorCode.TEXT_TOO_LONG, "ERR-3")
    second = send(a, room, "two").seq
    cw.check(second == first + 1, "ERR-3", f"seq {first + 1} after the refusal", f"{second}")
    a.send_frame(Join("bad room!"))
    refused(a, ErrorCode.ROOM_INVALID, "ERR-3")
    seqs = [e.seq for e in b.barrier("ERR-3") if isinstance(e, Deliver) and e.room == room]
    cw.check(seqs == [first, second], "ORD-1", f"DELIVERs {first}, {second}", repr(seqs))


@requirement("ERR-6", "ERR-4")
def test_fatal_error_then_half_close(cw: Case) -> None:
    """After sending a fatal ERROR, a server MUST shut down the sending direction (FIN) rather
    than close the socket outright — so input still in flight cannot turn into a reset that
    destroys the ERROR."""
    c = cw.registered("f")
    pings = b"".join(encode(Ping(i)) for i in range(200))
    c.send_raw(b"\x00\x00\x00\x00" + pings, "length 0, then 200 PINGs in the same write")
    c.expect_error([ErrorCode.MALFORMED], "MAL-1")
    if c.closed is None:  # expect_error read to the close of a fatal ERROR
        raise Violation("MAL-1", "the server to close the connection", "it stayed open")
    cw.check(c.closed.how is Ending.EOF, "ERR-6", "FIN after the ERROR", c.closed.how.value)


@requirement("ERR-7", "ERR-8", "ERR-6")
def test_drain_is_bounded(cw: Case, background: Background) -> None:
    """After the half-close, a server MUST keep reading and discarding input until the client
    closes or a bounded drain time has passed (which SHOULD be at most 2 seconds)."""
    cw.transcript = background.transcript
    background.drain_done.wait(25 * cw.scale)
    closed = background.drain.closed
    if closed is None or closed.how is not Ending.EOF or background.drain_fin_at is None:
        raise Violation("ERR-6", "ERROR, then FIN", describe(closed))
    if background.drain_reset_at is None:
        raise Violation(
            "ERR-7", "the server to close within a bounded drain time", "no close in 10 s"
        )
    took = background.drain_reset_at - background.drain_fin_at
    cw.check(took > 0.05, "ERR-7", "reading went on after the FIN", f"closed after {took:.3f}s")
    cw.check(
        took <= 2.0 + 0.5 * cw.scale,
        "ERR-8",
        "a drain of at most 2 s",
        f"{took:.2f}s",
        slack=took - 2.0,
    )
    cw.observe(f"drained for about {took:.2f}s", "ERR-7", "ERR-8")


@requirement("ERR-12", "ERR-14", "ERR-15", "ERR-17")
def test_bye(cw: Case) -> None:
    """On BYE a server MUST send LEFT(QUIT, text) to the members of every room the client was
    in, MUST NOT answer it, MUST close without ERROR, and SHOULD still send what it produced
    before handling the BYE."""
    r1, r2 = cw.room("one"), cw.room("two")
    w, x = cw.registered("watcher"), cw.registered("x")
    for c in (w, x):
        join(c, r1)
        join(c, r2)
    x.send_raw(encode(Ping(77)) + encode(Bye("farewell")), "PING and BYE in one write")
    wanted = [left_about(r, x.nick) for r in (r1, r2, "lobby")]
    for left in w.collect(wanted, "LEFT in all three rooms", "ERR-12"):
        cw.check(
            left.reason == LeaveReason.QUIT and left.text == "farewell",
            "ERR-12",
            f"LEFT(QUIT, 'farewell') in {left.room}",
            repr(left),
        )
    after: list[object] = []
    while True:
        item = x.recv_event()
        if item is None or isinstance(item, Closed):
            break
        after.append(item)
    if item is None:
        raise Violation("ERR-15", "the close after BYE", "the connection stayed open")
    pongs = [e for e in after if isinstance(e, Pong) and e.token == 77]
    # Notices about other clients (a server in use has others) are not answers to the BYE.
    others = [e for e in after if not isinstance(e, Pong | Deliver | Whisper | Joined | Left)]
    cw.check(not others, "ERR-14", "no answer to BYE", repr(others[:3]))
    cw.check(bool(pongs), "ERR-17", "the PONG produced before the BYE", repr(after[:3]))
    cw.ok("ERR-15")


@requirement("ERR-16")
def test_frames_after_bye_are_ignored(cw: Case) -> None:
    """A server MUST ignore any frame that arrives after BYE."""
    room = cw.room()
    w, x = cw.registered("watcher"), cw.registered("x")
    join(w, room)
    join(x, room)
    late = (Send(room, "after bye"), Join(cw.room("late")))
    x.send_raw(encode(Bye("")) + b"".join(encode(f) for f in late), "BYE, then SEND and JOIN")
    w.expect(left_about(room, x.nick), "LEFT(QUIT)", "ERR-12")
    nothing_like(w, deliver_of(room, "after bye"), "DELIVER of a SEND after BYE", "ERR-16")


@requirement("ERR-19", "ERR-12")
def test_bye_text_too_long_for_a_left_is_shortened(cw: Case) -> None:
    """A BYE text can be longer than a LEFT can carry within max_frame: a server MUST shorten
    it, cutting only between characters, so that every LEFT carrying it fits."""
    w, x = cw.registered("watcher"), cw.registered("x")
    assert x.welcome is not None
    room = x.welcome.room
    # As long as a BYE frame may be, in two-byte characters: a cut inside one would break
    # UTF-8 (the watcher's decoder reports that as TEXT-3).
    text = "é" * ((x.welcome.max_frame - 3) // 2)
    x.send_frame(Bye(text))
    item, _ = w.expect(left_about(room, x.nick), "LEFT(QUIT) with the BYE text", "ERR-12")
    cw.check(
        not w.oversize,
        "ERR-19",
        f"every frame within max_frame {x.welcome.max_frame}",
        f"a LEFT of {w.oversize[:1]} bytes",
    )
    cw.check(
        text.startswith(item.text),
        "ERR-19",
        "a prefix of the BYE text",
        f"{len(item.text.encode())} bytes that are not one",
    )
    cw.observe(f"a BYE text of {len(text.encode())} bytes became {len(item.text.encode())}")


@requirement("ERR-20", "PRES-4")
def test_frames_before_a_fin_without_bye_are_handled(cw: Case) -> None:
    """A server MUST handle the complete frames that arrived before a client closed its
    sending direction without BYE like any others: a SEND among them is delivered."""
    room = cw.room()
    w, x = cw.registered("watcher"), cw.registered("x")
    join(w, room)
    join(x, room)
    x.send_frame(Send(room, "last words"))
    x.half_close()
    w.expect(deliver_of(room, "last words"), "the DELIVER of the SEND before the FIN", "ERR-20")
    cw.ok("ERR-20")
    w.expect(left_about(room, x.nick), "LEFT of the leaver", "PRES-4")
    acked = any(isinstance(e, Ack) for _, e in x.log)
    cw.observe("the ACK reached the client" if acked else "the ACK did not reach the client")


#: Set once the shutdown case has stopped the launched server.
_stopped: list[int] = []


@requirement("ERR-18")
def test_shutdown(cw: Case, server_pid: int | None, server_pids: list[int]) -> None:
    """When a server shuts down, it MUST send the fatal SERVER_SHUTDOWN to every connected
    client, registered or not, and close each connection as in §11.3. (Run last: it stops the
    server, which the suite can only do for a server it launched itself.)"""
    if server_pid is None:
        skip(
            SkipReason.NOT_APPLICABLE,
            "the suite can only shut down a server it started: use --launch CMD",
        )
    if _stopped:
        skip(SkipReason.NOT_APPLICABLE, "the launched server was already shut down (--repeat)")
    room = cw.room()
    registered, fresh = cw.registered("registered"), cw.client("unregistered")
    join(registered, room)
    registered.barrier("ERR-18")
    _stopped.append(server_pid)
    for pid in server_pids:  # every node of a launched cluster
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for c in (registered, fresh):
        c.expect_error([ErrorCode.SERVER_SHUTDOWN], "ERR-18", timeout=10)
