"""The naive classic chat server: the baseline every tutorial starts from.

One thread per client, one global list of clients, and every line a client sends is written
with ``sendall`` to every other client while holding one lock. Newline framing: the first
line is the nick, every later line a message, delivered as ``nick: text``.

It is deliberately not improved: one client that stops reading blocks ``sendall`` under the
lock, and the whole server with it. That is the failure chatwire/1's slow-consumer rules
exist to prevent, and the bench shows it.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from .common import exit_on_sigterm, listen

clients: list[socket.socket] = []
lock = threading.Lock()


def serve_client(conn: socket.socket) -> None:
    reader = conn.makefile("rb")
    try:
        nick = reader.readline().strip()
        if not nick:
            return
        with lock:
            clients.append(conn)
            conn.sendall(b"welcome " + nick + b"\n")
        for line in reader:
            message = nick + b": " + line
            with lock:
                for other in clients:
                    if other is not conn:
                        with contextlib.suppress(OSError):
                            other.sendall(message)
    except OSError:
        pass
    finally:
        with lock:
            if conn in clients:
                clients.remove(conn)
        reader.close()
        conn.close()


def main(argv: list[str] | None = None) -> None:
    server = listen("naive thread-per-client chat server (bench baseline)", argv)
    exit_on_sigterm()
    while True:
        conn, _ = server.accept()
        # Without this, Nagle's algorithm against delayed ACKs costs tens of milliseconds per
        # line when clients both send and receive; the baseline is naive, not misconfigured.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_client, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
