"""Run the client as a real process (scripted through pipes, or interactive in a pseudo-terminal)
and watch what it prints, with a deadline on every wait."""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reference.server import Server, ServerConfig

REPO = Path(__file__).resolve().parent.parent
CLIENT = [sys.executable, "-m", "reference.client"]


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(ServerConfig(host="127.0.0.1", port=0)) as running:
        yield running


def free_port() -> int:
    """A loopback port nothing listens on (for 'connection refused')."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


class ScriptedClient:
    """``python -m reference.client`` with piped stdin/stdout/stderr."""

    def __init__(self, port: int, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*CLIENT, "--port", str(port), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
            text=True,
            encoding="utf-8",
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._stderr: list[str | None] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines.put)),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._stderr.append)),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        self._eof = False

    @staticmethod
    def _pump(stream: object, put: Callable[[str | None], None]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            put(line.removesuffix("\n"))
        put(None)

    def write(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(line + "\n" for line in lines))
        self.proc.stdin.flush()

    def next_line(self, timeout: float = 10.0) -> str | None:
        """The next stdout line; None at EOF."""
        if self._eof:
            return None
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout} s; so far: {self.seen}") from None
        if line is None:
            self._eof = True
            return None
        self.seen.append(line)
        return line

    def expect(self, wanted: str | Callable[[str], bool], timeout: float = 10.0) -> str:
        """Read lines until one equals ``wanted`` (or satisfies it); returns that line."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"EOF before {wanted!r}; output: {self.seen}")
            if wanted(line) if callable(wanted) else line == wanted:
                return line

    def finish(self, timeout: float = 20.0) -> int:
        """Close stdin, wait for the exit, read the rest of stdout; returns the exit status."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.wait(timeout)

    def wait(self, timeout: float = 20.0) -> int:
        status = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(timeout)
        while self.next_line(timeout) is not None:
            pass
        return status

    @property
    def stderr(self) -> str:
        return "\n".join(line for line in self._stderr if line is not None)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def interactive_env() -> dict[str, str]:
    """A terminal prompt_toolkit can drive without asking for the cursor position."""
    return dict(os.environ, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="120", LINES="30")


def roster_line(keyword: str, room: str, members: set[str]) -> Callable[[str], bool]:
    """Matches ``welcome NICK ROOM MEMBERS...`` / ``roster ROOM SEQ MEMBERS...`` whatever
    the member order."""

    def match(line: str) -> bool:
        words = line.split(" ")
        if words[0] != keyword:
            return False
        if keyword == "welcome":
            return words[2] == room and set(words[3:]) == members
        return words[1] == room and set(words[3:]) == members

    return match


@contextlib.contextmanager
def http_server() -> Iterator[int]:
    """A loopback listener that answers whatever it is sent as an HTTP server would; yields
    its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


class Relay:
    """A loopback TCP relay to ``target``: ``cut()`` breaks every connection through it, and
    while ``down`` is set it closes new connections at once (a server that is away)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.down = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                near, _ = self.listener.accept()
            except TimeoutError:
                continue
            if self.down.is_set():
                near.close()
                continue
            far = socket.create_connection(self.target, timeout=5)
            far.settimeout(None)
            with self._lock:
                self._socks += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()
        self.cut()
