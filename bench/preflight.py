"""Before a bench run: is there a server to measure at all?

Against ``--server``, one HELLO (with QUIET, a nick of its own) settles it within a few
seconds; a reference started with extra ``--server-arg`` flags is started once and stopped.
Either way a wrong address or a bad flag is one line and exit status 2, not minutes of
failed points.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time

from spec.connection import Connection, Role
from spec.constants import Capability
from spec.errors import ProtocolError
from spec.events import Bye, Error, Hello, Welcome

from .servers import ServerError, start

#: Longest the probe waits to connect, and then for the answer to HELLO.
CONNECT_S = 3.0
ANSWER_S = 5.0


def probe(host: str, port: int) -> Welcome:
    """The server's WELCOME to one HELLO; else ServerError saying what is there instead."""
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_S)
    except TimeoutError:
        raise ServerError(f"{where} did not accept a connection within {CONNECT_S:g} s") from None
    except OSError as exc:
        raise ServerError(f"nothing answers on {where}: {exc.strerror or exc}") from None
    conn = Connection(Role.CLIENT)
    received = 0
    with sock:
        try:
            sock.sendall(
                conn.send(Hello(nick=f"preflight{os.getpid() % 100000}", caps=Capability.QUIET))
            )
            deadline = time.monotonic() + ANSWER_S
            while (answer := conn.next_event()) is None:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    raise ServerError(f"{where} closed the connection without answering HELLO")
                received += len(data)
                conn.receive_data(data)
            if isinstance(answer, Welcome):
                with contextlib.suppress(OSError):
                    sock.sendall(conn.send(Bye(text="bench preflight")))
                return answer
            if isinstance(answer, Error):
                raise ServerError(f"{where} refused HELLO: {answer.code_name} {answer.text!r}")
            raise ServerError(f"{where} answered HELLO with {type(answer).__name__}")
        except TimeoutError:
            if received:
                raise ServerError(f"{where} is not a chatwire/1 server (no whole frame)") from None
            raise ServerError(
                f"{where} accepted the connection but did not answer HELLO within {ANSWER_S:g} s"
            ) from None
        except ProtocolError as exc:
            raise ServerError(f"{where} is not a chatwire/1 server ({exc})") from None
        except OSError as exc:
            raise ServerError(f"{where} broke the connection: {exc.strerror or exc}") from None


def starts(kind: str, args: list[str]) -> None:
    """Start the ``kind`` server with ``args`` once and stop it; ServerError if it will not."""
    try:
        server = start(kind, args, timeout=30.0)
    except ServerError as exc:
        flags = " ".join(args)
        raise ServerError(f"the {kind} server does not start with {flags}: {exc}") from None
    server.stop()
