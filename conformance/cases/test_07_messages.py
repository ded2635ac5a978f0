"""§7 Messages (and the text rules of §2 they exercise): SEND, ACK, no echo, DIRECT, ECHO."""

from __future__ import annotations

from conformance.client import Guard, MockClient, describe, one_of
from conformance.context import Case
from conformance.errors import Violation
from conformance.markers import requirement
from conformance.predicates import deliver_of, left_about, whisper_of
from conformance.steps import answer_to, direct, join, nothing_like, refused, send
from spec.constants import Capability, ErrorCode
from spec.events import Ack, Bye, Deliver, Direct, Error, Send, Whisper

#: Texts that must travel unchanged (§2.2: free text, anything but U+0000).
ODD_TEXTS = [
    "two\nlines",
    "crlf\r\nend",
    "\ttab",
    "  spaced  ",
    "émoji 🎉 and 漢字",
    "\u200bzero width\ufeff",
    "\U0010fffd last plane",
    "\x7f\x01 controls",
]


def _max_text(c: MockClient) -> int:
    assert c.welcome is not None
    return c.welcome.max_text


def _trio(cw: Case) -> tuple[str, MockClient, MockClient, MockClient]:
    room = cw.room()
    a, b, c = cw.registered("a"), cw.registered("b"), cw.registered("c")
    for x in (a, b, c):
        join(x, room)
    return room, a, b, c


@requirement("MSG-3", "MSG-4", "MSG-7", "ORD-3")
def test_send_reaches_every_other_member_once(cw: Case) -> None:
    """When it accepts a SEND, a server MUST assign the room's next sequence number and produce
    DELIVER for every other member, once each, and answer ACK{room, seq}."""
    room, a, b, c = _trio(cw)
    ack = send(a, room, "hello room")
    for other in (b, c):
        before = other.barrier("ORD-10")
        got = [e for e in before if isinstance(e, Deliver) and e.room == room]
        cw.check(
            [(d.seq, d.sender, d.text) for d in got] == [(ack.seq, a.nick, "hello room")],
            "MSG-3",
            f"one DELIVER seq {ack.seq} from {a.nick}",
            repr(got),
        )
    nothing_like(a, lambda e: isinstance(e, Deliver) and e.room == room, "echo", "MSG-7")
    cw.ok("MSG-4", "ORD-3")


@requirement("MSG-5", "TEXT-5")
def test_text_travels_unchanged(cw: Case) -> None:
    """A server MUST accept text with line breaks, tabs and any character but U+0000 in SEND,
    DIRECT and BYE, and deliver it byte for byte as the sender sent it."""
    room, a, b, _ = _trio(cw)
    for text in ODD_TEXTS:
        send(a, room, text, "TEXT-5")
        direct(a, b.nick, text, "TEXT-5")
    before = b.barrier("MSG-5")
    delivered = [e.text for e in before if isinstance(e, Deliver) and e.room == room]
    whispered = [e.text for e in before if isinstance(e, Whisper)]
    cw.check(delivered == ODD_TEXTS, "MSG-5", repr(ODD_TEXTS), repr(delivered))
    cw.check(whispered == ODD_TEXTS, "MSG-5", f"WHISPERs {ODD_TEXTS!r}", repr(whispered))
    bye_text = "so long\nand thanks\tfor all the 🐟"
    a.send_frame(Bye(bye_text))
    item, _ = b.expect(left_about(room, a.nick), "LEFT(QUIT) with the BYE text", "TEXT-5")
    cw.check(item.text == bye_text, "TEXT-5", repr(bye_text), repr(item.text))


