"""A client that never reads its own answers costs the server at most about ``out_limit``
plus one answer (§12.3 SLOW-9), whatever it pipelines, and bystanders keep receiving."""

from __future__ import annotations

import time

import pytest

from reference.outbox import OutputStopped
from spec.codec import encode
from spec.constants import Capability, ErrorCode
from spec.events import Deliver, Error, Event, Join, ListRooms, Send, Who
from tests.rawclient import Closed, RawClient, clients, running_server

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

OUT_LIMIT = 32_768
MEMBERS = 120
#: Each member has a 32-byte nick and its own 32-byte room: a ROSTER of the lobby or a ROOMS
#: answer is about 4 KB, so 3,000 pipelined requests would queue some 12 MB unbounded.
REQUESTS = 3000
ANSWER = MEMBERS * 40


def _long(prefix: str, i: int) -> str:
    return f"{prefix}{i:04d}".ljust(32, "x")


REQUEST_KINDS: dict[str, Event] = {
    "WHO": Who("lobby"),
    "JOIN again (ROSTER)": Join("lobby"),
    "LIST": ListRooms(),
}


@pytest.mark.parametrize("kind", list(REQUEST_KINDS))
def test_a_client_that_never_reads_its_answers_stays_bounded(kind: str) -> None:
    request = encode(REQUEST_KINDS[kind])
    with (
        running_server(
            out_limit=OUT_LIMIT, slow_timeout=5.0, send_buffer=4096, handshake_timeout=5.0
        ) as server,
        clients(server, "alice", "bob", caps=Capability.QUIET) as (alice, bob),
    ):
        members = [RawClient(server.address) for _ in range(MEMBERS)]
        hog = RawClient(server.address, rcvbuf=4096)
        try:
            for i, member in enumerate(members):  # quiet: they hear of nobody's comings
                member.hello(_long("m", i), Capability.QUIET)
                member.send(Join(_long("r", i)))
                member.barrier()
            # The bystanders talk in a room of their own: a lobby message would rightly wait
            # (§12.3 SLOW-3) while the hog, a lobby member, is congested.
            for bystander in (alice, bob):
                bystander.send(Join("side"))
                bystander.barrier()
            hog.hello("hog", Capability.QUIET)
            hog.send_raw(request * REQUESTS)  # and never reads again
            (session,) = [s for s in server._sessions if s.nick == "hog"]
            most = rounds = 0
            # Until answers are seen queued in the server, past the kernel's buffers (a loaded
            # machine may take a while to handle the requests), and bystanders have had a few
            # rounds; well within slow_timeout. Whether the hold begins before or after the
            # queue passes out_limit depends on how many requests one read took in.
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline and (most <= ANSWER or rounds < 20):
                most = max(most, session.outbox.pending)
                alice.send(Send("side", "still here"))  # bystanders keep receiving
                assert bob.expect(Deliver).text == "still here"
                rounds += 1
            assert most > ANSWER, most  # answers did queue up
            assert most <= OUT_LIMIT + 2 * ANSWER, most
            # Then, still not reading, it is cut (SLOW-2): its session ends as a slow consumer.
            # The hog reads only once it is gone (reading earlier would relieve it), and finds
            # the close; SLOW_CONSUMER is sent without waiting, so it may be lost in the full
            # socket, but no other ERROR may come.
            assert server.wait_sessions(MEMBERS + 2, timeout=15.0), "the hog was never cut"
            assert session.outbox.failed is OutputStopped.CUT, session.outbox.failed
            got = hog.until_closed(timeout=15)
            assert isinstance(got[-1], Closed), got[-1]
            assert all(e.code == ErrorCode.SLOW_CONSUMER for e in got if isinstance(e, Error))
        finally:
            hog.close()
            for member in members:
                member.close()
