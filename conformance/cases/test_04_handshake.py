"""§4 Handshake: HELLO, WELCOME and its roster, the handshake time limit, refusals, a full
server, capabilities."""

from __future__ import annotations

import contextlib
import time

from conformance.background import Background
from conformance.client import Closed, MockClient, SendFailed, describe, one_of
from conformance.context import Case
from conformance.errors import SkipReason, Violation, skip
from conformance.markers import requirement
from conformance.steps import send
from spec.constants import (
    HARD_MAX_FRAME,
    KNOWN_CAPABILITIES,
    MAX_SLOW_TIMEOUT_MS,
    MIN_MAX_FRAME,
    Capability,
    ErrorCode,
)
from spec.events import Deliver, Error, Hello, Welcome

#: §4.2: the 77 bytes a DELIVER needs besides its text.
DELIVER_OVERHEAD = 77


@requirement("HS-4", "HS-5", "HS-6", "HS-8", "ROOM-3")
def test_welcome_answers_hello(cw: Case) -> None:
    """On accepting a HELLO, a server MUST answer WELCOME with version 1; its values MUST meet
    the constraint table; its nick MUST be the nick exactly as asked, case kept."""
    nick = cw.nick("MiXeD_Case")
    c = cw.client("a")
    w = c.register(nick, req="HS-8")
    cw.ok("HS-8")
    cw.check(w.version == 1, "HS-4", "version 1", f"version {w.version}")
    cw.check(w.nick == nick, "HS-6", f"nick {nick!r}", f"nick {w.nick!r}")
    problems = welcome_problems(w)
    cw.check(not problems, "HS-5", "WELCOME values within the §4.2 table", "; ".join(problems))
    cw.check(w.room == "lobby", "ROOM-3", "room 'lobby'", repr(w.room))
    members = {m for r in c.welcome_roster for m in r.members}
    cw.check(nick in members, "ROOM-3", f"{nick} in the lobby ROSTER", repr(sorted(members)))


def welcome_problems(w: Welcome) -> list[str]:
    checks = [
        (MIN_MAX_FRAME <= w.max_frame <= HARD_MAX_FRAME, f"max_frame {w.max_frame}"),
        (w.max_text <= 65535, f"max_text {w.max_text}"),
        (
            w.max_text + DELIVER_OVERHEAD <= w.max_frame,
            f"max_text {w.max_text} + 77 > max_frame {w.max_frame}",
        ),
        (w.max_rooms >= 1, f"max_rooms {w.max_rooms}"),
        (w.out_limit >= 1, f"out_limit {w.out_limit}"),
        (1 <= w.slow_timeout_ms <= MAX_SLOW_TIMEOUT_MS, f"slow_timeout_ms {w.slow_timeout_ms}"),
        (w.rate == 0 or w.burst >= 1, f"burst {w.burst} with rate {w.rate}"),
        (w.room == "lobby", f"room {w.room!r}"),
    ]
    return [text for ok, text in checks if not ok]


@requirement("HS-7")
def test_lobby_roster_follows_welcome(cw: Case) -> None:
    """Unless QUIET was granted, the server MUST follow WELCOME immediately by the ROSTER of
    lobby, whose members include the new client and whose seq is the last sequence number
    assigned in lobby. Other users of the server may speak in lobby meanwhile: the seq lies
    between a's last ACK and the last lobby seq a has been sent by then."""
    a = cw.registered("a")
    ack = send(a, "lobby", "the last lobby message before b arrives", req="HS-7")
    b = cw.client("b")
    b.register(cw.nick("b"), req="HS-7")  # register() insists the ROSTER comes right after
    members = {m for r in b.welcome_roster for m in r.members}
    seq = b.welcome_roster[-1].seq
    heard = [e.seq for e in a.barrier("HS-7") if isinstance(e, Deliver) and e.room == "lobby"]
    last = max([ack.seq, *heard])
    cw.check({a.nick, b.nick} <= members, "HS-7", f"{a.nick} and {b.nick} listed", repr(members))
    cw.check(
        ack.seq <= seq <= last,
        "HS-7",
        f"seq {ack.seq}" + (f"..{last}" if last > ack.seq else "") + " (the last in lobby)",
        f"seq {seq}",
    )


@requirement("HS-13", "NICK-1", "NICK-2")
def test_refused_hello_leaves_session_open(cw: Case) -> None:
    """A HELLO refused for its nick is not fatal: the server MUST keep the session open and
    unregistered, and treat the next HELLO on it like a first one."""
    holder = cw.registered("holder")
    c = cw.client("c")
    for nick, code, req in (
        ("not valid!", ErrorCode.NICK_INVALID, "NICK-1"),
        (holder.nick.upper(), ErrorCode.NICK_IN_USE, "NICK-2"),
    ):
        answer = c.hello(nick, req=req)
        if not isinstance(answer, Error) or answer.code != code:
            raise Violation(req, f"ERROR {code.name} for HELLO {nick!r}", describe(answer))
        cw.ok(req)
    c.register(cw.nick("c"), req="HS-13")


@requirement("HS-3", "MAL-14")
def test_unsupported_version_names_versions(cw: Case) -> None:
    """The text of an UNSUPPORTED_VERSION error SHOULD name the versions the server speaks."""
    c = cw.client("v")
    c.send_frame(Hello(nick="v", version=2))
    err = c.expect_error([ErrorCode.UNSUPPORTED_VERSION], "MAL-14")
    cw.check("1" in err.text, "HS-3", "a text naming version 1", repr(err.text))


