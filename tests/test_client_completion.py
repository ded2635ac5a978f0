"""Tab completion: commands, the nicks of the current room, room names."""

from __future__ import annotations

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from reference.client.completion import ChatCompleter, Directory
from spec.constants import LeaveReason
from spec.events import Joined, Left, RoomEntry, Rooms, Roster


def completions(completer: ChatCompleter, text: str) -> list[str]:
    """What each completion makes of ``text``."""
    out = []
    for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True)):
        out.append(text[: len(text) + c.start_position] + c.text)
    return out


def directory() -> Directory:
    d = Directory()
    d.learn(Roster("lobby", 0, ("alice", "Bob", "bella")))
    d.learn(Roster("rust", 3, ("alice", "carol")))
    d.learn(Joined("rust", "Bert"))
    d.learn(Left("lobby", "bella", LeaveReason.QUIT, "bye"))
    d.learn(Rooms((RoomEntry("rustaceans", 4), RoomEntry("lobby", 2))))
    return d


def test_commands_complete_after_the_slash() -> None:
    c = ChatCompleter(directory(), lambda: "lobby")
    assert completions(c, "/jo") == ["/join "]
    assert completions(c, "/r") == ["/room ", "/rooms "]
    assert completions(c, "//jo") == []  # a literal slash: text, not a command


def test_nicks_of_the_current_room_complete_in_text() -> None:
    c = ChatCompleter(directory(), lambda: "lobby")
    assert completions(c, "b") == ["Bob"]  # bella left; Bert is in rust
    assert completions(c, "thanks B") == ["thanks Bob"]
    c = ChatCompleter(directory(), lambda: "rust")
    assert completions(c, "thanks b") == ["thanks Bert"]


def test_rooms_complete_after_room_commands_and_nicks_after_msg() -> None:
    c = ChatCompleter(directory(), lambda: "lobby")
    assert completions(c, "/join ru") == ["/join #rust", "/join #rustaceans"]
    assert completions(c, "/who #l") == ["/who #lobby"]
    assert completions(c, "/msg ca") == ["/msg carol "]
    assert completions(c, "/quit b") == []
