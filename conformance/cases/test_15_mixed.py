"""Everything at once: several busy rooms and the lobby, a registration burst with nick races,
ECHO and plain senders, DIRECTs, PINGs at random moments, joins and departures of every kind
during traffic — judged over every client's whole log (conformance/mixed.py, mixed_judge.py)."""

from __future__ import annotations

import time

from conformance import mixed, mixed_judge
from conformance.context import Case
from conformance.invariants import SHOWN
from conformance.lateness import LATENESS
from conformance.markers import requirement
from conformance.mixed_judge import JUDGED
from conformance.steps import who


@requirement(*JUDGED)
def test_mixed_traffic_in_every_room_at_once(cw: Case) -> None:
    """Under mixed concurrent load, in every room and the lobby at once: no frame about a room
    reaches a non-member and no WHISPER another connection; every member's view of every room
    ends equal to WHO and every departure gives one LEFT with its reason; messages arrive
    exactly once, in one order per room, with contiguous seqs, ACK seq = DELIVER seq, the echo
    right after its ACK; PONGs never overtake what a PING must follow."""
    started = time.monotonic()
    mx = mixed.plan(cw)
    mixed.register_all(cw, mx)
    mixed.traffic(cw, mx)
    views: dict[str, frozenset[str]] = {}
    for room in ["lobby", *mx.rooms]:
        asker = next(
            (
                a
                for a in mx.actors
                if a.done and room in a.rooms_at_end() and a.client and not a.client.closed
            ),
            None,
        )
        if asker is not None and asker.client is not None:
            views[room] = frozenset(who(asker.client, room).members)
    volume = mixed_judge.judge(mx, views)
    for req in dict.fromkeys([*JUDGED, *mx.problems]):
        found = mx.problems.get(req, [])
        shown = found[:SHOWN] + ([f"… and {len(found) - SHOWN} more"] if len(found) > SHOWN else [])
        cw.check(not found, req, "no such problem in any room or log", "; ".join(shown))
    granted = sum(a.echo for a in mx.actors)
    cw.observe(
        f"{len(mx.actors)} clients, {len(mx.rooms)} rooms and lobby, {granted} with ECHO: "
        f"{volume['messages']} messages, {volume['deliveries']} deliveries, "
        f"{volume['whispers']} whispers, {volume['pings']} PINGs; the suite ran at most "
        f"{LATENESS.worst_since(started) * 1000:.0f} ms late"
    )
