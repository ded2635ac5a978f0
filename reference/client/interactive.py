"""Interactive mode (stdin is a terminal), built on prompt_toolkit.

Two threads: the main thread runs the prompt (line editing, history with the arrow keys) and
sends what is typed; the client's receive thread shows what arrives. Lines from the receive
thread go through ``print_formatted_text``, which prints them above the prompt and redraws the
prompt with whatever the user had typed, untouched; ``patch_stdout`` does the same for any other
output. The client asks for ECHO, so our own room messages come back in the room's order.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import zlib

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.formatted_text import FormattedText, StyleAndTextTuples
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.renderer import print_formatted_text as write_fragments
from prompt_toolkit.styles import Style

from spec.constants import Capability
from spec.events import Ack, Deliver, Error, Joined, Left, Rooms, Roster, Whisper
from spec.names import fold, is_valid_nick

from . import words
from .chat import Chat, Endpoint
from .commands import HELP, Command, CommandError, Help, Message, Quit, parse
from .errors import (
    ClientError,
    ConnectFailed,
    ConnectionClosed,
    Disconnected,
    EndCause,
    InvalidRequest,
    NickRefused,
)
from .library import ChatClient, ServerEvent
from .status import EXIT_NO_CONNECTION, EXIT_OK, EXIT_SESSION_ENDED

STYLE = Style.from_dict(
    {
        "time": "ansibrightblack",
        "room": "bold",
        "notice": "ansibrightblack",
        "error": "ansired bold",
        "direct": "ansimagenta bold",
        "prompt": "bold",
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


def nick_colour(nick: str) -> str:
    return PALETTE[zlib.crc32(fold(nick).encode()) % len(PALETTE)]


def _nick(nick: str) -> StyleAndTextTuples:
    return [(f"fg:{nick_colour(nick)} bold", nick)]


def _stamp() -> StyleAndTextTuples:
    return [("class:time", time.strftime("%H:%M") + " ")]


def _room(room: str) -> StyleAndTextTuples:
    return [("class:room", f"#{room} ")]


def _members(members: tuple[str, ...]) -> StyleAndTextTuples:
    out: StyleAndTextTuples = [("class:notice", f"{len(members)} here: ")]
    for i, member in enumerate(members):
        out += [("", ", ")] if i else []
        out += _nick(member)
    return out


_JOINED = ("class:notice", " joined")


class _ChatOver(Exception):
    """Ends the prompt when the session is over."""


class TerminalView:
    """The front end's output side (see :class:`reference.client.chat.Frontend`).

    Only the prompt's own event loop writes to the terminal while a prompt runs: other threads
    queue their lines and ask the loop to print them with ``run_in_terminal`` (which erases the
    prompt, prints, and draws the prompt again with the typed text). Between prompts the main
    thread prints what is queued. The prompt's start and end are tracked under the same lock as
    the queue, so a line is never written by two threads at once, nor lost.
    """

    def __init__(self, session: PromptSession[str]) -> None:
        self._session = session
        self._lock = threading.RLock()
        self._print_lock = threading.Lock()
        self._queued: list[StyleAndTextTuples] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_scheduled = False
        self._ready = False
        self._held: list[ServerEvent] = []
        self._over = False
        self.chat: Chat | None = None
        self.max_text: int | None = None

    def print(self, fragments: StyleAndTextTuples) -> None:
        with self._print_lock:
            self._queued.append(fragments)
            if self._loop is not None and not self._drain_scheduled:
                self._drain_scheduled = True
                self._loop.call_soon_threadsafe(self._drain_in_prompt)

    def _drain_in_prompt(self) -> None:
        """In the prompt's loop: print the queue above the prompt."""
        if self._session.app.is_done:
            return  # the prompt is ending; the main thread prints the queue next
        run_in_terminal(self.write_queued)

    def write_queued(self) -> None:
        """Print what is queued: in the prompt's loop, or in the main thread between prompts."""
        with self._print_lock:
            queued, self._queued = self._queued, []
            self._drain_scheduled = False
        output = self._session.output
        for fragments in queued:
            write_fragments(output, FormattedText([*fragments, ("", "\n")]), STYLE)
        output.flush()

    def prompt_started(self) -> None:
        """The prompt's pre_run hook: from now until it ends, its loop prints."""
        app = self._session.app
        loop = asyncio.get_running_loop()
        assert app.future is not None
        with self._print_lock:
            self._loop = loop
            app.future.add_done_callback(self._prompt_ending)
            if self._queued and not self._drain_scheduled:
                self._drain_scheduled = True
                loop.call_soon(self._drain_in_prompt)
        self.exit_if_over()

    def _prompt_ending(self, _: object) -> None:
        with self._print_lock:
            self._loop = None
            self._drain_scheduled = False

    def notice(self, text: str) -> None:
        with self._lock:
            self.print([*_stamp(), ("class:notice", f"-- {text}")])

    def error(self, text: str) -> None:
        with self._lock:
            self.print([*_stamp(), ("class:error", f"! {text}")])

    def connected(self, client: ChatClient, again: bool) -> None:
        assert client.welcome is not None
        self.max_text = client.welcome.max_text
        roster = client.welcome_roster
        members = _members(roster.members) if roster is not None else []
        line = [
            *_stamp(),
            ("class:notice", "-- reconnected as " if again else "-- you are "),
            *_nick(client.welcome.nick),
            ("class:notice", " in "),
            *_room(client.welcome.room),
            *members,
        ]
        with self._lock:
            self.print(line)
            if not again:
                self.print([("class:notice", "   type /help for the commands")])
            self._ready = True
            held, self._held = self._held, []
            for event in held:
                self._show(event)

    def show(self, event: ServerEvent) -> None:
        with self._lock:
            if not self._ready:
                self._held.append(event)
            else:
                self._show(event)

    def _show(self, event: ServerEvent) -> None:
        line = self._render(event)
        if line:
            self.print([*_stamp(), *line])
        if isinstance(event, Disconnected):
            self._ready = False

    def _render(self, event: ServerEvent) -> StyleAndTextTuples:
        if isinstance(event, Deliver):
            return [*_room(event.room), ("", "<"), *_nick(event.sender), ("", "> " + event.text)]
        if isinstance(event, Whisper):
            said = ("", "> " + event.text)
            return [("class:direct", "[direct] "), ("", "<"), *_nick(event.sender), said]
        if isinstance(event, Joined):
            return [*_room(event.room), ("class:notice", "-- "), *_nick(event.nick), _JOINED]
        if isinstance(event, Left):
            me = self.chat is not None and fold(event.nick) == fold(self.chat.endpoint.nick)
            if me:
                return [*_room(event.room), ("class:notice", "-- you left")]
            how = ("class:notice", " " + words.left(event))
            return [*_room(event.room), ("class:notice", "-- "), *_nick(event.nick), how]
        if isinstance(event, Roster):
            joined = self.chat is not None and self.chat.is_join_answer(event)
            intro = "-- you joined; " if joined else "-- "
            return [*_room(event.room), ("class:notice", intro), *_members(event.members)]
        if isinstance(event, Rooms):
            if not event.rooms:
                return [("class:notice", "-- no rooms")]
            listed = ", ".join(f"#{r.name} ({r.members})" for r in event.rooms)
            return [("class:notice", f"-- rooms: {listed}")]
        if isinstance(event, Error):
            return [("class:error", "! " + words.request_error(event, self.max_text))]
        if isinstance(event, Disconnected):
            if event.cause is EndCause.BYE:
                return [("class:notice", "-- disconnected")]
            return [("class:error", "! " + event.describe())]
        assert isinstance(event, Ack)
        return []  # our own messages come back as DELIVER (ECHO)

    def own_direct(self, nick: str, me: str, text: str) -> None:
        line = [("class:direct", "[direct to "), *_nick(nick), ("class:direct", "] ")]
        with self._lock:
            self.print([*_stamp(), *line, ("", "<"), *_nick(me), ("", "> " + text)])

    # -- ending the prompt from the receive thread --------------------------------------------

    def over(self, ended: Disconnected) -> None:
        with self._print_lock:
            self._over = True
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self.exit_if_over)

    def exit_if_over(self) -> None:
        """Runs in the prompt's event loop."""
        app = self._session.app
        if self._over and app.future is not None and not app.future.done():
            app.exit(exception=_ChatOver())


