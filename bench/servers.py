"""Servers under test: started as separate processes, reached over TCP only.

The bench never imports a server. It starts one with ``--port 0``, waits for the line
``listening on HOST:PORT`` on its stdout, and measures it from outside (sockets, /proc).
Or it is given an address (``--server``) of a server someone else started. Redis, the one
baseline not written here, is a real ``redis-server`` started by :mod:`redisproc`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from redisproc import RedisNotFound, RedisServer

from . import procstat
from .orders import Dialect

REPO = Path(__file__).resolve().parent.parent
_READY = re.compile(r"^listening on (\S+):(\d+)\s*$", re.MULTILINE)

#: name -> (module run with ``python -m``, dialect its clients speak)
KINDS: dict[str, tuple[str, Dialect]] = {
    "reference": ("reference.server", Dialect.CHATWIRE),
    "naive": ("bench.baselines.naive", Dialect.LINE),
    "raw": ("bench.baselines.raw", Dialect.RAW),
    "redis": ("redis-server", Dialect.REDIS),
}
#: Redis by default refuses clients beyond 10,000; the connection scenario climbs to 15,000.
REDIS_MAX_CLIENTS = 20_000


class ServerError(RuntimeError):
    """A server could not be started or reached; the message says why, in one line."""


class OutputReader:
    """Drains a server's stdout+stderr on a thread (so the pipe never fills and blocks it),
    keeping the last lines and noticing the ready line."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: deque[str] = deque(maxlen=50)
        self.ready: tuple[str, int] | None = None
        self.event = threading.Event()
        self.thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self.thread.start()

    def _drain(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            match = _READY.match(line)
            if match and self.ready is None:
                self.ready = (match.group(1).strip("[]"), int(match.group(2)))
                self.event.set()
        self.event.set()  # end of output: the process is gone

    def tail(self, count: int = 5) -> str:
        return " | ".join(list(self.lines)[-count:])


@dataclass
class Server:
    name: str
    dialect: Dialect
    host: str
    port: int
    pid: int | None
    process: subprocess.Popen[bytes] | None = None
    output: OutputReader | None = field(default=None, repr=False)
    redis: RedisServer | None = field(default=None, repr=False)

    def sample(self) -> procstat.ProcSample | None:
        return procstat.sample(self.pid) if self.pid else None

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def pids(self) -> list[int]:
        """The processes that make up this server (CPU figures sum them)."""
        return [self.pid] if self.pid is not None else []

    def address_for(self, worker: int) -> tuple[str, int]:
        """Where load worker ``worker`` connects its clients (a cluster spreads them)."""
        return self.host, self.port

    def log_tail(self, lines: int = 5) -> str:
        return self.output.tail(lines) if self.output is not None else ""

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it will not go; the exit code (None if not ours)."""
        if self.redis is not None:
            self.redis.close()
            return 0
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.output is not None:
            self.output.thread.join(5)
        return self.process.returncode


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of a loopback address; anything else is refused (only loopback load)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ServerError(f"--server wants HOST:PORT, not {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    try:
        infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServerError(f"cannot resolve {host!r}: {exc.strerror}") from None
    addr = infos[0][4][0]
    if not ipaddress.ip_address(addr).is_loopback:
        raise ServerError(f"{text} is not a loopback address; the bench only loads loopback")
    return str(addr), int(port)


def attach(text: str, pid: int | None) -> Server:
    """A chatwire server someone else started; CPU and memory come from ``pid`` or its port."""
    host, port = parse_address(text)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise ServerError(f"nothing answers on {host}:{port}: {exc.strerror or exc}") from None
    found = pid if pid is not None else procstat.listener_pid(port)
    return Server("server", Dialect.CHATWIRE, host, port, found)


def start(name: str, args: list[str] | None = None, timeout: float = 60.0) -> Server:
    """Start server ``name`` (see :data:`KINDS`) on a free loopback port and wait for it."""
    if name == "redis":
        return _start_redis(timeout)
    module, dialect = KINDS[name]
    command = [sys.executable, "-m", module, "--port", "0", *(args or [])]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdout is not None
    output = OutputReader(process.stdout)
    output.event.wait(timeout)
    server = Server(name, dialect, "", 0, process.pid, process, output)
    if output.ready is not None:
        server.host, server.port = output.ready
        return server
    if process.poll() is not None or output.event.is_set():
        server.stop()
        raise ServerError(f"{name} server exited with {process.returncode}: {output.tail()}")
    server.stop()
    raise ServerError(f"{name} server printed no 'listening on' line within {timeout:.0f} s")


def _start_redis(timeout: float) -> Server:
    try:
        redis = RedisServer().start(timeout=timeout)
    except (RedisNotFound, RuntimeError) as exc:
        raise ServerError(f"redis: {exc}") from None
    assert redis.port is not None
    try:
        with socket.create_connection((redis.host, redis.port), timeout=5) as conn:
            conn.sendall(b"CONFIG SET maxclients %d\r\n" % REDIS_MAX_CLIENTS)
            conn.recv(256)  # +OK, or an error if the fd limit is lower: keep the default
    except OSError as exc:
        redis.close()
        raise ServerError(f"redis did not answer: {exc}") from None
    return Server("redis", Dialect.REDIS, redis.host, redis.port, redis.pid, redis=redis)
