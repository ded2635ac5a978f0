"""Progress on stderr: a line per finished point ("point i of M", the time left at the pace so
far), and, when a step has been silent for a while, a line saying what it is still doing."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

#: Seconds of silence after which the step under way is named again.
QUIET_S = 10.0


class Progress:
    def __init__(
        self,
        enabled: bool,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        quiet_s: float = QUIET_S,
    ) -> None:
        self.enabled = enabled
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._quiet_s = quiet_s
        self.start = clock()
        self._lock = threading.Lock()
        self._total = 0
        self._done = 0
        self._phase = ""
        self._phase_since = self.start
        self._last_line = self.start
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def plan(self, total: int) -> None:
        """The run will measure ``total`` points; from now on a silent step is named."""
        self._total = total
        if self.enabled and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick_loop, name="progress", daemon=True)
            self._ticker.start()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(5)

    def say(self, text: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            now = self._clock()
            self._last_line = now
            self._stream.write(f"[{now - self.start:6.1f}s] {text}\n")
            self._stream.flush()

    def phase(self, text: str) -> None:
        """What the run is doing now (said only if it goes on for a while)."""
        with self._lock:
            self._phase, self._phase_since = text, self._clock()

    def point(self, text: str) -> None:
        """A point finished: its line, with how far the run is and the time left."""
        self._done += 1
        where = f"point {self._done} of {self._total}" if self._total else f"point {self._done}"
        self.say(f"{where}{self._time_left()}: {text}")
        self.phase("")

    def _time_left(self) -> str:
        left = self._total - self._done
        if not self._total or left <= 0:
            return ""
        seconds = (self._clock() - self.start) / self._done * left
        return f", about {_duration(seconds)} left"

    def tick(self) -> None:
        """Name the step under way if nothing has been said for ``quiet_s``."""
        with self._lock:
            now = self._clock()
            phase, since = self._phase, self._phase_since
            quiet = now - self._last_line >= self._quiet_s
        if phase and quiet:
            self.say(f"... still {phase} ({_duration(now - since)} so far)")

    def _tick_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.tick()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