def run(host: str, port: int, nick: str | None, reconnect: bool, timeout: float) -> int:
    session: PromptSession[str] = PromptSession(history=InMemoryHistory(), erase_when_done=True)
    view = TerminalView(session)
    endpoint = Endpoint(host, port, nick or "", int(Capability.ECHO), timeout)
    chat = Chat(endpoint, view, reconnect)
    view.chat = chat
    with patch_stdout(raw=True):
        try:
            client, status = _register(session, view, chat, nick)
            if client is None:
                return status
            chat.start(client)
            return _converse(session, view, chat)
        except KeyboardInterrupt:
            chat.quit("bye")
            return EXIT_OK
        finally:
            view.write_queued()  # no prompt runs any more: the last lines go out from here


def _ask_nick(session: PromptSession[str], view: TerminalView) -> str | None:
    try:
        return session.prompt("your nick: ", pre_run=view.prompt_started).strip()
    except (EOFError, KeyboardInterrupt):
        return None


def _register(
    session: PromptSession[str], view: TerminalView, chat: Chat, nick: str | None
) -> tuple[ChatClient | None, int]:
    """Ask for a nick until the server takes one; keep one connection while it is alive."""
    end = chat.endpoint
    client: ChatClient | None = None
    reused = False
    retry = 0.5
    while True:
        if nick is None:
            nick = _ask_nick(session, view)
            if nick is None:
                return None, EXIT_OK
        if not is_valid_nick(nick):
            view.error(f"{nick!r} cannot be a nick: use 1 to 32 of A-Z a-z 0-9 _ -")
            nick = None
            continue
        if client is None:
            try:
                client = ChatClient.open(end.host, end.port, timeout=end.timeout,
                                         on_event=chat.on_event)  # fmt: skip
                reused = False
            except ConnectFailed as exc:
                if not chat.reconnect:
                    _stderr(f"error: {exc}")
                    return None, EXIT_NO_CONNECTION
                view.notice(f"{exc}; retrying in {retry:g} s")
                view.write_queued()  # no prompt is running to show it
                time.sleep(retry)  # back-off while the user waits for the server to come up
                retry = min(retry * 2, 30.0)
                continue
        try:
            client.register(nick, end.caps)
        except NickRefused as exc:
            view.error(str(exc))
            nick, reused = None, True
            continue
        except ClientError as exc:
            client.close()
            client = None
            if reused:
                continue  # the server may have given up on us while we asked: try afresh
            _stderr(f"error: {exc}")
            return None, EXIT_SESSION_ENDED
        chat.endpoint = Endpoint(end.host, end.port, nick, end.caps, end.timeout)
        return client, EXIT_OK


