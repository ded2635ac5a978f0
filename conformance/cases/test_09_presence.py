"""§9 Presence: JOINED, LEFT with its reasons, ordering against messages, QUIET, and presence
consistency under concurrent joins and leaves."""

from __future__ import annotations

from conformance.client import Incoming, MockClient, reason_name
from conformance.context import Case
from conformance.markers import requirement
from conformance.predicates import deliver_of, joined_about, left_about
from conformance.steps import join, leave, nothing_like, who
from spec.codec import encode
from spec.constants import Capability, LeaveReason
from spec.events import Bye, Join, Joined, Leave, Left, Roster, Send


@requirement("PRES-1", "PRES-3")
def test_joined_goes_to_every_other_member(cw: Case) -> None:
    """When a client joins a room, by JOIN or by registering into lobby, a server MUST send
    JOINED{room, nick} to every other member, and never a JOINED about the client itself."""
    room = cw.room()
    a, b = cw.registered("a"), cw.registered("b")
    join(a, room)
    join(b, room)
    c = cw.registered("c")  # registration: a JOINED in lobby
    a.expect(joined_about("lobby", c.nick), "JOINED in lobby on registration", "PRES-1")
    join(c, room)
    for member in (a, b):
        member.expect(joined_about(room, c.nick), f"JOINED of {c.nick} in {room}", "PRES-1")
    nothing_like(c, lambda e: isinstance(e, Joined) and e.nick == c.nick, "JOINED", "PRES-3")


@requirement("PRES-4", "PRES-6", "ERR-12")
def test_left_names_the_cause(cw: Case) -> None:
    """A server MUST send LEFT to every remaining member whenever a member leaves, by LEAVE, by
    BYE or by losing its connection in any way, with reason naming the cause."""
    room = cw.room()
    watcher = cw.registered("watcher")
    join(watcher, room)
    for how, reason in (
        ("leave", LeaveReason.PART),
        ("bye", LeaveReason.QUIT),
        ("fin", LeaveReason.LOST),
        ("rst", LeaveReason.LOST),
    ):
        x = cw.registered(how)
        join(x, room)
        if how == "leave":
            x.send_frame(Leave(room))
        elif how == "bye":
            x.send_frame(Bye("see you"))
        elif how == "fin":
            x.close()
        else:
            x.abort()
        item, _ = watcher.expect(left_about(room, x.nick), f"LEFT after {how}", "PRES-4")
        cw.check(
            item.reason == reason,
            "PRES-6",
            f"{how}: LEFT {reason.name}",
            f"LEFT {reason_name(item.reason)}",
        )
        if how == "bye":
            cw.check(item.text == "see you", "ERR-12", "the BYE text", repr(item.text))


@requirement("PRES-5", "PRES-2", "PRES-1")
def test_notices_bracket_the_members_messages(cw: Case) -> None:
    """JOINED MUST come before any DELIVER of the joiner's messages, and LEFT after every
    DELIVER of the leaver's messages in that room: whether it leaves by LEAVE (the LEFT is
    made while the server still handles that read) or by BYE (as the session ends)."""
    room = cw.room()
    watcher = cw.registered("watcher")
    join(watcher, room)
    for how, last in (("leave", Leave(room)), ("bye", Bye("done"))):
        x = cw.registered(how)
        texts = [f"{how} {k}" for k in ("one", "two", "three")]
        frames = (Join(room), *(Send(room, t) for t in texts), last)
        x.send_raw(b"".join(encode(f) for f in frames), f"JOIN, three SENDs and {how.upper()}")

        def ours(e: Incoming, nick: str = x.nick, texts: list[str] = texts) -> bool:
            return (isinstance(e, Joined | Left) and e.room == room and e.nick == nick) or any(
                deliver_of(room, t)(e) for t in texts
            )

        order: list[str] = []
        while "LEFT" not in order:
            item, _ = watcher.expect_where(ours, f"LEFT of {x.nick} ({how})", "PRES-5")
            order.append(type(item).__name__.upper())
        # A DELIVER overtaken by the LEFT comes after it; one lost never comes (not PRES-5's).
        order += [type(e).__name__.upper() for e in watcher.barrier("PRES-5") if ours(e)]
        cw.check("JOINED" in order, "PRES-1", f"{how}: a JOINED", repr(order))
        if "JOINED" in order:  # one never sent is PRES-1's fault, not an order
            cw.check(order[0] == "JOINED", "PRES-2", f"{how}: JOINED first", repr(order))
        cw.check(order[-1] == "LEFT", "PRES-5", f"{how}: LEFT after the DELIVERs", repr(order))


@requirement("PRES-1", "PRES-4", "ROOM-5")
def test_presence_stays_consistent_under_churn(cw: Case) -> None:
    """Under concurrent joins and leaves, every member's view (its ROSTER, then each JOINED and
    LEFT) MUST end equal to the room's final roster."""
    n = cw.options.clients
    room = cw.room("churn")
    clients = cw.many(n, "p")
    stay = [c for i, c in enumerate(clients) if i % 3 != 2]
    transient = [c for i, c in enumerate(clients) if i % 3 == 2]

    def act(i: int) -> None:
        c = clients[i]
        join(c, room)
        if c in transient:
            leave(c, room)

    cw.parallel(n, act)
    final = who(stay[0], room)
    want = {c.nick for c in stay}
    cw.check(set(final.members) == want, "ROOM-5", f"{len(want)} members", repr(final.members))
    cw.parallel(len(stay), lambda i: stay[i].barrier("ORD-10"))
    for c in stay:
        view = _view(c, room)
        cw.check(
            view == set(final.members),
            "PRES-4" if view > set(final.members) else "PRES-1",
            f"{c.nick}'s view equal to the final roster",
            f"extra {sorted(view - set(final.members))[:3]}, "
            f"missing {sorted(set(final.members) - view)[:3]}",
        )


def _view(c: MockClient, room: str) -> set[str]:
    members: set[str] = set()
    for _, e in c.log:
        if isinstance(e, Roster) and e.room == room:
            members = set(e.members) if not members else members | set(e.members)
        elif isinstance(e, Joined) and e.room == room:
            members.add(e.nick)
        elif isinstance(e, Left) and e.room == room:
            members.discard(e.nick)
    return members


@requirement("PRES-10", "PRES-11", "PRES-12")
def test_quiet(cw: Case) -> None:
    """When it has granted QUIET, a server MUST NOT send that client JOINED or LEFT about
    others, nor the ROSTER after WELCOME, and MUST still answer its JOIN and WHO with ROSTER and
    its LEAVE with its own LEFT."""
    room = cw.room()
    q = cw.registered("quiet", caps=int(Capability.QUIET))
    assert q.welcome is not None
    cw.require_capability(q.welcome, Capability.QUIET, "PRES-10")
    seen = q.barrier("PRES-11")
    cw.check(
        not any(isinstance(e, Roster) for e in seen),
        "PRES-11",
        "no lobby ROSTER after WELCOME",
        repr(seen[:3]),
    )
    join(q, room, "PRES-12")
    other = cw.registered("other")
    join(other, room)
    other.send_frame(Leave(room))
    who(q, room, "PRES-12")
    nothing_like(
        q, lambda e: isinstance(e, Joined | Left) and e.nick != q.nick, "presence", "PRES-10"
    )
    leave(q, room, "PRES-12")
    watcher = cw.registered("watcher")
    join(watcher, room)
    join(q, room, "PRES-12")
    watcher.expect(joined_about(room, q.nick), "others still see QUIET clients", "PRES-1")
