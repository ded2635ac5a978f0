"""Connections opened as the run starts and judged by cases that run last: the time limits.

A handshake timeout may be up to 30 s and an idle timeout is whatever the server advertises;
waiting for them one case at a time would dominate the run. So these probes start together
before the first case, live through the run, and the time-limit cases (ordered last) read off
what happened to them, waiting only for whatever time is still missing.

* ``no_hello`` connects and sends nothing (HS-10..12).
* ``refused`` sends a HELLO with an invalid nick every half second: refusals must not restart
  the handshake timer (HS-10).
* ``silent`` registers and then sends nothing and answers nothing (KEEP-5, KEEP-6).
* ``answering`` registers and answers the server's PINGs, nothing else (KEEP-8); it also
  watches ``lobby`` for the LEFT(TIMEOUT) of the silent one (PRES-6).
* ``half_frame`` registers and then trickles the bytes of one frame, one every quarter of the
  idle timeout, never completing it: bytes of an incomplete frame are not activity (§10.2), so
  it must be cut as if it had sent nothing; a server that counts bytes cuts it much later.
* ``active`` registers and sends a PING every third of the idle timeout (KEEP-6).
* ``drain`` commits a protocol error, then keeps writing to measure the drain (ERR-7, ERR-8).
"""

from __future__ import annotations

import threading
import time

from spec.codec import encode
from spec.constants import ErrorCode
from spec.events import Hello, Ping

from .client import Closed, Ending, MockClient, SendFailed
from .context import fresh_name
from .errors import Violation
from .options import RunOptions
from .transcript import Transcript


class Background:
    def __init__(self, options: RunOptions) -> None:
        assert options.server is not None
        self.scale = options.timeout_scale
        self.transcript = Transcript()
        self.opened = time.monotonic()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

        def make(name: str, auto_pong: bool = True) -> MockClient:
            assert options.server is not None
            return MockClient(
                options.server, name, self.transcript, scale=self.scale, auto_pong=auto_pong
            ).connect()

        self.no_hello = make("bg-no-hello")
        self.refused = make("bg-refused")
        self.silent = make("bg-silent", auto_pong=False)
        self.answering = make("bg-answering")
        self.half_frame = make("bg-half-frame", auto_pong=False)
        self.active = make("bg-active", auto_pong=False)
        self.active.keeps_alive = True  # it PINGs every third of the idle timeout
        self.drain = make("bg-drain")
        #: When each probe sent its HELLO: the server's idle clock cannot start earlier.
        self.hello_sent: dict[str, float] = {}
        for c in (self.silent, self.answering, self.half_frame, self.active, self.drain):
            self.hello_sent[c.name] = time.monotonic()
            c.register(fresh_name(c.name[3:]))
        self.registered_at = time.monotonic()
        self.half_frame.send_raw(encode(Ping(1))[:1], "the first byte of a PING")
        self.drain_done = threading.Event()
        self.drain_fin_at: float | None = None
        self.drain_reset_at: float | None = None
        self._spawn(self._refuse_forever)
        self._spawn(self._trickle)
        self._spawn(self._keep_active)
        self._spawn(self._measure_drain)

    def _spawn(self, target: object) -> None:
        t = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
        t.start()
        self._threads.append(t)

    def _refuse_forever(self) -> None:
        bad = encode(Hello(nick="not a nick"))
        while not self._stop.wait(0.5 * self.scale) and self.refused.closed is None:
            try:
                self.refused.send_raw(bad, "HELLO with an invalid nick")
            except SendFailed:
                return

    def _trickle(self) -> None:
        """One more byte of the PING every quarter of the idle timeout, never its last."""
        welcome = self.half_frame.welcome
        if welcome is None or welcome.idle_timeout_ms == 0:
            return
        frame = encode(Ping(1))
        for i in range(2, len(frame)):  # stops one byte short of a whole frame
            if self._stop.wait(welcome.idle_timeout_ms / 4000) or self.half_frame.closed:
                return
            try:
                self.half_frame.send_raw(frame[i - 1 : i], f"byte {i} of {len(frame)} of a PING")
            except SendFailed:
                return

    def _keep_active(self) -> None:
        welcome = self.active.welcome
        if welcome is None or welcome.idle_timeout_ms == 0:
            return
        period = welcome.idle_timeout_ms / 3000.0
        token = 0
        while not self._stop.wait(period) and self.active.closed is None:
            token += 1
            try:
                self.active.send_frame(Ping(token))
            except SendFailed:
                return

    def _measure_drain(self) -> None:
        try:
            self._drain_once()
        finally:
            self.drain_done.set()

    def _drain_once(self) -> None:
        """Send length 0, read to the FIN, then keep writing until the server's close shows."""
        self.drain.send_raw(b"\x00\x00\x00\x00", "length 0")
        try:
            self.drain.expect_error([ErrorCode.MALFORMED], "MAL-1", timeout=10.0)
        except Violation:
            return
        if self.drain.closed is None or self.drain.closed.how is not Ending.EOF:
            return
        self.drain_fin_at = next(t for t, e in self.drain.log if isinstance(e, Closed))
        while time.monotonic() < self.drain_fin_at + 10.0 * self.scale:
            try:
                self.drain.send_raw(encode(Ping(0))[:2], "2 bytes while the server drains")
            except SendFailed:
                self.drain_reset_at = time.monotonic()
                return
            # Often at first, so that a close with no drain at all shows within milliseconds.
            early = time.monotonic() < self.drain_fin_at + 0.5
            if self._stop.wait(0.005 if early else 0.05 * self.scale):
                return

    def stop(self) -> None:
        self._stop.set()
        for c in (
            self.no_hello,
            self.refused,
            self.silent,
            self.answering,
            self.half_frame,
            self.active,
            self.drain,
        ):
            c.close()
