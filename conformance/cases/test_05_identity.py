"""§5 Identity: nick syntax, uniqueness (also under concurrent registration), release, and the
server-stamped sender."""

from __future__ import annotations

from conformance.client import Closed, describe, reason_name
from conformance.context import Case
from conformance.errors import Violation
from conformance.markers import requirement
from conformance.predicates import deliver_of, left_about, whisper_of
from conformance.steps import direct, join, leave, send, who
from spec.constants import ErrorCode, LeaveReason
from spec.events import Bye, Error, Welcome

BAD_NICKS = ["", "x" * 33, "two words", "dot.ted", "tab\there", "é", "semi;colon", "a/b"]


@requirement("NICK-1", "HS-13")
def test_bad_nicks_are_refused(cw: Case) -> None:
    """A server MUST refuse a HELLO whose nick breaks the nick syntax with the non-fatal
    NICK_INVALID."""
    c = cw.client("n")
    for nick in BAD_NICKS:
        answer = c.hello(nick, req="NICK-1")
        if not isinstance(answer, Error) or answer.code != ErrorCode.NICK_INVALID:
            raise Violation("NICK-1", f"NICK_INVALID for {nick!r}", describe(answer))
    good = cw.nick("Ok_-9").ljust(32, "z")
    c.register(good, req="NICK-1")  # the longest valid nick is accepted, on the same session
    cw.ok("HS-13")


@requirement("NICK-2")
def test_held_nick_is_refused_without_takeover(cw: Case) -> None:
    """A server MUST refuse, with the non-fatal NICK_IN_USE, a HELLO for a nick that a
    registered session holds, leaving that session untouched (there is no takeover)."""
    holder = cw.registered("Holder")
    for variant in (holder.nick, holder.nick.upper(), holder.nick.lower()):
        c = cw.client("thief")
        answer = c.hello(variant, req="NICK-2")
        if not isinstance(answer, Error) or answer.code != ErrorCode.NICK_IN_USE:
            raise Violation("NICK-2", f"NICK_IN_USE for {variant!r}", describe(answer))
    holder.barrier("NICK-2")
    roster = who(holder, "lobby", "NICK-2")
    cw.check(holder.nick in roster.members, "NICK-2", "the holder still in lobby", repr(roster))


@requirement("NICK-3")
def test_concurrent_hellos_for_one_nick(cw: Case) -> None:
    """Of several HELLOs for the same free nick that arrive at the same time on different
    connections, a server MUST accept exactly one and refuse the others with NICK_IN_USE."""
    n = cw.options.clients
    base = cw.nick("Race")
    clients = cw.parallel(n, lambda i: cw.client(f"race{i}"))
    variants = [base.upper() if i % 2 else base.lower() for i in range(n)]
    answers = cw.parallel(n, lambda i: clients[i].hello(variants[i], req="NICK-3"))
    wins = [a for a in answers if isinstance(a, Welcome)]
    others = [a for a in answers if not isinstance(a, Welcome)]
    cw.check(len(wins) == 1, "NICK-3", "exactly one WELCOME", f"{len(wins)} WELCOMEs")
    wrong = [a for a in others if not (isinstance(a, Error) and a.code == ErrorCode.NICK_IN_USE)]
    cw.check(not wrong, "NICK-3", "NICK_IN_USE for the others", describe(wrong[0]) if wrong else "")


@requirement("NICK-4", "PRES-4", "PRES-6", "ERR-12")
def test_nick_is_free_once_left_is_seen(cw: Case) -> None:
    """A server MUST release a session's nick when the session ends, no later than the moment
    it produces the LEFT notices for that session."""
    watcher = cw.registered("watcher")
    for how, reason in (("bye", LeaveReason.QUIT), ("reset", LeaveReason.LOST)):
        leaver = cw.registered(f"leaver-{how}")
        if how == "bye":
            leaver.send_frame(Bye("gone"))
        else:
            leaver.abort()
        item, _ = watcher.expect(left_about("lobby", leaver.nick), "LEFT of the leaver", "PRES-4")
        cw.check(
            item.reason == reason,
            "PRES-6",
            f"LEFT {reason.name}",
            f"LEFT {reason_name(item.reason)}",
        )
        if how == "bye":
            cw.check(item.text == "gone", "ERR-12", "the BYE text 'gone'", repr(item.text))
        again = cw.client(f"again-{how}")
        answer = again.hello(leaver.nick, req="NICK-4")
        if not isinstance(answer, Welcome):
            raise Violation(
                "NICK-4", f"WELCOME for {leaver.nick!r} after its LEFT", describe(answer)
            )


@requirement("NICK-4", "ROOM-10")
def test_nick_of_a_session_in_no_room_is_free_once_it_ends(cw: Case) -> None:
    """A session in no room produces no LEFT: a server MUST release its nick no later than the
    moment it shuts down its sending direction, so the nick is free once the end is seen."""
    leaver = cw.registered("roomless")
    leave(leaver, "lobby", "ROOM-10")
    leaver.send_frame(Bye(""))
    end = leaver.recv_event()
    while end is not None and not isinstance(end, Closed):
        end = leaver.recv_event()
    if end is None:
        raise Violation("NICK-4", "the close after BYE", "the connection stayed open")
    answer = cw.client("again").hello(leaver.nick, req="NICK-4")
    if not isinstance(answer, Welcome):
        raise Violation(
            "NICK-4", f"WELCOME for {leaver.nick!r} once its connection ended", describe(answer)
        )


@requirement("NICK-5", "MSG-5")
def test_sender_is_the_registered_nick(cw: Case) -> None:
    """The server MUST set the sender of every DELIVER and WHISPER to the registered nick of
    the session that sent the message, as in its WELCOME."""
    room = cw.room()
    a, b = cw.registered("CamelCase"), cw.registered("b")
    join(a, room)
    join(b, room)
    send(a, room, "stamped")
    delivered, _ = b.expect(deliver_of(room, "stamped"), "the DELIVER", "MSG-3")
    cw.check(
        delivered.sender == a.nick, "NICK-5", f"DELIVER sender {a.nick!r}", repr(delivered.sender)
    )
    direct(a, b.nick.upper(), "whispered")
    whispered, _ = b.expect(whisper_of("whispered"), "the WHISPER", "MSG-10")
    cw.check(
        whispered.sender == a.nick, "NICK-5", f"WHISPER sender {a.nick!r}", repr(whispered.sender)
    )
