"""§12.3 SLOW-10: a client that asks and never reads the answers is not read any more once its
own output is congested, so its pipeline stops there."""

from __future__ import annotations

import contextlib
import threading

from conformance.cases.test_12_slow import SLOW_BOUND_MS, TINY_RCVBUF
from conformance.client import SendFailed
from conformance.context import Case
from conformance.errors import SkipReason, Violation, skip
from conformance.markers import requirement
from conformance.predicates import deliver_of, joined_about, left_about
from conformance.steps import join, who
from spec.codec import encode
from spec.events import Hello, Join, Send, Who

#: Members of the room asked about, each with a long nick: a WHO answer is some 150 times the
#: size of the request.
MEMBERS = 40
LAST_WORDS = "sent after all my unread answers"


@requirement("SLOW-10")
def test_a_client_that_never_reads_its_answers_is_not_read_any_further(cw: Case) -> None:
    """A client pipelines WHO about a big room (answers far beyond out_limit plus what kernel
    buffers hold), then a SEND, and never reads. A server that stops handling its frames once
    its own output is congested cuts it (SLOW-1) before it gets to the SEND; one that handles
    them all delivers it."""
    room = cw.room("big")
    watcher = cw.registered("watch")
    w = watcher.welcome
    assert w is not None
    if w.slow_timeout_ms > SLOW_BOUND_MS * cw.scale:
        skip(SkipReason.LIMIT_TOO_LONG, f"slow_timeout_ms={w.slow_timeout_ms} is too long to wait")
    join(watcher, room)
    for i in range(MEMBERS):
        join(cw.registered(f"member{i:02d}-of-the-big-room"), room)
    answer = len(encode(who(watcher, room)))
    # Enough answers to fill the kernel's buffers towards the client and out_limit, half as
    # many again, and no more: a server that handles them all gets to the SEND long before
    # slow_timeout_ms.
    asks = 3 * (w.out_limit + _send_buffer_max() + 2 * TINY_RCVBUF) // (2 * answer) + 1
    nick = cw.nick("hog")
    hog = cw.client("hog", read=False, rcvbuf=TINY_RCVBUF)
    hog.send_frame(Hello(nick=nick))
    hog.send_frame(Join(room))
    watcher.expect(joined_about(room, nick), "JOINED of the client that will not read", "PRES-1")
    pipeline = encode(Who(room)) * asks + encode(Send(room, LAST_WORDS))

    def ask() -> None:  # blocks once the server stops reading, until the cut
        with contextlib.suppress(SendFailed):
            hog.send_raw(pipeline, f"{asks} WHO, then a SEND")

    threading.Thread(target=ask, daemon=True).start()
    cut_wait = (w.slow_timeout_ms / 1000 + 30) * cw.scale
    watcher.expect(left_about(room, nick), "LEFT of the client that never read", "SLOW-1", cut_wait)
    watcher.barrier("SLOW-10")
    delivered = [e for _, e in watcher.log if deliver_of(room, LAST_WORDS)(e)]
    if delivered:
        raise Violation(
            "SLOW-10",
            f"the SEND behind {asks} unread WHO answers ({asks * answer} bytes) never handled",
            "it was delivered: the server kept handling a congested client's frames",
        )
    cw.ok("SLOW-10")


def _send_buffer_max() -> int:
    """The most the kernel buffers towards one client on the server's side: the largest send
    buffer Linux grows to (tcp_wmem max, 4 MiB by default)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem", encoding="ascii") as fh:
            return int(fh.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024
