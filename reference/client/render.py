"""What the interactive client shows for each event, as prompt_toolkit style-and-text fragments.

Everything a peer or the server wrote reaches the terminal only through :func:`clean` (one
line: names, quit messages, error texts) or :func:`message_lines` (a message text, which may
hold several lines). Neither lets a character through that moves the cursor or reorders text:
control characters become ``^X`` or ``<U+XXXX>``, bidirectional overrides and isolates become
``<U+XXXX>``. The continuation lines of a multi-line text are drawn indented under a bar, so no
line of a message can pass for a line of its own (a forged ``12:00 #lobby <bob> ...``).
"""

from __future__ import annotations

import re
import time
import zlib
from typing import assert_never

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.styles import Style

from spec.events import Ack, Deliver, Error, Joined, Left, Rooms, Roster, Whisper
from spec.names import fold

from . import words
from .errors import Disconnected, EndCause
from .library import ServerEvent

STYLE = Style.from_dict(
    {
        "time": "ansibrightblack",
        "room": "bold",
        "notice": "ansibrightblack",
        "error": "ansired bold",
        "direct": "ansimagenta bold",
        "prompt": "bold",
        "continued": "ansibrightblack",
    }
)
#: Nick colours: a nick always gets the same one (CRC-32 of its folded form picks it).
PALETTE = (
    "ansired",
    "ansigreen",
    "ansiyellow",
    "ansiblue",
    "ansimagenta",
    "ansicyan",
    "ansibrightred",
    "ansibrightgreen",
    "ansibrightyellow",
    "ansibrightblue",
    "ansibrightmagenta",
    "ansibrightcyan",
)
#: Drawn before each continuation line of a multi-line message.
CONTINUED = "      │ "

#: Where a text breaks into lines: every line end a terminal or a Unicode renderer honours.
_LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
#: Invisible characters that reorder the text around them (bidi embeddings, overrides,
#: isolates and marks): shown by name, never obeyed.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _visible(char: str) -> str:
    code = ord(char)
    if char == "\t":
        return " "
    if code < 0x20 or code == 0x7F:
        return "^" + chr(code ^ 0x40)  # ESC is ^[, BEL ^G, as terminals write them
    if 0x80 <= code < 0xA0 or char in _BIDI:
        return f"<U+{code:04X}>"
    return char


def clean(text: str) -> str:
    """``text`` on one line, with nothing that moves the cursor or reorders what follows."""
    if text.isprintable() and not _BIDI.intersection(text):
        return text
    return "".join(_visible(char) for char in _LINE_BREAK.sub(" ⏎ ", text))


def message_lines(text: str) -> list[str]:
    """A message text as the lines to draw, each cleaned (at least one, maybe empty)."""
    return [clean(line) for line in _LINE_BREAK.split(text)]


def nick_colour(nick: str) -> str:
    return PALETTE[zlib.crc32(fold(nick).encode()) % len(PALETTE)]


def nick(name: str) -> StyleAndTextTuples:
    return [(f"fg:{nick_colour(name)} bold", clean(name))]


def stamp() -> StyleAndTextTuples:
    return [("class:time", time.strftime("%H:%M") + " ")]


def room(name: str) -> StyleAndTextTuples:
    return [("class:room", f"#{clean(name)} ")]


def members(names: tuple[str, ...]) -> StyleAndTextTuples:
    out: StyleAndTextTuples = [("class:notice", f"{len(names)} here: ")]
    for i, member in enumerate(names):
        out += [("", ", ")] if i else []
        out += nick(member)
    return out


def said(head: StyleAndTextTuples, text: str) -> list[StyleAndTextTuples]:
    """A message's lines: ``head`` then the first line of text, then each further line
    indented under a bar."""
    first, *rest = message_lines(text)
    lines: list[StyleAndTextTuples] = [[*head, ("", first)]]
    lines += [[("class:continued", CONTINUED), ("", line)] for line in rest]
    return lines


def own_direct(to: str, me: str, text: str) -> list[StyleAndTextTuples]:
    head = [("class:direct", "[direct to "), *nick(to), ("class:direct", "] "), ("", "<")]
    return said([*stamp(), *head, *nick(me), ("", "> ")], text)


def event_lines(
    event: ServerEvent, me: str, joined: bool, max_text: int | None
) -> list[StyleAndTextTuples]:
    """The lines that show ``event``; ``joined``: a ROSTER that answers our /join."""
    match event:
        case Deliver():
            head = [*room(event.room), ("", "<"), *nick(event.sender), ("", "> ")]
            return said([*stamp(), *head], event.text)
        case Whisper():
            head = [("class:direct", "[direct] "), ("", "<"), *nick(event.sender), ("", "> ")]
            return said([*stamp(), *head], event.text)
        case Joined():
            line = [*room(event.room), ("class:notice", "-- "), *nick(event.nick)]
            return [[*stamp(), *line, ("class:notice", " joined")]]
        case Left():
            if fold(event.nick) == fold(me):
                return [[*stamp(), *room(event.room), ("class:notice", "-- you left")]]
            how = ("class:notice", " " + clean(words.left(event)))
            return [[*stamp(), *room(event.room), ("class:notice", "-- "), *nick(event.nick), how]]
        case Roster():
            intro = "-- you joined (plain lines go here now); " if joined else "-- "
            line = [*room(event.room), ("class:notice", intro), *members(event.members)]
            return [[*stamp(), *line]]
        case Rooms():
            if not event.rooms:
                return [[*stamp(), ("class:notice", "-- no rooms")]]
            listed = ", ".join(f"#{clean(r.name)} ({r.members})" for r in event.rooms)
            return [[*stamp(), ("class:notice", f"-- rooms: {listed}")]]
        case Error():
            return [[*stamp(), ("class:error", "! " + clean(words.request_error(event, max_text)))]]
        case Disconnected():
            if event.cause is EndCause.BYE:
                return [[*stamp(), ("class:notice", "-- disconnected")]]
            return [[*stamp(), ("class:error", "! " + clean(event.describe()))]]
        case Ack():
            return []  # our own messages come back as DELIVER (ECHO)
        case _:
            assert_never(event)