@requirement("HS-18", "HS-19", "HS-20")
def test_capabilities_are_the_intersection(cw: Case) -> None:
    """WELCOME's caps MUST equal the bits the client requested AND the bits the server
    supports; unknown bits MUST be ignored without an error; nothing unrequested granted."""
    granted: dict[int, int] = {}
    for asked in (0, int(Capability.ECHO), int(Capability.QUIET), 0xFFFF_FFFF, 0xFFFF_FFFC):
        c = cw.client("caps")
        answer = c.hello(cw.nick("caps"), caps=asked, req="HS-19")
        if isinstance(answer, Error):
            raise Violation("HS-19", f"WELCOME for caps 0x{asked:08X}", describe(answer))
        granted[asked] = answer.caps
        c.close()
    for asked, caps in granted.items():
        cw.check(
            caps & ~asked == 0,
            "HS-20",
            f"only requested bits for 0x{asked:08X}",
            f"caps 0x{caps:08X}",
        )
        cw.check(
            caps & ~int(KNOWN_CAPABILITIES) == 0,
            "HS-20",
            "no bits this version does not define",
            f"caps 0x{caps:08X}",
        )
    supported = granted[int(Capability.ECHO)] | granted[int(Capability.QUIET)]
    cw.check(
        granted[0xFFFF_FFFF] == supported,
        "HS-18",
        f"all bits asked: exactly the supported ones 0x{supported:08X}",
        f"0x{granted[0xFFFF_FFFF]:08X}",
    )
    cw.check(granted[0xFFFF_FFFC] == 0, "HS-18", "unknown bits only: caps 0", str(granted))
    cw.observe(f"supported capabilities: 0x{supported:08X}")


@requirement("HS-16")
def test_full_server_says_server_full(cw: Case) -> None:
    """A full server MUST refuse a further client with the fatal SERVER_FULL followed by the
    close of §11.3, never with a bare close of the connection."""
    limit = max(4 * cw.options.clients, 200)
    opened: list[MockClient] = []
    for i in range(limit):
        c = cw.client(f"f{i}")
        opened.append(c)
        with contextlib.suppress(SendFailed):
            c.send_frame(Hello(nick=cw.nick("f"), caps=int(Capability.QUIET)))
        item, _ = c.expect(one_of(Welcome, Error, Closed), "answer", "HS-16")
        if isinstance(item, Welcome):
            continue
        if isinstance(item, Closed):
            raise Violation("HS-16", "ERROR SERVER_FULL before the close", describe(item))
        if item.code != ErrorCode.SERVER_FULL:
            raise Violation("HS-16", "WELCOME or ERROR SERVER_FULL", describe(item))
        c.expect_close("HS-16")
        when = "on accept" if item.in_reply_to == 0 else "in answer to HELLO"
        cw.observe(f"SERVER_FULL {when} after {i} clients")
        return
    skip(SkipReason.NOT_APPLICABLE, f"no client limit reached with {limit} clients")


def _first_end(client: MockClient, until: float) -> tuple[object, float | None]:
    """Wait (to the monotonic deadline ``until``) for an ERROR or the close; returns it and
    when it arrived."""
    item = client.recv_event(max(0.0, until - time.monotonic()) / client.scale)
    while item is not None and not isinstance(item, Error | Closed):
        item = client.recv_event(max(0.0, until - time.monotonic()) / client.scale)
    if item is None:
        return None, None
    arrived = next(t for t, e in client.log if e is item)
    return item, arrived


@requirement("HS-10", "HS-11", "HS-12")
def test_handshake_timeout(cw: Case, background: Background) -> None:
    """A server MUST end with the fatal HANDSHAKE_TIMEOUT a session not registered within its
    handshake timeout, which MUST be at most 30 seconds and SHOULD be at least 1 second."""
    cw.transcript = background.transcript
    bound = 30.0 + 2.0 * cw.scale
    item, at = _first_end(background.no_hello, background.opened + bound)
    if item is None or at is None:
        waited = time.monotonic() - background.opened
        raise Violation(
            "HS-11", "HANDSHAKE_TIMEOUT within 30 s", f"no HANDSHAKE_TIMEOUT in {waited:.1f}s"
        )
    if not isinstance(item, Error) or item.code != ErrorCode.HANDSHAKE_TIMEOUT:
        raise Violation("HS-10", "ERROR HANDSHAKE_TIMEOUT", describe(item))  # type: ignore[arg-type]
    background.no_hello.expect_close("HS-10")
    took = at - background.opened
    cw.ok("HS-10", "HS-11")
    cw.check(took >= 1.0, "HS-12", "a handshake timeout of at least 1 s", f"{took:.2f}s")
    cw.observe(f"handshake timeout about {took:.1f}s", "HS-10", "HS-11", "HS-12")


@requirement("HS-10")
def test_refused_hellos_do_not_restart_the_handshake_timer(
    cw: Case, background: Background
) -> None:
    """The handshake timeout is "counted from the moment the connection was accepted and not
    restarted by refused HELLOs" — a client refused every half second is still cut."""
    cw.transcript = background.transcript
    bound = 30.0 + 2.0 * cw.scale
    item, _at = _first_end(background.refused, background.opened + bound)
    while isinstance(item, Error) and item.code == ErrorCode.NICK_INVALID:
        item, _at = _first_end(background.refused, background.opened + bound)
    if item is None:
        raise Violation("HS-10", "HANDSHAKE_TIMEOUT despite refused HELLOs", "still open")
    if not isinstance(item, Error) or item.code != ErrorCode.HANDSHAKE_TIMEOUT:
        raise Violation("HS-10", "ERROR HANDSHAKE_TIMEOUT", describe(item))  # type: ignore[arg-type]
