"""What a line typed (or piped) into the client means: a message or a slash command."""

from __future__ import annotations

from dataclasses import dataclass

from spec.names import is_valid_nick, is_valid_room

HELP = """\
commands:
  TEXT              say TEXT in the current room (start with // to say something beginning with /)
  /join ROOM        join ROOM (it is created if nobody is in it) and make it the current room
  /leave [ROOM]     leave ROOM (default: the current room)
  /room ROOM        make ROOM, which you are in, the current room
  /msg NICK TEXT    send TEXT to NICK alone
  /who [ROOM]       list the members of ROOM (default: the current room)
  /rooms            list the rooms that exist and their sizes
  /help             show this list
  /quit [REASON]    leave the chat, telling the others REASON"""


class CommandError(ValueError):
    """The line cannot be carried out as typed; the message says why, in words."""


@dataclass(frozen=True, slots=True)
class Say:
    text: str


@dataclass(frozen=True, slots=True)
class JoinRoom:
    room: str


@dataclass(frozen=True, slots=True)
class LeaveRoom:
    room: str | None


@dataclass(frozen=True, slots=True)
class SwitchRoom:
    room: str


@dataclass(frozen=True, slots=True)
class Message:
    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class WhoIs:
    room: str | None


@dataclass(frozen=True, slots=True)
class ListRooms:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    reason: str


Command = Say | JoinRoom | LeaveRoom | SwitchRoom | Message | WhoIs | ListRooms | Help | Quit


def parse(line: str) -> Command | None:
    """The command a line stands for; None for a blank line. Raises CommandError."""
    if not line.strip():
        return None
    if not line.startswith("/"):
        return Say(line)
    if line.startswith("//"):
        return Say(line[1:])
    name, _, rest = line[1:].partition(" ")
    name = name.lower()
    rest = rest.strip()
    if name == "join":
        return JoinRoom(_room(rest, "/join ROOM", required=True) or "")
    if name in ("leave", "part"):
        return LeaveRoom(_room(rest, "/leave [ROOM]"))
    if name == "room":
        return SwitchRoom(_room(rest, "/room ROOM", required=True) or "")
    if name in ("msg", "m"):
        nick, _, text = rest.partition(" ")
        if not nick or not text:
            raise CommandError("usage: /msg NICK TEXT")
        if not is_valid_nick(nick):
            raise CommandError(f"{nick!r} is not a nick: use 1 to 32 of A-Z a-z 0-9 _ -")
        return Message(nick, text)
    if name == "who":
        return WhoIs(_room(rest, "/who [ROOM]"))
    if name in ("rooms", "list"):
        _no_argument(rest, "/rooms")
        return ListRooms()
    if name == "help":
        return Help()
    if name in ("quit", "exit"):
        return Quit(rest or "bye")
    raise CommandError(f"unknown command /{name}; /help lists the commands")


def _room(argument: str, usage: str, required: bool = False) -> str | None:
    if not argument:
        if required:
            raise CommandError(f"usage: {usage}")
        return None
    if " " in argument:
        raise CommandError(f"usage: {usage}")
    room = argument.removeprefix("#")
    if not is_valid_room(room):
        raise CommandError(f"{argument!r} is not a room name: use 1 to 32 of A-Z a-z 0-9 _ -")
    return room


def _no_argument(argument: str, usage: str) -> None:
    if argument:
        raise CommandError(f"usage: {usage}")
