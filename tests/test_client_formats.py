"""The scripted output format and the command parser, without a network."""

from __future__ import annotations

import json

import pytest

from reference.client.commands import (
    CommandError,
    Help,
    JoinRoom,
    LeaveRoom,
    ListRooms,
    Message,
    Quit,
    Say,
    SwitchRoom,
    WhoIs,
    parse,
)
from reference.client.errors import Disconnected, EndCause
from reference.client.formats import as_json, as_text, escape, event_fields, welcome_fields
from reference.client.library import ServerEvent
from spec.constants import ErrorCode, FrameType, LeaveReason
from spec.events import (
    Ack,
    Deliver,
    Error,
    Joined,
    Left,
    RoomEntry,
    Rooms,
    Roster,
    Welcome,
    Whisper,
)

TEXT_LINES: list[tuple[ServerEvent, str]] = [
    (Deliver("lobby", 7, "bob", "hi there"), "message lobby 7 bob hi there"),
    (Deliver("lobby", 8, "bob", ""), "message lobby 8 bob "),
    (Whisper("bob", "psst"), "whisper bob psst"),
    (Ack("rust", 3), "ack rust 3"),
    (Ack("", 0), "ack-direct"),
    (Roster("rust", 5, ("a", "b")), "roster rust 5 a b"),
    (Rooms((RoomEntry("lobby", 2), RoomEntry("rust", 1))), "rooms lobby:2 rust:1"),
    (Rooms(()), "rooms"),
    (Joined("lobby", "carol"), "joined lobby carol"),
    (Left("lobby", "carol", LeaveReason.QUIT, "bye now"), "left lobby carol quit bye now"),
    (Left("lobby", "carol", LeaveReason.SLOW_CONSUMER), "left lobby carol slow-consumer "),
    (Left("lobby", "carol", 42), "left lobby carol 42 "),
    (
        Error(ErrorCode.NO_SUCH_NICK, "no one", FrameType.DIRECT),
        "error NO_SUCH_NICK DIRECT no one",
    ),
    (Error(0x01FE, "", 0), "error 0x01FE - "),
    (Disconnected(EndCause.BYE, "closed after BYE"), "closed bye"),
    (
        Disconnected(EndCause.SERVER_ERROR, "going", Error(ErrorCode.SERVER_SHUTDOWN, "going")),
        "closed error SERVER_SHUTDOWN going",
    ),
    (Disconnected(EndCause.LOST, "reset"), "closed lost reset"),
    (Disconnected(EndCause.PROTOCOL, "MALFORMED: x"), "closed protocol MALFORMED: x"),
]


@pytest.mark.parametrize(("event", "line"), TEXT_LINES)
def test_text_line_of_each_event(event: ServerEvent, line: str) -> None:
    assert as_text(event_fields(event)) == line


@pytest.mark.parametrize(("event", "line"), TEXT_LINES)
def test_json_line_of_each_event_names_the_same_keyword(event: ServerEvent, line: str) -> None:
    decoded = json.loads(as_json(event_fields(event)))
    assert decoded["event"] == line.split(" ")[0]


def test_welcome_line() -> None:
    fields = welcome_fields(Welcome(nick="Al"), Roster("lobby", 0, ("bob", "Al")))
    assert as_text(fields) == "welcome Al lobby bob Al"
    assert json.loads(as_json(fields)) == {
        "event": "welcome",
        "nick": "Al",
        "room": "lobby",
        "members": ["bob", "Al"],
        "caps": 0,
    }
    assert as_text(welcome_fields(Welcome(nick="q", caps=2), None)) == "welcome q lobby"


def test_escape_keeps_one_event_on_one_line() -> None:
    nasty = "a\\b\nc\rd\te\x00f\x1b[31m\x7f\x85\u2028\u2029é😀"
    escaped = escape(nasty)
    assert escaped == "a\\\\b\\nc\\rd\\te\\x00f\\x1b[31m\\x7f\\x85\\u2028\\u2029é😀"
    assert len(escaped.splitlines()) == 1
    assert escape("plain text") == "plain text"


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("hello", Say("hello")),
        ("  spaced  ", Say("  spaced  ")),
        ("//not a command", Say("/not a command")),
        ("/join Rust", JoinRoom("Rust")),
        ("/join #rust", JoinRoom("rust")),
        ("/leave", LeaveRoom(None)),
        ("/leave rust", LeaveRoom("rust")),
        ("/room lobby", SwitchRoom("lobby")),
        ("/msg bob hi  there", Message("bob", "hi  there")),
        ("/who", WhoIs(None)),
        ("/who rust", WhoIs("rust")),
        ("/rooms", ListRooms()),
        ("/help", Help()),
        ("/quit", Quit("bye")),
        ("/quit gone fishing", Quit("gone fishing")),
        ("/QUIT x", Quit("x")),
    ],
)
def test_parse(line: str, command: object) -> None:
    assert parse(line) == command


def test_blank_lines_are_nothing() -> None:
    assert parse("") is None
    assert parse("   ") is None


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("/nope", "unknown command /nope"),
        ("/join", "usage: /join ROOM"),
        ("/join two words", "usage: /join ROOM"),
        ("/join b@d", "is not a room name"),
        ("/join " + "r" * 33, "is not a room name"),
        ("/room", "usage: /room ROOM"),
        ("/msg bob", "usage: /msg NICK TEXT"),
        ("/msg b@d hi", "is not a nick"),
        ("/rooms extra", "usage: /rooms"),
    ],
)
def test_bad_commands_say_what_is_wrong(line: str, complaint: str) -> None:
    with pytest.raises(CommandError, match=complaint):
        parse(line)


def test_a_name_no_valid_server_sends_still_stays_one_field_on_one_line() -> None:
    line = as_text(event_fields(Deliver("lo bby", 1, "bo\nb", "hi")))
    assert line == "message lo\\x20bby 1 bo\\nb hi"
    assert as_text(event_fields(Joined("lobby", "alice"))) == "joined lobby alice"
