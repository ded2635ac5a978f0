"""What both front ends (interactive and scripted) share: the live session, the rooms we are in,
the current room, carrying out commands, and ``--reconnect``.

Threads: the front end's input thread calls :meth:`Chat.execute`; the client's receive thread
calls :meth:`Chat.on_event`, which shows events through the front end and, when the session
ends, either finishes the chat or (``--reconnect``) reconnects with exponential back-off and
re-joins the rooms, still in that thread (the session it served is over).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol, assert_never

from spec.constants import ErrorCode
from spec.events import Ack, Roster
from spec.names import fold

from .commands import (
    Command,
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
)
from .errors import (
    ClientError,
    ClientTimeout,
    ConnectionClosed,
    Disconnected,
    EndCause,
    InvalidRequest,
    RequestFailed,
)
from .library import ChatClient, Request, ServerEvent

#: How long a command waits for the server to answer a /join or /leave.
ANSWER_WAIT = 10.0
#: Reconnect back-off: the first wait, doubled after each failure up to the longest.
FIRST_RETRY = 0.5
LONGEST_RETRY = 30.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    nick: str
    caps: int = 0
    timeout: float = 10.0


class Frontend(Protocol):
    def show(self, event: ServerEvent) -> None:
        """An event from the server (receive thread), ending with Disconnected."""

    def notice(self, text: str) -> None:
        """Something the client itself has to say (any thread)."""

    def connected(self, client: ChatClient, again: bool) -> None:
        """A session was registered (again=True after a reconnect)."""

    def over(self, ended: Disconnected) -> None:
        """The chat is over for good; the input side should stop."""


class Chat:
    def __init__(self, endpoint: Endpoint, frontend: Frontend, reconnect: bool = False) -> None:
        self.endpoint = endpoint
        self.frontend = frontend
        self.reconnect = reconnect
        self._lock = threading.Lock()
        self._live = threading.Condition(self._lock)
        self._client: ChatClient | None = None
        self.rooms: list[str] = []
        self.current: str | None = None
        self._joining: set[str] = set()
        #: Lines typed while reconnecting, sent in order once back in the rooms.
        self._held: list[Say | Message] = []
        self._reconnecting = False
        self._quitting = threading.Event()
        self.over = threading.Event()
        self.ended: Disconnected | None = None

    # -- the session ----------------------------------------------------------------------

    def start(self, client: ChatClient) -> None:
        """Adopt a registered client (made with ``on_event=chat.on_event``)."""
        self._adopt(client)
        self.frontend.connected(client, again=False)

    def _adopt(self, client: ChatClient) -> None:
        assert client.welcome is not None
        with self._live:
            self._client = client
            self.rooms = [client.welcome.room]
            self.current = client.welcome.room
            self._live.notify_all()

    @property
    def client(self) -> ChatClient:
        client = self._client
        if client is None or client.ended is not None:
            raise ConnectionClosed("not connected")
        return client

    def wait_live(self) -> bool:
        """Wait for a live session (after a reconnect); False once the chat is over."""
        with self._live:
            while not self.over.is_set():
                if self._client is not None and self._client.ended is None:
                    return True
                self._live.wait()
        return False

    def on_event(self, event: ServerEvent) -> None:
        """The client's ``on_event`` (receive thread)."""
        self.frontend.show(event)
        if isinstance(event, Disconnected):
            if event.cause is EndCause.BYE or self._quitting.is_set() or not self.reconnect:
                self._finish(event)
            else:
                self._reconnect()

    def is_join_answer(self, roster: Roster) -> bool:
        """Whether this ROSTER answers a /join of ours (else it answers /who)."""
        with self._lock:
            if fold(roster.room) in self._joining:
                self._joining.discard(fold(roster.room))
                return True
        return False

    def quit(self, reason: str) -> None:
        """Say BYE and end the chat (any thread but the receive thread)."""
        self._quitting.set()
        client = self._client
        if client is not None:
            client.close(reason)
        self._finish(Disconnected(EndCause.BYE, "quit"))

    def _finish(self, ended: Disconnected) -> None:
        with self._live:
            if self.over.is_set():
                return
            self.ended = ended
            self.over.set()
            self._live.notify_all()
            lost, self._held = len(self._held), []
        if lost:
            self.frontend.notice(f"{_lines(lost)} typed while reconnecting {_were(lost)} not sent")
        self.frontend.over(ended)

    # -- lines typed while reconnecting -----------------------------------------------------

    def hold_if_reconnecting(self, command: Say | Message) -> int:
        """While reconnecting (or while earlier lines still wait), keep ``command`` to send
        once back in the rooms; how many now wait, or 0 if it is to be carried out now."""
        with self._lock:
            if not self._reconnecting and not self._held:
                return 0
            self._held.append(command)
            return len(self._held)

    def hold(self, command: Say | Message) -> int:
        """Keep ``command`` for after the reconnect (the session has just been found lost)."""
        with self._lock:
            self._held.append(command)
            return len(self._held)

    def _send_held(self) -> None:
        """Send what was typed while reconnecting, oldest first; a line stays held until it
        is on the wire, so nothing typed meanwhile overtakes it."""
        sent = 0
        while True:
            with self._lock:
                if not self._held:
                    self._reconnecting = False
                    break
                command = self._held[0]
            try:
                self.execute(command)
            except ConnectionClosed:
                return  # lost again: the next reconnect sends the rest
            except (CommandError, InvalidRequest) as exc:
                self.frontend.notice(f"a line typed while reconnecting was not sent: {exc}")
            else:
                sent += 1
            with self._lock:
                self._held.pop(0)
        if sent:
            self.frontend.notice(f"sent the {_lines(sent)} typed while reconnecting")

    # -- commands (input thread) ------------------------------------------------------------

    def execute(self, command: Command) -> list[Request[Ack]]:
        """Carry out a command; raises CommandError, ConnectionClosed, InvalidRequest.

        A message longer than the server's ``max_text`` goes as several, split at character
        boundaries (at a space when one is near the limit); their requests are returned.
        """
        client = self.client
        limit = client.welcome.max_text if client.welcome is not None else 0
        match command:
            case Say(text):
                room = self._current_or_fail()
                return [client.send(room, part) for part in split_text(text, limit)]
            case Message(nick, text):
                return [client.direct(nick, part) for part in split_text(text, limit)]
            case JoinRoom(room):
                self._join(client, room)
            case LeaveRoom(room):
                self._leave(client, room or self._current_or_fail())
            case SwitchRoom(room):
                room = fold(room)
                with self._lock:
                    if room not in self.rooms:
                        raise CommandError(f"you are not in #{room}: /join {room} first")
                    self.current = room
            case WhoIs(room):
                client.who(room or self._current_or_fail())
            case ListRooms():
                client.rooms()
            case Help() | Quit():
                raise CommandError(f"{type(command).__name__} is the front end's to handle")
            case _:
                assert_never(command)
        return []

    def _current_or_fail(self) -> str:
        current = self.current
        if current is None:
            raise CommandError("you are in no room: /join ROOM first")
        return current

    def _join(self, client: ChatClient, room: str) -> None:
        with self._lock:
            self._joining.add(fold(room))
        try:
            roster = client.join(room).wait(ANSWER_WAIT)
        except (RequestFailed, ClientTimeout) as exc:
            with self._lock:
                self._joining.discard(fold(room))
            if isinstance(exc, ClientTimeout):
                self.frontend.notice(f"no answer from the server to joining #{room}")
            return  # a refusal is shown as the server's ERROR event
        with self._lock:
            if roster.room not in self.rooms:
                self.rooms.append(roster.room)
            self.current = roster.room

    def _leave(self, client: ChatClient, room: str) -> None:
        try:
            client.leave(room).wait(ANSWER_WAIT)
        except RequestFailed as exc:
            if exc.code != ErrorCode.NOT_IN_ROOM:
                return
        except ClientTimeout:
            self.frontend.notice(f"no answer from the server to leaving #{room}")
            return
        with self._lock:
            if fold(room) in self.rooms:
                self.rooms.remove(fold(room))
            if self.current == fold(room):
                self.current = self.rooms[-1] if self.rooms else None

    # -- reconnecting (receive thread of the session that ended) ----------------------------

    def _reconnect(self) -> None:
        with self._live:
            self._reconnecting = True
            old, self._client = self._client, None
            rooms, current = list(self.rooms), self.current
        if old is not None:
            old.close()
        delay = FIRST_RETRY
        end = self.endpoint
        while True:
            self.frontend.notice(f"reconnecting in {delay:g} s")
            if self._quitting.wait(delay):
                self._finish(Disconnected(EndCause.BYE, "quit while reconnecting"))
                return
            try:
                client = ChatClient.connect(
                    end.host, end.port, end.nick, end.caps, timeout=end.timeout,
                    on_event=self.on_event,
                )  # fmt: skip
                break
            except ClientError as exc:
                self.frontend.notice(f"reconnect failed: {exc}")
                delay = min(delay * 2, LONGEST_RETRY)
        if self._quitting.is_set():  # /quit came while we were connecting
            client.close("bye")
            return
        self._adopt(client)
        self.frontend.connected(client, again=True)
        if self._restore(client, rooms, current):
            self._send_held()

    def _restore(self, client: ChatClient, rooms: list[str], current: str | None) -> bool:
        """Be in the rooms we were in before, and no other; False if lost again meanwhile."""
        assert client.welcome is not None
        try:
            for room in rooms:
                if room != client.welcome.room:
                    self._join(client, room)
            if client.welcome.room not in rooms:
                self._leave(client, client.welcome.room)
        except ClientError:
            return False  # lost again: the next Disconnected starts over
        with self._lock:
            if current in self.rooms:
                self.current = current
        self.frontend.notice("back in " + (", ".join(f"#{r}" for r in self.rooms) or "no room"))
        return True


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes, cut between characters (after the
    last space when it lies in the piece's second half); joined, they are ``text`` again.
    A limit too small for any character leaves the text whole (the server will refuse it)."""
    if len(text.encode()) <= limit or limit < 4:
        return [text]
    pieces: list[str] = []
    while text:
        end = len(text.encode()[:limit].decode(errors="ignore"))  # whole characters only
        if end < len(text):
            space = text.rfind(" ", 0, end)
            if space >= end // 2:
                end = space + 1
        pieces.append(text[:end])
        text = text[end:]
    return pieces


def _lines(count: int) -> str:
    return "line" if count == 1 else f"{count} lines"


def _were(count: int) -> str:
    return "was" if count == 1 else "were"
