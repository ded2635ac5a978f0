"""Tab completion for the interactive client: commands, nicks of the current room, rooms.

:class:`Directory` keeps what the server has told us of who is where (rosters, joins, leaves)
and which rooms exist (our rooms and the last /rooms answer); the receive thread updates it,
the prompt's thread reads it, under one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from spec.events import Joined, Left, Rooms, Roster
from spec.names import fold

from .library import ServerEvent

#: The commands, as typed after the slash.
COMMANDS = ("join", "leave", "room", "msg", "who", "rooms", "help", "quit")
#: Commands whose first argument is a room, and the one whose first argument is a nick.
_ROOM_FIRST = frozenset({"join", "leave", "part", "room", "who"})
_NICK_FIRST = frozenset({"msg", "m"})


class Directory:
    """Who is in which room, and which rooms exist, as far as we have been told."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: dict[str, dict[str, str]] = {}  # room -> folded nick -> nick
        self._rooms: dict[str, str] = {}  # folded room -> room

    def learn(self, event: ServerEvent | Roster) -> None:
        with self._lock:
            match event:
                case Roster(room=room, members=members):
                    self._members[fold(room)] = {fold(m): m for m in members}
                    self._rooms[fold(room)] = room
                case Joined(room=room, nick=nick):
                    self._members.setdefault(fold(room), {})[fold(nick)] = nick
                case Left(room=room, nick=nick):
                    self._members.get(fold(room), {}).pop(fold(nick), None)
                case Rooms(rooms=entries):
                    self._rooms.update((fold(e.name), e.name) for e in entries)

    def nicks(self, room: str | None) -> list[str]:
        """The members of ``room`` (every nick we know of when None)."""
        with self._lock:
            if room is not None:
                return sorted(self._members.get(fold(room), {}).values())
            return sorted({n for members in self._members.values() for n in members.values()})

    def rooms(self) -> list[str]:
        with self._lock:
            return sorted(self._rooms.values())


class ChatCompleter(Completer):
    """Completes the word before the cursor; ``current`` gives the room plain lines go to."""

    def __init__(self, directory: Directory, current: Callable[[], str | None]) -> None:
        self.directory = directory
        self.current = current

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        before = document.text_before_cursor
        words = before.split(" ")
        word = words[-1]
        if len(words) == 1 and word.startswith("/") and not word.startswith("//"):
            yield from _matching(word, word[1:], COMMANDS, prefix="/", suffix=" ")
            return
        command = words[0][1:].lower() if words[0].startswith("/") else None
        if command in _ROOM_FIRST and len(words) == 2:
            rooms = self.directory.rooms()
            yield from _matching(word, word.removeprefix("#"), rooms, prefix="#")
        elif command in _NICK_FIRST and len(words) == 2:
            yield from _matching(word, word, self.directory.nicks(None), suffix=" ")
        elif command is None or command in _NICK_FIRST:
            yield from _matching(word, word, self.directory.nicks(self.current()))


def _matching(
    word: str, typed: str, candidates: Iterable[str], prefix: str = "", suffix: str = ""
) -> Iterator[Completion]:
    """What replaces ``word`` (of which ``typed`` is the part to match) for each candidate
    that starts with ``typed``, ignoring case."""
    for candidate in candidates:
        if fold(candidate).startswith(fold(typed)):
            yield Completion(prefix + candidate + suffix, start_position=-len(word))