def _converse(session: PromptSession[str], view: TerminalView, chat: Chat) -> int:
    def prompt_text() -> FormattedText:
        room = chat.current
        return FormattedText([("class:prompt", f"#{room}> " if room else "(no room)> ")])

    while not chat.over.is_set():
        try:
            line = session.prompt(prompt_text, style=STYLE, pre_run=view.prompt_started)
        except _ChatOver:
            break
        except (EOFError, KeyboardInterrupt):
            chat.quit("bye")
            return EXIT_OK
        try:
            command = parse(line)
        except CommandError as exc:
            view.error(str(exc))
            continue
        if command is None:
            continue
        if isinstance(command, Help):
            view.print([("", HELP)])
            continue
        if isinstance(command, Quit):
            chat.quit(command.reason)
            return EXIT_OK
        _carry_out(view, chat, command)
    ended = chat.ended
    return EXIT_OK if ended is None or ended.cause is EndCause.BYE else EXIT_SESSION_ENDED


def _carry_out(view: TerminalView, chat: Chat, command: Command) -> None:
    try:
        chat.execute(command)
        if isinstance(command, Message):  # a refusal follows as the server's ERROR
            view.own_direct(command.nick, chat.endpoint.nick, command.text)
    except CommandError as exc:
        view.error(str(exc))
    except InvalidRequest as exc:
        view.error(f"cannot send that: {exc}")
    except ConnectionClosed:
        view.error("not connected" + (" (reconnecting)" if chat.reconnect else ""))
    except ClientError:
        pass  # a refused request: the server's ERROR is shown as it arrives


def _stderr(text: str) -> None:
    """One line on the real stderr (patch_stdout redirects sys.stderr above the prompt)."""
    stream = sys.__stderr__ or sys.stderr
    stream.write(text + "\n")
    stream.flush()
