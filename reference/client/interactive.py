"""Interactive mode (stdin is a terminal), built on prompt_toolkit.

Two threads: the main thread runs the prompt (line editing, history with the arrow keys) and
sends what is typed; the client's receive thread shows what arrives. Lines from the receive
thread go through ``print_formatted_text``, which prints them above the prompt and redraws the
prompt with whatever the user had typed, untouched; ``patch_stdout`` does the same for any other
output. The client asks for ECHO, so our own room messages come back in the room's order.

This module connects, asks for the nick and runs the prompt (Ctrl-C clears the line, Tab
completes: :mod:`.completion`); :mod:`.terminal` prints above the prompt from any thread, and
:mod:`.render` decides what each event looks like (and that no text from others can move the
cursor or pass for a line of its own).
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import Future

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.patch_stdout import patch_stdout

from spec.constants import Capability
from spec.events import Ack
from spec.names import fold, is_valid_nick

from .chat import Chat, Endpoint
from .commands import (
    HELP,
    Command,
    CommandError,
    Help,
    JoinRoom,
    Message,
    Quit,
    Say,
    SwitchRoom,
    parse,
)
from .completion import ChatCompleter
from .errors import (
    ClientError,
    ConnectFailed,
    ConnectionClosed,
    EndCause,
    InvalidRequest,
    NickRefused,
)
from .library import ChatClient, Request
from .render import STYLE, clean
from .status import EXIT_NO_CONNECTION, EXIT_OK, EXIT_SESSION_ENDED
from .terminal import ChatOver, TerminalView


def _keys(view: TerminalView) -> KeyBindings:
    keys = KeyBindings()

    @keys.add("c-c")
    def _clear_or_leave(event: KeyPressEvent) -> None:
        """Ctrl-C clears a half-typed line, as in irssi and weechat; a second Ctrl-C in a row,
        on the empty line, leaves (a first one there only says so)."""
        buffer = event.app.current_buffer
        if buffer.text:
            buffer.reset()
        elif event.is_repeat:
            event.app.exit(exception=KeyboardInterrupt())
        else:
            view.notice("press Ctrl-C again to leave (or Ctrl-D, or /quit)")

    return keys


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
    """Connect first, so a server that is not there is said before any question; then ask
    for a nick until the server takes one, on one connection while it is alive."""
    end = chat.endpoint
    client: ChatClient | None = None
    asked = False  # we waited for the user on this connection: the server may have given up
    retry = 0.5
    while True:
        if client is None:
            try:
                client = ChatClient.open(end.host, end.port, timeout=end.timeout,
                                         on_event=chat.on_event)  # fmt: skip
                asked = False
            except ConnectFailed as exc:
                if not chat.reconnect:
                    _stderr(f"error: {exc}")
                    return None, EXIT_NO_CONNECTION
                view.notice(f"{exc}; retrying in {retry:g} s")
                view.write_queued()  # no prompt is running to show it
                time.sleep(retry)  # back-off while the user waits for the server to come up
                retry = min(retry * 2, 30.0)
                continue
        if nick is None:
            nick, asked = _ask_nick(session, view), True
            if nick is None:
                client.close()
                return None, EXIT_OK
        if not is_valid_nick(nick):
            view.error(f"{nick!r} cannot be a nick: use 1 to 32 of A-Z a-z 0-9 _ -")
            nick = None
            continue
        try:
            client.register(nick, end.caps)
        except NickRefused as exc:
            view.error(str(exc))
            nick = None
            continue
        except ConnectFailed as exc:  # it answered, but not in chatwire/1
            client.close()
            _stderr(f"error: {exc}")
            return None, EXIT_NO_CONNECTION
        except ClientError as exc:
            client.close()
            client = None
            if asked:
                continue  # the server may have given up on us while we asked: try afresh
            _stderr(f"error: {exc}")
            return None, EXIT_SESSION_ENDED
        chat.endpoint = Endpoint(end.host, end.port, nick, end.caps, end.timeout)
        return client, EXIT_OK


def _converse(session: PromptSession[str], view: TerminalView, chat: Chat) -> int:
    def prompt_text() -> FormattedText:
        room = chat.current
        return FormattedText([("class:prompt", f"#{room}> " if room else "(no room)> ")])

    completer = ChatCompleter(view.directory, lambda: chat.current)
    keys = _keys(view)
    while not chat.over.is_set():
        try:
            line = session.prompt(
                prompt_text,
                style=STYLE,
                pre_run=view.prompt_started,
                key_bindings=keys,
                completer=completer,
                complete_while_typing=False,
            )
        except ChatOver:
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
    if isinstance(command, Say | Message) and (waiting := chat.hold_if_reconnecting(command)):
        _say_held(view, waiting)
        return
    try:
        if isinstance(command, JoinRoom) and fold(command.room) in chat.rooms:
            chat.execute(SwitchRoom(command.room))
            view.notice(f"you are in #{chat.current} already; plain lines go there now")
            return
        requests = chat.execute(command)
        if isinstance(command, SwitchRoom):
            view.notice(f"plain lines now go to #{chat.current}")
        if isinstance(command, Message):
            _show_when_accepted(view, requests, command, chat.endpoint.nick)
    except CommandError as exc:
        view.error(str(exc))
    except InvalidRequest as exc:
        view.error(f"cannot send that: {exc}")
    except ConnectionClosed:
        if chat.reconnect and isinstance(command, Say | Message):
            _say_held(view, chat.hold(command))
        else:
            view.error(
                "not connected" + ("; reconnecting" if chat.reconnect else "") + ": not done"
            )
    except ClientError:
        pass  # a refused request: the server's ERROR is shown as it arrives


def _say_held(view: TerminalView, waiting: int) -> None:
    view.notice(f"not connected: sent once reconnected ({waiting} waiting)")


def _show_when_accepted(
    view: TerminalView, requests: list[Request[Ack]], sent: Message, me: str
) -> None:
    """Show a direct message as sent once the server has accepted it (every piece ACKed); a
    refusal shows as the server's ERROR instead, so a message nobody got never looks sent."""
    left = [len(requests)]
    lock = threading.Lock()

    def done(answered: Future[Ack]) -> None:
        if answered.exception() is not None:
            return
        with lock:
            left[0] -= 1
            if left[0]:
                return
        view.own_direct(sent.nick, me, sent.text)

    for request in requests:
        request.add_done_callback(done)


def _stderr(text: str) -> None:
    """One line on the real stderr (patch_stdout redirects sys.stderr above the prompt)."""
    stream = sys.__stderr__ or sys.stderr
    stream.write(clean(text) + "\n")
    stream.flush()
