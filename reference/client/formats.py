r"""The scripted client's output: one line per event, in text (default) or JSON (``--json``).

This format is stable: scripts and tests parse it. Each line is ``KEYWORD FIELD...``; fields are
separated by one space. Nicks and room names never hold spaces (should a faulty server send a
name that is not valid, it is escaped as TEXT is, a space as ``\x20``). A field named TEXT is always
the last one and always present (it may be empty, leaving the line ending in a space); in it a
backslash is written ``\\``, a newline ``\n``, a carriage return ``\r``, a tab ``\t``, any other
control character ``\xHH`` and the line and paragraph separators ``\u2028`` ``\u2029``, so
one event is always one line. Room names are in the server's canonical lower case.

    welcome NICK ROOM MEMBER...       first line: our registered nick, the room we were put in,
                                      its members (us included; none if QUIET was granted)
    message ROOM SEQ SENDER TEXT      a room message (DELIVER)
    whisper SENDER TEXT               a direct message to us (WHISPER)
    ack ROOM SEQ                      our room message was accepted as number SEQ of ROOM
    ack-direct                        our direct message was accepted
    roster ROOM SEQ MEMBER...         the members of ROOM (answer to /join or /who); SEQ is the
                                      room's last message number
    rooms ROOM:COUNT...               the rooms that exist and how many members each has
    joined ROOM NICK                  NICK joined ROOM
    left ROOM NICK REASON TEXT        NICK left ROOM; REASON is part, quit, lost, timeout,
                                      error, slow-consumer, shutdown (or the number, if unknown);
                                      TEXT is the quit message (empty for other reasons)
    error CODE REQUEST TEXT           a request failed: CODE is the error name (NO_SUCH_NICK,
                                      ...; 0xHHHH if unknown), REQUEST the frame type that
                                      caused it (SEND, JOIN, ...; - if none)
    closed bye                        last line after we said BYE
    closed error CODE TEXT            last line: the server ended the session with a fatal error
    closed lost TEXT                  last line: the connection broke or closed without an error
    closed protocol TEXT              last line: the server broke the protocol

With ``--json`` each line is one JSON object with an ``"event"`` key naming the same keyword and
one key per field: ``welcome`` {nick, room, members, caps}; ``message`` {room, seq, sender,
text}; ``whisper`` {sender, text}; ``ack`` {room, seq}; ``ack-direct`` {}; ``roster`` {room,
seq, members}; ``rooms`` {rooms: [{name, members}]}; ``joined`` {room, nick}; ``left`` {room,
nick, reason, text}; ``error`` {code, code_value, request, text}; ``closed`` {cause, code,
text} (code is null unless cause is "error").

After ``--reconnect`` re-establishes a session, a new ``welcome`` line starts it.
"""

from __future__ import annotations

import json
from typing import Any, assert_never

from spec.constants import FrameType, LeaveReason
from spec.events import Ack, Deliver, Error, Joined, Left, Rooms, Roster, Welcome, Whisper

from .errors import Disconnected, EndCause
from .library import ServerEvent

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """TEXT as written in a text line: no control character survives, so no line break."""
    if text.isprintable() and "\\" not in text:
        return text
    out: list[str] = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            out.append(f"\\x{ord(char):02x}")
        elif char in "\u2028\u2029":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def reason_name(reason: int) -> str:
    try:
        return LeaveReason(reason).name.lower().replace("_", "-")
    except ValueError:
        return str(reason)


def request_name(in_reply_to: int) -> str:
    if in_reply_to == 0:
        return "-"
    try:
        return FrameType(in_reply_to).name
    except ValueError:
        return f"0x{in_reply_to:02X}"


def welcome_fields(welcome: Welcome, roster: Roster | None) -> dict[str, Any]:
    members = list(roster.members) if roster is not None else []
    return {
        "event": "welcome",
        "nick": welcome.nick,
        "room": welcome.room,
        "members": members,
        "caps": welcome.caps,
    }


def event_fields(event: ServerEvent) -> dict[str, Any]:
    """The event as the keyword and fields shared by both formats."""
    match event:
        case Deliver(room, seq, sender, text):
            return {"event": "message", "room": room, "seq": seq, "sender": sender, "text": text}
        case Whisper(sender, text):
            return {"event": "whisper", "sender": sender, "text": text}
        case Ack(room="", seq=_):
            return {"event": "ack-direct"}
        case Ack(room, seq):
            return {"event": "ack", "room": room, "seq": seq}
        case Roster(room, seq, members):
            return {"event": "roster", "room": room, "seq": seq, "members": members}
        case Rooms(rooms):
            return {
                "event": "rooms",
                "rooms": [{"name": r.name, "members": r.members} for r in rooms],
            }
        case Joined(room, nick):
            return {"event": "joined", "room": room, "nick": nick}
        case Left(room, nick, reason, text):
            return {
                "event": "left",
                "room": room,
                "nick": nick,
                "reason": reason_name(reason),
                "text": text,
            }
        case Error():
            return {
                "event": "error",
                "code": event.code_name,
                "code_value": event.code,
                "request": request_name(event.in_reply_to),
                "text": event.text,
            }
        case Disconnected(cause, detail, error):
            code = error.code_name if error is not None else None
            return {"event": "closed", "cause": cause.value, "code": code, "text": detail}
        case _:
            assert_never(event)


def as_json(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False)


def as_text(fields: dict[str, Any]) -> str:
    w = _word
    match fields["event"]:
        case "welcome":
            return " ".join(map(w, ["welcome", fields["nick"], fields["room"], *fields["members"]]))
        case "message":
            head = f"message {w(fields['room'])} {fields['seq']} {w(fields['sender'])}"
            return f"{head} {escape(fields['text'])}"
        case "whisper":
            return f"whisper {w(fields['sender'])} {escape(fields['text'])}"
        case "ack":
            return f"ack {w(fields['room'])} {fields['seq']}"
        case "ack-direct":
            return "ack-direct"
        case "roster":
            members = map(w, fields["members"])
            return " ".join(["roster", w(fields["room"]), str(fields["seq"]), *members])
        case "rooms":
            return " ".join(["rooms", *(f"{w(r['name'])}:{r['members']}" for r in fields["rooms"])])
        case "joined":
            return f"joined {w(fields['room'])} {w(fields['nick'])}"
        case "left":
            head = f"left {w(fields['room'])} {w(fields['nick'])} {fields['reason']}"
            return f"{head} {escape(fields['text'])}"
        case "error":
            return f"error {fields['code']} {fields['request']} {escape(fields['text'])}"
        case "closed" if fields["cause"] == EndCause.BYE.value:
            return "closed bye"
        case "closed" if fields["cause"] == EndCause.SERVER_ERROR.value:
            return f"closed error {fields['code']} {escape(fields['text'])}"
        case "closed":
            return f"closed {fields['cause']} {escape(fields['text'])}"
        case keyword:
            raise ValueError(f"no text line for the keyword {keyword!r}")


def _word(name: str) -> str:
    """A nick or room name as one field: as it is (a valid name), or escaped like TEXT with a
    space written ``\\x20``, should a faulty server send a name that is not valid."""
    return escape(name).replace(" ", "\\x20")


def render(fields: dict[str, Any], json_lines: bool) -> str:
    """One output line (without its newline)."""
    return as_json(fields) if json_lines else as_text(fields)
