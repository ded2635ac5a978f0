"""A crowd of other users on the server under test: clients that register, join and leave
rooms (the lobby included), chat, whisper, and come and go, while the conformance suite runs.

A server in real use has other users; the suite's verdicts must not change because of them
(each case judges only its own rooms and nicks). Each crowd member reads everything, answers
PINGs, keeps to the advertised flood limit, and reconnects after it leaves; it never sends
anything wrong, so nothing it does is the server's fault or the suite's business.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from spec.codec import decode_body, encode
from spec.constants import HARD_MAX_FRAME
from spec.decoder import FrameSplitter
from spec.events import Bye, Direct, Event, Hello, Join, Leave, Ping, Pong, Send, Welcome

#: The rooms the crowd uses beside the lobby (no suite case ever picks these names).
CROWD_ROOMS = ("crowd-a", "crowd-b", "crowd-c")


class _Member:
    """One crowd client: a reader thread that answers PINGs and a script on the caller's."""

    def __init__(self, address: tuple[str, int], nick: str) -> None:
        self.sock = socket.create_connection(address, timeout=10)
        self.sock.settimeout(None)
        self.nick = nick
        self.welcome: Welcome | None = None
        self.registered = threading.Event()
        self.closed = threading.Event()
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.send(Hello(nick=nick))
        self._tokens = 0.0
        self._refilled = time.monotonic()

    def send(self, event: Event) -> None:
        with self._send_lock, contextlib.suppress(OSError):
            self.sock.sendall(encode(event))

    def chat(self, event: Send | Direct) -> None:
        """Send, keeping to the advertised flood limit (a bucket mirrored on this side)."""
        w = self.welcome
        if w is not None and w.rate:
            now = time.monotonic()
            self._tokens = min(float(w.burst), self._tokens + (now - self._refilled) * w.rate)
            self._refilled = now
            if self._tokens < 1.0:
                return  # skip this message rather than wait
            self._tokens -= 1.0
        self.send(event)

    def _read(self) -> None:
        splitter = FrameSplitter(HARD_MAX_FRAME)
        try:
            while data := self.sock.recv(65536):
                splitter.receive_data(data)
                while (frame := splitter.next_frame()) is not None:
                    event = decode_body(*frame)
                    if isinstance(event, Welcome):
                        self.welcome = event
                        self._tokens = float(event.burst)
                        self.registered.set()
                    elif isinstance(event, Ping):
                        self.send(Pong(event.token))
        except (OSError, ValueError):
            pass
        finally:
            self.closed.set()

    def close(self, *, bye: bool) -> None:
        if bye:
            self.send(Bye("crowd member leaving"))
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(5)
        self.sock.close()


class Crowd:
    """``size`` crowd members acting at random (seeded) until :meth:`stop`."""

    def __init__(self, address: tuple[str, int], size: int = 6, seed: int = 0) -> None:
        self.address = address
        self.size = size
        self.seed = seed
        self.actions = 0  #: how much the crowd did (so a test can show it was busy)
        self.sessions = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._live, args=(i,), daemon=True) for i in range(size)
        ]

    def start(self) -> Crowd:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def _live(self, index: int) -> None:
        rng = random.Random(f"{self.seed}:{index}")
        generation = 0
        while not self._stop.is_set():
            generation += 1
            try:
                member = _Member(self.address, f"crowd{index}x{generation}")
            except OSError:
                self._stop.wait(0.2)
                continue
            try:
                if member.registered.wait(5):
                    self.sessions += 1
                    self._act(member, rng, others=[f"crowd{j}x" for j in range(self.size)])
            finally:
                member.close(bye=rng.random() < 0.5)

    def _act(self, member: _Member, rng: random.Random, others: list[str]) -> None:
        """A session of 20 to 60 actions, a few milliseconds apart."""
        joined: set[str] = set()
        for _ in range(rng.randrange(20, 60)):
            if self._stop.wait(rng.uniform(0.005, 0.05)) or member.closed.is_set():
                return
            self.actions += 1
            roll = rng.random()
            room = rng.choice(CROWD_ROOMS)
            if roll < 0.2:
                member.send(Join(room))
                joined.add(room)
            elif roll < 0.3 and joined:
                left = joined.pop()
                member.send(Leave(left))
            elif roll < 0.45:
                member.send(Leave("lobby") if rng.random() < 0.5 else Join("lobby"))
            elif roll < 0.8:
                target = rng.choice(sorted(joined | {"lobby"}))
                member.chat(Send(target, f"crowd chatter {rng.random():.6f}"))
            else:
                nick = rng.choice(others) + "1"
                member.chat(Direct(nick, "psst"))


@contextmanager
def crowd(address: tuple[str, int], size: int = 6, seed: int = 0) -> Iterator[Crowd]:
    running = Crowd(address, size, seed).start()
    try:
        yield running
    finally:
        running.stop()
