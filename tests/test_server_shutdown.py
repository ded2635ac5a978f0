"""SIGTERM always ends the server: at once after a connection came and went, and under a
flood, where every client gets exactly one fatal ERROR, SERVER_SHUTDOWN, before EOF."""

from __future__ import annotations

import os
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from spec.codec import encode
from spec.constants import ErrorCode, FrameType, is_fatal
from spec.decoder import FrameSplitter
from spec.events import Hello, Join, Send

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parent.parent
#: Trials of "connect, close, SIGTERM at once" (200 by hand: CHATWIRE_SIGTERM_TRIALS=200).
TRIALS = int(os.environ.get("CHATWIRE_SIGTERM_TRIALS", "40"))


def start_cli(*args: str) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "reference.server", "--port", "0", "--log-level", "ERROR", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    assert ready, "no 'listening on' line in time"
    host, port = proc.stdout.readline().split()[-1].rsplit(":", 1)
    return proc, (host, int(port))


#: How long a trial waits for the exit. The server exits within 2 s (200 of 200 trials, see
#: the README); what this catches is a server that never does, on a machine however loaded.
EXIT_WAIT = 10.0


def connect_close_sigterm(_: int) -> float | None:
    """One trial: a client connects and closes, SIGTERM at once; seconds to exit 0 (None if
    the server had not exited 0 by ``EXIT_WAIT``)."""
    proc, address = start_cli()
    try:
        socket.create_connection(address).close()
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        try:
            code = proc.wait(timeout=EXIT_WAIT)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - sent if code == 0 else None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_right_after_a_connection_always_ends_the_server() -> None:
    with ThreadPoolExecutor(2) as pool:
        times = list(pool.map(connect_close_sigterm, range(TRIALS)))
    assert all(t is not None for t in times), f"{times.count(None)} of {TRIALS} did not exit"


@dataclass
class Flooder:
    """One client of the flood: sends SENDs to its room as fast as the server takes them,
    reads everything, and notes the fatal ERRORs it got before EOF."""

    sock: socket.socket
    room: str
    out: bytearray
    splitter: FrameSplitter = field(default_factory=lambda: FrameSplitter(1 << 20))
    registered: bool = False
    fatal: list[int] = field(default_factory=list)
    after_fatal: int = 0  # frames after the fatal ERROR (ERR-4)
    eof: bool = False

    def read(self) -> None:
        try:
            data = self.sock.recv(262_144)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return
        self.splitter.receive_data(data)
        while (frame := self.splitter.next_frame()) is not None:
            ftype, body = frame
            if self.fatal:
                self.after_fatal += 1
            elif ftype == FrameType.ROSTER:
                self.registered = True
            elif ftype == FrameType.ERROR and is_fatal(struct.unpack(">H", body[:2])[0]):
                self.fatal.append(struct.unpack(">H", body[:2])[0])

    def write(self, flooding: bool) -> None:
        if flooding and not self.fatal and len(self.out) < 16384:
            self.out += encode(Send(self.room, "flood " * 10)) * 32
        try:
            sent = self.sock.send(self.out)
        except (BlockingIOError, OSError):
            return
        del self.out[:sent]


def test_sigterm_under_a_flood_tells_every_client_once_and_exits() -> None:
    """CI size of `bench shutdown --flood` (2,000 clients there): 200 clients in rooms of 10
    send as fast as they can; after SIGTERM each gets exactly one fatal ERROR, and it is
    SERVER_SHUTDOWN, then EOF; the server exits 0 within 5 s."""
    proc, address = start_cli("--max-clients", "1000")
    sel = selectors.DefaultSelector()
    flooders: list[Flooder] = []
    try:
        for i in range(200):
            sock = socket.create_connection(address)
            sock.setblocking(False)
            opening = encode(Hello(f"f{i}")) + encode(Join(f"r{i // 10}"))
            f = Flooder(sock, f"r{i // 10}", bytearray(opening))
            flooders.append(f)
            sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, f)

        def turn(flooding: bool, timeout: float = 0.05) -> None:
            for key, mask in sel.select(timeout):
                f = key.data
                if mask & selectors.EVENT_READ:
                    f.read()
                if f.eof:
                    sel.unregister(f.sock)
                    f.sock.close()
                elif mask & selectors.EVENT_WRITE:
                    f.write(flooding)

        deadline = time.monotonic() + 60
        while not all(f.registered for f in flooders):
            assert time.monotonic() < deadline, "clients not registered in time"
            turn(flooding=False)
        flood_until = time.monotonic() + 1.0
        while time.monotonic() < flood_until:
            turn(flooding=True)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        while not all(f.eof for f in flooders) and time.monotonic() < sent + 20:
            turn(flooding=True)
        exit_code = proc.wait(timeout=max(0.1, sent + 5 - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sel.close()
        for f in flooders:
            f.sock.close()
    assert exit_code == 0
    assert all(f.eof for f in flooders)
    told = [f.fatal for f in flooders]
    assert told == [[ErrorCode.SERVER_SHUTDOWN]] * len(flooders), told
    assert sum(f.after_fatal for f in flooders) == 0


def test_a_server_whose_stdout_reader_went_away_serves_on_and_stops_on_sigterm() -> None:
    """``reference.server | head -1`` with head gone before the 'listening on' line: the
    print fails (EPIPE), and the server used to leave main with its flusher thread running,
    deaf to SIGTERM for ever. It serves on, and SIGTERM ends it with status 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "reference.server", "--port", "0", "--log-level", "INFO"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the interpreter has even imported the server
    try:
        deadline = time.monotonic() + 30
        logged = b""  # read from the descriptor: a buffered readline could hide lines from select
        while b"stdout is closed" not in logged:
            ready, _, _ = select.select([proc.stderr], [], [], deadline - time.monotonic())
            assert ready, "no 'stdout is closed' log line in time"
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, f"the server ended: {proc.wait()}"
            logged += chunk
        line = next(x for x in logged.decode().splitlines() if "stdout is closed" in x)
        host, port = line.split()[-1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as client:
            client.sendall(encode(Hello("reader-gone")))
            splitter = FrameSplitter()
            while (frame := splitter.next_frame()) is None:
                data = client.recv(4096)
                assert data, "closed before WELCOME"
                splitter.receive_data(data)
            assert frame[0] == FrameType.WELCOME
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=EXIT_WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
