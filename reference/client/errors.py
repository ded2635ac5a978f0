"""What can go wrong for a client, as exceptions, and the event that ends every session."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from spec.constants import ErrorCode
from spec.events import Error


class EndCause(enum.Enum):
    """Why a session ended: the first word of the scripted ``closed`` line."""

    #: We said BYE (``close()``) and the server closed the connection.
    BYE = "bye"
    #: The server sent a fatal ERROR (shutdown, idle timeout, slow consumer, ...).
    SERVER_ERROR = "error"
    #: The connection closed or broke without an ERROR, or the server fell silent.
    LOST = "lost"
    #: The server sent bytes that break chatwire/1; we closed the connection.
    PROTOCOL = "protocol"


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The last event of every session; nothing follows it."""

    cause: EndCause
    detail: str
    #: The fatal ERROR the server sent, when ``cause`` is SERVER_ERROR.
    error: Error | None = None

    def describe(self) -> str:
        """One line for people."""
        if self.cause is EndCause.BYE:
            return "disconnected"
        if self.cause is EndCause.SERVER_ERROR and self.error is not None:
            return describe_fatal(self.error)
        if self.cause is EndCause.PROTOCOL:
            return f"the server broke the protocol ({self.detail}); disconnected"
        return f"connection lost: {self.detail}"


def describe_fatal(error: Error) -> str:
    """A fatal server ERROR in plain words."""
    known: dict[int, str] = {
        ErrorCode.SERVER_SHUTDOWN: "the server is shutting down",
        ErrorCode.SERVER_FULL: "the server is full",
        ErrorCode.IDLE_TIMEOUT: "the server closed the connection: we were idle too long",
        ErrorCode.SLOW_CONSUMER: "the server cut us off: we did not read fast enough",
        ErrorCode.HANDSHAKE_TIMEOUT: "the server closed the connection: no nick in time",
    }
    words = known.get(error.code, f"the server closed the connection with error {error.code_name}")
    return f"{words} ({error.text})" if error.text else words


class ClientError(Exception):
    """Base of every error this client library raises."""


class ConnectFailed(ClientError):
    """No TCP connection could be made (refused, unreachable, timed out)."""


class NickRefused(ClientError):
    """The server refused the nick (NICK_IN_USE or NICK_INVALID); the session may try again."""

    def __init__(self, nick: str, error: Error) -> None:
        self.nick = nick
        self.error = error
        self.code = error.code
        super().__init__(describe_nick_refusal(nick, error))


def describe_nick_refusal(nick: str, error: Error) -> str:
    if error.code == ErrorCode.NICK_IN_USE:
        return f"the nick {nick!r} is taken; choose another"
    if error.code == ErrorCode.NICK_INVALID:
        return f"the nick {nick!r} is not allowed: use 1 to 32 of A-Z a-z 0-9 _ -"
    return f"the nick {nick!r} was refused ({error.code_name}: {error.text})"


class ServerError(ClientError):
    """The server ended the session with a fatal ERROR."""

    def __init__(self, error: Error) -> None:
        self.error = error
        self.code = error.code
        super().__init__(describe_fatal(error))


class ConnectionClosed(ClientError):
    """The session has ended; ``disconnected`` says why (None if it never started)."""

    def __init__(self, message: str, disconnected: Disconnected | None = None) -> None:
        self.disconnected = disconnected
        super().__init__(message)


class ServerProtocolError(ClientError):
    """The server sent something chatwire/1 forbids."""


class NotChatwireServer(ConnectFailed, ServerProtocolError):
    """The peer answered HELLO with bytes that are not chatwire/1 (an HTTP server, ...)."""


class RequestFailed(ClientError):
    """The server answered a request with a non-fatal ERROR; the session goes on."""

    def __init__(self, error: Error) -> None:
        self.error = error
        self.code = error.code
        super().__init__(f"{error.code_name}: {error.text}" if error.text else error.code_name)


class InvalidRequest(ClientError, ValueError):
    """The request cannot be put on the wire (too long for a frame, text with U+0000, ...)."""


class ClientTimeout(ClientError, TimeoutError):
    """Nothing arrived within the time asked for."""


def describe_os_error(exc: OSError) -> str:
    """The reason a socket call failed, in the system's words."""
    return exc.strerror or str(exc) or type(exc).__name__
