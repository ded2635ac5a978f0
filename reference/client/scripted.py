"""Scripted mode (stdin is not a terminal): every input line is sent (slash commands work too),
every event received is printed as one line (see :mod:`.formats`), and when input ends the
client waits for the server to have processed everything (PING barrier), says BYE and exits.

Exit statuses: see :mod:`.status`.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from typing import TextIO

from .chat import Chat, Endpoint
from .commands import HELP, CommandError, Help, Quit, parse
from .errors import ClientError, ConnectionClosed, Disconnected, EndCause, InvalidRequest
from .formats import event_fields, render, welcome_fields
from .library import ChatClient, ServerEvent
from .status import EXIT_BAD_INPUT, EXIT_OK, EXIT_SESSION_ENDED, connect_or_exit_status

#: How long the final barrier may wait for the server to catch up with our input.
BARRIER_WAIT = 60.0


class ScriptedOutput:
    """Prints events one line each, the welcome always first: events that arrive before the
    front end has printed the welcome are held back until it has."""

    def __init__(self, out: TextIO, err: TextIO, json_lines: bool) -> None:
        self._out = out
        self._err = err
        self._json = json_lines
        self._lock = threading.Lock()
        self._ready = False
        self._held: list[ServerEvent] = []
        self.broken = False
        self.wake_read, self._wake_write = os.pipe()

    def show(self, event: ServerEvent) -> None:
        with self._lock:
            if not self._ready:
                self._held.append(event)
                return
            self._print(event)

    def _print(self, event: ServerEvent) -> None:
        self._line(render(event_fields(event), self._json))
        if isinstance(event, Disconnected):
            self._ready = False  # a reconnect's welcome comes before its events

    def _line(self, line: str) -> None:
        if self.broken:
            return
        try:
            self._out.write(line + "\n")
            self._out.flush()
        except OSError:  # whoever read our output has gone (e.g. `| head`): stop
            self.broken = True
            os.write(self._wake_write, b"!")

    def connected(self, client: ChatClient, again: bool) -> None:
        assert client.welcome is not None
        with self._lock:
            self._line(render(welcome_fields(client.welcome, client.welcome_roster), self._json))
            self._ready = True
            held, self._held = self._held, []
            for event in held:
                self._print(event)

    def notice(self, text: str) -> None:
        self._err.write(text + "\n")
        self._err.flush()

    def over(self, ended: Disconnected) -> None:
        os.write(self._wake_write, b"!")


class LineReader:
    """Lines from a file descriptor, without blocking past a wake-up on ``wake_fd``."""

    def __init__(self, fd: int, wake_fd: int) -> None:
        self._fd = fd
        self._wake_fd = wake_fd
        self._buffer = b""
        self._eof = False

    def readline(self) -> bytes | None:
        """The next line (without its line end); None at the end of input or on a wake-up."""
        while True:
            line, newline, rest = self._buffer.partition(b"\n")
            if newline:
                self._buffer = rest
                return line.removesuffix(b"\r")
            if self._eof:
                self._buffer = b""
                return line or None
            readable, _, _ = select.select([self._fd, self._wake_fd], [], [])
            if self._wake_fd in readable:
                return None
            data = os.read(self._fd, 65536)
            self._eof = not data
            self._buffer += data


def run(endpoint: Endpoint, json_lines: bool, reconnect: bool) -> int:
    out = ScriptedOutput(sys.stdout, sys.stderr, json_lines)
    chat = Chat(endpoint, out, reconnect)
    client, status = connect_or_exit_status(endpoint, chat.on_event, out.notice)
    if client is None:
        return status
    chat.start(client)
    reader = LineReader(sys.stdin.fileno(), out.wake_read)
    rejected = 0
    quit_reason = "bye"
    number = 0
    while (raw := reader.readline()) is not None:
        number += 1
        try:
            command = parse(raw.decode("utf-8"))
        except UnicodeDecodeError:
            out.notice(f"input line {number}: not valid UTF-8; skipped")
            rejected += 1
            continue
        except CommandError as exc:
            out.notice(f"input line {number}: {exc}; skipped")
            rejected += 1
            continue
        if command is None:
            continue
        if isinstance(command, Help):
            out.notice(HELP)
            continue
        if isinstance(command, Quit):
            quit_reason = command.reason
            break
        while True:
            try:
                chat.execute(command)
            except (CommandError, InvalidRequest) as exc:
                out.notice(f"input line {number}: {exc}; skipped")
                rejected += 1
            except ConnectionClosed:
                if chat.wait_live():
                    continue
            break
        if chat.over.is_set():
            break
    if out.broken:
        chat.quit("bye")
        sys.stdout = None  # nothing left to flush at exit
        return EXIT_OK
    if not chat.over.is_set():
        try:
            chat.client.barrier(BARRIER_WAIT)
        except ClientError as exc:
            out.notice(f"waiting for the server to catch up: {exc}")
        chat.quit(quit_reason)
    ended = chat.ended
    if ended is not None and ended.cause is not EndCause.BYE:
        out.notice(ended.describe())
        return EXIT_SESSION_ENDED
    return EXIT_BAD_INPUT if rejected else EXIT_OK
