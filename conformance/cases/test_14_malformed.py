"""§14 Malformed input: every rule of the table, generated from the schema (conformance/
malformed/), each checked for its error code, its fatality, ``in_reply_to`` and what follows.

Fatal rows: "send ERROR with the code of the row, then close as in §11.3" — the case reads the
ERROR, then expects nothing but the close. Non-fatal rows: the ERROR, and the session goes on.
"""

from __future__ import annotations

import pytest

from conformance.client import reason_name
from conformance.context import Case
from conformance.errors import Violation
from conformance.malformed import CASES, Malformed
from conformance.markers import requirement
from conformance.predicates import left_about
from spec.codec import encode
from spec.constants import ErrorCode, LeaveReason
from spec.events import Deliver, Join, Send


def _param(mc: Malformed) -> object:
    return pytest.param(mc, id=mc.name, marks=pytest.mark.requirement(*mc.ids))


@pytest.mark.parametrize("mc", [_param(mc) for mc in CASES])
def test_malformed_input(cw: Case, mc: Malformed) -> None:
    """A server receiving the input of one §14 row MUST answer with that row's error code, and
    end the session for a fatal row or skip the frame and go on for a non-fatal one."""
    rule = mc.ids[0]
    client = cw.registered("m") if mc.registered else cw.client("m")
    client.send_raw(mc.build(client.nick or "m", client.welcome), mc.name)
    try:
        err = client.expect_error([mc.code], rule)
    except Violation as v:
        for also in mc.also:  # the same failure breaks these too
            cw.check(False, also, v.expected, v.actual)
        raise
    cw.ok(rule, *mc.also)
    if mc.in_reply_to is not None:
        cw.check(
            err.in_reply_to == mc.in_reply_to,
            "ERR-1",
            f"in_reply_to 0x{mc.in_reply_to:02X}",
            f"in_reply_to 0x{err.in_reply_to:02X}",
        )
    if not mc.fatal and mc.registered:
        client.barrier("ERR-3")  # the session goes on: a PING is still answered
        cw.ok("ERR-3")
    elif not mc.fatal:
        client.register(cw.nick("m"), req="HS-13")  # still unregistered: HELLO may follow
        cw.ok("HS-13")


@requirement("MAL-10", "ERR-3", "ORD-8")
def test_unknown_type_is_skipped_and_the_next_frame_handled(cw: Case) -> None:
    """An unknown type after WELCOME: the server "MUST answer the ERROR with in_reply_to = the
    unknown type, skip the frame and go on" — the request right behind it is still served."""
    a = cw.registered("a")
    room = cw.room()
    a.send_raw(b"\x00\x00\x00\x04\x66abc", "unknown type 0x66 with a body")
    a.send_frame(Join(room))
    err = a.expect_error([ErrorCode.UNKNOWN_TYPE], "MAL-10")
    cw.check(err.in_reply_to == 0x66, "MAL-10", "in_reply_to 0x66", f"0x{err.in_reply_to:02X}")
    roster = a.read_roster(room, "ERR-3")
    cw.check(a.nick in roster[-1].members, "ERR-3", "the JOIN after it served", repr(roster))
    cw.ok("ORD-8")


@requirement("PRES-6", "PRES-4", "MAL-1")
def test_members_see_left_error_after_a_protocol_error(cw: Case) -> None:
    """ "the other members of the client's rooms receive LEFT with reason ERROR" (§14): a
    server MUST set reason to the cause of the departure."""
    room = cw.room()
    watcher, culprit = cw.registered("watcher"), cw.registered("culprit")
    for c in (watcher, culprit):
        c.send_frame(Join(room))
        c.read_roster(room, "ROOM-5")
    culprit.send_raw(b"\x00\x00\x00\x00", "length 0")
    culprit.expect_error([ErrorCode.MALFORMED], "MAL-1")
    wanted = [left_about(r, culprit.nick) for r in (room, "lobby")]
    lefts = watcher.collect(
        wanted,
        f"LEFT about {culprit.nick} in {room} and lobby",
        "PRES-4",
    )
    for left in lefts:
        cw.check(
            left.reason == LeaveReason.ERROR,
            "PRES-6",
            f"LEFT ERROR in {left.room}",
            f"LEFT {reason_name(left.reason)}",
        )


@requirement("ERR-9", "MAL-1")
def test_frames_read_while_draining_are_not_acted_on(cw: Case) -> None:
    """A server MUST NOT act on frames it reads while draining: a SEND read then is not
    delivered."""
    watcher, culprit = cw.registered("watcher"), cw.registered("culprit")
    culprit.send_raw(
        b"\x00\x00\x00\x00" + encode(Send("lobby", "sent after a fatal error")),
        "length 0, then a SEND in the same write",
    )
    culprit.expect_error([ErrorCode.MALFORMED], "MAL-1")
    seen = watcher.barrier("ERR-9")
    leaked = [e for e in seen if isinstance(e, Deliver) and e.sender == culprit.nick]
    cw.check(not leaked, "ERR-9", "no DELIVER of the SEND read while draining", repr(leaked))
