"""Blocking Redis connections for the cluster hub: a small pool for commands, and one
subscriber connection read by its own thread (RESP parsing is in ``resp.py``).

Every I/O failure, time-out or unparseable reply becomes :class:`RedisUnavailable`: the hub
treats them all alike, as losing Redis.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from .resp import INCOMPLETE, Parser, ProtocolError, Reply, ReplyError, encode_command

log = logging.getLogger("reference.cluster")

RECV_SIZE = 262144


class RedisUnavailable(Exception):
    """Redis could not be reached, stopped answering, or broke the protocol."""


@dataclass(frozen=True)
class RedisAddress:
    host: str
    port: int
    db: int = 0

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """``redis://HOST:PORT[/DB]``; ValueError with a readable message otherwise."""
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        path = parts.path.strip("/")
        if parts.scheme != "redis" or not parts.hostname or port is None:
            raise ValueError(f"not a redis://HOST:PORT[/DB] URL: {url!r}")
        if path and not path.isdigit():
            raise ValueError(f"the database in {url!r} must be a number")
        return cls(parts.hostname, port, int(path or 0))

    def __str__(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"


class Connection:
    """One command connection: send, then read the reply, on the calling thread."""

    def __init__(self, address: RedisAddress, timeout: float) -> None:
        try:
            self.sock = socket.create_connection((address.host, address.port), timeout=timeout)
        except OSError as exc:
            raise RedisUnavailable(f"cannot connect to {address}: {exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = Parser()
        if address.db:
            self.call("SELECT", address.db)

    def call(self, *args: bytes | str | int) -> Reply:
        """One command's reply; an error reply is raised as :class:`ReplyError`."""
        (reply,) = self.pipeline([args])
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def pipeline(self, commands: Sequence[Sequence[bytes | str | int]]) -> list[Reply]:
        """Send every command at once, then read one reply each (errors as values)."""
        try:
            self.sock.sendall(b"".join(encode_command(*c) for c in commands))
            replies: list[Reply] = []
            while len(replies) < len(commands):
                reply = self.parser.next_reply()
                if reply is INCOMPLETE:
                    data = self.sock.recv(RECV_SIZE)
                    if not data:
                        raise RedisUnavailable("Redis closed the connection")
                    self.parser.feed(data)
                    continue
                replies.append(reply)  # type: ignore[arg-type]
            return replies
        except (OSError, ProtocolError) as exc:
            self.close()
            raise RedisUnavailable(f"Redis connection failed: {exc}") from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Pool:
    """Connections for commands, made on demand, kept for reuse; a broken one is dropped."""

    def __init__(self, address: RedisAddress, timeout: float = 2.0) -> None:
        self.address = address
        self.timeout = timeout
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def call(self, *args: bytes | str | int) -> Reply:
        conn = self._take()
        try:
            reply = conn.call(*args)
        except ReplyError:
            self._give(conn)
            raise
        self._give(conn)
        return reply

    def pipeline(self, commands: Sequence[Sequence[bytes | str | int]]) -> list[Reply]:
        conn = self._take()
        replies = conn.pipeline(commands)
        self._give(conn)
        return replies

    def _take(self) -> Connection:
        with self._lock:
            if self._closed:
                raise RedisUnavailable("connection pool closed")
            if self._idle:
                return self._idle.pop()
        return Connection(self.address, self.timeout)

    def _give(self, conn: Connection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class Subscriber:
    """One connection in subscribed mode and the thread that reads it.

    ``on_message(channel, data)`` runs on that thread, for every message in the order Redis
    published them. ``subscribe`` returns once Redis has confirmed the subscription, so
    anything published after it returns reaches ``on_message``. ``on_lost(reason)`` is called
    once if the connection fails (not after ``close``).
    """

    def __init__(
        self,
        address: RedisAddress,
        on_message: Callable[[bytes, bytes], None],
        on_lost: Callable[[str], None],
        timeout: float = 2.0,
        name: str = "chatwire-cluster-subscriber",
    ) -> None:
        self.timeout = timeout
        self._on_message = on_message
        self._on_lost = on_lost
        self._conn = Connection(address, timeout)
        self._conn.sock.settimeout(None)  # idle rooms are silent; the heartbeat watches Redis
        self._write_lock = threading.Lock()
        self._waiters: dict[bytes, deque[threading.Event]] = {}
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def subscribe(self, channel: bytes) -> None:
        confirmed = threading.Event()
        with self._write_lock:
            self._waiters.setdefault(channel, deque()).append(confirmed)
            self._send(encode_command(b"SUBSCRIBE", channel))
        if not confirmed.wait(self.timeout) or self._closing:
            raise RedisUnavailable(f"no confirmation of SUBSCRIBE {channel!r}")

    def unsubscribe(self, channel: bytes) -> None:
        with self._write_lock:
            self._send(encode_command(b"UNSUBSCRIBE", channel))

    def _send(self, data: bytes) -> None:
        try:
            self._conn.sock.sendall(data)
        except OSError as exc:
            raise RedisUnavailable(f"subscriber connection failed: {exc}") from None

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._conn.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not threading.current_thread():
            self._thread.join(self.timeout)
        self._conn.close()
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        with self._write_lock:
            for waiters in self._waiters.values():
                for event in waiters:
                    event.set()
            self._waiters.clear()

    def _run(self) -> None:
        parser = self._conn.parser
        sock = self._conn.sock
        reason = "Redis closed the subscriber connection"
        try:
            while True:
                reply = parser.next_reply()
                if reply is INCOMPLETE:
                    data = sock.recv(RECV_SIZE)
                    if not data:
                        break
                    parser.feed(data)
                    continue
                self._dispatch(reply)  # type: ignore[arg-type]
        except (OSError, ProtocolError) as exc:
            reason = f"subscriber connection failed: {exc}"
        except Exception:  # a bug in a handler: the stream can no longer be trusted
            log.exception("subscriber handler failed")
            reason = "subscriber handler failed"
        self._wake_waiters()
        if not self._closing:
            self._closing = True
            self._on_lost(reason)

    def _dispatch(self, reply: Reply) -> None:
        if not isinstance(reply, list) or len(reply) < 3:
            raise ProtocolError(f"unexpected reply in subscribed mode: {reply!r}")
        kind, channel, data = reply[0], reply[1], reply[2]
        if kind == b"message":
            assert isinstance(channel, bytes) and isinstance(data, bytes)
            self._on_message(channel, data)
        elif kind == b"subscribe":
            assert isinstance(channel, bytes)
            with self._write_lock:
                waiters = self._waiters.get(channel)
                if waiters:
                    waiters.popleft().set()
                    if not waiters:
                        del self._waiters[channel]
