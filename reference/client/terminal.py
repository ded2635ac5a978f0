"""The interactive client's output side: lines printed above the prompt, from any thread."""

from __future__ import annotations

import asyncio
import threading

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.formatted_text import FormattedText, StyleAndTextTuples
from prompt_toolkit.renderer import print_formatted_text as write_fragments

from spec.events import Roster

from . import render
from .chat import Chat
from .completion import Directory
from .errors import Disconnected
from .library import ChatClient, ServerEvent
from .render import STYLE


class ChatOver(Exception):
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
        self.directory = Directory()

    def print(self, *lines: StyleAndTextTuples) -> None:
        with self._print_lock:
            self._queued.extend(lines)
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
        """A line of the client's own (it may quote the server: cleaned like any text)."""
        with self._lock:
            self.print([*render.stamp(), ("class:notice", f"-- {render.clean(text)}")])

    def error(self, text: str) -> None:
        with self._lock:
            self.print([*render.stamp(), ("class:error", f"! {render.clean(text)}")])

    def connected(self, client: ChatClient, again: bool) -> None:
        assert client.welcome is not None
        self.max_text = client.welcome.max_text
        roster = client.welcome_roster
        if roster is not None:
            self.directory.learn(roster)
        members = render.members(roster.members) if roster is not None else []
        line = [
            *render.stamp(),
            ("class:notice", "-- reconnected as " if again else "-- you are "),
            *render.nick(client.welcome.nick),
            ("class:notice", " in "),
            *render.room(client.welcome.room),
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
        self.directory.learn(event)
        with self._lock:
            if not self._ready:
                self._held.append(event)
            else:
                self._show(event)

    def _show(self, event: ServerEvent) -> None:
        chat = self.chat
        me = chat.endpoint.nick if chat is not None else ""
        joined = isinstance(event, Roster) and chat is not None and chat.is_join_answer(event)
        self.print(*render.event_lines(event, me, joined, self.max_text))
        if isinstance(event, Disconnected):
            self._ready = False

    def own_direct(self, nick: str, me: str, text: str) -> None:
        with self._lock:
            self.print(*render.own_direct(nick, me, text))

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
            app.exit(exception=ChatOver())
