"""Exit statuses of ``python -m reference.client`` and the one-line reports that go with them."""

from __future__ import annotations

from collections.abc import Callable

from .chat import Endpoint
from .errors import ClientError, ConnectFailed, NickRefused
from .formats import escape
from .library import ChatClient, EventCallback

EXIT_OK = 0
#: Scripted mode: some input lines were rejected (each was reported on stderr).
EXIT_BAD_INPUT = 1
#: Bad command-line arguments.
EXIT_USAGE = 2
#: No connection could be made, or the peer does not speak chatwire/1.
EXIT_NO_CONNECTION = 3
#: The server refused the nick.
EXIT_NICK_REFUSED = 4
#: The server ended the session (error, shutdown) or the connection broke.
EXIT_SESSION_ENDED = 5


def connect_or_exit_status(
    endpoint: Endpoint, on_event: EventCallback, report: Callable[[str], None]
) -> tuple[ChatClient | None, int]:
    """Connect and register; on failure report one line and return the exit status."""
    try:
        client = ChatClient.connect(
            endpoint.host,
            endpoint.port,
            endpoint.nick,
            endpoint.caps,
            timeout=endpoint.timeout,
            on_event=on_event,
        )
    except ConnectFailed as exc:
        report(f"error: {escape(str(exc))}")
        return None, EXIT_NO_CONNECTION
    except NickRefused as exc:
        report(f"error: {escape(str(exc))}")
        return None, EXIT_NICK_REFUSED
    except ClientError as exc:
        report(f"error: {escape(str(exc))}")
        return None, EXIT_SESSION_ENDED
    return client, EXIT_OK