@requirement("TEXT-6", "TEXT-7", "TEXT-8")
def test_max_text_in_bytes(cw: Case) -> None:
    """Text is measured against max_text in UTF-8 bytes; longer text gets TEXT_TOO_LONG and
    reaches nobody; empty text and text of exactly max_text bytes are delivered."""
    room, a, b, _ = _trio(cw)
    limit = _max_text(a)
    wide = "é" * (limit // 2) + "x" * (limit % 2)  # exactly limit bytes, about limit/2 chars
    over = "€" * (limit // 3 + 1)  # more than limit bytes, about limit/3 chars
    accepted = ["", "x" * limit, wide]
    for text in accepted:
        send(a, room, text, "TEXT-8")
        direct(a, b.nick, text, "TEXT-8")
    for text in ("x" * (limit + 1), over):
        a.send_frame(Send(room, text))
        refused(a, ErrorCode.TEXT_TOO_LONG, "TEXT-7" if text[0] == "x" else "TEXT-6")
        a.send_frame(Direct(b.nick, text))
        refused(a, ErrorCode.TEXT_TOO_LONG, "TEXT-7" if text[0] == "x" else "TEXT-6")
    before = b.barrier("TEXT-7")
    delivered = [e.text for e in before if isinstance(e, Deliver) and e.room == room]
    whispered = [e.text for e in before if isinstance(e, Whisper)]
    cw.check(delivered == accepted, "TEXT-8", "'' and two max_text texts", _lens(delivered))
    cw.check(whispered == accepted, "TEXT-8", "the same as WHISPERs", _lens(whispered))
    cw.ok("TEXT-6", "TEXT-7")


def _lens(texts: list[str]) -> str:
    return f"texts of {[len(t.encode()) for t in texts]} bytes"


@requirement("MSG-1", "MSG-2")
def test_send_checks_in_order(cw: Case) -> None:
    """A server MUST apply the checks of a SEND in the order room syntax, membership, text
    length, flood limit, and refuse it with the code of the first that fails."""
    room, a, _, _ = _trio(cw)
    too_long = "x" * (_max_text(a) + 1)
    elsewhere = cw.room("elsewhere")
    outsider = cw.registered("outsider")
    join(outsider, elsewhere)
    for target, text, code in (
        ("bad room!", too_long, ErrorCode.ROOM_INVALID),
        (elsewhere, too_long, ErrorCode.NOT_IN_ROOM),
        (cw.room("missing"), "short", ErrorCode.NOT_IN_ROOM),
        (room, too_long, ErrorCode.TEXT_TOO_LONG),
    ):
        a.send_frame(Send(target, text))
        refused(a, code, "MSG-2" if code is ErrorCode.NOT_IN_ROOM else "MSG-1")
    cw.ok("MSG-1")


@requirement("MSG-6", "ERR-1", "ORD-8")
def test_every_request_one_answer_in_order(cw: Case) -> None:
    """A server MUST answer every SEND and every DIRECT with exactly one frame, ACK or a
    non-fatal ERROR whose in_reply_to is the request's type, in the order they arrived."""
    room, a, b, _ = _trio(cw)
    too_long = "x" * (_max_text(a) + 1)
    plan: list[tuple[Send | Direct, ErrorCode | None]] = [
        (Send(room, "one"), None),
        (Send(cw.room("nope"), "two"), ErrorCode.NOT_IN_ROOM),
        (Direct(b.nick, "three"), None),
        (Direct(cw.nick("ghost"), "four"), ErrorCode.NO_SUCH_NICK),
        (Send(room, too_long), ErrorCode.TEXT_TOO_LONG),
        (Direct("bad nick", "six"), ErrorCode.NICK_INVALID),
        (Send(room, "seven"), None),
    ]
    for frame, _ in plan:
        a.send_frame(frame)  # all pipelined before any answer is read
    for frame, code in plan:
        got = answer_to(a, "MSG-6")
        if code is None and not isinstance(got, Ack):
            raise Violation("MSG-6", f"ACK for {frame!r}", describe(got))
        if code is not None:
            if not isinstance(got, Error) or got.code != code:
                raise Violation("MSG-6", f"ERROR {code.name} for {frame!r}", describe(got))
            cw.check(
                got.in_reply_to == frame.type,
                "ERR-1",
                f"in_reply_to 0x{int(frame.type):02X}",
                f"0x{got.in_reply_to:02X}",
            )
    extra = [e for e in a.barrier("MSG-6") if isinstance(e, Ack | Error)]
    cw.check(not extra, "MSG-6", "no further answer", repr(extra))
    cw.ok("ORD-8")


@requirement("MSG-8", "MSG-9")
def test_direct_checks_in_order(cw: Case) -> None:
    """A server MUST apply the checks of a DIRECT in the order nick syntax, addressee, text
    length, flood limit; a nick no registered client holds gets NO_SUCH_NICK."""
    a, b = cw.registered("a"), cw.registered("b")
    too_long = "x" * (_max_text(a) + 1)
    for nick, text, code in (
        ("bad nick!", too_long, ErrorCode.NICK_INVALID),
        (cw.nick("ghost"), too_long, ErrorCode.NO_SUCH_NICK),
        (cw.nick("ghost"), "short", ErrorCode.NO_SUCH_NICK),
        (b.nick, too_long, ErrorCode.TEXT_TOO_LONG),
    ):
        a.send_frame(Direct(nick, text))
        refused(a, code, "MSG-9" if text == "short" else "MSG-8")


@requirement("MSG-10", "MSG-11", "MSG-12")
def test_direct_reaches_only_the_addressee(cw: Case) -> None:
    """A server MUST deliver an accepted DIRECT as WHISPER to the one client holding the nick
    (ignoring case) and to nobody else, answer ACK{room="", seq=0}, and accept a DIRECT to
    oneself."""
    a, b, c = cw.registered("a"), cw.registered("BeeBee"), cw.registered("c")
    ack = direct(a, b.nick.swapcase(), "for b only")
    cw.check((ack.room, ack.seq) == ("", 0), "MSG-11", "ACK{room='', seq=0}", repr(ack))
    _item, _ = b.expect(whisper_of("for b only"), "the WHISPER", "MSG-10")
    nothing_like(c, whisper_of("for b only"), "WHISPER meant for someone else", "MSG-10")
    nothing_like(a, whisper_of("for b only"), "WHISPER of own DIRECT to another", "MSG-10")
    a.send_frame(Direct(a.nick, "to myself"))
    wanted: list[Guard[Whisper | Ack | Error]] = [whisper_of("to myself"), one_of(Ack, Error)]
    got = a.collect(
        wanted,
        "the WHISPER to oneself and its ACK",
        "MSG-12",
    )
    if not isinstance(got[1], Ack):
        raise Violation("MSG-12", "ACK for a DIRECT to oneself", describe(got[1]))
    first = next(type(e).__name__ for _, e in a.log if e is got[0] or e is got[1])
    cw.observe(f"to oneself: {first.upper()} first (the order is not defined)")


@requirement("MSG-13")
def test_echo(cw: Case) -> None:
    """When it has granted ECHO to a client, a server MUST send that client a DELIVER of each
    of its own accepted room messages immediately after the message's ACK."""
    room = cw.room()
    a = cw.registered("echo", caps=int(Capability.ECHO))
    b = cw.registered("b")
    assert a.welcome is not None
    cw.require_capability(a.welcome, Capability.ECHO, "MSG-13")
    join(a, room)
    join(b, room)
    for i in range(3):
        a.send_frame(Send(room, f"echo {i}"))
    for i in range(3):
        ack = answer_to(a, "MSG-13")
        if not isinstance(ack, Ack):
            raise Violation("MSG-13", "ACK", describe(ack))
        nxt = a.recv_event()
        ok = isinstance(nxt, Deliver) and (nxt.seq, nxt.sender, nxt.text) == (
            ack.seq,
            a.nick,
            f"echo {i}",
        )
        cw.check(ok, "MSG-13", f"DELIVER seq {ack.seq} right after the ACK", describe(nxt))
    b.expect(deliver_of(room, "echo 2"), "the others still get it", "MSG-3")
